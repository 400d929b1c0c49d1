"""A program stream read back, without Redis: the leader's entries in, the same LL-HLS out.

The leader stamps each fragment entry with its shadow packager's numbering; a replica that
starts reading at any point (a late instance) restarts its packager at the next segment
start and from then on renders byte-identical playlists and parts.
"""

from __future__ import annotations

import pytest

from server.cluster.entries import ProgramEntry, ProgramKind
from server.cluster.replica import NewFragment, NewInit, NewSource, ProgramReplica, hls_stamp
from server.errors import ForumcastError
from server.media.hls import Packager
from server.media.switcher import Cut, Emit, Output, Reinit, Switched, Switcher
from server.media.timeline import loop_fragments
from tests.media.test_hls import stream

BOX = 16 * 2**20


def leader_entries(seconds: float, *, switch_every: int = 23) -> list[ProgramEntry]:
    """What a leader writes: two sources switched every ``switch_every`` fragments."""
    a_init, a_frags = stream(25)
    b_init, b_frags = stream(10, width=192)
    switcher = Switcher()
    shadow = Packager(target_duration=2.0, window=3)
    switcher.source_init("a", a_init)
    switcher.source_init("b", b_init)
    entries: list[ProgramEntry] = []
    wall = 1_600_000_000.0

    def write(outputs: list[Output]) -> None:
        nonlocal wall
        for output in outputs:
            if isinstance(output, Reinit):
                shadow.set_init(output.init)
                entries.append(ProgramEntry(ProgramKind.INIT, 1, output.init.data))
            elif isinstance(output, Switched):
                shadow.discontinuity()
                entries.append(ProgramEntry(ProgramKind.SWITCH, 1, source=output.source))
            elif isinstance(output, Emit):
                wall += 0.2
                part = shadow.add(output.fragment, wall_time=wall)
                stamp = hls_stamp(part, shadow.start_of(part))
                entries.append(
                    ProgramEntry(ProgramKind.FRAGMENT, 1, output.fragment.data, wall=wall, hls=stamp)
                )

    sources = {"a": loop_fragments(a_init, a_frags), "b": loop_fragments(b_init, b_frags)}
    write(switcher.request("a", cut=Cut.KEYFRAME))
    for index in range(round(seconds / 0.2)):
        if index and index % switch_every == 0:
            write(switcher.request("b" if switcher.current == "a" else "a"))
        for name, fragments in sources.items():
            write(switcher.feed(name, next(fragments)))
    return entries


def replay(entries: list[ProgramEntry], init: bytes | None = None) -> Packager:
    """What an edge does with entries (after the program's init, if it starts late)."""
    packager = Packager(target_duration=2.0, window=3)
    replica = ProgramReplica(max_box_size=BOX)
    if init is not None:
        entries = [ProgramEntry(ProgramKind.INIT, 1, init), *entries]
    for entry in entries:
        change = replica.apply(ProgramEntry.parse(entry.fields()))
        if isinstance(change, NewInit):
            packager.set_init(change.init)
        elif isinstance(change, NewSource):
            packager.discontinuity()
        elif isinstance(change, NewFragment) and change.hls is not None:
            replica.check(
                change.hls,
                packager.add(change.fragment, wall_time=change.hls.wall, restart=change.hls.restart),
            )
    return packager


def test_every_reader_renders_the_leaders_playlists_whenever_it_started() -> None:
    entries = leader_entries(40.0)
    early = replay(entries)
    inits = [e for e in entries if e.kind is ProgramKind.INIT]
    late_starts = [len(entries) // 3, len(entries) // 2 + 7, len(entries) - 60]
    for start in late_starts:
        last_init = [e for e in entries[:start] if e.kind is ProgramKind.INIT][-1]
        late = replay(entries[start:], init=last_init.data)
        assert late.media_playlist() == early.media_playlist()
        assert late.media_playlist(skip=True) == early.media_playlist(skip=True)
        for segment in early.segments:
            assert late.segment(segment.msn) is not None
            assert late.segment(segment.msn).data() == segment.data()  # type: ignore[union-attr]
    assert len(inits) >= 2  # the two sources differ in size: switches re-init
    assert "#EXT-X-DISCONTINUITY" in early.media_playlist()


def test_a_reader_that_misses_entries_waits_for_the_next_segment_and_catches_up() -> None:
    entries = leader_entries(30.0)
    full = replay(entries)
    holed = entries[:40] + entries[47:]  # seven entries never read (trimmed before we got there)
    assert replay(holed).media_playlist() == full.media_playlist()


def test_unreadable_entries_are_refused_with_a_clear_code() -> None:
    replica = ProgramReplica(max_box_size=BOX)
    with pytest.raises(ForumcastError) as refused:
        replica.apply(ProgramEntry(ProgramKind.INIT, 1, b"\x00\x00\x00\x08free"))
    assert refused.value.code == "cluster.bad_entry"
    with pytest.raises(ForumcastError) as bad:
        ProgramEntry.parse({b"t": b"frag", b"e": b"1", b"d": b"", b"w": b"x", b"h": b"{}"})
    assert bad.value.code == "cluster.bad_entry"
    with pytest.raises(ForumcastError):
        ProgramEntry.parse({b"t": b"what", b"e": b"1"})
    # A fragment before any init is nothing to show yet, not an error.
    assert replica.apply(ProgramEntry(ProgramKind.FRAGMENT, 1, b"x", wall=1.0, hls={"n": 0})) is None


def test_fragments_that_do_not_come_after_the_last_one_never_reach_viewers() -> None:
    """A leader that resumed from an older copy of the program (a promoted replica that had
    not got everything) writes fragments viewers already have: the edge skips them, so decode
    times never go backwards, and takes up the program where it passes what it delivered."""
    entries = leader_entries(8.0, switch_every=1000)
    replica = ProgramReplica(max_box_size=1 << 20)
    delivered = [c for e in entries if isinstance(c := replica.apply(e), NewFragment)]
    assert len(delivered) == 40
    older = [e for e in entries if e.kind is ProgramKind.FRAGMENT][-10:]  # written again
    again = [c for e in older if isinstance(c := replica.apply(e), NewFragment)]
    assert again == [] and replica.stale == 10
    assert replica.last is delivered[-1].fragment
