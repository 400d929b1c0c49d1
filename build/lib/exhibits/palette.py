"""The shared palette of the demo exhibits' procedural models: a few PBR materials and accent paints.

Deliberately small and shared: the hall scene merges parts with equal materials, so 126
exhibits end up as a few dozen draw calls rather than hundreds. Each model takes one or two
accent paints (:func:`paints`), so colours vary per exhibit but stay within the palette.
"""

from __future__ import annotations

import random

from exhibits.model import Material

STEEL = Material("steel", (0.62, 0.64, 0.66, 1.0), metallic=0.8, roughness=0.35)
DARK = Material("rubber", (0.11, 0.12, 0.13, 1.0), metallic=0.0, roughness=0.7)
CONCRETE = Material("concrete", (0.62, 0.61, 0.58, 1.0), metallic=0.0, roughness=0.95)
WHITE = Material("white-paint", (0.9, 0.91, 0.92, 1.0), metallic=0.05, roughness=0.45)
GLASS = Material("glass", (0.32, 0.5, 0.6, 1.0), metallic=0.4, roughness=0.08)
PV = Material("pv-cell", (0.07, 0.13, 0.3, 1.0), metallic=0.5, roughness=0.2)
PLANT = Material("vegetation", (0.24, 0.5, 0.2, 1.0), metallic=0.0, roughness=0.9)
WATER = Material("water", (0.18, 0.42, 0.58, 1.0), metallic=0.1, roughness=0.05)
TIMBER = Material("timber", (0.72, 0.54, 0.33, 1.0), metallic=0.0, roughness=0.8)
BRICK = Material("brick", (0.6, 0.29, 0.21, 1.0), metallic=0.0, roughness=0.9)
PORCELAIN = Material("porcelain", (0.52, 0.33, 0.24, 1.0), metallic=0.0, roughness=0.3)
#: Accent paints; each model takes one or two, so colours vary per exhibit but stay shared.
ACCENTS = (
    Material("paint-teal", (0.0, 0.55, 0.55, 1.0), metallic=0.1, roughness=0.5),
    Material("paint-green", (0.3, 0.66, 0.24, 1.0), metallic=0.1, roughness=0.5),
    Material("paint-blue", (0.13, 0.35, 0.72, 1.0), metallic=0.1, roughness=0.5),
    Material("paint-orange", (0.93, 0.5, 0.12, 1.0), metallic=0.1, roughness=0.5),
    Material("paint-yellow", (0.95, 0.78, 0.15, 1.0), metallic=0.1, roughness=0.5),
    Material("paint-red", (0.78, 0.16, 0.14, 1.0), metallic=0.1, roughness=0.5),
)


def paints(r: random.Random) -> tuple[Material, Material]:
    """Two different accent paints, drawn from ``r``."""
    first, second = r.sample(ACCENTS, 2)
    return first, second
