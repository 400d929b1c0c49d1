"""What a real ffmpeg sends when it publishes over RTMP, recorded on a throwaway loopback
listener driven by our session (handshake, replies, acceptance). Recorded once per test
process, in memory: nothing generated is saved."""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass, field

from server.media.rtmp.events import Event, PublishRequested
from server.media.rtmp.session import ServerSession
from tests.conftest import ffmpeg


@dataclass
class Capture:
    received: bytes  # every byte ffmpeg sent, handshake included
    events: list[Event] = field(default_factory=list)
    returncode: int | None = None
    stderr: str = ""
    error: BaseException | None = None  # what our session raised, if anything


async def _record(seconds: float) -> Capture:
    capture = Capture(b"")
    received = bytearray()
    done = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = ServerSession()
        try:
            while data := await reader.read(65536):
                received.extend(data)
                todo = session.receive_data(data)
                while todo:
                    event = todo.pop(0)
                    capture.events.append(event)
                    if isinstance(event, PublishRequested):
                        todo = session.accept_publish() + todo
                writer.write(session.data_to_send())
                await writer.drain()
            capture.events += session.receive_eof()
        except Exception as exc:
            capture.error = exc
        finally:
            writer.close()
            done.set()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        process = await asyncio.create_subprocess_exec(
            ffmpeg(), "-hide_banner", "-v", "error", "-re",
            "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25",
            "-f", "lavfi", "-i", "sine", "-t", str(seconds),
            "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-c:a", "aac",
            "-f", "flv", f"rtmp://127.0.0.1:{port}/live/stream-key",
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
        capture.returncode, capture.stderr = process.returncode, stderr.decode(errors="replace")
        await asyncio.wait_for(done.wait(), 5)
    capture.received = bytes(received)
    return capture


@functools.cache
def ffmpeg_publish(seconds: float = 2.0) -> Capture:
    """ffmpeg's publication of ``seconds`` of test pattern and tone (H.264 + AAC, FLV)."""
    return asyncio.run(_record(seconds))
