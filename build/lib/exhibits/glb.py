"""Our GLB files: writing a :class:`~exhibits.model.Model` as binary glTF 2.0.

:func:`write_glb` makes one mesh whose primitives are the model's parts (after the clean
step, one part per material), under one node. A part of more than 65535 vertices is first
cut into parts of at most that many (:func:`uint16_parts`: a few vertices along each cut
are repeated) so that every index fits in 16 bits (65535 itself is the restart value the
specification forbids): half the index bytes, for one more draw call per 65k vertices.

Attributes are quantised with KHR_mesh_quantization (listed as used and required; three.js
and every Khronos sample viewer read it): POSITION as normalised int16 on a grid whose
uniform scale and offset are the node's scale and translation (its accessor min/max are the
integers, as the extension requires; the floor y = 0 stays exact; error at most
:data:`POSITION_ERROR` of the largest extent), NORMAL as normalised int8, TEXCOORD_0 as
normalised uint16 when the coordinates lie in [0, 1] (float otherwise). Every vertex
attribute is padded to 4 bytes per vertex. ``write_glb(model, quantise=False)`` writes
float attributes and no extension.

Materials are metallic-roughness; textures are embedded in buffer views with their MIME
type, each distinct image once. Every buffer view starts on a 4-byte boundary.
``asset.generator`` is "forumcast".

:func:`~exhibits.glb_read.read_glb` reads such files back. This module also holds the glTF
tables both directions use (:data:`COMPONENTS`, :data:`DTYPES`), :func:`load_pygltflib` and
:func:`unit_normals`.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from exhibits.meshopt import UNUSED, meshopt
from exhibits.model import Material, Model, Part, Texture

GENERATOR = "forumcast"
_FLOAT, _I8_TYPE, _U8, _I16_TYPE, _U16, _U32 = 5126, 5120, 5121, 5122, 5123, 5125
_ARRAY_BUFFER, _ELEMENT_ARRAY_BUFFER = 34962, 34963
_LINEAR, _LINEAR_MIPMAP_LINEAR, _REPEAT = 9729, 9987, 10497
#: glTF accessor types and their widths; component types and their numpy dtypes.
COMPONENTS = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}
DTYPES = {
    _I8_TYPE: np.int8,
    _U8: np.uint8,
    _I16_TYPE: np.int16,
    _U16: np.uint16,
    _U32: np.uint32,
    _FLOAT: np.float32,
}
_TYPES = {np.dtype(dtype): component for component, dtype in DTYPES.items()}
QUANTIZATION = "KHR_mesh_quantization"
#: Vertices a primitive may have with 16-bit indices (0 to 65534; 65535 is the restart value).
MAX_VERTICES = 0xFFFF
#: Largest magnitude of a normalised int8 and int16, and of a normalised uint16.
_I8, _I16, _U16_MAX = 127.0, 32767.0, 65535.0
#: Farthest a quantised position can be from the true one, relative to the model's largest
#: extent: half a grid step (extent / 65534) on each of three axes.
POSITION_ERROR = math.sqrt(3) / (4 * 32767)


def load_pygltflib() -> Any:
    """pygltflib, imported on first use: the server imports this module but rarely writes."""
    import pygltflib  # type: ignore[import-untyped]

    return pygltflib


class _Builder:
    """The binary buffer and the glTF arrays that index into it, filled part by part."""

    def __init__(self) -> None:
        self.gl = load_pygltflib()
        self.blob = bytearray()
        self.views: list[Any] = []
        self.accessors: list[Any] = []

    def view(self, data: bytes, target: int | None, stride: int | None = None) -> int:
        self.blob += b"\0" * (-len(self.blob) % 4)
        self.views.append(
            self.gl.BufferView(
                buffer=0, byteOffset=len(self.blob), byteLength=len(data), target=target, byteStride=stride
            )
        )
        self.blob += data
        return len(self.views) - 1

    def accessor(
        self,
        array: np.ndarray[Any, Any],
        kind: str,
        *,
        target: int,
        bounds: bool = False,
        normalized: bool = False,
    ) -> int:
        """An accessor of ``array``'s rows; columns past ``kind``'s width are padding (kept in
        the buffer so that every vertex starts on a 4-byte boundary)."""
        width = COMPONENTS[kind]
        flat = array.reshape(len(array), -1)
        padded = flat.shape[1] > width
        view = self.view(np.ascontiguousarray(flat).tobytes(), target, flat[0].nbytes if padded else None)
        extra: dict[str, Any] = {}
        if bounds:
            used = flat[:, :width]
            cast = float if array.dtype.kind == "f" else int
            extra = {"min": [cast(v) for v in used.min(axis=0)], "max": [cast(v) for v in used.max(axis=0)]}
        if normalized:
            extra["normalized"] = True
        self.accessors.append(
            self.gl.Accessor(
                bufferView=view, componentType=_TYPES[array.dtype], count=len(array), type=kind, **extra
            )
        )
        return len(self.accessors) - 1


@dataclass(frozen=True, slots=True)
class _Grid:
    """Where quantised positions sit: ``position = offset + scale * q / 32767`` for int16 q.

    One uniform scale (half the largest extent) keeps normals valid under the node transform;
    the offset puts the lowest y on the grid exactly (the floor stays at 0) and centres x and
    z (a centred model stays symmetric).
    """

    offset: np.ndarray[Any, Any]
    scale: float

    @classmethod
    def of(cls, model: Model) -> _Grid:
        low, high = (np.asarray(b, dtype=np.float64) for b in model.bounds())
        scale = float((high - low).max()) / 2 or 1.0
        return cls(np.array([(low[0] + high[0]) / 2, low[1] + scale, (low[2] + high[2]) / 2]), scale)

    def quantise(self, positions: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """int16 (n, 4): x, y, z and a zero to pad each vertex to 8 bytes."""
        q = np.zeros((len(positions), 4), dtype=np.int16)
        scaled = (positions.astype(np.float64) - self.offset) * (_I16 / self.scale)
        q[:, :3] = np.clip(np.rint(scaled), -_I16, _I16)
        return q


def write_glb(model: Model, *, quantise: bool = True) -> bytes:
    """``model`` as a GLB file (layout in the module docstring); float attributes if not
    ``quantise``."""
    gl = load_pygltflib()
    builder = _Builder()
    grid = _Grid.of(model) if quantise else None
    materials: list[Any] = []
    material_index: dict[Material, int] = {}
    images: list[Any] = []
    image_index: dict[Texture, int] = {}
    primitives = []
    for part in uint16_parts(model).parts:
        if not part.triangles:
            continue
        attributes = _attributes(part, builder, grid)
        material = part.material
        if part.uvs is None and material.base_color_texture is not None:
            # A texture needs coordinates; without them the colour factor alone is shown.
            material = Material(**{**_fields(material), "base_color_texture": None})
        indices = builder.accessor(
            part.indices.astype(np.uint16).ravel(), "SCALAR", target=_ELEMENT_ARRAY_BUFFER
        )
        if material not in material_index:
            material_index[material] = len(materials)
            materials.append(_material(material, builder, images, image_index))
        primitives.append(
            gl.Primitive(
                attributes=gl.Attributes(**attributes), indices=indices, material=material_index[material]
            )
        )
    node = gl.Node(mesh=0, name="model")
    if grid is not None:
        node.translation = [float(v) for v in grid.offset]
        node.scale = [grid.scale] * 3
    document = gl.GLTF2(
        asset=gl.Asset(generator=GENERATOR, version="2.0"),
        scene=0,
        scenes=[gl.Scene(nodes=[0] if primitives else [])],
        nodes=[node] if primitives else [],
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
    if grid is not None and primitives:
        document.extensionsUsed = [QUANTIZATION]
        document.extensionsRequired = [QUANTIZATION]
    if builder.blob:
        document.buffers = [gl.Buffer(byteLength=len(builder.blob))]
    return _container(document.gltf_to_json(separators=(",", ":"), indent=None).encode(), bytes(builder.blob))


def uint16_parts(model: Model) -> Model:
    """``model`` with each part of more than :data:`MAX_VERTICES` vertices cut into parts of
    at most that many, each taking the next triangles in order (a part in vertex-cache order is cut into
    compact pieces); parts small enough are kept as they are."""
    parts: list[Part] = []
    for part in model.parts:
        rest = np.ascontiguousarray(part.indices, dtype=np.uint32)
        if part.vertices <= MAX_VERTICES:
            parts.append(part)
            continue
        while len(rest):
            # Number the vertices in order of first use, then take triangles up to the first
            # that needs a number past the limit.
            remap = np.empty(part.vertices, dtype=np.uint32)
            used = meshopt().fetch_remap(remap.ctypes.data, rest.ctypes.data, rest.size, part.vertices)
            numbered = remap[rest]
            cut = int(np.searchsorted(np.maximum.accumulate(numbered.max(axis=1)), MAX_VERTICES))
            source = np.empty(used, dtype=np.int64)
            source[remap[remap != UNUSED]] = np.flatnonzero(remap != UNUSED)
            source = source[: int(numbered[:cut].max()) + 1]
            parts.append(
                Part(
                    positions=part.positions[source],
                    indices=numbered[:cut],
                    material=part.material,
                    normals=None if part.normals is None else part.normals[source],
                    uvs=None if part.uvs is None else part.uvs[source],
                    name=part.name,
                )
            )
            rest = np.ascontiguousarray(rest[cut:])
    return Model(parts)


def _attributes(part: Part, builder: _Builder, grid: _Grid | None) -> dict[str, int]:
    """POSITION, NORMAL and TEXCOORD_0 accessors of ``part``: quantised on ``grid`` if given."""
    normals = unit_normals(part.normals) if part.normals is not None else None
    if grid is None:
        positions = np.ascontiguousarray(part.positions, dtype=np.float32)
        attributes = {"POSITION": builder.accessor(positions, "VEC3", target=_ARRAY_BUFFER, bounds=True)}
        if normals is not None:
            attributes["NORMAL"] = builder.accessor(normals, "VEC3", target=_ARRAY_BUFFER)
        if part.uvs is not None:
            uvs = np.ascontiguousarray(part.uvs, dtype=np.float32)
            attributes["TEXCOORD_0"] = builder.accessor(uvs, "VEC2", target=_ARRAY_BUFFER)
        return attributes
    attributes = {
        "POSITION": builder.accessor(
            grid.quantise(part.positions), "VEC3", target=_ARRAY_BUFFER, bounds=True, normalized=True
        )
    }
    if normals is not None:
        packed = np.zeros((len(normals), 4), dtype=np.int8)
        packed[:, :3] = np.rint(normals * _I8)
        attributes["NORMAL"] = builder.accessor(packed, "VEC3", target=_ARRAY_BUFFER, normalized=True)
    if part.uvs is not None:
        uvs = np.asarray(part.uvs, dtype=np.float32)
        if len(uvs) and uvs.min() >= 0.0 and uvs.max() <= 1.0:
            unsigned = np.rint(uvs.astype(np.float64) * _U16_MAX).astype(np.uint16)
            attributes["TEXCOORD_0"] = builder.accessor(
                unsigned, "VEC2", target=_ARRAY_BUFFER, normalized=True
            )
        else:
            # Coordinates that repeat the texture stay float (a texture transform could
            # quantise them too; not worth it for the few models that tile).
            attributes["TEXCOORD_0"] = builder.accessor(
                np.ascontiguousarray(uvs), "VEC2", target=_ARRAY_BUFFER
            )
    return attributes


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


def unit_normals(normals: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
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
