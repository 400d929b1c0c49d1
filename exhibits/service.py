"""The exhibition as the server holds it: the catalog, each exhibit's models, the hall.

(Skeleton: grows with the model store, the ingest jobs and the hall.)
"""

from __future__ import annotations

from exhibits.catalog import Catalog, Exhibit


class Exhibition:
    """The catalog and everything attached to its exhibits."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def exhibit(self, exhibit_id: str) -> Exhibit:
        """The exhibit, or ``exhibit.unknown`` (404)."""
        return self.catalog.get(exhibit_id)
