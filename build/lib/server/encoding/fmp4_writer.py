"""The fragmented-MP4 muxer every encoder of ours writes through, in memory.

PyAV's mp4 muxer with ``frag_keyframe+empty_moov+default_base_moof+skip_trailer`` writes what
our inputs take (:mod:`server.media.fmp4`): ``ftyp`` + ``moov`` (with ``mvex``, no samples)
out with the first packet, then one ``moof`` + ``mdat`` per fragment, cut at every keyframe
and after ``fragment_ms`` of media, never seeking back, so a byte sink is enough.
"""

from __future__ import annotations

import av
from av.container import OutputContainer

MOVFLAGS = "frag_keyframe+empty_moov+default_base_moof+skip_trailer"


class ByteSink:
    """The muxer's file: collects what it writes until the caller takes it."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data, self.parts = b"".join(self.parts), []
        return data


def open_fmp4(sink: ByteSink, *, fragment_ms: int, prft: bool = False) -> OutputContainer:
    """An mp4 muxer writing fragments of at most ``fragment_ms`` into ``sink``.

    With ``prft`` every fragment starts with a ``prft`` box carrying the wall clock at which
    its first frame entered the encoder (the encoders must export ``prft`` side data).
    """
    options = {"movflags": MOVFLAGS, "frag_duration": str(fragment_ms * 1000)}
    if prft:
        options["write_prft"] = "wallclock"
    return av.open(sink, "w", format="mp4", options=options)
