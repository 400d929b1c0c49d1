"""What an RTMP session tells its adapter: the events :meth:`ServerSession.receive_data`
returns. Each is a frozen value; the adapter decides what they mean for an input."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Connected:
    """The client's ``connect`` was answered: the application name and its tcUrl."""

    app: str
    tc_url: str


@dataclass(frozen=True, slots=True)
class PublishRequested:
    """The client asks to publish: answer with ``accept_publish()`` or ``reject_publish()``.

    ``stream_name`` is as sent (OBS's "Stream Key", possibly with a ``?key=`` query);
    ``publish_type`` is ``live``, ``record`` or ``append`` (we treat them all as live).
    """

    stream_name: str
    publish_type: str


class MediaKind(enum.Enum):
    AUDIO = "audio"
    VIDEO = "video"
    DATA = "data"


@dataclass(frozen=True, slots=True)
class MediaMessage:
    """An audio or video message (an FLV tag body) or a data message, as published.

    ``timestamp`` is the 32-bit millisecond clock of the RTMP message (it wraps). For DATA,
    ``payload`` is the AMF0 of an FLV script tag (``@setDataFrame`` removed, so it starts
    with ``onMetaData``) and ``values`` its decoded values.
    """

    kind: MediaKind
    timestamp: int
    payload: bytes
    values: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True)
class Unpublished:
    """The client ended publishing (``FCUnpublish``, ``deleteStream`` or ``closeStream``)."""

    stream_name: str


@dataclass(frozen=True, slots=True)
class Closed:
    """The connection ended (``receive_eof``); ``publishing`` says if it did mid-stream."""

    publishing: bool


Event = Connected | PublishRequested | MediaMessage | Unpublished | Closed
