"""The roadshow catalog: exhibits, their categories, and the queries the hall runs on them.

An :class:`Exhibit` is one investable project shown in the hall. The catalog is loaded
from YAML or CSV (``load_catalog``) with every bad row reported, or generated for the demo
(``exhibits.demo_catalog``). Queries (``Catalog.query``) filter by country, category and
full text over both languages' titles and summaries, and paginate over a stable order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


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
