"""Catalog queries: filters, full text in both languages, pagination over a stable order."""

from __future__ import annotations

import pytest

from exhibits.catalog import Catalog, Category
from exhibits.catalog_file import load_catalog
from server.errors import ForumcastError
from tests.conftest import FIXTURES


@pytest.fixture
def catalog() -> Catalog:
    return Catalog(load_catalog(FIXTURES / "exhibits.yaml"))


def ids(page: object) -> list[str]:
    return [e.id for e in page.items]  # type: ignore[attr-defined]


def test_order_is_by_booth_then_id(catalog: Catalog) -> None:
    assert [e.booth for e in catalog] == ["E-01", "E-02", "H-01", "R-01", "S-01", "W-01"]


def test_filters_combine_and_accept_lists(catalog: Catalog) -> None:
    assert ids(catalog.query(country="cn")) == ["cn-storage-02", "cn-hydrogen-01"]
    storage = catalog.query(country="CN,FR", category="energy-storage")
    assert ids(storage) == ["fr-storage-01", "cn-storage-02"]
    assert ids(catalog.query(category="wind,solar")) == ["de-solar-01", "dk-wind-01"]
    assert catalog.query(country="JP").total == 0


def test_full_text_in_both_languages_every_term_must_match(catalog: Catalog) -> None:
    assert ids(catalog.query(q="储能")) == ["fr-storage-01", "cn-storage-02"]
    assert ids(catalog.query(q="  BATTERY   storage ")) == ["fr-storage-01"]
    assert ids(catalog.query(q="battery wind")) == []
    assert ids(catalog.query(q="Vind")) == ["dk-wind-01"]  # organisation names count too


def test_pages_cover_everything_once_with_totals(catalog: Catalog) -> None:
    pages = [catalog.query(page=n, per_page=4) for n in (1, 2, 3)]
    assert [p.total for p in pages] == [6, 6, 6] and pages[0].pages == 2
    assert ids(pages[0]) + ids(pages[1]) == [e.id for e in catalog]
    assert ids(pages[2]) == []


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"page": 0}, "page must be 1 or more"),
        ({"per_page": 0}, "per_page must be between 1 and 200"),
        ({"per_page": 201}, "per_page must be between 1 and 200"),
        ({"category": "solar,fusion"}, "unknown category fusion"),
    ],
)
def test_bad_queries_say_what_is_wrong(catalog: Catalog, kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(ForumcastError) as caught:
        catalog.query(**kwargs)  # type: ignore[arg-type]
    assert caught.value.code == "exhibit.bad_query" and fragment in caught.value.message


def test_unknown_exhibit_is_a_404_error(catalog: Catalog) -> None:
    with pytest.raises(ForumcastError) as caught:
        catalog.get("nope")
    assert caught.value.code == "exhibit.unknown" and caught.value.wire.http == 404


def test_every_category_has_a_label() -> None:
    assert all(c.label for c in Category)
