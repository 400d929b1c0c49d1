"""Levels of detail: planning and meshoptimizer decimation."""

from __future__ import annotations

import numpy as np
import pytest

from exhibits import lod
from exhibits.formats import load
from exhibits.model import Material, Model, Part
from exhibits.normalise import clean, place
from tests.exhibits import assets

BUDGETS = (100_000, 20_000, 4_000)
CAPS = (2048, 1024, 512)


@pytest.mark.parametrize(
    ("source", "levels"),
    [
        (3_000, [(3_000, 2048)]),
        (4_000, [(4_000, 2048)]),
        (10_000, [(10_000, 2048), (4_000, 512)]),
        (20_000, [(20_000, 2048), (4_000, 512)]),
        (25_000, [(25_000, 2048), (20_000, 1024), (4_000, 512)]),
        (1_000_000, [(100_000, 2048), (20_000, 1024), (4_000, 512)]),
    ],
)
def test_levels_never_exceed_the_source_nor_repeat_it(source: int, levels: list[tuple[int, int]]) -> None:
    assert lod.plan(source, BUDGETS, CAPS) == [lod.Level(t, px) for t, px in levels]


@pytest.fixture(scope="module")
def big() -> Model:
    model = load(assets.big_textured_glb(200_000), "big.glb").model
    place(model, metres_per_unit=1.0, up="y", envelope=None)
    cleaned, _ = clean(model)
    return cleaned


@pytest.fixture(scope="module")
def chained(big: Model) -> list[tuple[Model, float]]:
    return lod.chain(big, lod.plan(big.triangles, BUDGETS, CAPS))


def test_each_level_is_within_its_budget_and_close_to_it(chained: list[tuple[Model, float]]) -> None:
    for (model, _), budget in zip(chained, BUDGETS, strict=True):
        assert 0.8 * budget <= model.triangles <= budget


def test_the_error_grows_down_the_chain_and_stays_small(chained: list[tuple[Model, float]]) -> None:
    errors = [error for _, error in chained]
    assert 0 < errors[0] < errors[1] < errors[2] < 0.05


def test_uv_seams_survive_so_no_triangle_spans_the_texture(
    big: Model, chained: list[tuple[Model, float]]
) -> None:
    for model, _ in [(big, 0.0), *chained]:
        (part,) = model.parts
        assert part.uvs is not None
        u = part.uvs[part.indices][:, :, 0]
        # Around the seam u jumps from 1 to 0; a triangle welded across it would span ~1
        # (wide triangles near the poles legitimately span a third).
        assert (u.max(axis=1) - u.min(axis=1)).max() < 0.5


def test_levels_keep_the_bounds_material_and_texture(big: Model, chained: list[tuple[Model, float]]) -> None:
    for model, _ in chained:
        assert model.bounds() == big.bounds()
        assert model.parts[0].material is big.parts[0].material
        assert model.parts[0].material.base_color_texture is not None


def test_levels_are_compact(chained: list[tuple[Model, float]]) -> None:
    for model, _ in chained:
        (part,) = model.parts
        assert np.array_equal(np.unique(part.indices), np.arange(part.vertices))
        assert part.normals is not None and part.uvs is not None
        assert len(part.normals) == len(part.uvs) == part.vertices


def test_a_multi_part_model_shares_the_budget_by_triangle_count() -> None:
    dense = load(assets.textured_glb(60, 100), "a.glb").model.parts[0]
    sparse = load(assets.textured_glb(30, 50, radius=0.5), "b.glb").model.parts[0]
    model = Model(
        [
            dense,
            Part(sparse.positions + np.float32(3), sparse.indices, Material(name="other"), None, sparse.uvs),
        ]
    )
    cleaned, _ = clean(model)
    (level,) = lod.chain(cleaned, [lod.Level(2_000, 512)])
    counts = sorted(p.triangles for p in level[0].parts)
    assert sum(counts) <= 2_000
    assert counts[1] / counts[0] == pytest.approx(4.0, rel=0.15)


def test_the_sloppy_simplifier_finishes_when_the_careful_one_cannot() -> None:
    part = load(assets.textured_glb(40, 80), "s.glb").model.parts[0]
    everything_locked = np.ones(part.vertices, dtype=np.uint8)
    indices, error = lod.simplify(part, 1_000, everything_locked)
    assert 0 < len(indices) <= 1_000
    assert error > 0
    assert indices.max() < part.vertices


def test_optimise_drops_unused_vertices_and_keeps_each_triangle() -> None:
    positions = np.arange(30, dtype=np.float32).reshape(10, 3)
    indices = np.array([[7, 2, 9], [2, 9, 4]], np.uint32)
    optimised, locks = lod.optimise(Model([Part(positions, indices, uvs=positions[:, :2].copy())]))
    (part,) = optimised.parts
    assert part.vertices == 4
    assert locks[0].shape == (4,)
    assert sorted(map(tuple, part.positions[part.indices].reshape(-1, 3).tolist())) == sorted(
        map(tuple, positions[indices].reshape(-1, 3).tolist())
    )
    assert part.uvs is not None
    assert np.array_equal(part.uvs, part.positions[:, :2])
