"""``forumcast publish``: push a file or the live test pattern to an input over WebSocket.

The command around :func:`clients.publisher.publish`: its arguments, the source they name
(a file, looped or not, or the test pattern), one line per server event worth a line
(:func:`describe_event`), Ctrl-C as a clean stop, and a summary at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterable
from pathlib import Path
from typing import Any

from clients.connection import ClientError, Refused, Verdict, publish_url
from clients.outbox import Item, OutboxStats
from clients.publisher import publish
from clients.servers import add_server_option, servers_from
from clients.source import file_items, load_clip, pattern_items
from server.encoding.testpattern import PatternSettings, parse_bitrate


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``forumcast publish --input ID --key K (FILE | --test-pattern) [...]``."""
    parser.add_argument("file", nargs="?", type=Path, metavar="FILE", help="an MP4/fMP4 file (stream copy)")
    parser.add_argument("--test-pattern", action="store_true", help="publish a live test pattern instead")
    add_server_option(parser)
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
        urls = [publish_url(server, args.input_id) for server in servers_from(args)]
        if args.test_pattern:
            source = pattern_items(_settings(args))
        else:
            clip = load_clip(args.file, fragment_ms=args.fragment_ms)
            source = file_items(clip, loop=args.loop)
        return asyncio.run(_run(args, urls, source))
    except (ClientError, ValueError) as exc:
        print(f"forumcast publish: {exc}", file=sys.stderr)
        return 1 if isinstance(exc, Refused) else 2
    except KeyboardInterrupt:  # before the loop could take Ctrl-C over (a long remux)
        return 130


async def _run(args: argparse.Namespace, urls: list[str], source: AsyncIterable[Item]) -> int:
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

    others = f" (then {', '.join(urls[1:])})" if len(urls) > 1 else ""
    print(f"publishing to {urls[0]}{others}", flush=True)
    report = await publish(
        urls,
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
        f" {stats.fragments_dropped} dropped; {report.ended}"
        + (f" (last server {report.url})" if len(urls) > 1 else ""),
        flush=True,
    )
    return 1 if report.verdict is Verdict.TAKEN_OVER else 0
