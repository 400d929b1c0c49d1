"""Automation's decisions on their own: schedule, manual takes, failover and failback."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from server.live.automation import SLATE, Automation, Choice, Health, Mode, Reason, on_bill
from server.schedule.model import Session, Text

T0 = datetime(2020, 12, 6, 2, 0, tzinfo=UTC)
UP = Health(up=True, up_for=60.0)
DOWN = Health(up=False)


def session(
    id_: str = "keynote", *, input: str | None = "stern-uk", backup: str | None = "playout"
) -> Session:
    return Session(
        id=id_,
        stage="main",
        title=Text(en=id_),
        start=T0,
        end=T0 + timedelta(hours=1),
        input=input,
        backup_input=backup,
    )


def auto() -> Automation:
    return Automation(default_input="cam", failback_after=2.0)


def test_no_session_means_the_slate() -> None:
    a = auto()
    assert a.decide(None, {}, None) == Choice(SLATE, Reason.SCHEDULE)
    assert a.decide(None, {}, SLATE) is None


def test_do_not_stream_sessions_show_the_slate() -> None:
    from dataclasses import replace

    a = auto()
    private = replace(session(), do_not_stream=True)
    assert a.decide(private, {"stern-uk": UP}, "stern-uk") == Choice(SLATE, Reason.SCHEDULE)


def test_a_session_takes_its_input_or_the_stage_default() -> None:
    a = auto()
    assert a.decide(session(), {"stern-uk": UP}, SLATE) == Choice("stern-uk", Reason.SCHEDULE)
    assert a.decide(session(input=None), {"cam": UP}, SLATE) == Choice("cam", Reason.SCHEDULE)
    assert a.decide(session(), {"stern-uk": UP}, "stern-uk") is None


def test_an_input_not_yet_publishing_waits_on_the_backup_or_slate_for_the_schedule() -> None:
    a = auto()
    assert a.decide(session(), {"stern-uk": DOWN, "playout": DOWN}, None) == Choice(SLATE, Reason.SCHEDULE)
    assert a.decide(session(), {"stern-uk": DOWN, "playout": UP}, SLATE) == Choice("playout", Reason.SCHEDULE)
    # It comes up for the first time: taken at once, no stability wait, reason schedule.
    fresh = Health(up=True, up_for=0.0)
    assert a.decide(session(), {"stern-uk": fresh, "playout": UP}, "playout") == Choice(
        "stern-uk", Reason.SCHEDULE
    )


def test_failover_to_backup_then_slate_and_failback_after_the_stable_window() -> None:
    a = auto()
    s = session()
    assert a.decide(s, {"stern-uk": DOWN, "playout": UP}, "stern-uk") == Choice("playout", Reason.FAILOVER)
    # The backup dies too: the slate, still a failover.
    assert a.decide(s, {"stern-uk": DOWN, "playout": DOWN}, "playout") == Choice(SLATE, Reason.FAILOVER)
    # The primary returns: not before it has been up for 2 s.
    assert a.decide(s, {"stern-uk": Health(True, 0.5), "playout": DOWN}, SLATE) is None
    assert a.decide(s, {"stern-uk": Health(True, 1.9), "playout": DOWN}, SLATE) is None
    assert a.decide(s, {"stern-uk": Health(True, 2.1), "playout": DOWN}, SLATE) == Choice(
        "stern-uk", Reason.FAILBACK
    )
    # Once back, it is plain schedule again.
    assert a.decide(s, {"stern-uk": UP, "playout": DOWN}, "stern-uk") is None


def test_the_failed_state_ends_with_the_session() -> None:
    a = auto()
    a.decide(session("one"), {"stern-uk": DOWN, "playout": DOWN}, "stern-uk")
    # The next session uses the same input: it is taken at once, no failback wait.
    assert a.decide(session("two"), {"stern-uk": Health(True, 0.1)}, SLATE) == Choice(
        "stern-uk", Reason.SCHEDULE
    )


def test_a_manual_take_is_kept_and_never_failed_back_over() -> None:
    a = auto()
    s = session()
    assert a.take("cam") == Choice("cam", Reason.MANUAL)
    assert a.mode is Mode.MANUAL
    # The schedule wants stern-uk and it is up: manual wins.
    assert a.decide(s, {"stern-uk": UP, "cam": UP, "playout": UP}, "cam") is None
    # The taken input dies: failover to the session's backup, still manual.
    assert a.decide(s, {"stern-uk": UP, "cam": DOWN, "playout": UP}, "cam") == Choice(
        "playout", Reason.FAILOVER
    )
    assert a.mode is Mode.MANUAL
    # cam returns: no failback over a producer's take.
    assert a.decide(s, {"stern-uk": UP, "cam": UP, "playout": UP}, "playout") is None
    # Back to automation: the schedule's input.
    a.resume()
    assert a.decide(s, {"stern-uk": UP, "cam": UP, "playout": UP}, "playout") == Choice(
        "stern-uk", Reason.SCHEDULE
    )


def test_a_manual_take_of_the_slate_holds_through_sessions() -> None:
    a = auto()
    a.take(SLATE)
    assert a.decide(session(), {"stern-uk": UP}, SLATE) is None
    assert a.decide(None, {}, SLATE) is None


def test_on_bill_names_the_session_input_or_the_stage_default_and_the_backup() -> None:
    assert on_bill(session(), "cam") == {"stern-uk", "playout"}
    assert on_bill(session(input=None, backup=None), "cam") == {"cam"}
    assert on_bill(session(input=None, backup=None), None) == set()
    assert on_bill(None, "cam") == set()
    assert on_bill(dataclasses.replace(session(), do_not_stream=True), "cam") == set()
