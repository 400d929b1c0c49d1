"""``forumcast publish``: push a file or the live test pattern to an input over WebSocket.

The I/O shell around :class:`~clients.outbox.Outbox`: one task pulls items from the source
(always, connected or not — the source is live), one moves what the outbox hands out onto
the socket, one reads the server's JSON events (tally, stats, error). When the connection
ends, :func:`~clients.connection.classify_close` decides: reconnect after a backoff (always
with ``takeover=1``, so our own half-dead previous connection cannot block us), stop because
another publisher took over on purpose, or give up because something must be fixed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from clients.connection import (
    DEFAULT_SERVER,
    Backoff,
    ClientError,
    Outcome,
    Refused,
    Verdict,
    classify_close,
    classify_status,
    publish_url,
)
from clients.outbox import Item, Outbox, OutboxStats
from clients.source import file_items, load_clip, pattern_items
from server.encoding.testpattern import PatternSettings, parse_bitrate

#: Largest WebSocket message sent; bigger init segments or fragments go in several (the
#: server parses a byte stream, so message boundaries carry no meaning).
MAX_MESSAGE = 2**20

Events = Callable[[dict[str, Any]], None]


@dataclass(slots=True)
class PublishReport:
    connections: int = 0
    seconds: float = 0.0
    ended: str = ""  # why publishing stopped, in words
    verdict: Verdict | None = None  # how the last connection ended (None: we ended it)
    on_air: bool = False  # the last tally
    outbox: OutboxStats | None = None


async def publish(
    url: str,
    key: str,
    source: AsyncIterable[Item],
    *,
    takeover: bool = False,
    reconnect: bool = True,
    duration: float | None = None,
    stop: asyncio.Event | None = None,
    on_event: Events | None = None,
    on_status: Callable[[str], None] | None = None,
    backoff: Backoff | None = None,
    open_timeout: float = 10.0,
    max_message: int = MAX_MESSAGE,
) -> PublishReport:
    """Publish ``source`` to ``url`` (``ws://host/ws/publish/{input}``) until it ends, ``stop``
    is set, ``duration`` seconds pass, or another publisher takes over.

    Raises :class:`~clients.connection.Refused` when the server refuses for good (bad key,
    unknown input, busy input without ``takeover``, refused media).
    """
    publisher = _Publisher(
        url,
        key,
        source,
        stop=stop or asyncio.Event(),
        on_event=on_event,
        backoff=backoff or Backoff(),
        open_timeout=open_timeout,
        max_message=max_message,
    )
    status = on_status or (lambda _: None)
    loop = asyncio.get_running_loop()
    timer = loop.call_later(duration, publisher.stop.set) if duration is not None else None
    try:
        return await publisher.run(takeover=takeover, reconnect=reconnect, status=status)
    finally:
        if timer is not None:
            timer.cancel()


class _Publisher:
    """The state one :func:`publish` call shares between its connections."""

    def __init__(
        self,
        url: str,
        key: str,
        source: AsyncIterable[Item],
        *,
        stop: asyncio.Event,
        on_event: Events | None,
        backoff: Backoff,
        open_timeout: float,
        max_message: int,
    ) -> None:
        self.url = url
        self.key = key
        self.source = source
        self.stop = stop
        self.on_event = on_event
        self.backoff = backoff
        self.open_timeout = open_timeout
        self.max_message = max_message
        self.outbox = Outbox()
        self.report = PublishReport(outbox=self.outbox.stats)
        self.wake = asyncio.Event()  # the outbox may have something to send
        self.online = asyncio.Event()  # the first connection is up

    async def run(self, *, takeover: bool, reconnect: bool, status: Callable[[str], None]) -> PublishReport:
        started = time.monotonic()
        pumping = asyncio.create_task(self._pump(), name="publish-source")
        report = self.report
        try:
            attempt = 0
            while not self.stop.is_set():
                _raise_if_failed(pumping)
                sent = self.outbox.stats.fragments_sent
                outcome = await self._connection(_with_takeover(self.url, takeover or attempt > 0), pumping)
                if self.outbox.stats.fragments_sent > sent:
                    self.backoff.reset()  # that connection worked: a blip should cost a short delay
                if outcome is None:
                    report.ended = "source ended" if self.outbox.drained else "stopped"
                    report.verdict = None
                    break
                report.verdict = outcome.verdict
                if outcome.verdict is Verdict.FATAL:
                    raise Refused(outcome.reason)
                if outcome.verdict is not Verdict.RETRY or not reconnect:
                    report.ended = outcome.reason
                    break
                delay = self.backoff.next_delay()
                status(f"{outcome.reason}; reconnecting in {delay:.1f} s")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), delay)
                attempt += 1
            else:
                report.ended = "stopped"
        finally:
            pumping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pumping
            aclose = getattr(self.source, "aclose", None)
            if aclose is not None:
                await aclose()  # an async generator's cleanup (the test pattern's encoder thread)
            report.seconds = time.monotonic() - started
        return report

    async def _pump(self) -> None:
        # The source starts with the first connection: a file's first GOP (or the pattern's
        # first keyframe) would otherwise be gone before the server could see it.
        await self.online.wait()
        async for item in self.source:
            self.outbox.offer(item)
            self.wake.set()
        self.outbox.finish()
        self.wake.set()

    async def _connection(self, url: str, pumping: asyncio.Task[None]) -> Outcome | None:
        """One connection from open to close: ``None`` when we ended it (stopped, source drained)."""
        try:
            async with connect(
                url,
                additional_headers={"Authorization": f"Bearer {self.key}"},
                open_timeout=self.open_timeout,
                compression=None,  # fMP4 does not compress; deflate would only cost CPU
                max_size=2**16,  # the server sends us small JSON events only
                ping_interval=10,
                ping_timeout=10,
                close_timeout=2,
            ) as ws:
                self.report.connections += 1
                self.outbox.connected()
                self.online.set()
                self.wake.set()
                try:
                    return await self._session(ws, pumping)
                finally:
                    self.outbox.disconnected()
        except InvalidStatus as exc:
            return classify_status(exc.response.status_code, bytes(exc.response.body or b""))
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            return Outcome(Verdict.RETRY, f"cannot connect ({exc or type(exc).__name__})")

    async def _session(self, ws: ClientConnection, pumping: asyncio.Task[None]) -> Outcome | None:
        error: dict[str, Any] = {}
        sender = asyncio.create_task(self._send(ws), name="publish-send")
        receiver = asyncio.create_task(self._receive(ws, error), name="publish-receive")
        stopper = asyncio.create_task(self.stop.wait(), name="publish-stop")
        try:
            watched: set[asyncio.Task[Any]] = {sender, receiver, stopper, pumping}
            while True:
                done, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
                _raise_if_failed(pumping)
                if done != {pumping}:
                    break
                watched.discard(pumping)  # the source ended; the sender drains what is left
            if stopper in done:
                await ws.close(1000, "publisher stopped")
                return None
            if sender in done and sender.exception() is None:
                await receiver  # the close handshake the sender started at the end of the source
                return None
            with contextlib.suppress(ConnectionClosed):
                await receiver  # the connection is ending; let the receiver see the close frame
        finally:
            for task in (sender, receiver, stopper):
                task.cancel()
            await asyncio.gather(sender, receiver, stopper, return_exceptions=True)
        reason = str(error.get("message") or error.get("code") or ws.close_reason or "")
        return classify_close(ws.close_code, reason)

    async def _send(self, ws: ClientConnection) -> None:
        outbox, size = self.outbox, self.max_message
        while True:
            item = outbox.pop()
            if item is None:
                if outbox.drained:
                    await ws.close(1000, "end of stream")
                    return
                self.wake.clear()
                await self.wake.wait()
                continue
            data = item.data
            for start in range(0, len(data), size):
                await ws.send(data[start : start + size])

    async def _receive(self, ws: ClientConnection, error: dict[str, Any]) -> None:
        async for message in ws:
            if not isinstance(message, str):
                continue
            try:
                event = json.loads(message)
            except ValueError:
                continue
            if not isinstance(event, dict):
                continue
            if event.get("type") == "error":
                error.update(event)
            elif event.get("type") == "tally":
                self.report.on_air = bool(event.get("on_air"))
            if self.on_event is not None:
                self.on_event(event)


def _raise_if_failed(task: asyncio.Task[None]) -> None:
    if task.done() and not task.cancelled() and (failure := task.exception()) is not None:
        raise failure  # the source failed: nothing left to publish


def _with_takeover(url: str, takeover: bool) -> str:
    if not takeover or "takeover=" in url:
        return url
    return f"{url}{'&' if '?' in url else '?'}takeover=1"


# --- the command --------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``forumcast publish --input ID --key K (FILE | --test-pattern) [...]``."""
    parser.add_argument("file", nargs="?", type=Path, metavar="FILE", help="an MP4/fMP4 file (stream copy)")
    parser.add_argument("--test-pattern", action="store_true", help="publish a live test pattern instead")
    parser.add_argument(
        "--server",
        default=os.environ.get("FORUMCAST_SERVER", DEFAULT_SERVER),
        help=f"server address (default $FORUMCAST_SERVER or {DEFAULT_SERVER})",
    )
    parser.add_argument(
        "--input", required=True, dest="input_id", metavar="ID", help="the input to publish to"
    )
    parser.add_argument(
        "--key",
        default=os.environ.get("FORUMCAST_STREAM_KEY"),
        help="the input's stream key (default $FORUMCAST_STREAM_KEY)",
    )
    parser.add_argument("--loop", action="store_true", help="loop FILE forever as one continuous stream")
    parser.add_argument("--takeover", action="store_true", help="replace a publisher already on the input")
    parser.add_argument("--no-reconnect", dest="reconnect", action="store_false", help="stop at a drop")
    parser.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    parser.add_argument("--quiet", action="store_true", help="no stats lines (tally and errors still print)")
    pattern = parser.add_argument_group("test pattern")
    pattern.add_argument("--label", help="text on the picture (default: the input id)")
    pattern.add_argument("--size", default="640x360", help="WIDTHxHEIGHT (default 640x360)")
    pattern.add_argument("--fps", type=int, default=25)
    pattern.add_argument("--gop", type=int, default=50, metavar="N", help="frames per keyframe interval")
    pattern.add_argument("--bitrate", default="1000k", help="video bitrate (default 1000k)")
    pattern.add_argument("--audio", choices=["aac", "opus", "none"], default="aac")
    parser.add_argument("--fragment-ms", type=int, default=200, metavar="MS", help="default 200")


def describe_event(
    message: dict[str, Any], *, was_on_air: bool | None, was_preview: bool = False
) -> str | None:
    """One line for a server event, or ``None`` when it is not worth a line (an unchanged tally)."""
    kind = message.get("type")
    if kind == "tally":
        on_air, preview = bool(message.get("on_air")), bool(message.get("preview"))
        if on_air == was_on_air and preview == was_preview:
            return None
        state = "ON AIR" if on_air else "preview (a producer is watching)" if preview else "off air"
        return f"tally: {state} (stage {message.get('stage')})"
    if kind == "stats":
        bitrate = float(message.get("bitrate") or 0) / 1e6
        age = float(message.get("fragment_age") or 0)
        return f"stats: {bitrate:.2f} Mbit/s, fragment age {age:.2f} s, {message.get('viewers', 0)} viewers"
    if kind == "error":
        return f"error: {message.get('code')}: {message.get('message')}"
    return None


def _settings(args: argparse.Namespace) -> PatternSettings:
    width, _, height = str(args.size).lower().partition("x")
    if not (width.isdigit() and height.isdigit()):
        raise ValueError(f"--size must be WIDTHxHEIGHT like 640x360, not {args.size!r}")
    return PatternSettings(
        label=args.label or args.input_id,
        width=int(width),
        height=int(height),
        fps=args.fps,
        gop=args.gop,
        fragment_ms=args.fragment_ms,
        bitrate=parse_bitrate(args.bitrate),
        audio=args.audio,
    )


def main(args: argparse.Namespace) -> int:
    """Run ``forumcast publish``: 0 when the source ends or is stopped, 1 when refused or taken
    over, 2 for a usage problem."""
    if (args.file is None) == (not args.test_pattern):
        print("forumcast publish: give a FILE or --test-pattern (one of them)", file=sys.stderr)
        return 2
    if not args.key:
        print("forumcast publish: a stream key is needed (--key or $FORUMCAST_STREAM_KEY)", file=sys.stderr)
        return 2
    try:
        url = publish_url(args.server, args.input_id)
        if args.test_pattern:
            source = pattern_items(_settings(args))
        else:
            clip = load_clip(args.file, fragment_ms=args.fragment_ms)
            source = file_items(clip, loop=args.loop)
        return asyncio.run(_run(args, url, source))
    except (ClientError, ValueError) as exc:
        print(f"forumcast publish: {exc}", file=sys.stderr)
        return 1 if isinstance(exc, Refused) else 2
    except KeyboardInterrupt:  # before the loop could take Ctrl-C over (a long remux)
        return 130


async def _run(args: argparse.Namespace, url: str, source: AsyncIterable[Item]) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not on Windows
            loop.add_signal_handler(sig, stop.set)
    tally: dict[str, bool] = {}

    def show(message: dict[str, Any]) -> None:
        if args.quiet and message.get("type") == "stats":
            return
        line = describe_event(
            message, was_on_air=tally.get("on_air"), was_preview=tally.get("preview", False)
        )
        if message.get("type") == "tally":
            tally["on_air"] = bool(message.get("on_air"))
            tally["preview"] = bool(message.get("preview"))
        if line:
            print(line, flush=True)

    print(f"publishing to {url}", flush=True)
    report = await publish(
        url,
        args.key,
        source,
        takeover=args.takeover,
        reconnect=args.reconnect,
        duration=args.duration,
        stop=stop,
        on_event=show,
        on_status=lambda line: print(line, flush=True),
    )
    stats = report.outbox or OutboxStats()
    print(
        f"published {stats.fragments_sent} fragments ({stats.bytes_sent / 1e6:.1f} MB)"
        f" in {report.seconds:.1f} s over {report.connections} connection(s),"
        f" {stats.fragments_dropped} dropped; {report.ended}",
        flush=True,
    )
    return 1 if report.verdict is Verdict.TAKEN_OVER else 0
