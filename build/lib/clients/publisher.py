"""The reconnecting publisher: push a source of init segments and fragments to an input over WebSocket.

The I/O shell around :class:`~clients.outbox.Outbox`: one task pulls items from the source
(always, connected or not — the source is live), one moves what the outbox hands out onto
the socket, one reads the server's JSON events (tally, stats, error). When the connection
ends, :func:`~clients.connection.classify_close` decides: reconnect after a backoff (always
with ``takeover=1``, so our own half-dead previous connection cannot block us), stop because
another publisher took over on purpose, or give up because something must be fixed.

Given several server URLs (equal instances behind a balancer), a reconnection goes to the
next one, with one backoff per full round (:class:`~clients.servers.ServerRotation`): the
instance it lands on (sharing the cluster's Redis) continues the input's timeline, as the
same instance does after a takeover. :attr:`Publisher.url` is the URL in use; each
connection is logged with it.
``forumcast publish`` (:mod:`clients.publish`) is the command around :func:`publish`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from clients.connection import Backoff, Outcome, Refused, Verdict, classify_close, classify_status
from clients.outbox import Item, Outbox, OutboxStats
from clients.servers import ServerRotation

log = logging.getLogger("forumcast.clients")

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
    url: str = ""  # the server URL of the last connection (attempt)
    outbox: OutboxStats | None = None


async def publish(
    url: str | Iterable[str],
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
    """Publish ``source`` to ``url`` (``ws://host/ws/publish/{input}``, or several such URLs
    of equal instances, tried in turn) until it ends, ``stop`` is set, ``duration`` seconds
    pass, or another publisher takes over.

    Raises :class:`~clients.connection.Refused` when the server refuses for good (bad key,
    unknown input, busy input without ``takeover``, refused media).
    """
    publisher = Publisher(
        url,
        key,
        source,
        stop=stop,
        on_event=on_event,
        backoff=backoff,
        open_timeout=open_timeout,
        max_message=max_message,
    )
    return await publisher.run(takeover=takeover, reconnect=reconnect, duration=duration, on_status=on_status)


class Publisher:
    """One publishing run: the state :func:`publish` shares between its connections.

    Made and run by :func:`publish`; make one directly to watch :attr:`url` while it runs.
    """

    def __init__(
        self,
        urls: str | Iterable[str],
        key: str,
        source: AsyncIterable[Item],
        *,
        stop: asyncio.Event | None = None,
        on_event: Events | None = None,
        backoff: Backoff | None = None,
        open_timeout: float = 10.0,
        max_message: int = MAX_MESSAGE,
    ) -> None:
        self.servers = ServerRotation(urls, backoff=backoff)
        self.key = key
        self.source = source
        self.stop = stop or asyncio.Event()
        self.on_event = on_event
        self.open_timeout = open_timeout
        self.max_message = max_message
        self.outbox = Outbox()
        self.report = PublishReport(outbox=self.outbox.stats)
        self.wake = asyncio.Event()  # the outbox may have something to send
        self.online = asyncio.Event()  # the first connection is up

    @property
    def url(self) -> str:
        """The server URL in use (or to be tried next, between connections)."""
        return self.servers.current

    async def run(
        self,
        *,
        takeover: bool = False,
        reconnect: bool = True,
        duration: float | None = None,
        on_status: Callable[[str], None] | None = None,
    ) -> PublishReport:
        """Publish until the source ends, :attr:`stop` is set, ``duration`` seconds pass or
        another publisher takes over (see :func:`publish`)."""
        loop = asyncio.get_running_loop()
        timer = loop.call_later(duration, self.stop.set) if duration is not None else None
        try:
            status = on_status or (lambda _: None)
            return await self._run(takeover=takeover, reconnect=reconnect, status=status)
        finally:
            if timer is not None:
                timer.cancel()

    async def _run(self, *, takeover: bool, reconnect: bool, status: Callable[[str], None]) -> PublishReport:
        started = time.monotonic()
        pumping = asyncio.create_task(self._pump(), name="publish-source")
        report = self.report
        try:
            attempt = 0
            while not self.stop.is_set():
                _raise_if_failed(pumping)
                sent = self.outbox.stats.fragments_sent
                report.url = self.url
                outcome = await self._connection(_with_takeover(self.url, takeover or attempt > 0), pumping)
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
                # A connection that carried media resets the backoff: a blip costs a short delay.
                following = self.servers.ended(carried_media=self.outbox.stats.fragments_sent > sent)
                delay = following.delay
                if len(self.servers.urls) == 1:
                    status(f"{outcome.reason}; reconnecting in {delay:.1f} s")
                else:
                    status(f"{outcome.reason}; reconnecting to {following.url} in {delay:.1f} s")
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
                log.info("publishing to %s", url)
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
