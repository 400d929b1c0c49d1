"""Demo sources: every public stage of the demo event shows a live picture with no tools.

At start-up a short clip is encoded once for each input a public stage's sessions use (in
a worker thread: PyAV must not run on the event loop), then published into that input in
real time, looping forever. Each loop is spliced onto the last by
:func:`~server.media.timeline.loop_fragments` (the splicing the program switcher uses
too), so each input is one endless stream, and the stage programs switch between them as
the schedule says.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from server.clock import Clock
from server.encoding.testpattern import PatternSettings, encode_clip
from server.live.hub import LiveHub
from server.live.inputs import LiveInput, PublisherSession
from server.media.fmp4 import split_clip
from server.media.rewrite import stamp_producer_time
from server.media.timeline import loop_fragments
from server.media.types import InitSegment, MediaFragment

log = logging.getLogger("forumcast.demo")

#: Encodes one clip: (label, seconds) -> fragmented MP4 bytes.
Encoder = Callable[[str, float], bytes]

#: The demo pictures: small and cheap, a keyframe every second.
DEMO_PATTERN = PatternSettings(width=480, height=270, gop=25, bitrate=600_000, preset="ultrafast", busy=False)


def demo_picture(label: str, seconds: float) -> bytes:
    """The demo :data:`Encoder`: the test pattern with the input's name."""
    return encode_clip(label.upper(), seconds, DEMO_PATTERN)


async def loop_clip(live: LiveInput, init: InitSegment, fragments: list[MediaFragment], clock: Clock) -> None:
    """Publish the clip into ``live`` at the clock's pace, forever, as one continuous stream."""
    session = PublisherSession("demo", "in-process", lambda _: None, lambda *_: None)
    live.attach(session, takeover=True)
    scale = {t.id: t.timescale for t in init.tracks}
    try:
        live.push(session, init)
        started = clock.monotonic()
        for placed in loop_fragments(init, fragments):
            first = placed.tracks[0]
            due = started + first.base_decode_time / scale[first.track_id]
            await clock.sleep(due - clock.monotonic())
            # The clip's prft says when it was encoded; viewers measure latency from now.
            live.push(session, stamp_producer_time(placed, init, clock.wall()))
    finally:
        live.detach(session)


async def run_demo(hub: LiveHub, encoder: Encoder = demo_picture, *, seconds: float = 4.0) -> None:
    """Encode a clip per input the public stages' sessions use (one at a time, off the loop)
    and loop each one, so automation and takes have live pictures to switch between."""
    tasks: list[asyncio.Task[None]] = []
    event = hub.event
    try:
        for program in hub.programs.values():
            stage = program.stage
            if stage.closed or not stage.inputs:
                continue
            used = {stage.inputs[0].id}
            for session in event.sessions_of(stage.id):
                used.update(i for i in (session.input, session.backup_input) if i is not None)
            for decl in stage.inputs:
                if decl.id not in used:
                    continue
                data = await asyncio.to_thread(encoder, decl.id, seconds)
                init, fragments = split_clip(data)
                tasks.append(
                    asyncio.create_task(loop_clip(hub.inputs[decl.id], init, fragments, hub.env.clock))
                )
                log.info("demo picture on input %s (stage %s)", decl.id, stage.id)
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
