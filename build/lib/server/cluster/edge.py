"""The edge: every instance reads the program streams (and the input streams it needs) and
plays them to its own viewers.

One read loop per instance, never one per viewer: a single blocking ``XREAD`` over the
program stream of every stage, plus the input streams of the *mirrors* in use here (the
inputs of the stages this instance leads, and inputs a producer previews here). What a
program stream brings goes to the stage's WebSocket viewers (the same bytes every instance
sends) and, through a :class:`~server.cluster.replica.ProgramReplica`, to the stage's
LL-HLS packager, in step with the leader's. What an input stream brings goes into the
input's mirror (:class:`MirrorFeed`), which the stage's program (if led here) and previews
watch as if the publisher were connected here.

A stream first read is caught up from what Redis still holds (the program's init and its
window, an input's last init and GOPs), so a new instance serves LL-HLS and a new leader
has its inputs' GOPs from the start. When Redis does not answer, the loop waits and tries
again: viewers stay connected and see a freeze, and resume where the stream is.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable

from redis.exceptions import RedisError

from server.clock import Clock
from server.cluster.entries import InputEntry, InputKind, ProgramEntry, ProgramKind, entry_time
from server.cluster.plane import Plane, StreamEntries
from server.cluster.replica import NewFragment, NewInit, NewSource, ProgramReplica
from server.errors import ForumcastError, MediaError
from server.live.hub import LiveHub
from server.live.inputs import LiveInput, PublisherSession
from server.media.fmp4 import Fmp4Parser
from server.media.types import InitSegment, MediaFragment
from server.probes import PeakWindow

log = logging.getLogger("forumcast.cluster")

#: Seconds between attempts while Redis does not answer.
RETRY_AFTER = 0.5


def _nothing(*_: object) -> None:
    pass


class MirrorFeed:
    """An input's stream entries, played into its mirror :class:`LiveInput`."""

    def __init__(self, live: LiveInput, *, max_box_size: int) -> None:
        self.live = live
        self._max_box_size = max_box_size
        self._session: PublisherSession | None = None
        self._publisher = ""
        self._parser: Fmp4Parser | None = None

    def apply(self, entry: InputEntry) -> None:
        live = self.live
        if entry.kind is InputKind.GONE:
            if entry.publisher == self._publisher and self._session is not None:
                live.detach(self._session)
                self._session, self._publisher, self._parser = None, "", None
            return
        if entry.publisher != self._publisher or self._session is None:
            self._session = PublisherSession("remote", entry.publisher, _nothing, _nothing)
            live.attach(self._session, takeover=True)
            self._publisher, self._parser = entry.publisher, None
        session = self._session
        try:
            if entry.kind is InputKind.INIT:
                self._parser = Fmp4Parser(max_box_size=self._max_box_size)
                items = self._parser.feed(entry.data)
            elif self._parser is None:
                return  # fragments of a publisher whose init we have not seen
            else:
                items = self._parser.feed(entry.data)
        except MediaError as exc:
            log.warning("input %s: unreadable media in its stream (%s)", live.id, exc)
            self._parser = None
            return
        live.received(session)
        for item in items:
            if isinstance(item, InitSegment | MediaFragment):
                live.push(session, item)

    def catch_up(self, last_init: tuple[str, bytes] | None, entries: Iterable[InputEntry]) -> None:
        """What the stream held when we started reading: into the GOP cache, not to programs."""
        self.live.muted = True
        try:
            if last_init is not None:
                self.apply(InputEntry(InputKind.INIT, *last_init))
            for entry in entries:
                self.apply(entry)
        finally:
            self.live.muted = False


class Edge:
    def __init__(self, plane: Plane, hub: LiveHub, clock: Clock) -> None:
        self._plane = plane
        self._hub = hub
        self._clock = clock
        box = hub.env.settings.max_box_size
        self.replicas = {stage: ProgramReplica(max_box_size=box) for stage in hub.programs}
        self._positions: dict[str, bytes] = {}  # stream -> last entry id read
        self._stage_of = {plane.names.program_stream(stage): stage for stage in hub.programs}
        self.mirrors: dict[str, MirrorFeed] = {}
        self._input_of: dict[str, str] = {}
        #: Per stage: how long program entries waited in Redis before this edge read them.
        self.lags = {stage: PeakWindow() for stage in hub.programs}
        gauge = hub.env.metrics.redis_stream_lag
        for stage, peaks in self.lags.items():
            gauge.labels(stage=stage).set_function(functools.partial(self._peak, peaks))

    # -- catching up ------------------------------------------------------------------------

    async def start(self) -> None:
        """Catch up on every stage's program (its init and the window Redis holds)."""
        for stage in self._hub.programs:
            init, entries = await self._plane.program_history(stage)
            if init:
                self._program(stage, ProgramEntry(ProgramKind.INIT, 0, init))
            self._program_entries(stage, entries)
            stream = self._plane.names.program_stream(stage)
            self._positions[stream] = entries[-1][0] if entries else b"0-0"

    async def watch_inputs(self, input_ids: Iterable[str]) -> None:
        """Start reading these inputs into their mirrors (caught up first)."""
        names = self._plane.names
        for input_id in input_ids:
            if input_id in self.mirrors:
                continue
            last_init, raw = await self._plane.input_history(input_id)
            feed = MirrorFeed(self._hub.sources[input_id], max_box_size=self._hub.env.settings.max_box_size)
            feed.catch_up(last_init, _input_entries(input_id, raw))
            stream = names.input_stream(input_id)
            self.mirrors[input_id] = feed
            self._input_of[stream] = input_id
            self._positions[stream] = raw[-1][0] if raw else b"0-0"

    def unwatch_inputs(self, input_ids: Iterable[str]) -> None:
        for input_id in input_ids:
            feed = self.mirrors.pop(input_id, None)
            if feed is None:
                continue
            stream = self._plane.names.input_stream(input_id)
            self._input_of.pop(stream, None)
            self._positions.pop(stream, None)

    # -- the loop ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Read and play, forever (a supervised task)."""
        failing = False
        while True:
            try:
                replies = await self._plane.read(dict(self._positions))
            except (RedisError, OSError) as exc:
                if not failing:
                    log.warning("edge: cannot read from Redis (%s); viewers wait", exc)
                failing = True
                await self._clock.sleep(RETRY_AFTER)
                continue
            if failing:
                log.info("edge: reading from Redis again")
                failing = False
            for stream, entries in replies:
                if stream not in self._positions or not entries:
                    continue  # unwatched meanwhile
                self._positions[stream] = entries[-1][0]
                if stream in self._stage_of:
                    stage = self._stage_of[stream]
                    self._note_lag(stage, entries[0][0])
                    self._program_entries(stage, entries)
                elif stream in self._input_of:
                    feed = self.mirrors[self._input_of[stream]]
                    for entry in _input_entries(self._input_of[stream], entries):
                        feed.apply(entry)

    def _peak(self, peaks: PeakWindow) -> float:
        return peaks.peak(self._clock.monotonic())

    def _note_lag(self, stage: str, oldest: bytes) -> None:
        """The oldest entry of a read waited in Redis from its ``XADD`` until now: how far
        behind the newest entry this reader was (Redis's clock against ours: on different
        hosts, their NTP offset adds to it)."""
        try:
            waited = self._clock.wall() - entry_time(oldest)
        except ForumcastError:
            return
        self.lags[stage].add(self._clock.monotonic(), max(0.0, waited))

    def _program_entries(self, stage: str, entries: StreamEntries) -> None:
        for entry_id, fields in entries:
            try:
                self._program(stage, ProgramEntry.parse(fields))
            except ForumcastError as exc:
                log.warning("stage %s: skipped program entry %s: %s", stage, entry_id.decode(), exc.message)

    def _program(self, stage: str, entry: ProgramEntry) -> None:
        change = self.replicas[stage].apply(entry)
        program, hls = self._hub.programs[stage], self._hub.hls[stage]
        if isinstance(change, NewInit):
            program.fanout.set_init(change.init)
            hls.packager.set_init(change.init)
        elif isinstance(change, NewSource):
            hls.packager.discontinuity()
        elif isinstance(change, NewFragment):
            program.fanout.push(change.fragment, self._hub.env.clock.monotonic())
            step = change.hls
            if step is not None:
                part = hls.add(change.fragment, wall_time=step.wall, restart=step.restart)
                self.replicas[stage].check(step, part)


def _input_entries(input_id: str, raw: StreamEntries) -> list[InputEntry]:
    entries = []
    for entry_id, fields in raw:
        try:
            entries.append(InputEntry.parse(fields))
        except ForumcastError as exc:
            log.warning("input %s: skipped stream entry %s: %s", input_id, entry_id.decode(), exc.message)
    return entries
