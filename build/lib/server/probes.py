"""Probes of the process's own health for the metrics: event-loop lag, and whether the store answers.

- :func:`watch_loop_lag` (the supervised task ``event-loop-lag``) sleeps ``interval`` on a
  clock again and again and measures how much later than asked each timer ran: anything
  holding the event loop (a blocking call, a long callback, CPU starvation) shows as lag.
  The gauge ``forumcast_event_loop_lag_seconds`` holds the worst lateness of the last
  :data:`PEAK_WINDOW` seconds (:class:`PeakWindow`), so a scrape every 15 s sees a hiccup
  that lasted 300 ms between two scrapes.
- :func:`watch_store` (the task ``store-probe``) pings the state store every
  ``interval`` and sets ``forumcast_redis_up`` to 1 or 0. Without Redis the memory store
  always answers, so the gauge is 1 (like ``forumcast_cluster_instances`` is 1): "is the
  store this instance depends on answering" has one meaning in both set-ups.

:class:`PeakWindow` is pure; the two loops are thin adapters on a :class:`~server.clock.Clock`.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable

from server.clock import Clock
from server.errors import ForumcastError
from server.store.base import Store

log = logging.getLogger("forumcast.probes")

#: Seconds over which the lag gauges report their worst sample (at least a scrape interval).
PEAK_WINDOW = 15.0
#: Seconds between two event-loop lag samples.
LAG_INTERVAL = 0.25
#: Seconds between two pings of the store.
STORE_INTERVAL = 2.0


class PeakWindow:
    """The largest of the samples added within the last ``window`` seconds (0 if none).

    A monotonic deque: each sample drops the smaller ones before it, so adding and reading
    cost O(1) amortised whatever the sample rate."""

    def __init__(self, *, window: float = PEAK_WINDOW) -> None:
        if window <= 0:
            raise ValueError("the window must be positive")
        self.window = window
        self._samples: deque[tuple[float, float]] = deque()  # (when, value), values decreasing

    def add(self, now: float, value: float) -> None:
        while self._samples and self._samples[-1][1] <= value:
            self._samples.pop()
        self._samples.append((now, value))
        self._expire(now)

    def peak(self, now: float) -> float:
        self._expire(now)
        return self._samples[0][1] if self._samples else 0.0

    def _expire(self, now: float) -> None:
        while self._samples and self._samples[0][0] < now - self.window:
            self._samples.popleft()


async def watch_loop_lag(
    clock: Clock,
    report: Callable[[float], None],
    *,
    interval: float = LAG_INTERVAL,
    window: float = PEAK_WINDOW,
) -> None:
    """Forever: sleep ``interval``, and ``report`` the worst lateness of the last ``window``.

    Run it on the real clock (a :class:`~server.clock.SystemClock`): the event loop's
    lateness is a matter of real time, whatever clock the program runs on."""
    peaks = PeakWindow(window=window)
    while True:
        asked = clock.monotonic() + interval
        await clock.sleep(interval)
        now = clock.monotonic()
        peaks.add(now, max(0.0, now - asked))
        report(peaks.peak(now))


async def watch_store(
    store: Store, clock: Clock, report: Callable[[float], None], *, interval: float = STORE_INTERVAL
) -> None:
    """Forever: ping ``store`` and ``report`` 1 if it answered, else 0."""
    up: bool | None = None
    while True:
        try:
            await store.ping()
        except ForumcastError as exc:
            if up is not False:
                log.warning("the state store (%s) does not answer: %s", store.kind, exc.message)
            up = False
        else:
            if up is False:
                log.info("the state store (%s) answers again", store.kind)
            up = True
        report(1.0 if up else 0.0)
        await clock.sleep(interval)
