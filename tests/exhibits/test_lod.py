"""Levels of detail: planning and meshoptimizer decimation."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from exhibits import lod
from exhibits.formats import load
from exhibits.meshopt import weld
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


def closed_sphere(rows: int, columns: int) -> Model:
    """A textured UV sphere that is closed once welded by position: its seam column and pole
    rows repeat positions exactly (with their own UVs); the poles' zero-area faces are left
    for :func:`clean` to drop."""
    theta, phi = np.meshgrid(
        np.linspace(0, np.pi, rows + 1), np.linspace(0, 2 * np.pi, columns + 1), indexing="ij"
    )
    positions = np.stack([np.sin(theta) * np.cos(phi), np.cos(theta), np.sin(theta) * np.sin(phi)], axis=-1)
    positions[:, -1] = positions[:, 0]
    positions[0], positions[-1] = (0, 1, 0), (0, -1, 0)
    uvs = np.stack([phi / (2 * np.pi), theta / np.pi], axis=-1)
    grid = np.arange((rows + 1) * (columns + 1)).reshape(rows + 1, columns + 1)
    a, b, c, d = grid[:-1, :-1], grid[1:, :-1], grid[1:, 1:], grid[:-1, 1:]
    indices = np.concatenate([np.stack([a, b, c], -1).reshape(-1, 3), np.stack([a, c, d], -1).reshape(-1, 3)])
    part = Part(
        positions.reshape(-1, 3).astype(np.float32),
        indices.astype(np.uint32),
        uvs=uvs.reshape(-1, 2).astype(np.float32),
    )
    cleaned, _ = clean(Model([part]))
    return cleaned


def unmatched_edges(model: Model) -> int:
    """Edges (corners welded by position) that run one way more often than the other: an edge
    of a crack or hole. Slivers between wedges of one position (the poles') are left out."""
    (part,) = model.parts
    _, position = weld(part.positions)
    faces = position[part.indices].astype(np.int64)
    faces = faces[(faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 2] != faces[:, 0])]
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    forward, backward = (np.sort(a * len(position) + b) for a, b in (edges.T, edges.T[::-1]))
    return int(np.count_nonzero(forward != backward))


def test_a_big_part_decimated_in_two_halves_keeps_its_budget_bounds_and_has_no_crack(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sphere = closed_sphere(300, 400)
    assert sphere.triangles > lod.SPLIT_TRIANGLES
    assert unmatched_edges(sphere) == 0
    cuts: list[int] = []
    halves = lod._Mesh.collapse_halves

    def spy(mesh: Any, *args: Any, **kwargs: Any) -> Any:
        cuts.append(kwargs["axis"])
        return halves(mesh, *args, **kwargs)

    monkeypatch.setattr(lod._Mesh, "collapse_halves", spy)
    (level,) = lod.chain(sphere, [lod.Level(20_000, 512)])
    # The positions-only pass and the attribute pass, each cut across another axis.
    assert len(cuts) == 2 and cuts[0] != cuts[1]
    model, error = level
    assert 0.8 * 20_000 <= model.triangles <= 20_000
    assert model.bounds() == sphere.bounds()
    assert unmatched_edges(model) == 0
    assert 0 < error < 0.01
