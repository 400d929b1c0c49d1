"""The entries of the cluster's Redis streams, as values: encoded to fields and parsed back.

Sans-I/O. Two kinds of stream carry media between instances:

- An **input stream** (``in:{input}``) holds what the input's publisher sent, already on the
  input's own continuous timeline, written by whichever instance the publisher is connected
  to: ``init`` (an init segment), ``frag`` (a fragment; ``k`` marks a keyframe) and ``gone``
  (the publisher left, so the leader fails over at once). ``p`` names the publisher
  session, so a reader sees a new publisher (a takeover, a reconnect elsewhere) as one.
- A **program stream** (``prog:{stage}``) holds what the stage's leader made: ``init``,
  ``switch`` (a new source from the next fragment: viewers get a ``now`` event and LL-HLS a
  discontinuity) and ``frag`` (a program fragment). Every entry carries the leader's fencing
  epoch ``e``; a fragment carries the leader's wall clock ``w`` and the LL-HLS packager's
  state before it ``h`` (with the date of the segment it starts, if it starts one), so every
  edge packages the program into the same playlists and parts, whenever it started reading.

A field that is missing or malformed raises ``cluster.bad_entry``: an entry we cannot read
is skipped by the reader, never guessed at.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from server.errors import ForumcastError


class InputKind(enum.Enum):
    INIT = "init"
    FRAGMENT = "frag"
    GONE = "gone"


class ProgramKind(enum.Enum):
    INIT = "init"
    SWITCH = "switch"
    FRAGMENT = "frag"


Fields = Mapping[bytes, bytes]


def _field(fields: Fields, name: bytes) -> bytes:
    value = fields.get(name)
    if value is None:
        raise ForumcastError("cluster.bad_entry", f"stream entry without {name.decode()!r}")
    return value


def _text(fields: Fields, name: bytes) -> str:
    try:
        return _field(fields, name).decode()
    except UnicodeDecodeError:
        raise ForumcastError(
            "cluster.bad_entry", f"stream entry field {name.decode()!r} is not text"
        ) from None


@dataclass(frozen=True, slots=True)
class InputEntry:
    kind: InputKind
    publisher: str  # "{instance}/{session}": a new value is a new publisher
    data: bytes = b""
    keyframe: bool = False

    def fields(self) -> dict[bytes, bytes]:
        out = {b"t": self.kind.value.encode(), b"p": self.publisher.encode()}
        if self.kind is not InputKind.GONE:
            out[b"d"] = self.data
        if self.keyframe:
            out[b"k"] = b"1"
        return out

    @classmethod
    def parse(cls, fields: Fields) -> InputEntry:
        try:
            kind = InputKind(_text(fields, b"t"))
        except ValueError:
            raise ForumcastError("cluster.bad_entry", "input stream entry of an unknown kind") from None
        data = b"" if kind is InputKind.GONE else _field(fields, b"d")
        return cls(kind, _text(fields, b"p"), data, fields.get(b"k") == b"1")


@dataclass(frozen=True, slots=True)
class ProgramEntry:
    kind: ProgramKind
    epoch: int
    data: bytes = b""
    #: SWITCH: the new source and the one before it ("" for none), and whether a re-init came.
    #: FRAGMENT: ``source`` is the input it came from ("" for the slate).
    source: str = ""
    previous: str = ""
    reinit: bool = False
    #: FRAGMENT: the leader's wall clock (Unix seconds) and the packager's state before it.
    wall: float = 0.0
    hls: dict[str, Any] | None = None
    #: FRAGMENT: the source it came from and how its decode times were moved (per track),
    #: so a next leader continues that source exactly where this one stopped.
    offsets: dict[int, int] | None = None
    #: FRAGMENT: the input stream's publisher whose times ``offsets`` apply to.
    publisher: str = ""

    def fields(self) -> dict[bytes, bytes]:
        out = {b"t": self.kind.value.encode(), b"e": str(self.epoch).encode()}
        if self.kind is ProgramKind.SWITCH:
            out[b"s"] = self.source.encode()
            out[b"p"] = self.previous.encode()
            out[b"r"] = b"1" if self.reinit else b"0"
        else:
            out[b"d"] = self.data
        if self.kind is ProgramKind.FRAGMENT:
            out[b"w"] = repr(self.wall).encode()
            out[b"h"] = json.dumps(self.hls, separators=(",", ":")).encode()
            if self.source and self.offsets:
                out[b"s"] = self.source.encode()
                out[b"o"] = json.dumps({str(k): v for k, v in self.offsets.items()}).encode()
                out[b"u"] = self.publisher.encode()
        return out

    @classmethod
    def parse(cls, fields: Fields) -> ProgramEntry:
        try:
            kind = ProgramKind(_text(fields, b"t"))
            epoch = int(_text(fields, b"e"))
        except ValueError:
            raise ForumcastError(
                "cluster.bad_entry", "program stream entry of an unknown kind or epoch"
            ) from None
        if kind is ProgramKind.SWITCH:
            return cls(
                kind,
                epoch,
                source=_text(fields, b"s"),
                previous=_text(fields, b"p"),
                reinit=fields.get(b"r") == b"1",
            )
        data = _field(fields, b"d")
        if kind is ProgramKind.INIT:
            return cls(kind, epoch, data)
        try:
            wall = float(_text(fields, b"w"))
            hls = json.loads(_field(fields, b"h"))
        except ValueError:
            raise ForumcastError(
                "cluster.bad_entry", "program fragment with a bad clock or packager state"
            ) from None
        if not isinstance(hls, dict):
            raise ForumcastError("cluster.bad_entry", "program fragment's packager state is not an object")
        source, offsets = _placement(fields)
        publisher = _text(fields, b"u") if offsets else ""
        return cls(kind, epoch, data, wall=wall, hls=hls, source=source, offsets=offsets, publisher=publisher)


def _placement(fields: Fields) -> tuple[str, dict[int, int] | None]:
    """A fragment's source and offsets (both absent from a fragment of the slate)."""
    if b"s" not in fields or b"o" not in fields:
        return "", None
    try:
        raw = json.loads(_field(fields, b"o"))
        offsets = {int(k): int(v) for k, v in raw.items()}
    except (ValueError, AttributeError, TypeError):
        raise ForumcastError("cluster.bad_entry", "program fragment with bad offsets") from None
    return _text(fields, b"s"), offsets


def entry_time(entry_id: bytes) -> float:
    """When Redis added the stream entry ``entry_id`` (``b"<ms>-<seq>"``), in Unix seconds
    by the Redis server's clock."""
    try:
        return int(entry_id.partition(b"-")[0]) / 1000
    except ValueError:
        raise ForumcastError("cluster.bad_entry", f"not a stream entry id: {entry_id!r}") from None
