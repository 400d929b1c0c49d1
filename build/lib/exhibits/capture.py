"""What libraries say during an ingest, turned into one warning line each.

trimesh, Pillow, PyAV and friends log (sometimes with a traceback), emit Python warnings
and print while they read a file. None of that may reach the user as a traceback or end
up in the server's log as noise: :func:`captured` collects, for the duration of one job,

* log records at ``WARNING`` and above of every logger but ours (``forumcast.*``),
* warnings raised with :func:`warnings.warn`,
* text printed to ``sys.stdout`` / ``sys.stderr``,

and gives each as one line (``library: first line of the message``), in order, without
repeats, at most :data:`MAX_LINES` of them. The pipeline's own notes stay separate: the
caller appends these lines to the result's warnings.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator
from pathlib import PurePath

#: Most captured lines kept per job (a library can warn once per face).
MAX_LINES = 20
#: Longest line kept, in characters.
MAX_CHARS = 240


class Captured:
    """The lines collected so far (read :attr:`lines` after the ``with`` block)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.dropped = 0

    def add(self, source: str, text: str) -> None:
        first = next((line.strip() for line in text.splitlines() if line.strip()), "")
        if not first or first.startswith("Traceback"):
            return
        line = f"{source}: {first}" if source else first
        line = line if len(line) <= MAX_CHARS else line[: MAX_CHARS - 1] + "…"
        if line in self.lines:
            return
        if len(self.lines) >= MAX_LINES:
            self.dropped += 1
            return
        self.lines.append(line)

    def summary(self) -> list[str]:
        more = [f"{self.dropped} more library warnings not shown"] if self.dropped else []
        return self.lines + more


class _Records(logging.Handler):
    def __init__(self, into: Captured) -> None:
        super().__init__(logging.WARNING)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("forumcast"):
            return
        # The message alone: a record's traceback (exc_info) is the library's business.
        self.into.add(record.name.split(".")[0], record.getMessage())


class _Printed(io.TextIOBase):
    def __init__(self, into: Captured) -> None:
        self.into = into

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.into.add("", text)
        return len(text)


@contextlib.contextmanager
def captured() -> Iterator[Captured]:
    """Collect library logs, warnings and prints while the block runs (``sys.stdout`` and
    the warning filters are the whole process's: fine in a worker or the CLI, one job each)."""
    into = Captured()
    # With a handler on the root logger, a library's record no longer falls through to
    # logging.lastResort, which would print it and its traceback to stderr.
    handler = _Records(into)
    root = logging.getLogger()
    root.addHandler(handler)
    printed = _Printed(into)
    try:
        with (
            warnings.catch_warnings(record=True) as caught,
            contextlib.redirect_stdout(printed),
            contextlib.redirect_stderr(printed),
        ):
            warnings.simplefilter("always")
            try:
                yield into
            finally:
                for warning in caught:
                    into.add(_package(warning.filename), f"{warning.category.__name__}: {warning.message}")
    finally:
        root.removeHandler(handler)


def _package(filename: str) -> str:
    """``trimesh`` for ``…/site-packages/trimesh/exchange/ply.py``; else the file's name."""
    parts = PurePath(filename).parts
    if "site-packages" in parts[:-1]:
        return parts[parts.index("site-packages") + 1]
    return PurePath(filename).stem
