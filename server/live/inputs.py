"""A live input: one publisher at a time, its timeline, its preview viewers, its health.

Publisher sessions (a WebSocket or a chunked HTTP POST) feed parsed items into
:meth:`LiveInput.push`. A second publisher is refused (``live.input_busy``) unless it asks to
take over, in which case the first is closed and the new one continues on the same output
timeline, so whoever watches keeps playing. Everything placed on the input's timeline goes
to its preview viewers and to the listeners (the stage programs it feeds).
"""

from __future__ import annotations

import enum
import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from server.errors import ForumcastError
from server.live.automation import MAX_FRAGMENT_GAP
from server.live.fanout import Fanout
from server.live.frames import binary_frame
from server.live.settings import LiveEnv
from server.media.timeline import Timeline
from server.media.types import InitSegment, MediaFragment
from server.schedule.model import InputDecl

#: Seconds of history behind the bitrate figure.
BITRATE_WINDOW = 2.0

_session_ids = itertools.count(1)


class InputState(enum.Enum):
    OFFLINE = "offline"
    LIVE = "live"


@dataclass(eq=False, slots=True)
class PublisherSession:
    """One connected publisher; ``notify`` sends it a JSON event, ``kick`` closes it."""

    kind: str  # the protocol: "ws", "http", "rtmp", "rtmps", "srt" (or "remote": a cluster mirror)
    remote: str
    notify: Callable[[dict[str, object]], None]
    kick: Callable[[str, str], None]
    #: What the protocol adapter knows beyond the fragments (encoder, B-frames…), for the
    #: inputs view; None when it knows nothing more.
    details: Callable[[], dict[str, Any]] | None = None
    id: int = field(default_factory=lambda: next(_session_ids))
    #: When it became the publisher (the service clock's monotonic seconds).
    started: float = 0.0


#: What a program receives from the inputs it may show.
Listener = Callable[["LiveInput", InitSegment | MediaFragment, bytes], None]


class LiveInput:
    def __init__(self, decl: InputDecl, env: LiveEnv, *, mirror: bool = False) -> None:
        self.decl = decl
        #: A copy of an input published elsewhere in the cluster (read from Redis): it
        #: keeps no metrics of its own, the instance the publisher is on does.
        self.mirror = mirror
        #: While True, pushed items fill the preview and its cache but reach no listener
        #: (a mirror catching up on what its stream already held).
        self.muted = False
        #: Producers previewing it on other instances (the cluster counts them).
        self.remote_previews = 0
        self.stall_after = env.settings.stall_after
        self._clock = env.clock
        self.state = InputState.OFFLINE
        self.publisher: PublisherSession | None = None
        self.init: InitSegment | None = None
        self.preview = Fanout(f"input {decl.id}", gop_cache_bytes=env.settings.gop_cache_bytes)
        self.listeners: list[Listener] = []
        #: Called when the publisher goes (so automation can fail over at once).
        self.on_gone: list[Callable[[LiveInput], None]] = []
        #: Since when the input has been up without a stall (None while down).
        self.up_since: float | None = None
        #: Whether a stage program shows this input now (set by the program).
        self.on_air = False
        self._told: tuple[bool, bool] | None = None  # the tally its publisher was last sent
        self.last_fragment_at: float | None = None
        self.last_data_at: float | None = None
        #: Seconds between the last two keyframes on the video track (None until seen twice).
        self.gop_seconds: float | None = None
        self._last_keyframe: float | None = None
        self._timeline = Timeline()
        self._window: deque[tuple[float, int]] = deque()
        self._frames: deque[tuple[float, int, float]] = deque()  # (when, video samples, seconds)
        self._metrics = metrics = env.metrics
        if not mirror:
            metrics.input_up.labels(input=decl.id).set(0)
            metrics.input_bitrate.labels(input=decl.id).set(0)
            metrics.relay_fragments.labels(input=decl.id)
            metrics.publisher_connects.labels(input=decl.id)

    @property
    def id(self) -> str:
        return self.decl.id

    def attach(self, session: PublisherSession, *, takeover: bool = False) -> None:
        """Make ``session`` the publisher, or raise ``live.input_busy``."""
        old = self.publisher
        if old is not None:
            if not takeover:
                raise ForumcastError(
                    "live.input_busy",
                    f"input {self.id!r} already has a publisher (use takeover=1 to replace it)",
                )
            old.kick("live.input_busy", "replaced by a new publisher (takeover)")
        session.started = self._clock.monotonic()
        self.publisher = session
        self.state = InputState.LIVE
        self._timeline.splice()  # the new publisher's clock starts wherever it likes
        if not self.mirror:
            self._metrics.input_up.labels(input=self.id).set(1)
            self._metrics.publisher_connects.labels(input=self.id).inc()
        self._told = None
        self.tally()

    def detach(self, session: PublisherSession) -> None:
        if self.publisher is not session:
            return  # already replaced by a takeover
        self.publisher = None
        self.state = InputState.OFFLINE
        self.up_since = None
        self._window.clear()
        self._frames.clear()
        if not self.mirror:
            self._metrics.input_up.labels(input=self.id).set(0)
            self._metrics.input_bitrate.labels(input=self.id).set(0)
        for callback in self.on_gone:
            callback(self)

    @property
    def placement(self) -> dict[int, int]:
        """How this input moves its publisher's decode times now, per track (what a mirror
        adds to its stream's times): with a program's offsets, a mapping from the shared
        stream to the program that any instance can apply with its own mirror."""
        return self._timeline.offsets

    def is_up(self, now: float | None = None) -> bool:
        """Publishing: a publisher, an init segment, bytes within ``stall_after`` and a
        whole fragment within :data:`MAX_FRAGMENT_GAP`."""
        now = self._clock.monotonic() if now is None else now
        return (
            self.publisher is not None
            and self.init is not None
            and self.last_fragment_at is not None
            and self.last_data_at is not None
            and now - self.last_data_at <= self.stall_after
            and now - self.last_fragment_at <= max(MAX_FRAGMENT_GAP, self.stall_after)
        )

    def received(self, session: PublisherSession, now: float | None = None) -> None:
        """Bytes arrived from ``session`` (called per message or chunk, before parsing)."""
        if self.publisher is session:
            self._alive(self._clock.monotonic() if now is None else now)

    def _alive(self, now: float) -> None:
        if self.up_since is None or self.last_data_at is None or now - self.last_data_at > self.stall_after:
            self.up_since = now  # (back) up after a stall or as a new publisher
        self.last_data_at = now

    def tally(self) -> None:
        """Tell the publisher if it went on or off air, or into or out of a producer's preview."""
        state = (self.on_air, bool(self.preview.viewers) or self.remote_previews > 0)
        if self.publisher is None or state == self._told:
            return
        self._told = state
        self.publisher.notify(
            {"type": "tally", "on_air": state[0], "preview": state[1], "stage": self.decl.stage}
        )

    def push(self, session: PublisherSession, item: InitSegment | MediaFragment) -> None:
        if self.publisher is not session:
            return  # a replaced publisher's last bytes
        if isinstance(item, InitSegment):
            self.init = item
            self._timeline.splice()  # a new init mid-stream: the encoder restarted its clock
            self.preview.set_init(item)
            for listener in () if self.muted else self.listeners:
                listener(self, item, b"")
            return
        assert self.init is not None, "the parser emits an init segment before any fragment"
        now = self._clock.monotonic()
        self._alive(now)
        self.last_fragment_at = now
        placed = self._timeline.place(item, self.init)
        frame = binary_frame(placed.data)
        self.preview.push(placed, now, frame=frame)
        for listener in () if self.muted else self.listeners:
            listener(self, placed, frame)
        self._note_video(placed, now)
        self._window.append((now, len(placed.data)))
        if not self.mirror:
            self._metrics.relay_fragments.labels(input=self.id).inc()

    def _note_video(self, fragment: MediaFragment, now: float) -> None:
        """Count the fragment's video frames (the frame rate) and keyframes (the GOP length)."""
        video = self.init.video if self.init is not None else None
        traf = fragment.track(video.id) if video is not None else None
        if video is None or traf is None:
            return
        if traf.duration > 0:
            frames = self._frames
            frames.append((now, traf.sample_count, traf.duration / video.timescale))
            while frames[0][0] < now - BITRATE_WINDOW:  # only the inputs view reads it: trim here
                frames.popleft()
        if not fragment.keyframe:
            return
        at = traf.base_decode_time / video.timescale
        if self._last_keyframe is not None and at > self._last_keyframe:
            self.gop_seconds = at - self._last_keyframe
        self._last_keyframe = at

    def bitrate(self, now: float | None = None) -> float:
        """Bits per second over the last :data:`BITRATE_WINDOW` seconds."""
        now = self._clock.monotonic() if now is None else now
        while self._window and self._window[0][0] < now - BITRATE_WINDOW:
            self._window.popleft()
        return sum(n for _, n in self._window) * 8 / BITRATE_WINDOW

    def frame_rate(self, now: float | None = None) -> float | None:
        """Video frames per second of media over the last :data:`BITRATE_WINDOW` seconds."""
        now = self._clock.monotonic() if now is None else now
        recent = [f for f in self._frames if f[0] >= now - BITRATE_WINDOW]
        seconds = sum(s for _, _, s in recent)
        return sum(n for _, n, _ in recent) / seconds if seconds > 0 else None

    def fragment_age(self, now: float | None = None) -> float | None:
        if self.last_fragment_at is None:
            return None
        return (self._clock.monotonic() if now is None else now) - self.last_fragment_at
