"""The embedded store on disk: what a single ``forumcast serve`` keeps across restarts.

Without Redis, the memory store's data (delays, meeting requests, visit counters, revoked
tokens, rotated stream keys, the audit log) is written to one JSON file under ``data_dir``
at most once a second after a change, and when the store closes; the next start reads it
back. A snapshot rather than an embedded redis-server: nothing to install or supervise, and
the data of one process is small. Rate-limit windows are not kept (they last minutes).

The file is replaced atomically (written beside, then renamed), so a crash leaves the old
snapshot or the new one, never half of one. A file that cannot be read is moved aside and
the store starts empty, with one warning naming both files.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger("forumcast.store")

#: What one key holds, as the memory store keeps it (windows excluded).
Kept = str | list[str] | dict[str, int] | set[str]


def encode(data: dict[str, Any]) -> str:
    """The entries as JSON text: each key with its kind, so a set comes back as a set."""
    entries: dict[str, list[Any]] = {}
    for key, entry in data.items():
        if isinstance(entry, str):
            entries[key] = ["value", entry]
        elif isinstance(entry, list):
            entries[key] = ["list", entry]
        elif isinstance(entry, dict):
            entries[key] = ["counters", entry]
        elif isinstance(entry, set):
            entries[key] = ["set", sorted(entry)]
        # anything else (rate-limit windows) is not kept
    return json.dumps({"version": 1, "entries": entries}, ensure_ascii=False, separators=(",", ":"))


def decode(text: str) -> dict[str, Kept]:
    """The entries of a snapshot; ValueError if it is not one."""
    document = json.loads(text)
    if not isinstance(document, dict) or document.get("version") != 1:
        raise ValueError("not a forumcast store snapshot (version 1)")
    data: dict[str, Kept] = {}
    for key, (kind, value) in document["entries"].items():
        if kind == "value" and isinstance(value, str):
            data[key] = value
        elif kind == "list" and isinstance(value, list) and all(isinstance(v, str) for v in value):
            data[key] = list(value)
        elif kind == "counters" and isinstance(value, dict):
            data[key] = {str(f): int(n) for f, n in value.items()}
        elif kind == "set" and isinstance(value, list):
            data[key] = {str(m) for m in value}
        else:
            raise ValueError(f"entry {key!r}: unknown kind {kind!r}")
    return data


def load(path: Path) -> dict[str, Kept]:
    """What the snapshot at ``path`` holds (nothing if there is none, or it is unreadable)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    try:
        return decode(text)
    except (ValueError, KeyError, TypeError) as exc:
        aside = path.with_name(f"{path.name}.unreadable")
        os.replace(path, aside)
        log.warning("store snapshot %s unreadable (%s): moved to %s, starting empty", path, exc, aside)
        return {}


def save(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)
