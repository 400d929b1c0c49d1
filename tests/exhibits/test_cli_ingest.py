"""``forumcast exhibits ingest`` as a user runs it: a real subprocess, real files, exit codes."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, Serve, auth
from tests.exhibits import assets

CATALOG = str(FIXTURES / "exhibits.yaml")


def ingest(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server", "exhibits", "ingest", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_local_ingest_stores_lods_and_reports_them(tmp_path: Path) -> None:
    source = tmp_path / "tower.stl"
    source.write_bytes(assets.export(assets.tower(), "stl"))
    result = ingest(
        str(source),
        "--exhibit",
        "dk-wind-01",
        "--unit",
        "mm",
        "--catalog",
        CATALOG,
        "--data-dir",
        str(tmp_path / "data"),
        "--json",
    )
    assert result.returncode == 0, result.stderr
    model = json.loads(result.stdout)
    assert model["status"] == "ready" and model["unit"] == "mm" and model["lods"]
    low, high = model["bounds"]
    assert high[1] - low[1] == pytest.approx(1.0, rel=1e-3)  # 1000 mm tall, Z-up → +Y
    # The progress went to stderr, one line per step when it is not a terminal.
    assert "load" in result.stderr and "done" in result.stderr
    manifest = json.loads((tmp_path / "data" / "exhibits" / "dk-wind-01.json").read_text())
    assert [lod["sha256"] for lod in manifest["lods"]] == [lod["sha256"] for lod in model["lods"]]
    for lod in model["lods"]:
        sha = lod["sha256"]
        assert (tmp_path / "data" / "models" / sha[:2] / f"{sha}.glb").stat().st_size == lod["bytes"]


def test_refusals_exit_2_with_one_line_and_store_nothing(tmp_path: Path) -> None:
    cases = {
        "cloud.ply": assets.point_cloud_ply(),
        "evil.zip": assets.zip_with_names("../evil.obj"),
        "empty.stl": b"",
    }
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        result = ingest(
            str(path), "--exhibit", "dk-wind-01", "--catalog", CATALOG, "--data-dir", str(tmp_path / "data")
        )
        assert result.returncode == 2, result
        lines = [line for line in result.stderr.splitlines() if line.startswith("forumcast:")]
        assert len(lines) == 1 and name in lines[0] and "Traceback" not in result.stderr
    unknown = ingest(str(tmp_path / "cloud.ply"), "--exhibit", "nope", "--catalog", CATALOG)
    assert unknown.returncode == 2 and "no exhibit 'nope'" in unknown.stderr
    missing = ingest(str(tmp_path / "none.obj"), "--exhibit", "dk-wind-01")
    assert missing.returncode == 2 and "no such file" in missing.stderr
    assert not (tmp_path / "data" / "models").exists()


async def test_a_running_server_picks_up_a_local_ingest(serve: Serve, tmp_path: Path) -> None:
    client = await serve()
    source = tmp_path / "tower.stl"
    source.write_bytes(assets.export(assets.tower(), "stl"))
    result = await asyncio.to_thread(
        ingest,
        str(source),
        "--exhibit",
        "de-solar-01",
        "--catalog",
        CATALOG,
        "--data-dir",
        str(tmp_path / "data"),
    )
    assert result.returncode == 0, result.stderr
    assert "LOD" in result.stdout and "/models/" in result.stdout
    async with asyncio.timeout(15):
        while (await (await client.get("/api/v1/exhibits/de-solar-01")).json())["model"]["status"] != "ready":
            await asyncio.sleep(0.2)


async def test_upload_to_a_server_follows_the_job(serve: Serve, tmp_path: Path) -> None:
    client = await serve()
    source = tmp_path / "tower.stl"
    source.write_bytes(assets.export(assets.tower(), "stl"))
    url = str(client.make_url("/")).rstrip("/")
    token = auth("exhibitor:il-water-01")["Authorization"].removeprefix("Bearer ")
    result = await asyncio.to_thread(
        ingest, str(source), "--exhibit", "il-water-01", "--server", url, "--token", token, "--json"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["status"] == "ready"
    body = await (await client.get("/api/v1/exhibits/il-water-01")).json()
    assert body["model"]["status"] == "ready"
    refused = await asyncio.to_thread(
        ingest, str(source), "--exhibit", "cn-hydrogen-01", "--server", url, "--token", token
    )
    assert refused.returncode == 2 and "exhibitor token for 'cn-hydrogen-01'" in refused.stderr


def test_library_complaints_are_one_warning_line_not_a_traceback(tmp_path: Path) -> None:
    source = tmp_path / "textured.ply"
    source.write_bytes(assets.ply_missing_texture())
    args = ["--exhibit", "dk-wind-01", "--catalog", CATALOG, "--data-dir", str(tmp_path / "data")]
    result = ingest(str(source), *args)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    # trimesh's "unable to load image!" (logged with a KeyError traceback) is one line of the report.
    assert [line for line in result.stdout.splitlines() if "unable to load image" in line] == [
        "warning: trimesh: unable to load image!"
    ]
    assert "warning: 'missing.png' is referenced but not in the upload; ignored" in result.stdout
    as_json = json.loads(ingest(str(source), *args, "--json").stdout)
    assert "trimesh: unable to load image!" in as_json["warnings"]
