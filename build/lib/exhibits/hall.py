"""The exhibition hall's floor plan: aisles by category, booths along them, and its JSON.

Owns the booth-label rule (a category letter and a running number, "H-03") and where
every booth stands. Pure data: no geometry, no I/O. The hall is centred on the origin,
metres, +Y up, x across and z along its depth. Each category gets one aisle per
``2 * per_row`` exhibits; an aisle runs along x with booths on both sides, taken in label
order alternately on the far (-z) side and facing it (H-01 opposite H-02), every booth
turned to face its aisle.
Aisle blocks sit in a grid of columns separated by cross aisles, with a walkway of
``aisle_width`` around the edge. ``hall_json`` is ``GET /api/v1/hall`` without the
per-booth model URLs, which the server adds.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from exhibits.catalog import Category, Exhibit

#: The letter of each category's aisles; booth labels start with it.
AISLE_LETTERS: dict[Category, str] = {
    Category.HYDROGEN: "H",
    Category.STORAGE: "E",
    Category.BATTERY_SWAP: "B",
    Category.SOLAR: "S",
    Category.WIND: "W",
    Category.SMART_GRID: "G",
    Category.GREEN_BUILDING: "A",
    Category.CCUS: "C",
    Category.WASTE: "R",
    Category.WATER: "P",
    Category.TRANSPORT: "T",
    Category.MATERIALS: "M",
}

#: sRGB colour of each category's aisle carpet (the hall page may use the same).
CATEGORY_COLORS: dict[Category, str] = {
    Category.HYDROGEN: "#3f8fd2",
    Category.STORAGE: "#2eaa8a",
    Category.BATTERY_SWAP: "#e08a2c",
    Category.SOLAR: "#e8c13a",
    Category.WIND: "#7fb6e0",
    Category.SMART_GRID: "#8a6fd1",
    Category.GREEN_BUILDING: "#5aa845",
    Category.CCUS: "#8c8f96",
    Category.WASTE: "#a8744a",
    Category.WATER: "#2f74b5",
    Category.TRANSPORT: "#d0504a",
    Category.MATERIALS: "#b89a6a",
}

_LABEL = re.compile(r"^([A-Z]{1,2})-(\d{2,3})$")


@dataclass(frozen=True, slots=True)
class Booth:
    """One exhibit's place: ``position`` is where its model's origin goes (on the plinth)."""

    #: The booth label, equal to the exhibit's ``booth``.
    id: str
    exhibit_id: str
    category: Category
    position: tuple[float, float, float]
    #: Turn about +Y in degrees (three.js/glTF sense) that makes the model's +Z front
    #: face the aisle.
    rotation_y: float
    #: Width (x) and depth (z) of the plot in metres, centred on ``position``.
    footprint: tuple[float, float]
    #: Id of the aisle the booth opens onto.
    aisle: str


@dataclass(frozen=True, slots=True)
class Aisle:
    """A walkway lined with one category's booths; ``start`` to ``end`` is its centre line (x, z)."""

    id: str
    category: Category
    label: str
    start: tuple[float, float]
    end: tuple[float, float]
    width: float

    @property
    def rect(self) -> tuple[float, float, float, float]:
        """(x0, z0, x1, z1) of the walkway."""
        half = self.width / 2
        return (
            min(self.start[0], self.end[0]),
            min(self.start[1], self.end[1]) - half,
            max(self.start[0], self.end[0]),
            max(self.start[1], self.end[1]) + half,
        )


@dataclass(frozen=True, slots=True)
class HallLayout:
    """Every booth and aisle; ``size`` is the hall's (width x, depth z), centred on the origin."""

    booths: list[Booth]
    size: tuple[float, float]
    aisles: list[Aisle]
    #: Height of the booth plinths (the y of every booth's position).
    plinth: float = 0.0

    def booth_of(self, exhibit_id: str) -> Booth:
        for booth in self.booths:
            if booth.exhibit_id == exhibit_id:
                return booth
        raise KeyError(exhibit_id)


def _label_key(label: str) -> tuple[str, int, str]:
    """Sort key putting "H-9" before "H-10"; labels outside the pattern sort by text."""
    match = _LABEL.match(label)
    return (match.group(1), int(match.group(2)), "") if match else (label, 0, label)


def _by_category(exhibits: Iterable[Exhibit]) -> dict[Category, list[Exhibit]]:
    groups: dict[Category, list[Exhibit]] = {category: [] for category in Category}
    for exhibit in exhibits:
        groups[exhibit.category].append(exhibit)
    return {category: members for category, members in groups.items() if members}


def booth_labels(exhibits: Iterable[Exhibit]) -> dict[str, str]:
    """Each exhibit's booth label: its own ``booth`` if set, otherwise the next free one.

    Free labels are the category letter and a running number in id order ("H-01",
    "H-02", ...), skipping labels other exhibits already hold, so a catalog that assigns
    some booths by hand and leaves the rest empty still gets unique labels.
    """
    exhibits = list(exhibits)
    taken = {e.booth for e in exhibits if e.booth}
    labels: dict[str, str] = {}
    for category, members in _by_category(exhibits).items():
        number = 0
        for exhibit in sorted(members, key=lambda e: e.id):
            if exhibit.booth:
                labels[exhibit.id] = exhibit.booth
                continue
            while True:
                number += 1
                label = f"{AISLE_LETTERS[category]}-{number:02d}"
                if label not in taken:
                    break
            taken.add(label)
            labels[exhibit.id] = label
    return labels


def with_booths(exhibits: Iterable[Exhibit]) -> list[Exhibit]:
    """The exhibits with every empty ``booth`` filled in by :func:`booth_labels`."""
    exhibits = list(exhibits)
    labels = booth_labels(exhibits)
    return [e if e.booth else dataclasses.replace(e, booth=labels[e.id]) for e in exhibits]


def _columns(blocks: int, block_w: float, block_d: float, aisle: float) -> int:
    """The column count that makes the hall closest to square (rounder halls walk shorter)."""

    def aspect(columns: int) -> float:
        width = columns * block_w + (columns + 1) * aisle
        depth = math.ceil(blocks / columns) * block_d + 2 * aisle
        return max(width, depth) / min(width, depth)

    return min(range(1, blocks + 1), key=lambda c: (aspect(c), c))


def layout_hall(
    exhibits: Sequence[Exhibit],
    *,
    booth_size: float = 6.0,
    aisle_width: float = 4.0,
    per_row: int = 6,
    columns: int | None = None,
    plinth: float = 0.15,
) -> HallLayout:
    """Place one square booth per exhibit along its category's aisles.

    ``booth_size`` (6 m) is the side of a booth's plot, ``aisle_width`` (4 m) the width of
    every walkway, ``per_row`` (6) the booths on each side of an aisle, ``columns`` the
    aisle blocks side by side (default: whatever makes the hall closest to square) and
    ``plinth`` (0.15 m) the height models stand at. Categories follow the order of
    :class:`Category`; booths follow their labels. Deterministic for the same input.
    """
    if booth_size <= 0 or aisle_width <= 0 or per_row < 1 or plinth < 0:
        raise ValueError("booth_size and aisle_width must be positive, per_row at least 1, plinth >= 0")
    labels = booth_labels(exhibits)
    if len(labels) != len(exhibits):
        raise ValueError("duplicate exhibit ids")
    if len(set(labels.values())) != len(labels):
        raise ValueError("two exhibits share a booth label")
    # One block per aisle: a row of booths, the aisle, the facing row.
    runs: list[tuple[Category, int, list[Exhibit]]] = []
    for category, members in _by_category(exhibits).items():
        ordered = sorted(members, key=lambda e: (_label_key(labels[e.id]), e.id))
        for n, start in enumerate(range(0, len(ordered), 2 * per_row), start=1):
            runs.append((category, n, ordered[start : start + 2 * per_row]))
    block_w, block_d = per_row * booth_size, 2 * booth_size + aisle_width
    cols = columns or (_columns(len(runs), block_w, block_d, aisle_width) if runs else 1)
    rows = max(1, math.ceil(len(runs) / cols))
    width = cols * block_w + (cols + 1) * aisle_width
    depth = rows * block_d + 2 * aisle_width
    booths: list[Booth] = []
    aisles: list[Aisle] = []
    for index, (category, n, members) in enumerate(runs):
        col, row = index % cols, index // cols
        x0 = -width / 2 + aisle_width + col * (block_w + aisle_width)
        z0 = -depth / 2 + aisle_width + row * block_d
        zc = z0 + booth_size + aisle_width / 2
        aisle = Aisle(
            id=f"{AISLE_LETTERS[category]}{n}",
            category=category,
            label=category.label,
            start=(x0, zc),
            end=(x0 + block_w, zc),
            width=aisle_width,
        )
        aisles.append(aisle)
        for i, exhibit in enumerate(members):
            far = i % 2 == 0  # alternate sides so neighbours in label order face each other
            z = z0 + booth_size / 2 if far else zc + aisle_width / 2 + booth_size / 2
            booths.append(
                Booth(
                    id=labels[exhibit.id],
                    exhibit_id=exhibit.id,
                    category=category,
                    position=(x0 + (i // 2 + 0.5) * booth_size, plinth, z),
                    rotation_y=0.0 if far else 180.0,
                    footprint=(booth_size, booth_size),
                    aisle=aisle.id,
                )
            )
    return HallLayout(booths=booths, size=(width, depth), aisles=aisles, plinth=plinth)


def _r(value: float) -> float:
    return round(value, 3) + 0.0  # + 0.0 turns -0.0 into 0.0


def hall_json(layout: HallLayout) -> dict[str, Any]:
    """``GET /api/v1/hall`` without ``lods``: the size, the aisles and every booth."""
    return {
        "size": [_r(layout.size[0]), _r(layout.size[1])],
        "plinth": _r(layout.plinth),
        "aisles": [
            {
                "id": a.id,
                "category": a.category.value,
                "label": a.label,
                "color": CATEGORY_COLORS[a.category],
                "start": [_r(a.start[0]), _r(a.start[1])],
                "end": [_r(a.end[0]), _r(a.end[1])],
                "width": _r(a.width),
                "rect": [_r(v) for v in a.rect],
            }
            for a in layout.aisles
        ],
        "booths": [
            {
                "booth": b.id,
                "exhibit": b.exhibit_id,
                "category": b.category.value,
                "aisle": b.aisle,
                "position": [_r(v) for v in b.position],
                "rotation_y": _r(b.rotation_y),
                "footprint": [_r(b.footprint[0]), _r(b.footprint[1])],
            }
            for b in layout.booths
        ],
    }
