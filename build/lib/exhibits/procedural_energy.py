"""Procedural stand-in models of the energy categories' exhibits, one function per category.

Hydrogen (a tank beside a fuel-cell stack and a dispenser), storage (battery containers on
slabs), battery swap (a station with a heavy truck), solar (rows of tilted panels), wind (a
turbine) and smart grid (a transformer, and pylons carrying conductors). Each draws into a
:class:`~exhibits.shapes.ShapeBuilder` for an envelope ``w`` x ``h`` x ``d``, with
proportions, counts and paints from the random generator ``r``; :mod:`exhibits.procedural`
picks the function and fits the result.
"""

from __future__ import annotations

import math
import random

from exhibits.palette import CONCRETE, DARK, GLASS, PORCELAIN, PV, STEEL, WHITE, paints
from exhibits.shapes import ShapeBuilder


def hydrogen(b: ShapeBuilder, r: random.Random, w: float, h: float, d: float) -> None:
    paint, _ = paints(r)
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


def storage(b: ShapeBuilder, r: random.Random, w: float, h: float, d: float) -> None:
    paint, door = paints(r)
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


def battery_swap(b: ShapeBuilder, r: random.Random, w: float, h: float, d: float) -> None:
    paint, pack = paints(r)
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


def solar(b: ShapeBuilder, r: random.Random, w: float, h: float, d: float) -> None:
    paint, _ = paints(r)
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


def wind(b: ShapeBuilder, r: random.Random, w: float, h: float, d: float) -> None:
    paint, _ = paints(r)
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


def smart_grid(b: ShapeBuilder, r: random.Random, w: float, h: float, d: float) -> None:
    paint, _ = paints(r)
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
