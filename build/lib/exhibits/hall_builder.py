"""``/hall.glb``: the hall scene made from every exhibit's smallest LOD, once per change.

A build is named by its *inputs*: a sha256 over the scene's version, the catalog's ids
and every exhibit's smallest LOD. The scene itself is built in a worker process and
stored content-addressed like any model file.

* Alone (no Redis), ``hall.json`` in the data dir remembers the last inputs and their
  scene, so a restart with the same models builds nothing.
* With Redis, ``{p}hall:{inputs}`` records the scene built from those inputs, for every
  instance. An instance that finds no record takes the build lease ``hall:{inputs}``
  (:mod:`exhibits.lease`): the holder builds, shares the blob and writes the record
  (only while the lease is still its own), the others poll for the record and serve the
  same blob. So each distinct set of inputs is built once, whichever instance saw it first,
  and an instance that dies mid-build leaves the build to the next one within the lease.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from exhibits.catalog import Catalog
from exhibits.hall import HallLayout
from exhibits.modelstore import SHA256, ModelAsset, ModelStore, sha256_hex
from exhibits.shared import SharedExhibition
from exhibits.workers import Workers, build_hall

log = logging.getLogger("forumcast.exhibits")

#: Bump when the hall scene's construction changes.
HALL_VERSION = "hall-1"
#: Seconds between looks for the record while another instance builds.
POLL_SECONDS = 0.1

EnsureLocal = Callable[[str], Awaitable[bool]]


def hall_inputs(catalog: Catalog, assets: Mapping[str, ModelAsset]) -> tuple[str, dict[str, str]]:
    """The inputs' name and each exhibit's smallest LOD (sha256), in exhibit order."""
    smallest = {exhibit: asset.lods[-1].sha256 for exhibit, asset in sorted(assets.items()) if asset.lods}
    key = json.dumps([HALL_VERSION, [e.id for e in catalog], smallest])
    return hashlib.sha256(key.encode()).hexdigest(), smallest


class HallBuilder:
    """Builds (or finds) the scene for the current models; :meth:`sha` is what ``/hall.glb`` serves."""

    def __init__(
        self,
        *,
        models: ModelStore,
        workers: Workers,
        layout: HallLayout,
        catalog: Catalog,
        shared: SharedExhibition | None = None,
        ensure_local: EnsureLocal | None = None,
    ) -> None:
        self.models = models
        self.workers = workers
        self.layout = layout
        self.catalog = catalog
        self.shared = shared
        self._ensure_local = ensure_local
        self.bytes: int | None = None
        self._sha: str | None = None
        self._ready = asyncio.Event()

    async def sha(self) -> str:
        """The sha256 of the current scene, waiting for the first build if needed."""
        await self._ready.wait()
        assert self._sha is not None
        return self._sha

    def _set(self, sha: str, size: int) -> None:
        self._sha, self.bytes = sha, size
        self._ready.set()

    async def build(self, assets: Mapping[str, ModelAsset], *, superseded: Callable[[], bool]) -> None:
        """The scene for ``assets``: found, or built here; ``superseded()`` says a newer
        change came in (then waiting for another instance's build is pointless)."""
        key, smallest = hall_inputs(self.catalog, assets)
        if self.shared is None:
            await self._build_alone(key, smallest)
        else:
            await self._build_shared(self.shared, key, smallest, superseded)

    async def _make(self, smallest: dict[str, str]) -> bytes:
        if self._ensure_local is not None:
            present = await asyncio.gather(*(self._ensure_local(sha) for sha in smallest.values()))
            smallest = {e: sha for (e, sha), ok in zip(smallest.items(), present, strict=True) if ok}
        paths = {exhibit: self.models.path(sha) for exhibit, sha in smallest.items()}
        data: bytes = await self.workers.run(build_hall, self.layout, list(self.catalog), paths, owner="hall")
        return data

    async def _build_alone(self, key: str, smallest: dict[str, str]) -> None:
        index = self.models.root / "hall.json"
        known = await asyncio.to_thread(_read_json, index)
        known_sha = str(known.get("sha", ""))
        if (
            known.get("inputs") == key
            and SHA256.match(known_sha)
            and await asyncio.to_thread(self.models.has, known_sha)
        ):
            size = await asyncio.to_thread(lambda: self.models.path(known_sha).stat().st_size)
            self._set(known_sha, size)
            return
        data = await self._make(smallest)
        sha, _ = await asyncio.to_thread(self.models.put, data)
        await asyncio.to_thread(index.write_text, json.dumps({"inputs": key, "sha": sha}))
        log.info("hall scene %s: %d bytes, %d models", sha[:12], len(data), len(smallest))
        self._set(sha, len(data))

    async def _build_shared(
        self, shared: SharedExhibition, key: str, smallest: dict[str, str], superseded: Callable[[], bool]
    ) -> None:
        while True:
            found = await shared.hall(key)
            if found is not None:
                if self._ensure_local is None or await self._ensure_local(found[0]):
                    self._set(*found)
                    return
                log.warning("hall scene %s is recorded but its blob is gone: building it again", found[0])
            if superseded():
                return
            lease = shared.lease(f"hall:{key}")
            async with lease.holding() as mine:
                # Built while we asked? Then the record changed and the loop serves it.
                if mine and await shared.hall(key) == found:
                    data = await self._make(smallest)
                    sha = await asyncio.to_thread(sha256_hex, data)
                    await shared.put_blob(sha, data, what="the hall scene")
                    await asyncio.to_thread(self.models.put, data)
                    if await shared.record_hall(lease, key, sha, len(data)):
                        log.info("hall scene %s: %d bytes, %d models", sha[:12], len(data), len(smallest))
                    else:
                        log.warning("hall scene %s: lease lost during the build, not recorded", sha[:12])
            if not mine:
                await asyncio.sleep(POLL_SECONDS)  # another instance builds it


def _read_json(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
