"""Making a loaded model canonical: metres, +Y up, standing centred on the floor, clean.

**Unit.** A hint (``mm``, ``cm``, ``m``, ``in``) wins. Otherwise glTF and GLB are metres
(their specification says so) and a 3MF file's own ``unit`` attribute is used. For the
rest (OBJ, STL, PLY, OFF) the unit is guessed and reported as guessed: the first unit, in
the format's customary order (:data:`GUESS_ORDER`: CAD formats millimetres first, OBJ
metres first), that makes the model's largest extent a plausible booth object,
:data:`PLAUSIBLE_METRES` (0.05–50 m); when none does, the unit landing nearest that
range (in ratio).

**Up.** A hint (``y`` or ``z``) wins. Otherwise glTF and GLB are +Y up and 3MF is +Z up (by
their specifications); STL, PLY and OFF are taken as +Z up and OBJ as +Y up by convention,
and reported as guessed. A Z-up model is turned -90° about X: (x, y, z) → (x, z, -y).

**Placement.** The bounding box is centred on x and z with its bottom at y = 0, then the
model is scaled down uniformly, if needed, to fit the booth's envelope (width x, height y,
depth z, metres); it is never scaled up.

**Clean.** Parts with equal materials are merged; exact duplicate vertices merged
(meshoptimizer's hash of each vertex's bytes), unused ones dropped, the rest numbered in
order of first use (which also speeds up the simplifier);
degenerate (repeated index or zero area) and duplicate (same corners, same winding — a
sheet modelled with both sides is kept) faces dropped; normals kept when the file had valid
ones, else computed with hard edges where a face turns more than :data:`CREASE_DEGREES`
from the smoothed normal.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from exhibits.meshopt import number_rows, weld
from exhibits.model import F32, Model, Part
from server.errors import ModelError

#: Metres per unit of each unit name the pipeline accepts.
UNITS: dict[str, float] = {"mm": 0.001, "cm": 0.01, "m": 1.0, "in": 0.0254}
#: Units tried in order when the unit is guessed, per format (others use ``"default"``).
GUESS_ORDER: dict[str, tuple[str, ...]] = {"obj": ("m", "cm", "mm", "in"), "default": ("mm", "m", "cm", "in")}
#: Largest extent, in metres, of a plausible booth object.
PLAUSIBLE_METRES = (0.05, 50.0)
#: Formats whose up axis is fixed by their specification, and formats taken as Z-up.
SPEC_UP = {"glb": "y", "gltf": "y", "3mf": "z"}
CONVENTIONALLY_Z_UP = frozenset({"stl", "ply", "off"})
#: Angle between a face and the smoothed vertex normal beyond which the edge stays hard.
CREASE_DEGREES = 40.0


@dataclass(frozen=True, slots=True)
class Placement:
    """How a model was placed: what it was read as and the scale that made it metres."""

    unit: str
    unit_guessed: bool
    up: str
    up_guessed: bool
    #: Metres per source unit times the envelope fit.
    scale: float


def parse_unit(value: str | None) -> str | None:
    if value is None or value.strip() == "":
        return None
    unit = value.strip().lower()
    if unit not in UNITS:
        raise ModelError("model.bad_option", f"unit must be one of {', '.join(UNITS)}, got {value!r}")
    return unit


def parse_up(value: str | None) -> str | None:
    if value is None or value.strip() == "":
        return None
    up = value.strip().lower().lstrip("+")
    if up not in ("y", "z"):
        raise ModelError("model.bad_option", f"up must be y or z, got {value!r}")
    return up


def parse_envelope(value: Sequence[float] | None) -> tuple[float, float, float] | None:
    if value is None:
        return None
    sizes = tuple(float(v) for v in value)
    if len(sizes) != 3 or not all(math.isfinite(v) and v > 0 for v in sizes):
        raise ModelError(
            "model.bad_option", f"envelope must be three positive sizes in metres, got {value!r}"
        )
    return (sizes[0], sizes[1], sizes[2])


def check_finite(model: Model) -> None:
    """``model.non_finite`` if any vertex position is NaN or infinite."""
    for part in model.parts:
        if np.isfinite(part.positions).all():
            continue  # the usual case, checked whole: a row-wise check is far slower
        bad = ~np.isfinite(part.positions).all(axis=1)
        if bad.any():
            raise ModelError(
                "model.non_finite",
                f"{int(bad.sum())} vertices of {part.name!r} have NaN or infinite coordinates",
            )


def choose_unit(
    fmt: str, largest_extent: float, *, hint: str | None, declared: str | None
) -> tuple[str, bool]:
    """(unit, guessed) by the rules of the module docstring."""
    if hint is not None:
        return hint, False
    if fmt in ("glb", "gltf"):
        return "m", False
    if declared is not None:
        return declared, False
    order = GUESS_ORDER.get(fmt, GUESS_ORDER["default"])
    low, high = PLAUSIBLE_METRES
    for unit in order:
        if low <= largest_extent * UNITS[unit] <= high:
            return unit, True

    def miss(unit: str) -> float:
        size = max(largest_extent * UNITS[unit], 1e-300)
        return max(math.log(low / size), math.log(size / high), 0.0)

    return min(order, key=miss), True


def choose_up(fmt: str, *, hint: str | None) -> tuple[str, bool]:
    """(up axis, guessed) by the rules of the module docstring."""
    if hint is not None:
        return hint, False
    if fmt in SPEC_UP:
        return SPEC_UP[fmt], False
    return ("z" if fmt in CONVENTIONALLY_Z_UP else "y"), True


def largest_extent(model: Model) -> float:
    low, high = model.bounds()
    return max(h - lo for lo, h in zip(low, high, strict=True))


def place(
    model: Model, *, metres_per_unit: float, up: str, envelope: tuple[float, float, float] | None
) -> float:
    """Turn ``model`` +Y up, into metres, centred on the floor and inside ``envelope``, in place.

    Returns the total scale applied (unit times envelope fit).
    """
    for part in model.parts:
        positions = part.positions.astype(np.float64)
        if up == "z":
            positions = positions[:, [0, 2, 1]] * np.array([1.0, 1.0, -1.0])
            if part.normals is not None:
                part.normals = part.normals[:, [0, 2, 1]] * np.array([1.0, 1.0, -1.0], dtype=np.float32)
        part.positions = (positions * metres_per_unit).astype(np.float32)
    low, high = (np.array(b, dtype=np.float64) for b in model.bounds())
    size = high - low
    fit = 1.0
    if envelope is not None:
        fit = min([1.0, *(e / s for e, s in zip(envelope, size, strict=True) if s > 0)])
    origin = np.array([(low[0] + high[0]) / 2, low[1], (low[2] + high[2]) / 2])
    for part in model.parts:
        part.positions = ((part.positions.astype(np.float64) - origin) * fit).astype(np.float32)
    return metres_per_unit * fit


def clean(model: Model) -> tuple[Model, list[str]]:
    """A cleaned copy of ``model`` (see the module docstring) and notes on what changed."""
    notes: list[str] = []
    counts = {"degenerate": 0, "duplicate": 0, "normals": 0}
    parts = []
    for part in merge_by_material(model.parts):
        cleaned = _clean_part(part, counts)
        if cleaned.triangles:
            parts.append(cleaned)
    if not parts:
        raise ModelError("model.no_faces", "every face of the model is degenerate (zero area)")
    if counts["degenerate"]:
        notes.append(f"dropped {counts['degenerate']} degenerate faces")
    if counts["duplicate"]:
        notes.append(f"dropped {counts['duplicate']} duplicate faces")
    if counts["normals"]:
        notes.append(f"computed normals for {counts['normals']} parts")
    return Model(parts), notes


def merge_by_material(parts: list[Part]) -> list[Part]:
    """Parts with equal materials and the same attributes, concatenated (fewer draw calls)."""
    groups: dict[tuple[object, bool, bool], list[Part]] = {}
    for part in parts:
        key = (part.material, part.uvs is not None, part.normals is not None)
        groups.setdefault(key, []).append(part)
    merged = []
    for group in groups.values():
        if len(group) == 1:
            merged.append(group[0])
            continue
        offsets = np.cumsum([0] + [p.vertices for p in group[:-1]])
        first = group[0]
        merged.append(
            Part(
                positions=np.concatenate([p.positions for p in group]),
                indices=np.concatenate(
                    [p.indices + np.uint32(o) for p, o in zip(group, offsets, strict=True)]
                ),
                material=first.material,
                normals=None if first.normals is None else np.concatenate([p.normals for p in group]),
                uvs=None if first.uvs is None else np.concatenate([p.uvs for p in group]),
                name=first.material.name or first.name,
            )
        )
    return merged


def _clean_part(part: Part, counts: dict[str, int]) -> Part:
    positions = part.positions.astype(np.float32) + np.float32(0.0)  # -0.0 and 0.0 merge
    uvs = None
    if part.uvs is not None:
        uvs = np.nan_to_num(part.uvs.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0) + np.float32(0.0)
    normals = part.normals
    if normals is not None:
        length = np.sqrt(np.einsum("ij,ij->i", normals, normals, dtype=np.float64))
        if not (np.isfinite(length).all() and (length > 1e-8).all()):
            normals = None
        else:
            normals = (normals / length[:, None]).astype(np.float32) + np.float32(0.0)
    columns = [positions] + ([uvs] if uvs is not None else []) + ([normals] if normals is not None else [])
    # Only vertices some face uses are kept; they are numbered in order of first use.
    table, remap = weld(np.hstack(columns), part.indices)
    faces = remap[part.indices].astype(np.int64)
    faces, face_normals = _drop_bad_faces(table[:, :3], faces, counts)
    if not len(faces):
        return Part(part.positions[:0], part.indices[:0], part.material, None, None, part.name)
    if normals is None:
        counts["normals"] += 1
        table, faces = _with_crease_normals(table, faces, face_normals)
    used = np.zeros(len(table), dtype=bool)
    used[faces] = True
    if not used.all():
        compact = np.cumsum(used) - 1
        table = table[used]
        faces = compact[faces]
    n_uv = 2 if uvs is not None else 0
    return Part(
        positions=np.ascontiguousarray(table[:, :3]),
        indices=faces.astype(np.uint32),
        material=part.material,
        normals=np.ascontiguousarray(table[:, 3 + n_uv : 6 + n_uv]),
        uvs=np.ascontiguousarray(table[:, 3 : 3 + n_uv]) if uvs is not None else None,
        name=part.name,
    )


def _drop_bad_faces(
    positions: F32, faces: np.ndarray[Any, Any], counts: dict[str, int]
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """The faces left, and their normals (length twice the area)."""
    a, b, c = faces[:, 0], faces[:, 1], faces[:, 2]
    # Differences of float32 values and their products are exact in float64, so a zero area
    # here is a truly zero area (collinear corners), not a rounding accident.
    exact = positions.astype(np.float64)
    first = exact[a]
    normal = _cross(exact[b] - first, exact[c] - first)
    good = (a != b) & (b != c) & (a != c) & (np.einsum("ij,ij->i", normal, normal) > 0.0)
    if not good.all():
        counts["degenerate"] += len(faces) - int(np.count_nonzero(good))
        faces, normal = faces[good], normal[good]
    # Same corners in the same cyclic order: each rotation packed in a 64-bit key, the least
    # (the one starting at the smallest index) stands for the face.
    key: np.ndarray[Any, Any]
    if len(positions) < 2**21:
        a, b, c = faces[:, 0], faces[:, 1], faces[:, 2]
        key = np.minimum(np.minimum(_key(a, b, c), _key(b, c, a)), _key(c, a, b))
    else:
        rotations = [faces[:, [0, 1, 2]], faces[:, [1, 2, 0]], faces[:, [2, 0, 1]]]
        least = np.argmin(faces, axis=1)
        key = np.choose(least[:, None], rotations).astype(np.uint32)
    # Hashed rather than sorted: numbered in order of first use, so a face whose number is
    # above every earlier one's is the first of its kind.
    distinct, number = number_rows(key)
    if distinct == len(faces):
        return faces, normal  # the usual case: nothing to drop, no need to know which
    highest = np.maximum.accumulate(number)
    keep = np.ones(len(faces), dtype=bool)
    keep[1:] = highest[1:] > highest[:-1]
    counts["duplicate"] += len(faces) - int(np.count_nonzero(keep))
    return faces[keep], normal[keep]


def _key(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any], c: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Three indices below 2**21 in one int64."""
    key: np.ndarray[Any, Any] = (a << 42) | (b << 21) | c
    return key


def _cross(u: np.ndarray[Any, Any], v: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Row-wise cross product (np.cross spends most of its time on checks and copies)."""
    out = np.empty_like(u)
    out[:, 0] = u[:, 1] * v[:, 2] - u[:, 2] * v[:, 1]
    out[:, 1] = u[:, 2] * v[:, 0] - u[:, 0] * v[:, 2]
    out[:, 2] = u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0]
    return out


def _with_crease_normals(
    table: F32, faces: np.ndarray[Any, Any], face_normals: np.ndarray[Any, Any]
) -> tuple[F32, np.ndarray[Any, Any]]:
    """Append per-corner normals to ``table``: smooth across positions, hard at creases.

    Corners are smoothed over every face sharing the position (not just the vertex, so UV
    seams do not show as shading seams); a corner whose face turns more than the crease
    angle from that smooth normal takes the face's own normal.
    """
    points = np.ascontiguousarray(table[:, :3])  # float32: ample for directions
    corners = [points[faces[:, k]] for k in range(3)]
    # Edge k runs from corner k to corner k + 1.
    edges = [corners[(k + 1) % 3] - corners[k] for k in range(3)]
    area2 = np.sqrt(np.einsum("ij,ij->i", face_normals, face_normals))
    face_unit = face_normals / area2[:, None]
    # Weighted by the face's angle at the corner: unlike area weights, this does not depend on
    # how a flat side happens to be split into triangles. The angle between the edge arriving
    # (k - 1) and the one leaving (k) is the arctangent of their cross product's length (twice
    # the area, at every corner) over their dot product: both scale with the two edges'
    # lengths, which cancel, so no edge is normalised.
    angle = np.empty((len(faces), 3), dtype=np.float32)
    sine = area2.astype(np.float32)
    for k in range(3):
        np.arctan2(sine, -np.einsum("ij,ij->i", edges[k - 1], edges[k]), out=angle[:, k])
    _, position_id = number_rows(points)
    corner_pid = position_id[faces].ravel()
    # Component by component, each contiguous: numpy is slow on strided columns, and
    # gathering whole smooth rows per corner would make a three-row copy. float32 for the
    # weights and the crease test, like the angles: the sums are float64.
    unit_columns = face_unit.T.astype(np.float32)
    smooth = np.column_stack(
        [
            np.bincount(corner_pid, weights=(angle * unit_columns[k, :, None]).ravel(), minlength=len(table))
            for k in range(3)
        ]
    )
    length = np.sqrt(np.einsum("ij,ij->i", smooth, smooth))[:, None]
    smooth = np.divide(smooth, length, out=np.zeros_like(smooth), where=length > 0)
    smooth_columns = smooth.T.astype(np.float32)
    facing = np.zeros((len(faces), 3), dtype=np.float32)
    for k in range(3):
        facing += smooth_columns[k][corner_pid].reshape(-1, 3) * unit_columns[k, :, None]
    hard = facing < math.cos(math.radians(CREASE_DEGREES))
    smooth_table = np.hstack([table, smooth[position_id].astype(np.float32) + np.float32(0.0)])
    if not hard.any():
        return smooth_table, faces
    # Hard corners get vertices of their own with the face's normal, quantised so that
    # coplanar faces (normals equal up to rounding) share them.
    face_rows = np.broadcast_to(np.arange(len(faces))[:, None], hard.shape)[hard]
    quantised = np.round(face_unit[face_rows] * 4096.0) / 4096.0
    quantised /= np.linalg.norm(quantised, axis=1, keepdims=True)
    extra, inverse = weld(np.hstack([table[faces[hard]], quantised.astype(np.float32) + np.float32(0.0)]))
    faces = faces.copy()
    faces[hard] = len(smooth_table) + inverse.astype(np.int64)
    return np.vstack([smooth_table, extra]), faces
