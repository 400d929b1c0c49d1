"""Levels of detail: which levels a model gets, and decimating it to each with meshoptimizer.

**Levels.** :func:`plan` turns the triangle budgets (default 100k / 20k / 4k) into levels:
each level's target is its budget capped at the source's triangle count, and a level whose
target is not below the previous level's is left out, since it would repeat it. So a
3k-triangle model has one level (the source itself, with the first texture cap), and a
10k-triangle one has two (the source, then 4k with the 4k level's texture cap). Levels are
numbered 0, 1, … as emitted.

**Decimation.** Each level is made from the level before it (chained, for speed) by
meshoptimizer's ``meshopt_simplifyWithAttributes``, called through ctypes (the Python
package's wrapper for it passes the float arguments wrongly). Texture coordinates (weight
:data:`UV_WEIGHT`) and normals (:data:`NORMAL_WEIGHT`) are attributes of the error metric,
and vertices keep their own attributes, so UV seams, materials and textures survive on
every level. A part far above its target (:data:`PRESIMPLIFY_FACTOR`) is first brought to
twice the target on positions alone, which halves the time on million-triangle uploads.
A part above :data:`SPLIT_TRIANGLES` has each pass run on its two spatial halves at once,
one per core, with the vertices along the cut locked so that it stays closed: the
positions-only pass cuts across the longest axis and the attribute pass across the next,
so the first cut is decimated like the rest and only the second keeps the first pass's
density. The halves do not prune (a small bit the cut runs through could lose one side);
where that leaves them above the target, a pass over the whole part finishes.
A multi-part model shares the budget over its parts by their triangle counts.
The six vertices at the model's bounding box extremes are locked, so every level keeps the
bounds (still on the floor, still centred). Disconnected bits smaller than the current
error may be pruned. If the topology stops the simplifier above the target, the sloppy
simplifier finishes the job: a level is never above its budget.

**Error.** Reported as meshoptimizer's error for the collapse (position plus attribute
terms) in metres, summed along the chain, divided by the model's largest extent.

Every level is finally reordered for the GPU's vertex cache and vertex fetch, which also
drops vertices no triangle uses.
"""

from __future__ import annotations

import ctypes
import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from exhibits.meshopt import UNUSED, meshopt, number_rows
from exhibits.model import Model, Part

#: Weight of each texture coordinate, and of each normal component, against position error.
UV_WEIGHT = 1.0
NORMAL_WEIGHT = 0.5
#: Largest deformation the attribute-aware simplifier may make, relative to a part's extent,
#: before the sloppy simplifier takes over (pruning also stops at this error).
MAX_RELATIVE_ERROR = 0.5

#: A part with more than this many times its target's triangles is first simplified on
#: positions alone to twice the target, then with attributes.
PRESIMPLIFY_FACTOR = 4
#: A part with more triangles than this is decimated in two spatial halves at once, one per
#: core, the vertices along the cut locked.
SPLIT_TRIANGLES = 200_000

_SIMPLIFY_SPARSE = 1 << 1
_SIMPLIFY_ERROR_ABSOLUTE = 1 << 2
_SIMPLIFY_PRUNE = 1 << 3


@dataclass(frozen=True, slots=True)
class Level:
    """One planned level: its triangle target and its texture cap in pixels."""

    triangles: int
    texture_px: int


def plan(source_triangles: int, budgets: Sequence[int], texture_px: Sequence[int]) -> list[Level]:
    """The levels a model of ``source_triangles`` gets (rules in the module docstring)."""
    levels: list[Level] = []
    for budget, px in zip(budgets, texture_px, strict=True):
        target = min(budget, source_triangles)
        if levels and target >= levels[-1].triangles:
            continue
        levels.append(Level(target, px))
    return levels


def chain(
    model: Model, levels: Sequence[Level], *, on_level: Callable[[int], None] | None = None
) -> list[tuple[Model, float]]:
    """(model, relative error) for each level, each decimated from the one before."""
    extent = _largest_extent(model)
    locked = _extreme_vertices(model)
    out: list[tuple[Model, float]] = []
    current, error = model, 0.0
    for number, level in enumerate(levels):
        if on_level is not None:
            on_level(number)
        if level.triangles < current.triangles:
            current, step, locked = decimate(current, level.triangles, locked=locked)
            error += step
        # Compact before the next level: the simplifier's cost grows with the vertex count.
        current, locked = optimise(current, locked)
        out.append((current, error / extent if extent > 0 else 0.0))
    return out


def decimate(
    model: Model, target: int, *, locked: list[np.ndarray[Any, Any]]
) -> tuple[Model, float, list[np.ndarray[Any, Any]]]:
    """``model`` with at most ``target`` triangles, its absolute error, and the lock masks
    carried to the kept vertices."""
    total = model.triangles
    shares = [target * part.triangles // total for part in model.parts]
    if not any(shares):
        largest = max(range(len(shares)), key=lambda i: model.parts[i].triangles)
        shares[largest] = target
    parts: list[Part] = []
    masks: list[np.ndarray[Any, Any]] = []
    worst = 0.0
    for part, share, lock in zip(model.parts, shares, locked, strict=True):
        if share == 0:
            continue
        if share >= part.triangles:
            parts.append(part)
            masks.append(lock)
            continue
        indices, error = simplify(part, share, lock)
        worst = max(worst, error)
        parts.append(
            Part(
                positions=part.positions,
                indices=indices,
                material=part.material,
                normals=part.normals,
                uvs=part.uvs,
                name=part.name,
            )
        )
        masks.append(lock)
    return Model(parts), worst, masks


def simplify(part: Part, target: int, lock: np.ndarray[Any, Any]) -> tuple[np.ndarray[Any, Any], float]:
    """New (m, 3) indices into ``part``'s vertices with m ≤ ``target``, and the absolute error."""
    indices = np.ascontiguousarray(part.indices, dtype=np.uint32).ravel()
    positions = np.ascontiguousarray(part.positions, dtype=np.float32)
    columns = []
    weights = []
    if part.uvs is not None:
        columns.append(part.uvs)
        weights += [UV_WEIGHT] * 2
    if part.normals is not None:
        columns.append(part.normals)
        weights += [NORMAL_WEIGHT] * 3
    attributes = np.ascontiguousarray(
        np.hstack(columns) if columns else np.zeros((len(positions), 0)), np.float32
    )
    # Per-axis sizes from a transposed copy: numpy reduces an (n, 3) array along its first axis slowly.
    rows = np.ascontiguousarray(positions.T)
    mesh = _Mesh(
        positions,
        attributes,
        np.asarray(weights, dtype=np.float32),
        np.ascontiguousarray(lock, np.uint8),
        rows.max(axis=1) - rows.min(axis=1) if len(positions) else np.zeros(3, np.float32),
    )
    error = 0.0
    options = _SIMPLIFY_ERROR_ABSOLUTE | _SIMPLIFY_PRUNE
    # Cut across the longest axis first, then across the next, so that no cut stays locked
    # through both passes.
    axes = [int(axis) for axis in np.argsort(mesh.size)[::-1]]
    # A part split in halves: each vertex's position number, for the lock along each cut.
    position = number_rows(positions)[1] if part.triangles > SPLIT_TRIANGLES else None
    if weights and part.triangles > PRESIMPLIFY_FACTOR * target:
        # The attribute metric doubles the cost on big meshes; positions alone (UV seams are
        # still kept: they are topology) take the bulk of the way.
        if position is not None:
            indices, error = mesh.collapse_halves(
                indices, 2 * target, with_attributes=False, options=options, axis=axes[0], position=position
            )
        else:
            indices, error = mesh.collapse(indices, 2 * target, with_attributes=False, options=options)
        options |= _SIMPLIFY_SPARSE
    if position is not None:
        indices, step = mesh.collapse_halves(
            indices, target, with_attributes=bool(weights), options=options, axis=axes[1], position=position
        )
        if indices.size > target * 3:
            # The halves do not prune; the whole part may, where many small bits stall them.
            indices, more = mesh.collapse(
                indices, target, with_attributes=bool(weights), options=options | _SIMPLIFY_SPARSE
            )
            step += more
    else:
        indices, step = mesh.collapse(indices, target, with_attributes=bool(weights), options=options)
    error += step
    if indices.size > target * 3:
        # Topology (or the error cap) stopped the careful simplifier; cluster the rest away.
        indices, step = mesh.sloppy(indices, target)
        error += step
        # Last resort, never seen in practice: the budget is a hard limit.
        indices = indices[: target * 3]
    return indices.reshape(-1, 3).copy(), error


@dataclass(frozen=True, slots=True)
class _Mesh:
    """One part's vertex data as the C functions take it."""

    positions: np.ndarray[Any, Any]
    attributes: np.ndarray[Any, Any]
    weights: np.ndarray[Any, Any]
    lock: np.ndarray[Any, Any]
    #: Size of the vertices' bounding box along each axis.
    size: np.ndarray[Any, Any]

    @property
    def extent(self) -> float:
        return float(self.size.max()) or 1.0

    def collapse(
        self,
        indices: np.ndarray[Any, Any],
        target: int,
        *,
        with_attributes: bool,
        options: int,
        lock: np.ndarray[Any, Any] | None = None,
    ) -> tuple[np.ndarray[Any, Any], float]:
        """``meshopt_simplifyWithAttributes`` towards ``target`` triangles; absolute error.

        ``lock`` replaces the part's lock mask."""
        lock = self.lock if lock is None else lock
        destination = np.empty_like(indices)
        error = ctypes.c_float(0.0)
        count = len(self.weights) if with_attributes else 0
        kept = meshopt().simplify(
            destination.ctypes.data,
            indices.ctypes.data,
            indices.size,
            self.positions.ctypes.data,
            len(self.positions),
            12,
            self.attributes.ctypes.data if count else None,
            4 * count,
            self.weights.ctypes.data if count else None,
            count,
            lock.ctypes.data,
            target * 3,
            MAX_RELATIVE_ERROR * self.extent,
            options,
            ctypes.byref(error),
        )
        return destination[:kept], float(error.value)

    def collapse_halves(
        self,
        indices: np.ndarray[Any, Any],
        target: int,
        *,
        with_attributes: bool,
        options: int,
        axis: int,
        position: np.ndarray[Any, Any],
    ) -> tuple[np.ndarray[Any, Any], float]:
        """:meth:`collapse` run on the two halves of the triangles on either side of their
        median centroid along ``axis`` at once (ctypes releases the GIL, so each gets a core);
        absolute error. ``position`` numbers each vertex's position (as :func:`number_rows`).

        Every position both halves use is locked, so the cut stays closed. Neither half
        prunes: it might prune its side of a small component the cut runs through and leave
        the other side open.
        """
        faces = indices.reshape(-1, 3)
        along = np.ascontiguousarray(self.positions[:, axis])
        # Three times the centroid: the ordering is all that matters.
        centroid = along[faces[:, 0]] + along[faces[:, 1]] + along[faces[:, 2]]
        first = centroid < np.partition(centroid, len(centroid) // 2)[len(centroid) // 2]
        halves = [np.ascontiguousarray(faces[first]).ravel(), np.ascontiguousarray(faces[~first]).ravel()]
        seen = np.zeros((2, int(position.max()) + 1), dtype=bool)
        for side, half in enumerate(halves):
            seen[side, position[half]] = True
        lock = self.lock | (seen[0] & seen[1])[position].view(np.uint8)
        low_target = target * (halves[0].size // 3) // len(faces)
        options = (options & ~_SIMPLIFY_PRUNE) | _SIMPLIFY_SPARSE
        with ThreadPoolExecutor(max_workers=1) as pool:
            high = pool.submit(
                self.collapse,
                halves[1],
                target - low_target,
                with_attributes=with_attributes,
                options=options,
                lock=lock,
            )
            low = self.collapse(
                halves[0], low_target, with_attributes=with_attributes, options=options, lock=lock
            )
            high_result = high.result()
        return np.concatenate([low[0], high_result[0]]), max(low[1], high_result[1])

    def sloppy(self, indices: np.ndarray[Any, Any], target: int) -> tuple[np.ndarray[Any, Any], float]:
        """``meshopt_simplifySloppy`` to at most ``target`` triangles; absolute error."""
        source = np.ascontiguousarray(indices)
        destination = np.empty_like(source)
        error = ctypes.c_float(0.0)
        kept = meshopt().sloppy(
            destination.ctypes.data,
            source.ctypes.data,
            source.size,
            self.positions.ctypes.data,
            len(self.positions),
            12,
            target * 3,
            math.inf,
            ctypes.byref(error),
        )
        # The sloppy simplifier's error is relative to the part's extent.
        return destination[:kept], float(error.value) * self.extent


def optimise(
    model: Model, locked: list[np.ndarray[Any, Any]] | None = None
) -> tuple[Model, list[np.ndarray[Any, Any]]]:
    """``model`` with each part's triangles in vertex-cache order and vertices in fetch order,
    unused vertices dropped; and the lock masks (all clear if not given) moved along."""
    api = meshopt()
    parts = []
    masks = []
    for number, part in enumerate(model.parts):
        vertex_count = part.vertices
        indices = np.ascontiguousarray(part.indices, dtype=np.uint32).ravel()
        ordered = np.empty_like(indices)
        api.cache(ordered.ctypes.data, indices.ctypes.data, indices.size, vertex_count)
        remap = np.empty(vertex_count, dtype=np.uint32)
        kept = api.fetch_remap(remap.ctypes.data, ordered.ctypes.data, ordered.size, vertex_count)
        used = np.flatnonzero(remap != UNUSED)
        source = np.empty(kept, dtype=np.intp)
        source[remap[used]] = used
        order = _Reorder(source)
        parts.append(
            Part(
                positions=order.apply(part.positions),
                indices=remap[ordered].reshape(-1, 3),
                material=part.material,
                normals=None if part.normals is None else order.apply(part.normals),
                uvs=None if part.uvs is None else order.apply(part.uvs),
                name=part.name,
            )
        )
        masks.append(order.apply(locked[number]) if locked is not None else np.zeros(kept, dtype=np.uint8))
    return Model(parts), masks


@dataclass(frozen=True, slots=True)
class _Reorder:
    """Moves per-vertex values to their new places after a vertex fetch remap."""

    #: For each kept vertex, in its new place, its old number.
    source: np.ndarray[Any, Any]

    def apply(self, values: np.ndarray[Any, Any]) -> Any:
        return values[self.source]


def _largest_extent(model: Model) -> float:
    low, high = model.bounds()
    return max(h - lo for lo, h in zip(low, high, strict=True))


def _extreme_vertices(model: Model) -> list[np.ndarray[Any, Any]]:
    """Per part, a lock mask holding one vertex at each of the model's six box extremes."""
    masks = [np.zeros(part.vertices, dtype=np.uint8) for part in model.parts]
    for axis in range(3):
        for pick in (np.argmin, np.argmax):
            best: tuple[float, int, int] | None = None
            for number, part in enumerate(model.parts):
                index = int(pick(part.positions[:, axis]))
                value = float(part.positions[index, axis])
                better = best is None or (value < best[0] if pick is np.argmin else value > best[0])
                if better:
                    best = (value, number, index)
            if best is not None:
                masks[best[1]][best[2]] = 1
    return masks
