"""``forumcast exhibits ingest FILE --exhibit ID``: a 3D model into an exhibit, with progress.

Locally (the default) the pipeline runs in this process and the result is committed to
the model store under ``--data-dir``, where a running server with the same data dir
picks it up within seconds; with ``redis_url`` configured it also goes to the event's
Redis (:mod:`exhibits.shared`), where every instance picks it up. With ``--server URL
--token TOKEN`` the file is uploaded to ``POST /api/v1/exhibits/{id}/model`` and the job
is followed until it ends.

A refused model (every ``model.*`` error), an unknown exhibit or a bad flag prints one
line on stderr and exits with code 2; the model store is left as it was. What the
libraries said while reading the file is printed as one ``warning:`` line each, never as
their tracebacks.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import aiohttp
from redis.exceptions import RedisError

from exhibits.app import configured_catalog, configured_limits, open_shared
from exhibits.exhibit_routes import asset_json
from exhibits.modelstore import ModelAsset, ModelStore, sha256_hex
from exhibits.pipeline import ingest_quietly
from server.config import Config, load_config
from server.errors import ForumcastError
from server.schedule.loader import demo_event, load_event_file

EXIT_USAGE = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="exhibits_command", required=True)
    ingest = commands.add_parser("ingest", help="make a web-ready GLB with LODs from a 3D file")
    ingest.add_argument("file", type=Path, help="GLB, glTF/OBJ in a .zip, STL, PLY, OFF or 3MF")
    ingest.add_argument("--exhibit", required=True, help="exhibit id from the catalog")
    ingest.add_argument("--unit", choices=["mm", "cm", "m", "in"], help="unit of the file (default: guessed)")
    ingest.add_argument("--up", choices=["y", "z"], help="axis that is up in the file (default: guessed)")
    ingest.add_argument("--config", metavar="FILE", help="TOML configuration file (also $FORUMCAST_CONFIG)")
    ingest.add_argument("--data-dir", dest="data_dir", help="model store (default: the config's data_dir)")
    ingest.add_argument("--catalog", help="catalog file (default: the config's, else the demo catalog)")
    ingest.add_argument("--server", help="upload to this forumcast (http://host:port) instead")
    ingest.add_argument("--token", help="with --server: an exhibitor:ID or ops token")
    ingest.add_argument("--json", action="store_true", help="print the result as JSON")


class ProgressBar:
    """One redrawn line on a terminal; one line per step otherwise (logs stay readable)."""

    def __init__(self, out: TextIO, *, width: int = 30) -> None:
        self.out = out
        self.width = width
        self.tty = out.isatty()
        self._last_step = ""

    def update(self, fraction: float, step: str) -> None:
        fraction = max(0.0, min(1.0, fraction))
        if self.tty:
            filled = int(fraction * self.width)
            bar = "#" * filled + "." * (self.width - filled)
            self.out.write(f"\r[{bar}] {fraction * 100:5.1f}% {step:<20}")
            self.out.flush()
        elif step != self._last_step:
            self.out.write(f"{fraction * 100:5.1f}% {step}\n")
            self.out.flush()
        self._last_step = step

    def finish(self) -> None:
        if self.tty:
            self.out.write("\n")
            self.out.flush()


def _fail(message: str) -> int:
    print(f"forumcast: {message.splitlines()[0]}", file=sys.stderr)
    return EXIT_USAGE


def main(args: argparse.Namespace) -> int:
    if not args.file.is_file():
        return _fail(f"{args.file}: no such file")
    if args.server:
        if not args.token:
            return _fail("--server needs --token (an exhibitor:ID or ops token)")
        return asyncio.run(_upload(args))
    return _ingest_here(args)


def _ingest_here(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config, overrides={"data_dir": args.data_dir, "catalog": args.catalog})
        exhibit = configured_catalog(config).get(args.exhibit)
        data = args.file.read_bytes()
        limits = configured_limits(config)
        bar = ProgressBar(sys.stderr)
        started = time.perf_counter()
        try:
            result = ingest_quietly(
                data,
                args.file.name,
                unit=args.unit,
                up=args.up,
                envelope=exhibit.envelope,
                limits=limits,
                progress=bar.update,
            )
        finally:
            bar.finish()
        asset = ModelAsset.from_result(
            exhibit.id,
            result,
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            source=f"upload:{sha256_hex(data)}",
        )
        glbs = [lod.glb for lod in result.lods]
        if config.redis_url:  # the instances of the event read their models from Redis
            namespace = (load_event_file(config.event) if config.event else demo_event()).id
            asyncio.run(_share(config, namespace, asset, glbs))
        ModelStore(Path(config.data_dir)).commit(asset, glbs)
    except ForumcastError as exc:
        return _fail(f"{args.file.name}: {exc.message}" if exc.code.startswith("model.") else exc.message)
    except (RedisError, OSError) as exc:
        return _fail(f"could not store the model in Redis: {type(exc).__name__}")
    _report(asset_json(asset), args.json, time.perf_counter() - started)
    return 0


async def _share(config: Config, namespace: str, asset: ModelAsset, glbs: list[bytes]) -> None:
    shared = open_shared(config, namespace)
    assert shared is not None
    try:
        await shared.share_model(asset, glbs)
    finally:
        await shared.close()


def _report(model: dict[str, Any], as_json: bool, seconds: float | None) -> None:
    if as_json:
        print(json.dumps(model, indent=1))
        return
    low, high = model["bounds"]
    size = " x ".join(f"{b - a:.2f}" for a, b in zip(low, high, strict=True))
    took = f" in {seconds:.1f} s" if seconds is not None else ""
    print(
        f"{model['source_format']} ({model['source_triangles']} triangles, unit {model['unit']}, "
        f"up {model['up']}) -> {size} m{took}"
    )
    print(f"{'LOD':>3} {'triangles':>10} {'vertices':>9} {'bytes':>10} {'texture':>9} {'error':>8}  url")
    for lod in model["lods"]:
        print(
            f"{lod['level']:>3} {lod['triangles']:>10} {lod['vertices']:>9} {lod['bytes']:>10} "
            f"{lod['texture_bytes']:>9} {lod['error']:>8.4f}  {lod['url']}"
        )
    for warning in model.get("warnings", ()):
        print(f"warning: {warning}")


async def _upload(args: argparse.Namespace) -> int:
    base = args.server.rstrip("/")
    headers = {"Authorization": f"Bearer {args.token}"}
    params = {"filename": args.file.name} | {k: v for k, v in (("unit", args.unit), ("up", args.up)) if v}
    bar = ProgressBar(sys.stderr)
    async with aiohttp.ClientSession(headers=headers) as session:
        data = await asyncio.to_thread(args.file.read_bytes)
        async with session.post(
            f"{base}/api/v1/exhibits/{args.exhibit}/model", params=params, data=data
        ) as r:
            body = await r.json(content_type=None)
            if r.status != 202:
                return _fail(body.get("error", {}).get("message", f"HTTP {r.status}"))
        url = f"{base}{body['url']}"
        while body["state"] in ("queued", "running"):
            bar.update(body["progress"], body["step"])
            await asyncio.sleep(0.25)
            async with session.get(url) as r:
                body = await r.json(content_type=None)
        bar.finish()
    if body["state"] == "failed":
        return _fail(f"{args.file.name}: {body['error']['message']}")
    _report(body["model"], args.json, None)
    return 0
