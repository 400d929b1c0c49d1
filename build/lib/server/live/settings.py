"""The live path's settings in one object, each default stated once beside the code using it.

:class:`LiveSettings` is the live part of :class:`~server.config.Config` (which takes its
defaults from here); :class:`LiveEnv` bundles it with the clock and the metrics, the three
things every input, program and periodic task needs, so their constructors stay short.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from server.clock import Clock
from server.live.admission import MAX_VIEWERS, MAX_VIEWERS_PER_IP
from server.live.automation import FAILBACK_AFTER, STALL_AFTER
from server.live.fanout import VIEWER_SEND_BUFFER
from server.live.slate_clip import SLATE_SIZE
from server.media.fanout import GOP_CACHE_BYTES, MAX_BEHIND, SEND_BUDGET
from server.media.fmp4 import DEFAULT_MAX_BOX_SIZE
from server.media.hls import PART_TARGET, TARGET_DURATION, WINDOW
from server.metrics import Metrics

#: Seconds between supervision passes over every program (stall detection, failback).
SUPERVISE_INTERVAL = 0.1
#: Seconds between viewer-count updates (events to viewers, gauges).
VIEWERS_INTERVAL = 1.0
#: Seconds between looks at whether each viewer still takes what it is sent.
STALL_CHECK_INTERVAL = 0.5
#: Seconds between publisher stats messages.
STATS_INTERVAL = 2.0


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveSettings:
    max_box_size: int = DEFAULT_MAX_BOX_SIZE
    gop_cache_bytes: int = GOP_CACHE_BYTES
    send_budget: int = SEND_BUDGET
    max_behind: float = MAX_BEHIND
    stall_after: float = STALL_AFTER
    failback_after: float = FAILBACK_AFTER
    hls_target_duration: float = TARGET_DURATION
    hls_part_target: float = PART_TARGET
    hls_window: int = WINDOW
    slate_size: tuple[int, int] = SLATE_SIZE
    viewer_send_buffer: int = VIEWER_SEND_BUFFER
    max_viewers_per_ip: int = MAX_VIEWERS_PER_IP
    max_viewers: int = MAX_VIEWERS
    supervise_interval: float = SUPERVISE_INTERVAL
    viewers_interval: float = VIEWERS_INTERVAL
    stats_interval: float = STATS_INTERVAL
    stall_check_interval: float = STALL_CHECK_INTERVAL


@dataclass(frozen=True, slots=True)
class LiveEnv:
    clock: Clock
    metrics: Metrics
    settings: LiveSettings = field(default_factory=LiveSettings)
