"""What an SRT caller says it is: its ``streamid``, read without I/O.

An SRT caller sends one string of at most 512 bytes with its handshake (``SRTO_STREAMID``);
the listener reads it before accepting (server/ingest/srt_listener.py) to pick the input
and check the key. Two forms are accepted:

* SRT's access-control syntax (SRT's docs/features/access-control.md):
  ``#!::r=stage1-cam,k=SECRET,m=publish,u=alice``: ``#!`` then the format ``:`` then the
  ``:`` content form, comma-separated ``key=value`` pairs without nesting. The syntax has no
  escaping, so a value runs to the next comma and may itself hold ``=``. ``r`` names the
  resource (our input), ``k`` carries the stream key (a key of our own, as SRT lets
  services define), ``m`` the mode, ``u`` the user. Unknown keys (``h``, ``s``, ``t``,
  ``acme_*``) are allowed and ignored.
* Anything else is a plain key: the whole string, with no resource (the wiring then finds
  the input by its key).

``m`` defaults to ``publish``, not to the access-control default ``request``: every caller
of an ingest listener sends, and encoders that write ``m`` at all write ``m=publish``.
Malformed strings raise :class:`~server.errors.SrtError` ``srt.bad_streamid`` with a message
fit for a log line (the key itself is never quoted).
"""

from __future__ import annotations

from dataclasses import dataclass

from server.errors import SrtError

MAX_STREAMID = 512  # bytes, the protocol's limit
PREFIX = "#!::"
MODES = ("publish", "request", "bidirectional")


@dataclass(frozen=True, slots=True)
class StreamId:
    """A caller's streamid, read: ``resource`` is ``""`` for a plain key."""

    resource: str
    key: str
    mode: str = "publish"
    user: str = ""


def _bad(reason: str) -> SrtError:
    return SrtError("srt.bad_streamid", f"unusable SRT streamid: {reason}")


def parse_streamid(text: str) -> StreamId:
    """Read a streamid in either form; :class:`SrtError` (``srt.bad_streamid``) if malformed."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_STREAMID:
        raise _bad(f"longer than {MAX_STREAMID} bytes")
    if not text:
        raise _bad("empty (give the stream key, or #!::r=INPUT,k=KEY)")
    if not text.startswith("#!"):
        if any(ord(c) < 0x20 or c == "\x7f" for c in text):
            raise _bad("control characters in a plain key")
        return StreamId(resource="", key=text)
    if not text.startswith(PREFIX):
        raise _bad("only the '#!::' key=value form is understood (not nested '#!:{...}')")
    fields: dict[str, str] = {}
    for position, pair in enumerate(text[len(PREFIX) :].split(","), start=1):
        name, equals, value = pair.partition("=")
        if not equals:
            raise _bad(f"item {position} has no '=' (items are key=value, separated by commas)")
        if not name:
            raise _bad(f"item {position} has an empty key")
        if name in fields:
            raise _bad(f"key {name!r} given twice")
        if any(ord(c) < 0x20 or c == "\x7f" for c in value):
            raise _bad(f"control characters in the value of {name!r}")
        fields[name] = value
    if not fields.get("k"):
        raise _bad("no stream key: add k=KEY")
    if "r" in fields and not fields["r"]:
        raise _bad("r= is empty (name the input, or leave r out)")
    mode = fields.get("m", "publish")
    if mode not in MODES:
        raise _bad(f"m={mode!r} is not one of {', '.join(MODES)}")
    return StreamId(resource=fields.get("r", ""), key=fields["k"], mode=mode, user=fields.get("u", ""))
