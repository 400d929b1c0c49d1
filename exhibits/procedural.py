"""Procedural 3D models for the demo exhibits: one recognisable object per category.

Owns what each category's stand-in model looks like (a hydrogen tank beside a fuel-cell
stack, a wind turbine, a battery-swap station with a heavy truck, ...) and the shared
palette of PBR materials. Every model is drawn from a random generator seeded by the
exhibit's id, so the same exhibit always gets byte-identical arrays while two exhibits of
one category differ in proportions, counts and accent colours. Geometry is assembled with
:class:`exhibits.shapes.ShapeBuilder` and fitted into the exhibit's envelope.

The palette is deliberately small and shared: the hall scene merges parts with equal
materials, so 126 exhibits end up as a few dozen draw calls rather than hundreds.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable

from exhibits.catalog import Category, Exhibit
from exhibits.model import Material, Model
from exhibits.shapes import ShapeBuilder

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

Draw = Callable[[ShapeBuilder, random.Random, float, float, float], None]


def _paints(r: random.Random) -> tuple[Material, Material]:
    first, second = r.sample(ACCENTS, 2)
    return first, second


def _hydrogen(b: ShapeBuilder, r: random.Random, w: float, h: float, d: float) -> None:
    paint, _ = _paints(r)
    radius, length = min(h, d) * r.uniform(0.15, 0.2), w * r.uniform(0.55, 0.75)
    y, z = radius + 0.25, -d * 0.22
    b.capsule(WHITE, radius, (-length / 2 + radius, y, z), (length / 2 - radius, y, z))
    for x in (-length * 0.28, length * 0.28):
        b.block(STEEL, (0.2, y - radius * 0.6, radius * 1.5), (x, 0.0, z))
        b.annulus(paint, radius * 0.98, radius + 0.03, (x - 0.06, y, z), (x + 0.06, y, z))
    # Fuel-cell stack: alternating plates between steel end plates, held by tie rods.
    plates, pitch, sx, sz = r.randint(8, 14), 0.07, -w * 0.18, d * 0.22
    span = plates * pitch
    b.block(STEEL, (span + 0.5, 0.12, 0.95), (sx, 0.0, sz))
    x0, x1 = sx - span / 2, sx + span / 2
    for i in range(plates):
        b.box(paint if i % 2 else DARK, (pitch * 0.8, 0.6, 0.6), (x0 + (i + 0.5) * pitch, 0.45, sz))
    for side in (-1, 1):
        b.box(STEEL, (0.06, 0.75, 0.75), (sx + side * (span / 2 + 0.03), 0.5, sz))
        for dy in (0.3, -0.3):  # tie rods
            rod = (0.5 + dy, sz + side * dy)
            b.cylinder(STEEL, 0.02, (x0 - 0.1, *rod), (x1 + 0.1, *rod), sections=6)
    # Dispenser and the pipe that feeds it from the tank.
    dx, dh = w * 0.32, h * r.uniform(0.45, 0.6)
    b.block(WHITE, (0.5, dh, 0.35), (dx, 0.0, sz))
    b.block(paint, (0.52, 0.12, 0.37), (dx, dh, sz))
    b.cylinder(DARK, 0.05, (dx + 0.1, dh * 0.6, sz + 0.17), (dx + 0.1, dh * 0.6, sz + 0.35), sections=8)
    tap, run = length / 2 - radius, y + radius + 0.2
    b.pipe(STEEL, 0.04, [(tap, y + radius, z), (tap, run, z), (tap, run, sz), (dx - 0.25, run, sz)])


def _storage(b: ShapeBuilder, r: random.Random, w: float, h: float, d: float) -> None:
    paint, door = _paints(r)
    count = r.choice((1, 2))
    cw, ch = w * 0.82, min(h * 0.8, 2.6) * r.uniform(0.85, 1.0)
    cd = d * (0.36 if count == 2 else 0.5)
    ribs, doors = r.randint(10, 16), r.randint(2, 4)
    for k in range(count):
        z = 0.0 if count == 1 else (k - 0.5) * d * 0.46
        b.block(CONCRETE, (cw + 0.3, 0.12, cd + 0.2), (0.0, 0.0, z))
        b.block(paint, (cw, ch, cd), (0.0, 0.12, z))
        for side in (-1, 1):  # corrugated long walls
            for i in range(ribs):
                x = -cw / 2 + (i + 0.5) * cw / ribs
                b.box(paint, (0.05, ch * 0.92, 0.04), (x, 0.12 + ch / 2, z + side * (cd / 2 + 0.02)))
        for i in range(doors):
            x = -cw / 2 + (i + 0.5) * cw / doors
            b.box(door, (cw / doors * 0.7, ch * 0.78, 0.05), (x, 0.12 + ch * 0.45, z + cd / 2 + 0.05))
            b.box(STEEL, (0.04, 0.3, 0.04), (x + cw / doors * 0.25, 0.12 + ch * 0.45, z + cd / 2 + 0.1))
        for i in range(6):  # louvred vents on the end wall
            b.box(DARK, (0.05, 0.05, cd * 0.5), (cw / 2 + 0.025, 0.12 + ch * (0.5 + i * 0.07), z))
        b.block(WHITE, (0.22, ch * 0.45, cd * 0.6), (-cw / 2 - 0.11, 0.12 + ch * 0.3, z))
    if count == 1:  # power conversion cabinet in front of a single container
        b.block(WHITE, (0.9, ch * 0.6, 0.4), (cw * 0.25, 0.0, d * 0.38))


def _battery_swap(b: ShapeBuilder, r: random.Random, w: float, h: float, d: float) -> None:
    paint, pack = _paints(r)
    sw, sh, sd = w * 0.9, h * r.uniform(0.75, 0.9), d * 0.4
    sz = -d * 0.28
    b.block(WHITE, (sw, sh, 0.12), (0.0, 0.0, sz - sd / 2))
    for side in (-1, 1):
        b.block(WHITE, (0.12, sh, sd), (side * sw / 2, 0.0, sz))
    b.block(paint, (sw + 0.3, 0.15, sd + 0.4), (0.0, sh, sz + 0.1))
    levels, columns = r.randint(2, 3), r.randint(3, 5)
    for i in range(columns):  # charging racks of spare packs
        x = -sw / 2 + (i + 0.5) * sw / columns
        for j in range(levels):
            b.block(pack, (sw / columns * 0.7, 0.3, 0.45), (x, 0.1 + j * 0.4, sz - sd / 2 + 0.35))
    b.box(STEEL, (sw * 0.9, 0.12, 0.12), (0.0, sh - 0.25, sz + sd * 0.3))  # swap gantry
    b.box(STEEL, (0.3, 0.5, 0.3), (r.uniform(-0.3, 0.3) * sw, sh - 0.55, sz + sd * 0.3))
    # Heavy truck with its battery pack behind the cab, parked in front of the station.
    length, tz, wheel = w * r.uniform(0.8, 0.9), d * 0.22, 0.24
    front = length / 2
    b.block(DARK, (length, 0.12, 0.7), (0.0, wheel + 0.05, tz))
    for x in (front - 0.45, -front + 0.6, -front + 1.1):
        for side in (-1, 1):
            b.cylinder(DARK, wheel, (x, wheel, tz + side * 0.32), (x, wheel, tz + side * 0.5), sections=12)
    b.block(paint, (0.75, 1.0, 0.95), (front - 0.4, wheel + 0.17, tz))
    b.box(GLASS, (0.05, 0.4, 0.8), (front - 0.01, wheel + 0.9, tz))
    b.block(pack, (0.55, 0.7, 0.85), (front - 1.15, wheel + 0.17, tz))
    b.block(WHITE, (length - 1.6, 1.0, 0.95), (-front + (length - 1.6) / 2, wheel + 0.17, tz))


def _solar(b: ShapeBuilder, r: random.Random, w: float, h: float, d: float) -> None:
    paint, _ = _paints(r)
    rows, columns, tilt = r.randint(2, 3), r.randint(3, 5), r.uniform(18.0, 32.0)
    pitch = d * 0.8 / rows
    panel_w, panel_len = w * 0.88 / columns, pitch * 0.75
    rise = math.sin(math.radians(tilt)) * panel_len / 2
    for i in range(rows):
        z = -d * 0.4 + (i + 0.5) * pitch
        y = 0.45 + rise + 0.06
        b.box(STEEL, (w * 0.9, 0.06, 0.08), (0.0, y, z), turn=(tilt, 0.0, 0.0))
        for j in range(columns):
            x = -w * 0.44 + (j + 0.5) * panel_w
            b.box(PV, (panel_w * 0.95, 0.04, panel_len), (x, y + 0.05, z), turn=(tilt, 0.0, 0.0))
        for j in range(columns + 1):  # short legs in front, tall ones behind
            x = -w * 0.44 + j * panel_w
            for side in (-1, 1):
                leg = z + side * panel_len * 0.35
                b.cylinder(STEEL, 0.03, (x, 0.0, leg), (x, y - side * rise * 0.7, leg), sections=6)
    b.block(WHITE, (0.5, 0.7, 0.3), (w * 0.38, 0.0, d * 0.45))  # inverter
    b.block(paint, (0.52, 0.1, 0.32), (w * 0.38, 0.7, d * 0.45))


def _wind(b: ShapeBuilder, r: random.Random, w: float, h: float, d: float) -> None:
    paint, _ = _paints(r)
    hub = h * r.uniform(0.6, 0.66)
    blade = min(w * 0.48, h - hub - 0.05, hub - 0.4) * r.uniform(0.9, 1.0)
    b.cylinder(CONCRETE, 0.5, (0.0, 0.0, 0.0), (0.0, 0.15, 0.0), sections=20)
    b.frustum(WHITE, 0.16, 0.09, (0.0, 0.15, 0.0), (0.0, hub - 0.1, 0.0))
    b.frustum(paint, 0.165, 0.155, (0.0, 0.15, 0.0), (0.0, 0.5, 0.0))
    b.capsule(WHITE, 0.15, (0.0, hub, -0.45), (0.0, hub, 0.1), count=12)
    b.box(paint, (0.02, 0.08, 0.35), (0.15, hub, -0.2))
    b.cone(WHITE, 0.13, (0.0, hub, 0.2), (0.0, hub, 0.45), sections=12)
    # Three tapered blades with a slight pitch; the rotor stops at a random angle.
    airfoil = [(-0.3, 0.0), (-0.2, -0.35), (0.3, -0.3), (1.0, 0.0), (0.3, 0.35), (-0.2, 0.4)]
    chord = blade * 0.1
    outline = [(x * chord, y * chord * 0.35) for x, y in airfoil]
    phase = r.uniform(0.0, 120.0)
    for k in range(3):
        b.prism(WHITE, outline, blade, (0.0, hub, 0.28), turn=(-90.0, 12.0, phase + 120.0 * k), taper=0.3)


def _smart_grid(b: ShapeBuilder, r: random.Random, w: float, h: float, d: float) -> None:
    paint, _ = _paints(r)
    b.block(CONCRETE, (w * 0.5, 0.1, d * 0.5), (-w * 0.12, 0.0, d * 0.12))
    tx, tz, tw = -w * 0.12, d * 0.12, r.uniform(0.9, 1.2)
    b.block(paint, (tw, 0.9, 0.7), (tx, 0.1, tz))
    for i in range(r.randint(5, 8)):  # radiator fins
        b.box(STEEL, (0.04, 0.7, 0.25), (tx - tw / 2 + 0.1 + i * 0.12, 0.5, tz + 0.47))
    for i in (-1, 0, 1):
        b.cylinder(PORCELAIN, 0.05, (tx + i * 0.3, 1.0, tz), (tx + i * 0.3, 1.4, tz), sections=8)
        for y in (1.05, 1.17, 1.29):  # insulator sheds
            b.annulus(PORCELAIN, 0.05, 0.08, (tx + i * 0.3, y, tz), (tx + i * 0.3, y + 0.03, tz), sections=8)
    b.capsule(paint, 0.12, (tx - tw * 0.35, 1.15, tz - 0.25), (tx + tw * 0.35, 1.15, tz - 0.25), count=10)
    b.block(WHITE, (0.6, 1.1, 0.4), (w * 0.3, 0.0, d * 0.3))
    b.box(DARK, (0.35, 0.25, 0.02), (w * 0.3, 0.8, d * 0.3 + 0.21))
    # Two lattice pylons carrying three conductors across the back of the stand.
    top, pz, px = h * r.uniform(0.85, 0.97), -d * 0.32, w * 0.36

    def half_width(y: float) -> float:  # legs lean in from 0.35 m at the foot to 0.08 m
        return 0.35 - 0.27 * y / top

    for x in (-px, px):
        for sx, sz in ((-1, -1), (-1, 1), (1, -1), (1, 1)):
            foot, head = half_width(0.0), half_width(top)
            b.cylinder(
                STEEL,
                0.025,
                (x + sx * foot, 0.0, pz + sz * foot),
                (x + sx * head, top, pz + sz * head),
                sections=5,
            )
        for level in range(4):  # X-bracing on the front and back faces
            y0, y1 = top * level / 4.5, top * (level + 1) / 4.5
            s0, s1 = half_width(y0), half_width(y1)
            for sz in (-1, 1):
                b.cylinder(STEEL, 0.012, (x - s0, y0, pz + sz * s0), (x + s1, y1, pz + sz * s1), sections=4)
                b.cylinder(STEEL, 0.012, (x + s0, y0, pz + sz * s0), (x - s1, y1, pz + sz * s1), sections=4)
        for y, span in ((top * 0.82, 0.6), (top * 0.96, 0.4)):  # cross arms
            b.box(STEEL, (0.06, 0.06, span * 2), (x, y, pz))
    for y, z in ((top * 0.82, -0.5), (top * 0.82, 0.5), (top * 0.96, 0.0)):  # conductors
        b.cylinder(DARK, 0.012, (-px, y - 0.12, pz + z), (px, y - 0.12, pz + z), sections=4)


def _green_building(b: ShapeBuilder, r: random.Random, w: float, h: float, d: float) -> None:
    floors, step = r.randint(4, 7), r.uniform(0.08, 0.14)
    storey = h * 0.92 / floors
    for i in range(floors):
        fw, fd = w * 0.85 * (1 - i * step), d * 0.8 * (1 - i * step * 1.3)
        y = i * storey
        back = -d * 0.4 + fd / 2  # terraces step back towards the rear
        b.block(WHITE, (fw, storey * 0.18, fd), (0.0, y, back))
        b.block(GLASS, (fw * 0.97, storey * 0.82, fd * 0.97), (0.0, y + storey * 0.18, back))
        mullions = r.randint(4, 7)
        for k in range(mullions):
            x = -fw / 2 + fw * (k + 0.5) / mullions
            b.box(WHITE, (0.05, storey * 0.82, 0.05), (x, y + storey * 0.59, back + fd * 0.49))
        b.block(PLANT, (fw * 0.98, 0.04, fd * 0.98), (0.0, y + storey, back))
        if i < floors - 1:
            for _ in range(r.randint(1, 3)):  # shrubs on the terrace in front of the next floor
                x, zf, yt = r.uniform(-0.4, 0.4) * fw, back + fd / 2 - 0.15, y + storey
                b.cylinder(TIMBER, 0.03, (x, yt, zf), (x, yt + 0.15, zf), sections=5)
                b.sphere(PLANT, 0.14, (x, yt + 0.25, zf), subdivisions=0)
    b.block(PV, (w * 0.3, 0.05, d * 0.2), (0.0, floors * storey + 0.04, -d * 0.3))


def _ccus(b: ShapeBuilder, r: random.Random, w: float, h: float, d: float) -> None:
    paint, second = _paints(r)
    b.block(CONCRETE, (w * 0.9, 0.1, d * 0.8), (0.0, 0.0, 0.0))
    ax, ar, ah = -w * 0.22, r.uniform(0.3, 0.42), h * r.uniform(0.82, 0.92)
    sx, sr, sh = w * 0.2, r.uniform(0.22, 0.3), ah * r.uniform(0.6, 0.75)
    for x, radius, top, z in ((ax, ar, ah, -d * 0.15), (sx, sr, sh, -d * 0.2)):
        b.cylinder(WHITE, radius, (x, 0.1, z), (x, top - radius, z))
        b.cone(WHITE, radius, (x, top - radius, z), (x, top, z))
        for k in range(1, 4):
            y = 0.1 + (top - radius) * k / 4
            b.annulus(paint, radius, radius + 0.05, (x, y, z), (x, y + 0.06, z))
        b.annulus(STEEL, radius + 0.05, radius + 0.3, (x, top * 0.55, z), (x, top * 0.55 + 0.04, z))
    # Rich solvent from the absorber's head over to the stripper.
    az, szz, ya, ys = -d * 0.15, -d * 0.2, ah - ar, sh * 0.7
    run = [(ax, ya, az + ar), (ax, ya, az + ar + 0.2), (sx, ya, az + ar + 0.2), (sx, ys, szz + sr + 0.2)]
    b.pipe(STEEL, 0.05, [*run, (sx, ys, szz + sr)])
    hx = (ax + sx) / 2
    b.capsule(second, 0.18, (hx - 0.5, 0.5, d * 0.28), (hx + 0.5, 0.5, d * 0.28), count=12)
    b.pipe(STEEL, 0.04, [(sx, 0.3, szz + sr), (sx, 0.3, d * 0.28), (hx + 0.6, 0.5, d * 0.28)])
    for k in range(r.randint(2, 3)):  # liquefied CO2 bullets
        x = w * 0.42 - 0.2
        b.capsule(paint, 0.16, (x, 0.3 + k * 0.38, d * 0.05), (x, 0.3 + k * 0.38, d * 0.38), count=10)


def _waste(b: ShapeBuilder, r: random.Random, w: float, h: float, d: float) -> None:
    paint, _ = _paints(r)
    length, y, z = w * 0.8, r.uniform(0.75, 0.95), -d * 0.05
    b.box(DARK, (length, 0.06, 0.5), (0.0, y, z))
    for side in (-1, 1):
        b.box(paint, (length, 0.14, 0.04), (0.0, y + 0.02, z + side * 0.27))
    for i in range(5):
        x = -length / 2 + 0.1 + i * (length - 0.2) / 4
        for side in (-1, 1):
            b.cylinder(STEEL, 0.03, (x, 0.0, z + side * 0.22), (x, y - 0.03, z + side * 0.22), sections=6)
    x0 = -length / 2 + 0.3
    b.frustum(paint, 0.2, 0.55, (x0, y + 0.1, z), (x0, y + 0.75, z), sections=12)
    for i in range(r.randint(6, 10)):  # sorted items riding the belt
        item = (x0 + 0.5 + i * 0.22, y + 0.03, z + r.uniform(-0.12, 0.12))
        b.block(r.choice(ACCENTS), (0.14, 0.1, 0.12), item, yaw=r.uniform(0, 90))
    bins = r.randint(3, 5)
    for i in range(bins):  # open bins, one colour per stream
        colour, x = ACCENTS[(i + r.randint(0, 5)) % len(ACCENTS)], -w * 0.4 + (i + 0.5) * w * 0.8 / bins
        size, bz = w * 0.8 / bins * 0.8, d * 0.32
        b.block(colour, (size, 0.05, 0.6), (x, 0.0, bz))
        for side in (-1, 1):
            b.block(colour, (size, 0.6, 0.04), (x, 0.0, bz + side * 0.28))
            b.block(colour, (0.04, 0.6, 0.6), (x + side * size / 2, 0.0, bz))
    b.block(STEEL, (1.0, 1.3, 0.9), (w * 0.3, 0.0, -d * 0.32))  # baler
    b.block(paint, (1.02, 0.2, 0.92), (w * 0.3, 1.3, -d * 0.32))


def _water(b: ShapeBuilder, r: random.Random, w: float, h: float, d: float) -> None:
    paint, _ = _paints(r)
    b.block(CONCRETE, (w * 0.95, 0.08, d * 0.95), (0.0, 0.0, 0.0))
    cols, rows = r.randint(5, 8), r.randint(4, 6)
    pw, pd = w * 0.55 / cols, d * 0.55 / rows
    for i in range(cols):  # permeable pavers with open joints
        for j in range(rows):
            paver = (-w * 0.45 + (i + 0.5) * pw, 0.08, -d * 0.05 + (j + 0.5) * pd)
            b.block(BRICK if (i + j) % 3 else CONCRETE, (pw * 0.86, 0.05, pd * 0.86), paver)
    b.block(WATER, (w * 0.32, 0.04, d * 0.5), (w * 0.28, 0.06, d * 0.18))  # rain garden pond
    for _ in range(r.randint(4, 7)):
        x, z = w * r.uniform(0.15, 0.42), d * r.uniform(-0.05, 0.42)
        b.sphere(PLANT, r.uniform(0.12, 0.2), (x, 0.2, z), subdivisions=0)
    tank_r, tank_h = r.uniform(0.4, 0.55), h * r.uniform(0.45, 0.6)
    tx, tz = w * 0.25, -d * 0.28
    b.cylinder(paint, tank_r, (tx, 0.08, tz), (tx, 0.08 + tank_h, tz), sections=20)
    b.cone(paint, tank_r * 1.05, (tx, 0.08 + tank_h, tz), (tx, 0.3 + tank_h, tz), sections=20)
    outlet = tank_h * 0.8
    b.pipe(STEEL, 0.035, [(tx - tank_r, outlet, tz), (-w * 0.3, outlet, tz), (-w * 0.3, 0.12, tz)])
    for k in range(r.randint(2, 4)):  # street trees in permeable pits
        x = -w * 0.4 + k * 0.6
        b.cylinder(TIMBER, 0.04, (x, 0.08, -d * 0.4), (x, 0.9, -d * 0.4), sections=6)
        b.cone(PLANT, 0.3, (x, 0.7, -d * 0.4), (x, 1.6, -d * 0.4), sections=10)


def _transport(b: ShapeBuilder, r: random.Random, w: float, h: float, d: float) -> None:
    paint, _ = _paints(r)
    tram = r.random() < 0.4
    length, width, wheel = w * r.uniform(0.85, 0.95), 0.8, 0.16
    if tram:  # rails on sleepers, an overhead wire and a pantograph
        for i in range(12):
            b.block(CONCRETE, (0.1, 0.05, 1.1), (-length / 2 + (i + 0.5) * length / 12, 0.0, 0.0))
        for side in (-1, 1):
            b.block(STEEL, (length, 0.05, 0.05), (0.0, 0.05, side * 0.36))
    base = 0.1 if tram else 0.0
    body = h * 0.32
    b.block(WHITE, (length, body, width), (0.0, base + wheel, 0.0))
    b.box(GLASS, (length * 0.94, body * 0.35, width + 0.02), (0.0, base + wheel + body * 0.65, 0.0))
    b.box(GLASS, (0.04, body * 0.55, width * 0.9), (length / 2, base + wheel + body * 0.55, 0.0))
    b.box(paint, (length + 0.01, 0.07, width + 0.01), (0.0, base + wheel + body * 0.25, 0.0))
    b.block(paint, (length * 0.35, 0.08, width * 0.7), (0.0, base + wheel + body, 0.0))  # roof batteries
    axles = (-0.35, -0.1, 0.1, 0.35) if tram else (-0.3, 0.3)
    for x in axles:
        for side in (-1, 1):
            hub = (x * length, base + wheel)
            b.cylinder(DARK, wheel, (*hub, side * 0.3), (*hub, side * 0.42), sections=12)
    top = base + wheel + body + 0.08
    if tram:
        b.box(STEEL, (0.5, 0.03, 0.03), (0.0, top + 0.2, 0.0), turn=(0.0, 0.0, 35.0))
        b.box(STEEL, (0.5, 0.03, 0.03), (0.0, top + 0.2, 0.0), turn=(0.0, 0.0, -35.0))
        b.cylinder(DARK, 0.01, (-length / 2, top + 0.36, 0.0), (length / 2, top + 0.36, 0.0), sections=4)
    else:  # opportunity charger at the stop
        cx = length * 0.2
        b.cylinder(STEEL, 0.06, (cx, 0.0, -0.9), (cx, top + 0.3, -0.9), sections=10)
        b.box(paint, (0.5, 0.1, 0.9), (cx, top + 0.3, -0.5))
        b.block(WHITE, (0.4, 1.0, 0.3), (length * 0.4, 0.0, 0.9))


def _materials(b: ShapeBuilder, r: random.Random, w: float, h: float, d: float) -> None:
    paint, _ = _paints(r)
    for k in range(r.randint(2, 3)):  # timber panels (CLT) on pallets
        x, boards = -w * 0.35 + k * 0.8, r.randint(4, 9)
        b.block(TIMBER, (0.7, 0.1, 0.9), (x, 0.0, d * 0.3))
        for i in range(boards):
            b.block(TIMBER if i % 2 else WHITE, (0.65, 0.06, 0.85), (x, 0.1 + i * 0.065, d * 0.3))
    courses = r.randint(5, 8)
    for i in range(courses):  # bonded stack of low-carbon bricks
        for j in range(4):
            offset = 0.11 if i % 2 else 0.0
            b.block(BRICK, (0.2, 0.08, 0.4), (w * 0.2 + j * 0.22 + offset, i * 0.085, d * 0.3))
    # Rotary kiln on two piers with riding rings, and a preheater tower at its feed end.
    kl, kr, slope = w * 0.7, r.uniform(0.2, 0.28), r.uniform(0.15, 0.3)
    x0, x1, kz = -kl / 2, kl / 2, -d * 0.22
    y0, y1 = 0.7 + slope, 0.7
    b.cylinder(paint, kr, (x0, y0, kz), (x1, y1, kz), sections=16)
    for t in (0.25, 0.75):
        x, y = x0 + (x1 - x0) * t, y0 + (y1 - y0) * t
        b.annulus(STEEL, kr, kr + 0.05, (x - 0.05, y, kz), (x + 0.05, y, kz), sections=16)
        b.block(CONCRETE, (0.3, y - kr, 0.6), (x, 0.0, kz))
    b.block(STEEL, (0.7, h * r.uniform(0.7, 0.9), 0.7), (x0 - 0.2, 0.0, kz))
    b.frustum(WHITE, 0.18, 0.3, (x0 - 0.2, h * 0.45, kz + 0.5), (x0 - 0.2, h * 0.65, kz + 0.5), sections=10)


DRAW: dict[Category, Draw] = {
    Category.HYDROGEN: _hydrogen,
    Category.STORAGE: _storage,
    Category.BATTERY_SWAP: _battery_swap,
    Category.SOLAR: _solar,
    Category.WIND: _wind,
    Category.SMART_GRID: _smart_grid,
    Category.GREEN_BUILDING: _green_building,
    Category.CCUS: _ccus,
    Category.WASTE: _waste,
    Category.WATER: _water,
    Category.TRANSPORT: _transport,
    Category.MATERIALS: _materials,
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
