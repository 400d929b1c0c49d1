"""Writing our GLB files (read back with :func:`exhibits.glb_read.read_glb`)."""

from __future__ import annotations

import io
import json
import struct
from typing import Any

import numpy as np
import pytest
import trimesh
from PIL import Image

from exhibits.glb import POSITION_ERROR, write_glb
from exhibits.glb_read import read_glb
from exhibits.model import Material, Model, Part, Texture
from exhibits.textures import encode_image
from tests.exhibits import assets
from tests.exhibits.gltf_validator import errors, validate


def _json(glb: bytes) -> dict[str, Any]:
    magic, version, length = struct.unpack_from("<4sII", glb)
    assert (magic, version, length) == (b"glTF", 2, len(glb))
    chunk_length, chunk_type = struct.unpack_from("<I4s", glb, 12)
    assert chunk_type == b"JSON" and chunk_length % 4 == 0
    document: dict[str, Any] = json.loads(glb[20 : 20 + chunk_length])
    return document


def _grid(columns: int, rows: int, *, material: Material | None = None, uvs: bool = True) -> Part:
    """A flat grid of (columns+1) x (rows+1) vertices in the x/z plane, facing up."""
    x, z = np.meshgrid(np.linspace(0, 1, columns + 1), np.linspace(0, 1, rows + 1))
    positions = np.column_stack([x.ravel(), np.zeros(x.size), z.ravel()]).astype(np.float32)
    i, j = np.meshgrid(np.arange(rows), np.arange(columns), indexing="ij")
    a = (i * (columns + 1) + j).ravel()
    b = a + columns + 1
    indices = np.concatenate([np.column_stack([a, b, a + 1]), np.column_stack([a + 1, b, b + 1])]).astype(
        np.uint32
    )
    normals = np.tile(np.float32([0, 1, 0]), (len(positions), 1))
    return Part(
        positions,
        indices,
        material or Material(),
        normals,
        np.column_stack([x.ravel(), z.ravel()]).astype(np.float32) if uvs else None,
        "grid",
    )


def _texture(size: int = 64, *, jpeg: bool = False) -> Texture:
    return encode_image(assets.quadrant_image(size), prefer_jpeg=jpeg)


def test_a_textured_part_round_trips() -> None:
    material = Material(
        name="panel",
        base_color=(0.5, 0.6, 0.7, 1.0),
        metallic=0.25,
        roughness=0.4,
        emissive=(0.1, 0.0, 0.0),
        base_color_texture=_texture(),
        double_sided=True,
    )
    part = _grid(4, 3, material=material)
    (back,) = read_glb(write_glb(Model([part]), quantise=False)).parts
    assert np.array_equal(back.positions, part.positions)
    assert np.array_equal(back.indices, part.indices)
    assert back.uvs is not None and np.array_equal(back.uvs, part.uvs)
    assert back.normals is not None and np.array_equal(back.normals, part.normals)
    assert back.material.base_color_texture == material.base_color_texture
    assert back.material == Material(**{**{f: getattr(material, f) for f in Material.__dataclass_fields__}})


def _sphere(rows: int = 12, columns: int = 24) -> Part:
    """A UV sphere 2 m across standing on the floor, with unit normals and uvs in [0, 1]."""
    mesh = assets.uv_sphere(rows, columns)
    positions = np.asarray(mesh.vertices, dtype=np.float32)
    positions = positions * np.float32(1.0 / np.abs(positions).max()) + np.float32([0.3, 1.0, -0.2])
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    normals = (vertices / np.linalg.norm(vertices, axis=1, keepdims=True)).astype(np.float32)
    uvs = np.column_stack([positions[:, 0] / 2 + 0.35, positions[:, 1] / 2]).astype(np.float32)
    return Part(positions, np.asarray(mesh.faces, dtype=np.uint32), Material(), normals, uvs, "sphere")


def test_quantised_attributes_read_back_within_their_step_and_the_floor_stays_exact() -> None:
    part = _sphere()
    glb = write_glb(Model([part]))
    document = _json(glb)
    assert document["extensionsUsed"] == document["extensionsRequired"] == ["KHR_mesh_quantization"]
    (node,) = document["nodes"]
    assert node["scale"] == [pytest.approx(1.0)] * 3
    attributes = document["meshes"][0]["primitives"][0]["attributes"]
    position, normal, uv = (
        document["accessors"][attributes[k]] for k in ("POSITION", "NORMAL", "TEXCOORD_0")
    )
    assert (position["componentType"], position["normalized"]) == (5122, True)
    assert all(isinstance(v, int) for v in position["min"] + position["max"])
    assert (normal["componentType"], normal["normalized"]) == (5120, True)
    assert (uv["componentType"], uv["normalized"]) == (5123, True)
    assert document["bufferViews"][position["bufferView"]]["byteStride"] == 8
    assert document["bufferViews"][normal["bufferView"]]["byteStride"] == 4
    (report,) = validate([glb])
    assert report["numErrors"] == 0, errors(report)
    assert report["numWarnings"] == 0, report["messages"]

    (back,) = read_glb(glb).parts
    extent = float(np.ptp(part.positions, axis=0).max())
    assert np.abs(back.positions - part.positions).max() <= POSITION_ERROR * extent * 1.001
    assert back.positions[:, 1].min() == part.positions[:, 1].min() == 0.0, "the floor is exact"
    assert back.normals is not None and part.normals is not None
    assert np.abs(back.normals - part.normals).max() < 0.01
    assert back.uvs is not None and part.uvs is not None
    assert np.abs(back.uvs - part.uvs).max() <= 0.5 / 65535 + 1e-7
    assert len(glb) < 0.7 * len(write_glb(Model([part]), quantise=False))


def test_texture_coordinates_outside_the_unit_square_stay_float() -> None:
    part = _grid(2, 2)
    assert part.uvs is not None
    part.uvs = part.uvs * np.float32(3.0)
    glb = write_glb(Model([part]))
    document = _json(glb)
    uv = document["accessors"][document["meshes"][0]["primitives"][0]["attributes"]["TEXCOORD_0"]]
    assert uv["componentType"] == 5126
    (back,) = read_glb(glb).parts
    assert back.uvs is not None and np.array_equal(back.uvs, part.uvs)
    (report,) = validate([glb])
    assert report["numErrors"] == 0, errors(report)


def test_the_layout_follows_the_specification() -> None:
    texture = _texture()
    glb = write_glb(
        Model(
            [
                _grid(2, 2, material=Material(name="a", base_color_texture=texture)),
                _grid(3, 1, material=Material(name="b", base_color_texture=texture)),
                _grid(1, 1, material=Material(name="c"), uvs=False),
            ]
        )
    )
    document = _json(glb)
    assert document["asset"]["generator"] == "forumcast"
    (mesh,) = document["meshes"]
    assert len(mesh["primitives"]) == 3
    assert len(document["images"]) == 1, "a texture used twice is stored once"
    assert document["images"][0]["mimeType"] == "image/png"
    assert all(view["byteOffset"] % 4 == 0 for view in document["bufferViews"])
    for primitive in mesh["primitives"]:
        position = document["accessors"][primitive["attributes"]["POSITION"]]
        assert "min" in position and "max" in position
        assert "NORMAL" in primitive["attributes"]
        assert document["accessors"][primitive["indices"]]["componentType"] == 5123
    assert "TEXCOORD_0" not in mesh["primitives"][2]["attributes"]
    (report,) = validate([glb])
    assert report["numErrors"] == 0, errors(report)
    assert report["numWarnings"] == 0, report["messages"]


def test_a_part_of_more_than_65535_vertices_is_cut_into_primitives_with_16_bit_indices() -> None:
    big = _grid(255, 255)  # 65 536 vertices
    assert big.vertices == 65_536
    document = _json(glb := write_glb(Model([big])))
    primitives = document["meshes"][0]["primitives"]
    assert len(primitives) == 2
    for primitive in primitives:
        indices = document["accessors"][primitive["indices"]]
        assert indices["componentType"] == 5123
        assert document["accessors"][primitive["attributes"]["POSITION"]]["count"] <= 65_535
    (report,) = validate([glb])
    assert report["numErrors"] == 0, errors(report)
    assert report["numWarnings"] == 0, report["messages"]
    back = read_glb(glb)
    assert back.triangles == big.triangles
    assert max(int(p.indices.max()) for p in back.parts) <= 65_534
    assert back.vertices < big.vertices + 1_000, "only vertices along the cut are repeated"
    # The same triangles, corner for corner.
    original = np.sort(np.sort(big.positions[big.indices].reshape(-1, 9), axis=1), axis=0)
    written = np.concatenate([p.positions[p.indices].reshape(-1, 9) for p in back.parts])
    assert np.abs(np.sort(np.sort(written, axis=1), axis=0) - original).max() < 2e-5
    small = _json(write_glb(Model([_grid(10, 10)])))
    assert len(small["meshes"][0]["primitives"]) == 1


def test_a_jpeg_texture_keeps_its_type_and_trimesh_reads_the_file() -> None:
    part = _grid(2, 2, material=Material(base_color_texture=_texture(128, jpeg=True)))
    glb = write_glb(Model([part]))
    assert _json(glb)["images"][0]["mimeType"] == "image/jpeg"
    scene = trimesh.load_scene(io.BytesIO(glb), file_type="glb")
    (mesh,) = scene.geometry.values()
    assert len(mesh.faces) == part.triangles
    image = mesh.visual.material.baseColorTexture
    assert image.size == (128, 128)
    for where, colour in assets.quadrant_colours(image).items():
        assert np.allclose(colour, assets.QUADRANTS[where], atol=8)


def test_unnormalised_normals_are_written_as_unit_vectors() -> None:
    part = _grid(2, 2)
    assert part.normals is not None
    part.normals = part.normals * np.float32(3.0)
    glb = write_glb(Model([part]))
    (back,) = read_glb(glb).parts
    assert back.normals is not None
    assert np.allclose(np.linalg.norm(back.normals, axis=1), 1.0)
    (report,) = validate([glb])
    assert report["numErrors"] == 0, errors(report)


def test_an_empty_model_is_a_valid_empty_scene() -> None:
    glb = write_glb(Model([]))
    assert read_glb(glb).parts == []
    (report,) = validate([glb])
    assert report["numErrors"] == 0, errors(report)


def test_textures_read_back_have_their_size() -> None:
    texture = encode_image(Image.new("RGB", (40, 24), (1, 2, 3)))
    (back,) = read_glb(write_glb(Model([_grid(1, 1, material=Material(base_color_texture=texture))]))).parts
    assert back.material.base_color_texture is not None
    assert (back.material.base_color_texture.width, back.material.base_color_texture.height) == (40, 24)
