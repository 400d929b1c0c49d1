"""The model store: content-addressed files written atomically, manifests committed last."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from exhibits.model import LodInfo
from exhibits.modelstore import ModelAsset, ModelStore


def lod(level: int, data: bytes) -> LodInfo:
    sha = hashlib.sha256(data).hexdigest()
    return LodInfo(level, 10, 8, len(data), 0, 0, 0.01 * level, sha)


def asset(exhibit: str, *blobs: bytes) -> ModelAsset:
    return ModelAsset(
        exhibit=exhibit,
        source_format="obj",
        source_triangles=12,
        unit="mm",
        unit_guessed=False,
        up="y",
        up_guessed=True,
        scale=0.001,
        bounds=((-0.5, 0.0, -0.5), (0.5, 1.0, 0.5)),
        lods=tuple(lod(i, b) for i, b in enumerate(blobs)),
        created="2020-12-06T02:00:00+00:00",
        source="upload:abc",
    )


def test_put_is_content_addressed_and_idempotent(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    sha, created = store.put(b"glTF model")
    assert sha == hashlib.sha256(b"glTF model").hexdigest() and created
    assert store.path(sha) == tmp_path / "models" / sha[:2] / f"{sha}.glb"
    assert store.read(sha) == b"glTF model"
    assert store.put(b"glTF model") == (sha, False)
    assert store.files() == [store.path(sha)]
    assert not list(tmp_path.rglob("*.tmp"))


def test_commit_then_manifest_round_trips(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    model = asset("cn-a-01", b"lod0", b"lod1")
    store.commit(model, [b"lod0", b"lod1"])
    found = store.manifest("cn-a-01")
    assert found is not None and found[0] == model
    assert found[1] == store.manifest_stamp("cn-a-01")
    assert store.manifest("other") is None and store.manifest_stamp("other") is None


def test_a_failed_commit_leaves_nothing_and_keeps_the_old_model(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    old = asset("cn-a-01", b"old")
    store.commit(old, [b"old"])
    before = store.files()
    broken = asset("cn-a-01", b"new0", b"new1")
    with pytest.raises(ValueError, match="LOD 1 bytes do not match"):
        store.commit(broken, [b"new0", b"tampered"])
    assert store.files() == before
    manifest = store.manifest("cn-a-01")
    assert manifest is not None and manifest[0] == old


def test_a_commit_never_deletes_files_it_did_not_create(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    shared, _ = store.put(b"shared")
    with pytest.raises(ValueError):
        store.commit(asset("x-a-01", b"shared", b"y"), [b"shared", b"z"])
    assert store.has(shared)


def test_paths_only_for_sha256_names(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        ModelStore(tmp_path).path("../../etc/passwd")
