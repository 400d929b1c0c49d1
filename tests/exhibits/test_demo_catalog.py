"""The demo exhibition's content: size, spread, both languages, demo marking, booths."""

from __future__ import annotations

import dataclasses
import re
from collections import Counter

import pytest

from exhibits.catalog import Catalog, Category, Exhibit
from exhibits.catalog_file import BOOTH_PATTERN, parse_rows
from exhibits.countries import is_country
from exhibits.demo_catalog import demo_catalog
from exhibits.hall import AISLE_LETTERS, booth_labels

CJK = re.compile(r"[\u4e00-\u9fff]")
CONTACT = re.compile(r"^[a-z]+@[a-z0-9-]+\.example\.(org|com|net)$")


@pytest.fixture(scope="module")
def demo() -> list[Exhibit]:
    return demo_catalog()


def test_size_countries_and_categories(demo: list[Exhibit]) -> None:
    assert len(demo) >= 120
    countries = Counter(e.country for e in demo)
    assert len(countries) >= 20
    assert all(is_country(code) for code in countries)
    # The reference event names these among its 20+ countries and regions.
    assert {"CN", "DE", "FR", "GB", "DK", "IL"} <= set(countries)
    per_category = Counter(e.category for e in demo)
    assert set(per_category) == set(Category)
    assert max(per_category.values()) - min(per_category.values()) <= 1


def test_same_list_every_call(demo: list[Exhibit]) -> None:
    assert demo_catalog() == demo


def test_ids_are_unique_slugs_of_country_and_category(demo: list[Exhibit]) -> None:
    assert len({e.id for e in demo}) == len(demo)
    for exhibit in demo:
        country, kind, number = exhibit.id.split("-")
        assert country == exhibit.country.lower()
        assert re.fullmatch(r"[a-z]+", kind) and re.fullmatch(r"\d{2}", number)
    assert "cn-hydrogen-01" in {e.id for e in demo}


def test_titles_and_summaries_in_both_languages(demo: list[Exhibit]) -> None:
    assert len({e.title_en for e in demo}) == len(demo)
    assert len({e.title_zh for e in demo}) == len(demo)
    for exhibit in demo:
        assert not CJK.search(exhibit.title_en + exhibit.summary_en)
        assert CJK.search(exhibit.title_zh) and CJK.search(exhibit.summary_zh)
        assert len(exhibit.summary_en) > len(exhibit.title_en) / 2
        assert "{" not in exhibit.title_en + exhibit.title_zh + exhibit.summary_en + exhibit.summary_zh


def test_everything_says_it_is_a_demo(demo: list[Exhibit]) -> None:
    for exhibit in demo:
        assert exhibit.demo
        assert exhibit.organisation.endswith("(demo)")
        assert "demo" in exhibit.summary_en.lower() and "示例" in exhibit.summary_zh
        assert CONTACT.match(exhibit.contact), exhibit.contact
    assert len({e.investment_stage for e in demo}) >= 4


def test_booths_follow_the_hall_rule(demo: list[Exhibit]) -> None:
    assert len({e.booth for e in demo}) == len(demo)
    for exhibit in demo:
        assert BOOTH_PATTERN.match(exhibit.booth)
        assert exhibit.booth.split("-")[0] == AISLE_LETTERS[exhibit.category]
    unlabelled = [dataclasses.replace(e, booth="") for e in demo]
    assert booth_labels(unlabelled) == {e.id: e.booth for e in demo}


def test_envelopes_suit_the_category(demo: list[Exhibit]) -> None:
    wind = [e for e in demo if e.category is Category.WIND]
    assert all(e.envelope == (4.0, 6.0, 4.0) for e in wind)
    assert all(max(e.envelope) <= 6.0 for e in demo)


def test_passes_the_checks_of_an_uploaded_catalog(demo: list[Exhibit]) -> None:
    rows = [
        (
            f"exhibits[{n}]",
            {
                **{
                    f.name: getattr(e, f.name)
                    for f in dataclasses.fields(e)
                    if f.name not in {"demo", "tags"}
                },
                "category": e.category.value,
                "investment_stage": e.investment_stage.value,
                "envelope": list(e.envelope),
                "tags": list(e.tags),
            },
        )
        for n, e in enumerate(demo)
    ]
    parsed = parse_rows(rows, "demo.yaml")
    assert parsed == [dataclasses.replace(e, demo=False) for e in demo]


def test_searchable_in_both_languages(demo: list[Exhibit]) -> None:
    catalog = Catalog(demo)
    assert catalog.query(q="battery swap").total >= 2
    assert catalog.query(q="储能").total >= 5
    assert catalog.query(country="DK", category="wind").total == 2
