"""Which input an RTMP publisher means, with which key: pure parsing of app and stream name.

Encoders split a publishing URL in two. ffmpeg and most hardware take one URL,
``rtmp://host:1935/live/{input}?key={key}``, and send ``live`` as the application and
``{input}?key={key}`` as the stream name. OBS, vMix and meeting platforms ask for a
"Server" and a "Stream Key" separately: the server ``rtmp://host:1935/live/{input}`` makes
the application ``live/{input}`` and the stream key is the stream name. So:

=============================  ===================  ======================
application                    stream name          means
=============================  ===================  ======================
``live``                       ``cam?key=K``        input ``cam``, key ``K``
``live``                       ``cam/K``            input ``cam``, key ``K``
``live/cam``                   ``K``                input ``cam``, key ``K``
``live/cam``                   ``K?takeover=1``     the same, taking over
``live/cam?key=K``             anything             input ``cam``, key ``K``
=============================  ===================  ======================

``takeover=1`` (or ``true``/``yes``) may be in either query. Anything else is
``rtmp.bad_app`` (another application) or ``rtmp.bad_name`` (no input named), with a
message that shows the URL to use.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs

from server.errors import RtmpError

_YES = frozenset({"1", "true", "yes"})


@dataclass(frozen=True, slots=True)
class Target:
    input: str
    key: str | None
    takeover: bool = False


def _split(text: str) -> tuple[str, dict[str, list[str]]]:
    path, _, query = text.partition("?")
    return path, parse_qs(query, keep_blank_values=True)


def _first(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


def rtmp_target(app: str, stream_name: str, *, expected_app: str) -> Target:
    """The input, key and takeover flag an RTMP ``connect`` app and ``publish`` name ask for."""
    app_path, app_query = _split(app)
    root, _, app_input = app_path.strip("/").partition("/")
    if root != expected_app:
        raise RtmpError(
            "rtmp.bad_app",
            f"unknown application {root!r}: publish to rtmp://HOST:PORT/{expected_app}/INPUT with the "
            "stream key as the stream key",
        )
    name_path, name_query = _split(stream_name)
    query = {**app_query, **name_query}
    takeover = (_first(query, "takeover") or "").lower() in _YES
    key = _first(query, "key")
    if app_input:
        if "/" in app_input:
            raise RtmpError(
                "rtmp.bad_name", f"{app_path!r}: one input per URL (rtmp://HOST/{expected_app}/INPUT)"
            )
        return Target(app_input, key if key is not None else (name_path or None), takeover)
    input_id, _, name_key = name_path.partition("/")
    if not input_id:
        raise RtmpError("rtmp.bad_name", f"no input named: publish to rtmp://HOST:PORT/{expected_app}/INPUT")
    return Target(input_id, key if key is not None else (name_key or None), takeover)
