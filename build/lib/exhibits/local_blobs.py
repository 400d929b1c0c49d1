"""The data dir as this instance's cache of the shared model files.

With Redis every model file is a blob there (:mod:`exhibits.shared`), and each instance
keeps the ones it has served or used under ``data_dir/models`` (the same layout as
:class:`~exhibits.modelstore.ModelStore`, which does the file writing). A file the
instance lacks is fetched from Redis once: concurrent requests for it wait for the same
fetch, its bytes are checked against their sha256 before they are kept, and from then on
it is served from disk (and memory) like any local file. Without Redis there is nothing
to fetch: a file is there or it is not.
"""

from __future__ import annotations

import asyncio
import logging

from exhibits.modelstore import ModelStore, sha256_hex
from exhibits.shared import SharedExhibition

log = logging.getLogger("forumcast.exhibits")


class LocalBlobs:
    """Model files on this instance's disk, filled from Redis on demand."""

    def __init__(self, models: ModelStore, shared: SharedExhibition | None) -> None:
        self.models = models
        self.shared = shared
        self._fetching: dict[str, asyncio.Future[bool]] = {}
        #: Blobs fetched from Redis by this instance (for tests and logs).
        self.fetched = 0

    async def ensure(self, sha: str) -> bool:
        """Whether the file ``sha`` is on local disk now, fetched if it was not."""
        if await asyncio.to_thread(self.models.has, sha):
            return True
        if self.shared is None:
            return False
        pending = self._fetching.get(sha)
        if pending is None:
            pending = asyncio.ensure_future(self._fetch(self.shared, sha))
            self._fetching[sha] = pending
            pending.add_done_callback(lambda _: self._fetching.pop(sha, None))
        # Shielded: one caller going away (a client hanging up) does not cancel the others' fetch.
        return await asyncio.shield(pending)

    async def _fetch(self, shared: SharedExhibition, sha: str) -> bool:
        data = await shared.get_blob(sha)
        if data is None:
            return False
        if await asyncio.to_thread(sha256_hex, data) != sha:
            log.error("blob %s in Redis does not match its sha256: not used", sha[:12])
            return False
        await asyncio.to_thread(self.models.put, data)
        self.fetched += 1
        return True
