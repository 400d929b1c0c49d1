"""Real RTMP publishers for the ingest tests: ffmpeg pushing a live test picture, and a raw
socket that speaks the scripted client's bytes (tests/media/rtmp/client.py) for bad input."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.conftest import ffmpeg

#: name -> encoder arguments (a 320x180 25 fps picture; the GOP in frames)
PROFILES: dict[str, list[str]] = {
    "bframes_aac": ["-g", "25", "-bf", "2", "-c:a", "aac"],
    "no_audio": ["-g", "25", "-bf", "0", "-an"],
    "gop_2s": ["-g", "50", "-keyint_min", "50", "-bf", "0", "-c:a", "aac"],
    "gop_half": ["-g", "12", "-keyint_min", "12", "-bf", "0", "-c:a", "aac"],
    # Enhanced RTMP (ffmpeg 6.1+ writes HEVC in FLV with the FourCC header)
    "hevc": ["-c:v", "libx265", "-x265-params", "log-level=error", "-g", "25", "-bf", "0", "-c:a", "aac"],
}


class FfmpegPublisher:
    """``ffmpeg -re … -f flv rtmp://…`` (or ``-f mpegts srt://…``) for ``seconds``, its
    stderr kept. The picture is a 320x180 25 fps test pattern with a 440 Hz tone."""

    def __init__(
        self,
        url: str,
        profile: str = "bframes_aac",
        *,
        seconds: float = 30.0,
        size: str = "320x180",
        output_options: tuple[str, ...] = (),
        fmt: str = "flv",
    ):
        self.url = url
        args = [
            ffmpeg(),
            "-hide_banner",
            "-loglevel",
            "warning",
            "-re",
            "-f",
            "lavfi",
            "-i",
            f"testsrc2=size={size}:rate=25",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=44100",
            "-t",
            str(seconds),
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-sc_threshold",
            "0",
            *PROFILES[profile],
            *output_options,
            "-f",
            fmt,
            url,
        ]
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def stop(self) -> str:
        """Stop it (if still running) and return what it printed."""
        if self.process.poll() is None:
            self.process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        if self.process.poll() is None:
            self.process.kill()
        return self._printed()

    def _printed(self) -> str:
        stderr = self.process.stderr
        assert stderr is not None
        if stderr.closed:
            return ""
        with stderr:
            return stderr.read()

    async def finish(self, timeout: float = 20.0) -> tuple[int, str]:
        """Wait for it to end by itself (the server runs on this loop: never block it); its
        exit code and what it printed."""
        try:
            await asyncio.wait_for(asyncio.to_thread(self.process.wait), timeout)
        except TimeoutError:
            self.stop()
            raise
        return self.process.returncode, self._printed()


def rtmp_url(port: int, input_id: str, key: str, **query: Any) -> str:
    extra = "".join(f"&{name}={value}" for name, value in query.items())
    return f"rtmp://127.0.0.1:{port}/live/{input_id}?key={key}{extra}"


async def raw_exchange(
    port: int, data: bytes, *, timeout: float = 5.0, pause: float = 0.0
) -> tuple[bytes, float]:
    """Send ``data`` on a fresh connection (after ``pause`` seconds, if any), read until the
    server closes; what it sent and how long it took to close."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    received = bytearray()
    try:
        if pause:
            await asyncio.sleep(pause)
        writer.write(data)
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        async with asyncio.timeout(timeout):
            while chunk := await reader.read(65536):
                received += chunk
    except ConnectionResetError:
        pass
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    return bytes(received), time.monotonic() - started


def decode_errors(path: Path) -> str:
    """What ffmpeg says decoding ``path`` (empty: no error)."""
    run = subprocess.run(
        [ffmpeg(), "-v", "error", "-i", str(path), "-f", "null", "-"], capture_output=True, text=True
    )
    return (run.stderr.strip() + (f" (exit {run.returncode})" if run.returncode else "")).strip()
