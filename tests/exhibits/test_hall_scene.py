"""The hall as one Model: furniture, boards atlas, exhibits placed in their booths, GLB."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest
from PIL import Image

from exhibits.catalog import Exhibit
from exhibits.hall import HallLayout, layout_hall
from exhibits.hall_scene import board_atlas, hall_model
from exhibits.model import Material, Model, Part
from exhibits.procedural import demo_model

PROBE = Material("probe", (1.0, 0.0, 1.0, 1.0))


@pytest.fixture(scope="module")
def models(demo: list[Exhibit]) -> dict[str, Model]:
    return {e.id: demo_model(e) for e in demo}


@pytest.fixture(scope="module")
def hall(demo: list[Exhibit], layout: HallLayout, models: dict[str, Model]) -> Model:
    return hall_model(layout, {e.id: e for e in demo}, models)


def _probe(width: float = 1.0, depth: float = 1.0, front: float = 0.0) -> Model:
    """A box on the floor, centred, pushed ``front`` metres towards its +Z front."""
    x, z = width / 2, depth / 2
    corners = np.array([[sx * x, y, sz * z + front] for sx in (-1, 1) for y in (0.0, 1.0) for sz in (-1, 1)])
    faces = [[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1]]
    faces += [[2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]]
    # No normals on purpose: the hall computes them for models that come without.
    part = Part(
        positions=corners.astype(np.float32), indices=np.array(faces, dtype=np.uint32), material=PROBE
    )
    return Model(parts=[part])


def _with_material(model: Model, material: Material) -> list[Part]:
    return [p for p in model.parts if p.material == material]


def test_contains_every_exhibits_triangles(
    demo: list[Exhibit], layout: HallLayout, models: dict[str, Model], hall: Model
) -> None:
    empty = hall_model(layout, {e.id: e for e in demo}, {})
    assert hall.triangles - empty.triangles == sum(m.triangles for m in models.values())
    # Furniture is a small share: the phone's budget goes to the exhibits.
    assert empty.triangles < 0.1 * hall.triangles


def test_merges_by_material_into_few_parts_with_16_bit_indices(hall: Model) -> None:
    assert len(hall.parts) <= 60
    assert all(p.vertices <= 65535 for p in hall.parts)
    for part in hall.parts:
        assert part.normals is not None
        assert np.allclose(np.linalg.norm(part.normals, axis=1), 1.0, atol=1e-4)
        assert int(part.indices.max()) < part.vertices
        assert part.positions.dtype == np.float32 and part.indices.dtype == np.uint32


def test_boards_share_one_atlas_of_the_right_size(
    demo: list[Exhibit], layout: HallLayout, hall: Model
) -> None:
    textured = [p for p in hall.parts if p.material.base_color_texture is not None]
    assert len(textured) == 1 and textured[0].uvs is not None
    texture = textured[0].material.base_color_texture
    assert texture is not None and texture.mime == "image/png"
    image = Image.open(io.BytesIO(texture.data))
    assert image.size == (texture.width, texture.height) == (2048, 2048)
    # Two triangles per board, every UV inside the atlas.
    assert textured[0].triangles == 2 * len(demo)
    assert (textured[0].uvs >= 0).all() and (textured[0].uvs <= 1).all()


def test_atlas_cells_are_distinct_and_show_the_board(demo: list[Exhibit], layout: HallLayout) -> None:
    atlas = board_atlas(layout, {e.id: e for e in demo})
    assert set(atlas.cells) == {b.id for b in layout.booths}
    assert len(set(atlas.cells.values())) == len(layout.booths)
    image = Image.open(io.BytesIO(atlas.texture.data)).convert("L")
    u0, v0, u1, v1 = atlas.cells["H-01"]
    cell = np.asarray(image.crop((round(u0 * 2048), round(v0 * 2048), round(u1 * 2048), round(v1 * 2048))))
    assert cell.min() < 80 and cell.max() > 200, "dark text on a light board"
    small = board_atlas(layout_hall(demo[:5]), {e.id: e for e in demo[:5]})
    assert small.texture.width <= 2048 and small.texture.height < small.texture.width
    with pytest.raises(ValueError, match="do not fit"):
        board_atlas(layout, {e.id: e for e in demo}, atlas_px=32)


def test_stays_inside_the_hall(layout: HallLayout, hall: Model) -> None:
    (x0, y0, z0), (x1, y1, z1) = hall.bounds()
    w, d = layout.size
    assert -w / 2 - 1e-4 <= x0 and x1 <= w / 2 + 1e-4
    assert -d / 2 - 1e-4 <= z0 and z1 <= d / 2 + 1e-4
    assert y0 >= -0.1 - 1e-4 and y1 <= 7.0


@pytest.mark.parametrize("label", ["H-01", "H-02"])
def test_an_exhibit_stands_on_its_plinth_facing_the_aisle(
    demo: list[Exhibit], layout: HallLayout, label: str
) -> None:
    booth = next(b for b in layout.booths if b.id == label)
    hall = hall_model(layout, {e.id: e for e in demo}, {booth.exhibit_id: _probe(front=0.5)})
    (probe,) = _with_material(hall, PROBE)
    low, high = probe.positions.min(axis=0), probe.positions.max(axis=0)
    x, y, z = booth.position
    assert low[1] == pytest.approx(y) and high[1] == pytest.approx(y + 1.0)
    assert (low[0] + high[0]) / 2 == pytest.approx(x)
    aisle = next(a for a in layout.aisles if a.id == booth.aisle)
    shifted = (low[2] + high[2]) / 2 - z
    assert abs(shifted) == pytest.approx(0.5) and np.sign(shifted) == np.sign(aisle.start[1] - z)
    assert probe.normals is not None and np.allclose(np.linalg.norm(probe.normals, axis=1), 1.0, atol=1e-5)


def test_an_oversized_model_is_shrunk_into_its_booth(demo: list[Exhibit], layout: HallLayout) -> None:
    booth = layout.booths[0]
    hall = hall_model(layout, {e.id: e for e in demo}, {booth.exhibit_id: _probe(width=20.0, depth=3.0)})
    (probe,) = _with_material(hall, PROBE)
    low, high = probe.positions.min(axis=0), probe.positions.max(axis=0)
    assert high[0] - low[0] <= booth.footprint[0]
    assert high[1] - low[1] == pytest.approx(1.0 * (high[0] - low[0]) / 20.0, rel=1e-3)


def test_textured_exhibit_parts_keep_their_uvs(demo: list[Exhibit], layout: HallLayout) -> None:
    probe = _probe()
    texture = board_atlas(layout_hall(demo[:1]), {demo[0].id: demo[0]}).texture
    skin = dataclasses.replace(PROBE, name="skin", base_color_texture=texture)
    uvs = np.tile(np.array([[0.25, 0.75]], dtype=np.float32), (probe.vertices, 1))
    part = dataclasses.replace(probe.parts[0], material=skin, uvs=uvs)
    hall = hall_model(layout, {e.id: e for e in demo}, {demo[0].id: Model([part]), demo[1].id: Model([part])})
    (merged,) = _with_material(hall, skin)
    assert merged.vertices == 2 * probe.vertices and merged.uvs is not None
    assert np.allclose(merged.uvs, 0.25 * np.array([1.0, 3.0]))


def test_writes_a_phone_sized_valid_glb(hall: Model) -> None:
    from exhibits.glb import write_glb
    from exhibits.glb_read import read_glb
    from tests.exhibits.gltf_validator import errors, validate

    data = write_glb(hall)
    assert data[:4] == b"glTF"
    assert len(data) < 8 * 2**20
    assert read_glb(data).triangles == hall.triangles
    (report,) = validate([data])
    assert report["numErrors"] == 0, errors(report)
    assert report["info"]["drawCallCount"] == len(hall.parts)
