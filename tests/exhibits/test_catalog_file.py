"""Catalog files: YAML and CSV load to the same exhibits; every bad row is reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from exhibits.catalog import Category, InvestmentStage
from exhibits.catalog_file import load_catalog
from server.errors import ForumcastError
from tests.conftest import FIXTURES

HEADER = (
    "id,title_en,title_zh,organisation,country,category,summary_en,summary_zh,"
    "investment_stage,contact,booth,envelope,tags\n"
)
GOOD = (
    "de-solar-01,Carport PV,车棚光伏,Beispiel GmbH,de,solar,Kits.,套件。,"
    "series-a,a@example.de,S-01,4x3x5,pv;carport\n"
)


def problems(path: Path) -> list[tuple[str, str]]:
    with pytest.raises(ForumcastError) as caught:
        load_catalog(path)
    assert caught.value.code == "exhibit.invalid_catalog" and caught.value.wire.http == 400
    return [(d["path"], d["reason"]) for d in caught.value.details]


def test_yaml_fixture_loads() -> None:
    exhibits = load_catalog(FIXTURES / "exhibits.yaml")
    assert len(exhibits) == 6
    wind = next(e for e in exhibits if e.id == "dk-wind-01")
    assert (
        wind.category is Category.WIND
        and wind.envelope == (4.0, 6.0, 4.0)
        and wind.title_zh == "海岛小型风机"
    )
    assert not any(e.demo for e in exhibits)


def test_csv_row_loads_with_envelope_and_tags(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("\ufeff" + HEADER + GOOD, encoding="utf-8")
    (exhibit,) = load_catalog(path)
    assert exhibit.country == "DE" and exhibit.investment_stage is InvestmentStage.SERIES_A
    assert exhibit.envelope == (4.0, 3.0, 5.0) and exhibit.tags == ("pv", "carport")


def test_csv_every_bad_row_is_listed_with_its_row_number(tmp_path: Path) -> None:
    rows = [
        GOOD,
        "Bad Id,T,标题,O,XX,fusion,S,摘要,seed,c,S-02,,\n",
        GOOD.replace("S-01", "S-09"),  # duplicate id
        "fr-x-01,T,标题,O,FR,solar,S,摘要,unicorn,c,s1,1x2,\n",
        "gb-x-01,,标题,O,GB,wind,S,摘要,seed,,W-01,,\n",
    ]
    path = tmp_path / "c.csv"
    path.write_text(HEADER + "".join(rows), encoding="utf-8")
    found = problems(path)
    assert ("row 3.id", "use 2-64 lower-case letters, digits and '-'") in found
    assert ("row 3.country", "'XX' is not an ISO 3166-1 alpha-2 code") in found
    assert any(p == "row 3.category" and "unknown category 'fusion'" in r for p, r in found)
    assert any(p == "row 4.id" and "duplicate id, first at row 2" in r for p, r in found)
    assert any(p == "row 5.investment_stage" for p, _ in found)
    assert any(p == "row 5.booth" for p, _ in found) and any(p == "row 5.envelope" for p, _ in found)
    assert ("row 6.title_en", "required") in found and ("row 6.contact", "required") in found


def test_csv_missing_columns(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("id,title_en\nx,y\n")
    assert problems(path) == [
        (
            "header",
            "missing column(s): title_zh, organisation, country, category, "
            "summary_en, summary_zh, investment_stage, contact",
        )
    ]


def test_yaml_problems_name_the_entry(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "exhibits:\n"
        "  - id: cn-a-01\n    title: {en: A, zh: 甲}\n    organisation: O\n    country: CN\n"
        "    category: solar\n    summary: {en: S, zh: 摘}\n    investment_stage: seed\n"
        "    contact: c\n    colour: green\n    envelope: [1, 2]\n"
        "  - just text\n",
        encoding="utf-8",
    )
    found = problems(path)
    assert ("exhibits[0].colour", "unknown field") in found
    assert any(p == "exhibits[0].envelope" for p, _ in found)
    assert ("exhibits[1]", "expected a mapping") in found


@pytest.mark.parametrize(
    ("name", "text", "reason"),
    [
        ("c.yaml", "exhibits: [", "not valid YAML"),
        ("c.yaml", "items: []", "expected a mapping with an 'exhibits' list"),
        ("c.yaml", "exhibits: []", "the catalog holds no exhibits"),
        ("c.json", "{}", "a catalog is a .yaml, .yml or .csv file"),
    ],
)
def test_unusable_files(tmp_path: Path, name: str, text: str, reason: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    assert any(reason in r for _, r in problems(path))


def test_missing_file(tmp_path: Path) -> None:
    assert any("cannot read the file" in r for _, r in problems(tmp_path / "none.csv"))
