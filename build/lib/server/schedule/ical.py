"""The iCalendar (RFC 5545) export of an event: one VEVENT per public session.

Times are written in the zone of the session's venue (``TZID=Europe/Paris`` for the Lyon
session) with a VTIMEZONE for every zone used, so that a calendar shows each session at
the right instant in the attendee's own zone. Stage filtering follows the frab export:
closed stages only appear when the caller names them.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import UTC, date, datetime

from icalendar import Calendar
from icalendar import Event as VEvent

from server.schedule.frab_export import included_stages, session_url
from server.schedule.model import Event, Session, Speaker, Stage

PRODID = "-//forumcast//forumcast schedule//EN"


def to_ical(
    event: Event,
    *,
    base_url: str,
    stages: Collection[str] | None = None,
    stamp: datetime | None = None,
) -> bytes:
    """The event as an ``.ics`` calendar; ``stamp`` (DTSTAMP) defaults to now."""
    stamp = (stamp or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    calendar = Calendar.new(
        prodid=PRODID,
        calscale="GREGORIAN",
        name=event.title.best("en"),
        # A fixed UID (not the library's random one) keeps two exports of one program equal.
        uid=uuid.uuid5(uuid.NAMESPACE_URL, f"{base_url}#{event.id}"),
    )
    calendar.add("x-wr-timezone", event.timezone.key)
    shown = {stage.id: stage for stage in included_stages(event, stages)}
    sessions = sorted((s for s in event.sessions if s.stage in shown), key=lambda s: (s.start, s.stage, s.id))
    for session in sessions:
        calendar.add_component(_vevent(event, shown[session.stage], session, base_url=base_url, stamp=stamp))
    if sessions:
        # The zone definitions only need to cover the program: a year either side keeps the
        # file small (the default, 1970-2038, lists every DST change of those years).
        first, last = min(s.start for s in sessions), max(s.end for s in sessions)
        calendar.add_missing_timezones(date(first.year - 1, 1, 1), date(last.year + 2, 1, 1))
    return bytes(calendar.to_ical())


def _vevent(event: Event, stage: Stage, session: Session, *, base_url: str, stamp: datetime) -> VEvent:
    venue = event.venue_of(stage)
    title = session.title
    return VEvent.new(
        uid=f"{session.id}@{event.id}.forumcast",
        stamp=stamp,
        start=session.start.astimezone(venue.timezone),
        end=session.end.astimezone(venue.timezone),
        summary=title.en or title.zh,
        description=_description(session),
        location=", ".join(
            part for part in (stage.title.best("en"), venue.name.best("en") or venue.city) if part
        ),
        categories=[c for c in (session.track, session.type) if c],
        url=session_url(base_url, session.id),
    )


def _description(session: Session) -> str:
    lines: list[str] = []
    if session.title.en and session.title.zh:
        lines.append(session.title.zh)  # the summary holds the English title
    if session.speakers:
        lines.append("Speakers: " + "; ".join(_speaker(s) for s in session.speakers))
    if session.do_not_stream:
        lines.append("Not streamed.")
    lines.extend(text for text in (session.abstract.en, session.abstract.zh) if text)
    return "\n\n".join(lines)


def _speaker(speaker: Speaker) -> str:
    where = "remote" if speaker.remote else "on site"
    return (
        f"{speaker.name} ({speaker.affiliation}, {where})"
        if speaker.affiliation
        else f"{speaker.name} ({where})"
    )
