"""The WebSocket viewer behind ``forumcast watch``: connect, measure, record, and (when asked)
reconnect, to the same server or the next of several.

The I/O shell around :class:`~clients.probe.WatchProbe`: every message goes to the probe with
its arrival times, every binary message to the recording. Watching stops at the server's
close, after ``duration`` seconds (in all, over every connection), or when ``stop`` is set.
:func:`watch` returns a :class:`~clients.probe.WatchReport` and never raises for what the
server does (a refusal is a report with ``refused`` set), so a load tester can run hundreds
of them side by side.

With ``reconnect`` (what ``forumcast watch`` does when given several servers) a connection
that could not be made or was dropped for a reason worth retrying is followed by one to the
next URL, one backoff per full round (:class:`~clients.servers.ServerRotation`); the probe
and the recording carry on across connections, each new connection starting with its init
segment (a re-init in the report). :attr:`Watcher.url` is the URL in use; each connection is
logged with it (without its token).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from clients.connection import Backoff, Outcome, Verdict, classify_close, classify_status
from clients.probe import WatchProbe, WatchReport
from clients.servers import ServerRotation

log = logging.getLogger("forumcast.clients")

#: Largest message accepted from the server: a keyframe fragment of a high-bitrate input.
MAX_MESSAGE = 64 * 2**20

Events = Callable[[dict[str, Any]], None]


async def watch(
    url: str | Iterable[str],
    *,
    duration: float | None = None,
    record: Path | None = None,
    stop: asyncio.Event | None = None,
    on_event: Events | None = None,
    on_status: Callable[[str], None] | None = None,
    reconnect: bool = False,
    backoff: Backoff | None = None,
    open_timeout: float = 10.0,
    max_message: int = MAX_MESSAGE,
) -> WatchReport:
    """Watch ``url`` (``ws://host/ws/watch/{stage}[?token=…]``, or several such URLs of equal
    instances) until the server closes, ``duration`` seconds pass or ``stop`` is set; what was
    seen, measured. Without ``reconnect`` only the first URL is tried, once."""
    watcher = Watcher(
        url, stop=stop, on_event=on_event, backoff=backoff, open_timeout=open_timeout, max_message=max_message
    )
    return await watcher.run(duration=duration, record=record, reconnect=reconnect, on_status=on_status)


class Watcher:
    """One watching run over one or more connections; see :func:`watch`."""

    def __init__(
        self,
        urls: str | Iterable[str],
        *,
        stop: asyncio.Event | None = None,
        on_event: Events | None = None,
        backoff: Backoff | None = None,
        open_timeout: float = 10.0,
        max_message: int = MAX_MESSAGE,
    ) -> None:
        self.servers = ServerRotation(urls, backoff=backoff)
        self.stop = stop or asyncio.Event()
        self.on_event = on_event
        self.open_timeout = open_timeout
        self.max_message = max_message
        self._expired = asyncio.Event()  # ``duration`` has passed

    @property
    def url(self) -> str:
        """The server URL in use (or to be tried next, between connections)."""
        return self.servers.current

    async def run(
        self,
        *,
        duration: float | None = None,
        record: Path | None = None,
        reconnect: bool = False,
        on_status: Callable[[str], None] | None = None,
    ) -> WatchReport:
        status = on_status or (lambda _: None)
        # The token stays out of the report and the log: summaries end up in tickets and chat.
        probe = WatchProbe(_public(self.url), started=time.monotonic())
        loop = asyncio.get_running_loop()
        timer = loop.call_later(duration, self._expired.set) if duration is not None else None
        recording = record.open("wb") if record is not None else None
        closed, refused, closed_for_good = "", False, False
        try:
            while True:
                seen = probe.fragments
                outcome, refused = await self._connection(probe, recording)
                if outcome is None:  # we ended it
                    closed = self._why_ended()
                    break
                closed = outcome.reason
                closed_for_good = outcome.verdict is Verdict.FATAL
                if not reconnect or outcome.verdict is not Verdict.RETRY:
                    break
                following = self.servers.ended(carried_media=probe.fragments > seen)
                where = _public(following.url)
                status(f"{outcome.reason}; reconnecting to {where} in {following.delay:.1f} s")
                if await self._pause(following.delay):
                    closed = self._why_ended()
                    break
        finally:
            if timer is not None:
                timer.cancel()
            if recording is not None:
                recording.close()
        report = probe.finish(now=time.monotonic(), closed=closed)
        # Refused: no connection could be opened, or the last attempt was refused for good.
        report.refused = refused and (report.connections == 0 or closed_for_good)
        return report

    def _why_ended(self) -> str:
        return "stopped" if self.stop.is_set() else "duration reached"

    async def _pause(self, delay: float) -> bool:
        """Wait ``delay`` seconds; whether watching was stopped (or ran out of time) meanwhile."""
        ending = [asyncio.ensure_future(self.stop.wait()), asyncio.ensure_future(self._expired.wait())]
        try:
            done, _ = await asyncio.wait(ending, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in ending:
                task.cancel()
            await asyncio.gather(*ending, return_exceptions=True)
        return bool(done)

    async def _connection(
        self, probe: WatchProbe, recording: IO[bytes] | None
    ) -> tuple[Outcome | None, bool]:
        """One connection to :attr:`url`: how it ended (``None``: we ended it) and whether it
        could not be opened."""
        if self.stop.is_set() or self._expired.is_set():
            return None, False
        try:
            async with connect(
                self.url,
                open_timeout=self.open_timeout,
                max_size=self.max_message,
                compression=None,  # media does not compress; the server does not offer it either
                ping_interval=20,
                close_timeout=2,
            ) as ws:
                probe.connected(_public(self.url))
                log.info("watching %s", _public(self.url))
                if await self._receive(ws, probe, recording):
                    return None, False
                return classify_close(ws.close_code, ws.close_reason or ""), False
        except InvalidStatus as exc:
            return classify_status(exc.response.status_code, bytes(exc.response.body or b"")), True
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            return Outcome(Verdict.RETRY, f"cannot connect ({exc or type(exc).__name__})"), True

    async def _receive(self, ws: ClientConnection, probe: WatchProbe, recording: IO[bytes] | None) -> bool:
        """Read until the server closes (``False``) or we stop (``True``)."""

        async def read() -> None:
            with contextlib.suppress(ConnectionClosed):
                async for message in ws:
                    if isinstance(message, str):
                        event = probe.on_text(message)
                        if event is not None and self.on_event is not None:
                            self.on_event(event)
                        continue
                    probe.on_binary(message, mono=time.monotonic(), wall=time.time())
                    if recording is not None:
                        recording.write(message)

        reader = asyncio.create_task(read(), name="watch-read")
        stopper = asyncio.create_task(self.stop.wait(), name="watch-stop")
        expiry = asyncio.create_task(self._expired.wait(), name="watch-duration")
        try:
            done, _ = await asyncio.wait({reader, stopper, expiry}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
            expiry.cancel()
        if reader in done:
            reader.result()
            return False
        await ws.close(1000, self._why_ended())
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        return True


def _public(url: str) -> str:
    """``url`` without its query (a closed stage's token)."""
    return url.split("?", 1)[0]
