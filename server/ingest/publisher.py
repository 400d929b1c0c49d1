"""What every production-gear publisher shares, whatever its protocol: admission and remux.

:class:`IngestEnv` is what the RTMP and SRT listeners need from the application (the live
hub, the stream keys, the credential throttle, metrics, the clock, their settings).
:func:`admit` applies the same rules as a WebSocket publisher's: an unknown input is
``live.unknown_input``, a wrong key ``live.bad_key`` (counted by the throttle against the
client's address and the input, refused with ``auth.too_many_attempts`` while blocked), a
second publisher without ``takeover`` ``live.input_busy`` (unless the first has been silent
for ``stall_after``: an encoder reconnecting after a lost link, whose old connection is
still half-open, takes its input back at once).

:class:`RemuxedPublisher` is one admitted publisher whose FLV messages (from RTMP, or from
MPEG-TS for SRT) go through a :class:`~server.media.flv_remux.Remuxer` into its
:class:`~server.live.inputs.LiveInput` as a :class:`~server.live.inputs.PublisherSession`
of kind ``rtmp`` or ``srt``: the program, the GOP cache, LL-HLS, tally and metrics see it as
any other publisher. It also keeps what a producer wants to know about the encoder
(its ``onMetaData``, B-frames), shown by ``GET /api/v1/inputs``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from server.clock import Clock
from server.errors import ForumcastError
from server.ingest.settings import IngestSettings
from server.limiter import AuthThrottle, checked_key
from server.live.hub import LiveHub
from server.live.inputs import LiveInput, PublisherSession
from server.media.flv import TagKind
from server.media.flv_remux import Remuxer
from server.metrics import Metrics
from server.stream_keys import StreamKeys

log = logging.getLogger("forumcast.ingest")

#: onMetaData fields worth showing a producer (what OBS, vMix and ffmpeg put there).
_METADATA = ("encoder", "videodatarate", "audiodatarate", "framerate", "width", "height")


@dataclass(frozen=True, slots=True)
class IngestEnv:
    hub: LiveHub
    keys: StreamKeys
    throttle: AuthThrottle
    metrics: Metrics
    clock: Clock
    settings: IngestSettings


async def admit(
    env: IngestEnv, input_id: str, key: str | None, *, client: str, takeover: bool
) -> tuple[LiveInput, bool]:
    """The input a publisher at ``client`` may publish to and whether it takes the input
    over from a publisher there, or our error saying why not."""
    live = env.hub.input(input_id)
    await checked_key(
        env.throttle, env.metrics, client, f"input:{live.id}", lambda: env.keys.check(live.id, key)
    )
    if live.publisher is None or takeover:
        return live, takeover
    if not _silent(live, env.clock.monotonic()):
        raise ForumcastError(
            "live.input_busy", f"input {live.id!r} already has a publisher (add takeover=1 to replace it)"
        )
    return live, True


def _silent(live: LiveInput, now: float) -> bool:
    """The input's publisher has sent nothing for ``stall_after``: most likely the same
    encoder's old connection, half-open after a lost link. Its reconnect replaces it
    without asking for a takeover (encoders cannot be told to add ``takeover=1``)."""
    return live.last_data_at is None or now - live.last_data_at > live.stall_after


def refused(env: IngestEnv, protocol: str, remote: str, exc: ForumcastError) -> None:
    """Log a refused or failed publisher connection once, and count it."""
    env.metrics.publisher_refused.labels(protocol=protocol, code=exc.code).inc()
    log.warning("%s publisher %s: %s: %s", protocol.upper(), remote, exc.code, exc.message)


class RemuxedPublisher:
    """One admitted RTMP or SRT publisher feeding its input through the FLV remuxer.

    ``kick(code, message)`` closes the connection (called when a takeover replaces it).
    """

    def __init__(
        self,
        env: IngestEnv,
        live: LiveInput,
        *,
        protocol: str,
        remote: str,
        takeover: bool,
        kick: Callable[[str, str], None],
    ) -> None:
        self.live = live
        self.remuxer = Remuxer(fragment_ms=env.settings.fragment_ms)
        self.metadata: dict[str, Any] = {}
        self.session = PublisherSession(protocol, remote, _no_events, kick, details=self.details)
        live.attach(self.session, takeover=takeover)
        log.info(
            "input %s: %s publisher %s connected%s",
            live.id,
            protocol.upper(),
            remote,
            " (takeover)" * takeover,
        )

    @property
    def current(self) -> bool:
        """Still the input's publisher (not replaced by a takeover)."""
        return self.live.publisher is self.session

    def received(self, now: float) -> None:
        """Bytes arrived at ``now`` (before they make whole messages): the input is alive."""
        self.live.received(self.session, now)

    def feed(self, kind: TagKind, timestamp: int, payload: bytes) -> None:
        """One FLV audio or video message (``media.*`` errors propagate: the caller closes)."""
        for item in self.remuxer.feed(kind, timestamp, payload):
            self.live.push(self.session, item)

    def set_metadata(self, values: tuple[Any, ...]) -> None:
        """An ``onMetaData`` script message: keep the fields a producer cares about."""
        if len(values) >= 2 and values[0] == "onMetaData" and isinstance(values[1], dict):
            self.metadata = {
                name: values[1][name]
                for name in _METADATA
                if isinstance(values[1].get(name), str | float | int | bool)
            }

    def details(self) -> dict[str, Any]:
        """What the inputs view shows about this encoder beyond the tracks."""
        remuxer = self.remuxer
        return {
            "encoder": self.metadata.get("encoder"),
            "declared_bitrate_kbps": _declared_bitrate(self.metadata),
            "bframes": remuxer.reordered_frames > 0,
            "reorder_ms": remuxer.max_composition_ms,
            "warnings": dict(remuxer.warnings),
        }

    def close(self) -> None:
        """The connection ended: send out the fragment in progress and leave the input."""
        if self.current and self.remuxer.init is not None:
            try:
                for item in self.remuxer.end(align=True):
                    self.live.push(self.session, item)
            except ForumcastError:
                pass  # the stream had failed already; the error was reported then
        self.live.detach(self.session)
        log.info(
            "input %s: %s publisher %s gone", self.live.id, self.session.kind.upper(), self.session.remote
        )


def _declared_bitrate(metadata: dict[str, Any]) -> int | None:
    rates = [metadata.get("videodatarate"), metadata.get("audiodatarate")]
    numbers = [float(r) for r in rates if isinstance(r, int | float) and not isinstance(r, bool)]
    return round(sum(numbers)) if numbers else None


def _no_events(_: dict[str, object]) -> None:
    """RTMP and SRT have no channel for our JSON events (tally, stats): they are dropped."""
