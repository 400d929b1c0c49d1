"""The program switcher without sockets: real PyAV streams in, a decodable program out."""

from __future__ import annotations

import functools
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import pytest

from server.encoding.testpattern import PatternSettings, encode_clip
from server.live.slate_card import SlateCard
from server.live.slate_clip import SlateFormat, encode_slate
from server.media.fmp4 import split_clip
from server.media.switcher import Cut, Emit, Output, Reinit, Switched, Switcher
from server.media.types import InitSegment, MediaFragment, TrackKind
from tests.conftest import ffmpeg
from tests.live.streams import track_start

FPS = 25


@functools.cache
def source(name: str) -> tuple[InitSegment, tuple[MediaFragment, ...]]:
    """Twelve seconds of each kind of input, and a slate."""
    if name == "slate":
        data = encode_slate(SlateCard("", "Stage", "Next: nothing"), SlateFormat(width=320, height=180))
        return split_clip(data)[0], tuple(split_clip(data)[1])
    settings = {
        # 1 s GOPs, 640x360 AAC; the same encoder settings twice (a "same" input)
        "a": PatternSettings(width=320, height=180, gop=25, audio="aac", preset="ultrafast", busy=False),
        "a2": PatternSettings(width=320, height=180, gop=25, audio="aac", preset="ultrafast", busy=False),
        # 2 s GOPs, another resolution, Opus
        "b": PatternSettings(width=256, height=144, gop=50, audio="opus", preset="ultrafast", busy=False),
    }[name]
    init, fragments = split_clip(encode_clip(name.upper(), 12.0, settings))
    return init, tuple(fragments)


def start(fragment: MediaFragment, init: InitSegment, kind: TrackKind) -> Fraction | None:
    return track_start(fragment, init, kind)


@dataclass
class Recorder:
    """What the program's viewers got, with the input fragment behind every output one."""

    switcher: Switcher = field(default_factory=Switcher)
    outputs: list[Output] = field(default_factory=list)
    origins: list[tuple[str, MediaFragment]] = field(default_factory=list)  # per Emit

    def take(self, items: list[Output], name: str, original: MediaFragment | None = None) -> None:
        for item in items:
            self.outputs.append(item)
            if isinstance(item, Emit):
                assert original is not None or item.source == name
                self.origins.append((item.source, original if original is not None else item.fragment))

    def feed(self, name: str, fragment: MediaFragment) -> None:
        self.take(self.switcher.feed(name, fragment), name, fragment)

    def emits(self) -> list[Emit]:
        return [o for o in self.outputs if isinstance(o, Emit)]


def timeline(names: list[str], seconds: float) -> Iterator[tuple[float, str, MediaFragment]]:
    """Every source's fragments in the order a live server would receive them."""
    events = []
    for name in names:
        init, fragments = source(name)
        for fragment in fragments:
            at = start(fragment, init, TrackKind.VIDEO)
            if at is None:  # an audio-only fragment
                at = start(fragment, init, TrackKind.AUDIO)
            assert at is not None
            if at < seconds:
                events.append((float(at), name, fragment))
    return iter(sorted(events, key=lambda e: (e[0], e[1])))


def program_segments(recorder: Recorder) -> list[tuple[InitSegment, list[MediaFragment]]]:
    """The program cut at each re-init: what a decoder gets between two init segments."""
    segments: list[tuple[InitSegment, list[MediaFragment]]] = []
    for item in recorder.outputs:
        if isinstance(item, Reinit):
            segments.append((item.init, []))
        elif isinstance(item, Emit):
            segments[-1][1].append(item.fragment)
    return segments


def check_program(recorder: Recorder, tmp_path: Path) -> None:
    """Decodes with ffmpeg without an error; every track's decode time gap-free and monotonic;
    the A/V offset of every fragment what it was in its source, within one frame."""
    segments = program_segments(recorder)
    assert segments, "the program never started"
    ends: dict[TrackKind, Fraction] = {}
    frame = Fraction(1, FPS)
    for index, (init, fragments) in enumerate(segments):
        path = tmp_path / f"segment{index}.mp4"
        path.write_bytes(init.data + b"".join(f.data for f in fragments))
        run = subprocess.run(
            [ffmpeg(), "-v", "error", "-i", str(path), "-f", "null", "-"], capture_output=True, text=True
        )
        assert run.returncode == 0 and not run.stderr.strip(), f"segment {index}: {run.stderr}"
        for fragment in fragments:
            for traf in fragment.tracks:
                track = init.track(traf.track_id)
                assert track is not None
                begin = Fraction(traf.base_decode_time, track.timescale)
                previous = ends.get(track.kind)
                if previous is not None:
                    assert begin >= previous, f"{track.kind}: backwards by {float(previous - begin)} s"
                    assert begin - previous <= frame, f"{track.kind}: a gap of {float(begin - previous)} s"
                ends[track.kind] = begin + Fraction(traf.duration, track.timescale)
    emits = recorder.emits()
    for emit, (name, original) in zip(emits, recorder.origins, strict=True):
        init = source(name)[0]
        out_init = recorder.switcher.init
        assert out_init is not None
        shift_v = start(emit.fragment, init, TrackKind.VIDEO)
        shift_a = start(emit.fragment, init, TrackKind.AUDIO)
        src_v = start(original, init, TrackKind.VIDEO)
        src_a = start(original, init, TrackKind.AUDIO)
        if None in (shift_v, shift_a, src_v, src_a):
            continue
        assert shift_v is not None and shift_a is not None and src_v is not None and src_a is not None
        drift = (shift_v - shift_a) - (src_v - src_a)
        assert abs(drift) <= frame, f"A/V moved by {float(drift) * 1000:.1f} ms"


def test_switches_land_on_keyframes_and_the_program_decodes(tmp_path: Path) -> None:
    recorder = Recorder()
    init_of = {name: source(name)[0] for name in ("a", "b")}
    for name, init in init_of.items():
        recorder.take(recorder.switcher.source_init(name, init), name)
    recorder.take(recorder.switcher.request("a"), "a")
    # Takes at odd times, alternating: each lands at the next keyframe of the wanted source.
    plan = {1.3: "b", 3.7: "a", 5.1: "b", 7.9: "a", 9.5: "b", 10.6: "a"}
    pending_since: dict[str, float] = {}
    for at, name, fragment in timeline(["a", "b"], 12.0):
        for when in [t for t in plan if t <= at]:
            wanted = plan.pop(when)
            recorder.take(recorder.switcher.request(wanted), wanted)
            pending_since[wanted] = when
        recorder.feed(name, fragment)
    switches = [o for o in recorder.outputs if isinstance(o, Switched)]
    assert [s.source for s in switches] == ["a", "b", "a", "b", "a", "b", "a"]
    # Every switch between a and b changes the decoder configuration: a re-init each time.
    assert all(s.reinit for s in switches)
    reinits = [o for o in recorder.outputs if isinstance(o, Reinit)]
    assert len(reinits) == len(switches)
    # The first fragment after every switch is a keyframe of the new source.
    for index, item in enumerate(recorder.outputs):
        if isinstance(item, Switched):
            following = next(o for o in recorder.outputs[index:] if isinstance(o, Emit))
            assert following.source == item.source and following.fragment.keyframe
    # Sequence numbers continue 1, 2, 3, ... across every switch.
    assert [e.fragment.sequence_number for e in recorder.emits()] == list(range(1, len(recorder.emits()) + 1))
    check_program(recorder, tmp_path)


def test_a_pending_take_never_blanks_the_program() -> None:
    recorder = Recorder()
    for name in ("a", "b"):
        recorder.take(recorder.switcher.source_init(name, source(name)[0]), name)
    recorder.take(recorder.switcher.request("a"), "a")
    sources = []
    for at, name, fragment in timeline(["a", "b"], 6.0):
        if at >= 0.5 and recorder.switcher.current == "a" and recorder.switcher.pending is None:
            recorder.take(recorder.switcher.request("b"), "b")  # b's next keyframe is at 2 s
        before = len(recorder.emits())
        recorder.feed(name, fragment)
        sources += [e.source for e in recorder.emits()[before:]]
    # a keeps the program until b's keyframe at 2.0 s (a's fragment at 2.0 arrives first);
    # no fragment is lost in between.
    a_count = sources.index("b")
    assert a_count == sum(1 for at, name, _ in timeline(["a"], 2.01))
    assert set(sources[a_count:]) == {"b"}


def test_the_same_decoder_configuration_needs_no_reinit(tmp_path: Path) -> None:
    recorder = Recorder()
    for name in ("a", "a2"):
        recorder.take(recorder.switcher.source_init(name, source(name)[0]), name)
    recorder.take(recorder.switcher.request("a"), "a")
    for at, name, fragment in timeline(["a", "a2"], 6.0):
        if at == 3.0 and name == "a":
            recorder.take(recorder.switcher.request("a2"), "a2")
        recorder.feed(name, fragment)
    switches = [o for o in recorder.outputs if isinstance(o, Switched)]
    assert [(s.source, s.reinit) for s in switches] == [("a", True), ("a2", False)]
    assert sum(isinstance(o, Reinit) for o in recorder.outputs) == 1
    check_program(recorder, tmp_path)


def test_cached_cut_switches_at_once_from_the_cached_gop(tmp_path: Path) -> None:
    recorder = Recorder()
    for name in ("a", "b"):
        recorder.take(recorder.switcher.source_init(name, source(name)[0]), name)
    recorder.take(recorder.switcher.request("a"), "a")
    b_gop: list[MediaFragment] = []
    took = False
    for at, name, fragment in timeline(["a", "b"], 6.0):
        if name == "b":
            b_gop = [fragment] if fragment.keyframe else [*b_gop, fragment]
        if at >= 2.6 and not took and name == "a":
            took = True
            count = len(recorder.outputs)
            items = recorder.switcher.request("b", cut=Cut.CACHED, cached=b_gop)
            recorder.outputs += items
            recorder.origins += [("b", f) for f in b_gop]
            # At once: the switch, a re-init and the whole cached GOP, no keyframe wait.
            assert isinstance(items[0], Reinit) and isinstance(items[1], Switched)
            assert [e.fragment.data[-64:] for e in items[2:] if isinstance(e, Emit)] == [
                f.data[-64:] for f in b_gop
            ]
            assert len(recorder.outputs) - count == 2 + len(b_gop)
            continue
        recorder.feed(name, fragment)
    check_program(recorder, tmp_path)


def test_slate_in_and_out(tmp_path: Path) -> None:
    """The slate is one more source; it loops by its own timeline outside the switcher."""
    from server.media.timeline import loop_fragments

    recorder = Recorder()
    slate_init, slate_fragments = source("slate")
    recorder.take(recorder.switcher.source_init("slate", slate_init), "slate")
    recorder.take(recorder.switcher.source_init("a", source("a")[0]), "a")
    recorder.take(recorder.switcher.request("slate"), "slate")
    looped = loop_fragments(slate_init, slate_fragments, passes=3)
    for fragment in looped:
        recorder.take(recorder.switcher.feed("slate", fragment), "slate", fragment)
    recorder.take(recorder.switcher.request("a"), "a")
    for _, name, fragment in timeline(["a"], 4.0):
        recorder.feed(name, fragment)
    assert [s.source for s in recorder.outputs if isinstance(s, Switched)] == ["slate", "a"]
    check_program(recorder, tmp_path)


def test_an_encoder_restart_on_air_reinits_and_waits_for_a_keyframe() -> None:
    recorder = Recorder()
    init_a = source("a")[0]
    recorder.take(recorder.switcher.source_init("a", init_a), "a")
    recorder.take(recorder.switcher.request("a"), "a")
    fragments = source("a")[1]
    for fragment in fragments[:7]:
        recorder.feed("a", fragment)
    # The publisher restarts with another encoder (b's init) on the same input.
    init_b, b_fragments = source("b")
    items = recorder.switcher.source_init("a", init_b)
    assert [type(i) for i in items] == [Reinit]
    non_key = next(f for f in b_fragments if not f.keyframe)
    assert recorder.switcher.feed("a", non_key) == []  # not decodable without its keyframe
    out = recorder.switcher.feed("a", b_fragments[0])
    assert len(out) == 1 and isinstance(out[0], Emit) and out[0].fragment.keyframe


def test_a_source_that_goes_away_cannot_be_switched_to() -> None:
    switcher = Switcher()
    init, fragments = source("a")
    switcher.source_init("a", init)
    switcher.request("a")
    switcher.forget("a")
    assert switcher.pending is None
    assert switcher.feed("a", fragments[0]) == []
    assert switcher.current is None


@pytest.mark.parametrize("name", ["a", "b"])
def test_requesting_the_source_on_air_cancels_a_pending_switch(name: str) -> None:
    switcher = Switcher()
    for each in ("a", "b"):
        switcher.source_init(each, source(each)[0])
    switcher.request(name)
    switcher.feed(name, source(name)[1][0])
    other = "b" if name == "a" else "a"
    switcher.request(other)
    assert switcher.pending == other
    switcher.request(name)
    assert switcher.pending is None and switcher.current == name


def _made_by_one(count: int) -> tuple[InitSegment, tuple[MediaFragment, ...], list[Emit]]:
    """Source "a" on air from its first keyframe: what one switcher made of ``count`` fragments."""
    init, fragments = source("a")
    first = Switcher()
    first.source_init("a", init)
    first.request("a")
    emits = [o for f in fragments[:count] for o in first.feed("a", f) if isinstance(o, Emit)]
    return init, fragments, emits


def test_resume_continues_another_switchers_source_byte_for_byte() -> None:
    """A next leader's switcher, given the last fragment out and the offsets it was placed
    with, continues the same source exactly: the fragments it had not sent, byte for byte
    what the first one would have sent, and nothing twice (the cache it is fed starts earlier)."""
    init, fragments, emits = _made_by_one(30)
    assert len(emits) == 30 and emits[12].offsets
    second = Switcher()
    second.source_init("a", init)
    second.resume(init, emits[11].fragment, source="a", offsets=emits[11].offsets)
    assert second.current == "a" and second.pending is None
    assert fragments[10].keyframe and not any(f.keyframe for f in fragments[11:15])
    out = [o for f in fragments[10:30] for o in second.feed("a", f)]  # its cache: the GOP so far
    assert all(isinstance(o, Emit) for o in out)  # no switch, no re-init
    assert [o.fragment.data for o in out if isinstance(o, Emit)] == [e.fragment.data for e in emits[12:30]]


def test_resume_after_a_hole_waits_for_a_keyframe_and_never_goes_back() -> None:
    init, fragments, emits = _made_by_one(12)
    second = Switcher()
    second.source_init("a", init)
    second.resume(init, emits[11].fragment, source="a", offsets=emits[11].offsets)
    # fragments 12..14 were lost: 15 onwards would leave a hole, so nothing until a keyframe
    later = fragments[15:40]
    out = [o for f in later for o in second.feed("a", f) if isinstance(o, Emit)]
    first_keyframe = next(i for i, f in enumerate(later) if f.keyframe)
    assert len(out) == len(later) - first_keyframe and out[0].fragment.keyframe
    end = emits[11].fragment.tracks[0]
    resumed = out[0].fragment.tracks[0]
    # spliced at the end: not back, and at most one frame on (audio may have ended later)
    assert (
        0
        <= resumed.base_decode_time - (end.base_decode_time + end.duration)
        <= end.duration // end.sample_count
    )
    assert out[0].fragment.sequence_number == emits[11].fragment.sequence_number + 1


def test_resume_from_a_lagging_copy_splices_at_its_second_keyframe_behind() -> None:
    """Fed from two GOPs before the last fragment out (a copy of the input that lags), the
    switcher does not wait for it to catch up: at the second keyframe still behind it
    splices, repeating a moment of picture on a timeline that still only goes forward."""
    init, fragments, emits = _made_by_one(20)
    second = Switcher()
    second.source_init("a", init)
    second.resume(init, emits[19].fragment, source="a", offsets=emits[19].offsets)
    out = [o for f in fragments[0:12] for o in second.feed("a", f) if isinstance(o, Emit)]
    assert len(out) == 7 and out[0].fragment.keyframe  # from fragment 5, the second keyframe
    end = emits[19].fragment.tracks[0]
    assert out[0].fragment.tracks[0].base_decode_time >= end.base_decode_time + end.duration
