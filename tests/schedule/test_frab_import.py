"""frab / pretalx schedule.json import (server/schedule/frab_import.py): documents and problems."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from server.errors import ScheduleError
from server.schedule.frab_import import load_frab_text, parse_frab

PRETALX_DOCUMENT: dict[str, Any] = {
    "$schema": "https://c3voc.de/schedule/schema.json",
    "generator": {"name": "pretalx", "version": "2024.1.0"},
    "schedule": {
        "url": "https://pretalx.example.org/democon/schedule/",
        "version": "0.7",
        "base_url": "https://pretalx.example.org",
        "conference": {
            "acronym": "democon",
            "title": "DemoCon 2024",
            "start": "2024-05-01",
            "end": "2024-05-01",
            "daysCount": 1,
            "timeslot_duration": "00:05",
            "time_zone_name": "Europe/Berlin",
            "colors": {"primary": "#3aa57c"},
            "rooms": [
                {
                    "name": "Hall A",
                    "slug": "2-hall-a",
                    "guid": "0b6c1dd9-4a3c-5a40-8bd6-7a8a07e4e6a1",
                    "description": None,
                    "capacity": 300,
                }
            ],
            "tracks": [{"name": "Energy", "slug": "1-energy", "color": "#ff0000"}],
            "days": [
                {
                    "index": 1,
                    "date": "2024-05-01",
                    "day_start": "2024-05-01T04:00:00+02:00",
                    "day_end": "2024-05-02T03:59:00+02:00",
                    "rooms": {
                        "Hall A": [
                            {
                                "guid": "5d2b6a3e-9e0f-5b8c-9a47-2b0f0c7d1e11",
                                "code": "HX7QPL",
                                "id": 17,
                                "logo": None,
                                "date": "2024-05-01T10:00:00+02:00",
                                "start": "10:00",
                                "duration": "00:45",
                                "room": "Hall A",
                                "slug": "democon-17-hydrogen-storage",
                                "url": "https://pretalx.example.org/democon/talk/HX7QPL/",
                                "title": "Hydrogen storage",
                                "subtitle": "氢能储存",
                                "track": "Energy",
                                "type": "Talk",
                                "language": "en",
                                "abstract": "Tanks and caverns.",
                                "description": "",
                                "recording_license": "",
                                "do_not_record": False,
                                "persons": [
                                    {
                                        "code": "QW3RTY",
                                        "name": "Ada Lovelace",
                                        "avatar": None,
                                        "biography": "Analytical engines",
                                        "public_name": "Ada Lovelace",
                                        "guid": "d3c1b2a0-1111-5222-8333-944455566677",
                                        "answers": [],
                                    }
                                ],
                                "links": [],
                                "feedback_url": "https://pretalx.example.org/democon/talk/HX7QPL/feedback/",
                                "origin_url": "https://pretalx.example.org/democon/talk/HX7QPL/",
                                "attachments": [],
                                "answers": [],
                            }
                        ]
                    },
                }
            ],
        },
    },
}


def test_import_pretalx_document() -> None:
    event = parse_frab(PRETALX_DOCUMENT, file="pretalx.json")
    assert event.id == "democon"
    assert event.timezone.key == "Europe/Berlin"
    assert [(s.id, s.title.en) for s in event.stages] == [("2-hall-a", "Hall A")]
    (session,) = event.sessions
    assert session.id == "democon-17-hydrogen-storage"
    assert session.stage == "2-hall-a"
    assert (session.title.en, session.title.zh) == ("Hydrogen storage", "氢能储存")
    assert session.start == datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
    assert session.end == datetime(2024, 5, 1, 8, 45, tzinfo=UTC)
    assert session.start.tzinfo == event.timezone
    assert [(p.name, p.affiliation) for p in session.speakers] == [("Ada Lovelace", "Analytical engines")]
    assert (session.track, session.type, session.language) == ("Energy", "Talk", "en")
    assert session.abstract.en == "Tanks and caverns."
    assert session.do_not_stream is False


FRAB_DOCUMENT = """
{
  "schedule": {
    "version": "1.0",
    "conference": {
      "acronym": "36c3",
      "title": "36th Chaos Communication Congress",
      "start": "2019-12-27",
      "end": "2019-12-27",
      "daysCount": 1,
      "timeslot_duration": "00:10",
      "time_zone_name": "Europe/Berlin",
      "days": [
        {
          "index": 1,
          "date": "2019-12-27",
          "day_start": "2019-12-27T10:00:00+01:00",
          "day_end": "2019-12-28T03:59:00+01:00",
          "rooms": {
            "Ada Hall": [
              {"id": 10496, "guid": "a8c4b1a2-3c4d-4e5f-8a9b-0c1d2e3f4a5b", "slug": "36c3-10496-opening",
               "start": "11:00", "duration": "00:30", "room": "Ada Hall", "title": "Opening",
               "subtitle": "", "track": "CCC", "type": "lecture", "language": "de",
               "do_not_record": false, "persons": [{"id": 6773, "public_name": "bleeptrack"}],
               "links": []},
              {"id": 10497, "guid": "b8c4b1a2-3c4d-4e5f-8a9b-0c1d2e3f4a5b",
               "start": "00:30", "duration": "01:15", "room": "Ada Hall", "title": "Late night talk",
               "persons": [{"id": 1, "public_name": "Alice"}, {"id": 2, "public_name": "Bob"}],
               "do_not_stream": "true"}
            ]
          }
        }
      ]
    }
  }
}
"""


def test_import_frab_document_with_start_and_duration() -> None:
    event = load_frab_text(FRAB_DOCUMENT, file="frab.json")
    assert [s.id for s in event.stages] == ["ada-hall"]
    opening, late = event.sessions
    assert opening.id == "36c3-10496-opening"
    assert opening.start == datetime(2019, 12, 27, 10, 0, tzinfo=UTC)
    assert opening.end == datetime(2019, 12, 27, 10, 30, tzinfo=UTC)
    assert [p.name for p in opening.speakers] == ["bleeptrack"]
    assert (opening.track, opening.type, opening.language) == ("CCC", "lecture", "de")
    # No slug: the guid is the id. 00:30 is before the day's start, so it is the next night.
    assert late.id == "b8c4b1a2-3c4d-4e5f-8a9b-0c1d2e3f4a5b"
    assert late.start == datetime(2019, 12, 27, 23, 30, tzinfo=UTC)
    assert late.end == datetime(2019, 12, 28, 0, 45, tzinfo=UTC)
    assert [p.name for p in late.speakers] == ["Alice", "Bob"]
    assert late.do_not_stream is True


# --- problems -----------------------------------------------------------------------------

ROOM = "schedule.conference.days[0].rooms.Main"


def _talk(slug: str, date: str = "2024-05-01T10:00:00+02:00", **extra: Any) -> dict[str, Any]:
    return {"slug": slug, "title": slug.title(), "date": date, "duration": "00:30", **extra}


def _document(*talks: dict[str, Any], zone: str | None = "Europe/Berlin") -> dict[str, Any]:
    conference: dict[str, Any] = {
        "acronym": "democon",
        "title": "DemoCon",
        "rooms": [{"name": "Main", "slug": "main", "guid": "0b6c1dd9-4a3c-5a40-8bd6-7a8a07e4e6a1"}],
        "days": [{"index": 1, "date": "2024-05-01", "rooms": {"Main": list(talks)}}],
    }
    if zone is not None:
        conference["time_zone_name"] = zone
    return {"schedule": {"version": "1", "conference": conference}}


def _problems(document: Any) -> list[tuple[str, str]]:
    with pytest.raises(ScheduleError) as info:
        parse_frab(document, file="bad.json")
    assert {p.file for p in info.value.problems} == {"bad.json"}
    return [(p.path, p.reason) for p in info.value.problems]


def _has(problems: list[tuple[str, str]], path: str, fragment: str) -> bool:
    return any(p == path and fragment in reason for p, reason in problems)


def test_the_good_document_is_accepted() -> None:
    event = parse_frab(_document(_talk("a"), _talk("b", "2024-05-01T10:30:00+02:00")), file="ok.json")
    assert [s.id for s in event.sessions] == ["a", "b"]


def test_overlapping_sessions_in_one_room() -> None:
    problems = _problems(_document(_talk("a", duration="01:00"), _talk("b", "2024-05-01T10:30:00+02:00")))
    assert _has(problems, f"{ROOM}[1]", "overlaps session 'a'")


@pytest.mark.parametrize(
    "extra",
    [{"end": "2024-05-01T09:00:00+02:00"}, {"duration": "00:00"}, {"duration": "-00:30"}],
    ids=["end-before-date", "zero-duration", "negative-duration"],
)
def test_session_ending_before_it_starts(extra: dict[str, Any]) -> None:
    talk = _talk("a")
    talk.pop("duration")
    problems = _problems(_document({**talk, **extra}))
    assert _has(problems, f"{ROOM}[0].end", "before or when it starts")


def test_naive_date_without_conference_time_zone() -> None:
    problems = _problems(_document(_talk("a", "2024-05-01T10:00:00"), zone=None))
    assert _has(problems, f"{ROOM}[0].date", "naive date-time")


def test_naive_date_is_read_in_the_conference_time_zone() -> None:
    event = parse_frab(_document(_talk("a", "2024-05-01T10:00:00")), file="ok.json")
    assert event.sessions[0].start == datetime(2024, 5, 1, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize("zone", ["Mars/Olympus", "Europe", ""])
def test_unknown_time_zone(zone: str) -> None:
    problems = _problems(_document(_talk("a"), zone=zone))
    assert _has(problems, "schedule.conference.time_zone_name", "unknown IANA time zone")


def test_duplicate_slugs() -> None:
    problems = _problems(_document(_talk("a"), _talk("a", "2024-05-01T11:00:00+02:00")))
    assert _has(problems, f"{ROOM}[1].id", "duplicate session id 'a'")


def test_missing_keys_and_bad_values_are_all_reported() -> None:
    document = _document(
        {"slug": "a", "date": "2024-05-01T10:00:00+02:00"},
        _talk("b", "2024-05-01T11:00:00+02:00", persons=[{"id": 3}]),
        _talk("c", "tomorrow"),
        {"title": "No identity", "date": "2024-05-01T12:00:00+02:00", "duration": "half an hour"},
    )
    del document["schedule"]["conference"]["acronym"]
    problems = _problems(document)
    for path, fragment in [
        ("schedule.conference.acronym", "missing"),
        (f"{ROOM}[0].title", "missing"),
        (f"{ROOM}[0].end", "need end or duration"),
        (f"{ROOM}[1].persons[0].name", "need name or public_name"),
        (f"{ROOM}[2].date", "not an ISO 8601 date-time"),
        (f"{ROOM}[3].slug", "need slug, guid or id"),
        (f"{ROOM}[3].duration", "not a duration"),
    ]:
        assert _has(problems, path, fragment), (path, problems)


def test_missing_schedule_and_days() -> None:
    assert _has(_problems({"generator": {}}), "schedule", "missing")
    problems = _problems({"schedule": {"version": "1", "conference": {"acronym": "democon", "title": "x"}}})
    assert _has(problems, "schedule.conference.days", "missing")


def test_room_names_that_are_not_plain_keys_are_quoted_in_paths() -> None:
    document = _document(_talk("a"), _talk("b"))
    document["schedule"]["conference"]["days"][0]["rooms"] = {"Hall A": [_talk("a"), _talk("b")]}
    assert _has(_problems(document), 'schedule.conference.days[0].rooms["Hall A"][1]', "overlaps")


def test_invalid_json_names_line_and_column() -> None:
    with pytest.raises(ScheduleError) as info:
        load_frab_text('{\n  "schedule": {,\n}', file="bad.json")
    (problem,) = info.value.problems
    assert (problem.file, problem.path) == ("bad.json", "line 2, column 16")
    assert "not valid JSON" in problem.reason
