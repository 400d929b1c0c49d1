"""The embedded state store: one process, nothing shared; kept on disk when given a file.

This module owns :class:`MemoryStore`, the default when no ``--redis-url`` is given, and
:class:`MemoryBackend`, the dict it keeps its data in. It follows the Redis store's
semantics on purpose (the contract suite runs against both), including the awkward ones:

* values are kept as JSON text, so what goes in is validated and copied the same way the
  Redis store does it, and every read hands out a fresh object the caller may mutate;
* one key holds one kind of thing (value, list, counter group, set or rate-limit window:
  ``set`` replaces
  anything, but reading or appending to a key of another kind raises TypeError, like
  Redis' WRONGTYPE does.

No method awaits anything, so each one is atomic with respect to other coroutines. Given a
snapshot file (:mod:`server.store.snapshot`), the backend writes its data there at most once a
second after a change and when a store closes, and reads it back when it is made.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from server.store.base import Hits
from server.store.codec import decode_value, encode_value, key_prefix
from server.store.snapshot import encode, load, save

#: Seconds between a change and the snapshot that keeps it.
SNAPSHOT_AFTER = 1.0
#: Rate-limit hits between two sweeps of the ended windows (so forgotten clients free memory).
SWEEP_EVERY = 1024


@dataclass(slots=True)
class Window:
    """A rate-limit window: its count and its end (seconds, on the callers' clock)."""

    count: int
    ends: float


#: What one key holds: a JSON text (value), a list of JSON texts, a counter group, a set or a window.
Entry = str | list[str] | dict[str, int] | set[str] | Window


class MemoryBackend:
    """The data behind one or more :class:`MemoryStore` objects.

    Stores with different namespaces can share a backend the way instances share a Redis
    database; keys carry the namespace prefix, so they do not see each other's data.
    """

    def __init__(self, *, snapshot_file: Path | None = None) -> None:
        self.snapshot_file = snapshot_file
        self.data: dict[str, Entry] = dict(load(snapshot_file)) if snapshot_file else {}
        #: Hits since the ended windows were last swept out.
        self.hits_since_sweep = 0
        self._pending: asyncio.TimerHandle | None = None

    def changed(self) -> None:
        """Something kept changed: snapshot it within :data:`SNAPSHOT_AFTER`."""
        if self.snapshot_file is not None and self._pending is None:
            self._pending = asyncio.get_running_loop().call_later(SNAPSHOT_AFTER, self.flush)

    def flush(self) -> None:
        """Write the snapshot now (a few milliseconds for the data one event keeps)."""
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        if self.snapshot_file is not None:
            save(self.snapshot_file, encode(self.data))

    def sweep(self, now: float) -> None:
        """Forget every rate-limit window that has ended at ``now``."""
        ended = [k for k, e in self.data.items() if isinstance(e, Window) and now >= e.ends]
        for key in ended:
            del self.data[key]
        self.hits_since_sweep = 0


class MemoryStore:
    """In-process :class:`~server.store.base.Store` with JSON values."""

    kind = "memory"

    def __init__(self, namespace: str, *, backend: MemoryBackend | None = None) -> None:
        self.namespace = namespace
        self._prefix = key_prefix(namespace)
        self._backend = backend if backend is not None else MemoryBackend()
        self._data = self._backend.data

    def __repr__(self) -> str:
        return f"MemoryStore(namespace={self.namespace!r})"

    async def ping(self) -> None:
        return None

    async def get(self, key: str) -> Any | None:
        entry = self._data.get(self._prefix + key)
        if entry is None:
            return None
        if not isinstance(entry, str):
            raise _wrong_kind(key, entry, "a value")
        return decode_value(entry)

    async def set(self, key: str, value: Any) -> None:
        # Encode before touching the dict so a non-JSON value leaves the old one in place.
        self._data[self._prefix + key] = encode_value(value)
        self._backend.changed()

    async def delete(self, key: str) -> None:
        self._data.pop(self._prefix + key, None)
        self._backend.changed()

    async def append(self, key: str, value: Any) -> int:
        text = encode_value(value)
        entry = self._data.setdefault(self._prefix + key, [])
        if not isinstance(entry, list):
            raise _wrong_kind(key, entry, "a list")
        entry.append(text)
        self._backend.changed()
        return len(entry)

    async def items(self, key: str) -> list[Any]:
        entry = self._data.get(self._prefix + key, [])
        if not isinstance(entry, list):
            raise _wrong_kind(key, entry, "a list")
        return [decode_value(text) for text in entry]

    async def incr(self, key: str, field: str, by: int = 1) -> int:
        # Redis' HINCRBY refuses non-integers; silently truncating 1.5 here would make the
        # two stores disagree.
        if isinstance(by, bool) or not isinstance(by, int):
            raise TypeError(f"counter increment must be an int, not {type(by).__name__}")
        entry = self._data.setdefault(self._prefix + key, {})
        if not isinstance(entry, dict):
            raise _wrong_kind(key, entry, "a counter group")
        entry[field] = entry.get(field, 0) + by
        self._backend.changed()
        return entry[field]

    async def counters(self, key: str) -> dict[str, int]:
        entry = self._data.get(self._prefix + key, {})
        if not isinstance(entry, dict):
            raise _wrong_kind(key, entry, "a counter group")
        return dict(entry)

    async def add(self, key: str, member: str) -> bool:
        # Redis would store 1 and "1" as the same member; refusing non-strings keeps the two
        # stores from disagreeing about what a member is.
        if not isinstance(member, str):
            raise TypeError(f"set members must be str, not {type(member).__name__}")
        entry = self._data.setdefault(self._prefix + key, set())
        if not isinstance(entry, set):
            raise _wrong_kind(key, entry, "a set")
        if member in entry:
            return False
        entry.add(member)
        self._backend.changed()
        return True

    async def cardinality(self, key: str) -> int:
        entry = self._data.get(self._prefix + key, set())
        if not isinstance(entry, set):
            raise _wrong_kind(key, entry, "a set")
        return len(entry)

    async def hit(self, key: str, *, window: float, now: float) -> Hits:
        if window <= 0:
            raise ValueError(f"a rate-limit window must be positive, got {window}")
        backend = self._backend
        backend.hits_since_sweep += 1
        if backend.hits_since_sweep >= SWEEP_EVERY:
            backend.sweep(now)
        entry = self._data.get(self._prefix + key)
        if entry is not None and not isinstance(entry, Window):
            raise _wrong_kind(key, entry, "a rate-limit window")
        if entry is None or now >= entry.ends:
            entry = self._data[self._prefix + key] = Window(0, now + window)
        entry.count += 1
        return Hits(entry.count, entry.ends)

    async def hits(self, key: str, *, now: float) -> Hits:
        entry = self._data.get(self._prefix + key)
        if entry is not None and not isinstance(entry, Window):
            raise _wrong_kind(key, entry, "a rate-limit window")
        if entry is None or now >= entry.ends:
            return Hits(0, now)
        return Hits(entry.count, entry.ends)

    async def close(self) -> None:
        # The data belongs to the backend, which may be shared: only make sure it is kept.
        self._backend.flush()


def _wrong_kind(key: str, entry: Entry, wanted: str) -> TypeError:
    if isinstance(entry, str):
        held = "a value"
    elif isinstance(entry, list):
        held = "a list"
    elif isinstance(entry, dict):
        held = "a counter group"
    elif isinstance(entry, Window):
        held = "a rate-limit window"
    else:
        held = "a set"
    return TypeError(f"store key {key!r} holds {held}, not {wanted}")
