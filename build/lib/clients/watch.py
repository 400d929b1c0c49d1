"""``forumcast watch``: probe a stage (or a producer's input preview) as a viewer would.

The command around :func:`clients.watcher.watch` (the WebSocket viewer, measured by
:class:`~clients.probe.WatchProbe`): it stops at the server's close, after ``--duration``
seconds, or on Ctrl-C. Given several servers (``--server`` repeated or a comma-separated
list), or ``--reconnect``, it reconnects after a drop, to the next server in turn.

The recording (``--record``) is exactly what the viewer received: the init segment, then
the fragments — a fragmented MP4 that plays as-is with ffmpeg, VLC or any MSE player. On a
re-init the new init segment is appended where it arrived and the fragments continue after
it. Players read only the first ``moov``: a re-init that kept the codec parameters (a
publisher reconnecting, a switch between alike inputs) plays straight through, one that
changed them (another picture size or profile) does not decode past that point. The report's
``init_offsets`` say where each init segment starts in the file, so such a recording can be
cut there into files that each play (``--record`` documents the stream, it does not
re-package it).

``--hls`` follows the stage's Low-Latency HLS instead (:func:`watch_hls`, measured by
:class:`~clients.hls_probe.HlsProbe`): the multivariant playlist, then the media playlist
with blocking reloads (``_HLS_msn``/``_HLS_part``, delta updates where the server offers
them), every part in order from the live edge, each new ``EXT-X-MAP`` before the first part
under it. Its ``--record`` is the same kind of file: the init segments and the parts as
they came. Meanwhile it sends the heartbeat that makes the server count it as a viewer
(:mod:`clients.hls_heartbeat`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import time
from pathlib import Path
from typing import IO, Any, Protocol, TypeVar
from urllib.parse import urlencode

import aiohttp

from clients.connection import ClientError, classify_status, hls_url, watch_url
from clients.hls_heartbeat import keep_counted
from clients.hls_playlist_reader import (
    PlaylistError,
    is_media_playlist,
    parse_media_playlist,
    parse_multivariant,
)
from clients.hls_probe import Fetch, HlsProbe
from clients.hls_report import HlsReport
from clients.probe import WatchReport
from clients.servers import add_server_option, servers_from
from clients.watcher import MAX_MESSAGE, watch

__all__ = ["MAX_MESSAGE", "add_arguments", "main", "watch", "watch_hls"]


class _Refusable(Protocol):
    refused: bool


_R = TypeVar("_R", bound=_Refusable, covariant=True)


class _Probe(Protocol[_R]):
    def finish(self, *, now: float, closed: str = "") -> _R: ...


def _finished(probe: _Probe[_R], *, closed: str, refused: bool) -> _R:
    """``probe``'s report as of now, ``closed`` for that reason, ``refused`` or not."""
    report = probe.finish(now=time.monotonic(), closed=closed)
    report.refused = refused
    return report


# --- HLS ----------------------------------------------------------------------------------------

#: Longest wait for one HTTP answer; a blocking reload is held up to three target durations.
HLS_REQUEST_TIMEOUT = 20.0
#: Pause before reloading a playlist that cannot block (nothing to wait for yet, or refused).
HLS_PAUSE = 0.5


class _Refused(Exception):
    """The stage's multivariant playlist was refused (the reason, in words)."""


async def watch_hls(
    url: str,
    *,
    duration: float | None = None,
    record: Path | None = None,
    stop: asyncio.Event | None = None,
    request_timeout: float = HLS_REQUEST_TIMEOUT,
) -> HlsReport:
    """Follow the LL-HLS at ``url`` (``http://host/live/{stage}/index.m3u8[?token=…]``) as a
    low-latency player would, until it ends, ``duration`` seconds pass or ``stop`` is set;
    never raises for what the server does (a refusal is a report with ``refused`` set)."""
    stop = stop or asyncio.Event()
    probe = HlsProbe(url.split("?", 1)[0], started=time.monotonic())
    recording = record.open("wb") if record is not None else None
    refused = False
    try:
        timeout = aiohttp.ClientTimeout(total=request_timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            follower = asyncio.create_task(_follow(session, url, probe, recording), name="watch-hls")
            beating = asyncio.create_task(keep_counted(session, url), name="watch-hls-heartbeat")
            stopper = asyncio.create_task(stop.wait(), name="watch-stop")
            try:
                done, _ = await asyncio.wait(
                    {follower, stopper}, timeout=duration, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                stopper.cancel()
                beating.cancel()
                if not follower.done():
                    follower.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await follower
                with contextlib.suppress(asyncio.CancelledError):
                    await beating
            if follower in done:
                closed = follower.result()
            else:
                closed = "stopped" if stopper in done else "duration reached"
    except _Refused as exc:
        refused = True
        closed = str(exc)
    finally:
        if recording is not None:
            recording.close()
    return _finished(probe, closed=closed, refused=refused)


async def _get(session: aiohttp.ClientSession, url: str) -> tuple[int, bytes]:
    async with session.get(url) as response:
        return response.status, await response.read()


def _with_query(url: str, query: dict[str, str]) -> str:
    if not query:
        return url
    return f"{url}{'&' if '?' in url else '?'}{urlencode(query)}"


async def _follow(
    session: aiohttp.ClientSession, url: str, probe: HlsProbe, recording: IO[bytes] | None
) -> str:
    """Follow the stream until it ends or fails: why, in words (:class:`_Refused` at the start)."""
    try:
        status, body = await _get(session, url)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise _Refused(f"cannot connect ({exc or type(exc).__name__})") from None
    if status != 200:
        raise _Refused(classify_status(status, body).reason)
    try:
        text = body.decode("utf-8")
        media_url = url
        if not is_media_playlist(text):
            variants = parse_multivariant(text, url)
            if not variants:
                raise _Refused("the multivariant playlist lists no stream")
            probe.set_variant(variants[0])
            media_url = variants[0].uri
        return await _follow_media(session, media_url, probe, recording)
    except (PlaylistError, UnicodeDecodeError, KeyError, ValueError) as exc:
        probe.error(f"bad playlist: {exc}")
        return "bad playlist"
    except (aiohttp.ClientError, TimeoutError) as exc:
        return f"connection lost ({exc or type(exc).__name__})"


async def _follow_media(
    session: aiohttp.ClientSession, media_url: str, probe: HlsProbe, recording: IO[bytes] | None
) -> str:
    query: dict[str, str] = {}
    while True:
        status, body = await _get(session, _with_query(media_url, query))
        if status == 503 and "_HLS_msn" in query:  # the blocking reload timed out: ask again
            probe.timed_out()
            continue
        if status == 400 and "_HLS_msn" in query:
            probe.error(f"blocking reload {query} refused: {classify_status(status, body).reason}")
            query = {}
            await asyncio.sleep(HLS_PAUSE)
            continue
        if status != 200:
            return f"media playlist: {classify_status(status, body).reason}"
        playlist = parse_media_playlist(body.decode("utf-8"), media_url)
        probe.on_playlist(playlist)
        missed = False
        while not missed and (fetch := probe.next_fetch()) is not None:
            missed = not await _download(session, fetch, probe, recording)
        if playlist.ended and not missed:
            return "the stream ended"
        query = {} if missed else probe.reload_query()
        if "_HLS_msn" not in query:
            await asyncio.sleep(HLS_PAUSE)


async def _download(
    session: aiohttp.ClientSession, fetch: Fetch, probe: HlsProbe, recording: IO[bytes] | None
) -> bool:
    """Fetch ``fetch`` (its map first, when new); whether it arrived."""
    if fetch.map_uri is not None:
        status, data = await _get(session, fetch.map_uri)
        if status != 200:
            probe.on_missing(fetch, status)
            return False
        probe.on_map(data)
        if recording is not None:
            recording.write(data)
    status, data = await _get(session, fetch.uri)
    if status != 200:
        probe.on_missing(fetch, status)
        return False
    probe.on_media(fetch, data, mono=time.monotonic(), wall=time.time())
    if recording is not None:
        recording.write(data)
    return True


# --- the command --------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``forumcast watch --stage ID [--input ID] [--token T] [--duration S] [--record F] [--json]``."""
    add_server_option(parser)
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
    parser.add_argument(
        "--hls",
        action="store_true",
        help="follow the stage's Low-Latency HLS (/live/STAGE/index.m3u8) instead of its WebSocket",
    )
    parser.add_argument(
        "--reconnect",
        action="store_true",
        help="reconnect after a drop (always, given several servers: to the next one)",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--events", action="store_true", help="print server events as they arrive")


def main(args: argparse.Namespace) -> int:
    """Run ``forumcast watch``: 0 when media arrived, 1 when none did (refused, nothing live)."""
    if args.hls:
        return _main_hls(args)
    try:
        urls = [
            watch_url(server, stage=args.stage, input_id=args.input_id, token=args.token)
            for server in servers_from(args)
        ]
    except ClientError as exc:
        print(f"forumcast watch: {exc}", file=sys.stderr)
        return 2
    report = asyncio.run(_run(args, urls))
    print(report.to_json() if args.json else report.describe(), flush=True)
    return 0 if report.fragments and not report.refused else 1


def _main_hls(args: argparse.Namespace) -> int:
    try:
        if args.input_id:
            raise ClientError("--hls watches a stage's program; an input's preview is WebSocket only")
        servers = servers_from(args)
        if len(servers) > 1:
            raise ClientError("--hls follows one server (give --server once)")
        url = hls_url(servers[0], stage=args.stage, token=args.token)
    except ClientError as exc:
        print(f"forumcast watch: {exc}", file=sys.stderr)
        return 2
    report = asyncio.run(_run_hls(args, url))
    print(report.to_json() if args.json else report.describe(), flush=True)
    return 0 if (report.parts or report.full_segments) and not report.refused else 1


async def _run_hls(args: argparse.Namespace, url: str) -> HlsReport:
    return await watch_hls(url, duration=args.duration, record=args.record, stop=_stop_on_signals())


def _stop_on_signals() -> asyncio.Event:
    """An event set by Ctrl-C or SIGTERM (where the loop can have signal handlers)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not on Windows
            loop.add_signal_handler(sig, stop.set)
    return stop


async def _run(args: argparse.Namespace, urls: list[str]) -> WatchReport:
    stop = _stop_on_signals()

    def show(event: dict[str, Any]) -> None:
        if args.events:
            print(f"event: {event}", file=sys.stderr, flush=True)

    return await watch(
        urls,
        duration=args.duration,
        record=args.record,
        stop=stop,
        on_event=show,
        on_status=lambda line: print(line, file=sys.stderr, flush=True),
        reconnect=args.reconnect or len(urls) > 1,
    )
