"""The one exception root of forumcast and the single table of error codes.

Every error the service reports carries a dotted code (``area.reason``) and a human
message. How a code is reported on the wire lives here and nowhere else::

    ForumcastError                 code, message, details; status from CODES
    ├── ConfigError                config.*      (the CLI turns it into exit code 2)
    ├── ScheduleError              schedule.*    (a bad event file: every problem listed)
    ├── AuthError                  auth.*        (401 / 403)
    ├── MediaError                 media.*       (malformed fMP4, FLV or MPEG-TS from a publisher)
    ├── RtmpError                  rtmp.*        (an RTMP publisher broke the protocol)
    ├── SrtError                   srt.*         (SRT port taken, a bad streamid, a failed call)
    │   └── SrtUnavailable         srt.unavailable (libsrt is not installed)
    └── ModelError                 model.*       (a 3D upload the ingest pipeline refuses)

Handlers raise; the HTTP middleware and (later) the WebSocket layer look the code up in
:data:`CODES` to pick the HTTP status and the WebSocket close code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Wire:
    """How one error code is reported: HTTP status and WebSocket close code."""

    http: int
    ws: int


BAD_REQUEST = Wire(400, 1008)
UNAUTHORIZED = Wire(401, 4401)
FORBIDDEN = Wire(403, 4403)
NOT_FOUND = Wire(404, 4404)
CONFLICT = Wire(409, 4409)
UNAVAILABLE = Wire(503, 1013)
TOO_MANY = Wire(429, 1013)
INTERNAL = Wire(500, 1011)

#: Every error code the service can report, and how it is reported.
CODES: dict[str, Wire] = {
    "config.invalid": BAD_REQUEST,
    "schedule.invalid_file": BAD_REQUEST,
    "schedule.unknown_stage": NOT_FOUND,
    "schedule.unknown_session": NOT_FOUND,
    "schedule.unknown_timezone": BAD_REQUEST,
    "schedule.bad_day": BAD_REQUEST,
    "schedule.bad_delay": BAD_REQUEST,
    "schedule.delay_conflict": CONFLICT,
    "request.bad_json": BAD_REQUEST,
    "request.too_large": Wire(413, 1009),
    "request.not_found": NOT_FOUND,
    "request.method_not_allowed": Wire(405, 1008),
    "auth.missing_token": UNAUTHORIZED,
    "auth.invalid_token": UNAUTHORIZED,
    "auth.expired_token": UNAUTHORIZED,
    "auth.forbidden": FORBIDDEN,
    "auth.revoked_token": UNAUTHORIZED,
    "auth.bad_revocation": BAD_REQUEST,
    "audit.bad_query": BAD_REQUEST,
    "auth.too_many_attempts": Wire(429, 1008),
    "request.unsupported_media_type": Wire(415, 1003),
    "store.unavailable": UNAVAILABLE,
    # Media that cannot be relayed. WebSocket publishers are closed with 1007 (invalid
    # payload data) or 1009 (message too big); HTTP publishers get 400 or 413.
    "media.box_too_large": Wire(413, 1009),
    "media.truncated_box": Wire(400, 1007),
    "media.missing_tfdt": Wire(400, 1007),
    "media.fragment_before_init": Wire(400, 1007),
    "media.unexpected_box": Wire(400, 1007),
    "media.bad_init": Wire(400, 1007),
    "media.bad_fragment": Wire(400, 1007),
    # An RTMP publisher that broke the protocol (server/media/rtmp): the connection is closed.
    # The HTTP and WebSocket columns only matter if an RTMP error is ever reported there.
    # The SRT listener (server/ingest/srt_lib.py, srt_listener.py): libsrt is not installed, the
    # port is taken, a call into the library failed, a caller's streamid or passphrase is unusable.
    "srt.unavailable": UNAVAILABLE,
    "srt.bind_failed": UNAVAILABLE,
    "srt.call_failed": INTERNAL,
    "srt.bad_streamid": BAD_REQUEST,
    "srt.bad_passphrase": BAD_REQUEST,
    # (RTMP, as the comment above the SRT codes says)
    "rtmp.bad_handshake": Wire(400, 1002),
    "rtmp.bad_chunk": Wire(400, 1002),
    "rtmp.bad_chunk_size": Wire(400, 1002),
    "rtmp.message_too_large": Wire(413, 1009),
    "rtmp.too_many_chunk_streams": Wire(400, 1008),
    "rtmp.buffer_full": Wire(413, 1009),
    "rtmp.bad_message": Wire(400, 1007),
    "rtmp.bad_amf": Wire(400, 1007),
    "rtmp.amf_too_large": Wire(413, 1009),
    "rtmp.bad_command": Wire(400, 1008),
    # RTMP and SRT listeners (server/ingest): where a publisher pointed, and its deadlines.
    "rtmp.bad_app": NOT_FOUND,
    "rtmp.bad_name": BAD_REQUEST,
    "ingest.handshake_timeout": Wire(408, 1008),
    "ingest.idle_timeout": Wire(408, 1008),
    "ingest.too_many_connections": Wire(503, 1013),
    "ingest.bind_failed": UNAVAILABLE,
    "ingest.bad_certificate": UNAVAILABLE,
    # FLV from an RTMP publisher or a pipe (server/media/flv.py, server/media/flv_remux.py).
    "media.bad_flv": Wire(400, 1007),
    "media.truncated_flv": Wire(400, 1007),
    "media.tag_too_large": Wire(413, 1009),
    "media.unsupported_codec": Wire(415, 1003),
    "media.frame_before_config": Wire(400, 1007),
    # MPEG-TS from an SRT publisher (server/media/mpegts.py, server/media/ts_remux.py).
    "media.bad_ts": Wire(400, 1007),
    "media.pes_too_large": Wire(413, 1009),
    "media.bad_config": Wire(400, 1007),
    "live.unknown_input": NOT_FOUND,
    "live.unknown_stage": NOT_FOUND,
    "live.input_busy": CONFLICT,
    "live.bad_key": UNAUTHORIZED,
    "live.bad_control": BAD_REQUEST,
    "live.too_slow": Wire(400, 1008),
    "live.shutting_down": Wire(503, 1001),
    "live.too_many_connections": Wire(429, 1013),
    "live.full": UNAVAILABLE,
    "program.input_down": CONFLICT,
    "hls.gone": NOT_FOUND,
    "hls.bad_request": BAD_REQUEST,
    "hls.too_far_ahead": BAD_REQUEST,
    "hls.not_yet": UNAVAILABLE,
    "hls.invalid_viewer": Wire(422, 1008),
    "hls.rate_limited": Wire(429, 1008),
    "program.bad_take": BAD_REQUEST,
    # The exhibition: catalog, uploads, jobs, meeting requests.
    "exhibit.unknown": NOT_FOUND,
    "exhibit.bad_query": BAD_REQUEST,
    "exhibit.invalid_catalog": BAD_REQUEST,
    "job.unknown": NOT_FOUND,
    "visit.invalid": Wire(422, 1008),
    "visit.rate_limited": Wire(429, 1008),
    "meeting.invalid": Wire(422, 1008),
    "meeting.unknown": NOT_FOUND,
    "meeting.rate_limited": Wire(429, 1008),
    "meeting.already_decided": CONFLICT,
    "model.unknown": NOT_FOUND,
    # 3D uploads the ingest pipeline refuses (HTTP) or that make the CLI exit with code 2.
    "model.too_large": Wire(413, 1009),
    "model.unknown_format": Wire(415, 1003),
    "model.corrupt": BAD_REQUEST,
    "model.empty": Wire(422, 1007),
    "model.no_faces": Wire(422, 1007),
    "model.non_finite": Wire(422, 1007),
    "model.too_many_triangles": Wire(413, 1009),
    "model.unsafe_archive": Wire(422, 1007),
    "model.archive_too_large": Wire(413, 1009),
    "model.too_many_entries": Wire(413, 1009),
    "model.external_uri": Wire(422, 1007),
    "model.bad_option": BAD_REQUEST,
    # The ingest queue: an exhibitor's jobs and the queue are bounded (429 + Retry-After);
    # a worker process that died mid-job (killed, out of memory) fails that job alone.
    "model.busy": TOO_MANY,
    "ingest.queue_full": TOO_MANY,
    "ingest.worker_lost": UNAVAILABLE,
    # The cluster: an entry in a Redis stream that cannot be read (skipped, logged), and a
    # producer's command that no leader answered in time (no instance leads the stage now).
    "cluster.bad_entry": INTERNAL,
    "cluster.no_leader": UNAVAILABLE,
    "internal.error": INTERNAL,
}


class ForumcastError(Exception):
    """Root of every error forumcast raises on purpose."""

    def __init__(self, code: str, message: str, *, details: Any = None) -> None:
        if code not in CODES:
            raise ValueError(f"unregistered error code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details

    @property
    def wire(self) -> Wire:
        return CODES[self.code]

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            body["details"] = self.details
        return {"error": body}


class ConfigError(ForumcastError):
    """The configuration is unusable; the message names the key or file."""

    def __init__(self, message: str) -> None:
        super().__init__("config.invalid", message)


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with an event file: where it is and why it is wrong."""

    file: str
    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.path}: {self.reason}"


class ScheduleError(ForumcastError):
    """An event file was refused; ``problems`` lists every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(
            "schedule.invalid_file",
            f"{len(problems)} problem(s) in the event file:\n{lines}",
            details=[{"file": p.file, "path": p.path, "reason": p.reason} for p in problems],
        )


class AuthError(ForumcastError):
    """Authentication (401) or authorisation (403) failed."""


class MediaError(ForumcastError):
    """A publisher sent bytes that are not relayable fragmented MP4, FLV or MPEG-TS; the message says why."""


class RtmpError(ForumcastError):
    """An RTMP publisher sent bytes the RTMP core refuses; the message says why."""


class SrtError(ForumcastError):
    """The SRT layer failed (library missing, port taken, a call refused) or a caller's
    streamid cannot be read; the message says which."""


class SrtUnavailable(SrtError):
    """libsrt is not installed (or not loadable); the message names the Debian package."""

    def __init__(self, message: str) -> None:
        super().__init__("srt.unavailable", message)


class ModelError(ForumcastError):
    """A 3D model was refused by the ingest pipeline; the message says why in one line.

    Raised in worker processes and re-raised in the server, so it pickles by its code and
    message (exceptions pickle by ``args``, which would lose the code).
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)

    def __reduce__(self) -> tuple[type[ModelError], tuple[str, str]]:
        return (ModelError, (self.code, self.message))
