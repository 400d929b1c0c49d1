"""The publisher's send decisions: init first, keyframe next, nothing kept while offline."""

from __future__ import annotations

from clients.outbox import Link, Outbox
from server.media.types import InitSegment, MediaFragment, Track, TrackFragment, TrackKind

VIDEO = Track(id=1, kind=TrackKind.VIDEO, timescale=12_800, codec="avc1.64001e")
INIT = InitSegment(data=b"I" * 100, tracks=(VIDEO,))
NEW_INIT = InitSegment(data=b"J" * 100, tracks=(VIDEO,))


def fragment(sequence: int, *, keyframe: bool = False, seconds: float = 0.2) -> MediaFragment:
    duration = round(seconds * VIDEO.timescale)
    traf = TrackFragment(1, (sequence - 1) * duration, 5, duration, keyframe, 0, 1)
    return MediaFragment(b"F" * 10, sequence, (traf,), keyframe, 0, 0)


def drain(outbox: Outbox) -> list[str]:
    sent: list[str] = []
    while (item := outbox.pop()) is not None:
        sent.append("init" if isinstance(item, InitSegment) else f"{item.sequence_number}")
    return sent


def test_nothing_is_kept_while_offline() -> None:
    outbox = Outbox()
    outbox.offer(INIT)
    outbox.offer(fragment(1, keyframe=True))
    assert outbox.link is Link.OFFLINE
    assert drain(outbox) == []
    assert outbox.stats.fragments_dropped == 1


def test_a_connection_starts_with_the_init_segment_then_a_keyframe() -> None:
    outbox = Outbox()
    outbox.offer(INIT)
    outbox.connected()
    for sequence, keyframe in [(1, False), (2, False), (3, True), (4, False)]:
        outbox.offer(fragment(sequence, keyframe=keyframe))
    assert drain(outbox) == ["init", "3", "4"]
    assert outbox.stats.inits_sent == 1
    assert outbox.stats.fragments_sent == 2
    assert outbox.stats.fragments_dropped == 2
    assert outbox.stats.bytes_sent == 100 + 2 * 10


def test_connecting_before_the_source_has_an_init_waits_for_it() -> None:
    outbox = Outbox()
    outbox.connected()
    outbox.offer(fragment(1, keyframe=True))  # a source must not do this, but it must not get out
    outbox.offer(INIT)
    outbox.offer(fragment(2, keyframe=True))
    assert drain(outbox) == ["init", "2"]


def test_reconnect_resends_the_init_and_waits_for_the_next_keyframe() -> None:
    outbox = Outbox()
    outbox.offer(INIT)
    outbox.connected()
    outbox.offer(fragment(1, keyframe=True))
    outbox.offer(fragment(2))
    assert drain(outbox) == ["init", "1", "2"]
    outbox.offer(fragment(3))
    outbox.disconnected()  # fragment 3 was queued, never sent
    outbox.offer(fragment(4))
    outbox.connected()
    outbox.offer(fragment(5))
    outbox.offer(fragment(6, keyframe=True))
    assert drain(outbox) == ["init", "6"]
    assert outbox.stats.fragments_dropped == 3


def test_a_new_init_goes_out_at_once_and_waits_for_its_keyframe() -> None:
    outbox = Outbox()
    outbox.offer(INIT)
    outbox.connected()
    outbox.offer(fragment(1, keyframe=True))
    outbox.offer(fragment(2))
    outbox.offer(NEW_INIT)  # the queued fragments of the old init are dropped
    outbox.offer(fragment(3))
    outbox.offer(fragment(4, keyframe=True))
    assert drain(outbox) == ["init", "4"]
    assert outbox.init is NEW_INIT


def test_falling_behind_skips_to_the_newest_keyframe() -> None:
    outbox = Outbox(max_pending_seconds=1.0)
    outbox.offer(INIT)
    outbox.connected()
    outbox.offer(fragment(1, keyframe=True))
    for sequence in range(2, 5):
        outbox.offer(fragment(sequence))
    outbox.offer(fragment(5, keyframe=True))
    assert outbox.queued_seconds > 0.9
    outbox.offer(fragment(6))  # 1.2 s queued: over the limit
    assert drain(outbox) == ["init", "5", "6"]
    assert outbox.stats.fragments_dropped == 4


def test_falling_behind_without_a_newer_keyframe_waits_for_one() -> None:
    outbox = Outbox(max_pending_seconds=0.5)
    outbox.offer(INIT)
    outbox.connected()
    assert outbox.pop() is INIT
    outbox.offer(fragment(1, keyframe=True))
    outbox.offer(fragment(2))
    outbox.offer(fragment(3))  # 0.6 s: everything goes
    outbox.offer(fragment(4))
    outbox.offer(fragment(5, keyframe=True))
    assert drain(outbox) == ["5"]
    assert outbox.queued_seconds == 0


def test_drained_only_after_the_source_ended_and_the_queue_is_empty() -> None:
    outbox = Outbox()
    outbox.offer(INIT)
    outbox.connected()
    outbox.offer(fragment(1, keyframe=True))
    outbox.finish()
    assert not outbox.drained
    assert drain(outbox) == ["init", "1"]
    assert outbox.drained
