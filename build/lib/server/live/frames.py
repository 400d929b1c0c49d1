"""WebSocket frames built once and written as-is to every viewer.

A fragment goes to hundreds of viewers; framing it once (server frames are unmasked, so
every viewer's bytes are identical) and writing the same ``bytes`` object to each
transport saves a header build and a copy per viewer. Control frames (ping, pong, close)
stay with aiohttp, which writes each frame in one ``transport.write`` call, so frames never
interleave.
"""

from __future__ import annotations

import json
import struct
from typing import Any

_BINARY = 0x82  # FIN + opcode 2
_TEXT = 0x81  # FIN + opcode 1
_CLOSE = 0x88  # FIN + opcode 8


def _frame(first: int, payload: bytes) -> bytes:
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", first, size)
    elif size < 1 << 16:
        header = struct.pack("!BBH", first, 126, size)
    else:
        header = struct.pack("!BBQ", first, 127, size)
    return header + payload


def binary_frame(payload: bytes) -> bytes:
    return _frame(_BINARY, payload)


def text_frame(message: dict[str, Any]) -> bytes:
    return _frame(_TEXT, json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode())


def close_frame(code: int, reason: str = "") -> bytes:
    return _frame(_CLOSE, code.to_bytes(2, "big") + reason.encode()[:120])
