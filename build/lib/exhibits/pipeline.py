"""The 3D ingest pipeline: from an uploaded file (or a built Model) to GLB levels of detail.

:func:`ingest` runs, in order, each step reported to ``progress(fraction, step)``:

``load``
    detect the format, unpack a zip safely, read with trimesh (:mod:`exhibits.formats`);
    refuse uploads over :attr:`Limits.max_upload_bytes` and models over
    :attr:`Limits.max_triangles`;
``normalise``
    unit to metres, +Y up, centred on the floor, inside the booth envelope
    (:mod:`exhibits.normalise` documents the unit and up-axis rules);
``clean``
    merge duplicates, drop degenerate and duplicate faces, compute missing normals;
``lod 0`` … ``lod n``
    decimate to each level's triangle budget (:mod:`exhibits.lod` documents which levels
    are made);
``write``
    cap each level's textures (:mod:`exhibits.textures`; resized in a thread from the
    ``normalise`` step on, while the model is cleaned) and write it as a quantised GLB
    (:mod:`exhibits.glb`) with its metadata and sha256; a level's error is its decimation
    error plus the quantisation's bound (:data:`~exhibits.glb.POSITION_ERROR`, so about
    1.3e-5 for a level that is the source itself);

then ``done`` at 1.0. :func:`ingest_quietly` is :func:`ingest` for users: what libraries
log or print becomes warning lines of the result. :func:`ingest_model` runs the same
steps on a Model built in code (the procedural demo models). Everything is synchronous
CPU work meant for a process pool; nothing is written to disk. Every refusal is a
:class:`~server.errors.ModelError`.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from exhibits import lod
from exhibits.capture import captured
from exhibits.formats import load
from exhibits.glb import POSITION_ERROR, uint16_parts, write_glb
from exhibits.model import IngestResult, Lod, LodInfo, Model, Part
from exhibits.normalise import (
    UNITS,
    check_finite,
    choose_unit,
    choose_up,
    clean,
    largest_extent,
    parse_envelope,
    parse_unit,
    parse_up,
    place,
)
from exhibits.settings import MAX_TRIANGLES, MAX_UPLOAD_BYTES
from exhibits.textures import cap_each, cap_textures, texture_stats
from server.errors import ModelError

#: ``progress(fraction from 0 to 1, step name)``.
Progress = Callable[[float, str], None]


@dataclass(frozen=True, kw_only=True, slots=True)
class Limits:
    """What the pipeline accepts and makes. Sizes in bytes."""

    #: A bigger upload is ``model.too_large``.
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    #: More zip entries is ``model.too_many_entries``.
    max_archive_entries: int = 512
    #: More uncompressed bytes in a zip in total is ``model.archive_too_large``.
    max_unpacked_bytes: int = 512 * 2**20
    #: A higher uncompressed/compressed ratio, per entry or in total, is ``model.archive_too_large``.
    max_ratio: float = 100.0
    #: More triangles in the loaded model is ``model.too_many_triangles``.
    max_triangles: int = MAX_TRIANGLES
    #: Triangle budget of each level of detail, largest first.
    lod_triangles: tuple[int, ...] = (100_000, 20_000, 4_000)
    #: Longest texture side in pixels on each level (same length as ``lod_triangles``).
    lod_texture_px: tuple[int, ...] = (2048, 1024, 512)

    def __post_init__(self) -> None:
        if not self.lod_triangles or len(self.lod_triangles) != len(self.lod_texture_px):
            raise ValueError("lod_triangles and lod_texture_px must be non-empty and of the same length")
        if min(self.lod_triangles) < 1 or min(self.lod_texture_px) < 1:
            raise ValueError("level budgets and texture sizes must be positive")


def ingest(
    data: bytes,
    filename: str,
    *,
    unit: str | None = None,
    up: str | None = None,
    envelope: tuple[float, float, float] | None = None,
    limits: Limits = Limits(),
    progress: Progress | None = None,
) -> IngestResult:
    """Levels of detail and metadata for the uploaded file ``data`` named ``filename``.

    ``unit`` (mm, cm, m, in) and ``up`` (y, z) override the guesses; ``envelope`` (metres,
    width x height x depth) is the booth space the model is scaled down to fit.
    """
    options = _Options(parse_unit(unit), parse_up(up), parse_envelope(envelope))
    report = progress or _silent
    if len(data) > limits.max_upload_bytes:
        raise ModelError(
            "model.too_large",
            f"the upload is {len(data)} bytes; at most {limits.max_upload_bytes} are accepted",
        )
    report(0.0, "load")
    loaded = load(
        data,
        filename,
        max_entries=limits.max_archive_entries,
        max_unpacked_bytes=limits.max_unpacked_bytes,
        max_ratio=limits.max_ratio,
    )
    return _run(loaded.model, loaded.format, loaded.declared_unit, options, limits, report, loaded.warnings)


def ingest_quietly(data: bytes, filename: str, **options: Any) -> IngestResult:
    """:func:`ingest` with what libraries log, warn or print meanwhile turned into one
    warning line each in the result (:mod:`exhibits.capture`): no traceback reaches a user."""
    with captured() as said:
        result = ingest(data, filename, **options)
    return dataclasses.replace(result, warnings=[*result.warnings, *said.summary()])


def ingest_model(
    model: Model,
    *,
    source_format: str = "procedural",
    unit: str | None = "m",
    up: str | None = "y",
    envelope: tuple[float, float, float] | None = None,
    limits: Limits = Limits(),
    progress: Progress | None = None,
) -> IngestResult:
    """:func:`ingest` from the ``normalise`` step on, for a Model built in code.

    ``model`` itself is left as it was.
    """
    options = _Options(parse_unit(unit), parse_up(up), parse_envelope(envelope))
    report = progress or _silent
    report(0.0, "load")
    copy = Model([Part(p.positions, p.indices, p.material, p.normals, p.uvs, p.name) for p in model.parts])
    if not copy.parts or not copy.vertices:
        raise ModelError("model.empty", "the model has no geometry")
    if not copy.triangles:
        raise ModelError("model.no_faces", "the model has vertices but no faces")
    return _run(copy, source_format, None, options, limits, report, [])


@dataclass(frozen=True, slots=True)
class _Options:
    unit: str | None
    up: str | None
    envelope: tuple[float, float, float] | None


def _silent(fraction: float, step: str) -> None:
    """The progress callback when none is given."""


def _run(
    model: Model,
    fmt: str,
    declared_unit: str | None,
    options: _Options,
    limits: Limits,
    report: Progress,
    notes: Sequence[str],
) -> IngestResult:
    warnings = list(notes)
    source_triangles = model.triangles
    if source_triangles > limits.max_triangles:
        raise ModelError(
            "model.too_many_triangles",
            f"the model has {source_triangles} triangles; at most {limits.max_triangles} are accepted",
        )
    check_finite(model)

    # Textures are resized from the source for every level, so they need no geometry: Pillow
    # works on the other core while the model is cleaned, leaving both cores to the
    # simplifier. The sizes come from the source's plan; one that cleaning changes is capped
    # when its level is written.
    planned = lod.plan(source_triangles, limits.lod_triangles, limits.lod_texture_px)
    textures = {p.material.base_color_texture for p in model.parts if p.material.base_color_texture}
    with ThreadPoolExecutor(max_workers=1) as pool:
        capping = pool.submit(cap_each, textures, [level.texture_px for level in planned])
        placed = _place_and_clean(model, fmt, declared_unit, options, report)
        warnings += placed.warnings
        cleaned = placed.model
        levels = lod.plan(cleaned.triangles, limits.lod_triangles, limits.lod_texture_px)
        span = 0.5 / len(levels)
        made = lod.chain(cleaned, levels, on_level=lambda n: report(0.35 + span * n, f"lod {n}"))
        report(0.85, "write")
        capped = capping.result()

    lods = []
    for number, ((level_model, error), level) in enumerate(zip(made, levels, strict=True)):
        # Cut as the writer cuts it, so that the vertex count is the file's.
        textured = uint16_parts(cap_textures(level_model, level.texture_px, capped.get(level.texture_px)))
        glb = write_glb(textured)
        texture_bytes, texture_px = texture_stats(textured)
        info = LodInfo(
            level=number,
            triangles=textured.triangles,
            vertices=textured.vertices,
            bytes=len(glb),
            texture_bytes=texture_bytes,
            texture_px=texture_px,
            # Decimation plus the position quantisation of the GLB writer.
            error=error + POSITION_ERROR,
            sha256=hashlib.sha256(glb).hexdigest(),
        )
        lods.append(Lod(info=info, glb=glb))
    report(1.0, "done")
    return IngestResult(
        source_format=fmt,
        source_triangles=source_triangles,
        unit=placed.unit,
        unit_guessed=placed.unit_guessed,
        up=placed.up,
        up_guessed=placed.up_guessed,
        scale=placed.scale,
        bounds=cleaned.bounds(),
        lods=lods,
        warnings=warnings,
    )


@dataclass(frozen=True, slots=True)
class _Placed:
    """The ``normalise`` and ``clean`` steps' model, how it was placed, and their notes."""

    model: Model
    unit: str
    unit_guessed: bool
    up: str
    up_guessed: bool
    scale: float
    warnings: list[str]


def _place_and_clean(
    model: Model, fmt: str, declared_unit: str | None, options: _Options, report: Progress
) -> _Placed:
    """The ``normalise`` and ``clean`` steps; ``model`` is placed in place."""
    warnings: list[str] = []
    report(0.2, "normalise")
    extent = largest_extent(model)
    unit, unit_guessed = choose_unit(fmt, extent, hint=options.unit, declared=declared_unit)
    up, up_guessed = choose_up(fmt, hint=options.up)
    if unit_guessed:
        warnings.append(
            f"unit guessed as {unit} (largest extent {extent:g} units); give the unit to override"
        )
    if up_guessed:
        warnings.append(f"up axis taken as {up} by convention for {fmt}; give the up axis to override")
    scale = place(model, metres_per_unit=UNITS[unit], up=up, envelope=options.envelope)
    if scale < UNITS[unit] * (1 - 1e-9):
        warnings.append(f"scaled down to {scale / UNITS[unit]:.3g}x to fit the booth envelope")

    report(0.3, "clean")
    cleaned, clean_notes = clean(model)
    warnings += clean_notes
    # Cleaning can drop a vertex that set the bounds; stand the model on the floor again.
    scale *= place(cleaned, metres_per_unit=1.0, up="y", envelope=options.envelope)
    return _Placed(cleaned, unit, unit_guessed, up, up_guessed, scale, warnings)
