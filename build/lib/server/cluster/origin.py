"""Publishers connected here, written to their inputs' Redis streams for the whole cluster.

Every input a publisher sends to this instance gets its items (already on the input's own
continuous timeline) appended to ``in:{input}``, in order, by one writer loop: the
:class:`~server.live.inputs.LiveInput` listener only queues (it must not wait), the loop
sends what is queued in one pipelined round trip. While Redis is away the queue holds at
most :data:`MAX_QUEUED` items per input; past that it is emptied and starts again from
the input's init segment and its next keyframe, so a reader never gets fragments its
decoder cannot start from.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Mapping

from redis.exceptions import RedisError

from server.clock import Clock
from server.cluster.entries import InputEntry, InputKind
from server.cluster.plane import Plane
from server.live.inputs import LiveInput
from server.media.types import InitSegment, MediaFragment

log = logging.getLogger("forumcast.cluster")

#: Items queued per input while Redis does not take them (about two GOPs).
MAX_QUEUED = 40
#: Seconds between attempts while Redis does not answer.
RETRY_AFTER = 0.2


class Origins:
    def __init__(self, plane: Plane, inputs: Mapping[str, LiveInput], clock: Clock) -> None:
        self._plane = plane
        self._clock = clock
        self._queues: dict[str, deque[InputEntry]] = {id_: deque() for id_ in inputs}
        self._publisher: dict[str, str] = {}
        self._resync: set[str] = set()  # inputs whose queue overflowed: init + keyframe first
        self._wake = asyncio.Event()
        for live in inputs.values():
            live.listeners.append(self._on_item)
            live.on_gone.append(self._on_gone)

    def _on_item(self, live: LiveInput, item: InitSegment | MediaFragment, frame: bytes) -> None:
        session = live.publisher
        if session is None:
            return
        publisher = f"{self._plane.instance}/{session.id}"
        self._publisher[live.id] = publisher
        queue = self._queues[live.id]
        if isinstance(item, InitSegment):
            self._resync.discard(live.id)
            queue.append(InputEntry(InputKind.INIT, publisher, item.data))
        else:
            if live.id in self._resync:
                if not item.keyframe or live.init is None:
                    return
                self._resync.discard(live.id)
                queue.append(InputEntry(InputKind.INIT, publisher, live.init.data))
            queue.append(InputEntry(InputKind.FRAGMENT, publisher, item.data, keyframe=item.keyframe))
        if len(queue) > MAX_QUEUED:
            queue.clear()
            self._resync.add(live.id)
            log.warning(
                "input %s: Redis is behind, dropped what was queued (resuming at a keyframe)", live.id
            )
        self._wake.set()

    def _on_gone(self, live: LiveInput) -> None:
        publisher = self._publisher.pop(live.id, None)
        if publisher is not None:
            self._queues[live.id].append(InputEntry(InputKind.GONE, publisher))
            self._wake.set()

    async def run(self) -> None:
        """Send what is queued, forever (a supervised task)."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            for input_id, queue in self._queues.items():
                if not queue:
                    continue
                batch = list(queue)
                queue.clear()
                try:
                    await self._plane.publish_input(input_id, batch)
                except (RedisError, OSError) as exc:
                    log.warning("input %s: could not write to Redis (%s); retrying", input_id, exc)
                    queue.extendleft(reversed(batch))  # first again, before what came meanwhile
                    if len(queue) > MAX_QUEUED:
                        queue.clear()
                        self._resync.add(input_id)
                    self._wake.set()
                    await self._clock.sleep(RETRY_AFTER)
                    break
