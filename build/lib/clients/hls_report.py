"""What ``forumcast watch --hls`` reports: :class:`HlsReport`, its summary and its JSON.

:class:`~clients.hls_probe.HlsProbe` fills it in; the figures:

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

from dataclasses import dataclass, field
from typing import Any

from clients.probe import JsonReport, format_ms


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
