"""Mesh primitives and the builder the procedural demo models are assembled with.

Owns: placing trimesh primitives (boxes, cylinders, frustums, cones, capsules, annuli,
spheres, extruded outlines) in space, grouping them by :class:`Material`, shading them
with crease-angle normals, and fitting the result into an exhibit's envelope as a
:class:`~exhibits.model.Model` (metres, +Y up, standing on y = 0, centred on x and z).
What the objects look like is ``exhibits.procedural``'s business; the hall scene reuses
:func:`crease_normals` and :func:`rotate_y` for its own furniture and for turning
exhibits into their booths.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import trimesh
from trimesh import creation

from exhibits.model import F32, U32, Material, Model, Part

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Vec3 = tuple[float, float, float]


def rotate_y(degrees: float) -> F64:
    """3x3 rotation about +Y, the same sense as three.js ``rotation.y`` and glTF."""
    t = math.radians(degrees)
    c, s = math.cos(t), math.sin(t)
    rotation: F64 = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
    return rotation


def _rotation(x: float, y: float, z: float) -> F64:
    """3x3 rotation applied as X, then Y, then Z (degrees)."""
    ax, az = math.radians(x), math.radians(z)
    rx: F64 = np.array([[1, 0, 0], [0, math.cos(ax), -math.sin(ax)], [0, math.sin(ax), math.cos(ax)]])
    rz: F64 = np.array([[math.cos(az), -math.sin(az), 0], [math.sin(az), math.cos(az), 0], [0, 0, 1]])
    turned: F64 = rz @ rotate_y(y) @ rx
    return turned


def crease_normals(
    vertices: npt.ArrayLike, faces: npt.ArrayLike, *, crease_deg: float = 40.0
) -> tuple[F64, F64, I64]:
    """Per-corner normals that stay smooth across edges flatter than ``crease_deg``.

    Returns welded ``(positions, normals, faces)``: a vertex is split only where its
    faces disagree by more than the crease, so a cylinder's side is smooth while its
    caps stay flat. Degenerate (zero-area) faces are dropped. Pure numpy, because
    trimesh's own vertex normals want scipy, which this project does not install.
    """
    v = np.asarray(vertices, dtype=np.float64).reshape(-1, 3)
    f = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    tri = v[f]
    cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    area2 = np.linalg.norm(cross, axis=1)
    keep = area2 > 1e-12
    f, cross, area2 = f[keep], cross[keep], area2[keep]
    if not len(f):
        return np.zeros((0, 3)), np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64)
    unit = cross / area2[:, None]
    corner_v = f.reshape(-1)
    corner_f = np.repeat(np.arange(len(f)), 3)
    # Pair every corner with every corner at the same vertex (groups are small: the
    # valence of a vertex), then keep the pairs whose faces are within the crease.
    order = np.argsort(corner_v, kind="stable")
    sorted_v = corner_v[order]
    starts = np.flatnonzero(np.r_[True, sorted_v[1:] != sorted_v[:-1]])
    sizes = np.diff(np.r_[starts, len(sorted_v)])
    group = np.repeat(np.arange(len(starts)), sizes)
    fan = sizes[group]
    a = np.repeat(np.arange(len(sorted_v)), fan)
    b = starts[group[a]] + np.arange(len(a)) - np.repeat(np.cumsum(fan) - fan, fan)
    fa, fb = corner_f[order[a]], corner_f[order[b]]
    near = np.einsum("ij,ij->i", unit[fa], unit[fb]) >= math.cos(math.radians(crease_deg))
    summed = np.zeros((len(sorted_v), 3))
    # Area-weighted: small sliver faces barely bend the shading of big ones.
    np.add.at(summed, a[near], cross[fb[near]])
    normals = np.empty_like(summed)
    normals[order] = summed / np.linalg.norm(summed, axis=1)[:, None]
    key = np.column_stack([corner_v, np.round(normals * 1e4).astype(np.int64)])
    _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    return v[corner_v[first]], normals[first], inverse.reshape(-1, 3).astype(np.int64)


Shaded = tuple[F64, F64, I64]


@functools.lru_cache(maxsize=64)
def _unit(kind: str, sections: int) -> Shaded:
    """A shaded unit primitive, made once: boxes and cylinders are most of every model,
    and scaling a cached one is far cheaper than asking trimesh for a new one each time.

    ``box`` is 1 m on each side around the origin; ``cylinder`` has radius 1 and runs
    from z = 0 to z = 1; ``sphere`` has radius 1 (``sections`` is its subdivision level).
    """
    if kind == "box":
        mesh = creation.box(extents=(1.0, 1.0, 1.0))
    elif kind == "cylinder":
        mesh = creation.cylinder(radius=1.0, height=1.0, sections=sections)
        mesh.apply_translation((0.0, 0.0, 0.5))
    else:
        mesh = creation.icosphere(subdivisions=sections, radius=1.0)
    shaded = crease_normals(mesh.vertices, mesh.faces)
    for array in shaded:
        array.flags.writeable = False
    return shaded


def _towards(direction: npt.ArrayLike) -> F64:
    """3x3 rotation taking +Z to ``direction`` (Rodrigues; the antiparallel case flips about X)."""
    target = np.asarray(direction, dtype=np.float64)
    target = target / np.linalg.norm(target)
    axis = np.cross((0.0, 0.0, 1.0), target)
    sin, cos = float(np.linalg.norm(axis)), float(target[2])
    if sin < 1e-9:
        return np.eye(3) if cos > 0 else np.diag([1.0, -1.0, -1.0])
    k = axis / sin
    cross: F64 = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    turned: F64 = np.eye(3) + sin * cross + (1 - cos) * (cross @ cross)
    return turned


def _placed(mesh: trimesh.Trimesh, at: Sequence[float], turn: Sequence[float]) -> trimesh.Trimesh:
    """Turn a mesh by ``turn`` degrees (X, then Y, then Z) and move its origin to ``at``."""
    matrix = np.eye(4)
    matrix[:3, :3] = _rotation(*turn)
    matrix[:3, 3] = at
    mesh.apply_transform(matrix)
    return mesh


def _along(mesh: trimesh.Trimesh, a: Sequence[float], b: Sequence[float]) -> trimesh.Trimesh:
    """Turn a mesh built along +Z from the origin so that +Z points from a to b."""
    matrix = np.eye(4)
    matrix[:3, :3] = _towards(np.subtract(b, a, dtype=np.float64))
    matrix[:3, 3] = a
    mesh.apply_transform(matrix)
    return mesh


class ShapeBuilder:
    """Collects placed primitives per material and turns them into a fitted Model.

    Coordinates are metres, +Y up, the object's front towards +Z. Each method adds one
    primitive; ``build`` fits and merges them, one Part per material in the order the
    materials were first used (so the output is deterministic).
    """

    def __init__(self, *, sections: int = 16) -> None:
        #: Default segment count of round primitives: enough to read as round at booth
        #: distance while a model stays within a few thousand triangles.
        self.sections = sections
        self._pieces: dict[Material, list[Shaded]] = {}

    def _add(self, material: Material, shaded: Shaded, linear: F64, offset: Sequence[float]) -> None:
        positions, normals, faces = shaded
        # Normals follow the inverse transpose, which keeps them perpendicular to the
        # surface under the non-uniform scales that turn a unit box into a slab.
        turned = normals @ np.linalg.inv(linear)
        turned /= np.linalg.norm(turned, axis=1)[:, None]
        if np.linalg.det(linear) < 0:
            faces = faces[:, ::-1]
        placed: F64 = positions @ linear.T + np.asarray(offset, dtype=np.float64)
        self._pieces.setdefault(material, []).append((placed, turned, faces))

    def mesh(self, material: Material, mesh: trimesh.Trimesh, *, crease_deg: float = 40.0) -> None:
        """Add an already placed trimesh mesh (trimesh's primitives wind outwards)."""
        shaded = crease_normals(mesh.vertices, mesh.faces, crease_deg=crease_deg)
        if len(shaded[2]):
            self._pieces.setdefault(material, []).append(shaded)

    def box(self, material: Material, size: Vec3, at: Vec3, *, turn: Vec3 = (0.0, 0.0, 0.0)) -> None:
        """A box of ``size`` (x, y, z) centred at ``at``, turned by ``turn`` degrees (X, Y, Z)."""
        self._add(material, _unit("box", 0), _rotation(*turn) @ np.diag(size), at)

    def block(self, material: Material, size: Vec3, base: Vec3, *, yaw: float = 0.0) -> None:
        """A box standing on ``base`` (the centre of its bottom face), turned ``yaw`` about Y."""
        centre = (base[0], base[1] + size[1] / 2, base[2])
        self.box(material, size, centre, turn=(0.0, yaw, 0.0))

    def cylinder(
        self, material: Material, radius: float, a: Vec3, b: Vec3, *, sections: int | None = None
    ) -> None:
        """A closed cylinder from point ``a`` to point ``b``."""
        axis = np.subtract(b, a, dtype=np.float64)
        linear = _towards(axis) @ np.diag([radius, radius, float(np.linalg.norm(axis))])
        self._add(material, _unit("cylinder", sections or self.sections), linear, a)

    def frustum(
        self,
        material: Material,
        r0: float,
        r1: float,
        a: Vec3,
        b: Vec3,
        *,
        sections: int | None = None,
    ) -> None:
        """A truncated cone, radius ``r0`` at ``a`` and ``r1`` at ``b`` (towers, hoppers)."""
        length = float(np.linalg.norm(np.subtract(b, a)))
        profile = [[0.0, 0.0], [r0, 0.0], [r1, length], [0.0, length]]
        mesh = creation.revolve(profile, sections=sections or self.sections)
        self.mesh(material, _along(mesh, a, b))

    def cone(
        self, material: Material, radius: float, a: Vec3, b: Vec3, *, sections: int | None = None
    ) -> None:
        """A cone with its base centred on ``a`` and its apex at ``b`` (tree crowns, nose cones)."""
        length = float(np.linalg.norm(np.subtract(b, a)))
        mesh = creation.cone(radius=radius, height=length, sections=sections or self.sections)
        self.mesh(material, _along(mesh, a, b))

    def capsule(
        self, material: Material, radius: float, a: Vec3, b: Vec3, *, count: int | None = None
    ) -> None:
        """A cylinder with hemispherical ends whose sphere centres are ``a`` and ``b`` (tanks)."""
        length = float(np.linalg.norm(np.subtract(b, a)))
        n = count or self.sections
        mesh = creation.capsule(height=length, radius=radius, count=[n, max(6, n // 2)])
        mesh.apply_translation([0.0, 0.0, length / 2])
        self.mesh(material, _along(mesh, a, b))

    def annulus(
        self,
        material: Material,
        r_in: float,
        r_out: float,
        a: Vec3,
        b: Vec3,
        *,
        sections: int | None = None,
    ) -> None:
        """A thick ring from ``a`` to ``b`` (flanges, platforms around a column)."""
        mesh = creation.annulus(r_min=r_in, r_max=r_out, segment=[a, b], sections=sections or self.sections)
        self.mesh(material, mesh)

    def sphere(self, material: Material, radius: float, at: Vec3, *, subdivisions: int = 1) -> None:
        """An icosphere (shrubs, hubs, pipe elbows)."""
        self._add(material, _unit("sphere", subdivisions), np.eye(3) * radius, at)

    def prism(
        self,
        material: Material,
        outline: Sequence[tuple[float, float]],
        depth: float,
        at: Vec3,
        *,
        turn: Vec3 = (0.0, 0.0, 0.0),
        taper: float = 1.0,
    ) -> None:
        """A convex outline in the XY plane extruded ``depth`` along +Z, then placed.

        ``taper`` scales the far end's outline (towards +Z) relative to the near end, which
        makes blades and roofs out of one outline. The outline must be convex and
        counter-clockwise: it is fan-triangulated, which avoids needing shapely.
        """
        points = np.asarray(outline, dtype=np.float64)
        fan = np.array([[0, i, i + 1] for i in range(1, len(points) - 1)], dtype=np.int64)
        mesh = creation.extrude_triangulation(points, fan, height=depth)
        if taper != 1.0:
            scale = 1.0 + (taper - 1.0) * mesh.vertices[:, 2] / depth
            mesh.vertices[:, :2] *= scale[:, None]
        self.mesh(material, _placed(mesh, at, turn), crease_deg=30.0)

    def pipe(self, material: Material, radius: float, points: Sequence[Vec3]) -> None:
        """A pipe run through ``points``, with a ball at each bend so joints look closed."""
        for a, b in itertools.pairwise(points):
            self.cylinder(material, radius, a, b, sections=8)
        for joint in points[1:-1]:
            self.sphere(material, radius, joint, subdivisions=0)

    def build(self, envelope: Vec3, *, margin: float = 0.999) -> Model:
        """The Model fitted into ``envelope`` (w, h, d): uniformly shrunk if needed, never
        enlarged, then moved to stand on y = 0 centred on x and z. A shrunk model fills
        ``margin`` (0.999) of the envelope, so float32 rounding keeps it inside.
        """
        everything = [p for pieces in self._pieces.values() for p, _, _ in pieces]
        if not everything:
            return Model(parts=[])
        stacked = np.concatenate(everything)
        low, high = stacked.min(axis=0), stacked.max(axis=0)
        extent = np.maximum(high - low, 1e-9)
        scale = min(1.0, *(margin * np.asarray(envelope, dtype=np.float64) / extent))
        offset = -np.array([(low[0] + high[0]) / 2, low[1], (low[2] + high[2]) / 2])
        parts = []
        for index, (material, pieces) in enumerate(self._pieces.items()):
            positions, normals, faces, base = [], [], [], 0
            for p, n, f in pieces:
                positions.append((p + offset) * scale)
                normals.append(n)
                faces.append(f + base)
                base += len(p)
            part_positions: F32 = np.concatenate(positions).astype(np.float32)
            part_normals: F32 = np.concatenate(normals).astype(np.float32)
            part_faces: U32 = np.concatenate(faces).astype(np.uint32)
            # Translating before scaling keeps the floor exact: y - low is never below 0.0.
            parts.append(
                Part(
                    positions=part_positions,
                    indices=part_faces,
                    material=material,
                    normals=part_normals,
                    name=f"{material.name}-{index}",
                )
            )
        return Model(parts=parts)
