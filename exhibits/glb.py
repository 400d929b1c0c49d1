"""Our GLB files: writing a :class:`~exhibits.model.Model` as binary glTF 2.0, and reading it back.

:func:`write_glb` makes one mesh whose primitives are the model's parts (after the clean
step, one part per material), under one node. Each primitive has POSITION (with the min/max
the specification requires), NORMAL, TEXCOORD_0 when textured, and uint16 indices when the
part has fewer than 65535 vertices, else uint32 (65535 itself is the restart value the
specification forbids). Materials are metallic-roughness; textures are embedded in buffer
views with their MIME type, each distinct image once. Every buffer view starts on a 4-byte
boundary. ``asset.generator`` is "forumcast".

:func:`read_glb` reads such files back (for the hall scene, and for tests): triangle
primitives with float positions, normals and texture coordinates and integer indices, node
transforms applied. Anything else is ``model.corrupt``.
"""

from __future__ import annotations

import io
import math
import struct
from typing import Any

import numpy as np

from exhibits.model import Material, Model, Part, Texture
from server.errors import ModelError

GENERATOR = "forumcast"
_FLOAT, _U8, _U16, _U32 = 5126, 5121, 5123, 5125
_ARRAY_BUFFER, _ELEMENT_ARRAY_BUFFER = 34962, 34963
_LINEAR, _LINEAR_MIPMAP_LINEAR, _REPEAT = 9729, 9987, 10497
_COMPONENTS = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}
_DTYPES = {5120: np.int8, _U8: np.uint8, 5122: np.int16, _U16: np.uint16, _U32: np.uint32, _FLOAT: np.float32}


def _pygltflib() -> Any:
    """pygltflib, imported on first use: the server imports this module but rarely writes."""
    import pygltflib  # type: ignore[import-untyped]

    return pygltflib


class _Builder:
    """The binary buffer and the glTF arrays that index into it, filled part by part."""

    def __init__(self) -> None:
        self.gl = _pygltflib()
        self.blob = bytearray()
        self.views: list[Any] = []
        self.accessors: list[Any] = []

    def view(self, data: bytes, target: int | None) -> int:
        self.blob += b"\0" * (-len(self.blob) % 4)
        self.views.append(
            self.gl.BufferView(buffer=0, byteOffset=len(self.blob), byteLength=len(data), target=target)
        )
        self.blob += data
        return len(self.views) - 1

    def accessor(self, array: np.ndarray[Any, Any], kind: str, *, target: int, bounds: bool = False) -> int:
        component = {np.dtype(np.float32): _FLOAT, np.dtype(np.uint16): _U16, np.dtype(np.uint32): _U32}[
            array.dtype
        ]
        view = self.view(np.ascontiguousarray(array).tobytes(), target)
        flat = array.reshape(len(array), -1)
        extra: dict[str, Any] = {}
        if bounds:
            extra = {"min": [float(v) for v in flat.min(axis=0)], "max": [float(v) for v in flat.max(axis=0)]}
        self.accessors.append(
            self.gl.Accessor(bufferView=view, componentType=component, count=len(array), type=kind, **extra)
        )
        return len(self.accessors) - 1


def write_glb(model: Model) -> bytes:
    """``model`` as a GLB file (layout in the module docstring)."""
    gl = _pygltflib()
    builder = _Builder()
    materials: list[Any] = []
    material_index: dict[Material, int] = {}
    images: list[Any] = []
    image_index: dict[Texture, int] = {}
    primitives = []
    for part in model.parts:
        if not part.triangles:
            continue
        positions = np.ascontiguousarray(part.positions, dtype=np.float32)
        attributes = {"POSITION": builder.accessor(positions, "VEC3", target=_ARRAY_BUFFER, bounds=True)}
        normals = _unit(part.normals) if part.normals is not None else None
        if normals is not None:
            attributes["NORMAL"] = builder.accessor(normals, "VEC3", target=_ARRAY_BUFFER)
        material = part.material
        if part.uvs is not None:
            uvs = np.ascontiguousarray(part.uvs, dtype=np.float32)
            attributes["TEXCOORD_0"] = builder.accessor(uvs, "VEC2", target=_ARRAY_BUFFER)
        elif material.base_color_texture is not None:
            # A texture needs coordinates; without them the colour factor alone is shown.
            material = Material(**{**_fields(material), "base_color_texture": None})
        index_type = np.uint16 if part.vertices < 0xFFFF else np.uint32
        indices = builder.accessor(
            part.indices.astype(index_type).ravel(), "SCALAR", target=_ELEMENT_ARRAY_BUFFER
        )
        if material not in material_index:
            material_index[material] = len(materials)
            materials.append(_material(material, builder, images, image_index))
        primitives.append(
            gl.Primitive(
                attributes=gl.Attributes(**attributes), indices=indices, material=material_index[material]
            )
        )
    document = gl.GLTF2(
        asset=gl.Asset(generator=GENERATOR, version="2.0"),
        scene=0,
        scenes=[gl.Scene(nodes=[0] if primitives else [])],
        nodes=[gl.Node(mesh=0, name="model")] if primitives else [],
        meshes=[gl.Mesh(primitives=primitives, name="model")] if primitives else [],
        accessors=builder.accessors,
        bufferViews=builder.views,
        materials=materials,
        images=images,
        textures=[gl.Texture(source=i, sampler=0) for i in range(len(images))],
        samplers=[
            gl.Sampler(magFilter=_LINEAR, minFilter=_LINEAR_MIPMAP_LINEAR, wrapS=_REPEAT, wrapT=_REPEAT)
        ]
        if images
        else [],
    )
    if builder.blob:
        document.buffers = [gl.Buffer(byteLength=len(builder.blob))]
    return _container(document.gltf_to_json(separators=(",", ":"), indent=None).encode(), bytes(builder.blob))


def _container(document: bytes, blob: bytes) -> bytes:
    """The GLB container: header, JSON chunk (space padded), BIN chunk (zero padded) if any."""
    document += b" " * (-len(document) % 4)
    blob += b"\0" * (-len(blob) % 4)
    chunks = struct.pack("<I4s", len(document), b"JSON") + document
    if blob:
        chunks += struct.pack("<I4s", len(blob), b"BIN\0") + blob
    return struct.pack("<4sII", b"glTF", 2, 12 + len(chunks)) + chunks


def _fields(material: Material) -> dict[str, Any]:
    return {name: getattr(material, name) for name in Material.__dataclass_fields__}


def _unit(normals: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Unit-length normals (the validator refuses others); zero ones point up."""
    values = normals.astype(np.float64)
    length = np.linalg.norm(values, axis=1, keepdims=True)
    values = np.where(length > 1e-12, values / np.where(length > 1e-12, length, 1.0), [0.0, 1.0, 0.0])
    return np.ascontiguousarray(values, dtype=np.float32)


def _material(
    material: Material, builder: _Builder, images: list[Any], image_index: dict[Texture, int]
) -> Any:
    gl = builder.gl
    texture_info = None
    texture = material.base_color_texture
    if texture is not None:
        if texture not in image_index:
            image_index[texture] = len(images)
            images.append(gl.Image(bufferView=builder.view(texture.data, None), mimeType=texture.mime))
        texture_info = gl.TextureInfo(index=image_index[texture])
    return gl.Material(
        name=material.name,
        pbrMetallicRoughness=gl.PbrMetallicRoughness(
            baseColorFactor=list(material.base_color),
            metallicFactor=material.metallic,
            roughnessFactor=material.roughness,
            baseColorTexture=texture_info,
        ),
        emissiveFactor=list(material.emissive),
        doubleSided=material.double_sided,
        alphaMode=material.alpha_mode,
        alphaCutoff=0.5 if material.alpha_mode == "MASK" else None,
    )


def read_glb(data: bytes) -> Model:
    """The Model in a GLB (see the module docstring for what is read)."""
    gl = _pygltflib()
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
            normals = _unit(self.array(attributes.NORMAL) @ np.linalg.inv(matrix[:3, :3]))
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
        dtype = np.dtype(_DTYPES[accessor.componentType])
        width = _COMPONENTS[accessor.type]
        stride = view.byteStride or dtype.itemsize * width
        start = (view.byteOffset or 0) + (accessor.byteOffset or 0)
        if accessor.count and start + stride * (accessor.count - 1) + dtype.itemsize * width > len(self.blob):
            raise ModelError("model.corrupt", "an accessor reaches past the end of the buffer")
        values = np.ndarray((accessor.count, width), dtype, self.blob, start, (stride, dtype.itemsize)).copy()
        if accessor.normalized and dtype.kind in "iu":
            # Normalised integers map their largest value to 1.0.
            values = values.astype(np.float32) / float(2 ** (8 * dtype.itemsize - (dtype.kind == "i")) - 1)
        return values if width > 1 else values.ravel()

    def material(self, index: int) -> Material:
        if index in self.materials:
            return self.materials[index]
        source = self.document.materials[index]
        pbr = source.pbrMetallicRoughness or _pygltflib().PbrMetallicRoughness()
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
