"""The roadshow catalog: exhibits, their categories, and the queries the hall runs on them.

An :class:`Exhibit` is one investable project shown in the hall. The catalog is loaded
from YAML or CSV (``load_catalog``) with every bad row reported, or generated for the demo
(``exhibits.demo_catalog``). Queries (``Catalog.query``) filter by country, category and
full text over both languages' titles and summaries, and paginate over a stable order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum

from server.errors import ForumcastError


class Category(StrEnum):
    """Technology categories of the roadshow (the value is the slug used in the API)."""

    HYDROGEN = "hydrogen"
    STORAGE = "energy-storage"
    BATTERY_SWAP = "battery-swap"
    SOLAR = "solar"
    WIND = "wind"
    SMART_GRID = "smart-grid"
    GREEN_BUILDING = "green-building"
    CCUS = "carbon-capture"
    WASTE = "waste-recycling"
    WATER = "water-sponge-city"
    TRANSPORT = "green-transport"
    MATERIALS = "low-carbon-materials"

    @property
    def label(self) -> str:
        return CATEGORY_LABELS[self]


CATEGORY_LABELS: dict[Category, str] = {
    Category.HYDROGEN: "Hydrogen & fuel cells",
    Category.STORAGE: "Energy storage",
    Category.BATTERY_SWAP: "Battery swap & EVs",
    Category.SOLAR: "Solar",
    Category.WIND: "Wind",
    Category.SMART_GRID: "Smart grid",
    Category.GREEN_BUILDING: "Green buildings",
    Category.CCUS: "Carbon capture & use",
    Category.WASTE: "Waste & recycling",
    Category.WATER: "Water & sponge city",
    Category.TRANSPORT: "Green transport",
    Category.MATERIALS: "Low-carbon materials",
}


class InvestmentStage(StrEnum):
    SEED = "seed"
    SERIES_A = "series-a"
    SERIES_B = "series-b"
    GROWTH = "growth"
    PROJECT_FINANCE = "project-finance"
    STRATEGIC = "strategic-partner"


@dataclass(frozen=True, slots=True)
class Exhibit:
    """One roadshow project. ``contact`` is never shown publicly."""

    id: str
    title_en: str
    title_zh: str
    organisation: str
    #: ISO 3166-1 alpha-2, upper case.
    country: str
    category: Category
    summary_en: str
    summary_zh: str
    investment_stage: InvestmentStage
    contact: str
    #: Booth label in the hall ("A-07"); the hall layout places it.
    booth: str
    #: Envelope the model is fitted into, metres (width x, height y, depth z).
    envelope: tuple[float, float, float] = (4.0, 4.0, 4.0)
    demo: bool = False
    tags: tuple[str, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a query's results and the totals a pager needs."""

    items: list[Exhibit]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def _fold(text: str) -> str:
    return " ".join(text.casefold().split())


class Catalog:
    """The exhibits of the hall, in their stable order (booth, then id)."""

    def __init__(self, exhibits: Iterable[Exhibit]) -> None:
        ordered = sorted(exhibits, key=lambda e: (e.booth, e.id))
        self._by_id = {e.id: e for e in ordered}
        if len(self._by_id) != len(ordered):
            raise ValueError("duplicate exhibit ids")
        self._order = ordered
        # Lower-cased text of both languages, searched by substring: Chinese has no spaces,
        # so word tokenising would miss most queries.
        self._text = {
            e.id: _fold(" ".join((e.title_en, e.title_zh, e.summary_en, e.summary_zh, e.organisation)))
            for e in ordered
        }

    def __len__(self) -> int:
        return len(self._order)

    def __iter__(self) -> Iterator[Exhibit]:
        return iter(self._order)

    def __contains__(self, exhibit_id: object) -> bool:
        return exhibit_id in self._by_id

    def get(self, exhibit_id: str) -> Exhibit:
        try:
            return self._by_id[exhibit_id]
        except KeyError:
            raise ForumcastError("exhibit.unknown", f"no exhibit {exhibit_id!r}") from None

    def countries(self) -> list[str]:
        return sorted({e.country for e in self._order})

    def query(
        self,
        *,
        country: str | None = None,
        category: str | None = None,
        q: str | None = None,
        page: int = 1,
        per_page: int = 24,
        max_per_page: int = 200,
    ) -> Page:
        """Exhibits matching every given filter, one page of them in catalog order.

        ``country`` and ``category`` accept a comma-separated list (any of them matches);
        ``q`` matches when every whitespace-separated term occurs in a title, summary or
        organisation, either language, ignoring case.
        """
        if page < 1:
            raise ForumcastError("exhibit.bad_query", f"page must be 1 or more, got {page}")
        if not 1 <= per_page <= max_per_page:
            raise ForumcastError(
                "exhibit.bad_query", f"per_page must be between 1 and {max_per_page}, got {per_page}"
            )
        countries = _choices(country, str.upper)
        categories = _choices(category, str.lower)
        if categories:
            unknown = categories - {c.value for c in Category}
            if unknown:
                raise ForumcastError(
                    "exhibit.bad_query",
                    f"unknown category {', '.join(sorted(unknown))}; "
                    f"known: {', '.join(c.value for c in Category)}",
                )
        terms = _fold(q or "").split()
        hits = [
            e
            for e in self._order
            if (not countries or e.country in countries)
            and (not categories or e.category.value in categories)
            and all(term in self._text[e.id] for term in terms)
        ]
        start = (page - 1) * per_page
        return Page(hits[start : start + per_page], len(hits), page, per_page)


def _choices(value: str | None, norm: Callable[[str], str]) -> set[str]:
    return {norm(v.strip()) for v in (value or "").split(",") if v.strip()}
