"""The exhibition's state in Redis, for several instances that serve one event.

With ``redis_url`` set every instance reads and writes the same keys (``{p}`` is the
event's namespace, ``forumcast:{event}:``)::

    {p}blob:{sha256}          string   a model file's bytes (every LOD, the hall scene), stored once
    {p}models                 hash     exhibit -> its current ModelAsset (JSON)
    {p}models-version         counter  INCR with every change of ``models``; instances poll it
    {p}job:{id}               string   an ingest job (JSON), expires a day after its last change
    {p}hall:{inputs}          string   the hall scene built from these inputs: {"sha", "bytes"}
    {p}builds                 hash     what was built, counted by its builder: hall, demo-model
    {p}build-lease:{name}     string   who builds ``name`` now (:mod:`exhibits.lease`)

Blobs are content-addressed, so writing one is ``SET NX`` and never needs a lock; a blob
is written before the manifest that names it, so whoever sees a manifest can fetch its
files. Blobs are plain strings, read and written whole: Redis takes strings up to 512 MB,
but one command of that size holds its single thread (and the live path's streams on the
same server) for a long time, so blobs are limited to ``max_blob_bytes`` (32 MiB by
default; :func:`check_blob_size` refuses larger ones with ``model.too_large``). The web-ready
LODs and the hall scene are a few MB; a finest LOD above the limit means the upload
needs fewer triangles or smaller textures.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from exhibits.lease import BuildLease
from exhibits.modelstore import ModelAsset
from exhibits.settings import MAX_SHARED_BLOB_BYTES
from server.errors import ForumcastError
from server.store.base import StoreUnavailable
from server.store.codec import key_prefix

#: Seconds a job's record outlives its last change.
JOB_TTL = 24 * 3600
#: Seconds a hall record is kept (a newer one replaces it in use long before).
HALL_TTL = 7 * 24 * 3600

#: KEYS: lease, hall record, builds. ARGV: lease value, record JSON, record TTL (s).
#: Records the hall built under the lease only while the lease is still the writer's.
RECORD_HALL = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
redis.call('HINCRBY', KEYS[3], 'hall', 1)
return 1
"""


def check_blob_size(size: int, *, limit: int, what: str) -> None:
    """Refuse a file too large to share through Redis (``model.too_large``, 413)."""
    if size > limit:
        raise ForumcastError(
            "model.too_large",
            f"{what} is {size} bytes; files shared between instances may be at most {limit} bytes "
            "(upload a model with fewer triangles or smaller textures)",
        )


@contextmanager
def _answering() -> Iterator[None]:
    """For what a request waits on: Redis failing is ``store.unavailable`` (503), not a 500."""
    try:
        yield
    except (RedisError, OSError) as exc:
        raise StoreUnavailable(f"the exhibition's Redis is unavailable: {type(exc).__name__}") from exc


class SharedExhibition:
    """The keys above, on one ``redis.asyncio`` client built with ``decode_responses=False``."""

    def __init__(
        self, client: Redis, namespace: str, *, owner: str, max_blob_bytes: int = MAX_SHARED_BLOB_BYTES
    ) -> None:
        self.client = client
        self.owner = owner
        self.max_blob_bytes = max_blob_bytes
        self._p = key_prefix(namespace)
        self._record_hall = client.register_script(RECORD_HALL)

    def blob_key(self, sha: str) -> str:
        return f"{self._p}blob:{sha}"

    @property
    def builds_key(self) -> str:
        return f"{self._p}builds"

    async def close(self) -> None:
        await self.client.aclose()

    # -- blobs ----------------------------------------------------------------------

    async def put_blob(self, sha: str, data: bytes, *, what: str) -> bool:
        """Store ``data`` (whose sha256 is ``sha``) once; True if this call stored it."""
        check_blob_size(len(data), limit=self.max_blob_bytes, what=what)
        return bool(await self.client.set(self.blob_key(sha), data, nx=True))

    async def get_blob(self, sha: str) -> bytes | None:
        with _answering():
            data = await self.client.get(self.blob_key(sha))
        # The client reads bytes (decode_responses=False); str only satisfies redis-py's types.
        return data.encode() if isinstance(data, str) else data

    # -- models ---------------------------------------------------------------------

    async def share_model(self, asset: ModelAsset, glbs: list[bytes]) -> None:
        """Every LOD of ``asset`` (all checked first: a refused one stores nothing), then the
        manifest, so whoever sees the manifest can fetch its files."""
        for info, data in zip(asset.lods, glbs, strict=True):
            check_blob_size(len(data), limit=self.max_blob_bytes, what=f"LOD {info.level} of the model")
        for info, data in zip(asset.lods, glbs, strict=True):
            await self.put_blob(info.sha256, data, what=f"LOD {info.level} of the model")
        await self.publish_model(asset)

    async def publish_model(self, asset: ModelAsset) -> int:
        """Make ``asset`` its exhibit's model for every instance; returns the new version."""
        text = json.dumps(asset.to_json(), ensure_ascii=False)
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hset(f"{self._p}models", asset.exhibit, text)
            pipe.incr(f"{self._p}models-version")
            _, version = await pipe.execute()
        return int(version)

    async def version(self) -> int:
        return int(await self.client.get(f"{self._p}models-version") or 0)

    async def models(self) -> tuple[int, dict[str, ModelAsset]]:
        """The version and every exhibit's model, read together."""
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.get(f"{self._p}models-version")
            pipe.hgetall(f"{self._p}models")
            version, raw = await pipe.execute()
        return int(version or 0), {
            _text(exhibit): ModelAsset.from_json(json.loads(text)) for exhibit, text in raw.items()
        }

    async def count_build(self, what: str) -> None:
        await self.client.hincrby(self.builds_key, what, 1)

    async def builds(self) -> dict[str, int]:
        raw = await self.client.hgetall(self.builds_key)
        return {_text(k): int(v) for k, v in raw.items()}

    # -- jobs -----------------------------------------------------------------------

    async def save_job(self, record: dict[str, Any]) -> None:
        await self.client.set(f"{self._p}job:{record['id']}", json.dumps(record), ex=JOB_TTL)

    async def load_job(self, job_id: str) -> dict[str, Any] | None:
        with _answering():
            text = await self.client.get(f"{self._p}job:{job_id}")
        if text is None:
            return None
        record = json.loads(text)
        return record if isinstance(record, dict) else None

    # -- the hall -------------------------------------------------------------------

    def lease(self, name: str) -> BuildLease:
        return BuildLease(self.client, f"{self._p}build-lease:{name}", self.owner)

    async def hall(self, inputs: str) -> tuple[str, int] | None:
        """The sha256 and size of the hall scene built from ``inputs``, if one was."""
        text = await self.client.get(f"{self._p}hall:{inputs}")
        if text is None:
            return None
        record = json.loads(text)
        return str(record["sha"]), int(record["bytes"])

    async def record_hall(self, lease: BuildLease, inputs: str, sha: str, size: int) -> bool:
        """Publish the hall built from ``inputs``, if ``lease`` is still ours (else nothing)."""
        done = await self._record_hall(
            keys=[lease.key, f"{self._p}hall:{inputs}", self.builds_key],
            args=[lease.value, json.dumps({"sha": sha, "bytes": size}), HALL_TTL],
        )
        return bool(done)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
