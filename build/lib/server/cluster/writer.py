"""What a stage's leader writes: its program's outputs as fenced program stream entries.

A :class:`StageWriter` turns the program's outputs into :class:`~server.cluster.entries.
ProgramEntry` values (each fragment stamped by the leader's *shadow* LL-HLS packager) and
appends them in order with the fenced ``WRITE`` script; once the lease is someone else's,
nothing more is written and :attr:`StageWriter.lost` is set.

Each fragment of an input also carries how to continue that input exactly: the offsets from
the input's *stream* times to the program (:func:`portable`) and the stream publisher they
hold for. An instance's mirror of an input moves the stream's times by its own
:attr:`~server.live.inputs.LiveInput.placement`, so the writer adds it and a next leader
takes its own off (:func:`continuation`). Both are pure.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from redis.exceptions import RedisError

from server.clock import Clock
from server.cluster.entries import ProgramEntry, ProgramKind
from server.cluster.plane import Plane
from server.cluster.replica import hls_stamp
from server.live.program import Program
from server.media.hls import Packager
from server.media.switcher import Emit, Output, Reinit, Switched

log = logging.getLogger("forumcast.cluster")

#: Seconds a writer waits before trying Redis again.
RETRY_AFTER = 0.1

Offsets = dict[int, int]


def portable(offsets: Offsets | None, placement: Offsets, publisher: str | None) -> Offsets | None:
    """A program fragment's offsets from its input's stream: ``offsets`` (from this instance's
    mirror, which adds ``placement`` to the stream's times) plus ``placement``; None when the
    mirror has no publisher or has not placed the same tracks."""
    if not offsets or publisher is None or set(placement) != set(offsets):
        return None
    return {track: offset + placement[track] for track, offset in offsets.items()}


def continuation(
    stream_offsets: Offsets | None, publisher: str, placement: Offsets, mirror_publisher: str
) -> Offsets | None:
    """The offsets that continue an input through this instance's mirror: the last leader's
    ``stream_offsets`` minus this mirror's ``placement``, if the mirror plays the same stream
    publisher (another publisher has another clock) and has placed the same tracks; else None
    (the input's next keyframe decides)."""
    if not stream_offsets or mirror_publisher != publisher or set(placement) != set(stream_offsets):
        return None
    return {track: offset - placement[track] for track, offset in stream_offsets.items()}


class StageWriter:
    """The program of one stage led here, appended to its stream in order, fenced.

    ``clock`` times the retries (real time, as the leases); ``wall`` dates the fragments
    (the service clock, as a single instance's LL-HLS)."""

    def __init__(
        self,
        plane: Plane,
        program: Program,
        epoch: int,
        shadow: Packager,
        clock: Clock,
        *,
        wall: Callable[[], float],
        maxlen: int,
    ):
        self.plane = plane
        self.program = program
        self.epoch = epoch
        self.shadow = shadow
        self._clock = clock
        self._wall = wall
        self._maxlen = maxlen
        self._pending: list[ProgramEntry] = []
        self._state: dict[str, Any] | None = None
        self._control: dict[str, Any] | None = None
        self._wake = asyncio.Event()
        #: Set when a write found the lease gone.
        self.lost = asyncio.Event()

    def sink(self, outputs: list[Output]) -> None:
        """The program's outputs, as stream entries (stamped by the shadow packager)."""
        for output in outputs:
            if isinstance(output, Reinit):
                self.shadow.set_init(output.init)
                self._pending.append(ProgramEntry(ProgramKind.INIT, self.epoch, output.init.data))
            elif isinstance(output, Switched):
                self.shadow.discontinuity()
                self._pending.append(
                    ProgramEntry(
                        ProgramKind.SWITCH,
                        self.epoch,
                        source=output.source,
                        previous=output.previous or "",
                        reinit=output.reinit,
                    )
                )
            elif isinstance(output, Emit):
                self._pending.append(self._fragment(output))
        self._wake.set()

    def _fragment(self, output: Emit) -> ProgramEntry:
        wall = self._wall()
        part = self.shadow.add(output.fragment, wall_time=wall)
        stamp = hls_stamp(part, self.shadow.start_of(part))
        mirror = self.program.inputs.get(output.source)
        publisher = None if mirror is None or mirror.publisher is None else mirror.publisher.remote
        offsets = None if mirror is None else portable(output.offsets, mirror.placement, publisher)
        return ProgramEntry(
            ProgramKind.FRAGMENT,
            self.epoch,
            output.fragment.data,
            wall=wall,
            hls=stamp,
            source=output.source if offsets else "",
            offsets=offsets,
            publisher=publisher if offsets and publisher else "",
        )

    def announce(self, state: dict[str, Any], control: dict[str, Any]) -> None:
        self._state, self._control = state, control
        self._wake.set()

    async def run(self) -> None:
        stage = self.program.stage.id
        while True:
            await self._wake.wait()
            self._wake.clear()
            entries, self._pending = self._pending, []
            state, control = self._state, self._control
            self._state = self._control = None
            try:
                written = await self.plane.write_program(
                    stage, self.epoch, entries, maxlen=self._maxlen, state=state, control=control
                )
            except (RedisError, OSError) as exc:
                log.warning("stage %s: could not write the program (%s); retrying", stage, exc)
                self._pending[:0] = entries
                self._state = self._state or state
                self._control = self._control or control
                self._wake.set()
                await self._clock.sleep(RETRY_AFTER)
                continue
            if not written:
                log.warning(
                    "stage %s: the lease (epoch %d) is someone else's: nothing written", stage, self.epoch
                )
                self.lost.set()
                return
