"""Procedural 3D models for the demo exhibits: one recognisable object per category.

Owns the choice of model and its variation: :func:`demo_model` draws an exhibit's category's
object (the drawing functions are in :mod:`exhibits.procedural_energy` and
:mod:`exhibits.procedural_industry`, the shared materials in :mod:`exhibits.palette`) from a
random generator seeded by the exhibit's id, so the same exhibit always gets byte-identical
arrays while two exhibits of one category differ in proportions, counts and accent colours.
Geometry is assembled with :class:`exhibits.shapes.ShapeBuilder` and fitted into the
exhibit's envelope.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable

from exhibits.catalog import Category, Exhibit
from exhibits.model import Model
from exhibits.procedural_energy import battery_swap, hydrogen, smart_grid, solar, storage, wind
from exhibits.procedural_industry import ccus, green_building, materials, transport, waste, water
from exhibits.shapes import ShapeBuilder

#: A category's drawing: (builder, generator, width, height, depth of the envelope).
Draw = Callable[[ShapeBuilder, random.Random, float, float, float], None]

DRAW: dict[Category, Draw] = {
    Category.HYDROGEN: hydrogen,
    Category.STORAGE: storage,
    Category.BATTERY_SWAP: battery_swap,
    Category.SOLAR: solar,
    Category.WIND: wind,
    Category.SMART_GRID: smart_grid,
    Category.GREEN_BUILDING: green_building,
    Category.CCUS: ccus,
    Category.WASTE: waste,
    Category.WATER: water,
    Category.TRANSPORT: transport,
    Category.MATERIALS: materials,
}


def demo_model(exhibit: Exhibit, *, sections: int = 16) -> Model:
    """The stand-in model of ``exhibit``: its category's object, varied by its id.

    ``sections`` (16) is the segment count of round parts; models stay within a few
    thousand triangles. The result fits the exhibit's envelope, stands on y = 0, is
    centred on x and z and faces +Z.
    """
    seed = int.from_bytes(hashlib.sha256(exhibit.id.encode()).digest()[:8], "big")
    builder = ShapeBuilder(sections=sections)
    width, height, depth = exhibit.envelope
    # Not for security: a reproducible generator is the point.
    rng = random.Random(seed)  # noqa: S311
    DRAW[exhibit.category](builder, rng, width, height, depth)
    return builder.build(exhibit.envelope)
