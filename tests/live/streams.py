"""Real-time publishers and recording viewers for the program tests, over real WebSockets.

:class:`LoopPublisher` publishes a pre-encoded clip into an input in real time, looping it
as one continuous stream, and can be killed (its TCP connection aborted), stalled (it stops
sending but stays connected) and resumed. :class:`ProgramRecorder` watches a stage and
keeps every message with its arrival time; :func:`segments` cuts the recording at each
init segment for decoding.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import aiohttp

from server.encoding.testpattern import AudioCodec, PatternSettings, encode_clip
from server.media.fmp4 import Fmp4Parser, split_clip
from server.media.timeline import loop_fragments
from server.media.types import InitSegment, MediaFragment, TrackKind


@functools.cache
def clip(
    label: str, width: int, height: int, gop: int, audio: AudioCodec
) -> tuple[InitSegment, list[MediaFragment]]:
    settings = PatternSettings(
        width=width, height=height, gop=gop, audio=audio, preset="ultrafast", busy=False, fragment_ms=200
    )
    return split_clip(encode_clip(label, 6.0, settings))


def start_seconds(fragment: MediaFragment, init: InitSegment) -> float:
    first = fragment.tracks[0]
    track = init.track(first.track_id)
    return first.base_decode_time / (track.timescale if track else 1)


class LoopPublisher:
    """One input's publisher: a clip looped in real time over ``WS /ws/publish/{input}``.

    ``on_send`` is called with each fragment just before it is handed to the socket."""

    def __init__(
        self,
        url: str,
        clip: tuple[InitSegment, list[MediaFragment]],
        on_send: Callable[[MediaFragment], None] | None = None,
    ) -> None:
        self.url = url
        self.init, self.fragments = clip
        self.on_send = on_send
        self.messages: list[dict[str, Any]] = []
        self.running = asyncio.Event()
        self.running.set()
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._session = aiohttp.ClientSession()
        self._ws = await self._session.ws_connect(self.url)
        self._tasks = [asyncio.create_task(self._send(self._ws)), asyncio.create_task(self._read(self._ws))]

    async def _send(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        await ws.send_bytes(self.init.data)
        origin = time.monotonic()
        paused = 0.0
        for fragment in loop_fragments(self.init, self.fragments):
            if not self.running.is_set():
                stopped = time.monotonic()
                await self.running.wait()
                paused += time.monotonic() - stopped
            due = origin + paused + start_seconds(fragment, self.init)
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            if self.on_send is not None:
                self.on_send(fragment)
            await ws.send_bytes(fragment.data)

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for message in ws:
            if message.type is aiohttp.WSMsgType.TEXT:
                self.messages.append(json.loads(message.data))

    def tallies(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get("type") == "tally"]

    def stall(self) -> None:
        self.running.clear()

    def resume(self) -> None:
        self.running.set()

    async def kill(self) -> float:
        """Gone without a goodbye: the TCP connection is aborted; returns when (time.monotonic)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError, ConnectionError):
                await task
        at = time.monotonic()
        if self._ws is not None:
            connection = self._ws._response.connection
            if connection is not None and connection.transport is not None:
                connection.transport.abort()
        if self._session is not None:
            await self._session.close()
        self._ws = self._session = None
        return at

    async def restart(self) -> None:
        await self.kill()
        self.running.set()
        await self.start()


@dataclass
class ProgramRecorder:
    """Everything one viewer of a stage received, in order, with arrival times."""

    ws: aiohttp.ClientWebSocketResponse
    items: list[tuple[float, dict[str, Any] | bytes]] = field(default_factory=list)
    closed: aiohttp.WSMessage | None = None
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            message = await self.ws.receive()
            now = time.monotonic()
            if message.type is aiohttp.WSMsgType.TEXT:
                self.items.append((now, json.loads(message.data)))
            elif message.type is aiohttp.WSMsgType.BINARY:
                self.items.append((now, message.data))
            else:
                self.closed = message
                return

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        return [i for _, i in self.items if isinstance(i, dict) and (kind is None or i["type"] == kind)]

    def source(self) -> str | None:
        nows = self.events("now")
        return nows[-1]["program"]["source"] if nows else None

    async def wait_source(self, source: str, timeout: float = 6.0) -> float:
        """Wait until the program switched to ``source`` and its first fragment arrived;
        return that fragment's arrival time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            switched = None
            for index, (_, item) in enumerate(self.items):
                if isinstance(item, dict) and item["type"] == "now":
                    switched = index if item["program"]["source"] == source else None
            if switched is not None:
                for at, item in self.items[switched:]:
                    if isinstance(item, bytes) and _is_fragment(item):
                        return at
            await asyncio.sleep(0.02)
        shown = [e["program"]["source"] for e in self.events("now")]
        raise AssertionError(f"the program did not go to {source!r}; it showed {shown}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def _is_fragment(data: bytes) -> bool:
    return data[4:8] in (b"moof", b"styp", b"prft", b"emsg")


@dataclass
class Segment:
    """The program between two init segments: what one decoder configuration played."""

    init: InitSegment
    fragments: list[MediaFragment]
    event: str  # "init" or "reinit"


def segments(recorder: ProgramRecorder) -> list[Segment]:
    out: list[Segment] = []
    parser: Fmp4Parser | None = None
    event = "init"
    for _, item in recorder.items:
        if isinstance(item, dict):
            if item["type"] in ("init", "reinit"):
                event = item["type"]
                parser = Fmp4Parser()
            continue
        assert parser is not None, "binary data before any init event"
        for parsed in parser.feed(item):
            if isinstance(parsed, InitSegment):
                out.append(Segment(parsed, [], event))
            else:
                out[-1].fragments.append(parsed)
    return out


def track_start(fragment: MediaFragment, init: InitSegment, kind: TrackKind) -> Fraction | None:
    for traf in fragment.tracks:
        track = init.track(traf.track_id)
        if track is not None and track.kind is kind:
            return Fraction(traf.base_decode_time, track.timescale)
    return None
