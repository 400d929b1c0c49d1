"""Procedural stand-in models of the buildings, industry and transport categories' exhibits.

Green building, CCUS, waste, water, transport and materials, one function per category.
Each draws into a :class:`~exhibits.shapes.ShapeBuilder` for an envelope ``w`` x ``h`` x
``d``, with proportions, counts and paints from the random generator ``r``;
:mod:`exhibits.procedural` picks the function and fits the result.
"""

from __future__ import annotations

import random

from exhibits.palette import (
    ACCENTS,
    BRICK,
    CONCRETE,
    DARK,
    GLASS,
    PLANT,
    PV,
    STEEL,
    TIMBER,
    WATER,
    WHITE,
    paints,
)
from exhibits.shapes import ShapeBuilder


def green_building(b: ShapeBuilder, r: random.Random, w: float, h: float, d: float) -> None:
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


def ccus(b: ShapeBuilder, r: random.Random, w: float, h: float, d: float) -> None:
    paint, second = paints(r)
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


def waste(b: ShapeBuilder, r: random.Random, w: float, h: float, d: float) -> None:
    paint, _ = paints(r)
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


def water(b: ShapeBuilder, r: random.Random, w: float, h: float, d: float) -> None:
    paint, _ = paints(r)
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


def transport(b: ShapeBuilder, r: random.Random, w: float, h: float, d: float) -> None:
    paint, _ = paints(r)
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


def materials(b: ShapeBuilder, r: random.Random, w: float, h: float, d: float) -> None:
    paint, _ = paints(r)
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
