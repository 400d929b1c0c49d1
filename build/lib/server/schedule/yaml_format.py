"""forumcast's own event file format (YAML), read into an :class:`Event`.

Shape (every key is checked; unknown keys are problems, so typos do not pass silently)::

    event:   {id, title: {zh, en}, timezone, theme?: {zh, en}, url?, demo?}
    venues:  [{id, name: {zh, en}, timezone, city?}]
    stages:  [{id, title: {zh, en}, kind: main|forum|closed-door|side, venue,
               closed?, description?, inputs?: [{id, title, kind?: camera|remote|encoder}]}]
    sessions: [{id, stage, title: {zh, en}, start, end, speakers?: [{name, remote?,
               affiliation?, country?}], track?, type?, language?, do_not_stream?,
               abstract?: {zh, en}, input?, backup_input?}]

``start``/``end`` are ISO 8601 with a UTC offset (``2020-12-07T14:30:00+01:00``); they are
stored in the zone of the stage's venue. A datetime without an offset is refused. A
closed-door stage is closed unless it says ``closed: false``.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from server.errors import Problem, ScheduleError
from server.schedule.model import (
    Event,
    InputDecl,
    InputKind,
    Session,
    Speaker,
    Stage,
    StageKind,
    Text,
    Venue,
)
from server.schedule.reader import DocumentReader
from server.schedule.validate import check_event


class _Loader(yaml.SafeLoader):
    """SafeLoader that keeps timestamps as text, so that naive ones can be refused."""


_Loader.yaml_implicit_resolvers = {
    key: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class _YamlReader(DocumentReader):
    """A :class:`DocumentReader` with our format's translated texts and offset-only datetimes."""

    def zone(self, node: dict[str, Any], key: str, path: str) -> ZoneInfo:
        """The zone named at ``key``, or UTC (reported) so that reading can go on."""
        return super().zone(node, key, path) or ZoneInfo("UTC")

    def text(self, node: dict[str, Any], key: str, path: str) -> Text:
        """``{zh, en}`` at ``key``; a plain string is the English text."""
        value = node.get(key)
        if value is None:
            return Text()
        if isinstance(value, str):
            return Text(en=value)
        fields = self.mapping(value, f"{path}.{key}", allowed={"zh", "en"})
        return Text(
            zh=self.string(fields, "zh", f"{path}.{key}"), en=self.string(fields, "en", f"{path}.{key}")
        )

    def moment(self, node: dict[str, Any], key: str, path: str, zone: ZoneInfo) -> datetime | None:
        """An ISO datetime with a UTC offset, moved into ``zone``; a naive one is refused."""
        value = node.get(key)
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            self.problem(f"{path}.{key}", f"not an ISO 8601 datetime: {value!r}")
            return None
        if moment.tzinfo is None:
            self.problem(f"{path}.{key}", f"naive datetime {value!r}: give a UTC offset, e.g. +08:00")
            return None
        return moment.astimezone(zone)


def parse_event(document: Any, *, file: str) -> Event:
    """Build an event from a parsed YAML document, or raise ScheduleError listing every problem."""
    r = _YamlReader(file)
    sections = {"event", "venues", "stages", "sessions"}
    top = r.mapping(document, "$", sections, allowed=sections)
    head = r.mapping(
        top.get("event", {}),
        "event",
        {"id", "title", "timezone"},
        allowed={"id", "title", "timezone", "theme", "url", "demo"},
    )
    event_zone = r.zone(head, "timezone", "event")

    def venue(node: Any, path: str) -> Venue:
        v = r.mapping(node, path, {"id", "timezone"}, allowed={"id", "name", "timezone", "city"})
        return Venue(
            r.string(v, "id", path),
            r.text(v, "name", path),
            r.zone(v, "timezone", path),
            r.string(v, "city", path),
        )

    venues = r.items(top.get("venues"), "venues", venue)
    zones = {v.id: v.timezone for v in venues}

    stage_paths: list[str] = []

    def stage(node: Any, path: str) -> Stage:
        s = r.mapping(
            node,
            path,
            {"id", "title", "kind", "venue"},
            allowed={"id", "title", "kind", "venue", "closed", "description", "inputs"},
        )
        stage_id = r.string(s, "id", path)
        kind = r.choice(s, "kind", path, StageKind, StageKind.FORUM)

        def decl(item: Any, at: str) -> InputDecl:
            d = r.mapping(item, at, {"id"}, allowed={"id", "title", "kind"})
            return InputDecl(
                r.string(d, "id", at),
                stage_id,
                r.string(d, "title", at),
                r.choice(d, "kind", at, InputKind, InputKind.CAMERA),
            )

        stage_paths.append(path)
        return Stage(
            id=stage_id,
            title=r.text(s, "title", path),
            kind=kind,
            venue=r.string(s, "venue", path),
            closed=r.flag(s, "closed", path, default=kind is StageKind.CLOSED_DOOR),
            inputs=tuple(r.items(s.get("inputs"), f"{path}.inputs", decl)),
            description=r.text(s, "description", path),
        )

    stages = r.items(top.get("stages"), "stages", stage)
    stage_zone = {s.id: zones.get(s.venue, event_zone) for s in stages}

    session_paths: list[str] = []

    def session(node: Any, path: str) -> Session | None:
        s = r.mapping(
            node,
            path,
            {"id", "stage", "title", "start", "end"},
            allowed={
                "id",
                "stage",
                "title",
                "start",
                "end",
                "speakers",
                "track",
                "type",
                "language",
                "do_not_stream",
                "abstract",
                "input",
                "backup_input",
            },
        )
        zone = stage_zone.get(str(s.get("stage")), event_zone)
        start, end = r.moment(s, "start", path, zone), r.moment(s, "end", path, zone)

        def speaker(item: Any, at: str) -> Speaker:
            p = r.mapping(item, at, {"name"}, allowed={"name", "remote", "affiliation", "country"})
            return Speaker(
                r.string(p, "name", at),
                r.flag(p, "remote", at),
                r.string(p, "affiliation", at),
                r.string(p, "country", at),
            )

        speakers = tuple(r.items(s.get("speakers"), f"{path}.speakers", speaker))
        if start is None or end is None:
            return None
        session_paths.append(path)
        return Session(
            id=r.string(s, "id", path),
            stage=r.string(s, "stage", path),
            title=r.text(s, "title", path),
            start=start,
            end=end,
            speakers=speakers,
            track=r.string(s, "track", path),
            type=r.string(s, "type", path, "talk"),
            language=r.string(s, "language", path, "zh"),
            do_not_stream=r.flag(s, "do_not_stream", path),
            abstract=r.text(s, "abstract", path),
            input=r.string(s, "input", path) or None,
            backup_input=r.string(s, "backup_input", path) or None,
        )

    sessions = r.items(top.get("sessions"), "sessions", session)
    event = Event(
        id=r.string(head, "id", "event"),
        title=r.text(head, "title", "event"),
        timezone=event_zone,
        venues=tuple(venues),
        stages=tuple(stages),
        sessions=tuple(sessions),
        theme=r.text(head, "theme", "event"),
        url=r.string(head, "url", "event"),
        demo=r.flag(head, "demo", "event"),
    )
    return check_event(
        event, file=file, earlier=r.problems, stage_paths=stage_paths, session_paths=session_paths
    )


def load_yaml_text(text: str, *, file: str) -> Event:
    try:
        document = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "$"
        raise ScheduleError(
            [Problem(file, where, f"not valid YAML: {getattr(exc, 'problem', exc)}")]
        ) from None
    return parse_event(document, file=file)


def load_yaml(path: Path) -> Event:
    return load_yaml_text(path.read_text(encoding="utf-8"), file=str(path))
