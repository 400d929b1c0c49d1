"""The slate as a live source: encoded clips, cached, played out in real time on demand.

:class:`SlateLibrary` encodes slate clips (:func:`server.live.slate_clip.encode_slate`, in a
worker thread: PyAV never runs on the event loop) and keeps the most recent ones, keyed by
what they show and how they are encoded. Concurrent requests for one clip share one
encode.

:class:`SlatePlayer` is one stage's stand-by source. It runs only while its program wants
the slate (on air or pending): started, it hands the program the clip's init segment and
its first fragment (a keyframe) at once, so a failover to the slate costs no keyframe wait,
then each following fragment when its time comes, looping the clip by timestamp rewriting.
At every pass it asks again for the card and the format, so a new "next session" line or a
new audio layout takes effect at the next loop without a cut.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from server.clock import Clock
from server.live.slate_card import SlateCard
from server.live.slate_clip import SlateFormat, encode_slate
from server.media.fmp4 import split_clip
from server.media.timeline import Timeline
from server.media.types import InitSegment, MediaFragment

log = logging.getLogger("forumcast.live")

#: Default number of encoded clips kept (a clip of a 720p still is a few hundred kB).
KEEP_CLIPS = 64
#: Seconds before a slate that failed (an encode that raised) starts over.
RETRY_AFTER = 1.0


@dataclass(frozen=True, slots=True)
class Clip:
    init: InitSegment
    fragments: tuple[MediaFragment, ...]


Key = tuple[SlateCard, SlateFormat]
Encoder = Callable[[SlateCard, SlateFormat], bytes]


async def in_thread(encoder: Encoder, card: SlateCard, fmt: SlateFormat) -> bytes:
    """Run an encode in a worker thread: PyAV never runs on the event loop."""
    return await asyncio.to_thread(encoder, card, fmt)


class SlateLibrary:
    """Encoded slate clips, most recent first, at most ``keep`` of them."""

    def __init__(
        self,
        *,
        keep: int = KEEP_CLIPS,
        encoder: Encoder = encode_slate,
        run: Callable[[Encoder, SlateCard, SlateFormat], Awaitable[bytes]] = in_thread,
    ) -> None:
        self.keep = keep
        self._encoder = encoder
        self._run = run
        self._clips: OrderedDict[Key, Clip] = OrderedDict()
        self._encoding: dict[Key, asyncio.Future[Clip]] = {}

    def ready(self, card: SlateCard, fmt: SlateFormat) -> Clip | None:
        return self._clips.get((card, fmt))

    def prefetch(self, card: SlateCard, fmt: SlateFormat) -> None:
        """Start encoding the clip in the background if it is neither cached nor under way."""
        key = (card, fmt)
        if key not in self._clips and key not in self._encoding:
            self._start(key)

    async def clip(self, card: SlateCard, fmt: SlateFormat) -> Clip:
        key = (card, fmt)
        cached = self._clips.get(key)
        if cached is not None:
            self._clips.move_to_end(key)
            return cached
        future = self._encoding.get(key) or self._start(key)
        return await asyncio.shield(future)

    def _start(self, key: Key) -> asyncio.Future[Clip]:
        future = asyncio.ensure_future(self._encode(key))
        self._encoding[key] = future
        return future

    async def _encode(self, key: Key) -> Clip:
        card, fmt = key
        try:
            data = await self._run(self._encoder, card, fmt)
            init, fragments = split_clip(data)
            clip = Clip(init, tuple(fragments))
            self._clips[key] = clip
            while len(self._clips) > self.keep:
                self._clips.popitem(last=False)
            return clip
        finally:
            del self._encoding[key]

    async def close(self) -> None:
        """Wait for the encodes under way (they run in threads and cannot be interrupted)."""
        pending = list(self._encoding.values())
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


class SlateHost(Protocol):
    """What a slate player plays for (a stage's program)."""

    def slate_card(self) -> SlateCard:
        """What the slate should say now."""

    def slate_format(self) -> SlateFormat:
        """How it should be encoded now (like the program's sources)."""

    def on_slate(self, item: InitSegment | MediaFragment) -> None:
        """The slate's init segment or its next fragment, on time."""

    def slate_failed(self) -> None:
        """The slate raised (logged already); it starts over after :data:`RETRY_AFTER`."""


class SlatePlayer:
    """One stage's slate, delivered in real time to its host while started."""

    def __init__(self, name: str, library: SlateLibrary, clock: Clock, host: SlateHost) -> None:
        self.name = name
        self._library = library
        self._clock = clock
        self._host = host
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def prefetch(self) -> None:
        self._library.prefetch(self._host.slate_card(), self._host.slate_format())

    def start(self) -> None:
        if not self.running:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"slate {self.name}")

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        """Play until stopped; a failure is logged, told to the host, and played over."""
        while True:
            try:
                await self._play()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s: the slate failed; starting over in %g s", self.name, RETRY_AFTER)
                self._host.slate_failed()
                await self._clock.sleep(RETRY_AFTER)

    async def _play(self) -> None:
        clock, host = self._clock, self._host
        timeline = Timeline()
        sent: InitSegment | None = None
        started: float | None = None
        clip: Clip | None = None
        while True:
            card, fmt = host.slate_card(), host.slate_format()
            fresh = self._library.ready(card, fmt)
            if fresh is None and clip is not None:
                self._library.prefetch(card, fmt)  # keep looping the last one meanwhile
            else:
                clip = fresh or await self._library.clip(card, fmt)
            if sent is None or clip.init.data != sent.data:
                sent = clip.init
                host.on_slate(clip.init)
            timeline.splice()
            for fragment in clip.fragments:
                placed = timeline.place(fragment, clip.init)
                first = placed.tracks[0]
                track = clip.init.track(first.track_id)
                at = first.base_decode_time / (track.timescale if track is not None else 1)
                if started is None:
                    started = clock.monotonic() - at
                await clock.sleep(started + at - clock.monotonic())
                host.on_slate(placed)
