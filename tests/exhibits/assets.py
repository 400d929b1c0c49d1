"""Test inputs for the 3D ingest pipeline, built in memory: good files of every format and
the bad ones each refusal code is for.

Good models are made with trimesh (an exporter independent of ours) or written by hand (the
glTF zip); the textured ones carry :func:`quadrant_image`, four coloured quadrants that a
test can find again in every level's embedded texture. Costly assets are cached under
``~/.cache/forumcast-test-media`` by :func:`cached`.
"""

from __future__ import annotations

import io
import json
import os
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import trimesh
from PIL import Image

#: Quadrant colours of the test texture, by (column, row) from the top left.
QUADRANTS: dict[tuple[int, int], tuple[int, int, int]] = {
    (0, 0): (220, 30, 30),
    (1, 0): (30, 190, 60),
    (0, 1): (40, 70, 220),
    (1, 1): (240, 210, 20),
}
CACHE = Path(os.environ.get("FORUMCAST_TEST_MEDIA", Path.home() / ".cache" / "forumcast-test-media"))


def cached(name: str, make: Callable[[], bytes]) -> bytes:
    """``make()``'s bytes, kept in the cache directory under ``name`` for later runs."""
    path = CACHE / name
    if path.exists():
        return path.read_bytes()
    data = make()
    CACHE.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + ".part")
    temporary.write_bytes(data)
    temporary.replace(path)
    return data


def quadrant_image(size: int) -> Image.Image:
    image = Image.new("RGB", (size, size))
    half = size // 2
    for (column, row), colour in QUADRANTS.items():
        image.paste(colour, (column * half, row * half, (column + 1) * half, (row + 1) * half))
    return image


def quadrant_colours(image: Image.Image) -> dict[tuple[int, int], tuple[int, int, int]]:
    """The colour at the centre of each quadrant of ``image``."""
    rgb = image.convert("RGB")
    found = {}
    for column, row in QUADRANTS:
        x = int((column + 0.5) * rgb.width / 2)
        y = int((row + 0.5) * rgb.height / 2)
        pixel = rgb.getpixel((x, y))
        assert isinstance(pixel, tuple)
        found[(column, row)] = (int(pixel[0]), int(pixel[1]), int(pixel[2]))
    return found


def uv_sphere(rows: int, columns: int, *, radius: float = 1.0) -> trimesh.Trimesh:
    """A latitude-longitude sphere with a UV seam (the first column repeated), about
    ``2 * rows * columns`` triangles; the pole rows' triangles are degenerate."""
    theta = np.linspace(0.0, np.pi, rows + 1)
    phi = np.linspace(0.0, 2.0 * np.pi, columns + 1)
    t, p = np.meshgrid(theta, phi, indexing="ij")
    vertices = np.column_stack(
        [
            (radius * np.sin(t) * np.cos(p)).ravel(),
            (radius * np.cos(t)).ravel(),
            (radius * np.sin(t) * np.sin(p)).ravel(),
        ]
    )
    uv = np.column_stack([(p / (2 * np.pi)).ravel(), (1.0 - t / np.pi).ravel()])
    i, j = np.meshgrid(np.arange(rows), np.arange(columns), indexing="ij")
    a = (i * (columns + 1) + j).ravel()
    b = a + columns + 1
    faces = np.concatenate([np.column_stack([a, a + 1, b]), np.column_stack([a + 1, b + 1, b])])
    mesh = trimesh.Trimesh(vertices, faces, process=False)
    mesh.visual = trimesh.visual.TextureVisuals(uv=uv)
    return mesh


def textured(mesh: trimesh.Trimesh, texture_px: int = 256) -> trimesh.Trimesh:
    """``mesh`` (which has UVs) with a PBR material carrying the quadrant texture."""
    material = trimesh.visual.material.PBRMaterial(
        name="quadrants", baseColorTexture=quadrant_image(texture_px), metallicFactor=0.0, roughnessFactor=0.7
    )
    mesh.visual = trimesh.visual.TextureVisuals(uv=mesh.visual.uv, material=material)
    return mesh


def textured_glb(rows: int = 24, columns: int = 48, texture_px: int = 256, *, radius: float = 1.0) -> bytes:
    return bytes(textured(uv_sphere(rows, columns, radius=radius), texture_px).export(file_type="glb"))


def big_textured_glb(triangles: int, texture_px: int = 2560) -> bytes:
    """A textured sphere of about ``triangles`` triangles (cached)."""
    side = round((triangles / 2) ** 0.5)
    return cached(f"sphere-{side}x{side}-{texture_px}.glb", lambda: textured_glb(side, side, texture_px))


def zipped(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return out.getvalue()


def obj_zip(texture_px: int = 256) -> bytes:
    """A textured OBJ with its MTL and PNG, in a folder of a zip."""
    mesh = textured(uv_sphere(16, 32), texture_px)
    text, extra = trimesh.exchange.obj.export_obj(mesh, include_texture=True, return_texture=True)
    files = {"chair/model.obj": text.encode()}
    files.update({f"chair/{name}": data for name, data in extra.items()})
    return zipped(files)


def gltf_document(uris: dict[str, str] | None = None) -> tuple[dict[str, object], bytes]:
    """A hand-written textured quad: its glTF JSON (buffer and image by URI) and buffer."""
    positions = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], dtype=np.float32)
    uvs = np.array([[0, 1], [1, 1], [1, 0], [0, 0]], dtype=np.float32)
    indices = np.array([0, 1, 2, 0, 2, 3], dtype=np.uint16)
    buffer = positions.tobytes() + uvs.tobytes() + indices.tobytes()
    names = {"buffer": "mesh.bin", "image": "textures/quadrants.png"} | (uris or {})
    document: dict[str, object] = {
        "asset": {"version": "2.0", "generator": "hand"},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0}],
        "meshes": [
            {"primitives": [{"attributes": {"POSITION": 0, "TEXCOORD_0": 1}, "indices": 2, "material": 0}]}
        ],
        "materials": [{"pbrMetallicRoughness": {"baseColorTexture": {"index": 0}, "metallicFactor": 0.0}}],
        "textures": [{"source": 0}],
        "images": [{"uri": names["image"]}],
        "buffers": [{"uri": names["buffer"], "byteLength": len(buffer)}],
        "bufferViews": [
            {"buffer": 0, "byteOffset": 0, "byteLength": 48},
            {"buffer": 0, "byteOffset": 48, "byteLength": 32},
            {"buffer": 0, "byteOffset": 80, "byteLength": 12},
        ],
        "accessors": [
            {
                "bufferView": 0,
                "componentType": 5126,
                "count": 4,
                "type": "VEC3",
                "min": [0, 0, 0],
                "max": [1, 1, 0],
            },
            {"bufferView": 1, "componentType": 5126, "count": 4, "type": "VEC2"},
            {"bufferView": 2, "componentType": 5123, "count": 6, "type": "SCALAR"},
        ],
    }
    return document, buffer


def gltf_zip(uris: dict[str, str] | None = None) -> bytes:
    """The hand-written glTF with its .bin and PNG texture in a zip (``uris`` override the
    references, for the external-URI refusals)."""
    document, buffer = gltf_document(uris)
    png = io.BytesIO()
    quadrant_image(128).save(png, format="PNG")
    return zipped(
        {
            "scene/quad.gltf": json.dumps(document).encode(),
            "scene/mesh.bin": buffer,
            "scene/textures/quadrants.png": png.getvalue(),
        }
    )


def tower(size_mm: tuple[float, float, float] = (200.0, 300.0, 1000.0)) -> trimesh.Trimesh:
    """A box tall along Z (CAD's up) in millimetres, standing on z = 0."""
    box = trimesh.creation.box(extents=size_mm)
    box.apply_translation([0.0, 0.0, size_mm[2] / 2])
    return box


def export(mesh: trimesh.Trimesh, file_type: str) -> bytes:
    data = mesh.export(file_type=file_type)
    return data.encode() if isinstance(data, str) else bytes(data)


def scene_glb() -> bytes:
    """A GLB scene: a textured sphere on a coloured box, moved and scaled by node transforms."""
    scene = trimesh.Scene()
    box = trimesh.creation.box(extents=(3.0, 0.2, 3.0))
    box.visual = trimesh.visual.TextureVisuals(
        material=trimesh.visual.material.PBRMaterial(name="plinth", baseColorFactor=[90, 90, 200, 255])
    )
    scene.add_geometry(
        box, node_name="plinth", transform=trimesh.transformations.translation_matrix([0, -1.1, 0])
    )
    scene.add_geometry(
        textured(uv_sphere(20, 40)), node_name="globe", transform=trimesh.transformations.scale_matrix(0.5)
    )
    return bytes(scene.export(file_type="glb"))


def good_inputs() -> dict[str, tuple[bytes, str]]:
    """One input of every accepted kind: name → (bytes, filename)."""
    sphere = uv_sphere(12, 24)
    return {
        "glb": (textured_glb(), "sphere.glb"),
        "glb-scene": (scene_glb(), "stand.glb"),
        "obj-zip": (obj_zip(), "chair.zip"),
        "gltf-zip": (gltf_zip(), "quad.zip"),
        "stl-ascii": (export(tower(), "stl_ascii"), "tower.stl"),
        "stl-binary": (export(tower(), "stl"), "tower.stl"),
        "ply": (export(trimesh.creation.icosphere(3, radius=300.0), "ply"), "ball.ply"),
        "off": (export(trimesh.creation.cylinder(radius=100.0, height=500.0, sections=32), "off"), "can.off"),
        "3mf": (export(trimesh.Trimesh(sphere.vertices * 250.0, sphere.faces), "3mf"), "ball.3mf"),
    }


# --- bad inputs -------------------------------------------------------------------------


def point_cloud_ply() -> bytes:
    return export(trimesh.PointCloud(np.random.default_rng(1).random((50, 3))), "ply")  # type: ignore[arg-type]


WIREFRAME_OBJ = b"v 0 0 0\nv 1 0 0\nv 0 1 0\nl 1 2\nl 2 3\nl 3 1\n"
NAN_OBJ = b"v nan 0 0\nv 1 0 0\nv 0 1 0\nv 1 1 0\nf 1 2 3\nf 2 4 3\n"
UNKNOWN_BYTES = bytes(range(256)) * 8


def truncated_glb() -> bytes:
    data = textured_glb(8, 16)
    return data[: len(data) // 2]


def corrupt_stl() -> bytes:
    """A binary STL whose header promises more triangles than it holds."""
    data = export(tower(), "stl")
    return data[:84] + data[84 : 84 + 50 * 3 + 17]


def zip_with_names(*names: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name in names:
            zf.writestr(zipfile.ZipInfo(name), b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    return out.getvalue()


def zip_with_entries(count: int) -> bytes:
    return zipped({f"part{i}.txt": b"x" for i in range(count)})


def zip_bomb(megabytes: int = 50) -> bytes:
    """A deflated entry of ``megabytes`` MB of zeros (about 1000:1), beside a real model."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("model.obj", WIREFRAME_OBJ + b"f 1 2 3\n")
        zf.writestr("padding.bin", bytes(megabytes * 2**20))
    return out.getvalue()


def lying_zip(real_bytes: int = 3 * 2**20, claimed_bytes: int = 1000) -> bytes:
    """A zip whose headers claim an entry of ``claimed_bytes`` that inflates to ``real_bytes``."""
    data = bytearray(zipped({"model.obj": b"v 0 0 0\n" * (real_bytes // 8)}))
    # Rewrite the uncompressed size in the local header (offset 22) and the central directory
    # entry (offset 24 from its signature).
    struct.pack_into("<I", data, 22, claimed_bytes)
    central = data.rfind(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 24, claimed_bytes)
    return bytes(data)


def slow_stl() -> bytes:
    """A 720k-triangle sphere as binary STL (18 MB): seconds of work for a worker."""
    return cached("sphere-300x600.stl", lambda: export(uv_sphere(300, 600), "stl"))


def ply_missing_texture() -> bytes:
    """A textured PLY (texture coordinates per vertex) whose texture file is not there:
    trimesh logs ``unable to load image!`` with a KeyError traceback while reading it."""
    vertices = [(0, 0, 0, 0, 0), (1, 0, 0, 1, 0), (0, 1, 0, 0, 1), (0, 0, 1, 1, 1)]
    faces = [(0, 1, 2), (0, 1, 3), (0, 2, 3), (1, 2, 3)]
    header = [
        "ply",
        "format ascii 1.0",
        "comment TextureFile missing.png",
        f"element vertex {len(vertices)}",
        *(f"property float {name}" for name in ("x", "y", "z", "s", "t")),
        f"element face {len(faces)}",
        "property list uchar int vertex_indices",
        "end_header",
    ]
    rows = [" ".join(map(str, v)) for v in vertices] + ["3 " + " ".join(map(str, f)) for f in faces]
    return ("\n".join(header + rows) + "\n").encode()
