"""AMF0 (Action Message Format 0), the subset RTMP commands and FLV metadata use.

This module owns the mapping between AMF0 values and Python values, both ways::

    number (0)       float (an int or float is encoded as a number)
    boolean (1)      bool
    string (2)       str (encoded as a long string (12) when over 65,535 UTF-8 bytes)
    object (3)       dict[str, Any]
    null (5)         None
    undefined (6)    UNDEFINED
    ECMA array (8)   EcmaArray (a dict subclass, so that onMetaData round-trips)
    strict array(10) list
    date (11)        Date (decoded only: some encoders put one in their metadata)
    long string (12) str

Decoding reads untrusted bytes, so it is bounded by keyword-only limits: the input size,
the nesting depth, the length of one string and the number of values in one decode (every
value counts, keys included). A count an array header declares is checked against what is
left of the input before anything is allocated. Every violation, and every malformed or
unsupported value (references, AMF3 switch, typed objects), is a
:class:`~server.errors.RtmpError` (``rtmp.amf_too_large`` or ``rtmp.bad_amf``), never an
``IndexError``, ``struct.error`` or ``RecursionError``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from server.errors import RtmpError

#: Default limits of :func:`decode`: generous for commands and metadata, small for a bomb.
DEFAULT_MAX_SIZE = 2**20
DEFAULT_MAX_DEPTH = 16
DEFAULT_MAX_STRING = 2**16
DEFAULT_MAX_VALUES = 4096

NUMBER, BOOLEAN, STRING, OBJECT, NULL, UNDEFINED_MARKER = 0, 1, 2, 3, 5, 6
ECMA_ARRAY, OBJECT_END, STRICT_ARRAY, DATE, LONG_STRING = 8, 9, 10, 11, 12

_F64 = struct.Struct(">d")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_DATE = struct.Struct(">dh")


class _Undefined:
    """AMF0 ``undefined``, distinct from ``null`` (``None``)."""

    _instance: _Undefined | None = None

    def __new__(cls) -> _Undefined:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNDEFINED"


UNDEFINED = _Undefined()


class EcmaArray(dict[str, Any]):
    """An AMF0 ECMA array (an associative array, as ``onMetaData`` carries)."""


@dataclass(frozen=True, slots=True)
class Date:
    """An AMF0 date: milliseconds since 1970 (UTC) and a time zone field (to be ignored)."""

    ms: float
    timezone: int = 0


class _Decoder:
    __slots__ = ("_data", "_max_depth", "_max_string", "_max_values", "_pos", "_values")

    def __init__(self, data: bytes, max_depth: int, max_string: int, max_values: int) -> None:
        self._data = data
        self._pos = 0
        self._max_depth = max_depth
        self._max_string = max_string
        self._max_values = max_values
        self._values = 0

    @property
    def done(self) -> bool:
        return self._pos >= len(self._data)

    def _take(self, count: int) -> int:
        start = self._pos
        if count > len(self._data) - start:
            raise RtmpError("rtmp.bad_amf", f"AMF0 value cut short at byte {start}: {count} byte(s) needed")
        self._pos = start + count
        return start

    def _count(self) -> None:
        self._values += 1
        if self._values > self._max_values:
            raise RtmpError("rtmp.amf_too_large", f"over {self._max_values} AMF0 values in one message")

    def _string(self, width: int) -> str:
        size = (_U16 if width == 2 else _U32).unpack_from(self._data, self._take(width))[0]
        if size > self._max_string:
            raise RtmpError("rtmp.amf_too_large", f"an AMF0 string of {size} bytes, over {self._max_string}")
        start = self._take(size)
        try:
            return self._data[start : start + size].decode("utf-8")
        except UnicodeDecodeError:
            raise RtmpError("rtmp.bad_amf", f"an AMF0 string at byte {start} is not UTF-8") from None

    def value(self, depth: int = 0) -> Any:
        self._count()
        marker = self._data[self._take(1)]
        if marker == NUMBER:
            return _F64.unpack_from(self._data, self._take(8))[0]
        if marker == BOOLEAN:
            return self._data[self._take(1)] != 0
        if marker == STRING:
            return self._string(2)
        if marker == LONG_STRING:
            return self._string(4)
        if marker == NULL:
            return None
        if marker == UNDEFINED_MARKER:
            return UNDEFINED
        if marker == DATE:
            ms, zone = _DATE.unpack_from(self._data, self._take(10))
            return Date(ms, zone)
        if marker in (OBJECT, ECMA_ARRAY, STRICT_ARRAY):
            if depth >= self._max_depth:
                raise RtmpError("rtmp.amf_too_large", f"AMF0 values nested over {self._max_depth} deep")
            if marker == OBJECT:
                return self._properties({}, depth + 1)
            count = _U32.unpack_from(self._data, self._take(4))[0]
            if marker == ECMA_ARRAY:
                # The count is advisory (encoders get it wrong); the end marker ends the array.
                return self._properties(EcmaArray(), depth + 1)
            if count > len(self._data) - self._pos or count > self._max_values:  # a value is >= 1 byte
                raise RtmpError(
                    "rtmp.amf_too_large",
                    f"an AMF0 strict array declares {count} values, more than can follow",
                )
            return [self.value(depth + 1) for _ in range(count)]
        if marker == OBJECT_END:
            raise RtmpError(
                "rtmp.bad_amf", f"an AMF0 object end marker outside an object at byte {self._pos - 1}"
            )
        raise RtmpError("rtmp.bad_amf", f"unsupported AMF0 type marker {marker} at byte {self._pos - 1}")

    def _properties(self, target: dict[str, Any], depth: int) -> dict[str, Any]:
        while True:
            key = self._string(2)
            if key == "" and self._pos < len(self._data) and self._data[self._pos] == OBJECT_END:
                self._pos += 1
                return target
            self._count()
            target[key] = self.value(depth)


def decode(
    data: bytes,
    *,
    max_size: int = DEFAULT_MAX_SIZE,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_string: int = DEFAULT_MAX_STRING,
    max_values: int = DEFAULT_MAX_VALUES,
) -> list[Any]:
    """Every AMF0 value in ``data``, in order (a command: name, transaction id, arguments)."""
    if len(data) > max_size:
        raise RtmpError("rtmp.amf_too_large", f"{len(data)} bytes of AMF0, over {max_size}")
    decoder = _Decoder(bytes(data), max_depth, max_string, max_values)
    values = []
    while not decoder.done:
        values.append(decoder.value())
    return values


def encode(*values: Any) -> bytes:
    """The AMF0 encoding of ``values``, laid end to end (a ``TypeError`` for other types)."""
    out = bytearray()
    for value in values:
        _encode(value, out)
    return bytes(out)


def _encode_string(text: str, out: bytearray, *, marker: bool) -> None:
    raw = text.encode("utf-8")
    if len(raw) <= 0xFFFF:
        if marker:
            out.append(STRING)
        out += _U16.pack(len(raw))
    else:
        if not marker:
            raise ValueError("an AMF0 property name is limited to 65,535 bytes")
        out.append(LONG_STRING)
        out += _U32.pack(len(raw))
    out += raw


def _encode(value: Any, out: bytearray) -> None:
    if value is None:
        out.append(NULL)
    elif value is UNDEFINED:
        out.append(UNDEFINED_MARKER)
    elif isinstance(value, bool):  # before int: a bool is an int
        out += bytes((BOOLEAN, int(value)))
    elif isinstance(value, int | float):
        out.append(NUMBER)
        out += _F64.pack(float(value))
    elif isinstance(value, str):
        _encode_string(value, out, marker=True)
    elif isinstance(value, Date):
        out.append(DATE)
        out += _DATE.pack(value.ms, value.timezone)
    elif isinstance(value, dict):
        if isinstance(value, EcmaArray):
            out.append(ECMA_ARRAY)
            out += _U32.pack(len(value))
        else:
            out.append(OBJECT)
        for key, item in value.items():
            _encode_string(key, out, marker=False)
            _encode(item, out)
        out += b"\x00\x00\x09"
    elif isinstance(value, list | tuple):
        out.append(STRICT_ARRAY)
        out += _U32.pack(len(value))
        for item in value:
            _encode(item, out)
    else:
        raise TypeError(f"no AMF0 encoding for {type(value).__name__}")
