"""deploy/Dockerfile's steps, run without Docker: the builder's COPY and RUN steps in a fresh
venv (paths moved into tmp), ``forumcast serve`` started from that venv outside the repo, and
the image's HEALTHCHECK command run against it (0 while it serves, non-zero once it stops).

This proves the install the image makes is complete (package data, entry point) and that the
health check works with what a slim image has (Python, no curl).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tests.support.redis_server import free_port

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
VENV = "/opt/forumcast/.venv"


@dataclass
class Stage:
    name: str
    instructions: list[tuple[str, str]]  # (INSTRUCTION, arguments), continuations joined


def stages(text: str) -> list[Stage]:
    """The Dockerfile's stages, each with its instructions (pure; comments dropped)."""
    joined = re.sub(r"\\\n\s*", " ", text)
    out: list[Stage] = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        if word == "FROM":
            name = rest.split(" AS ")[1].strip() if " AS " in rest else str(len(out))
            out.append(Stage(name, []))
        elif out:
            out[-1].instructions.append((word, rest.strip()))
    return out


def test_the_image_is_multi_stage_non_root_with_the_cjk_font_and_no_compiler() -> None:
    builder, final = stages(DOCKERFILE.read_text(encoding="utf-8"))
    assert builder.name == "builder"
    final_text = " ".join(f"{i} {a}" for i, a in final.instructions)
    assert "fonts-noto-cjk" in final_text and "libsrt1.5-openssl" in final_text
    assert not re.search(r"\b(gcc|g\+\+|build-essential)\b", final_text)
    assert ("COPY", f"--from=builder {VENV} {VENV}") in final.instructions
    assert ("USER", "forumcast") in final.instructions
    assert ("WORKDIR", "/var/lib/forumcast") in final.instructions
    assert ("EXPOSE", "8080 1935 1936 9000/udp") in final.instructions
    assert ("CMD", '["forumcast", "serve"]') in final.instructions
    assert any(i == "HEALTHCHECK" and "/healthz" in a for i, a in final.instructions)


def healthcheck_command(final: Stage) -> list[str]:
    [args] = [a for i, a in final.instructions if i == "HEALTHCHECK"]
    command: list[str] = json.loads(args[args.index("CMD") + 3 :].strip())
    return command


def run_builder(builder: Stage, work: Path) -> Path:
    """The builder's COPY and pip/venv RUN steps with the venv and sources under ``work``."""
    src, venv = work / "src", work / "venv"
    src.mkdir()
    for instruction, args in builder.instructions:
        if instruction == "COPY":
            *sources, dest = args.split()
            for source in sources:
                target = (
                    src / dest / Path(source).name if dest.endswith("/") or len(sources) > 1 else src / dest
                )
                if (ROOT / source).is_dir():
                    shutil.copytree(ROOT / source, target, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(ROOT / source, target)
        elif instruction == "RUN" and ("venv" in args or "pip install" in args):
            # --no-cache-dir keeps the image small; here the machine's pip cache may serve the
            # same wheels (what gets installed is the same), which saves a download per run
            command = [a for a in shlex.split(args.replace(VENV, str(venv))) if a != "--no-cache-dir"]
            if command[0] == "python":
                command[0] = sys.executable
            result = subprocess.run(
                command, cwd=src, capture_output=True, text=True, check=False, timeout=540
            )
            assert result.returncode == 0, f"{args}:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    assert (venv / "bin" / "forumcast").exists()
    return venv


def health(command: list[str], venv: Path, port: int) -> int:
    argv = [str(venv / "bin" / "python"), *command[1:]] if command[0] == "python" else command
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "FORUMCAST_PORT": str(port)}
    return subprocess.run(argv, env=env, capture_output=True, check=False, timeout=10).returncode


def test_the_builder_steps_install_a_service_that_serves_and_passes_the_healthcheck(tmp_path: Path) -> None:
    builder, final = stages(DOCKERFILE.read_text(encoding="utf-8"))
    venv = run_builder(builder, tmp_path)
    port = free_port()
    run = tmp_path / "var-lib-forumcast"
    (run / "data").mkdir(parents=True)
    env = {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "HOME": str(run),
        "FORUMCAST_HOST": "127.0.0.1",
        "FORUMCAST_PORT": str(port),
        "FORUMCAST_DATA_DIR": str(run / "data"),
        "FORUMCAST_DEMO_MODELS": "false",
        "FORUMCAST_SLATE_SIZE": "320x180",
    }
    log = (tmp_path / "serve.log").open("wb")
    # From the venv alone, outside the repository: nothing may come from the work tree.
    server = subprocess.Popen(
        [str(venv / "bin" / "forumcast"), "serve"], cwd=run, env=env, stdout=log, stderr=log
    )
    try:
        command = healthcheck_command(final)
        deadline = time.monotonic() + 60
        while health(command, venv, port) != 0:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "no healthy answer within 60 s"
            time.sleep(0.5)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            assert response.status == 200
        # The pages and the API description are package data: present in a non-editable install.
        for path in ("/api/v1/openapi.json", "/"):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
                assert response.status == 200, path
                assert len(response.read()) > 1000, path
    finally:
        server.terminate()
        server.wait(20)
        log.close()
    assert health(command, venv, port) != 0, "the health check must fail once the server is gone"
    assert not any(p.name == "forumcast.egg-link" for p in venv.rglob("*.egg-link"))
    assert os.path.isdir(venv / "lib")
