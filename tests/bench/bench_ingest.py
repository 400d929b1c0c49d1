"""Benchmark of the 3D ingest pipeline against gltfpack on a 1M-triangle textured mesh.

Run from the repository root (not collected by pytest)::

    .venv/bin/python tests/bench/bench_ingest.py [--triangles 1000000]

It builds (and caches under ~/.cache/forumcast-test-media) a textured sphere GLB, then times

- our ``ingest`` with the default levels (100k / 20k / 4k, the whole chain, textures and
  GLB writing included), step by step;
- ``gltfpack -i in.glb -o out.glb -si 0.2`` (tests/node/node_modules/.bin/gltfpack, the npm
  package; quantised output) and the same with ``-noq`` (float output, like ours);
- our ``ingest`` with one level at gltfpack's output triangle count, to compare like with like.

and prints a table of wall time, output bytes and triangle counts.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from exhibits.glb import read_glb  # noqa: E402
from exhibits.pipeline import Limits, ingest  # noqa: E402
from tests.exhibits import assets  # noqa: E402

GLTFPACK = ROOT / "tests" / "node" / "node_modules" / ".bin" / "gltfpack"


def ours(data: bytes, limits: Limits) -> tuple[float, dict[str, float], list[tuple[int, int]]]:
    """Wall time, seconds per step, and (triangles, bytes) per level."""
    marks: list[tuple[float, str]] = []
    started = time.perf_counter()
    result = ingest(
        data, "bench.glb", limits=limits, progress=lambda _f, step: marks.append((time.perf_counter(), step))
    )
    total = time.perf_counter() - started
    steps = {step: round(marks[i + 1][0] - at, 3) for i, (at, step) in enumerate(marks[:-1])}
    return total, steps, [(lod.info.triangles, lod.info.bytes) for lod in result.lods]


def gltfpack(source: Path, *flags: str) -> tuple[float, int, int]:
    """Wall time, output bytes and output triangles of one gltfpack run."""
    if not GLTFPACK.exists():
        sys.exit("gltfpack is missing: run `npm ci --prefix tests/node`")
    target = source.with_name(f"packed{'-'.join(flags)}.glb")
    started = time.perf_counter()
    subprocess.run(
        [str(GLTFPACK), "-i", str(source), "-o", str(target), *flags], check=True, capture_output=True
    )
    elapsed = time.perf_counter() - started
    output = target.read_bytes()
    triangles = read_glb(output).triangles if "-noq" in flags else _triangles_of_quantised(output)
    return elapsed, len(output), triangles


def _triangles_of_quantised(glb: bytes) -> int:
    # Quantised files use KHR_mesh_quantization; the index accessor's count is all we need.
    import json
    import struct

    (length,) = struct.unpack_from("<I", glb, 12)
    document = json.loads(glb[20 : 20 + length])
    return sum(
        document["accessors"][p["indices"]]["count"] // 3 for m in document["meshes"] for p in m["primitives"]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--triangles", type=int, default=1_000_000)
    args = parser.parse_args()
    data = assets.big_textured_glb(args.triangles)
    source_triangles = read_glb(data).triangles
    print(f"input: {source_triangles} triangles, {len(data)} bytes (textured sphere, 2560 px PNG)\n")

    total, steps, levels = ours(data, Limits())
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "in.glb"
        source.write_bytes(data)
        packed = gltfpack(source, "-si", "0.2")
        packed_float = gltfpack(source, "-si", "0.2", "-noq")
    same_limits = Limits(lod_triangles=(packed[2],), lod_texture_px=(4096,))
    same_total, _, same_levels = ours(data, same_limits)

    rows = [
        ("forumcast ingest, 3 levels", total, levels[0][1], ", ".join(str(t) for t, _ in levels)),
        ("gltfpack -si 0.2 (quantised)", packed[0], packed[1], str(packed[2])),
        ("gltfpack -si 0.2 -noq", packed_float[0], packed_float[1], str(packed_float[2])),
        (f"forumcast ingest, 1 level of {packed[2]}", same_total, same_levels[0][1], str(same_levels[0][0])),
    ]
    print(f"{'run':42} {'seconds':>8} {'bytes (LOD0)':>13}  triangles")
    for name, seconds, size, triangles in rows:
        print(f"{name:42} {seconds:8.2f} {size:13d}  {triangles}")
    print(f"\nforumcast steps (s): {steps}")
    print("level bytes:", ", ".join(f"{t} tris = {b} B" for t, b in levels))


if __name__ == "__main__":
    main()
