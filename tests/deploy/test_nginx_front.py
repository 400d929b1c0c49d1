"""The shipped nginx front (deploy/nginx/forumcast.conf) passes ``nginx -t`` and keeps the
lines the test harness rewrites; its access log format is the one the mtail program reads."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.front import (
    MTAIL_PROGRAMS,
    SHIPPED_MAIN,
    SHIPPED_SITE,
    Front,
    Mtail,
    find_binary,
    main_config,
    rewrite_site,
)


def test_the_shipped_site_passes_nginx_t(tmp_path: Path) -> None:
    front = Front(tmp_path, ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"])
    result = front.check()
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_rewrite_keeps_everything_but_the_named_lines(tmp_path: Path) -> None:
    shipped = SHIPPED_SITE.read_text(encoding="utf-8")
    rewritten = rewrite_site(
        shipped, upstreams=["127.0.0.1:7001", "127.0.0.1:7002"], port=9999, workdir=tmp_path
    )
    directives = "\n".join(line for line in rewritten.splitlines() if not line.lstrip().startswith("#"))
    assert "forumcast-1:8080" not in directives and "/var/" not in directives
    assert re.findall(r"server (127\.0\.0\.1:\d+) max_fails", rewritten) == [
        "127.0.0.1:7001",
        "127.0.0.1:7002",
    ]
    assert "listen 127.0.0.1:9999;" in rewritten
    changed = set(shipped.splitlines()) ^ set(rewritten.splitlines())
    # Three upstream lines out, two in; listen, cache path, two logs: one out and one in each.
    assert len(changed) == 5 + 2 * 4, changed


def test_rewrite_fails_when_the_shipped_file_loses_a_line_it_promises(tmp_path: Path) -> None:
    shipped = SHIPPED_SITE.read_text(encoding="utf-8")
    shipped = shipped.replace("    listen 80 backlog=4096;\n", "    listen 8000;\n")
    assert "listen 8000;" in shipped
    with pytest.raises(ValueError, match="listen"):
        rewrite_site(shipped, upstreams=["127.0.0.1:1"], port=1, workdir=tmp_path)


def test_the_shipped_main_config_wraps_the_site(tmp_path: Path) -> None:
    # Front runs the shipped nginx.conf (its worker and events sizing) around the site.
    front = Front(tmp_path, ["127.0.0.1:1"])
    lines = front.config.read_text().splitlines()
    text = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    assert "worker_connections 16384;" in text and f"include {front.site};" in text
    assert "/var/" not in text and "conf.d" not in text
    broken = tmp_path / "nginx.conf"
    broken.write_text(SHIPPED_MAIN.read_text().replace("pid /var/run/nginx.pid;", "pid /run/x.pid;"))
    with pytest.raises(AssertionError, match=r"pid /var/run/nginx\.pid"):
        main_config(tmp_path, front.site, shipped=broken)


def test_nginx_log_lines_are_read_by_the_mtail_program(tmp_path: Path) -> None:
    """Lines exactly as the shipped log_format writes them (nginx fills the variables at
    run time; the topology tests check real ones) go into each metric with their labels."""
    log = tmp_path / "access.log"
    log.write_text(
        "forumcast-front/1 part 200 HIT 0.000 1234 GET /live/main/123/part/5.m4s\n"
        "forumcast-front/1 playlist 200 MISS 1.503 800 GET /live/main/media.m3u8\n"
        "forumcast-front/1 websocket 101 none 12.000 0 GET /ws/watch/main\n"
        "something else\n",
        encoding="utf-8",
    )
    mtail = find_binary("mtail", "mtail")
    result = subprocess.run(
        [mtail, "--one_shot", "--one_shot_format", "prometheus", "--progs", str(MTAIL_PROGRAMS),
         "--logs", str(log), "--emit_prog_label=false", "--logtostderr"],
        capture_output=True, text=True, check=False, timeout=30,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert 'forumcast_front_requests_total{cache="HIT",kind="part"} 1' in out, out
    assert 'forumcast_front_requests_total{cache="MISS",kind="playlist"} 1' in out, out
    assert 'forumcast_front_requests_total{cache="none",kind="websocket"} 1' in out, out
    assert 'forumcast_front_responses_total{kind="websocket",status="101"} 1' in out, out
    assert 'forumcast_front_request_seconds_bucket{kind="playlist",le="2"} 1' in out, out
    assert 'forumcast_front_request_seconds_bucket{kind="playlist",le="1"} 0' in out, out
    assert "forumcast_front_unparsed_lines_total 1" in out, out
    assert 'forumcast_front_sent_bytes_total{kind="part"} 1234' in out, out


def test_mtail_serves_the_metrics_of_a_log_it_tails(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.touch()
    with Mtail(tmp_path, log) as mtail:
        with log.open("a", encoding="utf-8") as out:
            out.write("forumcast-front/1 model 200 MISS 0.010 40000 GET /models/" + "a" * 64 + ".glb\n")
        deadline = 50
        while deadline and 'kind="model"' not in mtail.metrics():
            deadline -= 1
            time.sleep(0.1)
        assert re.search(
            r'forumcast_front_requests_total\{cache="MISS",kind="model"[^}]*\} 1', mtail.metrics()
        )
