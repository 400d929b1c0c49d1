"""``forumcast watch``: probe a stage (or a producer's input preview) as a viewer would.

The I/O shell around :class:`~clients.probe.WatchProbe`: connect, hand every message with
its arrival times to the probe, append every binary message to the recording, and stop at
the server's close, after ``--duration`` seconds, or on Ctrl-C. :func:`watch` returns a
:class:`~clients.probe.WatchReport` and never raises for what the server does (a refusal is
a report with ``refused`` set), so a load tester can run hundreds of them side by side.

The recording (``--record``) is exactly what the viewer received: the init segment, then
the fragments — a fragmented MP4 that plays as-is with ffmpeg, VLC or any MSE player. On a
re-init the new init segment is appended where it arrived and the fragments continue after
it. Players read only the first ``moov``: a re-init that kept the codec parameters (a
publisher reconnecting, a switch between alike inputs) plays straight through, one that
changed them (another picture size or profile) does not decode past that point. The report's
``init_offsets`` say where each init segment starts in the file, so such a recording can be
cut there into files that each play (``--record`` documents the stream, it does not
re-package it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from clients.connection import DEFAULT_SERVER, ClientError, classify_close, classify_status, watch_url
from clients.probe import WatchProbe, WatchReport

#: Largest message accepted from the server: a keyframe fragment of a high-bitrate input.
MAX_MESSAGE = 64 * 2**20


async def watch(
    url: str,
    *,
    duration: float | None = None,
    record: Path | None = None,
    stop: asyncio.Event | None = None,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    open_timeout: float = 10.0,
    max_message: int = MAX_MESSAGE,
) -> WatchReport:
    """Watch ``url`` (``ws://host/ws/watch/{stage}[?token=…]``) until the server closes,
    ``duration`` seconds pass or ``stop`` is set; what was seen, measured."""
    stop = stop or asyncio.Event()
    # The token stays out of the report: summaries end up in tickets and chat.
    probe = WatchProbe(url.split("?", 1)[0], started=time.monotonic())
    refused = False
    closed = ""
    recording = record.open("wb") if record is not None else None
    try:
        async with connect(
            url,
            open_timeout=open_timeout,
            max_size=max_message,
            compression=None,  # media does not compress; the server does not offer it either
            ping_interval=20,
            close_timeout=2,
        ) as ws:
            closed = await _receive(ws, probe, recording, stop, duration, on_event)
            if not closed:
                closed = classify_close(ws.close_code, ws.close_reason or "").reason
    except InvalidStatus as exc:
        refused = True
        closed = classify_status(exc.response.status_code, bytes(exc.response.body or b"")).reason
    except (OSError, TimeoutError, InvalidHandshake) as exc:
        refused = True
        closed = f"cannot connect ({exc or type(exc).__name__})"
    finally:
        if recording is not None:
            recording.close()
    report = probe.finish(now=time.monotonic(), closed=closed)
    report.refused = refused
    return report


async def _receive(
    ws: ClientConnection,
    probe: WatchProbe,
    recording: IO[bytes] | None,
    stop: asyncio.Event,
    duration: float | None,
    on_event: Callable[[dict[str, Any]], None] | None,
) -> str:
    """Read until the server closes (``""``) or we stop (why, in words)."""

    async def read() -> None:
        with contextlib.suppress(ConnectionClosed):
            async for message in ws:
                if isinstance(message, str):
                    event = probe.on_text(message)
                    if event is not None and on_event is not None:
                        on_event(event)
                    continue
                probe.on_binary(message, mono=time.monotonic(), wall=time.time())
                if recording is not None:
                    recording.write(message)

    reader = asyncio.create_task(read(), name="watch-read")
    stopper = asyncio.create_task(stop.wait(), name="watch-stop")
    try:
        done, _ = await asyncio.wait({reader, stopper}, timeout=duration, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
    if reader in done:
        reader.result()
        return ""
    reason = "stopped" if stopper in done else "duration reached"
    await ws.close(1000, reason)
    reader.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await reader
    return reason


# --- the command --------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``forumcast watch --stage ID [--input ID] [--token T] [--duration S] [--record F] [--json]``."""
    parser.add_argument(
        "--server",
        default=os.environ.get("FORUMCAST_SERVER", DEFAULT_SERVER),
        help=f"server address (default $FORUMCAST_SERVER or {DEFAULT_SERVER})",
    )
    parser.add_argument("--stage", help="the stage whose program to watch")
    parser.add_argument(
        "--input", dest="input_id", metavar="ID", help="watch one input's preview instead (producer token)"
    )
    parser.add_argument(
        "--token",
        default=os.environ.get("FORUMCAST_TOKEN"),
        help="invitation (closed stage) or producer token (default $FORUMCAST_TOKEN)",
    )
    parser.add_argument("--duration", type=float, metavar="S", help="stop after S seconds (default: Ctrl-C)")
    parser.add_argument("--record", type=Path, metavar="FILE", help="write what arrives to FILE (fMP4)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--events", action="store_true", help="print server events as they arrive")


def main(args: argparse.Namespace) -> int:
    """Run ``forumcast watch``: 0 when media arrived, 1 when none did (refused, nothing live)."""
    try:
        url = watch_url(args.server, stage=args.stage, input_id=args.input_id, token=args.token)
    except ClientError as exc:
        print(f"forumcast watch: {exc}", file=sys.stderr)
        return 2
    report = asyncio.run(_run(args, url))
    print(report.to_json() if args.json else report.describe(), flush=True)
    return 0 if report.fragments and not report.refused else 1


async def _run(args: argparse.Namespace, url: str) -> WatchReport:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not on Windows
            loop.add_signal_handler(sig, stop.set)

    def show(event: dict[str, Any]) -> None:
        if args.events:
            print(f"event: {event}", file=sys.stderr, flush=True)

    return await watch(url, duration=args.duration, record=args.record, stop=stop, on_event=show)
