"""Detecting upload formats and reading each into a Model."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import trimesh
from PIL import Image

from exhibits.formats import detect, load
from server.errors import ModelError
from tests.exhibits import assets

GOOD = assets.good_inputs()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("glb", "glb"),
        ("obj-zip", "zip"),
        ("gltf-zip", "zip"),
        ("stl-ascii", "stl"),
        ("stl-binary", "stl"),
        ("ply", "ply"),
        ("off", "off"),
        ("3mf", "3mf"),
    ],
)
def test_each_format_is_detected_by_its_name_and_content(name: str, expected: str) -> None:
    data, filename = GOOD[name]
    assert detect(data, filename) == expected


@pytest.mark.parametrize("name", ["glb", "stl-ascii", "stl-binary", "ply", "off"])
def test_signatures_and_content_win_over_a_missing_extension(name: str) -> None:
    data, filename = GOOD[name]
    assert detect(data, "upload") == detect(data, filename)


def test_text_formats_are_recognised_without_extension() -> None:
    document, _ = assets.gltf_document()
    assert detect(json.dumps(document).encode(), "upload") == "gltf"
    assert detect(b"# made by hand\nv 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n", "upload") == "obj"


def test_a_binary_extension_without_its_signature_is_corrupt() -> None:
    with pytest.raises(ModelError) as refused:
        detect(b"hello world", "model.glb")
    assert refused.value.code == "model.corrupt"


def test_unknown_bytes_are_an_unknown_format() -> None:
    with pytest.raises(ModelError) as refused:
        detect(assets.UNKNOWN_BYTES, "thing.xyz")
    assert refused.value.code == "model.unknown_format"


def test_a_textured_glb_loads_with_its_uvs_material_and_texture() -> None:
    data, filename = GOOD["glb"]
    loaded = load(data, filename)
    assert loaded.format == "glb"
    (part,) = loaded.model.parts
    assert part.uvs is not None and part.uvs.shape == (part.vertices, 2)
    texture = part.material.base_color_texture
    assert texture is not None and texture.mime == "image/png"
    image = Image.open(io.BytesIO(texture.data))
    assert assets.quadrant_colours(image) == assets.QUADRANTS
    assert part.material.metallic == 0.0
    assert part.material.roughness == pytest.approx(0.7)


def test_uvs_are_flipped_to_gltf_convention() -> None:
    # The hand-written glTF puts v = 1 at the quad's bottom corners; trimesh flips v on read,
    # and the loader flips it back, so the values are the file's.
    loaded = load(*GOOD["gltf-zip"])
    (part,) = loaded.model.parts
    assert part.uvs is not None
    bottom = part.positions[:, 1] == 0.0
    assert np.all(part.uvs[bottom, 1] == 1.0)
    assert np.all(part.uvs[~bottom, 1] == 0.0)


def test_an_obj_zip_brings_its_mtl_and_texture() -> None:
    loaded = load(*GOOD["obj-zip"])
    assert loaded.format == "obj"
    (part,) = loaded.model.parts
    texture = part.material.base_color_texture
    assert texture is not None
    assert assets.quadrant_colours(Image.open(io.BytesIO(texture.data))) == assets.QUADRANTS
    assert part.material.base_color[:3] == pytest.approx((0.4, 0.4, 0.4), abs=0.01)


def test_an_obj_without_its_mtl_loads_with_a_warning() -> None:
    text = b"mtllib missing.mtl\nv 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n"
    loaded = load(text, "model.obj")
    assert loaded.model.triangles == 1
    assert any("missing.mtl" in warning for warning in loaded.warnings)


def test_an_obj_whose_mtl_leaves_the_zip_is_refused() -> None:
    data = assets.zipped({"model.obj": b"mtllib ../../evil.mtl\nv 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n"})
    with pytest.raises(ModelError) as refused:
        load(data, "model.zip")
    assert refused.value.code == "model.external_uri"


def test_a_gltf_reference_to_a_parent_folder_inside_the_zip_is_followed() -> None:
    document, buffer = assets.gltf_document({"buffer": "../shared/mesh.bin", "image": "../shared/q.png"})
    png = io.BytesIO()
    assets.quadrant_image(64).save(png, format="PNG")
    data = assets.zipped(
        {
            "scene/quad.gltf": json.dumps(document).encode(),
            "shared/mesh.bin": buffer,
            "shared/q.png": png.getvalue(),
        }
    )
    loaded = load(data, "quad.zip")
    assert loaded.model.triangles == 2
    assert loaded.model.parts[0].material.base_color_texture is not None


def test_a_gltf_missing_its_buffer_is_corrupt() -> None:
    document, _ = assets.gltf_document()
    with pytest.raises(ModelError) as refused:
        load(json.dumps(document).encode(), "quad.gltf")
    assert refused.value.code == "model.corrupt"
    assert "mesh.bin" in refused.value.message


def test_node_transforms_are_applied() -> None:
    scene = trimesh.Scene()
    box = trimesh.creation.box(extents=(1.0, 1.0, 1.0))
    scene.add_geometry(box, transform=trimesh.transformations.translation_matrix([5.0, 0.0, 0.0]))
    scene.add_geometry(box, transform=trimesh.transformations.scale_matrix(2.0))
    loaded = load(bytes(scene.export(file_type="glb")), "two.glb")
    low, high = loaded.model.bounds()
    assert low == pytest.approx((-1.0, -1.0, -1.0))
    assert high == pytest.approx((5.5, 1.0, 1.0))


def test_a_mirroring_transform_keeps_faces_outward() -> None:
    scene = trimesh.Scene()
    scene.add_geometry(trimesh.creation.box(), transform=np.diag([-1.0, 1.0, 1.0, 1.0]))
    (part,) = load(bytes(scene.export(file_type="glb")), "mirror.glb").model.parts
    mesh = trimesh.Trimesh(part.positions, part.indices, process=False)
    assert mesh.volume > 0


def test_3mf_declares_its_unit() -> None:
    loaded = load(*GOOD["3mf"])
    assert (loaded.format, loaded.declared_unit) == ("3mf", "mm")


def test_a_zip_with_several_models_or_none_is_refused() -> None:
    for files in ({"a.obj": b"v 0 0 0", "b.stl": b"solid"}, {"readme.txt": b"hello"}):
        with pytest.raises(ModelError) as refused:
            load(assets.zipped(files), "models.zip")
        assert refused.value.code == "model.unknown_format"


@pytest.mark.parametrize(
    ("data", "filename", "code"),
    [
        (b"", "model.stl", "model.empty"),
        (b"# nothing here\n", "model.obj", "model.empty"),
        (b"solid empty\nendsolid empty\n", "model.stl", "model.empty"),
        (b"\0" * 84, "model.stl", "model.empty"),
        (assets.WIREFRAME_OBJ, "wire.obj", "model.no_faces"),
        (b"OFF\n2 1 0\n0 0 0\n1 0 0\n3 0 1 7\n", "bad.off", "model.corrupt"),
        (
            b"ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nend_header\n1\n",
            "bad.ply",
            "model.corrupt",
        ),
        (b'{"asset": {"version": "2.0"}, "buffers": [', "broken.gltf", "model.corrupt"),
        (b"solid x\nfacet normal 0 0 1\nouter loop\nvertex 0 0 nope\n", "bad.stl", "model.corrupt"),
    ],
)
def test_bad_files_give_their_code(data: bytes, filename: str, code: str) -> None:
    with pytest.raises(ModelError) as refused:
        load(data, filename)
    assert refused.value.code == code, refused.value.message


def test_a_point_cloud_has_no_faces() -> None:
    with pytest.raises(ModelError) as refused:
        load(assets.point_cloud_ply(), "cloud.ply")
    assert refused.value.code == "model.no_faces"
    assert "50 vertices" in refused.value.message


def test_a_truncated_glb_is_corrupt() -> None:
    with pytest.raises(ModelError) as refused:
        load(assets.truncated_glb(), "cut.glb")
    assert refused.value.code == "model.corrupt"
    assert "truncated" in refused.value.message
