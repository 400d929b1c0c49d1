"""Procedural demo models and the shape builder they are made with."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from trimesh import creation

from exhibits.catalog import Category, Exhibit
from exhibits.demo_catalog import demo_catalog
from exhibits.model import Material, Model
from exhibits.procedural import demo_model
from exhibits.shapes import ShapeBuilder, crease_normals

BUDGET = 20_000


def _by_category() -> dict[Category, list[Exhibit]]:
    groups: dict[Category, list[Exhibit]] = {}
    for exhibit in demo_catalog():
        groups.setdefault(exhibit.category, []).append(exhibit)
    return groups


GROUPS = _by_category()


def _arrays(model: Model) -> list[tuple[str, bytes]]:
    out = []
    for part in model.parts:
        assert part.normals is not None
        out += [
            (part.material.name, part.positions.tobytes()),
            ("n", part.normals.tobytes()),
            ("i", part.indices.tobytes()),
        ]
    return out


@pytest.mark.parametrize("category", list(Category), ids=lambda c: c.value)
def test_every_category_builds_a_well_formed_model(category: Category) -> None:
    for exhibit in GROUPS[category][:3]:
        model = demo_model(exhibit)
        assert 0 < model.triangles <= BUDGET
        materials = [part.material for part in model.parts]
        assert len(set(materials)) == len(materials), "one part per material"
        for part in model.parts:
            assert part.positions.dtype == np.float32 and part.positions.shape[1] == 3
            assert part.indices.dtype == np.uint32 and part.indices.shape[1] == 3
            assert part.normals is not None and part.normals.dtype == np.float32
            assert part.normals.shape == part.positions.shape
            assert int(part.indices.max()) < part.vertices
            assert np.isfinite(part.positions).all() and np.isfinite(part.normals).all()
            assert np.allclose(np.linalg.norm(part.normals, axis=1), 1.0, atol=1e-4)
            assert part.material.base_color_texture is None and part.uvs is None


@pytest.mark.parametrize("category", list(Category), ids=lambda c: c.value)
def test_fits_its_envelope_on_the_floor_and_centred(category: Category) -> None:
    for exhibit in GROUPS[category][:3]:
        (x0, y0, z0), (x1, y1, z1) = demo_model(exhibit).bounds()
        w, h, d = exhibit.envelope
        assert y0 == 0.0
        assert y1 <= h + 1e-4 and x1 - x0 <= w + 1e-4 and z1 - z0 <= d + 1e-4
        assert abs(x0 + x1) < 1e-4 and abs(z0 + z1) < 1e-4
        # Fills a fair share of the envelope: a model is not a speck on its plinth.
        assert max(x1 - x0, y1, z1 - z0) >= 0.5 * min(w, h, d)


@pytest.mark.parametrize("category", list(Category), ids=lambda c: c.value)
def test_same_exhibit_same_arrays_other_exhibit_other_arrays(category: Category) -> None:
    first, second = GROUPS[category][:2]
    assert _arrays(demo_model(first)) == _arrays(demo_model(first))
    assert _arrays(demo_model(first)) != _arrays(demo_model(second))


def test_normals_point_out_of_the_surface() -> None:
    for members in GROUPS.values():
        for part in demo_model(members[0]).parts:
            assert part.normals is not None
            tri = part.positions[part.indices].astype(np.float64)
            winding = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
            shading = part.normals[part.indices].astype(np.float64).sum(axis=1)
            agree = np.einsum("ij,ij->i", winding, shading) > 0
            assert agree.mean() > 0.99, part.material.name


def test_a_catalog_exhibit_without_a_tall_envelope_still_fits() -> None:
    wind = dataclasses.replace(GROUPS[Category.WIND][0], envelope=(2.0, 2.0, 2.0))
    (x0, y0, z0), (x1, y1, z1) = demo_model(wind).bounds()
    assert y0 == 0.0 and y1 <= 2.0 + 1e-4 and x1 - x0 <= 2.0 + 1e-4 and z1 - z0 <= 2.0 + 1e-4


def test_the_whole_demo_stays_light() -> None:
    models = [demo_model(e) for members in GROUPS.values() for e in members]
    assert max(m.triangles for m in models) <= 5_000
    assert sum(m.triangles for m in models) <= 200_000


def test_crease_normals_keep_box_faces_flat_and_spheres_smooth() -> None:
    box = creation.box(extents=(1.0, 2.0, 3.0))
    positions, normals, faces = crease_normals(box.vertices, box.faces)
    assert len(positions) == 24 and len(faces) == 12
    assert np.allclose(np.abs(normals).max(axis=1), 1.0)
    sphere = creation.icosphere(subdivisions=2)
    positions, normals, faces = crease_normals(sphere.vertices, sphere.faces)
    assert len(positions) == len(sphere.vertices)
    assert np.allclose(normals, positions / np.linalg.norm(positions, axis=1)[:, None], atol=0.05)


def test_crease_normals_split_a_cylinder_only_at_its_rims() -> None:
    cylinder = creation.cylinder(radius=1.0, height=2.0, sections=16)
    positions, normals, _ = crease_normals(cylinder.vertices, cylinder.faces)
    side = np.abs(normals[:, 2]) < 1e-6
    caps = np.isclose(np.abs(normals[:, 2]), 1.0)
    assert side.sum() == 32 and caps.sum() == len(positions) - 32


def test_builder_groups_by_material_and_shrinks_to_the_envelope() -> None:
    red, blue = Material("red", (1.0, 0.0, 0.0, 1.0)), Material("blue", (0.0, 0.0, 1.0, 1.0))
    builder = ShapeBuilder()
    builder.block(red, (2.0, 1.0, 1.0), (5.0, 3.0, 0.0))
    builder.cylinder(blue, 0.5, (5.0, 4.0, 0.0), (5.0, 8.0, 0.0))
    builder.block(red, (1.0, 1.0, 1.0), (5.0, 8.0, 0.0))
    model = builder.build((4.0, 4.0, 4.0))
    assert [p.material for p in model.parts] == [red, blue]
    (x0, y0, z0), (x1, y1, z1) = model.bounds()
    assert y0 == 0.0 and y1 == pytest.approx(4.0, abs=0.01)  # 6 m tall shrunk to 4 m
    assert x1 - x0 == pytest.approx(2.0 * 4.0 / 6.0, abs=0.01)
    assert abs(x0 + x1) < 1e-5 and abs(z0 + z1) < 1e-5
