"""Delay semantics (server/schedule/delays.py), pure."""

from __future__ import annotations

from datetime import timedelta

import pytest

from server.errors import ForumcastError
from server.schedule.delays import Delay, apply_delay, check_minutes, replay
from server.schedule.model import Event
from tests.conftest import at


def times(event: Event, stage: str) -> list[tuple[str, str, str]]:
    return [
        (s.id, s.start.strftime("%d %H:%M"), s.end.strftime("%d %H:%M")) for s in event.sessions_of(stage)
    ]


def test_running_session_is_extended_and_later_ones_shift(event: Event) -> None:
    delayed = apply_delay(event, Delay("main", at("2020-12-06T09:30:00+08:00"), 10))
    assert times(delayed, "main") == [
        ("opening", "06 09:00", "06 10:10"),
        ("keynote", "06 10:10", "06 11:10"),
        ("afternoon", "06 14:10", "06 15:10"),
        ("day-two", "07 09:10", "07 10:10"),
    ]
    assert times(delayed, "forum-a") == times(event, "forum-a")  # other stages untouched


def test_between_sessions_only_future_sessions_move(event: Event) -> None:
    delayed = apply_delay(event, Delay("main", at("2020-12-06T12:00:00+08:00"), 15))
    assert times(delayed, "main")[:2] == times(event, "main")[:2]
    assert times(delayed, "main")[2] == ("afternoon", "06 14:15", "06 15:15")


def test_negative_delay_pulls_in_within_limits(event: Event) -> None:
    delayed = apply_delay(event, Delay("main", at("2020-12-06T09:30:00+08:00"), -20))
    assert times(delayed, "main")[0] == ("opening", "06 09:00", "06 09:40")
    with pytest.raises(ForumcastError) as caught:
        apply_delay(event, Delay("main", at("2020-12-06T09:30:00+08:00"), -30))
    assert caught.value.code == "schedule.delay_conflict" and "at most 29 minutes" in caught.value.message
    with pytest.raises(ForumcastError, match="would start in the past"):
        apply_delay(event, Delay("main", at("2020-12-06T13:50:00+08:00"), -11))


def test_nothing_left_to_delay(event: Event) -> None:
    with pytest.raises(ForumcastError) as caught:
        apply_delay(event, Delay("main", at("2020-12-08T12:00:00+08:00"), 5))
    assert caught.value.wire.http == 409


def test_delay_keeps_venue_zone_and_absolute_time(event: Event) -> None:
    delayed = apply_delay(event, Delay("europe", at("2020-12-07T15:00:00+01:00"), 45))
    lyon = delayed.session("lyon")
    assert lyon is not None and str(lyon.end.tzinfo) == "Europe/Paris"
    assert lyon.end - at("2020-12-07T17:30:00+01:00") == timedelta(minutes=45)


def test_replay_is_order_dependent_and_deterministic(event: Event) -> None:
    delays = [
        Delay("main", at("2020-12-06T09:30:00+08:00"), 10),
        Delay("main", at("2020-12-06T10:05:00+08:00"), 5),
    ]
    once = replay(event, delays)
    assert replay(event, delays) == once
    # 10:05 is still the (extended) opening, so the second delay extends it again.
    assert times(once, "main")[0] == ("opening", "06 09:00", "06 10:15")
    assert Delay.from_json(delays[0].to_json()) == delays[0]


@pytest.mark.parametrize("value", [0, 1.5, "10", True, None, 24 * 60 + 1, -(24 * 60 + 1)])
def test_bad_minutes(value: object) -> None:
    with pytest.raises(ForumcastError) as caught:
        check_minutes(value)
    assert caught.value.code == "schedule.bad_delay"
