"""Consistency rules every loaded event must satisfy, whatever file format it came from.

Loaders parse their format, collect the problems they can see at that level (missing
keys, bad types, naive datetimes), build an :class:`~server.schedule.model.Event` from
what parsed, and then call :func:`check_event`, which adds the cross-reference rules:
duplicate ids, unknown stages/venues/inputs, end before start, overlapping sessions on a
stage. Everything found is reported at once in one :class:`~server.errors.ScheduleError`.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from server.errors import Problem, ScheduleError
from server.schedule.model import Event


def _fmt(moment: datetime) -> str:
    return moment.isoformat(timespec="minutes")


def event_problems(
    event: Event,
    *,
    file: str,
    stage_paths: Sequence[str] | None = None,
    session_paths: Sequence[str] | None = None,
) -> list[Problem]:
    """Every cross-reference problem in ``event``; paths point into the source document."""
    stage_at = list(stage_paths or [f"stages[{i}]" for i in range(len(event.stages))])
    session_at = list(session_paths or [f"sessions[{i}]" for i in range(len(event.sessions))])
    problems: list[Problem] = []

    def add(path: str, reason: str) -> None:
        problems.append(Problem(file, path, reason))

    seen_venues: set[str] = set()
    for i, venue in enumerate(event.venues):
        if venue.id in seen_venues:
            add(f"venues[{i}].id", f"duplicate venue id {venue.id!r}")
        seen_venues.add(venue.id)

    seen_stages: set[str] = set()
    seen_inputs: dict[str, str] = {}
    for i, stage in enumerate(event.stages):
        if stage.id in seen_stages:
            add(f"{stage_at[i]}.id", f"duplicate stage id {stage.id!r}")
        seen_stages.add(stage.id)
        if event.venue(stage.venue) is None:
            add(f"{stage_at[i]}.venue", f"unknown venue {stage.venue!r}")
        for j, decl in enumerate(stage.inputs):
            if decl.id in seen_inputs:
                add(
                    f"{stage_at[i]}.inputs[{j}].id",
                    f"duplicate input id {decl.id!r} (already declared on stage {seen_inputs[decl.id]!r})",
                )
            seen_inputs[decl.id] = stage.id

    seen_sessions: set[str] = set()
    for i, session in enumerate(event.sessions):
        at = session_at[i]
        if session.id in seen_sessions:
            add(f"{at}.id", f"duplicate session id {session.id!r}")
        seen_sessions.add(session.id)
        owner = event.stage(session.stage)
        if owner is None:
            add(f"{at}.stage", f"unknown stage {session.stage!r}")
        for key, value in (("input", session.input), ("backup_input", session.backup_input)):
            if value is None:
                continue
            if value not in seen_inputs:
                add(f"{at}.{key}", f"unknown input {value!r}")
            elif owner is not None and seen_inputs[value] != owner.id:
                add(
                    f"{at}.{key}",
                    f"input {value!r} belongs to stage {seen_inputs[value]!r}, not {owner.id!r}",
                )
        if session.start.tzinfo is None or session.end.tzinfo is None:
            add(at, "naive datetime: start and end need a UTC offset or a zone")
            continue
        if session.duration <= timedelta(0):
            add(f"{at}.end", f"ends ({_fmt(session.end)}) before or when it starts ({_fmt(session.start)})")

    by_stage: dict[str, list[int]] = {}
    for i, session in enumerate(event.sessions):
        if session.start.tzinfo is not None and session.end.tzinfo is not None:
            by_stage.setdefault(session.stage, []).append(i)
    for indices in by_stage.values():
        # Compared in UTC: same-zone datetimes compare by wall clock, wrong across DST.
        indices.sort(key=lambda i: event.sessions[i].start.astimezone(UTC))
        for before, after in itertools.pairwise(indices):
            a, b = event.sessions[before], event.sessions[after]
            if b.start.astimezone(UTC) < a.end.astimezone(UTC):
                add(
                    session_at[after],
                    f"overlaps session {a.id!r} on stage {a.stage!r} "
                    f"({_fmt(b.start)} starts before {_fmt(a.end)})",
                )
    if not event.sessions:
        add("sessions", "the event has no sessions")
    return problems


def check_event(
    event: Event,
    *,
    file: str,
    earlier: Sequence[Problem] = (),
    stage_paths: Sequence[str] | None = None,
    session_paths: Sequence[str] | None = None,
) -> Event:
    """Return ``event`` if it and the loader's ``earlier`` problems are clean, else raise."""
    problems = list(earlier) + event_problems(
        event, file=file, stage_paths=stage_paths, session_paths=session_paths
    )
    if problems:
        raise ScheduleError(problems)
    return event
