"""A scripted RTMP publisher for the tests: the bytes a client such as ffmpeg sends, built
with our own chunk writer (tests/media/rtmp/test_chunks.py checks the reader on hand-built
chunks, so the session tests may rely on it), and a reader for what the server answers."""

from __future__ import annotations

from typing import Any

from server.media.rtmp import amf0
from server.media.rtmp import messages as m
from server.media.rtmp.chunks import ChunkReader, ChunkWriter
from server.media.rtmp.handshake import PACKET_SIZE

C0C1 = b"\x03" + bytes(range(256)) * 6
C2 = bytes(PACKET_SIZE)
AVC_HEADER = bytes([0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x0D, 0xFF, 0xE1])
AVC_KEYFRAME = bytes([0x17, 1, 0, 0, 0]) + b"\x00\x00\x00\x05\x65" + bytes(300)
AAC_HEADER = bytes([0xAF, 0, 0x11, 0x90])
AAC_FRAME = bytes([0xAF, 1]) + bytes(40)


class Client:
    """Build a publisher's byte stream step by step (``data`` holds it all)."""

    def __init__(self, *, chunk_size: int = 128) -> None:
        self.writer = ChunkWriter()
        self.data = bytearray(C0C1 + C2)
        if chunk_size != 128:
            self.send(m.set_chunk_size(chunk_size))
            self.writer.set_chunk_size(chunk_size)
        self.txn = 0

    def send(self, message: m.Message, csid: int = m.CONTROL_CHUNK_STREAM) -> bytes:
        raw = self.writer.write(message, csid)
        self.data += raw
        return raw

    def command(self, name: str, *args: Any, stream_id: int = 0, csid: int = 3) -> bytes:
        self.txn += 1
        payload = amf0.encode(name, float(self.txn), *args)
        return self.send(m.Message(m.COMMAND_AMF0, stream_id, 0, payload), csid)

    def connect(self, app: str = "live") -> bytes:
        obj = {"app": app, "type": "nonprivate", "flashVer": "FMLE/3.0", "tcUrl": f"rtmp://127.0.0.1/{app}"}
        return self.command("connect", obj)

    def publish_sequence(self, name: str = "stream-key") -> bytes:
        return b"".join(
            [
                self.command("releaseStream", None, name),
                self.command("FCPublish", None, name),
                self.command("createStream", None),
                self.command("publish", None, name, "live", stream_id=1, csid=4),
            ]
        )

    def media(self, type_id: int, timestamp: int, payload: bytes, csid: int | None = None) -> bytes:
        csid = csid if csid is not None else {m.AUDIO: 4, m.VIDEO: 6}.get(type_id, 4)
        return self.send(m.Message(type_id, 1, timestamp, payload), csid)

    def metadata(self) -> bytes:
        values = amf0.encode("@setDataFrame", "onMetaData", amf0.EcmaArray(width=320.0, height=240.0))
        return self.send(m.Message(m.DATA_AMF0, 1, 0, values), 4)

    def some_media(self) -> None:
        self.metadata()
        self.media(m.VIDEO, 0, AVC_HEADER)
        self.media(m.AUDIO, 0, AAC_HEADER)
        for i in range(5):
            self.media(m.VIDEO, 40 * i, AVC_KEYFRAME)
            self.media(m.AUDIO, 21 * i, AAC_FRAME)


def publisher_stream(name: str = "stream-key", *, chunk_size: int = 128) -> bytes:
    """A whole publication: handshake, connect, publish, metadata, media, unpublish."""
    client = Client(chunk_size=chunk_size)
    client.connect()
    client.publish_sequence(name)
    client.some_media()
    client.command("FCUnpublish", None, name)
    client.command("deleteStream", None, 1.0)
    return bytes(client.data)


def server_messages(data: bytes) -> list[m.Message]:
    """The messages in what the server sent (its S0 S1 S2 skipped)."""
    assert data[0] == 3
    return ChunkReader().feed(data[1 + 2 * PACKET_SIZE :])


def commands(messages: list[m.Message]) -> list[list[Any]]:
    return [amf0.decode(msg.payload) for msg in messages if msg.type_id == m.COMMAND_AMF0]
