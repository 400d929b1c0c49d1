"""What a publisher sends: a file (as fMP4 fragments, optionally looped) or the live test pattern.

A file that already is fragmented MP4 is split with :class:`~server.media.fmp4.Fmp4Parser`;
any other file PyAV can read is remuxed first — stream copy only (H.264 video, AAC or Opus
audio), into ``frag_keyframe+empty_moov+default_base_moof`` fMP4 in memory, cut at every
keyframe and every ``fragment_ms``.

The timing logic is pure: :func:`media_start` says where a fragment sits on the media
timeline, :class:`Pacer` turns that into wall-clock send times, :func:`looped`
splices pass after pass into one continuous stream, and
:func:`~server.media.rewrite.stamp_producer_time` gives a file's fragment the ``prft`` of the
moment it is sent
(a file's own ``prft`` says when it was encoded, perhaps months ago, which would make every
viewer's latency figure meaningless). The two ``*_items`` async generators only sleep until
the next send time and hand out the items.
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import AsyncGenerator, Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from clients.connection import SourceError
from server.encoding.fmp4_writer import ByteSink, open_fmp4
from server.encoding.testpattern import PatternEncoder, PatternSettings
from server.media.fmp4 import Fmp4Parser, split_clip
from server.media.rewrite import stamp_producer_time
from server.media.timeline import loop_fragments
from server.media.types import InitSegment, MediaFragment

Item = InitSegment | MediaFragment

#: Codecs a browser plays from fMP4, so the only ones worth copying (the server never transcodes).
COPYABLE_VIDEO = frozenset({"h264"})
COPYABLE_AUDIO = frozenset({"aac", "opus"})
MAX_BOX_SIZE = 64 * 2**20


@dataclass(frozen=True, slots=True)
class Clip:
    init: InitSegment
    fragments: tuple[MediaFragment, ...]

    def timescale(self, track_id: int) -> int:
        return timescale(self.init, track_id)


# --- files --------------------------------------------------------------------------------------


def top_level_boxes(path: Path) -> Iterator[tuple[str, int, int]]:
    """(type, offset, size) of each top-level box, reading only headers (mdat is skipped)."""
    with path.open("rb") as file:
        offset = 0
        while header := file.read(8):
            if len(header) < 8:
                return
            size, kind = struct.unpack(">I4s", header)
            if size == 1:
                size = struct.unpack(">Q", file.read(8))[0]
            elif size == 0:
                size = path.stat().st_size - offset
            if size < 8:
                return
            yield kind.decode("latin-1"), offset, size
            offset += size
            file.seek(offset)


def is_fragmented(path: Path) -> bool:
    """True when the file's ``moov`` announces fragments (has an ``mvex``)."""
    for kind, offset, size in top_level_boxes(path):
        if kind == "moov":
            with path.open("rb") as file:
                file.seek(offset)
                return b"mvex" in file.read(size)
    return False


def remux(path: Path, *, fragment_ms: int = 200) -> bytes:
    """Stream-copy the first video and first audio stream of ``path`` into fMP4 bytes."""
    sink = ByteSink()
    try:
        source = av.open(str(path))
    except av.FFmpegError as exc:
        raise SourceError(f"{path}: cannot read it ({exc})") from exc
    with source:
        video = next(iter(source.streams.video), None)
        audio = next(iter(source.streams.audio), None)
        if video is not None and video.codec_context.name not in COPYABLE_VIDEO:
            raise SourceError(f"{path}: video is {video.codec_context.name}; only H.264 is published as-is")
        if audio is not None and audio.codec_context.name not in COPYABLE_AUDIO:
            raise SourceError(
                f"{path}: audio is {audio.codec_context.name}; only AAC or Opus is published as-is"
            )
        chosen = [s for s in (video, audio) if s is not None]
        if not chosen:
            raise SourceError(f"{path}: no audio or video stream")
        with open_fmp4(sink, fragment_ms=fragment_ms) as output:
            copies = {s.index: output.add_stream_from_template(s) for s in chosen}
            started = video is None
            for packet in source.demux(chosen):
                if packet.dts is None:
                    continue  # the demuxer's end-of-stream marker, not media
                if not started:
                    # A fragment that does not start at a keyframe cannot be decoded alone.
                    if packet.stream is not video or not packet.is_keyframe:
                        continue
                    started = True
                packet.stream = copies[packet.stream.index]
                output.mux(packet)
    return sink.take()


def split(data: bytes, *, max_box_size: int = MAX_BOX_SIZE) -> Clip:
    """fMP4 bytes as their init segment and fragments."""
    if not data:  # anything else that is not fMP4 is refused by the parser, naming the problem
        raise SourceError("the stream does not start with an init segment (ftyp + moov)")
    init, fragments = split_clip(data, max_box_size=max_box_size)
    if not fragments:
        raise SourceError("the stream has no media fragments")
    return Clip(init, tuple(fragments))


def load_clip(path: Path, *, fragment_ms: int = 200) -> Clip:
    """A file as a clip: split as-is when fragmented, remuxed in memory otherwise."""
    if not path.is_file():
        raise SourceError(f"{path}: no such file")
    data = path.read_bytes() if is_fragmented(path) else remux(path, fragment_ms=fragment_ms)
    return split(data)


# --- timing -------------------------------------------------------------------------------------


def media_start(fragment: MediaFragment, init: InitSegment) -> Fraction:
    """Where the fragment starts on the media timeline, in seconds: its earliest track."""
    starts = [Fraction(traf.base_decode_time, timescale(init, traf.track_id)) for traf in fragment.tracks]
    return min(starts, default=Fraction(0))


def timescale(init: InitSegment, track_id: int) -> int:
    track = init.track(track_id)
    return track.timescale if track is not None and track.timescale > 0 else 1


class Pacer:
    """Wall-clock send times for media times: the first item goes at once, each later one when
    as much wall time has passed as media time.

    A fragment is sent when its *start* is due rather than its end — the file is already
    complete, and sending early gives the server (and its viewers) a whole fragment of slack.
    When the sender falls more than ``max_late`` behind (a suspended laptop, a long stall), the
    schedule is re-anchored instead of bursting the backlog at the server.
    """

    def __init__(self, *, max_late: float = 1.0) -> None:
        self.max_late = max_late
        self._origin: tuple[float, Fraction] | None = None  # (wall time, media time)

    def due(self, media_time: Fraction, now: float) -> float:
        if self._origin is None:
            self._origin = (now, media_time)
            return now
        wall, media = self._origin
        due = wall + float(media_time - media)
        if now - due > self.max_late:
            self._origin = (now - float(media_time - media), media)
            return now
        return due


def send_times(fragments: Iterable[MediaFragment], init: InitSegment, *, start: float) -> list[float]:
    """The send schedule of ``fragments`` when nothing runs late: the first at ``start``."""
    starts = [media_start(fragment, init) for fragment in fragments]
    return [start + float(media - starts[0]) for media in starts]


def looped(clip: Clip, passes: int | None = None) -> Iterator[MediaFragment]:
    """``passes`` passes of the clip (``None``: forever) as one continuous stream."""
    return loop_fragments(clip.init, clip.fragments, passes)


# --- paced async sources ------------------------------------------------------------------------


async def file_items(
    clip: Clip,
    *,
    loop: bool = False,
    clock: Callable[[], float] = time.monotonic,
    wall_clock: Callable[[], float] = time.time,
) -> AsyncGenerator[Item, None]:
    """The clip's init segment, then its fragments at real time (forever with ``loop``),
    each stamped with the wall-clock time it is handed out."""
    yield clip.init
    pacer = Pacer()
    for fragment in looped(clip, None if loop else 1):
        due = pacer.due(media_start(fragment, clip.init), clock())
        await asyncio.sleep(max(0.0, due - clock()))
        yield stamp_producer_time(fragment, clip.init, wall_clock())


async def pattern_items(
    settings: PatternSettings, *, clock: Callable[[], float] = time.time
) -> AsyncGenerator[Item, None]:
    """The live test pattern, encoded frame by frame at the wall clock's pace.

    PyAV runs in one worker thread (never on the event loop, and never two calls at once on
    one encoder): the final close is queued behind any encode still running when the
    consumer stops, so nothing touches the encoder after it is closed.
    """
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="testpattern")
    loop = asyncio.get_running_loop()
    encoder = PatternEncoder(settings, start=clock())
    parser = Fmp4Parser(max_box_size=MAX_BOX_SIZE)
    try:
        while True:
            await asyncio.sleep(max(0.0, encoder.next_frame_time - clock()))
            data = await loop.run_in_executor(executor, encoder.encode_until, clock())
            for item in parser.feed(data):
                yield item
    finally:
        executor.submit(encoder.close)
        executor.shutdown(wait=False)
