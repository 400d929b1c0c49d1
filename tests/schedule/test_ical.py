"""iCalendar export: one VEVENT per public session, in the venue's zone, with VTIMEZONEs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from icalendar import Calendar

from server.schedule.ical import to_ical
from server.schedule.model import Event
from server.schedule.yaml_format import load_yaml_text

BASE_URL = "https://forum.example.org"
STAMP = datetime(2020, 12, 1, 12, 0, tzinfo=UTC)

EVENT_YAML = """
event:
  id: gdcs2020
  title: {zh: "2020绿色发展城市峰会", en: "2020 Green Development City Summit"}
  timezone: Asia/Shanghai
venues:
  - {id: shenzhen, name: {zh: 深圳主会场, en: Shenzhen main venue}, timezone: Asia/Shanghai, city: Shenzhen}
  - {id: lyon, name: {zh: 法国里昂分会场, en: Lyon venue}, timezone: Europe/Paris, city: Lyon}
stages:
  - {id: main, kind: main, venue: shenzhen, title: {zh: 主论坛, en: Main Forum}}
  - id: battery-seminar
    kind: closed-door
    venue: shenzhen
    title: {zh: 电池闭门研讨会, en: Battery Seminar}
  - {id: europe, kind: forum, venue: lyon, title: {zh: 欧洲分会场, en: European Session}}
sessions:
  - id: main-stern-keynote
    stage: main
    title: {zh: 主旨演讲：绿色复苏, en: "Keynote: a green recovery"}
    start: 2020-12-06T10:00:00+08:00
    end: 2020-12-06T10:45:00+08:00
    speakers: [{name: Lord Nicholas Stern, remote: true, affiliation: LSE}, {name: 王主席}]
    track: keynotes
    type: keynote
    abstract: {en: The green recovery after the pandemic.}
  - id: battery-long-life
    stage: battery-seminar
    title: {zh: 超长寿命电池, en: Ultra-long-life batteries}
    start: 2020-12-07T14:00:00+08:00
    end: 2020-12-07T16:00:00+08:00
  - id: europe-lyon
    stage: europe
    title: {zh: 中欧绿色城市对话, en: Europe–China green cities dialogue}
    start: 2020-12-07T14:30:00+01:00
    end: 2020-12-07T17:30:00+01:00
    track: international
"""


def _event() -> Event:
    return load_yaml_text(EVENT_YAML, file="t.yaml")


def _calendar(stages: list[str] | None = None) -> Calendar:
    return Calendar.from_ical(to_ical(_event(), base_url=BASE_URL, stages=stages, stamp=STAMP))


def _vevent(calendar: Calendar, session_id: str) -> Any:
    (vevent,) = [e for e in calendar.walk("VEVENT") if str(e["UID"]) == f"{session_id}@gdcs2020.forumcast"]
    return vevent


def test_calendar_properties() -> None:
    calendar = _calendar()
    assert str(calendar["VERSION"]) == "2.0"
    assert str(calendar["CALSCALE"]) == "GREGORIAN"
    assert str(calendar["PRODID"]).startswith("-//forumcast//")
    assert str(calendar["X-WR-CALNAME"]) == "2020 Green Development City Summit"
    assert str(calendar["X-WR-TIMEZONE"]) == "Asia/Shanghai"


def test_one_vevent_per_public_session_and_no_closed_one() -> None:
    calendar = _calendar()
    events = calendar.walk("VEVENT")
    assert sorted(str(e["UID"]) for e in events) == [
        "europe-lyon@gdcs2020.forumcast",
        "main-stern-keynote@gdcs2020.forumcast",
    ]
    text = to_ical(_event(), base_url=BASE_URL).decode()
    assert "battery" not in text.lower()
    assert "电池" not in text


def test_listing_the_closed_stage_includes_it() -> None:
    uids = [str(e["UID"]) for e in _calendar(stages=["battery-seminar"]).walk("VEVENT")]
    assert uids == ["battery-long-life@gdcs2020.forumcast"]


def test_lyon_session_is_in_paris_time() -> None:
    event = _vevent(_calendar(), "europe-lyon")
    start, end = event.decoded("DTSTART"), event.decoded("DTEND")
    assert str(start.tzinfo) == "Europe/Paris"
    assert event["DTSTART"].params["TZID"] == "Europe/Paris"
    assert start == datetime(2020, 12, 7, 13, 30, tzinfo=UTC)
    # 21:30-00:30 in Shanghai, the event's zone
    assert start == datetime(2020, 12, 7, 21, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
    assert end == datetime(2020, 12, 7, 16, 30, tzinfo=UTC)
    assert str(event["SUMMARY"]) == "Europe–China green cities dialogue"
    assert "中欧绿色城市对话" in str(event["DESCRIPTION"])
    assert str(event["LOCATION"]) == "European Session, Lyon venue"
    assert str(event["URL"]) == f"{BASE_URL}/#session-europe-lyon"


def test_description_names_speakers_and_where_they_are() -> None:
    keynote = _vevent(_calendar(), "main-stern-keynote")
    description = str(keynote["DESCRIPTION"])
    assert "Lord Nicholas Stern (LSE, remote)" in description
    assert "王主席 (on site)" in description
    assert "The green recovery after the pandemic." in description
    assert [str(c) for c in keynote["CATEGORIES"].cats] == ["keynotes", "keynote"]


def test_a_vtimezone_for_every_zone_used() -> None:
    calendar = _calendar()
    assert {str(tz["TZID"]) for tz in calendar.walk("VTIMEZONE")} == {"Asia/Shanghai", "Europe/Paris"}
    assert calendar.get_missing_tzids() == set()


def test_uids_are_unique_and_stable_across_exports() -> None:
    first, second = to_ical(_event(), base_url=BASE_URL), to_ical(_event(), base_url=BASE_URL)
    uids = [str(e["UID"]) for e in Calendar.from_ical(first).walk("VEVENT")]
    assert len(uids) == len(set(uids))
    assert uids == [str(e["UID"]) for e in Calendar.from_ical(second).walk("VEVENT")]
    assert Calendar.from_ical(first)["UID"] == Calendar.from_ical(second)["UID"]
    # With the same DTSTAMP, two exports of one program are byte for byte equal.
    once, again = (to_ical(_event(), base_url=BASE_URL, stamp=STAMP) for _ in range(2))
    assert once == again
