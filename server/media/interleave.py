"""FLV messages put back in time order when one track runs ahead of the other (pure).

The FLV remux (:mod:`server.media.flv_remux`) cuts a fragment at a video frame and puts in
it the audio of the same span, so it wants audio and video roughly interleaved by time, as
RTMP encoders send them. MPEG-TS muxers do not promise that: ffmpeg lets audio trail video
by up to its ``max_delay`` (0.7 s), hardware encoders by their own buffering. Fed as they
come, late audio would land in later fragments than its video, and the first fragment could
start its audio before anything placed.

An :class:`Interleaver` holds each track's messages in a queue and releases the earliest
head while every expected track has one (video first at equal times, sequence starts before
frames): the output is in time order at the cost of the skew the sender's muxer had. A track
that falls silent (a muted source, a stream the program lists but never sends) holds the
other back at most ``max_skew_ms``; after that the waiting messages go out alone.
"""

from __future__ import annotations

from collections import deque

from server.media.flv import FlvTag, TagKind

#: Default for ``max_skew_ms``: the longest one track is held waiting for the other.
DEFAULT_MAX_SKEW_MS = 2000
_ORDER = {TagKind.VIDEO: 0, TagKind.AUDIO: 1, TagKind.SCRIPT: 2}


class Interleaver:
    def __init__(self, *, max_skew_ms: int = DEFAULT_MAX_SKEW_MS) -> None:
        self.max_skew_ms = max_skew_ms
        self._queues: dict[TagKind, deque[FlvTag]] = {TagKind.VIDEO: deque(), TagKind.AUDIO: deque()}
        self._expected: frozenset[TagKind] = frozenset()
        self._newest = 0  # the latest timestamp pushed, of any track

    def expect(self, kinds: frozenset[TagKind]) -> None:
        """The tracks the stream has (from its program table); absent ones are not waited for."""
        self._expected = frozenset(k for k in kinds if k in self._queues)

    def push(self, tag: FlvTag) -> list[FlvTag]:
        """One message; returns those now known to be next in time order."""
        queue = self._queues.get(tag.kind)
        if queue is None:  # script data: it orders nothing
            return [tag]
        queue.append(tag)
        self._newest = max(self._newest, tag.timestamp)
        out: list[FlvTag] = []
        while True:
            heads = [q[0] for q in self._queues.values() if q]
            if not heads:
                return out
            waiting = [k for k in self._expected if not self._queues[k]]
            earliest = min(heads, key=_position)
            if waiting and self._newest - earliest.timestamp < self.max_skew_ms:
                return out
            out.append(self._queues[earliest.kind].popleft())

    def end(self) -> list[FlvTag]:
        """The stream ended: everything held, in time order."""
        held = sorted((t for q in self._queues.values() for t in q), key=_position)
        for queue in self._queues.values():
            queue.clear()
        return held


def _position(tag: FlvTag) -> tuple[int, int, int]:
    sequence_start = _is_sequence_start(tag)
    return (tag.timestamp, 0 if sequence_start else 1, _ORDER[tag.kind])


def _is_sequence_start(tag: FlvTag) -> bool:
    """A configuration message (AVC/AAC sequence header, Enhanced RTMP SequenceStart)."""
    payload = tag.payload
    if tag.kind is TagKind.AUDIO:
        return len(payload) > 1 and payload[0] >> 4 == 10 and payload[1] == 0
    if len(payload) < 2:
        return False
    if payload[0] & 0x80:  # Enhanced RTMP: the packet type is the low nibble
        return payload[0] & 0x0F == 0
    return payload[1] == 0
