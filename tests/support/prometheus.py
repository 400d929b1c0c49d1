"""A throwaway Prometheus server for tests: the shipped scrape config, aimed at test targets.

This module owns running Debian's ``prometheus`` on a free loopback port with its own TSDB
directory in tmp, fed by ``deploy/prometheus/prometheus.yml`` with every job's targets
replaced by the loopback addresses a test started (forumcast instances, mtail behind the
front, Prometheus itself). The rest of the shipped config (job names, metrics paths, rule
files, intervals unless overridden) stays as shipped, so a test exercises the real file.

Use it as a context manager::

    targets = {"forumcast": ["127.0.0.1:41001", "127.0.0.1:41002"], "front": [mtail_addr]}
    with Prometheus(tmp_path, targets, scrape_interval="1s") as prom:
        prom.wait_for_targets("forumcast", up=2)
        series = prom.query('sum(forumcast_http_requests_total)')

The job ``prometheus`` is pointed at this server itself unless ``targets`` names it.
A missing binary raises (never skips) with the Debian package to install.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from tests.support.process import stop, wait_answering
from tests.support.redis_server import free_port

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
NOT_FOUND = "prometheus not found: install Debian's 'prometheus' package (it also brings promtool)"
READY_TIMEOUT = 20.0


def find_prometheus() -> str:
    """Path of the ``prometheus`` server binary (Debian puts it in /usr/bin)."""
    found = shutil.which("prometheus")
    if not found:
        raise RuntimeError(NOT_FOUND)
    return found


def rewrite_config(
    config: Mapping[str, Any],
    targets: Mapping[str, Sequence[str]],
    *,
    self_address: str,
    rules_dir: Path,
    scrape_interval: str | None = None,
    evaluation_interval: str | None = None,
) -> dict[str, Any]:
    """The shipped scrape config with each job's targets replaced (pure, for tests of it too).

    Jobs absent from ``targets`` are dropped (except ``prometheus``, aimed at
    ``self_address``), so nothing scrapes a production host name that does not resolve here.
    Relative ``rule_files`` are made absolute against ``rules_dir`` (deploy/prometheus/), as
    the config is written elsewhere. Service discovery other than static_configs is replaced.
    """
    unknown = set(targets) - {job["job_name"] for job in config.get("scrape_configs", [])}
    if unknown:
        raise ValueError(f"jobs not in the shipped scrape config: {sorted(unknown)}")
    out = dict(config)
    out["global"] = dict(config.get("global") or {})
    if scrape_interval:
        out["global"]["scrape_interval"] = scrape_interval
    if evaluation_interval:
        out["global"]["evaluation_interval"] = evaluation_interval
    # A remote alertmanager would not exist on the test machine.
    out.pop("alerting", None)
    rules = config.get("rule_files", [])
    out["rule_files"] = [str(rule if Path(rule).is_absolute() else rules_dir / rule) for rule in rules]
    jobs = []
    for job in config.get("scrape_configs", []):
        name = job["job_name"]
        if name in targets:
            addresses = list(targets[name])
        elif name == "prometheus":
            addresses = [self_address]
        else:
            continue
        job = {k: v for k, v in job.items() if not k.endswith("_sd_configs") and k != "static_configs"}
        if scrape_interval:
            job.pop("scrape_interval", None)
            job.pop("scrape_timeout", None)
        job["static_configs"] = [{"targets": addresses}]
        jobs.append(job)
    out["scrape_configs"] = jobs
    return out


class Prometheus:
    """One private ``prometheus`` on 127.0.0.1 with its TSDB under ``workdir``."""

    def __init__(
        self,
        workdir: Path,
        targets: Mapping[str, Sequence[str]],
        *,
        config: Path = SHIPPED_CONFIG,
        scrape_interval: str | None = "1s",
        evaluation_interval: str | None = "1s",
        port: int | None = None,
    ) -> None:
        self.workdir = Path(workdir)
        self.port = port if port is not None else free_port()
        self.binary = find_prometheus()
        shipped = yaml.safe_load(config.read_text(encoding="utf-8"))
        self.config = rewrite_config(
            shipped,
            targets,
            self_address=self.address,
            rules_dir=config.parent,
            scrape_interval=scrape_interval,
            evaluation_interval=evaluation_interval,
        )
        self.config_path = self.workdir / "prometheus.yml"
        self.log = self.workdir / "prometheus.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def start(self) -> None:
        """Start and return once ``/-/ready`` answers 200 (RuntimeError with the log if not)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "data").mkdir(exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(self.config, sort_keys=False), encoding="utf-8")
        with self.log.open("ab") as log:
            self._proc = subprocess.Popen(
                [
                    self.binary,
                    f"--config.file={self.config_path}",
                    f"--storage.tsdb.path={self.workdir / 'data'}",
                    f"--web.listen-address={self.address}",
                    "--web.enable-lifecycle",
                    "--storage.tsdb.retention.time=1h",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
            )
        try:
            wait_answering(
                self._proc, f"{self.url}/-/ready", what="prometheus", timeout=READY_TIMEOUT, log=self.tail_log
            )
        except RuntimeError:
            self.stop()
            raise

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        stop(proc)

    def tail_log(self) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")[-3000:]
        return "(no log)"

    def api(self, path: str, **params: str) -> Any:
        """GET ``/api/v1/<path>`` and return its ``data`` (AssertionError unless status success)."""
        query = ("?" + urllib.parse.urlencode(params)) if params else ""
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/{path}{query}", timeout=10) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            body = json.loads(exc.read() or b"{}")
        assert body.get("status") == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query; the result vector (each item has ``metric`` and ``value``)."""
        data = self.api("query", query=expr)
        result: list[dict[str, Any]] = data["result"]
        return result

    def targets(self) -> list[dict[str, Any]]:
        active: list[dict[str, Any]] = self.api("targets")["activeTargets"]
        return active

    def rules(self) -> list[dict[str, Any]]:
        """Every loaded rule (alerting and recording), flattened over groups."""
        groups = self.api("rules")["groups"]
        return [rule for group in groups for rule in group["rules"]]

    def wait_for_targets(self, job: str, *, up: int, timeout: float = 20.0) -> None:
        """Wait until ``up`` targets of ``job`` have been scraped successfully and their
        ``up`` samples can be queried (the targets API says "up" as the scrape ends, a
        moment before its samples are committed: a query right then can find none)."""
        deadline = time.monotonic() + timeout
        seen: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            seen = [t for t in self.targets() if t["labels"].get("job") == job]
            if sum(t["health"] == "up" for t in seen) >= up:
                samples = self.query(f'up{{job="{job}"}}')
                if sum(sample["value"][1] == "1" for sample in samples) >= up:
                    return
            time.sleep(0.25)
        raise AssertionError(f"job {job}: fewer than {up} targets up within {timeout} s: {seen}")

    def __enter__(self) -> Prometheus:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
