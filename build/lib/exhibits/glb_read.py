"""Reading GLB files back into a :class:`~exhibits.model.Model` (for the hall scene, and for tests).

:func:`read_glb` reads triangle primitives with float or normalised/integer positions,
normals and texture coordinates and integer indices, node transforms applied, with their
metallic-roughness materials and embedded PNG or JPEG base-colour textures. Anything else is
``model.corrupt``. Writing is :mod:`exhibits.glb`'s.
"""

from __future__ import annotations

import io
import math
import struct
from typing import Any

import numpy as np

from exhibits.glb import COMPONENTS, DTYPES, load_pygltflib, unit_normals
from exhibits.model import Material, Model, Part, Texture
from server.errors import ModelError


def read_glb(data: bytes) -> Model:
    """The Model in a GLB (see the module docstring for what is read)."""
    gl = load_pygltflib()
    try:
        document = gl.GLTF2.load_from_bytes(data)
        blob = document.binary_blob() or b""
        reader = _Reader(document, blob)
        parts: list[Part] = []
        scene = document.scenes[document.scene or 0] if document.scenes else None
        roots = scene.nodes if scene is not None else []
        for root in roots or []:
            reader.walk(root, np.eye(4), parts)
        return Model(parts)
    except ModelError:
        raise
    except Exception as exc:  # pygltflib and numpy raise many kinds on a bad file
        raise ModelError("model.corrupt", f"not a readable GLB ({type(exc).__name__}: {exc})") from None


class _Reader:
    def __init__(self, document: Any, blob: bytes) -> None:
        self.document = document
        self.blob = blob
        self.materials: dict[int, Material] = {}

    def walk(self, node_index: int, parent: np.ndarray[Any, Any], parts: list[Part]) -> None:
        node = self.document.nodes[node_index]
        matrix = parent @ _node_matrix(node)
        if node.mesh is not None:
            mesh = self.document.meshes[node.mesh]
            for number, primitive in enumerate(mesh.primitives):
                if primitive.mode not in (None, 4):
                    continue
                parts.append(self.part(primitive, matrix, f"{mesh.name or 'mesh'}-{number}"))
        for child in node.children or []:
            self.walk(child, matrix, parts)

    def part(self, primitive: Any, matrix: np.ndarray[Any, Any], name: str) -> Part:
        attributes = primitive.attributes
        positions = self.array(attributes.POSITION).astype(np.float64)
        positions = positions @ matrix[:3, :3].T + matrix[:3, 3]
        if primitive.indices is not None:
            indices = self.array(primitive.indices).astype(np.uint32).reshape(-1, 3)
        else:
            indices = np.arange(len(positions), dtype=np.uint32).reshape(-1, 3)
        normals = None
        if attributes.NORMAL is not None:
            normals = unit_normals(self.array(attributes.NORMAL) @ np.linalg.inv(matrix[:3, :3]))
        uvs = (
            self.array(attributes.TEXCOORD_0).astype(np.float32)
            if attributes.TEXCOORD_0 is not None
            else None
        )
        if np.linalg.det(matrix[:3, :3]) < 0:
            indices = np.ascontiguousarray(indices[:, ::-1])
        material = self.material(primitive.material) if primitive.material is not None else Material()
        return Part(positions.astype(np.float32), indices, material, normals, uvs, name)

    def array(self, index: int) -> np.ndarray[Any, Any]:
        accessor = self.document.accessors[index]
        if accessor.sparse is not None or accessor.bufferView is None:
            raise ModelError("model.corrupt", "sparse or empty accessors are not supported")
        view = self.document.bufferViews[accessor.bufferView]
        dtype = np.dtype(DTYPES[accessor.componentType])
        width = COMPONENTS[accessor.type]
        stride = view.byteStride or dtype.itemsize * width
        start = (view.byteOffset or 0) + (accessor.byteOffset or 0)
        if accessor.count and start + stride * (accessor.count - 1) + dtype.itemsize * width > len(self.blob):
            raise ModelError("model.corrupt", "an accessor reaches past the end of the buffer")
        values = np.ndarray((accessor.count, width), dtype, self.blob, start, (stride, dtype.itemsize)).copy()
        if accessor.normalized and dtype.kind in "iu":
            # Normalised integers map their largest value to 1.0.
            values = values.astype(np.float64) / float(2 ** (8 * dtype.itemsize - (dtype.kind == "i")) - 1)
            values = np.maximum(values, -1.0)  # the most negative integer is -1.0 too
        return values if width > 1 else values.ravel()

    def material(self, index: int) -> Material:
        if index in self.materials:
            return self.materials[index]
        source = self.document.materials[index]
        pbr = source.pbrMetallicRoughness or load_pygltflib().PbrMetallicRoughness()
        texture = None
        if pbr.baseColorTexture is not None:
            image = self.document.images[self.document.textures[pbr.baseColorTexture.index].source]
            view = self.document.bufferViews[image.bufferView]
            start = view.byteOffset or 0
            texture = _texture(self.blob[start : start + view.byteLength], image.mimeType)
        colour = [float(v) for v in (pbr.baseColorFactor or [1.0, 1.0, 1.0, 1.0])]
        emissive = [float(v) for v in (source.emissiveFactor or [0.0, 0.0, 0.0])]
        material = Material(
            name=source.name or "material",
            base_color=(colour[0], colour[1], colour[2], colour[3]),
            metallic=1.0 if pbr.metallicFactor is None else float(pbr.metallicFactor),
            roughness=1.0 if pbr.roughnessFactor is None else float(pbr.roughnessFactor),
            emissive=(emissive[0], emissive[1], emissive[2]),
            base_color_texture=texture,
            double_sided=bool(source.doubleSided),
            alpha_mode=source.alphaMode if source.alphaMode in ("MASK", "BLEND") else "OPAQUE",
        )
        self.materials[index] = material
        return material


def _texture(data: bytes, mime: str | None) -> Texture:
    """A Texture of the embedded image bytes, its size read from the image header."""
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        width, height = struct.unpack(">II", data[16:24])
        return Texture(data, "image/png", width, height)
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        if image.format != "JPEG" and mime != "image/jpeg":
            raise ModelError("model.corrupt", f"embedded image of type {image.format} is not PNG or JPEG")
        return Texture(data, "image/jpeg", image.width, image.height)


def _node_matrix(node: Any) -> np.ndarray[Any, Any]:
    if node.matrix:
        return np.asarray(node.matrix, dtype=np.float64).reshape(4, 4).T  # glTF is column-major
    matrix = np.eye(4)
    if node.scale:
        matrix = np.diag([*node.scale, 1.0]) @ matrix
    if node.rotation:
        x, y, z, w = node.rotation
        norm = math.sqrt(x * x + y * y + z * z + w * w) or 1.0
        x, y, z, w = x / norm, y / norm, z / norm, w / norm
        rotation = np.eye(4)
        rotation[:3, :3] = [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
        matrix = rotation @ matrix
    if node.translation:
        move = np.eye(4)
        move[:3, 3] = node.translation
        matrix = move @ matrix
    return matrix
