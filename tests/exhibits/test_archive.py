"""Reading uploaded zips safely, and resolving references inside them."""

from __future__ import annotations

import io
import zipfile

import pytest

from exhibits.archive import _inflate, is_zip, read_archive, resolve_uri
from server.errors import ModelError
from tests.exhibits import assets


def _code(data: bytes, **limits: int | float) -> str:
    with pytest.raises(ModelError) as refused:
        read_archive(data, **limits)  # type: ignore[arg-type]
    assert "\n" not in refused.value.message
    return refused.value.code


def test_files_are_read_by_normalised_path_and_junk_is_left_out() -> None:
    data = assets.zipped(
        {
            "chair/./model.obj": b"obj",
            "chair/textures/wood.png": b"png",
            "__MACOSX/chair/._model.obj": b"junk",
            "chair/.DS_Store": b"junk",
        }
    )
    archive = read_archive(data)
    assert archive.names() == ["chair/model.obj", "chair/textures/wood.png"]
    assert archive.find("chair/TEXTURES/Wood.PNG") == b"png"
    assert archive.find("chair/missing.png") is None


def test_directories_are_not_files() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr(zipfile.ZipInfo("chair/"), b"")
        zf.writestr("chair/model.obj", b"obj")
    assert read_archive(out.getvalue()).names() == ["chair/model.obj"]


@pytest.mark.parametrize(
    "name", ["../evil.obj", "chair/../../evil.obj", "..\\evil.obj", "/etc/evil.obj", "C:/evil.obj"]
)
def test_entries_leaving_the_archive_are_unsafe(name: str) -> None:
    assert _code(assets.zip_with_names("model.obj", name)) == "model.unsafe_archive"


def test_a_symbolic_link_is_unsafe() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        link = zipfile.ZipInfo("model.obj")
        link.external_attr = 0o120777 << 16
        zf.writestr(link, "/etc/passwd")
    assert _code(out.getvalue()) == "model.unsafe_archive"


def test_too_many_entries() -> None:
    assert _code(assets.zip_with_entries(513)) == "model.too_many_entries"
    assert len(read_archive(assets.zip_with_entries(512)).files) == 512
    assert _code(assets.zip_with_entries(11), max_entries=10) == "model.too_many_entries"


def test_a_zip_bomb_is_stopped_by_its_declared_ratio() -> None:
    assert _code(assets.zip_bomb(50)) == "model.archive_too_large"


def test_the_declared_total_is_limited() -> None:
    data = assets.zipped({f"part{i}.bin": bytes(range(256)) * 1000 for i in range(3)})
    assert _code(data, max_unpacked_bytes=500_000) == "model.archive_too_large"
    assert len(read_archive(data, max_unpacked_bytes=800_000).files) == 3


def test_small_entries_are_not_held_to_the_ratio() -> None:
    # 64 KiB of one byte compresses about 500:1 but is harmless.
    assert read_archive(assets.zipped({"model.mtl": b"\n" * 65536})).files["model.mtl"] == b"\n" * 65536


def test_a_header_that_understates_the_size_is_refused() -> None:
    assert _code(assets.lying_zip()) == "model.corrupt"


def test_bytes_are_counted_while_inflating_whatever_the_header_says() -> None:
    data = assets.zipped({"model.obj": bytes(range(256)) * 64})
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        info = zf.getinfo("model.obj")
        with pytest.raises(ModelError) as refused:
            _inflate(zf, info, budget=1000, max_ratio=100.0)
        assert refused.value.code == "model.archive_too_large"
        assert len(_inflate(zf, info, budget=20_000, max_ratio=100.0)) == 16384


def test_garbage_and_encrypted_entries_are_corrupt() -> None:
    assert _code(b"PK\x03\x04" + b"\0" * 100) == "model.corrupt"
    data = bytearray(assets.zipped({"model.obj": b"v 0 0 0\n"}))
    data[6] |= 0x1  # the encryption flag, in the local header
    central = data.rfind(b"PK\x01\x02")
    data[central + 8] |= 0x1  # and in the central directory
    assert _code(bytes(data)) == "model.corrupt"


def test_is_zip() -> None:
    assert is_zip(assets.zipped({"a": b"b"}))
    assert is_zip(assets.zipped({}))
    assert not is_zip(b"glTF")


@pytest.mark.parametrize(
    ("base", "uri", "path"),
    [
        ("", "mesh.bin", "mesh.bin"),
        ("scene", "textures/wood%20oak.png", "scene/textures/wood oak.png"),
        ("scene", "../shared/mesh.bin", "shared/mesh.bin"),
        ("scene", "textures\\wood.png", "scene/textures/wood.png"),
    ],
)
def test_relative_references_inside_the_archive_resolve(base: str, uri: str, path: str) -> None:
    assert resolve_uri(base, uri) == path


@pytest.mark.parametrize(
    ("base", "uri"),
    [
        ("", "../outside.bin"),
        ("scene", "../../outside.bin"),
        ("", "/etc/passwd"),
        ("", "\\\\server\\share\\x.bin"),
        ("", "https://example.com/mesh.bin"),
        ("", "file:///etc/passwd"),
        ("", "C:\\models\\mesh.bin"),
        ("", "%2e%2e/outside.bin"),
    ],
)
def test_references_leaving_the_archive_are_refused(base: str, uri: str) -> None:
    with pytest.raises(ModelError) as refused:
        resolve_uri(base, uri)
    assert refused.value.code == "model.external_uri"
