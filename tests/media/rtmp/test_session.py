"""The publisher session (server/media/rtmp/session.py): the replies clients wait for, the
events, acceptance and refusal, pings and acknowledgements, errors; any split; mutations."""

from __future__ import annotations

import contextlib
import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.errors import RtmpError
from server.media.rtmp import amf0
from server.media.rtmp import messages as m
from server.media.rtmp.chunks import ChunkReader
from server.media.rtmp.events import (
    Closed,
    Connected,
    Event,
    MediaKind,
    MediaMessage,
    PublishRequested,
    Unpublished,
)
from server.media.rtmp.session import ServerSession, State
from tests.media.rtmp.client import (
    AAC_HEADER,
    AVC_HEADER,
    Client,
    commands,
    publisher_stream,
    server_messages,
)

FUZZ = settings(max_examples=100, deadline=None, database=None)


def run(session: ServerSession, data: bytes, *, accept: bool = True) -> list[Event]:
    events, todo = [], session.receive_data(data)
    while todo:  # accepting may release held messages, with another publish among them
        event = todo.pop(0)
        events.append(event)
        if isinstance(event, PublishRequested) and accept:
            todo = session.accept_publish() + todo
    return events


def published() -> tuple[ServerSession, Client, bytes]:
    """A session that accepted a publish, the client, and what the server sent so far."""
    session, client = ServerSession(), Client()
    client.connect()
    client.publish_sequence()
    run(session, bytes(client.data))
    return session, client, session.data_to_send()


def test_a_whole_publication() -> None:
    session = ServerSession()
    events = run(session, publisher_stream()) + session.receive_eof()
    assert events[:2] == [Connected("live", "rtmp://127.0.0.1/live"), PublishRequested("stream-key", "live")]
    media = [e for e in events if isinstance(e, MediaMessage)]
    assert [e.kind for e in media[:3]] == [MediaKind.DATA, MediaKind.VIDEO, MediaKind.AUDIO]
    assert media[1].payload == AVC_HEADER and media[2].payload == AAC_HEADER
    assert [e.timestamp for e in media if e.kind is MediaKind.VIDEO] == [0, 0, 40, 80, 120, 160]
    assert media[0].values == ("onMetaData", {"width": 320.0, "height": 240.0})
    assert media[0].payload.startswith(amf0.encode("onMetaData"))  # an FLV script tag body
    assert events[-2:] == [Unpublished("stream-key"), Closed(publishing=False)]
    assert session.state is State.CLOSED and session.app == "live" and session.stream_id == 1


def test_the_replies_clients_wait_for() -> None:
    session, _, sent = published()
    messages = server_messages(sent)
    control = [
        (x.type_id, x.payload) for x in messages if x.type_id in (m.WINDOW_ACK_SIZE, m.SET_PEER_BANDWIDTH)
    ]
    assert control == [(5, (2_500_000).to_bytes(4, "big")), (6, (2_500_000).to_bytes(4, "big") + b"\x02")]
    replies = commands(messages)
    connect = replies[0]
    assert connect[:2] == ["_result", 1.0]
    assert connect[2] == {"fmsVer": "FMS/3,0,1,123", "capabilities": 31.0}
    assert connect[3]["code"] == "NetConnection.Connect.Success" and connect[3]["objectEncoding"] == 0
    assert replies[1][0] == "onFCPublish" and replies[1][3]["description"] == "stream-key"
    assert replies[2] == ["_result", 4.0, None, 1.0]  # createStream: stream 1
    status = replies[3]
    assert status[0] == "onStatus" and status[3]["code"] == "NetStream.Publish.Start"
    assert status[3]["level"] == "status"
    begin = next(x for x in messages if x.type_id == m.USER_CONTROL)
    assert m.user_control_of(begin) == (m.UserControl.STREAM_BEGIN, 1)
    assert [x.stream_id for x in messages if x.type_id == m.COMMAND_AMF0] == [0, 0, 0, 1]
    assert session.state is State.PUBLISHING and session.handshake_done


def test_a_refused_publish() -> None:
    session, client = ServerSession(), Client()
    client.connect()
    client.publish_sequence("wrong")
    events = run(session, bytes(client.data), accept=False)
    assert events[-1] == PublishRequested("wrong", "live") and session.state is State.PUBLISH_REQUESTED
    session.reject_publish("NetStream.Publish.BadName", "no such input")
    status = commands(server_messages(session.data_to_send()))[-1]
    assert status[3] == {
        "level": "error",
        "code": "NetStream.Publish.BadName",
        "description": "no such input",
    }
    assert session.state is State.REJECTED
    client.data.clear()
    client.some_media()  # a client that did not listen: ignored until the adapter closes
    assert session.receive_data(bytes(client.data)) == []
    with pytest.raises(RuntimeError):
        session.accept_publish()


def test_accept_needs_a_request() -> None:
    with pytest.raises(RuntimeError):
        ServerSession().accept_publish()


def test_ping_and_acknowledgements() -> None:
    session, client, _ = published()
    client.data.clear()
    client.send(m.user_control(m.UserControl.PING_REQUEST, 1234))
    client.send(m.window_ack_size(1000))
    session.receive_data(bytes(client.data))
    sent = server_messages(b"\x03" + bytes(3072) + session.data_to_send())
    assert [m.user_control_of(x) for x in sent] == [(m.UserControl.PING_RESPONSE, 1234)]
    client.data.clear()
    client.some_media()
    session.receive_data(bytes(client.data))
    acks = [x for x in server_messages(b"\x03" + bytes(3072) + session.data_to_send()) if x.type_id == 3]
    assert len(acks) == 1 and int.from_bytes(acks[0].payload, "big") > 1000
    session.send_ping(99)
    assert session.data_to_send()[-6:] == b"\x00\x06\x00\x00\x00\x63"


def test_unpublish_then_publish_again() -> None:
    session, client, _ = published()
    client.data.clear()
    client.command("deleteStream", None, 1.0)
    client.command("createStream", None)
    client.command("publish", None, "again", "live", stream_id=2)
    events = run(session, bytes(client.data))
    assert events == [Unpublished("stream-key"), PublishRequested("again", "live")]
    assert session.state is State.PUBLISHING and session.stream_id == 2


def error_code(*steps: Any) -> str:
    session, client = ServerSession(), Client()
    for step in steps:
        step(client)
    with pytest.raises(RtmpError) as info:
        run(session, bytes(client.data))
    assert session.state is State.FAILED
    with pytest.raises(RtmpError) as again:
        session.receive_data(b"\x00")
    assert again.value.code == info.value.code
    return info.value.code


def test_protocol_errors() -> None:
    connect, publish = Client.connect, Client.publish_sequence
    assert error_code(lambda c: c.command("createStream", None)) == "rtmp.bad_command"
    assert error_code(lambda c: c.command("connect", None)) == "rtmp.bad_command"
    assert error_code(connect, connect) == "rtmp.bad_command"
    assert error_code(connect, lambda c: c.command("play", None, "x")) == "rtmp.bad_command"
    assert error_code(connect, lambda c: c.command("publish", None, "x")) == "rtmp.bad_command"  # stream 0
    assert error_code(connect, lambda c: c.media(m.VIDEO, 0, AVC_HEADER)) == "rtmp.bad_command"
    wrong_stream = lambda c: c.send(m.Message(m.AUDIO, 7, 0, AAC_HEADER), 4)  # noqa: E731
    assert error_code(connect, publish, wrong_stream) == "rtmp.bad_command"
    not_a_command = lambda c: c.send(m.Message(m.COMMAND_AMF0, 0, 0, amf0.encode(1, 2)), 3)  # noqa: E731
    assert error_code(not_a_command) == "rtmp.bad_command"
    aggregate = lambda c: c.send(m.Message(m.AGGREGATE, 1, 0, b"x"), 4)  # noqa: E731
    assert error_code(connect, publish, aggregate) == "rtmp.bad_message"


def test_amf_bombs_in_commands() -> None:
    deep = b"\x02\x00\x07connect\x00" + bytes(8) + b"\x0a\x00\x00\x00\x01" * 1000 + b"\x05"
    bomb = lambda c: c.send(m.Message(m.COMMAND_AMF0, 0, 0, deep), 3)  # noqa: E731
    assert error_code(bomb) == "rtmp.amf_too_large"
    huge = amf0.encode("connect", 1.0, {"app": "x" * 70_000})
    assert error_code(lambda c: c.send(m.Message(m.COMMAND_AMF0, 0, 0, huge), 3)) == "rtmp.amf_too_large"


def test_a_wrong_handshake_version() -> None:
    with pytest.raises(RtmpError) as info:
        ServerSession().receive_data(b"GET / HTTP/1.1\r\n")
    assert info.value.code == "rtmp.bad_handshake"


def test_amf3_command_with_an_amf0_body() -> None:
    session, client = ServerSession(), Client()
    body = amf0.encode("connect", 1.0, {"app": "live"})
    client.send(m.Message(m.COMMAND_AMF3, 0, 0, b"\x00" + body), 3)
    assert run(session, bytes(client.data)) == [Connected("live", "")]


STREAM = publisher_stream()


@FUZZ
@given(cuts=st.lists(st.integers(0, len(STREAM)), max_size=30))
def test_any_split_gives_the_same_events_and_replies(cuts: list[int]) -> None:
    whole = ServerSession(random_bytes=bytes)
    expected = run(whole, STREAM)
    session = ServerSession(random_bytes=bytes)
    got: list[Event] = []
    sent = b""
    edges = [0, *sorted(cuts), len(STREAM)]
    for start, end in itertools.pairwise(edges):
        got += run(session, STREAM[start:end])
        sent += session.data_to_send()
    assert got == expected and sent == whole.data_to_send()


@FUZZ
@given(at=st.lists(st.integers(0), min_size=1, max_size=4), byte=st.integers(0, 255))
def test_mutations_raise_only_our_errors(at: list[int], byte: int) -> None:
    data = bytearray(STREAM)
    for position in at:
        data[position % len(data)] = byte
    with contextlib.suppress(RtmpError):  # anything else escapes and fails
        run(ServerSession(), bytes(data))


def test_set_data_frame_as_a_long_string_is_removed_too() -> None:
    session, client, _ = published()
    client.data.clear()
    payload = b"\x0c\x00\x00\x00\x0d@setDataFrame" + amf0.encode("onMetaData", amf0.EcmaArray(fps=25.0))
    client.send(m.Message(m.DATA_AMF0, 1, 0, payload), 4)
    (event,) = session.receive_data(bytes(client.data))
    assert isinstance(event, MediaMessage) and event.kind is MediaKind.DATA
    assert event.payload == amf0.encode("onMetaData", amf0.EcmaArray(fps=25.0))
    assert event.values == ("onMetaData", {"fps": 25.0})


def test_the_server_switches_to_its_chunk_size_after_announcing_it() -> None:
    session, client = ServerSession(chunk_size=100), Client()
    client.connect()
    session.receive_data(bytes(client.data))
    reader = ChunkReader()
    (result,) = commands(reader.feed(session.data_to_send()[1 + 2 * 1536 :]))
    assert reader.chunk_size == 100 and result[0] == "_result"


def test_more_protocol_errors() -> None:
    connect, publish = Client.connect, Client.publish_sequence
    streams = lambda c: [c.command("createStream", None) for _ in range(9)]  # noqa: E731
    assert error_code(connect, streams) == "rtmp.bad_command"
    assert error_code(connect, publish, publish) == "rtmp.bad_command"  # a second publish while publishing
    create = lambda c: c.command("createStream", None)  # noqa: E731
    nameless = lambda c: c.command("publish", None, stream_id=1)  # noqa: E731
    assert error_code(connect, create, nameless) == "rtmp.bad_command"
    amf3 = lambda c: c.send(m.Message(m.COMMAND_AMF3, 0, 0, b"\x11\x02"), 3)  # noqa: E731
    assert error_code(amf3) == "rtmp.bad_amf"


def test_what_waits_for_the_answer_is_bounded() -> None:
    session, client = ServerSession(max_pending=2000), Client()
    client.connect()
    client.publish_sequence()
    session.receive_data(bytes(client.data))
    assert session.state is State.PUBLISH_REQUESTED
    client.data.clear()
    for _ in range(5):
        client.media(m.AUDIO, 0, bytes(500))
    with pytest.raises(RtmpError) as info:
        session.receive_data(bytes(client.data))
    assert info.value.code == "rtmp.buffer_full"


def test_receive_after_eof_is_a_bug_of_the_caller() -> None:
    session = ServerSession()
    assert session.receive_eof() == [Closed(publishing=False)]
    with pytest.raises(RuntimeError):
        session.receive_data(b"\x03")
