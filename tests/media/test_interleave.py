"""TS audio trailing its video put back in time order before the remux."""

from __future__ import annotations

from server.media.flv import FlvTag, TagKind
from server.media.interleave import Interleaver

BOTH = frozenset({TagKind.VIDEO, TagKind.AUDIO})


def video(ms: int, header: bool = False) -> FlvTag:
    return FlvTag(TagKind.VIDEO, ms, bytes([0x17, 0 if header else 1, 0, 0, 0]))


def audio(ms: int, header: bool = False) -> FlvTag:
    return FlvTag(TagKind.AUDIO, ms, bytes([0xAF, 0 if header else 1]))


def run(interleaver: Interleaver, tags: list[FlvTag]) -> list[FlvTag]:
    out = [t for tag in tags for t in interleaver.push(tag)]
    return out + interleaver.end()


def test_audio_half_a_second_late_comes_out_in_time_order() -> None:
    interleaver = Interleaver()
    interleaver.expect(BOTH)
    sent = [
        video(0, True),
        *[video(40 * n) for n in range(15)],
        audio(0, True),
        *[audio(21 * n) for n in range(30)],
    ]
    out = run(interleaver, sent)
    assert sorted(out, key=id) == sorted(sent, key=id)  # nothing lost or doubled
    times = [t.timestamp for t in out]
    assert times == sorted(times)
    assert out[0] == video(0, True) and out[1] == audio(0, True)  # configurations before frames


def test_nothing_waits_for_a_track_the_program_does_not_have() -> None:
    interleaver = Interleaver()
    interleaver.expect(frozenset({TagKind.VIDEO}))
    assert interleaver.push(video(0)) == [video(0)]


def test_a_silent_track_holds_the_other_back_at_most_max_skew() -> None:
    interleaver = Interleaver(max_skew_ms=500)
    interleaver.expect(BOTH)
    released = [t for n in range(20) for t in interleaver.push(video(40 * n))]
    # Up to 760 ms of video came and no audio: what is 500 ms older than that went alone.
    assert [t.timestamp for t in released] == [40 * n for n in range(7)]
    # Audio resumes: merged again in time order, the rest waits for more audio.
    assert interleaver.push(audio(300)) == [video(280), audio(300)]


def test_script_data_passes_straight_through() -> None:
    interleaver = Interleaver()
    interleaver.expect(BOTH)
    tag = FlvTag(TagKind.SCRIPT, 0, b"\x02")
    assert interleaver.push(tag) == [tag]
