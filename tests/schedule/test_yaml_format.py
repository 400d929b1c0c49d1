"""Our YAML event format (server/schedule/yaml_format.py) and the rules of validate.py."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from server.errors import ScheduleError
from server.schedule.model import StageKind
from server.schedule.yaml_format import _Loader, load_yaml_text, parse_event
from tests.conftest import FIXTURES

DOC: dict[str, Any] = yaml.load((FIXTURES / "event.yaml").read_text(), Loader=_Loader)


def refused(document: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ScheduleError) as caught:
        parse_event(document, file="bad.yaml")
    assert all(p.file == "bad.yaml" for p in caught.value.problems)
    assert caught.value.code == "schedule.invalid_file" and caught.value.wire.http == 400
    return [(p.path, p.reason) for p in caught.value.problems]


def session_index(doc: dict[str, Any], session_id: str) -> int:
    return next(i for i, s in enumerate(doc["sessions"]) if s["id"] == session_id)


def test_fixture_loads_with_zones_and_defaults() -> None:
    event = parse_event(copy.deepcopy(DOC), file="event.yaml")
    lyon = event.session("lyon")
    assert lyon is not None and lyon.start.tzinfo is not None
    assert str(lyon.start.tzinfo) == "Europe/Paris" and lyon.start.hour == 14
    closed = event.stage("closed")
    assert closed is not None and closed.kind is StageKind.CLOSED_DOOR and closed.closed
    keynote = event.session("keynote")
    assert keynote is not None and keynote.speakers[0].remote and keynote.backup_input == "main-cam"


def test_overlap_on_one_stage() -> None:
    doc = copy.deepcopy(DOC)
    doc["sessions"][session_index(doc, "keynote")]["start"] = "2020-12-06T09:45:00+08:00"
    problems = refused(doc)
    assert problems == [(f"sessions[{session_index(doc, 'keynote')}]", problems[0][1])]
    assert "overlaps session 'opening' on stage 'main'" in problems[0][1]


def test_end_before_start_and_zero_length() -> None:
    doc = copy.deepcopy(DOC)
    doc["sessions"][0]["end"] = "2020-12-06T08:00:00+08:00"
    doc["sessions"][1]["end"] = doc["sessions"][1]["start"]
    paths = [p for p, reason in refused(doc) if "before or when it starts" in reason]
    assert paths == ["sessions[0].end", "sessions[1].end"]


def test_unknown_stage_input_and_venue() -> None:
    doc = copy.deepcopy(DOC)
    doc["sessions"][0]["stage"] = "nowhere"
    doc["sessions"][1]["input"] = "no-such-input"
    doc["sessions"][4]["input"] = "main-cam"  # exists, but on another stage
    doc["stages"][1]["venue"] = "mars"
    problems = dict(refused(doc))
    assert problems["sessions[0].stage"] == "unknown stage 'nowhere'"
    assert problems["sessions[1].input"] == "unknown input 'no-such-input'"
    assert problems["sessions[4].input"] == "input 'main-cam' belongs to stage 'main', not 'forum-a'"
    assert problems["stages[1].venue"] == "unknown venue 'mars'"


def test_naive_datetimes() -> None:
    doc = copy.deepcopy(DOC)
    doc["sessions"][2]["start"] = "2020-12-06T14:00:00"
    doc["sessions"][3]["end"] = "2020-12-07 10:00"
    problems = dict(refused(doc))
    assert "naive datetime" in problems["sessions[2].start"]
    assert "naive datetime" in problems["sessions[3].end"]


def test_duplicate_ids() -> None:
    doc = copy.deepcopy(DOC)
    doc["sessions"][1]["id"] = "opening"
    doc["stages"][1]["id"] = "main"
    doc["stages"][2]["inputs"] = [{"id": "main-cam", "title": "dup"}]
    problems = dict(refused(doc))
    assert problems["sessions[1].id"] == "duplicate session id 'opening'"
    assert problems["stages[1].id"] == "duplicate stage id 'main'"
    assert "duplicate input id 'main-cam'" in problems["stages[2].inputs[0].id"]


def test_every_problem_is_listed_at_once() -> None:
    doc = copy.deepcopy(DOC)
    doc["sessions"][0]["starts"] = "typo"
    doc["sessions"][1]["start"] = "yesterday"
    doc["stages"][0]["kind"] = "keynote-hall"
    doc["venues"][1]["timezone"] = "Europe/Lyon"
    del doc["sessions"][2]["title"]
    problems = dict(refused(doc))
    assert problems["sessions[0].starts"] == "unknown key"
    assert "not an ISO 8601 datetime" in problems["sessions[1].start"]
    assert "is not one of main, forum, closed-door, side" in problems["stages[0].kind"]
    assert problems["venues[1].timezone"] == "unknown IANA time zone 'Europe/Lyon'"
    assert problems["sessions[2].title"] == "missing"
    assert len(problems) == 5


def test_not_yaml_at_all() -> None:
    with pytest.raises(ScheduleError) as caught:
        load_yaml_text("event: [unclosed\n", file="broken.yaml")
    (problem,) = caught.value.problems
    assert problem.file == "broken.yaml" and "not valid YAML" in problem.reason
