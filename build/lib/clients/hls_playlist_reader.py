"""The playlists ``forumcast watch --hls`` reads: a lenient reader of live Low-Latency HLS.

:func:`parse_multivariant` and :func:`parse_media_playlist` read what a live Low-Latency HLS
stage serves (RFC 8216bis and its LL-HLS tags: ``EXT-X-PART``, ``EXT-X-PRELOAD-HINT``,
``EXT-X-SERVER-CONTROL``, ``EXT-X-SKIP`` of a delta update), with every URI resolved against
the playlist's URL. They are lenient readers for a probe, not validators (the strict one the
tests check the server with is ``tests/support/hls_playlist.py``): unknown tags are ignored. No I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urljoin

_ATTRIBUTE = re.compile(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)')


class PlaylistError(ValueError):
    """Not a playlist this probe can follow."""


def attributes(text: str) -> dict[str, str]:
    """An attribute list (``KEY=VALUE,KEY="quoted, string"``), quotes removed."""
    return {key: value[1:-1] if value.startswith('"') else value for key, value in _ATTRIBUTE.findall(text)}


def _tag(line: str) -> tuple[str, str]:
    name, _, value = line.partition(":")
    return name, value


def _date(text: str) -> float | None:
    try:
        return datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Variant:
    uri: str
    bandwidth: int | None = None
    codecs: str | None = None
    resolution: str | None = None


def is_media_playlist(text: str) -> bool:
    return "#EXT-X-TARGETDURATION" in text or "#EXTINF" in text


def parse_multivariant(text: str, url: str) -> list[Variant]:
    """The variant streams of a multivariant playlist at ``url``, in their order."""
    lines = [line.strip() for line in text.splitlines()]
    if not lines or lines[0] != "#EXTM3U":
        raise PlaylistError("not a playlist (no #EXTM3U)")
    variants: list[Variant] = []
    pending: dict[str, str] | None = None
    for line in lines[1:]:
        if line.startswith("#EXT-X-STREAM-INF:"):
            pending = attributes(_tag(line)[1])
        elif line and not line.startswith("#") and pending is not None:
            bandwidth = pending.get("BANDWIDTH", "")
            variants.append(
                Variant(
                    urljoin(url, line),
                    int(bandwidth) if bandwidth.isdigit() else None,
                    pending.get("CODECS"),
                    pending.get("RESOLUTION"),
                )
            )
            pending = None
    return variants


@dataclass(frozen=True, slots=True)
class PartRef:
    uri: str
    duration: float
    independent: bool


@dataclass(slots=True)
class PlaylistSegment:
    msn: int
    parts: list[PartRef] = field(default_factory=list)
    uri: str | None = None  # None while the segment is being made (only its parts so far)
    duration: float | None = None  # EXTINF
    discontinuity: bool = False
    map_uri: str | None = None  # the EXT-X-MAP in force (None: before any in a delta update)
    date: float | None = None  # EXT-X-PROGRAM-DATE-TIME, Unix seconds

    @property
    def complete(self) -> bool:
        return self.uri is not None


@dataclass(slots=True)
class MediaPlaylist:
    target_duration: float = 0.0
    part_target: float | None = None
    media_sequence: int = 0
    discontinuity_sequence: int = 0
    skipped: int = 0  # EXT-X-SKIP:SKIPPED-SEGMENTS of a delta update
    can_block_reload: bool = False
    can_skip_until: float | None = None
    part_hold_back: float | None = None
    segments: list[PlaylistSegment] = field(default_factory=list)
    preload_hint: str | None = None
    ended: bool = False

    @property
    def first_msn(self) -> int:
        return self.media_sequence + self.skipped


def parse_media_playlist(text: str, url: str) -> MediaPlaylist:
    """A media playlist at ``url``; segments numbered from ``EXT-X-MEDIA-SEQUENCE`` (plus any
    skipped by a delta update)."""
    lines = [line.strip() for line in text.splitlines()]
    if not lines or lines[0] != "#EXTM3U":
        raise PlaylistError("not a playlist (no #EXTM3U)")
    playlist = MediaPlaylist()
    current: PlaylistSegment | None = None
    map_uri: str | None = None
    msn: int | None = None

    def segment() -> PlaylistSegment:
        nonlocal current, msn
        if current is None:
            if msn is None:
                msn = playlist.first_msn
            current = PlaylistSegment(msn, map_uri=map_uri)
        return current

    for line in lines[1:]:
        if not line:
            continue
        if not line.startswith("#"):  # a segment URI ends the segment
            done = segment()
            done.uri = urljoin(url, line)
            playlist.segments.append(done)
            current = None
            msn = done.msn + 1
            continue
        name, value = _tag(line)
        if name == "#EXT-X-TARGETDURATION":
            playlist.target_duration = float(value)
        elif name == "#EXT-X-MEDIA-SEQUENCE":
            playlist.media_sequence = int(value)
        elif name == "#EXT-X-DISCONTINUITY-SEQUENCE":
            playlist.discontinuity_sequence = int(value)
        elif name == "#EXT-X-PART-INF":
            target = attributes(value).get("PART-TARGET")
            playlist.part_target = float(target) if target else None
        elif name == "#EXT-X-SERVER-CONTROL":
            control = attributes(value)
            playlist.can_block_reload = control.get("CAN-BLOCK-RELOAD") == "YES"
            if "CAN-SKIP-UNTIL" in control:
                playlist.can_skip_until = float(control["CAN-SKIP-UNTIL"])
            if "PART-HOLD-BACK" in control:
                playlist.part_hold_back = float(control["PART-HOLD-BACK"])
        elif name == "#EXT-X-SKIP":
            playlist.skipped = int(attributes(value).get("SKIPPED-SEGMENTS", "0"))
        elif name == "#EXT-X-MAP":
            map_uri = urljoin(url, attributes(value)["URI"])
            if current is not None:
                current.map_uri = map_uri
        elif name == "#EXT-X-DISCONTINUITY":
            segment().discontinuity = True
        elif name == "#EXT-X-PROGRAM-DATE-TIME":
            segment().date = _date(value)
        elif name == "#EXT-X-PART":
            part = attributes(value)
            segment().parts.append(
                PartRef(urljoin(url, part["URI"]), float(part["DURATION"]), part.get("INDEPENDENT") == "YES")
            )
        elif name == "#EXTINF":
            segment().duration = float(value.split(",", 1)[0])
        elif name == "#EXT-X-PRELOAD-HINT":
            hint = attributes(value)
            if hint.get("TYPE") == "PART" and "URI" in hint:
                playlist.preload_hint = urljoin(url, hint["URI"])
        elif name == "#EXT-X-ENDLIST":
            playlist.ended = True
    if current is not None:  # the segment being made: parts, no URI yet
        playlist.segments.append(current)
    return playlist
