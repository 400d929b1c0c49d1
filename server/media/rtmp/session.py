"""The server side of one RTMP publisher's connection, as a state machine without I/O.

The adapter feeds received bytes to :meth:`ServerSession.receive_data`, acts on the
events it returns, and writes :meth:`ServerSession.data_to_send` to the socket. The
session answers everything a publisher expects by itself (handshake, control messages,
acknowledgements, pings, ``connect``, ``createStream``…) except one decision: whether a
``publish`` may go ahead, which is the caller's (keys, inputs, takeovers)::

    HANDSHAKE ──C2──▶ EXPECT_CONNECT ──connect──▶ CONNECTED ──publish──▶ PUBLISH_REQUESTED
                                                     ▲                    │         │
                                     FCUnpublish,    │      accept_publish()   reject_publish()
                                     deleteStream    │                    ▼         ▼
                                                     └───────────────  PUBLISHING  REJECTED
    any state ──receive_eof()──▶ CLOSED;   any state ──RtmpError──▶ FAILED

The replies are the ones OBS, ffmpeg and librtmp-based encoders wait for: after
``connect``, Window Acknowledgement Size, Set Peer Bandwidth, Set Chunk Size and a
``_result`` with ``fmsVer``, ``capabilities`` and ``NetConnection.Connect.Success``;
``onFCPublish`` after ``FCPublish``; a stream id in ``createStream``'s ``_result``; Stream
Begin and ``onStatus NetStream.Publish.Start`` on acceptance, or an ``onStatus`` with level
``error`` and the caller's code on refusal (``NetStream.Publish.BadName`` for an unknown
input or a wrong key, as FMS and nginx-rtmp use it; the adapter then closes). ``releaseStream``
gets no answer (nginx-rtmp gives none and no client waits for one). Unknown commands are
ignored; ``play`` is refused (publishers only). Messages that arrive while a publish waits
for its answer are held (within ``max_pending`` bytes) and handed over by
``accept_publish()``, so the caller may take its time (an asynchronous key check). An
Acknowledgement goes out each time the client's announced window of chunk stream bytes
(the handshake not counted) has been received.

Errors are :class:`~server.errors.RtmpError`; the session is FAILED after one and every
later call raises it again. The handshake deadline is the adapter's: it has
:attr:`ServerSession.handshake_done`.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable
from typing import Any

from server.errors import RtmpError
from server.media.rtmp import amf0
from server.media.rtmp import messages as m
from server.media.rtmp.chunks import (
    DEFAULT_MAX_CHUNK_STREAMS,
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_MAX_PENDING,
    ChunkReader,
    ChunkWriter,
)
from server.media.rtmp.events import (
    Closed,
    Connected,
    Event,
    MediaKind,
    MediaMessage,
    PublishRequested,
    Unpublished,
)
from server.media.rtmp.handshake import Handshake

#: What a Flash Media Server 3 answers; clients only check that there is one.
FMS_VERSION = "FMS/3,0,1,123"
CAPABILITIES = 31
MAX_STREAMS = 8  # createStream calls on one connection
_SET_DATA_FRAME = amf0.encode("@setDataFrame")
_MEDIA = {m.AUDIO: MediaKind.AUDIO, m.VIDEO: MediaKind.VIDEO}


class State(enum.Enum):
    HANDSHAKE = "handshake"
    EXPECT_CONNECT = "expect_connect"
    CONNECTED = "connected"
    PUBLISH_REQUESTED = "publish_requested"
    PUBLISHING = "publishing"
    REJECTED = "rejected"
    CLOSED = "closed"
    FAILED = "failed"


_TRANSITIONS: dict[State, frozenset[State]] = {
    State.HANDSHAKE: frozenset({State.EXPECT_CONNECT}),
    State.EXPECT_CONNECT: frozenset({State.CONNECTED}),
    State.CONNECTED: frozenset({State.PUBLISH_REQUESTED}),
    State.PUBLISH_REQUESTED: frozenset({State.PUBLISHING, State.REJECTED}),
    State.PUBLISHING: frozenset({State.CONNECTED}),
    State.REJECTED: frozenset(),
    State.CLOSED: frozenset(),
    State.FAILED: frozenset(),
}


class ServerSession:
    """One publisher's RTMP connection; see the module docstring.

    ``chunk_size`` is our outgoing chunk size, ``window`` the acknowledgement window and
    peer bandwidth we announce. ``max_message_size``, ``max_chunk_streams`` and
    ``max_pending`` bound the chunk reader (:class:`ChunkReader`); ``max_amf_size``,
    ``max_amf_depth`` and ``max_amf_values`` bound each command and data message
    (:func:`amf0.decode`).
    """

    def __init__(
        self,
        *,
        chunk_size: int = 4096,
        window: int = 2_500_000,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        max_chunk_streams: int = DEFAULT_MAX_CHUNK_STREAMS,
        max_pending: int = DEFAULT_MAX_PENDING,
        max_amf_size: int = amf0.DEFAULT_MAX_SIZE,
        max_amf_depth: int = amf0.DEFAULT_MAX_DEPTH,
        max_amf_values: int = amf0.DEFAULT_MAX_VALUES,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.chunk_size = chunk_size
        self.window = window
        self._amf = {"max_size": max_amf_size, "max_depth": max_amf_depth, "max_values": max_amf_values}
        self._handshake = Handshake(random_bytes=random_bytes)
        self._reader = ChunkReader(
            max_message_size=max_message_size, max_chunk_streams=max_chunk_streams, max_pending=max_pending
        )
        self._writer = ChunkWriter()
        self._state = State.HANDSHAKE
        self._out = bytearray()
        self._error: RtmpError | None = None
        self._received = 0  # chunk stream bytes received, for acknowledgements
        self._acknowledged = 0
        self._peer_window = 0  # the client's Window Acknowledgement Size; 0 = never acknowledge
        self._streams = 0  # createStream calls answered; stream ids are 1 .. _streams
        self._held: list[m.Message] = []  # what came while a publish waited for its answer
        self._held_bytes = 0
        self.app = ""
        self.tc_url = ""
        self.stream_name = ""
        self.publish_type = ""
        self.stream_id = 0  # the message stream being published on

    @property
    def state(self) -> State:
        return self._state

    @property
    def handshake_done(self) -> bool:
        return self._handshake.done

    def data_to_send(self) -> bytes:
        out = self._handshake.data_to_send() + bytes(self._out)
        self._out.clear()
        return out

    def receive_data(self, data: bytes) -> list[Event]:
        """Consume bytes from the client; return the events they complete, in order."""
        if self._error is not None:
            raise RtmpError(self._error.code, f"the session already failed: {self._error.message}")
        if self._state is State.CLOSED:
            raise RuntimeError("receive_data after receive_eof")
        events: list[Event] = []
        try:
            if self._state is State.HANDSHAKE:
                data = self._handshake.receive_data(data)
                if not self._handshake.done:
                    return events
                self._move(State.EXPECT_CONNECT)
            self._received += len(data)
            for message in self._reader.feed(data):
                if self._state is State.PUBLISH_REQUESTED:
                    self._hold(message)
                elif self._state is not State.REJECTED:  # waiting to be closed: ignore the rest
                    self._dispatch(message, events)
            if self._peer_window and self._received - self._acknowledged >= self._peer_window:
                self._acknowledged = self._received
                self._send(m.acknowledgement(self._received))
        except RtmpError as exc:
            self._error = exc
            self._state = State.FAILED
            raise
        return events

    def receive_eof(self) -> list[Event]:
        """The client closed the connection."""
        publishing = self._state is State.PUBLISHING
        if self._state is not State.FAILED:
            self._state = State.CLOSED
        return [Closed(publishing)]

    def accept_publish(self) -> list[Event]:
        """Let the requested publish go ahead (the client starts sending media).

        Returns the events of messages that arrived while the decision was pending (a
        client that did not wait for ``NetStream.Publish.Start``); usually none.
        """
        self._move(State.PUBLISHING)
        self._send(m.user_control(m.UserControl.STREAM_BEGIN, self.stream_id))
        self._status("status", "NetStream.Publish.Start", f"{self.stream_name} is now published.")
        held, self._held, self._held_bytes = self._held, [], 0
        events: list[Event] = []
        try:
            for message in held:
                if self._state is State.PUBLISH_REQUESTED:  # a second publish, held again
                    self._hold(message)
                else:
                    self._dispatch(message, events)
        except RtmpError as exc:
            self._error = exc
            self._state = State.FAILED
            raise
        return events

    def reject_publish(self, code: str = "NetStream.Publish.BadName", description: str = "") -> None:
        """Refuse the requested publish; the adapter closes once this is sent.

        ``code`` is the ``onStatus`` code the client shows: ``NetStream.Publish.BadName``
        for an unknown input, a wrong key or a busy input (what FMS and nginx-rtmp send),
        ``NetStream.Publish.Denied`` where a client should not retry.
        """
        self._move(State.REJECTED)
        self._held, self._held_bytes = [], 0
        self._status("error", code, description or f"{self.stream_name} may not be published.")

    def send_ping(self, timestamp_ms: int) -> None:
        """Queue a Ping Request (a keepalive; the client answers with a Ping Response)."""
        self._send(m.user_control(m.UserControl.PING_REQUEST, timestamp_ms))

    def _hold(self, message: m.Message) -> None:
        self._held_bytes += len(message.payload)
        if self._held_bytes > self._reader.max_pending:
            raise RtmpError(
                "rtmp.buffer_full", f"over {self._reader.max_pending} bytes sent before publish was answered"
            )
        self._held.append(message)

    def _move(self, to: State) -> None:
        if to not in _TRANSITIONS[self._state]:
            raise RuntimeError(f"an RTMP session cannot go from {self._state.value} to {to.value}")
        self._state = to

    def _send(self, message: m.Message, csid: int = m.CONTROL_CHUNK_STREAM) -> None:
        self._out += self._writer.write(message, csid)

    def _command(self, *values: Any, stream_id: int = 0, csid: int = m.COMMAND_CHUNK_STREAM) -> None:
        self._send(m.Message(m.COMMAND_AMF0, stream_id, 0, amf0.encode(*values)), csid)

    def _status(self, level: str, code: str, description: str) -> None:
        info = {"level": level, "code": code, "description": description}
        self._command("onStatus", 0, None, info, stream_id=self.stream_id, csid=m.STATUS_CHUNK_STREAM)

    def _dispatch(self, message: m.Message, events: list[Event]) -> None:
        kind = message.type_id
        if kind in (m.COMMAND_AMF0, m.COMMAND_AMF3):
            self._on_command(self._decode(message), message.stream_id, events)
        elif kind in _MEDIA or kind in (m.DATA_AMF0, m.DATA_AMF3):
            self._on_media(message, events)
        elif kind == m.USER_CONTROL:
            event, value = m.user_control_of(message)
            if event == m.UserControl.PING_REQUEST:
                self._send(m.user_control(m.UserControl.PING_RESPONSE, value))
        elif kind == m.WINDOW_ACK_SIZE:
            self._peer_window = m.window_of(message)
        elif kind == m.AGGREGATE:
            raise RtmpError("rtmp.bad_message", "aggregate messages (type 22) are not supported")
        # Acknowledgements, Set Peer Bandwidth from a client and unknown types: nothing to do.

    def _decode(self, message: m.Message) -> list[Any]:
        payload = message.payload
        if message.type_id in (m.COMMAND_AMF3, m.DATA_AMF3):
            # An AMF3 message whose body is still AMF0 starts with a 0 format byte.
            if payload[:1] != b"\x00":
                raise RtmpError("rtmp.bad_amf", "AMF3-encoded messages are not supported")
            payload = payload[1:]
        return amf0.decode(payload, **self._amf)

    def _on_command(self, values: list[Any], stream_id: int, events: list[Event]) -> None:
        if len(values) < 2 or not isinstance(values[0], str) or not isinstance(values[1], float):
            raise RtmpError("rtmp.bad_command", "a command message without a name and a transaction id")
        name, txn, args = values[0], values[1], values[2:]
        state = self._state
        if state is State.EXPECT_CONNECT:
            if name != "connect":
                raise RtmpError("rtmp.bad_command", f"{name!r} before connect")
            self._on_connect(txn, args, events)
        elif name == "connect":
            raise RtmpError("rtmp.bad_command", "a second connect on one connection")
        elif name == "play":
            raise RtmpError("rtmp.bad_command", "play: this server only takes publishers")
        elif name == "FCPublish":
            info = {"code": "NetStream.Publish.Start", "description": _string_arg(args, 1)}
            self._command("onFCPublish", 0, None, info)
        elif name == "createStream":
            if self._streams >= MAX_STREAMS:
                raise RtmpError("rtmp.bad_command", f"over {MAX_STREAMS} createStream calls")
            self._streams += 1
            self._command("_result", txn, None, float(self._streams))
        elif name == "publish":
            self._on_publish(args, stream_id, events)
        elif name in ("FCUnpublish", "deleteStream", "closeStream") and state is State.PUBLISHING:
            self._move(State.CONNECTED)
            events.append(Unpublished(self.stream_name))

    def _on_connect(self, txn: float, args: list[Any], events: list[Event]) -> None:
        properties = args[0] if args else None
        if not isinstance(properties, dict) or not isinstance(properties.get("app"), str):
            raise RtmpError("rtmp.bad_command", "connect without a command object naming the app")
        tc_url = properties.get("tcUrl")
        self.app, self.tc_url = properties["app"], tc_url if isinstance(tc_url, str) else ""
        self._move(State.CONNECTED)
        self._send(m.window_ack_size(self.window))
        self._send(m.set_peer_bandwidth(self.window))
        self._send(m.set_chunk_size(self.chunk_size))
        self._writer.set_chunk_size(self.chunk_size)
        result = {
            "level": "status",
            "code": "NetConnection.Connect.Success",
            "description": "Connection succeeded.",
            "objectEncoding": 0,
        }
        self._command("_result", txn, {"fmsVer": FMS_VERSION, "capabilities": CAPABILITIES}, result)
        events.append(Connected(self.app, self.tc_url))

    def _on_publish(self, args: list[Any], stream_id: int, events: list[Event]) -> None:
        if self._state is not State.CONNECTED:
            raise RtmpError("rtmp.bad_command", f"publish in state {self._state.value}")
        if not 1 <= stream_id <= self._streams:
            raise RtmpError(
                "rtmp.bad_command", f"publish on stream {stream_id}, which createStream did not make"
            )
        name = _string_arg(args, 1)
        if not name:
            raise RtmpError("rtmp.bad_command", "publish without a stream name")
        self.stream_name, self.publish_type = name, _string_arg(args, 2) or "live"
        self.stream_id = stream_id
        self._move(State.PUBLISH_REQUESTED)
        events.append(PublishRequested(self.stream_name, self.publish_type))

    def _on_media(self, message: m.Message, events: list[Event]) -> None:
        kind = _MEDIA.get(message.type_id, MediaKind.DATA)
        if self._state is not State.PUBLISHING:
            raise RtmpError("rtmp.bad_command", f"{kind.value} before publishing started")
        if message.stream_id != self.stream_id:
            raise RtmpError(
                "rtmp.bad_command", f"{kind.value} on stream {message.stream_id}, not the published one"
            )
        if kind is not MediaKind.DATA:
            events.append(MediaMessage(kind, message.timestamp, message.payload))
            return
        values = self._decode(message)
        payload = message.payload[1:] if message.type_id == m.DATA_AMF3 else message.payload
        if values and values[0] == "@setDataFrame":
            # What an FLV file holds: the frame without the instruction to set it.
            values = values[1:]
            if payload.startswith(_SET_DATA_FRAME):
                payload = payload[len(_SET_DATA_FRAME) :]
            else:  # (the name sent as a long string)
                payload = amf0.encode(*values)
        events.append(MediaMessage(kind, message.timestamp, payload, tuple(values)))


def _string_arg(args: list[Any], index: int) -> str:
    """The string at ``index`` of a command's arguments (after the command object), or ""."""
    value = args[index] if len(args) > index else None
    return value if isinstance(value, str) else ""
