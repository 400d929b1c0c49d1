"""How the clients reach a forumcast server, and what they do when it says no or goes away.

Owns the pieces ``publish`` and ``watch`` share and that need no socket: WebSocket URLs
built from a ``--server`` address, the meaning of every refusal (an HTTP status before the
upgrade, or a close code after it), and the backoff between reconnection attempts.

Exceptions::

    ClientError            anything a client reports to its user as one line
    ├── SourceError        a file or test pattern that cannot be published
    └── Refused            the server refused or ended the connection for good (.code, .hint)
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

DEFAULT_SERVER = "http://127.0.0.1:8080"


class ClientError(Exception):
    """A problem the user can act on; the CLI prints it as one line, without a traceback."""


class SourceError(ClientError):
    pass


class Refused(ClientError):
    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


# --- URLs -------------------------------------------------------------------------------------

_WS_SCHEMES = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}
_HTTP_SCHEMES = {"http": "http", "https": "https", "ws": "http", "wss": "https"}


def ws_base(server: str) -> str:
    """``--server`` as a WebSocket base URL, keeping any path prefix (a reverse proxy's).

    Accepts ``http(s)://`` and ``ws(s)://`` URLs and bare ``host[:port]``.
    """
    return _base(server, _WS_SCHEMES)


def http_base(server: str) -> str:
    """``--server`` as an HTTP base URL (what :func:`ws_base` accepts)."""
    return _base(server, _HTTP_SCHEMES)


def _base(server: str, schemes: Mapping[str, str]) -> str:
    text = server.strip()
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    scheme = schemes.get(parts.scheme.lower())
    if scheme is None or not parts.netloc:
        raise ClientError(f"not a server address: {server!r} (like http://127.0.0.1:8080)")
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def endpoint(server: str, *segments: str, query: Mapping[str, str] | None = None) -> str:
    """The WebSocket URL of ``segments`` (each quoted, so an id cannot change the path)."""
    path = "/".join(quote(segment, safe="") for segment in segments)
    url = f"{ws_base(server)}/{path}"
    return f"{url}?{urlencode(query)}" if query else url


def publish_url(server: str, input_id: str, *, takeover: bool = False) -> str:
    """``/ws/publish/{input}``; the stream key travels in a header, not in the URL (logs)."""
    return endpoint(server, "ws", "publish", input_id, query={"takeover": "1"} if takeover else None)


def watch_url(
    server: str, *, stage: str | None = None, input_id: str | None = None, token: str | None = None
) -> str:
    """``/ws/watch/{stage}`` or, with ``input_id``, a producer's ``/ws/watch/input/{input}``."""
    query = {"token": token} if token else None
    if input_id:
        return endpoint(server, "ws", "watch", "input", input_id, query=query)
    if not stage:
        raise ClientError("watch needs a stage (--stage) or an input (--input)")
    return endpoint(server, "ws", "watch", stage, query=query)


def hls_url(server: str, *, stage: str | None, token: str | None = None) -> str:
    """A stage's LL-HLS multivariant playlist, ``/live/{stage}/index.m3u8`` (``?token=``
    for a closed stage: the server carries it into every URL below)."""
    if not stage:
        raise ClientError("watch --hls needs a stage (--stage)")
    url = f"{http_base(server)}/live/{quote(stage, safe='')}/index.m3u8"
    return f"{url}?{urlencode({'token': token})}" if token else url


# --- what the server meant --------------------------------------------------------------------


class Verdict(enum.Enum):
    RETRY = "retry"  # transient: reconnect after a backoff
    TAKEN_OVER = "taken over"  # another publisher replaced us on purpose: do not fight it
    DONE = "done"  # the server ended the stream normally
    FATAL = "fatal"  # retrying cannot help until someone fixes something


@dataclass(frozen=True, slots=True)
class Outcome:
    verdict: Verdict
    reason: str


_CLOSES: dict[int, Outcome] = {
    1000: Outcome(Verdict.DONE, "closed by the server"),
    1001: Outcome(Verdict.RETRY, "server going away"),
    1006: Outcome(Verdict.RETRY, "connection lost"),
    1007: Outcome(Verdict.FATAL, "the server refused the media (not valid fragmented MP4)"),
    1008: Outcome(Verdict.RETRY, "closed by server policy (too slow?)"),
    1009: Outcome(Verdict.FATAL, "the server refused the media (a box is larger than it accepts)"),
    1011: Outcome(Verdict.RETRY, "server error"),
    1012: Outcome(Verdict.RETRY, "server restarting"),
    1013: Outcome(Verdict.RETRY, "server busy, try again later"),
    4401: Outcome(Verdict.FATAL, "not authorised: wrong stream key or token"),
    4403: Outcome(Verdict.FATAL, "forbidden: this token may not do that"),
    4404: Outcome(Verdict.FATAL, "no such input or stage"),
    4409: Outcome(Verdict.TAKEN_OVER, "another publisher took over this input"),
}

_STATUSES: dict[int, Outcome] = {
    401: Outcome(Verdict.FATAL, "not authorised: wrong stream key or token"),
    403: Outcome(Verdict.FATAL, "forbidden: this needs another token (closed stage? producer token?)"),
    404: Outcome(Verdict.FATAL, "no such input or stage"),
    409: Outcome(Verdict.FATAL, "input busy: another publisher is live (use --takeover to replace it)"),
    429: Outcome(Verdict.RETRY, "too many requests"),
}


def classify_close(code: int | None, reason: str = "") -> Outcome:
    """What a close after the upgrade means (``None``: the connection died without a close frame)."""
    outcome = _CLOSES.get(1006 if code is None else code)
    if outcome is None:
        # Unknown application codes (4000-4999) are deliberate refusals; other codes are not ours.
        verdict = Verdict.FATAL if code is not None and 4000 <= code < 5000 else Verdict.RETRY
        outcome = Outcome(verdict, f"closed with code {code}")
    if reason:
        return Outcome(outcome.verdict, f"{outcome.reason} ({reason})")
    return outcome


def classify_status(status: int, body: bytes = b"") -> Outcome:
    """What an HTTP status instead of the upgrade means (``body``: the server's JSON error)."""
    if status in _STATUSES:
        outcome = _STATUSES[status]
    elif status >= 500:
        outcome = Outcome(Verdict.RETRY, f"server error (HTTP {status})")
    else:
        outcome = Outcome(Verdict.FATAL, f"refused with HTTP {status}")
    said = server_message(body)
    return Outcome(outcome.verdict, f"{outcome.reason}: {said}") if said else outcome


def server_message(body: bytes) -> str:
    """The message of a forumcast error body (``{"error": {"code", "message"}}``), if it is one."""
    try:
        error = json.loads(body).get("error", {})
        return f"{error['code']}: {error['message']}"
    except (ValueError, AttributeError, KeyError, TypeError):
        return ""


# --- backoff ----------------------------------------------------------------------------------


class Backoff:
    """Delays between reconnection attempts: ``initial``, doubling, at most ``maximum``.

    No jitter: one publisher per input is the rule, so there is no crowd of clients to spread
    out, and a predictable delay is easier to read in a publisher's log. :meth:`reset` after a
    connection that carried media, so one blip does not cost the long delay of a long outage.
    """

    def __init__(self, *, initial: float = 0.5, factor: float = 2.0, maximum: float = 15.0) -> None:
        if initial <= 0 or factor < 1 or maximum < initial:
            raise ValueError("backoff needs initial > 0, factor >= 1 and maximum >= initial")
        self.initial = initial
        self.factor = factor
        self.maximum = maximum
        self._next = initial

    def next_delay(self) -> float:
        delay = self._next
        self._next = min(self.maximum, self._next * self.factor)
        return delay

    def reset(self) -> None:
        self._next = self.initial
