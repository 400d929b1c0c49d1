"""Starting and stopping the server processes the tests run (nginx, mtail, Prometheus): wait
until one answers on HTTP (or say why not, with its log), and stop it politely, then firmly."""

from __future__ import annotations

import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable


def answers(url: str) -> bool:
    """Whether ``url`` answers 200 within a second."""
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def wait_answering(
    proc: subprocess.Popen[bytes],
    url: str,
    *,
    what: str,
    timeout: float,
    log: Callable[[], str],
    interval: float = 0.05,
) -> None:
    """Until ``url`` answers 200; RuntimeError with ``log()`` if ``proc`` exits first or
    ``timeout`` passes (the caller stops it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{log()}")
        if answers(url):
            return
        time.sleep(interval)
    raise RuntimeError(f"{what} did not answer within {timeout} s:\n{log()}")


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM, then SIGKILL after 10 s; returns once the process is gone."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
