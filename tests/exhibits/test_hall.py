"""The hall's floor plan: booth labels, where booths stand, and the hall JSON."""

from __future__ import annotations

import dataclasses
import json
import math
import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from exhibits.catalog import Category, Exhibit
from exhibits.catalog_file import BOOTH_PATTERN, load_catalog
from exhibits.hall import Booth, HallLayout, booth_labels, hall_json, layout_hall, with_booths
from exhibits.shapes import rotate_y

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _rect(booth: Booth) -> tuple[float, float, float, float]:
    x, _, z = booth.position
    w, d = booth.footprint
    return (x - w / 2, z - d / 2, x + w / 2, z + d / 2)


def test_one_booth_per_exhibit_with_its_label(demo: list[Exhibit], layout: HallLayout) -> None:
    assert len(layout.booths) == len(demo)
    by_exhibit = {b.exhibit_id: b for b in layout.booths}
    for exhibit in demo:
        booth = by_exhibit[exhibit.id]
        assert booth.id == exhibit.booth and booth.category is exhibit.category
    assert len({b.id for b in layout.booths}) == len(demo)


def test_no_two_footprints_overlap(layout: HallLayout) -> None:
    rects = np.array([_rect(b) for b in layout.booths])
    x0, z0, x1, z1 = (rects[:, i] for i in range(4))
    overlap_x = np.minimum(x1[:, None], x1[None, :]) - np.maximum(x0[:, None], x0[None, :])
    overlap_z = np.minimum(z1[:, None], z1[None, :]) - np.maximum(z0[:, None], z0[None, :])
    overlapping = (overlap_x > 1e-9) & (overlap_z > 1e-9)
    np.fill_diagonal(overlapping, False)
    assert not overlapping.any()


def test_booths_and_aisles_lie_inside_the_hall(layout: HallLayout) -> None:
    half_w, half_d = layout.size[0] / 2, layout.size[1] / 2
    for x0, z0, x1, z1 in [_rect(b) for b in layout.booths] + [a.rect for a in layout.aisles]:
        assert -half_w <= x0 < x1 <= half_w and -half_d <= z0 < z1 <= half_d
    # Closer to square than 2:1, so no walk along the hall is needlessly long.
    assert max(layout.size) / min(layout.size) < 2


def test_aisles_group_booths_by_category_and_booths_face_their_aisle(layout: HallLayout) -> None:
    aisles = {a.id: a for a in layout.aisles}
    for booth in layout.booths:
        aisle = aisles[booth.aisle]
        assert aisle.category is booth.category
        ax0, az0, ax1, az1 = aisle.rect
        x0, z0, x1, z1 = _rect(booth)
        assert ax0 <= x0 and x1 <= ax1
        assert math.isclose(z1, az0) or math.isclose(z0, az1), "the booth's front edge is the aisle's edge"
        front = rotate_y(booth.rotation_y) @ (0.0, 0.0, 1.0)
        towards = (ax0 + ax1) / 2 - booth.position[0], (az0 + az1) / 2 - booth.position[2]
        assert front[2] * towards[1] > 0 and abs(front[0]) < 1e-9
    per_category = Counter(a.category for a in layout.aisles)
    assert set(per_category) == set(Category) and set(per_category.values()) == {1}


def test_booth_numbers_face_each_other_across_the_aisle(layout: HallLayout) -> None:
    by_label = {b.id: b for b in layout.booths}
    one, two, three = by_label["H-01"], by_label["H-02"], by_label["H-03"]
    assert one.position[0] == two.position[0] and one.rotation_y != two.rotation_y
    assert three.position[0] - one.position[0] == pytest.approx(one.footprint[0])
    assert all(b.position[1] == layout.plinth for b in layout.booths)


def test_deterministic_whatever_the_input_order(demo: list[Exhibit], layout: HallLayout) -> None:
    shuffled = list(demo)
    random.Random(7).shuffle(shuffled)
    assert layout_hall(shuffled) == layout
    assert layout_hall(demo) == layout


def test_short_rows_give_a_category_several_aisles(demo: list[Exhibit]) -> None:
    layout = layout_hall(demo, per_row=2, booth_size=5.0, aisle_width=3.0)
    hydrogen = [a for a in layout.aisles if a.category is Category.HYDROGEN]
    assert [a.id for a in hydrogen] == ["H1", "H2", "H3"]  # 11 exhibits, 4 per aisle
    assert all(b.footprint == (5.0, 5.0) for b in layout.booths)
    assert Counter(b.aisle for b in layout.booths)["H3"] == 3


def test_a_catalog_without_booths_gets_labels_that_avoid_taken_ones() -> None:
    loaded = load_catalog(FIXTURES / "exhibits.yaml")
    hydrogen = loaded[0]
    assert hydrogen.category is Category.HYDROGEN and hydrogen.booth == "H-01"
    extra = [
        dataclasses.replace(hydrogen, id=f"zz-hydrogen-{n}", booth="", title_en=f"Extra {n}") for n in (1, 2)
    ]
    cleared = [dataclasses.replace(e, booth="") for e in loaded[1:]]
    filled = with_booths([hydrogen, *cleared, *extra])
    labels = [e.booth for e in filled]
    assert len(set(labels)) == len(labels) and all(BOOTH_PATTERN.match(label) for label in labels)
    assert {e.id: e.booth for e in filled if e.id.startswith("zz-")} == {
        "zz-hydrogen-1": "H-02",
        "zz-hydrogen-2": "H-03",
    }
    layout = layout_hall(filled)
    assert {b.exhibit_id: b.id for b in layout.booths} == booth_labels(filled)


def test_duplicate_booth_labels_are_refused(demo: list[Exhibit]) -> None:
    clash = [demo[0], dataclasses.replace(demo[1], booth=demo[0].booth)]
    with pytest.raises(ValueError, match="booth"):
        layout_hall(clash)
    with pytest.raises(ValueError):
        layout_hall(demo, per_row=0)


def test_an_empty_catalog_makes_an_empty_hall() -> None:
    layout = layout_hall([])
    assert layout.booths == [] and layout.aisles == [] and min(layout.size) > 0


def test_hall_json(demo: list[Exhibit], layout: HallLayout) -> None:
    data = json.loads(json.dumps(hall_json(layout)))
    assert data["size"] == list(layout.size)
    assert len(data["aisles"]) == len(layout.aisles)
    assert {b["exhibit"]: b["booth"] for b in data["booths"]} == {e.id: e.booth for e in demo}
    first = next(b for b in data["booths"] if b["booth"] == "H-02")
    assert set(first) == {"booth", "exhibit", "category", "aisle", "position", "rotation_y", "footprint"}
    assert first["category"] == "hydrogen" and first["rotation_y"] == 180 and first["footprint"] == [6, 6]
    assert len(first["position"]) == 3
    aisle = data["aisles"][0]
    assert aisle["color"].startswith("#") and aisle["label"] == Category(aisle["category"]).label
