"""The shipped nginx front and its mtail, as loopback processes for tests.

:class:`Front` runs Debian's ``nginx`` with ``deploy/nginx/forumcast.conf`` as shipped except
for the lines its header comment names (the upstream ``server`` lines, ``listen``, the cache
path and the log paths), which :func:`rewrite_site` points at test ports and a temporary
directory. nginx runs in the foreground (``daemon off``) with its own prefix, pid file and
temp dirs, so it needs nothing under /var and several can run at once. :class:`Mtail` runs
Debian's ``mtail`` with ``deploy/mtail/front.mtail`` on that front's access log.

A missing binary raises (never skips), naming the Debian package.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from tests.support.process import stop, wait_answering
from tests.support.redis_server import free_port

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_SITE = ROOT / "deploy" / "nginx" / "forumcast.conf"
SHIPPED_MAIN = ROOT / "deploy" / "nginx" / "nginx.conf"
MTAIL_PROGRAMS = ROOT / "deploy" / "mtail"
READY_TIMEOUT = 10.0

_UPSTREAM_SERVER = re.compile(r"^(\s*)server\s+forumcast-\d+:\d+([^;]*);\s*$")
_LISTEN = re.compile(r"^(\s*)listen\s+80(\s[^;]*)?;\s*$")
_CACHE_PATH = re.compile(r"^proxy_cache_path\s+(\S+)\s")
_ACCESS_LOG = re.compile(r"^(\s*)access_log\s+\S+\s+forumcast_front;\s*$")
_ERROR_LOG = re.compile(r"^(\s*)error_log\s+\S+;\s*$")


def find_binary(name: str, package: str) -> str:
    found = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.path.exists(p)), None
    )
    if not found:
        raise RuntimeError(f"{name} not found: install Debian's '{package}' package")
    return found


def rewrite_site(text: str, *, upstreams: Sequence[str], port: int, workdir: Path) -> str:
    """The shipped site with the test's upstreams, port, cache dir and logs (pure).

    Raises ValueError if a line the header comment promises is missing, so a change to the
    shipped file that the harness would silently not follow fails the tests instead.
    """
    out: list[str] = []
    found = {"server": 0, "listen": 0, "cache": 0, "access": 0, "error": 0}
    for line in text.splitlines():
        if match := _UPSTREAM_SERVER.match(line):
            found["server"] += 1
            if found["server"] == 1:  # all the test's upstreams in place of the first
                out += [f"{match.group(1)}server {address}{match.group(2)};" for address in upstreams]
            continue
        if match := _LISTEN.match(line):
            found["listen"] += 1
            line = f"{match.group(1)}listen 127.0.0.1:{port};"
        elif match := _CACHE_PATH.match(line):
            found["cache"] += 1
            line = line.replace(match.group(1), str(workdir / "cache"), 1)
        elif match := _ACCESS_LOG.match(line):
            found["access"] += 1
            line = f"{match.group(1)}access_log {workdir / 'access.log'} forumcast_front;"
        elif match := _ERROR_LOG.match(line):
            found["error"] += 1
            line = f"{match.group(1)}error_log {workdir / 'error.log'} info;"
        out.append(line)
    missing = [name for name, count in found.items() if count == 0]
    if missing:
        raise ValueError(f"the shipped site lost the lines a test rewrites: {missing}")
    return "\n".join(out) + "\n"


def main_config(workdir: Path, site: Path, *, shipped: Path = SHIPPED_MAIN) -> str:
    """The shipped nginx.conf (deploy/nginx/nginx.conf) around the site, with its user, pid,
    error log and conf.d include rewritten into ``workdir``; fails if one of them is gone."""
    temp = workdir / "temp"
    # As root (CI), workers would run as nobody and could not use the test's private dirs.
    user = "user root;" if os.geteuid() == 0 else ""
    replacements = {
        "user nginx;": user,
        "pid /var/run/nginx.pid;": f"pid {workdir / 'nginx.pid'};",
        "error_log /var/log/nginx/error.log warn;": f"error_log {workdir / 'error.log'} info;",
        "    include /etc/nginx/conf.d/*.conf;": "\n".join(
            [
                f"    client_body_temp_path {temp / 'body'};",
                f"    proxy_temp_path {temp / 'proxy'};",
                f"    fastcgi_temp_path {temp / 'fastcgi'};",
                f"    uwsgi_temp_path {temp / 'uwsgi'};",
                f"    scgi_temp_path {temp / 'scgi'};",
                f"    include {site};",
            ]
        ),
    }
    lines = shipped.read_text(encoding="utf-8").splitlines()
    missing = [line for line in replacements if line not in lines]
    if missing:
        raise AssertionError(f"{shipped} no longer has the lines the tests rewrite: {missing}")
    return "\n".join(replacements.get(line, line) for line in lines) + "\n"


class Front:
    """Debian's nginx with the shipped front config, on ``127.0.0.1:port``."""

    def __init__(self, workdir: Path, upstreams: Sequence[str], *, site: Path = SHIPPED_SITE) -> None:
        self.workdir = Path(workdir)
        self.port = free_port()
        self.binary = find_binary("nginx", "nginx")
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "temp").mkdir(exist_ok=True)
        self.site = self.workdir / "forumcast.conf"
        self.site.write_text(
            rewrite_site(
                site.read_text(encoding="utf-8"), upstreams=upstreams, port=self.port, workdir=self.workdir
            ),
            encoding="utf-8",
        )
        self.config = self.workdir / "nginx.conf"
        self.config.write_text(main_config(self.workdir, self.site), encoding="utf-8")
        self.access_log = self.workdir / "access.log"
        self.error_log = self.workdir / "error.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def _args(self, *extra: str) -> list[str]:
        prefix = str(self.workdir) + "/"
        return [self.binary, "-p", prefix, "-e", str(self.error_log), "-c", str(self.config), *extra]

    def check(self) -> subprocess.CompletedProcess[str]:
        """``nginx -t`` of the configuration (the result, for the test to judge)."""
        return subprocess.run(self._args("-t"), capture_output=True, text=True, check=False)

    def start(self) -> None:
        self.access_log.touch()  # mtail may start on it before the first request
        self._proc = subprocess.Popen(
            self._args("-g", "daemon off;"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            status = f"{self.url}/nginx_status"
            wait_answering(self._proc, status, what="nginx", timeout=READY_TIMEOUT, log=self.tail_error_log)
        except RuntimeError:
            self.stop()
            raise

    def stop(self) -> None:
        stop(self._proc)
        self._proc = None

    def tail_error_log(self) -> str:
        with contextlib.suppress(OSError):
            return self.error_log.read_text(errors="replace")[-3000:]
        return "(no log)"

    def access_lines(self) -> list[str]:
        return self.access_log.read_text(encoding="utf-8").splitlines()

    def __enter__(self) -> Front:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class Mtail:
    """Debian's mtail running ``deploy/mtail/*.mtail`` on ``log``, metrics on a free port."""

    def __init__(self, workdir: Path, log: Path, *, programs: Path = MTAIL_PROGRAMS) -> None:
        self.workdir = Path(workdir)
        self.log = log
        self.programs = programs
        self.port = free_port()
        self.binary = find_binary("mtail", "mtail")
        self.output = self.workdir / "mtail.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.output.open("ab") as out:
            self._proc = subprocess.Popen(
                [
                    self.binary,
                    "--progs", str(self.programs),
                    "--logs", str(self.log),
                    "--address", "127.0.0.1",
                    "--port", str(self.port),
                    "--logtostderr",
                    # Tests read the log right after a request: look often.
                    "--poll_interval", "100ms",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            wait_answering(
                self._proc,
                f"http://{self.address}/metrics",
                what="mtail",
                timeout=READY_TIMEOUT,
                log=lambda: self.output.read_text(errors="replace")[-3000:],
            )
        except RuntimeError:
            self.stop()
            raise

    def stop(self) -> None:
        stop(self._proc)
        self._proc = None

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://{self.address}/metrics", timeout=5) as response:
            text: str = response.read().decode()
            return text

    def __enter__(self) -> Mtail:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
