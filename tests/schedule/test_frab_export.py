"""frab / pretalx schedule.json export (server/schedule/frab_export.py): the c3voc schema, round trip."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from server.schedule.frab_export import to_frab
from server.schedule.frab_import import load_frab_text
from server.schedule.model import Event
from server.schedule.yaml_format import load_yaml_text
from tests.conftest import frab_validator

BASE_URL = "https://forum.example.org"

EVENT_YAML = """
event:
  id: gdcs2020
  title: {zh: "2020绿色发展城市峰会", en: "2020 Green Development City Summit"}
  timezone: Asia/Shanghai
venues:
  - {id: shenzhen, name: {zh: 深圳主会场, en: Shenzhen}, timezone: Asia/Shanghai, city: Shenzhen}
  - {id: lyon, name: {zh: 法国里昂分会场, en: Lyon venue}, timezone: Europe/Paris, city: Lyon}
stages:
  - {id: main, kind: main, venue: shenzhen, title: {zh: 主论坛, en: Main Forum}}
  - {id: hydrogen, kind: forum, venue: shenzhen, title: {zh: 氢能产业论坛, en: Hydrogen Forum}}
  - id: battery-seminar
    kind: closed-door
    venue: shenzhen
    title: {zh: 电池闭门研讨会, en: Battery Seminar}
  - {id: europe, kind: forum, venue: lyon, title: {zh: 欧洲分会场, en: European Session}}
sessions:
  - id: main-opening
    stage: main
    title: {zh: 开幕式, en: Opening}
    start: 2020-12-06T09:00:00+08:00
    end: 2020-12-06T10:00:00+08:00
    speakers: [{name: 王主席, affiliation: 论坛执行主席}]
    type: ceremony
  - id: main-stern-keynote
    stage: main
    title: {zh: 主旨演讲：绿色复苏, en: "Keynote: a green recovery"}
    start: 2020-12-06T10:00:00+08:00
    end: 2020-12-06T10:45:00+08:00
    speakers: [{name: Lord Nicholas Stern, remote: true, affiliation: LSE, country: GB}]
    track: keynotes
    language: en
    abstract: {zh: 疫情后的绿色复苏。, en: The green recovery after the pandemic.}
  - id: hydrogen-outlook
    stage: hydrogen
    title: {zh: 氢能产业展望, en: Hydrogen industry outlook}
    start: 2020-12-07T09:00:00+08:00
    end: 2020-12-07T10:30:00+08:00
    track: energy
  - id: battery-long-life
    stage: battery-seminar
    title: {zh: 超长寿命电池, en: Ultra-long-life batteries}
    start: 2020-12-07T14:00:00+08:00
    end: 2020-12-07T16:00:00+08:00
    do_not_stream: true
  - id: europe-lyon
    stage: europe
    title: {zh: 中欧绿色城市对话, en: Europe–China green cities dialogue}
    start: 2020-12-07T14:30:00+01:00
    end: 2020-12-07T17:30:00+01:00
    speakers: [{name: Marie Dupont, affiliation: Lyon Metropole}]
    track: international
    language: en
  - id: main-closing
    stage: main
    title: {zh: 闭幕式, en: Closing}
    start: 2020-12-08T16:00:00+08:00
    end: 2020-12-08T17:00:00+08:00
"""


def _event() -> Event:
    return load_yaml_text(EVENT_YAML, file="t.yaml")


def _frab_events(document: dict[str, Any]) -> list[dict[str, Any]]:
    days = document["schedule"]["conference"]["days"]
    return [item for day in days for items in day["rooms"].values() for item in items]


def _day_of(document: dict[str, Any], slug: str) -> str:
    for day in document["schedule"]["conference"]["days"]:
        for items in day["rooms"].values():
            if any(item["slug"] == slug for item in items):
                return str(day["date"])
    raise AssertionError(f"{slug} not exported")


@pytest.mark.parametrize("stages", [None, ["main", "hydrogen", "battery-seminar", "europe"]])
def test_export_validates_against_the_schema(stages: list[str] | None) -> None:
    document = to_frab(_event(), base_url=BASE_URL, stages=stages)
    validator = frab_validator()
    errors = [f"{e.json_path}: {e.message}" for e in validator.iter_errors(document)]
    assert errors == []
    # Format checks depend on optional packages; these hold whatever is installed.
    for item in _frab_events(document):
        uuid.UUID(item["guid"])
        assert datetime.fromisoformat(item["date"]).tzinfo is not None
        assert datetime.fromisoformat(item["end"]).tzinfo is not None
    json.dumps(document)  # plain JSON values only


def test_the_schema_refuses_what_frab_readers_would() -> None:
    document = to_frab(_event(), base_url=BASE_URL)
    item = _frab_events(document)[0]
    del item["guid"]
    item["start"] = "25:00"
    item["id"] = "seven"
    del document["schedule"]["conference"]["acronym"]
    found = {(e.validator, str(e.instance)[:20]) for e in frab_validator().iter_errors(document)}
    assert {v for v, _ in found} == {"required", "pattern", "type"}
    assert len(found) == 4


def test_export_keeps_chinese_titles_and_pretalx_persons() -> None:
    items = {item["slug"]: item for item in _frab_events(to_frab(_event(), base_url=BASE_URL))}
    assert items["hydrogen-outlook"]["title"] == "Hydrogen industry outlook"
    assert items["hydrogen-outlook"]["subtitle"] == "氢能产业展望"
    assert items["main-opening"]["persons"][0]["name"] == "王主席"
    assert set(items["main-opening"]["persons"][0]) == {"code", "name", "biography"}
    assert items["main-stern-keynote"]["url"] == f"{BASE_URL}/#session-main-stern-keynote"


def test_closed_stage_is_left_out_unless_listed() -> None:
    event = _event()
    public = to_frab(event, base_url=BASE_URL)
    text = json.dumps(public, ensure_ascii=False)
    assert "battery" not in text.lower()
    assert "电池" not in text
    assert {r["slug"] for r in public["schedule"]["conference"]["rooms"]} == {"main", "hydrogen", "europe"}

    listed = to_frab(event, base_url=BASE_URL, stages=["battery-seminar"])
    assert [item["slug"] for item in _frab_events(listed)] == ["battery-long-life"]
    assert listed["schedule"]["conference"]["rooms"][0]["name"] == "Battery Seminar"


def test_ids_and_guids_are_stable() -> None:
    first, second = (to_frab(_event(), base_url=BASE_URL) for _ in range(2))
    assert first == second
    ids = [item["id"] for item in _frab_events(first)]
    assert len(set(ids)) == len(ids)
    assert min(ids) >= 1


def test_session_crossing_midnight_in_shanghai_belongs_to_the_day_it_starts() -> None:
    document = to_frab(_event(), base_url=BASE_URL)
    # 14:30-17:30 in Lyon is 21:30-00:30 in Shanghai: still 7 December.
    assert _day_of(document, "europe-lyon") == "2020-12-07"
    lyon = next(item for item in _frab_events(document) if item["slug"] == "europe-lyon")
    assert lyon["date"] == "2020-12-07T14:30:00+01:00"
    assert (lyon["start"], lyon["duration"]) == ("14:30", "03:00")
    assert lyon["end"] == "2020-12-07T17:30:00+01:00"
    assert lyon["room"] == "European Session"
    conference = document["schedule"]["conference"]
    day = next(d for d in conference["days"] if d["date"] == "2020-12-07")
    assert datetime.fromisoformat(day["day_end"]) >= datetime(2020, 12, 7, 16, 30, tzinfo=UTC)
    assert [d["date"] for d in conference["days"]] == ["2020-12-06", "2020-12-07", "2020-12-08"]
    assert conference["daysCount"] == 3
    assert conference["time_zone_name"] == "Asia/Shanghai"
    rooms = {r["slug"]: r for r in conference["rooms"]}
    assert (rooms["main"]["type"], rooms["europe"]["type"]) == ("stage", "online")


def test_round_trip_keeps_every_session() -> None:
    event = _event()
    document = to_frab(event, base_url=BASE_URL, stages=[s.id for s in event.stages])
    back = load_frab_text(json.dumps(document, ensure_ascii=False), file="rt.json")

    def summary(e: Event) -> dict[str, tuple[Any, ...]]:
        return {
            s.id: (
                s.stage,
                s.start.astimezone(UTC),
                s.end.astimezone(UTC),
                s.title.en,
                [p.name for p in s.speakers],
                s.track,
                s.type,
                s.language,
                s.do_not_stream,
            )
            for s in e.sessions
        }

    assert summary(back) == summary(event)
    hydrogen = back.session("hydrogen-outlook")
    assert hydrogen is not None
    assert hydrogen.title.zh == "氢能产业展望"
    assert back.id == "gdcs2020"
