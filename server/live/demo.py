"""Demo sources: every public stage of the demo event shows a live picture with no tools.

At start-up a short clip per stage is encoded once (in a worker thread: PyAV must not run on
the event loop), then published into the stage's first input in real time, looping
forever. Each loop is spliced onto the last by :func:`~server.media.timeline.loop_fragments`
(the same splicing the program switcher uses), so viewers see one endless stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from server.live.hub import LiveHub
from server.live.inputs import LiveInput, PublisherSession
from server.media.fmp4 import split_clip
from server.media.rewrite import stamp_producer_time
from server.media.timeline import loop_fragments
from server.media.types import InitSegment, MediaFragment

log = logging.getLogger("forumcast.demo")

#: Encodes one clip: (label, seconds) -> fragmented MP4 bytes.
Encoder = Callable[[str, float], bytes]


async def loop_clip(live: LiveInput, init: InitSegment, fragments: list[MediaFragment]) -> None:
    """Publish the clip into ``live`` at real time, forever, as one continuous stream."""
    session = PublisherSession("demo", "in-process", lambda _: None, lambda *_: None)
    live.attach(session, takeover=True)
    scale = {t.id: t.timescale for t in init.tracks}
    try:
        live.push(session, init)
        started = time.monotonic()
        for placed in loop_fragments(init, fragments):
            first = placed.tracks[0]
            due = started + first.base_decode_time / scale[first.track_id]
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            # The clip's prft says when it was encoded; viewers measure latency from now.
            live.push(session, stamp_producer_time(placed, init, time.time()))
    finally:
        live.detach(session)


async def run_demo(hub: LiveHub, encoder: Encoder, *, seconds: float = 4.0) -> None:
    """Encode a clip per public stage (one at a time, off the loop) and loop each one."""
    tasks: list[asyncio.Task[None]] = []
    try:
        for program in hub.programs.values():
            stage = program.stage
            if stage.closed or program.source is None:
                continue
            data = await asyncio.to_thread(encoder, stage.title.best("en"), seconds)
            init, fragments = split_clip(data)
            tasks.append(asyncio.create_task(loop_clip(program.source, init, fragments)))
            log.info("demo picture on stage %s (input %s)", stage.id, program.source.id)
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
