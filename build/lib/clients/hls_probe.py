"""The player's logic of ``forumcast watch --hls``: the sans-I/O core of :func:`clients.watch.watch_hls`.

:class:`HlsProbe` does no I/O and reads no clock. It is fed every playlist (read by
:mod:`clients.hls_playlist_reader`) and every downloaded part and says what to fetch next
(:meth:`HlsProbe.next_fetch`) or, when the playlist holds nothing new, what the blocking
reload asks for (:meth:`HlsProbe.reload_query`: ``_HLS_msn``/``_HLS_part`` of the next part).
It starts at the newest independent part (the live edge a player can decode from), then
takes every part in order, each segment's ``EXT-X-MAP`` before its first part when the map
changed. What it measures on the way is an :class:`~clients.hls_report.HlsReport`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from clients.hls_playlist_reader import MediaPlaylist, PlaylistSegment, Variant
from clients.hls_report import HlsReport, Switch
from clients.probe import MAX_BOX_SIZE, close_report, parse_media, percentile
from server.media.fmp4 import Fmp4Parser
from server.media.types import InitSegment, MediaFragment


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
