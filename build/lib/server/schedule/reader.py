"""Reading a parsed event document while collecting every problem in it.

The event loaders (our YAML format, frab / pretalx JSON) walk the plain values their
parser produced — dicts, lists, strings, numbers — with a :class:`DocumentReader`. Each
reading returns something usable, the value found or a default, and records a
:class:`~server.errors.Problem` with a JSON-path-like location (``sessions[2].start``)
when the value is missing or of the wrong kind. Nothing raises mid-way, so one pass finds
every problem; the loader hands them to :func:`~server.schedule.validate.check_event`,
which adds the cross-reference ones.

What only one format has (how it writes date-times, translated texts) lives in a subclass
beside that format's loader.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Set
from contextlib import suppress
from typing import Any, ClassVar, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from server.errors import Problem

T = TypeVar("T")


class DocumentReader:
    """Collects problems while reading a parsed document; never raises mid-way.

    A reading gets the ``path`` of the node it reads, or of the mapping that holds
    ``key``; a problem with that key is reported at ``{path}.{key}``.
    """

    #: How reasons name a node of keys and values: "a mapping" (YAML), "an object" (JSON).
    mapping_noun: ClassVar[str] = "a mapping"
    #: Whether a key whose value is null reads as absent (JSON writers put ``null`` for
    #: "none"), rather than as a value of the wrong type, which is reported.
    null_is_absent: ClassVar[bool] = False

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []

    def problem(self, path: str, reason: str) -> None:
        self.problems.append(Problem(self.file, path, reason))

    def mapping(
        self,
        node: Any,
        path: str,
        required: Iterable[str] = (),
        *,
        allowed: Collection[str] | None = None,
    ) -> dict[str, Any]:
        """``node`` as a mapping (``{}`` if it is not one), its unknown and missing keys reported.

        Keys outside ``allowed`` are reported only when ``allowed`` is given. Missing keys
        are reported in the order of ``required``; a set has none, so its keys are sorted.
        """
        if not isinstance(node, dict):
            self.problem(path, f"expected {self.mapping_noun}, got {type(node).__name__}")
            return {}
        if allowed is not None:
            for key in node:
                if key not in allowed:
                    self.problem(f"{path}.{key}", "unknown key")
        for key in sorted(required) if isinstance(required, Set) else required:
            if key not in node:
                self.problem(f"{path}.{key}", "missing")
        return node

    def _absent(self, node: dict[str, Any], key: str) -> bool:
        return key not in node or (self.null_is_absent and node[key] is None)

    def string(self, node: dict[str, Any], key: str, path: str, default: str = "") -> str:
        """Text at ``key`` (a number is taken as its digits), or ``default`` if absent."""
        if self._absent(node, key):
            return default
        value = node[key]
        if isinstance(value, bool) or not isinstance(value, str | int):
            self.problem(f"{path}.{key}", f"expected text, got {type(value).__name__}")
            return default
        return str(value)

    def flag(self, node: dict[str, Any], key: str, path: str, default: bool = False) -> bool:
        """A boolean at ``key``, or ``default`` if absent."""
        if self._absent(node, key):
            return default
        value = node[key]
        if not isinstance(value, bool):
            self.problem(f"{path}.{key}", f"expected true or false, got {value!r}")
            return default
        return value

    def choice(self, node: dict[str, Any], key: str, path: str, enum: type[T], default: T) -> T:
        """A member of the string enum ``enum`` named at ``key``, or ``default`` if absent or null."""
        value = node.get(key)
        if value is None:
            return default
        try:
            return enum(value)  # type: ignore[call-arg]
        except ValueError:
            names = ", ".join(m.value for m in enum)  # type: ignore[attr-defined]
            self.problem(f"{path}.{key}", f"{value!r} is not one of {names}")
            return default

    def zone(self, node: dict[str, Any], key: str, path: str) -> ZoneInfo | None:
        """The IANA time zone named at ``key``; None, reported, if there is no such zone."""
        name = node.get(key)
        zone = None
        if isinstance(name, str):
            with suppress(ZoneInfoNotFoundError, ValueError, OSError):  # "Europe" is a directory: OSError
                zone = ZoneInfo(name)
        if zone is None:
            self.problem(f"{path}.{key}", f"unknown IANA time zone {name!r}")
        return zone

    def listing(self, node: Any, path: str) -> list[Any]:
        """``node`` as a list: ``[]`` if it is null (absent), or if it is not a list (reported)."""
        if node is None:
            return []
        if not isinstance(node, list):
            self.problem(path, f"expected a list, got {type(node).__name__}")
            return []
        return node

    def items(self, node: Any, path: str, read: Callable[[Any, str], T | None]) -> list[T]:
        """Each element of the list ``node`` read by ``read(element, f"{path}[{i}]")``, Nones left out."""
        out = []
        for i, item in enumerate(self.listing(node, path)):
            value = read(item, f"{path}[{i}]")
            if value is not None:
                out.append(value)
        return out
