"""The ingest pipeline end to end: every input format to validated GLB levels, every bad
input to its error code."""

from __future__ import annotations

import hashlib
import io
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from exhibits.glb import POSITION_ERROR
from exhibits.glb_read import read_glb
from exhibits.model import IngestResult, Material, Model, Part
from exhibits.pipeline import Limits, ingest, ingest_model
from server.errors import ModelError
from tests.exhibits import assets
from tests.exhibits.gltf_validator import errors, validate

GOOD = assets.good_inputs()
TEXTURED = ("glb", "obj-zip", "gltf-zip", "big")
BIG_TRIANGLES = 200_000


@pytest.fixture(scope="module")
def big_progress() -> list[tuple[float, str]]:
    return []


@pytest.fixture(scope="module")
def results(big_progress: list[tuple[float, str]]) -> dict[str, IngestResult]:
    made = {name: ingest(data, filename) for name, (data, filename) in GOOD.items()}
    made["big"] = ingest(
        assets.big_textured_glb(BIG_TRIANGLES), "big.glb", progress=lambda f, s: big_progress.append((f, s))
    )
    return made


@pytest.fixture(scope="module")
def reports(results: dict[str, IngestResult]) -> dict[tuple[str, int], dict[str, Any]]:
    keys = [(name, lod.info.level) for name, result in results.items() for lod in result.lods]
    found = validate([lod.glb for result in results.values() for lod in result.lods])
    return dict(zip(keys, found, strict=True))


@pytest.mark.parametrize("name", [*GOOD, "big"])
def test_every_level_of_every_format_passes_the_gltf_validator(
    name: str, results: dict[str, IngestResult], reports: dict[tuple[str, int], dict[str, Any]]
) -> None:
    assert results[name].lods
    for lod in results[name].lods:
        report = reports[(name, lod.info.level)]
        assert report["numErrors"] == 0, errors(report)
        assert report["info"]["generator"] == "forumcast"
        assert report["info"]["totalTriangleCount"] == lod.info.triangles


@pytest.mark.parametrize("name", TEXTURED)
def test_the_texture_survives_on_every_level_capped_and_recognisable(
    name: str, results: dict[str, IngestResult]
) -> None:
    limits = Limits()
    for lod in results[name].lods:
        model = read_glb(lod.glb)
        textures = {part.material.base_color_texture for part in model.parts}
        assert None not in textures, f"level {lod.info.level} lost its texture"
        for texture in textures:
            assert texture is not None
            image = Image.open(io.BytesIO(texture.data))
            cap = limits.lod_texture_px[lod.info.level] if name == "big" else limits.lod_texture_px[0]
            assert max(image.size) <= cap
            assert max(image.size) == lod.info.texture_px
            for where, colour in assets.quadrant_colours(image).items():
                assert np.allclose(colour, assets.QUADRANTS[where], atol=12), (where, colour)
        assert all(part.uvs is not None for part in model.parts)


def test_a_big_mesh_gets_three_levels_close_to_their_budgets(results: dict[str, IngestResult]) -> None:
    big = results["big"]
    assert big.source_triangles > 190_000
    budgets = Limits().lod_triangles
    assert [lod.info.level for lod in big.lods] == [0, 1, 2]
    for lod, budget in zip(big.lods, budgets, strict=True):
        assert 0.8 * budget <= lod.info.triangles <= budget
    errors_by_level = [lod.info.error for lod in big.lods]
    assert 0 < errors_by_level[0] < errors_by_level[1] < errors_by_level[2] < 0.05
    assert [lod.info.texture_px for lod in big.lods] == [2048, 1024, 512]
    assert big.lods[0].info.bytes > big.lods[1].info.bytes > big.lods[2].info.bytes


@pytest.mark.parametrize("name", [*GOOD, "big"])
def test_levels_stand_centred_on_the_floor_in_metres(name: str, results: dict[str, IngestResult]) -> None:
    result = results[name]
    low, high = result.bounds
    assert low[1] == pytest.approx(0.0, abs=1e-5)
    assert low[0] == pytest.approx(-high[0], abs=1e-5)
    assert low[2] == pytest.approx(-high[2], abs=1e-5)
    for lod in result.lods:
        lod_low, lod_high = read_glb(lod.glb).bounds()
        assert lod_low[1] == pytest.approx(0.0, abs=1e-5)
        assert lod_low == pytest.approx(low, abs=1e-5)
        assert lod_high == pytest.approx(high, abs=1e-5)


@pytest.mark.parametrize("name", ["stl-ascii", "stl-binary"])
def test_a_z_up_millimetre_stl_tower_ends_up_one_metre_tall_along_y(
    name: str, results: dict[str, IngestResult]
) -> None:
    result = results[name]
    assert (result.unit, result.unit_guessed, result.up, result.up_guessed) == ("mm", True, "z", True)
    low, high = result.bounds
    size = np.subtract(high, low)
    assert size == pytest.approx([0.2, 1.0, 0.3], abs=1e-6)
    assert any("unit guessed as mm" in warning for warning in result.warnings)


def test_formats_with_a_unit_by_specification_are_not_guessed(results: dict[str, IngestResult]) -> None:
    assert (results["glb"].unit, results["glb"].unit_guessed, results["glb"].up_guessed) == (
        "m",
        False,
        False,
    )
    assert (results["3mf"].unit, results["3mf"].unit_guessed) == ("mm", False)
    assert (results["3mf"].up, results["3mf"].up_guessed) == ("z", False)


def test_a_unit_hint_overrides_the_guess() -> None:
    data = assets.export(assets.tower((1000.0, 1000.0, 1000.0)), "stl")
    as_mm = ingest(data, "cube.stl", unit="mm")
    assert (as_mm.unit, as_mm.unit_guessed) == ("mm", False)
    assert np.subtract(as_mm.bounds[1], as_mm.bounds[0]) == pytest.approx([1.0, 1.0, 1.0])
    as_cm = ingest(data, "cube.stl", unit="cm", up="y")
    assert np.subtract(as_cm.bounds[1], as_cm.bounds[0]) == pytest.approx([10.0, 10.0, 10.0])
    assert as_cm.scale == pytest.approx(0.01)


def test_an_up_hint_overrides_the_convention() -> None:
    data = assets.export(assets.tower(), "stl")
    result = ingest(data, "tower.stl", up="y")
    assert (result.up, result.up_guessed) == ("y", False)
    assert np.subtract(result.bounds[1], result.bounds[0]) == pytest.approx([0.2, 0.3, 1.0], abs=1e-6)


def test_a_model_larger_than_the_envelope_is_scaled_down_uniformly() -> None:
    result = ingest(assets.textured_glb(radius=2.0), "sphere.glb", envelope=(1.0, 2.0, 3.0))
    size = np.subtract(result.bounds[1], result.bounds[0])
    assert size == pytest.approx([1.0, 1.0, 1.0], abs=1e-6)
    assert result.scale == pytest.approx(0.25)
    small = ingest(assets.textured_glb(radius=0.5), "sphere.glb", envelope=(4.0, 4.0, 4.0))
    assert small.scale == 1.0


def test_a_small_model_gets_one_level_and_a_medium_one_skips_the_duplicate(
    results: dict[str, IngestResult],
) -> None:
    small = results["glb"]
    assert len(small.lods) == 1
    assert small.lods[0].info.error == POSITION_ERROR, "not decimated: only quantised"
    assert small.lods[0].info.triangles <= small.source_triangles
    medium = ingest(assets.textured_glb(50, 100), "medium.glb")  # 10 000 faces, some at the poles degenerate
    assert [lod.info.level for lod in medium.lods] == [0, 1]
    assert 9_800 <= medium.lods[0].info.triangles < 10_000
    assert medium.lods[0].info.error == POSITION_ERROR
    assert medium.lods[1].info.triangles <= 4_000
    assert [lod.info.texture_px for lod in medium.lods] == [256, 256]


def test_level_metadata_matches_the_files(results: dict[str, IngestResult]) -> None:
    for result in results.values():
        for lod in result.lods:
            model = read_glb(lod.glb)
            assert lod.info.sha256 == hashlib.sha256(lod.glb).hexdigest()
            assert lod.info.bytes == len(lod.glb)
            assert (lod.info.triangles, lod.info.vertices) == (model.triangles, model.vertices)
            textures = {p.material.base_color_texture for p in model.parts if p.material.base_color_texture}
            assert lod.info.texture_bytes == sum(len(t.data) for t in textures)


def test_progress_reports_every_step_in_order(
    results: dict[str, IngestResult], big_progress: list[tuple[float, str]]
) -> None:
    seen = big_progress
    steps = [step for _, step in seen]
    assert steps == ["load", "normalise", "clean", "lod 0", "lod 1", "lod 2", "write", "done"]
    fractions = [fraction for fraction, _ in seen]
    assert fractions == sorted(fractions)
    assert (fractions[0], fractions[-1]) == (0.0, 1.0)


def _box_part(centre: tuple[float, float, float], material: Material) -> Part:
    corners = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], dtype=np.float32) - 0.5
    faces = np.array(
        [[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
         [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]],
        dtype=np.uint32,
    )  # fmt: skip
    return Part(positions=corners + np.float32(centre), indices=faces, material=material)


def test_a_procedural_model_goes_through_the_same_steps() -> None:
    red = Material(name="red", base_color=(1.0, 0.0, 0.0, 1.0))
    blue = Material(name="blue", base_color=(0.0, 0.0, 1.0, 1.0), metallic=0.5)
    model = Model([_box_part((0, 0, 0), red), _box_part((2, 0, 0), blue), _box_part((0, 2, 0), red)])
    before = model.parts[0].positions.copy()
    result = ingest_model(model)
    assert result.source_format == "procedural"
    assert (result.unit, result.up, result.unit_guessed, result.up_guessed) == ("m", "y", False, False)
    assert np.array_equal(model.parts[0].positions, before), "the caller's model must not change"
    (report,) = validate([result.lods[0].glb])
    assert report["numErrors"] == 0, errors(report)
    written = read_glb(result.lods[0].glb)
    assert sorted(p.material.name for p in written.parts) == ["blue", "red"]
    assert written.triangles == 36
    assert [*result.bounds[0], *result.bounds[1]] == pytest.approx([-1.5, 0.0, -0.5, 1.5, 3.0, 0.5])


BadInput = Callable[[], bytes]
BAD: list[tuple[str, BadInput, str, dict[str, Any], str]] = [
    ("empty", lambda: b"", "model.obj", {}, "model.empty"),
    ("point cloud", assets.point_cloud_ply, "points.ply", {}, "model.no_faces"),
    ("wireframe", lambda: assets.WIREFRAME_OBJ, "wire.obj", {}, "model.no_faces"),
    ("unknown format", lambda: assets.UNKNOWN_BYTES, "thing.xyz", {}, "model.unknown_format"),
    ("truncated glb", assets.truncated_glb, "cut.glb", {}, "model.corrupt"),
    ("corrupt stl", assets.corrupt_stl, "broken.stl", {}, "model.corrupt"),
    ("traversal", lambda: assets.zip_with_names("../evil.obj"), "evil.zip", {}, "model.unsafe_archive"),
    ("absolute path", lambda: assets.zip_with_names("/tmp/evil.obj"), "evil.zip", {}, "model.unsafe_archive"),
    ("too many entries", lambda: assets.zip_with_entries(600), "many.zip", {}, "model.too_many_entries"),
    ("zip bomb", assets.zip_bomb, "bomb.zip", {}, "model.archive_too_large"),
    (
        "unpacked size",
        lambda: assets.zipped({"model.obj": b"v 0 0 0\n" * 20_000}),
        "big.zip",
        {"limits": Limits(max_unpacked_bytes=100_000)},
        "model.archive_too_large",
    ),
    (
        "gltf ../ uri",
        lambda: assets.gltf_zip({"buffer": "../../outside.bin"}),
        "up.zip",
        {},
        "model.external_uri",
    ),
    (
        "gltf http uri",
        lambda: assets.gltf_zip({"image": "https://example.com/t.png"}),
        "web.zip",
        {},
        "model.external_uri",
    ),
    (
        "gltf file path",
        lambda: assets.gltf_zip({"buffer": "/etc/passwd"}),
        "abs.zip",
        {},
        "model.external_uri",
    ),
    ("nan vertices", lambda: assets.NAN_OBJ, "nan.obj", {}, "model.non_finite"),
    (
        "too many triangles",
        assets.textured_glb,
        "s.glb",
        {"limits": Limits(max_triangles=1000)},
        "model.too_many_triangles",
    ),
    (
        "upload too large",
        assets.textured_glb,
        "s.glb",
        {"limits": Limits(max_upload_bytes=10_000)},
        "model.too_large",
    ),
    ("bad unit", assets.textured_glb, "s.glb", {"unit": "furlong"}, "model.bad_option"),
    ("bad up", assets.textured_glb, "s.glb", {"up": "x"}, "model.bad_option"),
    ("bad envelope", assets.textured_glb, "s.glb", {"envelope": (1.0, 0.0, 1.0)}, "model.bad_option"),
]


@pytest.mark.parametrize(
    ("make", "filename", "options", "code"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
def test_a_bad_input_is_refused_with_its_code_and_leaves_no_temporary_files(
    make: BadInput,
    filename: str,
    options: dict[str, Any],
    code: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    with pytest.raises(ModelError) as refused:
        ingest(make(), filename, **options)
    assert refused.value.code == code, refused.value.message
    assert refused.value.message and "\n" not in refused.value.message
    assert list(scratch.iterdir()) == []


@pytest.mark.parametrize("name", list(GOOD))
def test_damaged_files_are_refused_as_model_errors_only(name: str) -> None:
    data, filename = GOOD[name]
    rng = np.random.default_rng(7)
    small = Limits(lod_triangles=(500, 100), lod_texture_px=(64, 32))
    for attempt in range(40):
        damaged = bytearray(data)
        if attempt % 2:
            damaged = damaged[: int(rng.integers(1, len(damaged)))]
        else:
            for at in rng.integers(0, len(damaged), size=int(rng.integers(1, 20))):
                damaged[at] = int(rng.integers(0, 256))
        outcome = _ingest_or_refusal(bytes(damaged), filename, small)
        if isinstance(outcome, ModelError):
            assert outcome.message and "\n" not in outcome.message
        else:
            assert outcome.lods


def _ingest_or_refusal(data: bytes, filename: str, limits: Limits) -> IngestResult | ModelError:
    """The result, or the ModelError raised; any other exception fails the test."""
    try:
        return ingest(data, filename, limits=limits)
    except ModelError as refused:
        return refused
