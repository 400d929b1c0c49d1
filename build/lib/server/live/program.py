"""A stage's program: what the stage's audience watches, and the adapter around its switcher.

A :class:`Program` listens to every input of its stage and to its slate, feeds what they
produce into its :class:`~server.media.switcher.Switcher`, and writes what comes out to the
stage's viewers through a :class:`~server.live.fanout.Fanout`. Which source it wants is
decided by its :class:`~server.live.automation.Automation` (the schedule, failover,
failback) or by a producer's take; the hub calls :meth:`Program.supervise` whenever that
may have changed. Every switch is counted and logged, tallies its inputs, and tells the
hub (which sends viewers a ``now`` event).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from server.errors import ForumcastError
from server.live.automation import SLATE, Automation, Choice, Health, Reason
from server.live.fanout import Fanout, Viewer
from server.live.inputs import LiveInput
from server.live.settings import LiveEnv
from server.live.slate import SlateLibrary, SlatePlayer
from server.live.slate_card import SlateCard
from server.live.slate_clip import SlateFormat
from server.media.switcher import Cut, Emit, Output, Reinit, Switched, Switcher
from server.media.types import InitSegment, MediaFragment, TrackKind
from server.schedule.model import Session, Stage

log = logging.getLogger("forumcast.program")


class Program:
    def __init__(
        self,
        stage: Stage,
        inputs: Mapping[str, LiveInput],
        env: LiveEnv,
        slates: SlateLibrary,
        *,
        card: Callable[[], SlateCard],
        on_switch: Callable[[Program], None] = lambda _: None,
    ) -> None:
        self.stage = stage
        self.inputs = dict(inputs)
        self.switcher = Switcher()
        settings, metrics = env.settings, env.metrics
        self.automation = Automation(
            default_input=stage.inputs[0].id if stage.inputs else None, failback_after=settings.failback_after
        )
        self.fanout = Fanout(
            f"stage {stage.id}",
            gop_cache_bytes=settings.gop_cache_bytes,
            on_dropped=metrics.relay_dropped.labels(stage=stage.id).inc,
        )
        self.announced_viewers = 0
        #: Also told every item the viewers get (the LL-HLS packager listens here).
        self.outputs: list[Callable[[Output], None]] = []
        #: Why the source on air is on air, and since when (the service clock).
        self.reason = Reason.SCHEDULE
        self.since: datetime | None = None
        #: The session automation serves now (None between sessions).
        self.session: Session | None = None
        self._pending_reason: Reason | None = None
        self._metrics = metrics
        self._clock = env.clock
        self._on_switch = on_switch
        self._slate_size = settings.slate_size
        self._card = card
        #: Where the program's outputs go instead of this instance's viewers: set by the
        #: cluster (the leader writes them to Redis, whence every instance's edge delivers).
        self.sink: Callable[[list[Output]], None] | None = None
        self.slate = SlatePlayer(stage.id, slates, env.clock, self)
        for live in self.inputs.values():
            live.listeners.append(self._on_item)
        for source in (SLATE, *self.inputs):
            metrics.program_source.labels(stage=stage.id, source=source).set(0)

    # -- what is on -------------------------------------------------------------------------

    @property
    def source(self) -> str | None:
        """The source on air (an input id or :data:`SLATE`), None before the first switch."""
        return self.switcher.current

    @property
    def pending(self) -> str | None:
        return self.switcher.pending

    @property
    def viewer_count(self) -> int:
        return len(self.fanout.viewers)

    def state_json(self) -> dict[str, Any]:
        pending = self.switcher.pending
        return {
            "source": self.source,
            "slate": self.source in (SLATE, None),
            "mode": self.automation.mode.value,
            "reason": self.reason.value,
            "since": self.since.isoformat() if self.since is not None else None,
            "pending": None
            if pending is None
            else {"source": pending, "reason": (self._pending_reason or Reason.SCHEDULE).value},
            "session": self.session.id if self.session is not None else None,
            "viewers": self.viewer_count,
        }

    def slate_format(self) -> SlateFormat:
        """The slate's encoding: the configured size, and audio laid out like the program's
        (AAC or Opus, its channels and rate) so that a cut to the slate keeps the audio
        decoder where the codec allows; anything the slate encoder cannot match gets its
        default (48 kHz stereo AAC)."""
        width, height = self._slate_size
        init = self.switcher.init
        audio = next((t for t in init.tracks if t.kind is TrackKind.AUDIO), None) if init else None
        channels = min(max(audio.channels, 1), 2) if audio is not None else 2
        try:
            if init is not None and audio is None:
                return SlateFormat(width=width, height=height, audio="none")
            if audio is not None and audio.codec == "opus":
                return SlateFormat(width=width, height=height, audio="opus", channels=channels)
            if audio is not None and audio.codec.startswith("mp4a.40"):
                rate = audio.sample_rate or 48_000
                return SlateFormat(width=width, height=height, sample_rate=rate, channels=channels)
        except ValueError:
            pass  # e.g. 44.1 kHz: no loop length aligns audio and video frames
        return SlateFormat(width=width, height=height)

    # -- decisions --------------------------------------------------------------------------

    def supervise(self, session: Session | None, now: float | None = None) -> None:
        """Let automation look at the session and the inputs' health, and act on its choice."""
        self.session = session
        now = self._clock.monotonic() if now is None else now
        health = {
            id_: Health(live.is_up(now), 0.0 if live.up_since is None else now - live.up_since)
            for id_, live in self.inputs.items()
        }
        choice = self.automation.decide(session, health, self.switcher.pending or self.switcher.current)
        if choice is not None:
            self._select(choice, Cut.KEYFRAME)

    def take(self, source: str, *, cut: Cut = Cut.KEYFRAME) -> None:
        """A producer's take of ``source``: one of the stage's inputs that is up, or the slate.

        Refused, with the program left as it was: ``live.unknown_input`` for anything else,
        ``program.input_down`` for an input that is not publishing now.
        """
        if source != SLATE:
            live = self.inputs.get(source)
            if live is None:
                raise ForumcastError(
                    "live.unknown_input",
                    f"stage {self.stage.id!r} has no input {source!r} (nor is it 'slate')",
                )
            if not live.is_up():
                raise ForumcastError(
                    "program.input_down",
                    f"input {source!r} is not publishing"
                    + ("" if live.publisher is None else f" (no fragment for {live.stall_after:g} s)"),
                )
        self._select(self.automation.take(source), cut)
        log.info("stage %s: producer took %s (%s cut)", self.stage.id, source, cut.value)

    def resume(self, session: Session | None) -> None:
        """Back to automation: whatever the schedule wants now."""
        self.automation.resume()
        if self.switcher.pending is not None:
            self._pending_reason = Reason.SCHEDULE  # whatever is pending, the schedule wants now
        self.supervise(session)
        log.info("stage %s: producer returned to automation", self.stage.id)
        if self.switcher.pending is None and self.reason is Reason.MANUAL:
            # The schedule wants what the producer had put on: it stays, now by schedule.
            self.reason = Reason.SCHEDULE
            self._on_switch(self)

    def _select(self, choice: Choice, cut: Cut) -> None:
        source = choice.source
        log.info("stage %s: %s wanted (%s)", self.stage.id, source, choice.reason.value)
        self._pending_reason = choice.reason
        if source == SLATE:
            self.slate.start()  # its first fragment is a keyframe: the switch follows at once
        if choice.reason is Reason.FAILOVER:
            cut = Cut.CACHED  # away from a dead input: no keyframe wait, its last GOP at once
        cached: list[MediaFragment] = []
        if cut is Cut.CACHED and source in self.inputs:
            cached = [fragment for fragment, _ in self.inputs[source].preview.cache]
        self._apply(self.switcher.request(source, cut=cut, cached=cached))
        if SLATE not in (self.switcher.current, self.switcher.pending):
            self.slate.stop()
        if (
            choice.reason is Reason.MANUAL
            and source == self.switcher.current
            and self.reason is not choice.reason
        ):
            self.reason = choice.reason  # a take of what is on air: it stays, now by the producer
            self._pending_reason = None
            self._on_switch(self)

    # -- media ------------------------------------------------------------------------------

    def _on_item(self, live: LiveInput, item: InitSegment | MediaFragment, frame: bytes) -> None:
        if isinstance(item, InitSegment):
            self._apply(self.switcher.source_init(live.id, item))
            return
        if live.id not in (self.switcher.current, self.switcher.pending):
            # Maybe automation wants it now (it just came up): decide before this fragment
            # passes, so an input the schedule waits for goes on air from its first keyframe.
            self.supervise(self.session)
        self._apply(self.switcher.feed(live.id, item))

    def catch_up(self, source: str) -> None:
        """Feed ``source``'s cached fragments (its GOP so far) to the switcher again: after a
        :meth:`~server.media.switcher.Switcher.resume` that continues it, the ones the last
        leader had not sent go out now, the others are skipped."""
        for fragment, _ in list(self.inputs[source].preview.cache):
            self._apply(self.switcher.feed(source, fragment))

    def slate_card(self) -> SlateCard:
        return self._card()

    def slate_failed(self) -> None:
        self._metrics.task_failures.labels(task=f"slate-{self.stage.id}").inc()

    def on_slate(self, item: InitSegment | MediaFragment) -> None:
        if isinstance(item, InitSegment):
            self._apply(self.switcher.source_init(SLATE, item))
        else:
            self._apply(self.switcher.feed(SLATE, item))

    def input_gone(self, live: LiveInput) -> None:
        self.switcher.forget(live.id)

    def _apply(self, outputs: list[Output]) -> None:
        if self.sink is not None:
            for output in outputs:
                if isinstance(output, Switched):
                    self._switched(output)
            if outputs:
                self.sink(outputs)
            return
        self.deliver(outputs)

    def deliver(self, outputs: list[Output]) -> None:
        """Send ``outputs`` to this instance's viewers (WebSocket and LL-HLS)."""
        now = self._clock.monotonic()
        for output in outputs:
            if isinstance(output, Reinit):
                self.fanout.set_init(output.init)
            elif isinstance(output, Emit):
                self.fanout.push(output.fragment, now)
            elif isinstance(output, Switched) and self.sink is None:
                self._switched(output)
            for listener in self.outputs:
                listener(output)

    def _switched(self, switched: Switched) -> None:
        reason = self._pending_reason or Reason.SCHEDULE
        self._pending_reason = None
        self.reason = reason
        self.since = self._clock.now()
        stage = self.stage.id
        self._metrics.program_switches.labels(stage=stage, reason=reason.value).inc()
        if switched.previous is not None:
            self._metrics.program_source.labels(stage=stage, source=switched.previous).set(0)
        self._metrics.program_source.labels(stage=stage, source=switched.source).set(1)
        log.info(
            "stage %s: program %s -> %s (%s%s, %s)",
            stage,
            switched.previous or "nothing",
            switched.source,
            reason.value,
            ", re-init" if switched.reinit else "",
            self.automation.mode.value,
        )
        for id_, live in self.inputs.items():
            live.on_air = id_ == switched.source
            live.tally()
        if switched.source != SLATE:
            self.slate.stop()
        # A failover to the slate must not wait for an encode: have the slate for this
        # program's audio layout ready before it is needed.
        self.slate.prefetch()
        self._on_switch(self)

    # -- viewers ----------------------------------------------------------------------------

    def join(self, viewer: Viewer) -> None:
        self.fanout.join(viewer)
        self._count()

    def leave(self, viewer: Viewer) -> None:
        self.fanout.leave(viewer)
        self._count()

    def _count(self) -> None:
        self._metrics.viewers.labels(stage=self.stage.id, protocol="ws").set(self.viewer_count)
