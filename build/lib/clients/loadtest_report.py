"""The figures of one ``forumcast loadtest`` run: :class:`LoadReport`, its summary and JSON.

:func:`summarise` turns what the viewers counted (:class:`~clients.loadtest_client.Run`) into
the report. Per viewer there is the **time to first fragment** (connection start to the end
of the first media message) and **drops** (gaps in the ``mfhd`` sequence numbers, which the
server numbers consecutively). Per fragment there is the arrival wall time and the ``prft``
key, so that:

- **latency** = arrival − the ``prft`` time (the publisher's wall clock when the fragment's
  first frame entered the encoder: it includes the fragment's own duration and the encoder);
- **added latency** (with a sent log) = arrival − the moment the publisher handed that
  fragment to its socket, read from a log of ``NTP_KEY SEND_WALL_TIME`` lines the benchmark's
  publisher writes: what the relay (and loopback) add, the figure a relay target is about.

Only *live* fragments count: those produced after the viewer connected (the burst of the
cached GOP at join is as old as the cache and says nothing about the relay; TTFF covers it).
Percentiles are given for the steady phase (from :data:`SETTLE` seconds after the last
viewer joined) and for the ramp.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from clients.loadtest_client import Run, Viewer
from clients.loadtest_frames import ntp_to_unix
from clients.probe import percentile

#: Seconds after the last viewer joined before the steady phase starts.
SETTLE = 1.0


@dataclass(slots=True)
class Stats:
    count: int = 0
    p50: float | None = None
    p99: float | None = None
    max: float | None = None

    @classmethod
    def of(cls, values: list[float]) -> Stats:
        if not values:
            return cls()
        return cls(
            count=len(values),
            p50=_round(percentile(values, 0.50)),
            p99=_round(percentile(values, 0.99)),
            max=_round(max(values)),
        )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


@dataclass(slots=True)
class LoadReport:
    url: str = ""
    viewers: int = 0  # asked for
    ramp_per_second: float = 0.0
    duration_s: float = 0.0
    started: float = 0.0  # Unix time the first connection attempt began
    ramp_done_s: float | None = None  # seconds from start until the last viewer's handshake ended
    connected: int = 0  # handshakes that succeeded (viewers only, not probe joins)
    failed: dict[str, int] = field(default_factory=dict)  # connection failures by reason
    open_at_end: int = 0
    held: int = 0  # open at the end and receiving (a fragment in the last HELD_WINDOW seconds)
    viewers_with_media: int = 0  # got an init segment and at least one fragment
    min_fragments: int = 0  # fewest fragments one viewer got
    disconnects: dict[str, int] = field(default_factory=dict)  # server-side ends, by close code
    messages: int = 0
    bytes: int = 0
    inits: int = 0
    fragments: int = 0
    texts: int = 0
    errors: dict[str, int] = field(default_factory=dict)  # "error" events by code
    drops: int = 0  # fragments missing from the mfhd sequence, all viewers
    viewers_with_drops: int = 0
    unparsed: int = 0  # media messages without a readable mfhd
    ttff_ms: Stats = field(default_factory=Stats)  # every viewer, during the ramp
    join_ttff_ms: Stats = field(default_factory=Stats)  # probe joins at full load
    joins: int = 0
    latency_ms: Stats = field(default_factory=Stats)  # arrival − prft, steady phase
    added_latency_ms: Stats | None = None  # arrival − publisher send, steady phase
    ramp_latency_ms: Stats = field(default_factory=Stats)
    ramp_added_latency_ms: Stats | None = None
    unmatched: int = 0  # samples whose prft is not in the sent log
    samples_not_kept: int = 0
    cpu_user_s: float = 0.0
    cpu_system_s: float = 0.0
    cpu_percent: float = 0.0  # of one core, over the run
    wall_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        def stats(name: str, value: Stats | None) -> str:
            if value is None or not value.count:
                return f"  {name:<22} -"
            return f"  {name:<22} p50 {value.p50} / p99 {value.p99} / max {value.max} ms ({value.count})"

        lines = [
            f"loadtest {self.url}: {self.viewers} viewers at {self.ramp_per_second:g}/s"
            f" for {self.duration_s:g} s",
            f"  connected              {self.connected}"
            + (f"  failed {self.failed}" if self.failed else "")
            + (f"  (ramp done at {self.ramp_done_s:.1f} s)" if self.ramp_done_s is not None else ""),
            f"  held at the end        {self.held} (open {self.open_at_end})"
            + (f"  disconnects {self.disconnects}" if self.disconnects else ""),
            stats("time to first frag.", self.ttff_ms),
            stats(f"join TTFF ({self.joins})", self.join_ttff_ms),
            stats("latency (prft)", self.latency_ms),
            stats("added latency", self.added_latency_ms),
            stats("ramp added latency", self.ramp_added_latency_ms),
            f"  fragments              {self.fragments}"
            f" ({self.bytes / 1e6:.1f} MB, {self.messages} messages)",
            f"  drops                  {self.drops} ({self.viewers_with_drops} viewers)",
            f"  load generator CPU     {self.cpu_percent:.1f} % of a core"
            f" (user {self.cpu_user_s:.2f} s, system {self.cpu_system_s:.2f} s)",
        ]
        if self.errors:
            lines.append(f"  error events           {self.errors}")
        return "\n".join(lines)


def read_sent_log(path: Path) -> dict[int, float]:
    """``NTP_KEY SEND_WALL_TIME`` lines (the benchmark publisher's) as a mapping."""
    sent: dict[int, float] = {}
    with path.open() as file:
        for line in file:
            key, _, when = line.partition(" ")
            with contextlib.suppress(ValueError):
                sent[int(key)] = float(when)
    return sent


def summarise(report: LoadReport, run: Run, probes: list[Viewer], sent_log: Path | None) -> None:
    """Fill ``report`` in from what the viewers and the probe joins counted."""
    viewers = run.viewers
    report.connected = sum(v.connected.done() and v.connected.result() for v in viewers)
    report.failed = dict(run.failed)
    report.disconnects = dict(run.disconnects)
    report.messages, report.bytes, report.inits = run.messages, run.bytes, run.inits
    report.fragments, report.texts, report.errors = run.fragments, run.texts, dict(run.errors)
    report.drops, report.unparsed = run.drops, run.unparsed
    report.viewers_with_drops = sum(v.drops > 0 for v in viewers)
    report.viewers_with_media = sum(v.inits > 0 and v.fragments > 0 for v in viewers)
    report.min_fragments = min((v.fragments for v in viewers), default=0)
    report.ttff_ms = Stats.of([v.ttff for v in viewers if v.ttff is not None])
    report.joins = len(probes)
    report.join_ttff_ms = Stats.of([v.ttff for v in probes if v.ttff is not None])
    report.samples_not_kept = run.not_kept
    steady_from = (
        report.started + report.ramp_done_s + SETTLE if report.ramp_done_s is not None else float("inf")
    )
    latency: tuple[list[float], list[float]] = ([], [])  # ramp, steady
    for key, arrival in zip(run.keys, run.arrivals, strict=True):
        latency[arrival >= steady_from].append((arrival - ntp_to_unix(key)) * 1000)
    report.ramp_latency_ms, report.latency_ms = Stats.of(latency[0]), Stats.of(latency[1])
    if sent_log is not None:
        sent = read_sent_log(sent_log) if sent_log.exists() else {}
        added: tuple[list[float], list[float]] = ([], [])
        for key, arrival in zip(run.keys, run.arrivals, strict=True):
            when = sent.get(key)
            if when is None:
                report.unmatched += 1
            else:
                added[arrival >= steady_from].append((arrival - when) * 1000)
        report.ramp_added_latency_ms, report.added_latency_ms = Stats.of(added[0]), Stats.of(added[1])
