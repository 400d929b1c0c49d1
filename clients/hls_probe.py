"""What ``forumcast watch --hls`` measures: the sans-I/O core of :func:`clients.watch.watch_hls`.

Two parts, neither of which does I/O or reads a clock:

- **Playlists.** :func:`parse_multivariant` and :func:`parse_media_playlist` read what a
  live Low-Latency HLS stage serves (RFC 8216bis and its LL-HLS tags: ``EXT-X-PART``,
  ``EXT-X-PRELOAD-HINT``, ``EXT-X-SERVER-CONTROL``, ``EXT-X-SKIP`` of a delta update), with
  every URI resolved against the playlist's URL. They are lenient readers for a probe, not
  validators: unknown tags are ignored.
- **The player's logic.** :class:`HlsProbe` is fed every playlist and every downloaded part
  and says what to fetch next (:meth:`HlsProbe.next_fetch`) or, when the playlist holds
  nothing new, what the blocking reload asks for (:meth:`HlsProbe.reload_query`:
  ``_HLS_msn``/``_HLS_part`` of the next part). It starts at the newest independent part
  (the live edge a player can decode from), then takes every part in order, each segment's
  ``EXT-X-MAP`` before its first part when the map changed.

The figures (:class:`HlsReport`):

- **parts**, **segments** (segments received whole, from their first part to their last),
  bytes, seconds of media (the parts' ``DURATION``), time to the first part;
- **switches**: segment boundaries where the program changed, that is with
  ``EXT-X-DISCONTINUITY`` or a new ``EXT-X-MAP`` (a re-init); each is counted once, and
  ``discontinuities`` / ``new_maps`` count the two signs separately;
- **latency** per part: the wall time its last byte arrived minus its program date time
  (the segment's ``EXT-X-PROGRAM-DATE-TIME`` plus the durations of the parts before it in
  the segment). forumcast stamps a segment with the producer reference time (``prft``) of
  its first fragment, so this is glass-to-probe like ``forumcast watch``'s, part duration and
  playlist round trips included, and as good as the two machines' clocks agree. Parts that
  were already listed when the probe joined (the backlog it starts from) are not counted;
  the first one's age is reported once as the **join age**;
- the same from each part's own ``prft`` (**prft latency**, what ``forumcast watch``
  measures over the WebSocket), and how far the program date time is **ahead** of it
  (median of part date minus ``prft``): about zero when the dates say when the media was
  made; a player that finds its latency from the dates is off by that much;
- **drops**: gaps in the fragments' ``mfhd`` sequence numbers (a stage program numbers its
  fragments consecutively, and every part is one fragment), **resyncs** (the probe fell
  out of the playlist's window and started again at the live edge), playlist reloads and
  blocking reloads that timed out (503).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urljoin

from clients.probe import MAX_BOX_SIZE, JsonReport, close_report, format_ms, parse_media, percentile
from server.media.fmp4 import Fmp4Parser
from server.media.types import InitSegment, MediaFragment

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


# --- playlists ------------------------------------------------------------------------------


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


# --- the probe ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fetch:
    """One download the probe wants: a part (``index`` in segment ``msn``) or, where the
    playlist lists no parts, a whole segment (``index`` None)."""

    uri: str
    msn: int
    index: int | None
    duration: float
    independent: bool
    date: float | None  # program date time of its first sample (Unix seconds)
    map_uri: str | None  # fetch this init segment first (a new EXT-X-MAP), else None
    first: bool  # the first of its segment


@dataclass(slots=True)
class Switch:
    msn: int  # the first segment of the new program source
    discontinuity: bool
    new_map: bool
    at: float  # seconds since the probe started, when its first part arrived


@dataclass(slots=True)
class HlsReport(JsonReport):
    url: str = ""
    variant: str | None = None  # the variant followed: bandwidth, codecs, resolution
    mime: str | None = None  # of the last init segment
    target_duration: float | None = None
    part_target: float | None = None
    ttff_ms: float | None = None  # time to the first part's last byte
    parts: int = 0
    segments: int = 0  # segments received whole, first part to last
    full_segments: int = 0  # segments fetched as one (the playlist listed no parts for them)
    switches: int = 0
    discontinuities: int = 0
    new_maps: int = 0
    switch_log: list[dict[str, Any]] = field(default_factory=list)
    latency_p50_ms: float | None = None  # from program date time
    latency_p99_ms: float | None = None
    latency_samples: int = 0
    join_age_ms: float | None = None
    prft_latency_p50_ms: float | None = None  # from the parts' own prft
    prft_latency_p99_ms: float | None = None
    pdt_ahead_ms: float | None = None  # median of (part's program date time - its prft)
    bytes: int = 0
    init_offsets: list[int] = field(default_factory=list)  # where each init starts in the recording
    media_seconds: float = 0.0
    drops: int = 0
    resyncs: int = 0
    reloads: int = 0  # media playlist requests
    reload_timeouts: int = 0  # blocking reloads answered 503
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    closed: str = ""
    refused: bool = False

    def describe(self) -> str:
        """The human summary ``forumcast watch --hls`` prints."""
        ms = format_ms
        lines = [
            f"watched {self.url} (HLS) for {self.seconds:.1f} s ({self.closed or 'done'})",
            f"  variant           {self.variant or '-'}",
            f"  codecs            {self.mime or '-'}",
            f"  targets           segment {self.target_duration or '-'} s, part {self.part_target or '-'} s",
            f"  first part        {ms(self.ttff_ms)}",
            f"  latency p50 / p99 {ms(self.latency_p50_ms)} / {ms(self.latency_p99_ms)}"
            f" ({self.latency_samples} parts after joining, from program date time)",
            f"  join age          {ms(self.join_age_ms)}",
            f"  prft latency      {ms(self.prft_latency_p50_ms)} / {ms(self.prft_latency_p99_ms)}"
            f" (dates ahead of prft by {ms(self.pdt_ahead_ms)})",
            f"  parts             {self.parts}"
            f" ({self.media_seconds:.1f} s of media, {self.bytes / 1e6:.2f} MB)",
            f"  segments          {self.segments} whole"
            + (f", {self.full_segments} fetched as segments" if self.full_segments else ""),
            f"  switches          {self.switches}"
            f" ({self.discontinuities} discontinuities, {self.new_maps} new maps)",
            f"  drops             {self.drops}" + (f", {self.resyncs} resyncs" if self.resyncs else ""),
            f"  playlist reloads  {self.reloads} ({self.reload_timeouts} timed out)",
        ]
        lines += [f"  error             {error}" for error in self.errors]
        return "\n".join(lines)


class HlsProbe:
    """Follows one stage's media playlist; times are passed in, never read here."""

    def __init__(self, url: str = "", *, started: float) -> None:
        self.started = started  # monotonic time the first request began
        self._report = HlsReport(url=url)
        self._segments: dict[int, PlaylistSegment] = {}  # of the latest playlist, by msn
        self._first_msn = 0
        self._newest_msn = -1
        self.position: tuple[int, int] | None = None  # (msn, part index) of the next part
        self._map: str | None = None  # the map of the last media fetched
        self._last_msn: int | None = None  # segment of the last media fetched
        self._whole: int | None = None  # the segment whose parts all arrived so far, from its first
        self._backlog: set[tuple[int, int]] = set()  # parts listed when the probe joined
        self._latencies: list[float] = []
        self._prft_latencies: list[float] = []
        self._ahead: list[float] = []
        self._parser: Fmp4Parser | None = None
        self._last_sequence: int | None = None
        self._skippable = False
        self.playlist: MediaPlaylist | None = None

    # --- input ----------------------------------------------------------------------------

    def set_variant(self, variant: Variant | None) -> None:
        if variant is not None:
            rate = f"{variant.bandwidth} bit/s" if variant.bandwidth else None
            bits = [rate, variant.codecs, variant.resolution]
            self._report.variant = ", ".join(b for b in bits if b)

    def on_playlist(self, playlist: MediaPlaylist) -> None:
        """A media playlist (full or delta) just received."""
        report = self._report
        report.reloads += 1
        report.target_duration = playlist.target_duration
        report.part_target = playlist.part_target
        self.playlist = playlist
        self._skippable = playlist.can_skip_until is not None
        known = self._segments
        fresh: dict[int, PlaylistSegment] = {}
        previous: PlaylistSegment | None = None
        for segment in playlist.segments:
            # A delta update names no EXT-X-MAP before its first listed segment: the map in
            # force is the one the skipped segment before it had.
            if segment.map_uri is None:
                before = previous or known.get(segment.msn - 1) or known.get(segment.msn)
                segment.map_uri = before.map_uri if before is not None else None
            fresh[segment.msn] = segment
            previous = segment
        self._segments = fresh
        if playlist.segments:
            self._first_msn = playlist.segments[0].msn
            self._newest_msn = playlist.segments[-1].msn
        if self.position is None:
            self._join()

    def _join(self) -> None:
        """Start at the live edge: the newest independent part (or complete segment)."""
        segments = [self._segments[m] for m in sorted(self._segments)]
        for segment in reversed(segments):
            starts = [i for i, p in enumerate(segment.parts) if p.independent]
            if starts:
                self.position = (segment.msn, starts[-1])
                break
            if segment.complete and not segment.parts:
                self.position = (segment.msn, 0)
                break
        else:
            return
        self._backlog = {(s.msn, i) for s in segments for i in range(max(1, len(s.parts)))}
        self._whole = None

    def next_fetch(self) -> Fetch | None:
        """The next media to download, in order; ``None``: reload the playlist first."""
        while self.position is not None:
            msn, index = self.position
            segment = self._segments.get(msn)
            if segment is None:
                if msn < self._first_msn:  # it left the window before we got to it
                    self._resync(f"segment {msn} left the playlist before it was fetched")
                    continue
                return None
            if index < len(segment.parts):
                part = segment.parts[index]
                offset = sum(p.duration for p in segment.parts[:index])
                date = segment.date + offset if segment.date is not None else None
                return self._fetch(segment, part.uri, index, part.duration, part.independent, date)
            if not segment.parts and segment.complete and index == 0:
                duration = segment.duration or 0.0
                return self._fetch(segment, segment.uri or "", None, duration, True, segment.date)
            if segment.complete:
                if self._whole == msn and index == len(segment.parts):
                    self._report.segments += 1  # every part of it came, from its first on
                self._whole = None
                self.position = (msn + 1, 0)
                continue
            return None
        return None

    def _fetch(
        self,
        segment: PlaylistSegment,
        uri: str,
        index: int | None,
        duration: float,
        independent: bool,
        date: float | None,
    ) -> Fetch:
        new_map = segment.map_uri if segment.map_uri != self._map else None
        first = not index
        return Fetch(uri, segment.msn, index, duration, independent, date, new_map, first)

    def _resync(self, why: str) -> None:
        self._report.resyncs += 1
        self._report.errors.append(why)
        self._whole = None
        self.position = None
        self._join()

    def reload_query(self) -> dict[str, str]:
        """The blocking reload for the next part (``_HLS_msn``, ``_HLS_part``, ``_HLS_skip``)."""
        query: dict[str, str] = {}
        playlist = self.playlist
        if self.position is not None and playlist is not None and playlist.can_block_reload:
            msn, index = self.position
            query["_HLS_msn"] = str(msn)
            if playlist.part_target is not None:
                query["_HLS_part"] = str(index)
        if self._skippable:
            query["_HLS_skip"] = "YES"
        return query

    def on_map(self, data: bytes) -> None:
        """The init segment of a new ``EXT-X-MAP``, fetched before the first part under it."""
        report = self._report
        report.init_offsets.append(report.bytes)  # the recording holds what the report counts
        report.bytes += len(data)
        self._parser = Fmp4Parser(max_box_size=MAX_BOX_SIZE)
        self._feed(data)

    def on_media(self, fetch: Fetch, data: bytes, *, mono: float, wall: float) -> None:
        """The part (or segment) ``fetch`` arrived whole, its last byte at ``mono`` / ``wall``."""
        report = self._report
        if report.parts == 0 and report.full_segments == 0:
            report.ttff_ms = (mono - self.started) * 1000
            if not fetch.independent:
                report.errors.append(f"the first part (segment {fetch.msn}) is not independent")
        if fetch.first and self._last_msn is not None and fetch.msn != self._last_msn:
            segment = self._segments.get(fetch.msn)
            discontinuity = segment is not None and segment.discontinuity
            new_map = fetch.map_uri is not None
            if discontinuity or new_map:
                report.switches += 1
                report.discontinuities += discontinuity
                report.new_maps += new_map
                at = round(mono - self.started, 3)
                report.switch_log.append(asdict(Switch(fetch.msn, discontinuity, new_map, at)))
                if not fetch.independent:
                    report.errors.append(f"segment {fetch.msn} after a switch does not start independent")
        if fetch.map_uri is not None:
            self._map = fetch.map_uri
        report.bytes += len(data)
        report.media_seconds += fetch.duration
        if fetch.index is None:
            report.full_segments += 1
        else:
            report.parts += 1
            if fetch.index == 0:
                self._whole = fetch.msn
        self._last_msn = fetch.msn
        live = (fetch.msn, fetch.index or 0) not in self._backlog
        if fetch.date is not None:
            latency = (wall - fetch.date) * 1000
            if report.join_age_ms is None:
                report.join_age_ms = latency
            if live:
                self._latencies.append(latency)
        for fragment in self._feed(data)[:1]:  # a part is one fragment; a segment's first
            if fragment.producer_time is None:
                continue
            if live:
                self._prft_latencies.append((wall - fragment.producer_time) * 1000)
            if fetch.date is not None:
                self._ahead.append((fetch.date - fragment.producer_time) * 1000)
        self.position = (fetch.msn + 1, 0) if fetch.index is None else (fetch.msn, fetch.index + 1)

    def on_missing(self, fetch: Fetch, status: int) -> None:
        """``fetch`` was answered ``status`` (gone): start again at the live edge."""
        self._resync(f"HTTP {status} for {fetch.uri.split('?', 1)[0]}")

    def error(self, text: str) -> None:
        self._report.errors.append(text)

    def timed_out(self) -> None:
        self._report.reload_timeouts += 1

    def _feed(self, data: bytes) -> list[MediaFragment]:
        """Check the media (an init segment, then fragments in sequence); its fragments."""
        if self._parser is None:
            self._report.errors.append("media before any init segment")
            self._parser = Fmp4Parser(max_box_size=MAX_BOX_SIZE)
        items = parse_media(self._parser, data, self._report.errors)
        if items is None:
            self._parser = None
            return []
        fragments: list[MediaFragment] = []
        for item in items:
            if isinstance(item, InitSegment):
                self._report.mime = item.mime
                continue
            last = self._last_sequence
            if last is not None and item.sequence_number > last + 1:
                self._report.drops += item.sequence_number - last - 1
            self._last_sequence = item.sequence_number
            fragments.append(item)
        return fragments

    # --- result ---------------------------------------------------------------------------

    def finish(self, *, now: float, closed: str = "") -> HlsReport:
        """The report as of ``now`` (monotonic)."""
        report = self._report
        close_report(report, self._latencies, started=self.started, now=now, closed=closed)
        report.prft_latency_p50_ms = percentile(self._prft_latencies, 0.50)
        report.prft_latency_p99_ms = percentile(self._prft_latencies, 0.99)
        report.pdt_ahead_ms = percentile(self._ahead, 0.50)
        return report
