"""What a stage's slate says: a pure function of the event and the stage's status.

Between sessions the slate names the next one and when it starts (in the event's zone,
and in the venue's when that differs, so Lyon's session reads "14:30 CET (07 Dec 21:30
CST)"); during a session (a failover to the slate) it says the session will be right back.
:mod:`server.live.slate_card` draws the result.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from server.live.slate_card import SlateCard
from server.schedule.model import Event
from server.schedule.scheduler import StageStatus


def stage_card(event: Event, stage_id: str, status: StageStatus) -> SlateCard:
    """The card of stage ``stage_id``'s slate now: its title and the next session."""
    stage = event.stage(stage_id)
    if stage is None:
        raise KeyError(stage_id)
    if status.current is not None:
        line: str | None = f"{status.current.title.best('en')} · We'll be right back · 马上回来"
    elif status.next is not None:
        line = f"Next · 下一场: {status.next.title.best('en')} — {when(status.next.start, event.timezone)}"
    else:
        line = None
    title = stage.title
    return SlateCard(title.zh, title.en, next_line=line, event_title=event.title.best("en"))


def when(start: datetime, zone: ZoneInfo) -> str:
    """A start time in ``zone`` (the event's), and in the start's own zone when that differs."""
    text = start.astimezone(zone).strftime("%d %b %H:%M %Z")
    if start.utcoffset() != start.astimezone(zone).utcoffset():
        text = f"{start.strftime('%H:%M %Z')} ({text})"
    return text
