"""What kind of 3D file an upload is, and how it becomes a :class:`~exhibits.model.Model`.

Accepted: GLB, glTF, OBJ, STL (ASCII and binary), PLY, OFF and 3MF, each alone or (with
the files it references) in a zip. :func:`detect` decides by signature first (GLB, zip,
PLY) and by extension or content for the text formats; :func:`load` reads the file with
trimesh and converts its scene to a Model: node transforms applied, texture coordinates
flipped to glTF's convention, materials turned into metallic-roughness ones and images
encoded as :class:`~exhibits.model.Texture` s.

A zip must hold exactly one model file. References from it (glTF buffers and images, OBJ
material libraries and textures) are served from the zip through
:class:`~exhibits.archive.ArchiveResolver` and must stay inside it
(:func:`~exhibits.archive.resolve_uri`). Whatever trimesh raises on a file it cannot read
becomes ``model.corrupt``; nothing it raises escapes as is.
"""

from __future__ import annotations

import io
import json
import posixpath
import re
import struct
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from exhibits.archive import Archive, ArchiveResolver, is_zip, read_archive, resolve_uri
from exhibits.model import Material, Model, Part, Texture
from exhibits.textures import encode_image
from server.errors import ModelError

if TYPE_CHECKING:
    import trimesh

#: File extension → format name, for the formats the pipeline reads.
EXTENSIONS: dict[str, str] = {
    ".glb": "glb",
    ".gltf": "gltf",
    ".obj": "obj",
    ".stl": "stl",
    ".ply": "ply",
    ".off": "off",
    ".3mf": "3mf",
}
#: Units a file can declare (3MF does), in the pipeline's unit names.
DECLARED_UNITS = {
    "millimeter": "mm",
    "millimeters": "mm",
    "centimeter": "cm",
    "centimeters": "cm",
    "meter": "m",
    "meters": "m",
    "inch": "in",
    "inches": "in",
}
_OBJ_VERTEX = re.compile(rb"^v\s+[-+0-9.]", re.MULTILINE)
_THREEMF_PART = "3d/3dmodel.model"


@dataclass(slots=True)
class Loaded:
    """A model as read from the upload, before any normalisation."""

    model: Model
    #: Format of the model file ("glb", "obj", …); for a zip, of the model inside it.
    format: str
    #: Unit the file itself declares ("mm" … "in"), or None when the format has none.
    declared_unit: str | None = None
    warnings: list[str] = field(default_factory=list)


def detect(data: bytes, filename: str) -> str:
    """The format of ``data`` (a key of :data:`EXTENSIONS` without the dot) or ``"zip"``."""
    ext = posixpath.splitext(filename.lower())[1]
    if data[:4] == b"glTF":
        return "glb"
    if is_zip(data):
        return "3mf" if ext == ".3mf" else "zip"
    if data[:3] == b"ply" and data[3:4] in (b"\n", b"\r"):
        return "ply"
    if ext in (".glb", ".3mf", ".zip", ".ply"):
        raise ModelError("model.corrupt", f"the file is named {ext} but does not start like one")
    head = data[:4096].lstrip()
    if ext == ".stl" or (head[:5].lower() == b"solid" and b"facet" in head) or _binary_stl_count(data):
        return "stl"
    if ext == ".off" or head[:3] == b"OFF":
        return "off"
    if ext == ".gltf" or (head[:1] == b"{" and b'"asset"' in head):
        return "gltf"
    if ext == ".obj" or _OBJ_VERTEX.search(data[:65536]):
        return "obj"
    known = ", ".join(sorted(EXTENSIONS))
    raise ModelError("model.unknown_format", f"{filename!r} is not a 3D format we read ({known}, or a zip)")


def load(
    data: bytes,
    filename: str,
    *,
    max_entries: int = 512,
    max_unpacked_bytes: int = 512 * 2**20,
    max_ratio: float = 100.0,
) -> Loaded:
    """Read the upload ``data`` named ``filename`` into a Model (zip limits as in
    :func:`exhibits.archive.read_archive`)."""
    if not data:
        raise ModelError("model.empty", "the upload is empty")
    fmt = detect(data, filename)
    archive = Archive({})
    base_dir = ""
    if fmt in ("zip", "3mf"):
        archive = read_archive(
            data, max_entries=max_entries, max_unpacked_bytes=max_unpacked_bytes, max_ratio=max_ratio
        )
    if fmt == "zip":
        if any(name.casefold() == _THREEMF_PART for name in archive.files):
            fmt = "3mf"
        else:
            path = _model_in(archive)
            data = archive.files[path]
            if not data:
                raise ModelError("model.empty", f"{path!r} in the zip is empty")
            base_dir = posixpath.dirname(path)
            fmt = detect(data, path)
            if fmt == "zip":
                raise ModelError("model.unknown_format", f"{path!r} in the zip is itself a zip")
            if fmt == "3mf":
                # The 3MF zip inside the upload zip gets the same checks as the outer one.
                read_archive(
                    data, max_entries=max_entries, max_unpacked_bytes=max_unpacked_bytes, max_ratio=max_ratio
                )
    if fmt in ("glb", "gltf"):
        _check_gltf_references(_gltf_json(data, fmt), archive, base_dir)
    if fmt == "stl":
        _check_stl(data)
    resolver = ArchiveResolver(archive, base_dir)
    scene = _read_scene(data, fmt, resolver)
    if resolver.refused:
        raise resolver.refused[0]
    try:
        model, notes = _scene_to_model(scene, fmt)
    except ModelError as exc:
        if exc.code == "model.empty" and fmt == "stl":
            # _check_stl saw facets or a triangle count, so nothing read means unreadable.
            raise ModelError("model.corrupt", "the STL's facets could not be read") from None
        raise
    except Exception as exc:  # odd visuals or images trimesh accepted but we cannot convert
        raise _unreadable(fmt, exc) from None
    notes += [f"{name!r} is referenced but not in the upload; ignored" for name in resolver.missing]
    declared = DECLARED_UNITS.get(str(scene.units).lower()) if fmt == "3mf" else None
    return Loaded(model, fmt, declared, notes)


def _model_in(archive: Archive) -> str:
    """The one model file of the zip, or ``model.unknown_format``."""
    found = [n for n in archive.names() if posixpath.splitext(n.lower())[1] in EXTENSIONS]
    if not found:
        raise ModelError(
            "model.unknown_format", "the zip holds no model file (glb, gltf, obj, stl, ply, off, 3mf)"
        )
    if len(found) > 1:
        listed = ", ".join(found[:5]) + (", …" if len(found) > 5 else "")
        raise ModelError(
            "model.unknown_format", f"the zip holds {len(found)} model files ({listed}); put one per zip"
        )
    return found[0]


def _binary_stl_count(data: bytes) -> int:
    """The triangle count of a binary STL whose length matches its header, else 0."""
    if len(data) < 84:
        return 0
    (count,) = struct.unpack_from("<I", data, 80)
    return int(count) if 84 + 50 * count == len(data) else 0


def _check_stl(data: bytes) -> None:
    # A binary header may start with "solid" too, so the length rule is asked first.
    if _binary_stl_count(data):
        return
    if len(data) == 84 and data[80:84] == b"\0\0\0\0":
        raise ModelError("model.empty", "the binary STL holds no triangles")
    if data.lstrip()[:5].lower() == b"solid":
        if b"facet" not in data:
            raise ModelError("model.empty", "the ASCII STL holds no facets")
        return
    if len(data) >= 84:
        (count,) = struct.unpack_from("<I", data, 80)
        raise ModelError(
            "model.corrupt", f"the binary STL declares {count} triangles but is {len(data)} bytes long"
        )
    raise ModelError("model.corrupt", f"the STL is only {len(data)} bytes long")


def _gltf_json(data: bytes, fmt: str) -> dict[str, Any]:
    """The JSON of a glTF or GLB, after the GLB header checks."""
    text = data
    if fmt == "glb":
        if len(data) < 20:
            raise ModelError("model.corrupt", "the GLB is truncated (no header)")
        _magic, version, length, chunk_length, chunk_type = struct.unpack_from("<4sIIII", data)
        if version != 2:
            raise ModelError("model.corrupt", f"GLB version {version} is not supported (2 is)")
        if length > len(data) or 20 + chunk_length > len(data):
            raise ModelError(
                "model.corrupt", f"the GLB is truncated: its header says {length} bytes, got {len(data)}"
            )
        if chunk_type != 0x4E4F534A:  # "JSON"
            raise ModelError("model.corrupt", "the GLB does not start with a JSON chunk")
        text = data[20 : 20 + chunk_length]
    try:
        document = json.loads(text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ModelError("model.corrupt", f"the glTF JSON is unreadable ({exc})") from None
    if not isinstance(document, dict):
        raise ModelError("model.corrupt", "the glTF JSON is not an object")
    return document


def _check_gltf_references(document: dict[str, Any], archive: Archive, base_dir: str) -> None:
    """Every buffer and image URI must be a data: URI or a file in the upload."""
    for kind in ("buffers", "images"):
        items = document.get(kind, [])
        for item in items if isinstance(items, list) else []:
            uri = item.get("uri") if isinstance(item, dict) else None
            if not isinstance(uri, str) or uri.startswith("data:"):
                continue
            path = resolve_uri(base_dir, uri)
            if archive.find(path) is None:
                raise ModelError("model.corrupt", f"the glTF references {uri!r}, which is not in the upload")


def _read_scene(data: bytes, fmt: str, resolver: ArchiveResolver) -> trimesh.Scene:
    import trimesh

    try:
        with warnings.catch_warnings():
            # Library chatter about a malformed file is not for the uploader; errors are.
            warnings.simplefilter("ignore")
            return trimesh.load_scene(
                io.BytesIO(data),
                file_type=fmt,
                # Duck-typed: trimesh only calls get, keys and namespaced on a resolver.
                resolver=resolver,  # type: ignore[arg-type]
                process=False,
            )
    except ModelError:
        raise
    except Exception as exc:  # trimesh raises anything at all on garbage; see the module docstring
        raise _unreadable(fmt, exc) from None


def _unreadable(fmt: str, exc: Exception) -> ModelError:
    reason = (f"{type(exc).__name__}: {exc}".splitlines() or [""])[0][:160]
    return ModelError("model.corrupt", f"the {fmt.upper()} file could not be read ({reason})")


def _scene_to_model(scene: trimesh.Scene, fmt: str) -> tuple[Model, list[str]]:
    """The scene's triangle meshes as Parts in world space; point clouds and lines are counted
    only to tell ``model.no_faces`` from ``model.empty``."""
    import trimesh

    parts: list[Part] = []
    notes: set[str] = set()
    loose_vertices = 0
    images: dict[int, Texture] = {}
    for node in scene.graph.nodes_geometry:
        matrix, geometry_name = scene.graph[node]
        geometry = scene.geometry.get(geometry_name)
        if not isinstance(geometry, trimesh.Trimesh) or len(geometry.faces) == 0:
            loose_vertices += len(getattr(geometry, "vertices", ()))
            continue
        parts.append(_part(geometry, np.asarray(matrix, dtype=np.float64), str(node), fmt, images, notes))
    if not parts:
        if loose_vertices:
            raise ModelError(
                "model.no_faces",
                f"the model has {loose_vertices} vertices but no faces (points or lines only)",
            )
        raise ModelError("model.empty", "the file holds no geometry")
    return Model(parts), sorted(notes)


def _part(
    mesh: trimesh.Trimesh,
    matrix: np.ndarray[Any, Any],
    name: str,
    fmt: str,
    images: dict[int, Texture],
    notes: set[str],
) -> Part:
    import trimesh

    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    faces = np.asarray(mesh.faces, dtype=np.int64)
    if faces.ndim != 2 or faces.shape[1] != 3 or faces.min() < 0 or faces.max() >= len(vertices):
        raise ModelError("model.corrupt", f"{name!r} has face indices outside its vertex list")
    linear = matrix[:3, :3]
    positions = vertices @ linear.T + matrix[:3, 3]
    # Normals the file carried (trimesh keeps them in its cache; computed ones are not wanted:
    # the clean step computes its own, with hard edges kept).
    given = mesh._cache.cache.get("vertex_normals")
    normals = None
    if given is not None and np.shape(given) == vertices.shape:
        with np.errstate(all="ignore"):
            normals = (np.asarray(given, dtype=np.float64) @ np.linalg.inv(linear)).astype(np.float32)
    if np.linalg.det(linear) < 0:
        # A mirroring transform turns faces inside out; flip the winding back.
        faces = faces[:, ::-1]
    uvs = None
    material = Material(name=name)
    visual = mesh.visual
    if isinstance(visual, trimesh.visual.TextureVisuals):
        if visual.uv is not None and len(visual.uv) == len(vertices):
            uv = np.asarray(visual.uv, dtype=np.float32)
            uvs = np.column_stack([uv[:, 0], 1.0 - uv[:, 1]]).astype(np.float32)
        material = _material(visual.material, fmt, has_uvs=uvs is not None, images=images, notes=notes)
    elif isinstance(visual, trimesh.visual.ColorVisuals) and visual.kind in ("vertex", "face"):
        colour = np.asarray(visual.main_color, dtype=np.float64) / 255.0
        material = Material(name=name, base_color=(colour[0], colour[1], colour[2], colour[3]))
        notes.add(f"per-{visual.kind} colours were replaced by the main colour")
    return Part(
        positions=positions.astype(np.float32),
        indices=faces.astype(np.uint32),
        material=material,
        normals=normals,
        uvs=uvs,
        name=name,
    )


def _material(
    source: Any, fmt: str, *, has_uvs: bool, images: dict[int, Texture], notes: set[str]
) -> Material:
    import trimesh

    if isinstance(source, trimesh.visual.material.SimpleMaterial):
        simple: Any = source
        source = simple.to_pbr()
    if not isinstance(source, trimesh.visual.material.PBRMaterial):
        return Material()
    spec = fmt in ("glb", "gltf")
    colour = _rgba(source.baseColorFactor)
    texture = None
    image = source.baseColorTexture
    if image is not None and not has_uvs:
        notes.add("a texture without texture coordinates was dropped")
    elif image is not None:
        if id(image) not in images:
            images[id(image)] = encode_image(image)
        texture = images[id(image)]
    for extra in ("normalTexture", "metallicRoughnessTexture", "occlusionTexture", "emissiveTexture"):
        if getattr(source, extra, None) is not None:
            notes.add(f"{extra} maps are not kept (base colour only)")
    # glTF's defaults for absent factors are 1.0; other formats have no PBR, so ours apply.
    default = Material()
    metallic = (
        source.metallicFactor if source.metallicFactor is not None else (1.0 if spec else default.metallic)
    )
    rough = (
        source.roughnessFactor if source.roughnessFactor is not None else (1.0 if spec else default.roughness)
    )
    emissive = np.asarray(
        source.emissiveFactor if source.emissiveFactor is not None else (0, 0, 0), dtype=float
    )
    alpha = str(source.alphaMode or "OPAQUE").upper()
    return Material(
        name=str(source.name or "material"),
        base_color=colour,
        metallic=float(np.clip(metallic, 0.0, 1.0)),
        roughness=float(np.clip(rough, 0.0, 1.0)),
        emissive=(float(emissive[0]), float(emissive[1]), float(emissive[2])),
        base_color_texture=texture,
        double_sided=bool(source.doubleSided),
        alpha_mode="BLEND" if alpha == "BLEND" else "MASK" if alpha == "MASK" else "OPAQUE",
    )


def _rgba(factor: Any) -> tuple[float, float, float, float]:
    if factor is None:
        return (1.0, 1.0, 1.0, 1.0)
    values = np.asarray(factor, dtype=np.float64).ravel()
    if np.asarray(factor).dtype == np.uint8 or values.max(initial=0.0) > 1.0:
        values = values / 255.0
    if values.size == 3:
        values = np.append(values, 1.0)
    values = np.clip(np.nan_to_num(values, nan=1.0), 0.0, 1.0)
    return (float(values[0]), float(values[1]), float(values[2]), float(values[3]))
