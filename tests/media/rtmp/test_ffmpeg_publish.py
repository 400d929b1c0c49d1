"""A real publisher: ffmpeg publishes to our session over loopback (tests/media/rtmp/capture.py);
the session reaches publishing with the right names and yields the sequence headers; and
the bytes ffmpeg sent, split anywhere or mutated, give the same events or only our errors."""

from __future__ import annotations

import contextlib
import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.errors import RtmpError
from server.media.rtmp.events import (
    Closed,
    Connected,
    Event,
    MediaKind,
    MediaMessage,
    PublishRequested,
    Unpublished,
)
from server.media.rtmp.session import ServerSession
from tests.media.rtmp.capture import ffmpeg_publish

FUZZ = settings(max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def replay(data: bytes, cuts: list[int] | None = None) -> list[Event]:
    session = ServerSession()
    events: list[Event] = []
    edges = [0, *sorted(cuts or []), len(data)]
    for start, end in itertools.pairwise(edges):
        todo = session.receive_data(data[start:end])
        while todo:
            event = todo.pop(0)
            events.append(event)
            if isinstance(event, PublishRequested):
                todo = session.accept_publish() + todo
    return events + session.receive_eof()


def test_ffmpeg_publishes_h264_and_aac() -> None:
    capture = ffmpeg_publish()
    assert capture.error is None, capture.error
    assert capture.returncode == 0, capture.stderr
    events = capture.events
    assert isinstance(events[0], Connected) and events[0].app == "live"
    assert events[0].tc_url.endswith("/live")
    assert events[1] == PublishRequested("stream-key", "live")
    media = [e for e in events if isinstance(e, MediaMessage)]
    video = [e for e in media if e.kind is MediaKind.VIDEO]
    audio = [e for e in media if e.kind is MediaKind.AUDIO]
    data = [e for e in media if e.kind is MediaKind.DATA]
    assert video[0].payload[0] & 0x0F == 7 and video[0].payload[1] == 0  # AVC sequence header
    assert video[0].payload[0] >> 4 == 1  # a keyframe
    assert audio[0].payload[0] >> 4 == 10 and audio[0].payload[1] == 0  # AAC sequence header
    assert len(video) >= 45 and len(audio) >= 80  # 2 s at 25 fps; AAC frames of 1024 samples
    assert data and data[0].values[0] == "onMetaData" and data[0].values[1]["width"] == 320.0
    timestamps = [e.timestamp for e in video[1:]]
    assert timestamps == sorted(timestamps) and 1800 <= timestamps[-1] <= 2100
    assert isinstance(events[-1], Closed)
    assert Unpublished("stream-key") in events or events[-1] == Closed(publishing=True)


def test_replaying_the_capture_gives_the_same_events() -> None:
    capture = ffmpeg_publish()
    assert replay(capture.received) == capture.events


@FUZZ
@given(cuts=st.lists(st.integers(0, 10**9), max_size=40))
def test_any_split_of_the_capture_gives_the_same_events(cuts: list[int]) -> None:
    capture = ffmpeg_publish()
    size = len(capture.received)
    assert replay(capture.received, [cut % size for cut in cuts]) == capture.events


@FUZZ
@given(at=st.lists(st.integers(0), min_size=1, max_size=6), byte=st.integers(0, 255), early=st.booleans())
def test_mutations_of_the_capture_raise_only_our_errors(at: list[int], byte: int, early: bool) -> None:
    data = bytearray(ffmpeg_publish().received)
    span = 8000 if early else len(data)  # early: the handshake and the commands
    for position in at:
        data[position % span] = byte
    with contextlib.suppress(RtmpError):  # anything else escapes and fails
        replay(bytes(data))
