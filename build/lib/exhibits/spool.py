"""Uploads on their way to a worker: written to disk as they arrive, never whole in memory.

A model upload may be ``max_upload_bytes`` (100 MiB by default) and several exhibitors
upload at once, so the server keeps at most one buffer (:data:`FLUSH_BYTES`) of each
upload in memory: :func:`spool` writes the body into a file under the spool directory
(``data_dir/spool``) as it streams in, counts it against the limit while it streams
(``model.too_large`` the moment it is over, the partial file removed) and hashes it on the
way. The worker process reads the file by its path; the job removes it when it ends, and
:meth:`Spool.clear` removes whatever a crashed run left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from server.errors import ForumcastError

#: Bytes collected before they are written out in one thread hop (the loop never writes).
FLUSH_BYTES = 1 << 20
#: Size of each read from the request.
READ_BYTES = 1 << 16

Read = Callable[[int], Awaitable[bytes]]


@dataclass(frozen=True, slots=True)
class Spooled:
    """An upload on disk: its file, size and sha256."""

    path: Path
    size: int
    sha256: str

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


class Spool:
    """The directory of uploads in flight."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def clear(self) -> None:
        """Remove every spooled file (at start: left by a run that did not stop cleanly)."""
        shutil.rmtree(self.root, ignore_errors=True)
        self.root.mkdir(parents=True, exist_ok=True)

    def files(self) -> list[Path]:
        return sorted(self.root.iterdir()) if self.root.is_dir() else []

    async def spool(self, read: Read, *, limit: int) -> Spooled:
        """Write what ``read(n)`` yields until it yields ``b""``; over ``limit`` bytes is refused."""
        await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)
        path = self.root / f"{secrets.token_hex(12)}.upload"
        digest = hashlib.sha256()
        size = 0
        handle: BinaryIO = await asyncio.to_thread(path.open, "xb")
        try:
            pending: list[bytes] = []
            buffered = 0
            while chunk := await read(READ_BYTES):
                size += len(chunk)
                if size > limit:
                    raise ForumcastError("model.too_large", f"the upload is over the limit of {limit} bytes")
                pending.append(chunk)
                buffered += len(chunk)
                if buffered >= FLUSH_BYTES:
                    await asyncio.to_thread(_write, handle, digest, pending)
                    pending, buffered = [], 0
            await asyncio.to_thread(_write, handle, digest, pending)
        except BaseException:
            await asyncio.to_thread(_discard, handle, path)
            raise
        await asyncio.to_thread(handle.close)
        return Spooled(path, size, digest.hexdigest())


def _write(handle: BinaryIO, digest: hashlib._Hash, chunks: list[bytes]) -> None:
    for chunk in chunks:
        digest.update(chunk)
        handle.write(chunk)


def _discard(handle: BinaryIO, path: Path) -> None:
    handle.close()
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
