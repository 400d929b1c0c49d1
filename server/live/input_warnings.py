"""What a producer should fix at an input's encoder, read from what it sends (pure).

Shown by ``GET /api/v1/inputs`` next to each input, as ``{"code", "message"}`` pairs:

- ``keyframe_interval``: keyframes further apart than the switch budget (the LL-HLS target
  duration, 2 s by default). Takes and failovers cut at keyframes, so they wait up to a
  GOP, and LL-HLS segments grow to a GOP. Encoders should send one every second.
- ``bframes``: B-frames reorder the video, adding their reorder delay (shown) to every
  viewer's latency and to each cut's wait; live encoders should send none.
- ``no_audio`` / ``no_video``: a track is missing (viewers hear nothing, or see the slate's
  picture stand still); usually a muted or unplugged source.
- ``timestamps``: the remux had to repair the encoder's clock (times going back, audio gaps).
"""

from __future__ import annotations

from typing import Any

from server.media.types import InitSegment, TrackKind


def input_warnings(
    init: InitSegment | None, gop_seconds: float | None, details: dict[str, Any], *, switch_budget: float
) -> list[dict[str, str]]:
    """The warnings for an input publishing ``init`` (None: nothing to say yet)."""
    if init is None:
        return []
    out: list[dict[str, str]] = []
    if gop_seconds is not None and gop_seconds > switch_budget + 0.05:
        out.append(
            {
                "code": "keyframe_interval",
                "message": f"keyframes every {gop_seconds:.1f} s: takes wait up to that long and LL-HLS "
                f"segments grow beyond {switch_budget:g} s; set the encoder's keyframe interval to 1 s",
            }
        )
    if details.get("bframes"):
        out.append(
            {
                "code": "bframes",
                "message": f"B-frames add {details.get('reorder_ms', 0)} ms of reorder delay to every "
                "viewer; set B-frames to 0 (or the 'zerolatency' tune)",
            }
        )
    kinds = {track.kind for track in init.tracks}
    if TrackKind.AUDIO not in kinds:
        out.append({"code": "no_audio", "message": "no audio track: viewers hear nothing from this input"})
    if TrackKind.VIDEO not in kinds:
        out.append({"code": "no_video", "message": "no video track: viewers see no picture from this input"})
    repaired = details.get("warnings") or {}
    if repaired:
        what = ", ".join(f"{name.replace('_', ' ')} ×{count}" for name, count in sorted(repaired.items()))
        out.append({"code": "timestamps", "message": f"the encoder's timestamps needed repair: {what}"})
    return out
