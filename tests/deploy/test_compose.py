"""deploy/compose.yaml is a valid Compose file and agrees with the files it names.

Docker cannot run here. The file is checked against the compose-spec JSON schema that
Debian's ``docker-compose`` package ships (compose/config/compose_spec.json, the Compose
Specification's own schema as that release vendored it) and by ``docker-compose config``
(interpolation, references to volumes, profiles), which needs no Docker daemon. Then the
cross-file facts: every file it mounts or builds from exists, every host the nginx front,
Prometheus and Grafana name is a service, and the ports agree.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
SCHEMA = Path("/usr/lib/python3/dist-packages/compose/config/compose_spec.json")
NO_COMPOSE = (
    "install Debian's 'docker-compose' package: it ships the compose-spec JSON schema and the validator"
)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return loaded


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def test_compose_yaml_matches_the_compose_spec_schema(compose: dict[str, Any]) -> None:
    assert SCHEMA.exists(), NO_COMPOSE
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    assert schema["title"] == "Compose Specification"
    validator = jsonschema.Draft201909Validator(schema, format_checker=jsonschema.FormatChecker())
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(compose)]
    assert not errors, errors
    # The schema is strict enough to catch a misspelt key (it would otherwise prove nothing).
    broken = {
        **compose,
        "services": {**services(compose), "front": {**services(compose)["front"], "port": []}},
    }
    assert list(validator.iter_errors(broken))


@pytest.mark.parametrize("profile", [None, "sentinel"])
def test_docker_compose_config_accepts_it(profile: str | None) -> None:
    binary = shutil.which("docker-compose")
    assert binary, NO_COMPOSE
    args = [binary, "-f", str(COMPOSE), *(["--profile", profile] if profile else []), "config"]
    result = subprocess.run(args, capture_output=True, text=True, check=False, cwd=DEPLOY, timeout=60)
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)
    always = {"redis", "secret", "forumcast-1", "forumcast-2", "forumcast-3", "front", "mtail", "prometheus"}
    sentinel = {"redis-replica", "sentinel-1", "sentinel-2", "sentinel-3"}
    # (docker-compose 1.29 lists every service in `config`; profiles decide what `up` starts.)
    assert set(resolved["services"]) == always | {"grafana"} | sentinel
    for name, service in resolved["services"].items():
        assert service.get("profiles", []) == (["sentinel"] if name in sentinel else []), name
    # The anchors resolved: each instance has its own id and data volume, one secret and Redis.
    for n in (1, 2, 3):
        service = resolved["services"][f"forumcast-{n}"]
        assert service["environment"]["FORUMCAST_INSTANCE_ID"] == f"forumcast-{n}"
        assert service["environment"]["FORUMCAST_REDIS_URL"] == "redis://redis:6379/0"
        assert service["restart"] == "unless-stopped" and "healthcheck" in service


def bind_sources(compose: dict[str, Any]) -> list[tuple[str, Path, str]]:
    """(service, host path, container path) of every bind mount (a source that is a path)."""
    out = []
    for name, service in services(compose).items():
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            if source.startswith((".", "/")):
                out.append((name, (DEPLOY / source).resolve(), target))
    return out


def test_every_mounted_file_and_build_context_is_in_the_repo(compose: dict[str, Any]) -> None:
    mounts = bind_sources(compose)
    assert len(mounts) >= 9
    missing = [f"{name}: {path}" for name, path, _ in mounts if not path.exists()]
    assert not missing, missing
    for name, service in services(compose).items():
        build = service.get("build")
        if build:
            context = (DEPLOY / build["context"]).resolve()
            assert (context / build.get("dockerfile", "Dockerfile")).is_file(), name


def test_the_named_volumes_are_declared(compose: dict[str, Any]) -> None:
    used = {
        volume.split(":")[0]
        for service in services(compose).values()
        for volume in service.get("volumes", [])
        if not volume.startswith((".", "/"))
    }
    assert used == set(compose["volumes"])


def test_depends_on_names_services(compose: dict[str, Any]) -> None:
    for name, service in services(compose).items():
        assert set(service.get("depends_on", [])) <= set(services(compose)), name


def test_the_front_balances_over_exactly_the_instances(compose: dict[str, Any]) -> None:
    site = (DEPLOY / "nginx" / "forumcast.conf").read_text(encoding="utf-8")
    upstreams = re.findall(r"^\s*server\s+([\w-]+):(\d+)", site, flags=re.MULTILINE)
    instances = {name for name in services(compose) if name.startswith("forumcast-")}
    assert {host for host, _ in upstreams} == instances
    # The instances listen on the image's port.
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    assert {port for _, port in upstreams} == {"8080"}
    assert "EXPOSE 8080" in dockerfile and "FORUMCAST_PORT=8080" in dockerfile
    # The front's config is mounted where nginx's image includes it, and the log mtail reads.
    front = dict((t, s) for n, s, t in bind_sources(compose) if n == "front")
    assert front["/etc/nginx/conf.d/default.conf"] == DEPLOY / "nginx" / "forumcast.conf"
    log = re.search(r"access_log\s+(\S+)\s+forumcast_front;", site)
    mtail = (DEPLOY / "mtail" / "Dockerfile").read_text(encoding="utf-8")
    assert log and f'"--logs", "{log.group(1)}"' in mtail
    assert any(v.startswith("front-logs:/var/log/nginx") for v in services(compose)["mtail"]["volumes"])


def test_prometheus_scrapes_services_that_exist_and_loads_the_mounted_rules(compose: dict[str, Any]) -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text(encoding="utf-8"))
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"forumcast", "front", "prometheus"}
    hosts = {
        job: [target.split(":")[0] for static in spec["static_configs"] for target in static["targets"]]
        for job, spec in jobs.items()
    }
    assert set(hosts["forumcast"]) == {n for n in services(compose) if n.startswith("forumcast-")}
    assert hosts["front"] == ["mtail"] and "3903" in (DEPLOY / "mtail" / "Dockerfile").read_text()
    mounted = {t for n, _, t in bind_sources(compose) if n == "prometheus"}
    for rule in config["rule_files"]:
        assert (DEPLOY / "prometheus" / rule).is_file()
        assert f"/etc/prometheus/{rule}" in mounted


def test_grafana_finds_prometheus_and_the_dashboards(compose: dict[str, Any]) -> None:
    provisioning = DEPLOY / "grafana" / "provisioning"
    datasources = yaml.safe_load((provisioning / "datasources" / "forumcast.yml").read_text(encoding="utf-8"))
    [source] = datasources["datasources"]
    assert (source["uid"], source["type"], source["name"]) == (
        "forumcast-prometheus",
        "prometheus",
        "Prometheus",
    )
    host, port = re.fullmatch(r"http://([\w-]+):(\d+)", source["url"]).groups()  # type: ignore[union-attr]
    assert host in services(compose) and f"{port}:{port}" in services(compose)[host]["ports"]
    providers = yaml.safe_load((provisioning / "dashboards" / "forumcast.yml").read_text(encoding="utf-8"))
    [provider] = providers["providers"]
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
    grafana = {t.removesuffix(":ro"): s for n, s, t in bind_sources(compose) if n == "grafana"}
    assert grafana["/var/lib/grafana/dashboards"] == DEPLOY / "grafana" / "dashboards"
    assert all(v.endswith(":ro") for v in services(compose)["grafana"]["volumes"] if v.startswith("."))


def test_the_sentinel_url_of_the_header_names_the_sentinel_services(compose: dict[str, Any]) -> None:
    from server.store.sentinel import parse_sentinel_url

    url = re.search(r"FORUMCAST_REDIS_URL=(redis\+sentinel://\S+)", COMPOSE.read_text(encoding="utf-8"))
    assert url
    parsed = parse_sentinel_url(url.group(1))
    assert (
        {host for host, _ in parsed.sentinels}
        == {"sentinel-1", "sentinel-2", "sentinel-3"}
        <= set(services(compose))
    )
    sentinel = (DEPLOY / "redis" / "sentinel.conf").read_text(encoding="utf-8")
    assert f"sentinel monitor {parsed.service} redis 6379 2" in sentinel


def test_dockerignore_keeps_what_the_dockerfile_copies() -> None:
    ignored = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    copied = [
        source
        for line in dockerfile.splitlines()
        if line.startswith("COPY ") and "--from=" not in line
        for source in line.split()[1:-1]
    ]
    assert "server" in copied and "deploy/docker-entrypoint.sh" in copied
    for source in copied:
        assert (ROOT / source).exists(), source
        assert not any(source == pattern or source.startswith(pattern + "/") for pattern in ignored), source


def test_production_gear_reaches_two_instances(compose: dict[str, Any]) -> None:
    """RTMP and SRT publish straight to an instance (no HTTP front in between): forumcast-1
    on the standard ports, forumcast-2 as the backup ingest, both to the container's own."""
    services = compose["services"]
    assert services["forumcast-1"]["ports"] == ["1935:1935", "9000:9000/udp"]
    assert services["forumcast-2"]["ports"] == ["1945:1935", "9010:9000/udp"]
    assert "ports" not in services["forumcast-3"]
