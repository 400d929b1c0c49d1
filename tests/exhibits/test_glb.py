"""Writing and reading our GLB files."""

from __future__ import annotations

import io
import json
import struct
from typing import Any

import numpy as np
import pytest
import trimesh
from PIL import Image

from exhibits.glb import read_glb, write_glb
from exhibits.model import Material, Model, Part, Texture
from exhibits.textures import encode_image
from server.errors import ModelError
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
    (back,) = read_glb(write_glb(Model([part]))).parts
    assert np.array_equal(back.positions, part.positions)
    assert np.array_equal(back.indices, part.indices)
    assert back.uvs is not None and np.array_equal(back.uvs, part.uvs)
    assert back.normals is not None and np.array_equal(back.normals, part.normals)
    assert back.material.base_color_texture == material.base_color_texture
    assert back.material == Material(**{**{f: getattr(material, f) for f in Material.__dataclass_fields__}})


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


def test_indices_are_uint32_from_65535_vertices_on() -> None:
    below = _grid(255, 255)  # 65 536 vertices
    assert below.vertices == 65_536
    document = _json(glb := write_glb(Model([below])))
    (primitive,) = document["meshes"][0]["primitives"]
    assert document["accessors"][primitive["indices"]]["componentType"] == 5125
    small = _json(write_glb(Model([_grid(10, 10)])))
    assert small["accessors"][small["meshes"][0]["primitives"][0]["indices"]]["componentType"] == 5123
    (report,) = validate([glb])
    assert report["numErrors"] == 0, errors(report)
    assert read_glb(glb).triangles == below.triangles


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


def test_node_transforms_are_applied_when_reading_other_files() -> None:
    scene = trimesh.Scene()
    scene.add_geometry(
        trimesh.creation.box(), transform=trimesh.transformations.translation_matrix([0, 3, 0])
    )
    model = read_glb(bytes(scene.export(file_type="glb")))
    low, high = model.bounds()
    assert (low[1], high[1]) == pytest.approx((2.5, 3.5))


def test_garbage_is_corrupt() -> None:
    for data in (b"", b"glTF" + b"\0" * 30, assets.truncated_glb()):
        with pytest.raises(ModelError) as refused:
            read_glb(data)
        assert refused.value.code == "model.corrupt"


def test_textures_read_back_have_their_size() -> None:
    texture = encode_image(Image.new("RGB", (40, 24), (1, 2, 3)))
    (back,) = read_glb(write_glb(Model([_grid(1, 1, material=Material(base_color_texture=texture))]))).parts
    assert back.material.base_color_texture is not None
    assert (back.material.base_color_texture.width, back.material.base_color_texture.height) == (40, 24)
