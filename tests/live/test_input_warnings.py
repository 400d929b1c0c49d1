"""What a producer is told to fix at an encoder."""

from __future__ import annotations

from server.live.input_warnings import input_warnings
from server.media.types import InitSegment, Track, TrackKind

VIDEO = Track(1, TrackKind.VIDEO, 90000, "avc1.64001f", width=1280, height=720)
AUDIO = Track(2, TrackKind.AUDIO, 48000, "mp4a.40.2", sample_rate=48000, channels=2)


def codes(init: InitSegment | None, gop: float | None, details: dict[str, object]) -> list[str]:
    return [w["code"] for w in input_warnings(init, gop, details, switch_budget=2.0)]


def test_a_good_encoder_gets_no_warning() -> None:
    assert codes(InitSegment(b"", (VIDEO, AUDIO)), 1.0, {"bframes": False, "warnings": {}}) == []
    assert codes(InitSegment(b"", (VIDEO, AUDIO)), 2.0, {}) == []  # exactly the budget


def test_nothing_is_said_before_the_first_init() -> None:
    assert codes(None, 4.0, {"bframes": True}) == []


def test_each_problem_is_named_with_what_to_do() -> None:
    init = InitSegment(b"", (VIDEO,))
    details = {"bframes": True, "reorder_ms": 80, "warnings": {"audio_gap": 2}}
    found = input_warnings(init, 4.0, details, switch_budget=2.0)
    assert [w["code"] for w in found] == ["keyframe_interval", "bframes", "no_audio", "timestamps"]
    assert "every 4.0 s" in found[0]["message"] and "1 s" in found[0]["message"]
    assert "80 ms" in found[1]["message"]
    assert "audio gap ×2" in found[3]["message"]
    assert codes(InitSegment(b"", (AUDIO,)), None, {}) == ["no_video"]
