"""The pieces an LL-HLS :class:`~server.media.hls.Packager` keeps: parts, segments, and where
a segment started (what a cluster's program entries carry so that every instance's packager
numbers and dates the same segments alike). Sans-I/O values.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Part:
    number: int  # running part number (its URI)
    msn: int  # the segment it belongs to
    index: int  # its place in that segment
    duration: float
    independent: bool
    data: bytes


@dataclass(frozen=True, slots=True)
class SegmentStart:
    """Where a segment started, in another packager of the same program: its numbers, the
    discontinuities before it, the playlist's target duration and GOP then, its date."""

    msn: int
    part: int
    init_number: int
    discontinuities: int
    discontinuity: bool
    target: int
    gop: float
    date: float

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SegmentStart:
        """What :meth:`to_json` gave (KeyError, TypeError or ValueError if it is not that)."""
        return cls(
            msn=int(data["msn"]),
            part=int(data["part"]),
            init_number=int(data["init_number"]),
            discontinuities=int(data["discontinuities"]),
            discontinuity=bool(data["discontinuity"]),
            target=int(data["target"]),
            gop=float(data["gop"]),
            date=float(data["date"]),
        )


@dataclass(slots=True)
class Segment:
    msn: int
    init: int  # the init segment number in force
    discontinuity: bool
    date: float  # program date time of its first part (Unix seconds)
    parts: list[Part] = field(default_factory=list)
    complete: bool = False
    _joined: bytes | None = None  # the complete segment's bytes, joined once

    @property
    def duration(self) -> float:
        return sum(p.duration for p in self.parts)

    def data(self) -> bytes:
        if self._joined is not None:
            return self._joined
        joined = b"".join(p.data for p in self.parts)
        if self.complete:  # every player asks for the same segment: join it once
            self._joined = joined
        return joined
