"""A stage's program: what the stage's audience watches.

Until the switcher lands, a program follows one input (the stage's first declared input):
it takes that input's init segment and placed fragments and fans them out to the stage's
viewers, counting them exactly in ``forumcast_viewers{stage,protocol="ws"}``.
"""

from __future__ import annotations

import time

from server.live.fanout import Fanout, Viewer
from server.live.inputs import LiveInput
from server.media.types import InitSegment, MediaFragment
from server.metrics import Metrics
from server.schedule.model import Stage


class Program:
    def __init__(self, stage: Stage, metrics: Metrics, *, gop_cache_bytes: int) -> None:
        self.stage = stage
        self.source: LiveInput | None = None
        self._metrics = metrics
        self.fanout = Fanout(
            f"stage {stage.id}",
            gop_cache_bytes=gop_cache_bytes,
            on_dropped=metrics.relay_dropped.labels(stage=stage.id).inc,
        )
        self.announced_viewers = 0

    @property
    def viewer_count(self) -> int:
        return len(self.fanout.viewers)

    def follow(self, source: LiveInput) -> None:
        if self.source is not None:
            self.source.listeners.remove(self._on_item)
        self.source = source
        source.listeners.append(self._on_item)
        if source.init is not None:
            self.fanout.set_init(source.init)
        for fragment, frame in source.preview.cache:
            self.fanout.push(fragment, time.monotonic(), frame=frame)

    def _on_item(self, source: LiveInput, item: InitSegment | MediaFragment, frame: bytes) -> None:
        if isinstance(item, InitSegment):
            self.fanout.set_init(item)
        else:
            self.fanout.push(item, time.monotonic(), frame=frame)

    def join(self, viewer: Viewer) -> None:
        self.fanout.join(viewer)
        self._count()

    def leave(self, viewer: Viewer) -> None:
        self.fanout.leave(viewer)
        self._count()

    def _count(self) -> None:
        self._metrics.viewers.labels(stage=self.stage.id, protocol="ws").set(self.viewer_count)
