"""Log set-up: one line per request and per state change, as text or as JSON objects.

No client can forge or read a line through the log: the text format escapes control
characters in every message (a newline a client smuggled in stays ``\\n``; tracebacks, the
one multi-line part, are indented so none of their lines looks like a record), the JSON
format escapes them by nature, and :class:`MaskSecrets` on the handler replaces ``token=``
and ``key=`` values, Bearer tokens and status-link secrets with ``***`` in every record of
every logger.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import IO, Any

# Attributes every LogRecord has; anything else was passed in ``extra=`` and is data.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


# C0 controls, DEL, C1 controls and the Unicode line/paragraph separators: all can end a line.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# Credentials in any message: query-style values, Authorization headers, status-link secrets.
_SECRETS = re.compile(
    r"(?i)((?<![\w-])(?:token|key)=|\bbearer\s+|/v1/meeting-requests/|#request=)"
    r"(?!\*\*\*)[^\s&;,'\"<>)\]}]+"
)


def escape_controls(text: str) -> str:
    """``text`` on one line: every control character written as its Python escape."""
    return _CONTROLS.sub(lambda m: repr(m.group())[1:-1], text)


def mask_secrets(text: str) -> str:
    """``text`` with the values of credentials replaced by ``***``."""
    return _SECRETS.sub(lambda m: f"{m.group(1)}***", text)


class MaskSecrets(logging.Filter):
    """Masks credentials in each record's message (arguments merged in) and traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        # Merged once here, so the formatter does not format the arguments again.
        record.msg, record.args = mask_secrets(record.getMessage()), None
        if record.exc_info:  # another handler may have rendered it already: mask that too
            record.exc_text = mask_secrets(record.exc_text or _PLAIN.formatException(record.exc_info))
        return True


_PLAIN = logging.Formatter()


class TextFormatter(logging.Formatter):
    """``time level logger: message``, one line per record (tracebacks indented below)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        record.message = escape_controls(record.getMessage())
        record.asctime = self.formatTime(record, self.datefmt)
        line = self.formatMessage(record)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        for block in (record.exc_text, record.stack_info and self.formatStack(record.stack_info)):
            if block:
                line += "".join(f"\n    {escape_controls(part)}" for part in block.splitlines())
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["exc"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def log_handler(fmt: str = "text", stream: IO[str] | None = None) -> logging.Handler:
    """The handler every record goes through: ``fmt`` lines on ``stream`` (stderr), secrets masked."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(MaskSecrets())
    return handler


def setup_logging(fmt: str = "text", level: str = "info") -> None:
    root = logging.getLogger()
    root.handlers[:] = [log_handler(fmt)]
    root.setLevel(level.upper())
    # aiohttp's own access log would duplicate ours (which has the route template too).
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
