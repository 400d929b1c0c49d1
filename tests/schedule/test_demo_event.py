"""The built-in demo event (server/schedule/demo_event.yaml) loads and matches the reference event."""

from __future__ import annotations

import re
from datetime import date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

from server.schedule.model import Event, StageKind
from server.schedule.yaml_format import load_yaml

DEMO = Path(__file__).resolve().parents[2] / "server" / "schedule" / "demo_event.yaml"
SHANGHAI = ZoneInfo("Asia/Shanghai")
ANCHOR = datetime(2020, 12, 6, 10, 30, tzinfo=SHANGHAI)
SLUG = re.compile(r"^[a-z0-9_-]+[a-z0-9]$")


def _event() -> Event:
    return load_yaml(DEMO)


def test_loads_without_problems() -> None:
    event = _event()
    assert event.id == "gdcs2020"
    assert event.demo is True
    assert event.timezone.key == "Asia/Shanghai"
    assert {v.id: v.timezone.key for v in event.venues} == {
        "shenzhen": "Asia/Shanghai",
        "lyon": "Europe/Paris",
    }


def test_stage_kinds_and_venues() -> None:
    event = _event()
    main = [s.id for s in event.stages if s.kind is StageKind.MAIN]
    forums_shenzhen = [s.id for s in event.stages if s.kind is StageKind.FORUM and s.venue == "shenzhen"]
    forums_lyon = [s.id for s in event.stages if s.kind is StageKind.FORUM and s.venue == "lyon"]
    closed_door = [s for s in event.stages if s.kind is StageKind.CLOSED_DOOR]
    side = [s.id for s in event.stages if s.kind is StageKind.SIDE]
    assert main == ["main"]
    assert len(forums_shenzhen) == 7
    assert {"bay-area", "hydrogen"} <= set(forums_shenzhen)
    assert forums_lyon == ["europe"]
    assert len(closed_door) == 3
    assert all(s.closed for s in closed_door)
    assert "battery-seminar" in {s.id for s in closed_door}
    assert len(side) >= 1
    assert event.public_stage_ids() == {s.id for s in event.stages if s.kind is not StageKind.CLOSED_DOOR}


def test_session_count() -> None:
    assert 45 <= len(_event().sessions) <= 58


def test_every_session_within_the_three_days_in_shanghai() -> None:
    first, last = date(2020, 12, 6), date(2020, 12, 9)
    for session in _event().sessions:
        assert first <= session.start.astimezone(SHANGHAI).date() <= last, session.id
        assert first <= session.end.astimezone(SHANGHAI).date() <= last, session.id
    assert _event().days() == [date(2020, 12, 6), date(2020, 12, 7), date(2020, 12, 8)]


def test_lyon_session_in_paris_time_crosses_midnight_in_shanghai() -> None:
    event = _event()
    lyon = event.sessions_of("europe")
    assert len(lyon) == 1
    session = lyon[0]
    assert session.input == "lyon-cam"
    assert isinstance(session.start.tzinfo, ZoneInfo)
    assert session.start.tzinfo.key == "Europe/Paris"
    assert session.start.date() == date(2020, 12, 7)
    assert session.start.time() == time(14, 30)
    assert session.end.time() == time(17, 30)
    start_sh, end_sh = session.start.astimezone(SHANGHAI), session.end.astimezone(SHANGHAI)
    assert start_sh.replace(tzinfo=None) == datetime(2020, 12, 7, 21, 30)
    assert end_sh.replace(tzinfo=None) == datetime(2020, 12, 8, 0, 30)


def test_shenzhen_sessions_stored_in_shanghai_zone() -> None:
    event = _event()
    for session in event.sessions:
        if session.stage != "europe":
            assert session.start.tzinfo.key == "Asia/Shanghai", session.id  # type: ignore[union-attr]


def test_stern_keynote_and_dialogue_are_remote_on_the_uk_link() -> None:
    event = _event()
    stern = [s for s in event.sessions if any("Stern" in p.name for p in s.speakers)]
    assert [s.type for s in stern] == ["keynote", "dialogue"]
    times = [(s.start.replace(tzinfo=None), s.end.replace(tzinfo=None)) for s in stern]
    assert times == [
        (datetime(2020, 12, 6, 9, 40), datetime(2020, 12, 6, 10, 10)),
        (datetime(2020, 12, 6, 10, 10), datetime(2020, 12, 6, 10, 50)),
    ]
    for session in stern:
        assert session.stage == "main"
        assert session.input == "stern-uk"
        assert session.backup_input == "main-playout"
        (lord,) = [p for p in session.speakers if "Stern" in p.name]
        assert lord.remote is True
        assert lord.country == "GB"
    remote_inputs = {d.id: d.kind.value for d in event.stage("main").inputs}  # type: ignore[union-attr]
    assert remote_inputs == {"main-cam": "camera", "stern-uk": "remote", "main-playout": "encoder"}


def test_opening_chairs_are_on_site() -> None:
    opening = _event().session("main-opening")
    assert opening is not None
    assert opening.type == "opening"
    assert (opening.start.time(), opening.end.time()) == (time(9, 0), time(9, 40))
    assert len(opening.speakers) == 2
    assert all(p.remote is False for p in opening.speakers)


def test_foreign_speakers_are_remote() -> None:
    speakers = [p for s in _event().sessions for p in s.speakers]
    foreign = [p for p in speakers if p.country != "CN"]
    assert len(foreign) > 10
    assert all(p.remote for p in foreign), [p.name for p in foreign if not p.remote]
    on_site = {p.name for p in speakers if not p.remote}
    assert 2 <= len(on_site) < len({p.name for p in speakers}) / 2


def test_live_stages_at_the_demo_anchor() -> None:
    event = _event()
    live = {s.stage for s in event.sessions if s.is_live(ANCHOR)}
    public = event.public_stage_ids()
    assert "main" in live
    assert event.session("main-stern-dialogue").is_live(ANCHOR)  # type: ignore[union-attr]
    assert len((live & public) - {"main"}) >= 4
    assert any(event.stage(s).kind is StageKind.CLOSED_DOOR for s in live)  # type: ignore[union-attr]
    assert live == {
        "main",
        "bay-area",
        "hydrogen",
        "green-finance",
        "launches",
        "roadshow",
        "battery-seminar",
    }


def test_every_session_has_both_titles() -> None:
    for session in _event().sessions:
        assert session.title.zh, session.id
        assert session.title.en, session.id


def test_ids_are_slugs() -> None:
    event = _event()
    ids = [s.id for s in event.stages] + [s.id for s in event.sessions] + [d.id for d in event.inputs()]
    assert all(SLUG.match(i) for i in ids), [i for i in ids if not SLUG.match(i)]


def test_every_session_names_an_input_of_its_stage() -> None:
    event = _event()
    for session in event.sessions:
        stage = event.stage(session.stage)
        assert stage is not None
        assert session.input in {d.id for d in stage.inputs}, session.id
        assert session.language in {"zh", "en"}, session.id


def test_some_closed_door_sessions_are_not_streamed() -> None:
    event = _event()
    hidden = [s for s in event.sessions if s.do_not_stream]
    assert len(hidden) == 2
    assert all(event.stage(s.stage).kind is StageKind.CLOSED_DOOR for s in hidden)  # type: ignore[union-attr]
