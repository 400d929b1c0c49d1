"""What ``forumcast watch`` measures: the sans-I/O core of :mod:`clients.watch`.

:class:`WatchProbe` is fed every message a viewer receives, with the times it arrived, and
keeps the figures that say whether a stage plays well:

- **time to first fragment** — from the start of the connection attempt to the first media
  fragment (the first thing a player can show);
- **latency** per fragment — arrival wall time minus the fragment's producer reference time
  (``prft``, the publisher's wall clock when its first frame was encoded). It includes the
  fragment's own duration, the network both ways and the server; it is only as good as the
  agreement of the two machines' clocks (NTP: a few milliseconds). The percentiles count
  fragments from the second keyframe on: the first GOP comes from the server's GOP cache in
  one burst at join, as old as the cache (up to a GOP), which says nothing about the
  pipeline — its age is reported once, as the **join age** of the first fragment;
- **drops** — gaps in the ``mfhd`` sequence numbers (the server numbers a program's fragments
  consecutively, so every missing number is a fragment this viewer did not get);
- fragments, bytes, re-inits, whether the first fragment started with a keyframe, errors.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from server.errors import MediaError
from server.media.fmp4 import Fmp4Parser
from server.media.types import InitSegment, MediaFragment

MAX_BOX_SIZE = 64 * 2**20


def percentile(values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile (``fraction`` in [0, 1]) of ``values``; ``None`` when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def format_ms(value: float | None) -> str:
    """A duration in milliseconds for a report's summary (``-`` when unknown)."""
    return "-" if value is None else f"{value:.0f} ms"


def parse_media(
    parser: Fmp4Parser, data: bytes, errors: list[str]
) -> list[InitSegment | MediaFragment] | None:
    """What ``parser`` completes from ``data``; ``None``, with the error noted in ``errors``,
    when it is not valid media (the parser is then of no further use)."""
    try:
        return parser.feed(data)
    except MediaError as exc:
        errors.append(f"{exc.code}: {exc.message}")
        return None


class LatencyReport(Protocol):
    """The figures every probe's report closes with."""

    seconds: float
    closed: str
    latency_samples: int
    latency_p50_ms: float | None
    latency_p99_ms: float | None


def close_report(
    report: LatencyReport, latencies: list[float], *, started: float, now: float, closed: str
) -> None:
    """Fill in ``report``'s duration, why it ended and its latency percentiles."""
    report.seconds = now - started
    report.closed = closed or report.closed
    report.latency_samples = len(latencies)
    report.latency_p50_ms = percentile(latencies, 0.50)
    report.latency_p99_ms = percentile(latencies, 0.99)


@dataclass(slots=True)
class JsonReport:
    """A report dataclass as a dict and as indented JSON."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2)


@dataclass(slots=True)
class WatchReport(JsonReport):
    url: str = ""  # the last server URL watched (without its token)
    connections: int = 0  # connections that opened (more than one when the watcher reconnected)
    ttff_ms: float | None = None
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    latency_samples: int = 0
    join_age_ms: float | None = None  # how old the first fragment was (the GOP cache's age)
    fragments: int = 0
    drops: int = 0
    reinits: int = 0
    init_offsets: list[int] = field(default_factory=list)  # where each init starts in the recording
    bytes: int = 0
    media_seconds: float = 0.0  # video (or audio-only) time received
    seconds: float = 0.0  # how long the viewer was connected
    first_keyframe: bool | None = None  # the first fragment started with a keyframe
    mime: str | None = None
    viewers: int | None = None  # the last count the server sent
    errors: list[str] = field(default_factory=list)
    closed: str = ""  # why watching ended
    refused: bool = False  # the server refused the connection (or it could not be made)

    def describe(self) -> str:
        """The human summary ``forumcast watch`` prints."""
        ms = format_ms
        lines = [
            f"watched {self.url} for {self.seconds:.1f} s ({self.closed or 'done'})",
            f"  codecs            {self.mime or '-'}",
            f"  first fragment    {ms(self.ttff_ms)}"
            + ("" if self.first_keyframe is not False else "  (NOT a keyframe: the player must wait)"),
            f"  latency p50 / p99 {ms(self.latency_p50_ms)} / {ms(self.latency_p99_ms)}"
            f" ({self.latency_samples} fragments after the first GOP)",
            f"  join age          {ms(self.join_age_ms)}",
            f"  fragments         {self.fragments}"
            f" ({self.media_seconds:.1f} s of media, {self.bytes / 1e6:.2f} MB)",
            f"  drops             {self.drops}",
            f"  re-inits          {self.reinits}"
            + (f" (init segments at bytes {self.init_offsets})" if self.reinits else ""),
        ]
        if self.viewers is not None:
            lines.append(f"  viewers           {self.viewers}")
        lines += [f"  error             {error}" for error in self.errors]
        return "\n".join(lines)


class WatchProbe:
    """Measures one viewer connection; times are passed in, never read here."""

    def __init__(self, url: str = "", *, started: float) -> None:
        self.started = started  # monotonic time the connection attempt began
        self.init: InitSegment | None = None
        self._report = WatchReport(url=url)
        self._latencies: list[float] = []
        self._last_sequence: int | None = None
        self._expect_init = False
        self._parser: Fmp4Parser | None = None
        self._inits = 0
        self._live = False  # past the first GOP (the join burst)

    @property
    def fragments(self) -> int:
        """Media fragments received so far, over every connection."""
        return self._report.fragments

    def connected(self, url: str) -> None:
        """A connection to ``url`` opened; the server starts it with an init segment, which
        counts as a re-init after the first connection (it is one, in the recording)."""
        self._report.connections += 1
        self._report.url = url

    # --- messages -------------------------------------------------------------------------

    def on_text(self, text: str) -> dict[str, Any] | None:
        """A JSON event; returned parsed (``None`` if it was not a JSON object)."""
        try:
            event = json.loads(text)
        except ValueError:
            return None
        if not isinstance(event, dict):
            return None
        kind = event.get("type")
        if kind in ("init", "reinit"):
            self._expect_init = True
            self._report.mime = str(event.get("mime") or "") or self._report.mime
        elif kind == "viewers" and isinstance(event.get("count"), int):
            self._report.viewers = event["count"]
        elif kind == "error":
            self._report.errors.append(f"{event.get('code')}: {event.get('message')}")
        return event

    def on_binary(self, data: bytes, *, mono: float, wall: float) -> list[InitSegment | MediaFragment]:
        """An init segment or a media fragment, received at ``mono`` (monotonic) / ``wall`` (epoch)."""
        offset = self._report.bytes
        self._report.bytes += len(data)
        if self._expect_init or data[4:8] == b"ftyp":
            self._report.init_offsets.append(offset)
            # A fresh parser per init segment: a re-init may bring other tracks and timescales.
            self._expect_init = False
            self._parser = Fmp4Parser(max_box_size=MAX_BOX_SIZE)
        if self._parser is None:
            self._report.errors.append("media before any init segment")
            return []
        items = parse_media(self._parser, data, self._report.errors)
        if items is None:
            self._parser = None
            return []
        for item in items:
            if isinstance(item, InitSegment):
                self._on_init(item)
            else:
                self._on_fragment(item, mono=mono, wall=wall)
        return items

    def _on_init(self, init: InitSegment) -> None:
        self._inits += 1
        if self._inits > 1:
            self._report.reinits += 1
        self.init = init
        self._report.mime = init.mime

    def _on_fragment(self, fragment: MediaFragment, *, mono: float, wall: float) -> None:
        report = self._report
        if report.fragments == 0:
            report.ttff_ms = (mono - self.started) * 1000
            report.first_keyframe = fragment.keyframe
        report.fragments += 1
        last = self._last_sequence
        if last is not None and fragment.sequence_number > last + 1:
            report.drops += fragment.sequence_number - last - 1
        self._last_sequence = fragment.sequence_number
        if report.fragments > 1 and fragment.keyframe:
            self._live = True
        if fragment.producer_time is not None:
            latency = (wall - fragment.producer_time) * 1000
            if report.fragments == 1:
                report.join_age_ms = latency
            if self._live:
                self._latencies.append(latency)
        report.media_seconds += self._duration(fragment)

    def _duration(self, fragment: MediaFragment) -> float:
        """Seconds of the video track in ``fragment`` (of its first track without video)."""
        init = self.init
        if init is None:
            return 0.0
        reference = init.video or (init.tracks[0] if init.tracks else None)
        if reference is None or reference.timescale <= 0:
            return 0.0
        traf = fragment.track(reference.id)
        return traf.duration / reference.timescale if traf is not None else 0.0

    # --- result ---------------------------------------------------------------------------

    def finish(self, *, now: float, closed: str = "") -> WatchReport:
        """The report as of ``now`` (monotonic)."""
        report = self._report
        close_report(report, self._latencies, started=self.started, now=now, closed=closed)
        return report
