"""A throwaway Sentinel deployment for tests: a master, one replica and three sentinels.

Every process is a real ``redis-server`` / ``redis-sentinel`` on a free loopback port,
with its files in the given directory; nothing on the machine's own ports is touched.
``redis-sentinel`` comes from Debian's ``redis-sentinel`` package; without it the
deployment refuses to start (a Sentinel test that silently does not run is worse than a
loud failure)::

    with SentinelDeployment(tmp_path) as deployment:
        store = RedisStore.from_url(deployment.url, namespace="x")
        ...
        deployment.failover()   # the replica is the master now
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from tests.support.redis_server import answers_ping, find_redis_server, free_port

SERVICE = "forumcast"
NOT_FOUND = "redis-sentinel not found: install Debian's redis-sentinel (apt-get install redis-sentinel)"
#: How long start() and failover() wait for the deployment to settle.
TIMEOUT = 10.0


def find_redis_sentinel() -> str:
    found = shutil.which("redis-sentinel") or (
        "/usr/bin/redis-sentinel" if Path("/usr/bin/redis-sentinel").exists() else ""
    )
    if not found:
        raise RuntimeError(NOT_FOUND)
    return found


def command(port: int, *args: str, timeout: float = 1.0) -> str:
    """One command to ``127.0.0.1:port`` in the inline protocol; the raw reply (a bulk reply's
    payload may need more than one read, so read until the server stops sending)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall((" ".join(args) + "\r\n").encode())
        chunks = [sock.recv(65536)]
        sock.settimeout(0.05)
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode(errors="replace")


class SentinelDeployment:
    def __init__(self, workdir: Path) -> None:
        self.workdir = Path(workdir)
        self.sentinel_binary = find_redis_sentinel()
        self.server_binary = find_redis_server()
        self.master_port = free_port()
        self.replica_port = free_port()
        self.sentinel_ports = [free_port() for _ in range(3)]
        self._procs: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._server(self.master_port)
        self._server(self.replica_port, "--replicaof", "127.0.0.1", str(self.master_port))
        for port in self.sentinel_ports:
            conf = self.workdir / f"sentinel-{port}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.workdir}\n"
                f"logfile {self.workdir / f'sentinel-{port}.log'}\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {self.master_port} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} 1000\n"
                f"sentinel failover-timeout {SERVICE} 5000\n"
            )
            self._spawn(port, [self.sentinel_binary, str(conf)])
        self._wait(self._replica_known, "the sentinels to see the replica in sync")

    def _server(self, port: int, *extra: str) -> None:
        self._spawn(
            port,
            [
                self.server_binary,
                "--port", str(port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no",
                # Redis 7 waits 5 s for more replicas before a diskless full sync: not here.
                "--repl-diskless-sync-delay", "0",
                "--dir", str(self.workdir), "--logfile", str(self.workdir / f"redis-{port}.log"),
                *extra,
            ],
        )  # fmt: skip

    def _spawn(self, port: int, args: list[str]) -> None:
        self._procs[port] = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait(lambda: answers_ping(port), f"{Path(args[0]).name} on port {port} to answer PING")

    def _replica_known(self) -> bool:
        replication = command(self.replica_port, "INFO", "replication")
        if "master_link_status:up" not in replication:
            return False
        for port in self.sentinel_ports:
            with contextlib.suppress(OSError):
                replicas = command(port, "SENTINEL", "REPLICAS", SERVICE)
                if f"{self.replica_port}" not in replicas or "s_down" in replicas:
                    return False
        return True

    def master(self) -> int:
        """The master's port, as the first sentinel sees it."""
        reply = command(self.sentinel_ports[0], "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)
        return int(reply.split("\r\n")[-2])

    def failover(self) -> None:
        """Force a failover and wait until the sentinels name the replica as master."""
        reply = ""
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            reply = command(self.sentinel_ports[0], "SENTINEL", "FAILOVER", SERVICE)
            if reply.startswith("+OK"):
                break
            time.sleep(0.1)  # -NOGOODSLAVE until the sentinel has seen the replica's link up
        else:
            raise RuntimeError(f"SENTINEL FAILOVER refused: {reply.strip()}")
        self._wait(lambda: self.master() == self.replica_port, "the replica to become the master")

    def stop(self) -> None:
        for proc in self._procs.values():
            if proc.poll() is None:
                proc.kill()
        for proc in self._procs.values():
            proc.wait(timeout=TIMEOUT)
        self._procs.clear()

    def _wait(self, ready: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError, IndexError):
                if ready():
                    return
            time.sleep(0.05)
        logs = "\n".join(f"{p.name}: {p.read_text()[-800:]}" for p in sorted(self.workdir.glob("*.log")))
        self.stop()
        raise RuntimeError(f"timed out after {TIMEOUT} s waiting for {what}\n{logs}")

    def __enter__(self) -> SentinelDeployment:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
