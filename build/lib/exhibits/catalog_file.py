"""Loading a roadshow catalog from YAML or CSV, with every bad row reported.

Both formats come down to rows of flat fields::

    id, title_en, title_zh, organisation, country, category, summary_en, summary_zh,
    investment_stage, contact, booth, envelope, tags

In YAML the file is ``{exhibits: [row, ...]}`` and ``title`` / ``summary`` may be nested
``{en: ..., zh: ...}`` mappings; ``envelope`` is ``[w, h, d]`` in metres and ``tags`` a
list. In CSV (UTF-8, header row) ``envelope`` is ``4x4x4`` and ``tags`` are separated by
``;``. A file with any bad row is refused as a whole (``exhibit.invalid_catalog``, 400)
and the error lists every problem by row and field: a catalog half-loaded would put
booths in the hall that the organisers never approved.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from exhibits.catalog import Category, Exhibit, InvestmentStage
from exhibits.countries import is_country
from server.errors import ForumcastError, Problem

FIELDS = (
    "id",
    "title_en",
    "title_zh",
    "organisation",
    "country",
    "category",
    "summary_en",
    "summary_zh",
    "investment_stage",
    "contact",
    "booth",
    "envelope",
    "tags",
)
REQUIRED = FIELDS[:10]
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{1,63}$")
BOOTH_PATTERN = re.compile(r"^[A-Z]{1,2}-\d{2,3}$")
#: Longest accepted text per field, characters.
MAX_TEXT = {"title_en": 200, "title_zh": 200, "organisation": 200, "summary_en": 2000, "summary_zh": 2000}


def load_catalog(path: str | Path) -> list[Exhibit]:
    """The exhibits of a ``.yaml``/``.yml`` or ``.csv`` file, or ``exhibit.invalid_catalog``."""
    path = Path(path)
    name = path.name
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _invalid([Problem(name, "", f"cannot read the file: {exc}")]) from None
    if path.suffix.lower() == ".csv":
        rows, problems = _csv_rows(text, name)
    elif path.suffix.lower() in (".yaml", ".yml"):
        rows, problems = _yaml_rows(text, name)
    else:
        raise _invalid([Problem(name, "", "a catalog is a .yaml, .yml or .csv file")])
    return parse_rows(rows, name, problems)


def parse_rows(
    rows: Iterable[tuple[str, dict[str, Any]]], file: str, problems: list[Problem] | None = None
) -> list[Exhibit]:
    """Exhibits from ``(location, fields)`` rows; raises with every problem if any row is bad."""
    problems = list(problems or [])
    exhibits: list[Exhibit] = []
    seen_ids: dict[str, str] = {}
    seen_booths: dict[str, str] = {}
    for where, row in rows:
        before = len(problems)
        exhibit = _exhibit(row, file, where, problems)
        if exhibit is None or len(problems) > before:
            continue
        if exhibit.id in seen_ids:
            problems.append(Problem(file, f"{where}.id", f"duplicate id, first at {seen_ids[exhibit.id]}"))
            continue
        if exhibit.booth and exhibit.booth in seen_booths:
            problems.append(
                Problem(
                    file, f"{where}.booth", f"booth {exhibit.booth} is taken by {seen_booths[exhibit.booth]}"
                )
            )
            continue
        seen_ids[exhibit.id] = where
        if exhibit.booth:
            seen_booths[exhibit.booth] = exhibit.id
        exhibits.append(exhibit)
    if not exhibits and not problems:
        problems.append(Problem(file, "", "the catalog holds no exhibits"))
    if problems:
        raise _invalid(problems)
    return exhibits


def _invalid(problems: list[Problem]) -> ForumcastError:
    lines = "\n".join(f"  {p}" for p in problems)
    return ForumcastError(
        "exhibit.invalid_catalog",
        f"{len(problems)} problem(s) in the catalog:\n{lines}",
        details=[{"file": p.file, "path": p.path, "reason": p.reason} for p in problems],
    )


def _yaml_rows(text: str, file: str) -> tuple[list[tuple[str, dict[str, Any]]], list[Problem]]:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return [], [Problem(file, "", f"not valid YAML: {exc}")]
    if not isinstance(doc, dict) or not isinstance(doc.get("exhibits"), list):
        return [], [Problem(file, "exhibits", "expected a mapping with an 'exhibits' list")]
    rows: list[tuple[str, dict[str, Any]]] = []
    problems: list[Problem] = []
    for index, node in enumerate(doc["exhibits"]):
        where = f"exhibits[{index}]"
        if not isinstance(node, dict):
            problems.append(Problem(file, where, "expected a mapping"))
            continue
        flat: dict[str, Any] = {}
        for key, value in node.items():
            if key in ("title", "summary") and isinstance(value, dict):
                for lang, text_value in value.items():
                    flat[f"{key}_{lang}"] = text_value
            else:
                flat[str(key)] = value
        rows.append((where, flat))
    return rows, problems


def _csv_rows(text: str, file: str) -> tuple[list[tuple[str, dict[str, Any]]], list[Problem]]:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = reader.fieldnames or []
    missing = [f for f in REQUIRED if f not in header]
    if missing:
        return [], [Problem(file, "header", f"missing column(s): {', '.join(missing)}")]
    rows: list[tuple[str, dict[str, Any]]] = []
    for record in reader:
        # Row 1 is the header, so the first record is row 2, as a spreadsheet shows it.
        where = f"row {reader.line_num}"
        row: dict[str, Any] = {k: v for k, v in record.items() if k is not None and v not in (None, "")}
        if None in record:
            row["__extra__"] = record[None]
        if "envelope" in row:
            row["envelope"] = row["envelope"].lower().split("x")
        if "tags" in row:
            row["tags"] = [t.strip() for t in row["tags"].split(";") if t.strip()]
        rows.append((where, row))
    return rows, []


def _exhibit(row: dict[str, Any], file: str, where: str, problems: list[Problem]) -> Exhibit | None:
    def bad(field: str, reason: str) -> None:
        problems.append(Problem(file, f"{where}.{field}" if field else where, reason))

    if "__extra__" in row:
        bad("", "more values than columns")
    for key in row:
        if key not in FIELDS and key != "__extra__":
            bad(key, "unknown field")
    text: dict[str, str] = {}
    for key in REQUIRED:
        value = row.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            bad(key, "required")
        elif not isinstance(value, str):
            bad(key, f"expected text, got {type(value).__name__}")
        elif len(value) > MAX_TEXT.get(key, 200):
            bad(key, f"longer than {MAX_TEXT.get(key, 200)} characters")
        else:
            text[key] = value.strip()
    if "id" in text and not ID_PATTERN.match(text["id"]):
        bad("id", "use 2-64 lower-case letters, digits and '-'")
    if "country" in text and not is_country(text["country"].upper()):
        bad("country", f"{text['country']!r} is not an ISO 3166-1 alpha-2 code")
    category = _enum(Category, text.get("category"), "category", bad)
    stage = _enum(InvestmentStage, text.get("investment_stage"), "investment_stage", bad)
    booth = row.get("booth", "")
    if booth and (not isinstance(booth, str) or not BOOTH_PATTERN.match(booth)):
        bad("booth", f"expected a booth label like 'H-03', got {booth!r}")
    envelope = _envelope(row.get("envelope"), bad)
    tags = row.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        bad("tags", "expected a list of text")
        tags = []
    if len(text) < len(REQUIRED) or category is None or stage is None or envelope is None:
        return None
    return Exhibit(
        id=text["id"],
        title_en=text["title_en"],
        title_zh=text["title_zh"],
        organisation=text["organisation"],
        country=text["country"].upper(),
        category=category,
        summary_en=text["summary_en"],
        summary_zh=text["summary_zh"],
        investment_stage=stage,
        contact=text["contact"],
        booth=str(booth),
        envelope=envelope,
        demo=False,
        tags=tuple(tags),
    )


def _enum(kind: Any, value: str | None, field: str, bad: Any) -> Any:
    if value is None:
        return None
    try:
        return kind(value.lower())
    except ValueError:
        bad(field, f"unknown {field} {value!r}; known: {', '.join(m.value for m in kind)}")
        return None


def _envelope(value: Any, bad: Any) -> tuple[float, float, float] | None:
    if value is None:
        return (4.0, 4.0, 4.0)
    try:
        numbers = [float(v) for v in value]
    except (TypeError, ValueError):
        numbers = []
    if len(numbers) != 3 or not all(0.1 <= n <= 50 for n in numbers):
        bad("envelope", "expected width, height and depth in metres, each 0.1 to 50")
        return None
    return (numbers[0], numbers[1], numbers[2])
