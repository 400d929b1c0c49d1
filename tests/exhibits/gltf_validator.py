"""Khronos glTF-Validator, run with node from ``tests/node`` on GLB bytes.

All files given to :func:`validate` are checked by one node process (starting the
validator costs more than validating a small file). The tools are npm devDependencies of
``tests/node``; when they are missing the calling test fails and says how to install them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

NODE_DIR = Path(__file__).resolve().parents[1] / "node"
SCRIPT = NODE_DIR / "validate.mjs"
INSTALL_HINT = "run `npm ci --prefix tests/node` to install the glTF validator and gltfpack"


def node() -> str:
    found = shutil.which("node")
    if found is None:
        pytest.fail(f"node is not installed; install Node.js 18+ and {INSTALL_HINT}")
    if not (NODE_DIR / "node_modules" / "gltf-validator").is_dir():
        pytest.fail(f"tests/node/node_modules/gltf-validator is missing: {INSTALL_HINT}")
    return found


def validate(glbs: Sequence[bytes]) -> list[dict[str, Any]]:
    """The validator's report for each GLB: ``numErrors``, ``numWarnings``, ``messages``, ``info``."""
    executable = node()
    with tempfile.TemporaryDirectory(prefix="forumcast-gltf-") as folder:
        paths = []
        for number, data in enumerate(glbs):
            path = Path(folder) / f"{number}.glb"
            path.write_bytes(data)
            paths.append(str(path))
        done = subprocess.run(
            [executable, str(SCRIPT), *paths], capture_output=True, text=True, timeout=300, check=False
        )
    if done.returncode != 0:
        pytest.fail(f"glTF validator failed ({done.returncode}): {done.stderr[-2000:]}")
    reports: list[dict[str, Any]] = json.loads(done.stdout)
    return reports


def errors(report: dict[str, Any]) -> list[str]:
    """The error messages of one report (severity 0), for assertion output."""
    return [
        f"{m.get('code')}: {m.get('message')} at {m.get('pointer')}"
        for m in report["messages"]
        if m.get("severity", 0) == 0
    ]
