"""Units, up axis, placement on the floor and the clean step."""

from __future__ import annotations

import numpy as np
import pytest

from exhibits.model import Material, Model, Part
from exhibits.normalise import (
    _drop_bad_faces,
    check_finite,
    choose_unit,
    choose_up,
    clean,
    parse_envelope,
    parse_unit,
    parse_up,
    place,
)
from server.errors import ModelError


def _cube(size: float = 1.0, *, material: Material | None = None) -> Part:
    """A cube as an STL gives it: 12 triangles, 36 unshared corners, no normals."""
    corners = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], dtype=np.float32) * size
    faces = np.array(
        [[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
         [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]],
    )  # fmt: skip
    soup = corners[faces.ravel()]
    return Part(soup, np.arange(36, dtype=np.uint32).reshape(-1, 3), material or Material())


@pytest.mark.parametrize(
    ("fmt", "extent", "unit"),
    [
        ("stl", 1000.0, "mm"),  # a 1 m object drawn in millimetres
        ("stl", 60.0, "mm"),  # 6 cm: the first plausible unit in CAD order
        ("stl", 2.0, "m"),  # 2 mm would be too small: metres
        ("stl", 30_000.0, "mm"),  # 30 m
        ("stl", 200_000.0, "mm"),  # nothing plausible: the nearest (200 m) still
        ("stl", 0.001, "m"),  # nothing plausible: metres are nearest
        ("obj", 2.0, "m"),
        ("obj", 180.0, "cm"),  # 180 m is too big: centimetres
        ("ply", 600.0, "mm"),
        ("off", 0.5, "m"),
    ],
)
def test_the_unit_is_guessed_by_plausible_size(fmt: str, extent: float, unit: str) -> None:
    assert choose_unit(fmt, extent, hint=None, declared=None) == (unit, True)


def test_a_hint_or_a_specification_decides_the_unit() -> None:
    assert choose_unit("stl", 1000.0, hint="in", declared=None) == ("in", False)
    assert choose_unit("glb", 1000.0, hint=None, declared=None) == ("m", False)
    assert choose_unit("3mf", 1.0, hint=None, declared="mm") == ("mm", False)


def test_the_up_axis_by_hint_specification_or_convention() -> None:
    assert choose_up("stl", hint="y") == ("y", False)
    assert choose_up("glb", hint=None) == ("y", False)
    assert choose_up("3mf", hint=None) == ("z", False)
    assert choose_up("stl", hint=None) == ("z", True)
    assert choose_up("ply", hint=None) == ("z", True)
    assert choose_up("off", hint=None) == ("z", True)
    assert choose_up("obj", hint=None) == ("y", True)


def test_options_are_checked() -> None:
    assert parse_unit(" MM ") == "mm"
    assert parse_unit(None) is None
    assert parse_up("+Z") == "z"
    assert parse_envelope([1, 2, 3]) == (1.0, 2.0, 3.0)
    for bad in (lambda: parse_unit("feet"), lambda: parse_up("x"), lambda: parse_envelope((1.0, -1.0, 1.0))):
        with pytest.raises(ModelError) as refused:
            bad()
        assert refused.value.code == "model.bad_option"
    with pytest.raises(ModelError):
        parse_envelope((1.0, float("nan"), 1.0))


def test_non_finite_vertices_are_refused() -> None:
    part = _cube()
    part.positions[5, 1] = np.inf
    with pytest.raises(ModelError) as refused:
        check_finite(Model([part]))
    assert refused.value.code == "model.non_finite"


def test_a_z_up_model_is_turned_to_y_up_and_stands_centred_on_the_floor() -> None:
    tower = _cube()
    tower.positions = tower.positions * np.float32([200, 300, 1000]) + np.float32([50, 60, -500])
    model = Model([tower])
    scale = place(model, metres_per_unit=0.001, up="z", envelope=None)
    assert scale == 0.001
    low, high = model.bounds()
    assert low == pytest.approx((-0.1, 0.0, -0.15))
    assert high == pytest.approx((0.1, 1.0, 0.15))
    assert low[1] == 0.0


def test_turning_keeps_handedness() -> None:
    # A triangle facing up (+Z, counter-clockwise seen from above) still faces up (+Y).
    part = Part(np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], np.float32), np.array([[0, 1, 2]], np.uint32))
    place(Model([part]), metres_per_unit=1.0, up="z", envelope=None)
    a, b, c = part.positions.astype(np.float64)
    assert np.cross(b - a, c - a) == pytest.approx([0.0, 1.0, 0.0])


def test_a_model_is_scaled_down_to_its_envelope_never_up() -> None:
    model = Model([_cube(10.0)])
    assert place(model, metres_per_unit=1.0, up="y", envelope=(4.0, 2.0, 8.0)) == pytest.approx(0.2)
    low, high = model.bounds()
    assert np.subtract(high, low) == pytest.approx([2.0, 2.0, 2.0])
    small = Model([_cube(1.0)])
    assert place(small, metres_per_unit=1.0, up="y", envelope=(4.0, 4.0, 4.0)) == 1.0


def test_clean_welds_a_triangle_soup_and_keeps_hard_edges() -> None:
    cleaned, notes = clean(Model([_cube()]))
    (part,) = cleaned.parts
    assert part.triangles == 12
    # Welded where the normal is the same: 4 corners per side.
    assert part.vertices == 24
    assert part.normals is not None
    normals = {tuple(np.round(n, 6)) for n in part.normals}
    assert normals == {(1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, 0, 1), (0, 0, -1)}
    # Every face's corners carry that face's outward normal.
    corners = part.positions[part.indices].astype(np.float64)
    face = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    assert np.allclose(part.normals[part.indices[:, 0]], face / np.linalg.norm(face, axis=1, keepdims=True))
    assert "computed normals for 1 parts" in notes


def test_a_finely_split_curved_surface_gets_smooth_normals() -> None:
    theta = np.linspace(0, np.pi / 2, 20)
    ring = np.column_stack([np.cos(theta), np.zeros_like(theta), np.sin(theta)])
    positions = np.vstack([ring, ring + np.array([0.0, 1.0, 0.0])]).astype(np.float32)
    n = len(theta)
    faces = [[i, i + 1, n + i] for i in range(n - 1)] + [[i + 1, n + i + 1, n + i] for i in range(n - 1)]
    cleaned, _ = clean(Model([Part(positions, np.array(faces, np.uint32))]))
    assert cleaned.vertices == 2 * n


def test_clean_drops_degenerate_and_duplicate_faces_but_keeps_both_sides_of_a_sheet() -> None:
    positions = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [2, 0, 0], [1, 0, 0]], np.float32)
    faces = np.array(
        [[0, 1, 2], [1, 2, 0], [0, 2, 1], [0, 1, 1], [0, 1, 3], [0, 4, 2]],
        np.uint32,
    )
    cleaned, notes = clean(Model([Part(positions, faces)]))
    (part,) = cleaned.parts
    # [1, 2, 0] repeats [0, 1, 2]; [0, 1, 1] repeats an index; [0, 1, 3] has no area;
    # [0, 4, 2] is [0, 1, 2] once vertex 4 is welded to 1; [0, 2, 1] is the back side.
    assert part.triangles == 2
    assert "dropped 2 degenerate faces" in notes
    assert "dropped 2 duplicate faces" in notes
    assert part.vertices == 6  # three corners, each with the front and the back normal


def test_clean_merges_parts_of_the_same_material_and_drops_unused_vertices() -> None:
    red = Material(name="red", base_color=(1, 0, 0, 1))
    blue = Material(name="blue", base_color=(0, 0, 1, 1))
    a, b, c = _cube(material=red), _cube(material=blue), _cube(material=red)
    c.positions = c.positions + np.float32(5)
    a.positions = np.vstack([a.positions, [[9, 9, 9]]]).astype(np.float32)
    cleaned, _ = clean(Model([a, b, c]))
    assert sorted((p.material.name, p.triangles, p.vertices) for p in cleaned.parts) == [
        ("blue", 12, 24),
        ("red", 24, 48),
    ]


def test_given_normals_are_kept_and_uv_seams_are_not_welded() -> None:
    positions = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], np.float32)
    normals = np.tile(np.float32([0, 0, 2]), (6, 1))
    uvs = np.array([[0, 0], [1, 0], [0, 1], [0.5, 0], [1, 1], [0, 1]], np.float32)
    part = Part(positions, np.array([[0, 1, 2], [3, 4, 5]], np.uint32), normals=normals, uvs=uvs)
    cleaned, notes = clean(Model([part]))
    (out,) = cleaned.parts
    assert out.vertices == 5  # (0, 1, 0) with uv (0, 1) welded; (1, 0, 0) differs in uv
    assert out.normals is not None
    assert np.allclose(out.normals, [0, 0, 1])
    assert not any("normals" in note for note in notes)


def test_a_model_whose_faces_all_vanish_has_no_faces() -> None:
    positions = np.array([[0, 0, 0], [1, 0, 0], [2, 0, 0]], np.float32)
    with pytest.raises(ModelError) as refused:
        clean(Model([Part(positions, np.array([[0, 1, 2]], np.uint32))]))
    assert refused.value.code == "model.no_faces"


@pytest.mark.parametrize("first", [0, 2**21], ids=["packed keys", "hashed rows"])
def test_the_first_of_each_duplicate_face_is_kept_whatever_the_vertex_count(first: int) -> None:
    positions = np.zeros((first + 4, 3), np.float32)
    positions[first:] = [[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]]
    a, b, c, d = range(first, first + 4)
    faces = np.array([[a, b, c], [a, b, d], [b, c, a], [a, c, b], [c, a, b], [d, a, b]], np.int64)
    counts = {"degenerate": 0, "duplicate": 0}
    kept, normals = _drop_bad_faces(positions, faces, counts)
    assert kept.tolist() == [[a, b, c], [a, b, d], [a, c, b]]
    assert counts == {"degenerate": 0, "duplicate": 3}
    assert len(normals) == 3


def test_model_bounds_over_parts() -> None:
    rng = np.random.default_rng(7)
    parts = [
        Part(rng.normal(size=(n, 3)).astype(np.float32), np.zeros((0, 3), np.uint32)) for n in (1000, 0, 10)
    ]
    everything = np.concatenate([p.positions for p in parts])
    low, high = Model(parts).bounds()
    assert low == tuple(float(v) for v in everything.min(axis=0))
    assert high == tuple(float(v) for v in everything.max(axis=0))
    assert Model([]).bounds() == ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0))
