"""What a media playlist request asks for, and what to do with it: sans-I/O decisions.

A player's reload of the media playlist names a state of the playlist: the segment (and
part) it waits for with ``_HLS_msn`` / ``_HLS_part``, a delta update with ``_HLS_skip``, and
the query every URI must carry (a closed stage's ``token``). Two requests with the same
:class:`Reload` get the same bytes, so the adapter (:mod:`server.live.hls`) makes them
*meet*: the first one starts the wait and the render, every later one with an equal key
joins it. :func:`decide` says whether a request is answered now, waits, or is refused.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from server.errors import ForumcastError
from server.media.hls import Packager

#: Query parameters that are carried into every URI of a playlist (nothing per viewer).
CARRIED = ("token",)
#: Longest decimal a blocking parameter may have.
MAX_DIGITS = 12


@dataclass(frozen=True, slots=True)
class Reload:
    """One media playlist request, as the key of its answer."""

    msn: int | None = None
    part: int | None = None
    skip: bool = False
    #: The query carried into every URI (``token=…`` on a closed stage, else empty).
    query: str = ""

    @property
    def blocking(self) -> bool:
        return self.msn is not None


class Decision(enum.Enum):
    ANSWER = "answer"  # what it asks for is there (or it asks for nothing): render now
    WAIT = "wait"  # hold it until the packager has it, up to the bound
    TOO_FAR = "too_far"  # further ahead than a client may ask: 400 at once


def reload_of(params: Mapping[str, str]) -> Reload:
    """The request's :class:`Reload` from its query; ``hls.bad_request`` when malformed."""
    msn, part = _count(params, "_HLS_msn"), _count(params, "_HLS_part")
    if part is not None and msn is None:
        raise ForumcastError("hls.bad_request", "_HLS_part needs _HLS_msn")
    carried = urlencode({k: params[k] for k in CARRIED if k in params})
    return Reload(msn, part, params.get("_HLS_skip") in ("YES", "v2"), carried)


def decide(packager: Packager, reload: Reload) -> Decision:
    if reload.msn is None:
        return Decision.ANSWER
    if packager.too_far(reload.msn):
        return Decision.TOO_FAR
    return Decision.ANSWER if ready(packager, reload) else Decision.WAIT


def ready(packager: Packager, reload: Reload) -> bool:
    """Whether the playlist holds what ``reload`` waits for (always, if it waits for nothing)."""
    return reload.msn is None or packager.has(reload.msn, reload.part)


def wait_bound(packager: Packager) -> float:
    """Seconds a blocking request is held before a 503 (RFC 8216bis 6.2.5.2: three target
    durations), also the bound of a held preload-hinted part."""
    return 3.0 * packager.playlist_target


def _count(params: Mapping[str, str], name: str) -> int | None:
    value = params.get(name)
    if value is None:
        return None
    if not (value.isascii() and value.isdigit()) or len(value) > MAX_DIGITS:  # isdigit() alone takes '²'
        raise ForumcastError("hls.bad_request", f"{name} must be a non-negative integer")
    return int(value)
