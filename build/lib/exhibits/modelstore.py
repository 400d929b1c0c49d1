"""Model files on disk: content-addressed GLBs and the manifest of each exhibit's model.

Layout under the data dir::

    models/ab/ab12…ef.glb        one file per distinct GLB, named by its sha256
    exhibits/{exhibit}.json      the exhibit's current :class:`ModelAsset` (its LODs' shas)

Files are written atomically (a temporary file in the same folder, fsync, rename), so a
reader never sees half a file and a crash leaves at most a stray ``.tmp``. A model is
committed GLBs first, manifest last: until the manifest is replaced the exhibit keeps its
old model, and if writing any GLB fails, the GLBs this commit created are removed again.
Instances that share the data dir (a shared volume) share the models.

Every method does blocking file I/O: the server calls them through ``asyncio.to_thread``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from exhibits.model import IngestResult, LodInfo

SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True, slots=True)
class ModelAsset:
    """An exhibit's stored model: where it came from and its levels of detail (0 = finest)."""

    exhibit: str
    source_format: str
    source_triangles: int
    unit: str
    unit_guessed: bool
    up: str
    up_guessed: bool
    scale: float
    bounds: tuple[tuple[float, float, float], tuple[float, float, float]]
    lods: tuple[LodInfo, ...]
    created: str
    #: What the model was made from: an upload's sha256, or the demo generator's version.
    source: str
    warnings: tuple[str, ...] = field(default=())

    @classmethod
    def from_result(cls, exhibit: str, result: IngestResult, *, created: str, source: str) -> ModelAsset:
        return cls(
            exhibit=exhibit,
            source_format=result.source_format,
            source_triangles=result.source_triangles,
            unit=result.unit,
            unit_guessed=result.unit_guessed,
            up=result.up,
            up_guessed=result.up_guessed,
            scale=result.scale,
            bounds=result.bounds,
            lods=tuple(lod.info for lod in result.lods),
            created=created,
            source=source,
            warnings=tuple(result.warnings),
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelAsset:
        low, high = data["bounds"]
        return cls(
            **{
                **data,
                "bounds": (tuple(low), tuple(high)),
                "lods": tuple(LodInfo(**lod) for lod in data["lods"]),
                "warnings": tuple(data.get("warnings", ())),
            }
        )


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ModelStore:
    """The model files under one data dir."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.models = self.root / "models"
        self.manifests = self.root / "exhibits"

    def path(self, sha256: str) -> Path:
        """Where the GLB with this sha256 lives (whether or not it exists)."""
        if not SHA256.match(sha256):
            raise ValueError(f"not a sha256: {sha256!r}")
        return self.models / sha256[:2] / f"{sha256}.glb"

    def has(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def read(self, sha256: str) -> bytes:
        return self.path(sha256).read_bytes()

    def put(self, data: bytes) -> tuple[str, bool]:
        """Store ``data``; return its sha256 and whether this call created the file."""
        sha = sha256_hex(data)
        target = self.path(sha)
        if target.is_file():
            return sha, False
        _write_atomic(target, data)
        return sha, True

    def commit(self, asset: ModelAsset, glbs: list[bytes]) -> None:
        """Store the GLBs of ``asset`` (in LOD order), then make it the exhibit's model."""
        created: list[Path] = []
        try:
            for info, data in zip(asset.lods, glbs, strict=True):
                if sha256_hex(data) != info.sha256:
                    raise ValueError(f"LOD {info.level} bytes do not match their sha256")
                sha, new = self.put(data)
                if new:
                    created.append(self.path(sha))
            self.write_manifest(asset)
        except BaseException:
            for path in created:
                path.unlink(missing_ok=True)
            raise

    def manifest_path(self, exhibit: str) -> Path:
        return self.manifests / f"{exhibit}.json"

    def write_manifest(self, asset: ModelAsset) -> None:
        text = json.dumps(asset.to_json(), ensure_ascii=False, indent=1)
        _write_atomic(self.manifest_path(asset.exhibit), text.encode())

    def manifest(self, exhibit: str) -> tuple[ModelAsset, int] | None:
        """The exhibit's model and the manifest's mtime (ns), or None if it has none."""
        path = self.manifest_path(exhibit)
        try:
            stamp = path.stat().st_mtime_ns
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        return ModelAsset.from_json(data), stamp

    def manifest_stamp(self, exhibit: str) -> int | None:
        try:
            return self.manifest_path(exhibit).stat().st_mtime_ns
        except FileNotFoundError:
            return None

    def files(self) -> list[Path]:
        """Every stored GLB (for tests and housekeeping)."""
        return sorted(self.models.glob("*/*.glb")) if self.models.is_dir() else []


def _write_atomic(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
