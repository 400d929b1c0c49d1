"""The live relay end to end on loopback: WebSocket and HTTP publishers, many viewers.

The stage's program follows the schedule: these tests serve at an instant inside the
fixture's opening session (stage main, input main-cam), so the main program shows the slate
until main-cam publishes and main-cam from its first keyframe on. What a viewer saw of the
slate before that is not what these tests are about: a :class:`Watcher` keeps the stream
from the last init segment on, and waits until main-cam is on air.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient

from server.http.keys import LIVE, STREAM_KEYS
from server.media.fmp4 import Fmp4Parser, split_clip
from server.media.types import InitSegment, MediaFragment
from tests.conftest import Serve, auth, ffmpeg, main_cam_on_air

Client = TestClient[Any, Any]


#: The input of the session on now (see :func:`main_cam_on_air`).
SOURCE = "main-cam"


async def serve_on_air(serve: Serve, **settings: Any) -> Client:
    """The app with main-cam on the main stage's program whenever it publishes. These tests
    send a clip in one burst and then take their time, so an input counts as stalled (and
    the program fails over to the slate) only after a minute without a fragment."""
    return await serve(clock=main_cam_on_air(), **{"stall_after": 60.0, **settings})


def clip_items(clip: Path) -> tuple[InitSegment, list[MediaFragment]]:
    return split_clip(clip.read_bytes())


async def publisher(client: Client, input_id: str, **params: str) -> aiohttp.ClientWebSocketResponse:
    key = client.app[STREAM_KEYS].key(input_id)
    return await client.ws_connect(f"/ws/publish/{input_id}", params={"key": key, **params})


async def send_chunked(ws: aiohttp.ClientWebSocketResponse, data: bytes, rng: random.Random) -> None:
    """``data`` in random chunks from 1 byte to 64 KiB, not aligned to boxes."""
    at = 0
    while at < len(data):
        size = rng.choice([1, 7, 100, 1500, 4096, 65536])
        await ws.send_bytes(data[at : at + size])
        at += size


class Watcher:
    """A viewer that records every event it gets, and the stream of the source on air.

    ``binary`` is the stream since the last switch of source: an ``init``/``reinit`` event
    starts it afresh (its init segment comes next), and a switch without one (alike decoder
    configurations) keeps only the init segment. What came before was another source (the
    slate, before main-cam went on air). ``on_air`` is the source the last ``now`` event named.
    """

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []
        self.binary: list[bytes] = []
        self.on_air: str | None = None
        self._fresh = False  # nothing but an init segment since the last init/reinit event

    async def read_until(self, fragments: int, timeout: float = 10, source: str = SOURCE) -> None:
        """Until ``source`` is on air and ``fragments`` of it arrived."""
        try:
            await asyncio.wait_for(self._read_until(fragments, source), timeout)
        except TimeoutError:
            raise AssertionError(
                f"got {len(self.binary) - 1} fragments of {self.on_air}, wanted {fragments} of {source}:"
                f" {self.events}"
            ) from None

    async def _read_until(self, fragments: int, source: str) -> None:
        while self.on_air != source or len(self.binary) < fragments + 1:
            message = await self.ws.receive()
            if message.type == aiohttp.WSMsgType.TEXT:
                event = json.loads(message.data)
                self.events.append(event)
                if event["type"] in ("init", "reinit"):
                    self.binary, self._fresh = [], True
                elif event["type"] == "now":
                    if event["program"]["source"] != self.on_air and not self._fresh:
                        self.binary = self.binary[:1]  # same decoder configuration: no new init
                    self.on_air = event["program"]["source"]
            elif message.type == aiohttp.WSMsgType.BINARY:
                self._fresh = self._fresh and not self.binary
                self.binary.append(message.data)
            else:
                raise AssertionError(f"viewer closed: {message}")

    def parsed(self) -> list[InitSegment | MediaFragment]:
        parser = Fmp4Parser()
        return [item for data in self.binary for item in parser.feed(data)]


async def watcher(client: Client, path: str = "/ws/watch/main", **kwargs: Any) -> Watcher:
    return Watcher(await client.ws_connect(path, **kwargs))


async def next_notice(pub: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    """A publisher's next message that is neither a tally nor stats."""
    while True:
        message: dict[str, Any] = json.loads((await pub.receive()).data)
        if message["type"] not in ("tally", "stats"):
            return message


async def test_hundred_viewers_get_identical_streams(serve: Serve, clip: Path) -> None:
    client = await serve_on_air(serve)
    init, fragments = clip_items(clip)
    # aiohttp's client pools 100 connections by default; viewers need their own unlimited pool.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        url = f"http://127.0.0.1:{client.port}/ws/watch/main"
        viewers = [Watcher(await session.ws_connect(url)) for _ in range(100)]
        pub = await publisher(client, "main-cam")
        await send_chunked(pub, clip.read_bytes(), random.Random(1))
        await asyncio.gather(*(v.read_until(len(fragments)) for v in viewers))
    first = viewers[0]
    assert all(v.binary == first.binary for v in viewers)
    assert first.binary[0] == init.data
    assert first.events[0]["type"] == "now"
    # main-cam went on air with its init segment (after the slate's, or as the first), then
    # a "now" event saying so.
    switch = max(i for i, e in enumerate(first.events) if e["type"] in ("init", "reinit"))
    assert first.events[switch]["mime"] == init.mime and "avc1." in init.mime
    assert first.events[switch + 1]["type"] == "now"
    assert first.events[switch + 1]["program"]["source"] == SOURCE
    received = [i for i in first.parsed() if isinstance(i, MediaFragment)]
    assert len(received) == len(fragments)
    # Every fragment, in order, each at the same place on the program's timeline as on the
    # clip's (the program's timeline may start where the slate's ended).
    assert [f.sequence_number - received[0].sequence_number for f in received] == list(range(len(fragments)))
    for track in range(len(fragments[0].tracks)):
        assert [
            f.tracks[track].base_decode_time - received[0].tracks[track].base_decode_time for f in received
        ] == [
            f.tracks[track].base_decode_time - fragments[0].tracks[track].base_decode_time for f in fragments
        ]

    def media(f: MediaFragment) -> tuple[object, ...]:
        return len(f), f.keyframe, [(t.track_id, t.sample_count, t.duration) for t in f.tracks]

    assert [media(f) for f in received] == [media(f) for f in fragments]
    await pub.close()
    assert client.app[LIVE].programs["main"].viewer_count == 0


async def test_late_joiner_starts_at_a_keyframe_and_decodes(serve: Serve, clip: Path, tmp_path: Path) -> None:
    client = await serve_on_air(serve)
    _, fragments = clip_items(clip)
    early = await watcher(client)
    pub = await publisher(client, "main-cam")
    data = clip.read_bytes()
    cut = len(data) * 3 // 5  # part way into a GOP
    sent_first = len(Fmp4Parser().feed(data[:cut])) - 1
    await pub.send_bytes(data[:cut])
    await early.read_until(sent_first)
    late = await watcher(client)
    await late.read_until(1)
    await pub.send_bytes(data[cut:])
    await early.read_until(len(fragments))
    items = late.parsed
    first = next(i for i in items() if isinstance(i, MediaFragment))
    assert first.keyframe
    # Drain the late viewer up to the end and record: the file decodes without errors.
    # (The program numbers fragments on from the slate's: the early viewer's first one is the clip's.)
    shift = (
        next(i for i in early.parsed() if isinstance(i, MediaFragment)).sequence_number
        - fragments[0].sequence_number
    )
    remaining = len([f for f in fragments if f.sequence_number + shift >= first.sequence_number])
    await late.read_until(remaining)
    recording = tmp_path / "late.mp4"
    recording.write_bytes(b"".join(late.binary))
    result = subprocess.run(
        [ffmpeg(), "-v", "error", "-i", str(recording), "-f", "null", "-"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0 and result.stderr == ""
    await pub.close()


async def test_bad_publishers_are_refused_and_viewers_undisturbed(serve: Serve, clip: Path) -> None:
    client = await serve_on_air(serve)
    viewer = await watcher(client)
    wrong_key = await client.get("/ws/publish/main-cam", params={"key": "nope"})
    assert wrong_key.status == 401 and (await wrong_key.json())["error"]["code"] == "live.bad_key"
    unknown = await client.get("/ws/publish/nowhere", params={"key": "x"})
    assert unknown.status == 404 and (await unknown.json())["error"]["code"] == "live.unknown_input"

    bad = await publisher(client, "main-cam")
    await bad.send_bytes(b"\x00\x00\x00\x10abcdxxxxxxxx" * 4)
    tally = json.loads((await bad.receive()).data)
    assert tally == {"type": "tally", "on_air": False, "preview": False, "stage": "main"}
    error = json.loads((await bad.receive()).data)
    assert error["type"] == "error" and error["code"] == "media.unexpected_box", error
    closing = await bad.receive()
    assert closing.type == aiohttp.WSMsgType.CLOSE and bad.close_code == 1007

    good = await publisher(client, "main-cam")
    busy = await client.get("/ws/publish/main-cam", params={"key": client.app[STREAM_KEYS].key("main-cam")})
    assert busy.status == 409 and (await busy.json())["error"]["code"] == "live.input_busy"
    _, fragments = clip_items(clip)
    await good.send_bytes(clip.read_bytes())
    await viewer.read_until(len(fragments))  # the viewer saw nothing of the bad publisher
    assert viewer.binary[0] == clip_items(clip)[0].data
    await good.close()


async def test_takeover_keeps_viewers_and_the_timeline(serve: Serve, clip: Path) -> None:
    client = await serve_on_air(serve)
    _, fragments = clip_items(clip)
    viewer = await watcher(client)
    first = await publisher(client, "main-cam")
    await first.send_bytes(clip.read_bytes())
    await viewer.read_until(len(fragments))
    second = await publisher(client, "main-cam", takeover="1")
    kicked = await next_notice(first)  # after its tallies (off air, then on air)
    assert kicked["type"] == "error" and kicked["code"] == "live.input_busy"
    assert (await first.receive()).type == aiohttp.WSMsgType.CLOSE and first.close_code == 4409
    await second.send_bytes(clip.read_bytes())  # its timestamps start from zero again
    await viewer.read_until(2 * len(fragments))
    received = [i for i in viewer.parsed() if isinstance(i, MediaFragment)]
    times = [f.track(1).base_decode_time for f in received if f.track(1) is not None]  # type: ignore[union-attr]
    assert times == sorted(times) and len(set(times)) == len(times)  # never backwards
    assert not viewer.ws.closed
    await second.close()


async def test_http_ingest_with_ffmpeg(serve: Serve, clip: Path, tmp_path: Path) -> None:
    client = await serve_on_air(serve)
    _, fragments = clip_items(clip)
    viewer = await watcher(client)
    key = client.app[STREAM_KEYS].key("main-cam")
    url = f"http://127.0.0.1:{client.port}/ingest/main-cam?key={key}"
    process = await asyncio.create_subprocess_exec(
        ffmpeg(), "-v", "error", "-i", str(clip), "-c", "copy", "-f", "mp4",
        "-movflags", "frag_keyframe+empty_moov+default_base_moof", "-method", "POST", url,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, stderr
    # Without -frag_duration ffmpeg cuts one fragment per keyframe: one a second.
    await viewer.read_until(6)
    received = [i for i in viewer.parsed() if isinstance(i, MediaFragment)]
    assert len(received) == 6 and all(f.keyframe for f in received)
    assert sum(f.tracks[0].sample_count for f in received) == sum(f.tracks[0].sample_count for f in fragments)
    wrong = await client.post("/ingest/main-cam", params={"key": "bad"}, data=b"")
    assert wrong.status == 401
    garbage = await client.post("/ingest/main-cam", params={"key": key}, data=b"\x00\x00\x00\x08moof" * 2)
    assert garbage.status == 400 and (await garbage.json())["error"]["code"].startswith("media.")


async def test_viewer_gauge_is_exact_after_abrupt_disconnects(serve: Serve) -> None:
    client = await serve()
    sockets = [raw_viewer(client.port) for _ in range(100)]
    await asyncio.sleep(0.5)
    assert client.app[LIVE].programs["main"].viewer_count == 100
    assert (
        'forumcast_viewers{protocol="ws",stage="main"} 100.0' in await (await client.get("/metrics")).text()
    )
    for sock in sockets:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()  # RST, no closing handshake
    async with asyncio.timeout(5):
        while client.app[LIVE].programs["main"].viewer_count:
            await asyncio.sleep(0.05)
    assert 'forumcast_viewers{protocol="ws",stage="main"} 0.0' in await (await client.get("/metrics")).text()


async def test_preview_needs_a_producer_and_closed_stage_an_invite(serve: Serve) -> None:
    client = await serve()
    assert (await client.get("/ws/watch/input/main-cam")).status == 401
    assert (await client.get("/ws/watch/input/main-cam", headers=auth("producer", "forum-a"))).status == 403
    preview = await client.ws_connect("/ws/watch/input/main-cam", headers=auth("producer", "main"))
    await preview.close()
    assert (await client.get("/ws/watch/closed")).status == 401
    assert (await client.get("/ws/watch/closed", headers=auth("viewer:main"))).status == 403
    invited = await client.ws_connect("/ws/watch/closed", headers=auth("viewer:closed"))
    now = json.loads((await invited.receive()).data)
    assert now["type"] == "now" and now["stage"] == "closed"
    await invited.close()
    assert (await client.get("/ws/watch/nowhere")).status == 404


def raw_viewer(
    port: int, *, receive_buffer: int | None = None, path: str = "/ws/watch/main"
) -> socket.socket:
    """A WebSocket viewer as a bare socket that reads only when the test says so."""
    sock = socket.socket()
    if receive_buffer is not None:  # a tiny window makes the server's queue grow at once
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.connect(("127.0.0.1", port))
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    return sock


async def read_raw(
    sock: socket.socket, *, until: Callable[[list[tuple[int, bytes]]], bool] | None = None
) -> list[tuple[int, bytes]]:
    """Read a raw viewer's socket until ``until(frames)`` holds or the connection ends (10 s at most)."""
    sock.setblocking(False)
    raw = b""
    async with asyncio.timeout(10):
        while True:
            try:
                chunk = sock.recv(1 << 20)
            except BlockingIOError:
                if until is not None and until(read_raw_frames(raw.split(b"\r\n\r\n", 1)[-1])):
                    break
                await asyncio.sleep(0.01)
                continue
            except ConnectionError:
                break
            if not chunk:
                break
            raw += chunk
    return read_raw_frames(raw.split(b"\r\n\r\n", 1)[1])


def on_air_stream(frames: list[tuple[int, bytes]]) -> list[bytes]:
    """The binary messages since the last ``init``/``reinit`` event (the source that went on
    air then: its init segment, then its fragments)."""
    starts = [
        at for at, (op, p) in enumerate(frames) if op == 1 and json.loads(p)["type"] in ("init", "reinit")
    ]
    return [p for op, p in frames[starts[-1] + 1 if starts else len(frames) :] if op == 2]


def read_raw_frames(data: bytes) -> list[tuple[int, bytes]]:
    """Unmasked server WebSocket frames (opcode, payload) from a raw byte stream."""
    frames, at = [], 0
    while at + 2 <= len(data):
        opcode, size, head = data[at] & 0x0F, data[at + 1] & 0x7F, 2
        if size == 126:
            size, head = int.from_bytes(data[at + 2 : at + 4], "big"), 4
        elif size == 127:
            size, head = int.from_bytes(data[at + 2 : at + 10], "big"), 10
        if at + head + size > len(data):
            break
        frames.append((opcode, data[at + head : at + head + size]))
        at += head + size
    return frames


async def test_throttled_viewer_skips_to_keyframes_and_others_get_everything(
    serve: Serve, clip: Path
) -> None:

    client = await serve_on_air(serve, send_budget=64 * 1024, max_behind=60)
    init, fragments = clip_items(clip)
    normal = await watcher(client)
    # A viewer that reads nothing: a tiny receive window, so the server's queue grows.
    slow = raw_viewer(client.port, receive_buffer=4096)
    await asyncio.sleep(0.2)
    pub = await publisher(client, "main-cam")
    reading = asyncio.create_task(normal.read_until(6 * len(fragments), timeout=20))
    for _ in range(6):  # a new init each time: the input splices, the timeline continues
        await pub.send_bytes(init.data)
        for fragment in fragments:  # faster than real time, but not all in one message
            await pub.send_bytes(fragment.data)
            await asyncio.sleep(0.01)
    await reading
    got_normal = [i for i in normal.parsed() if isinstance(i, MediaFragment)]
    assert len(got_normal) == 6 * len(fragments)  # nobody else lost anything
    metrics = await (await client.get("/metrics")).text()
    dropped = next(
        float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith('forumcast_relay_dropped_fragments_total{stage="main"}')
    )
    assert dropped > 0
    # Now the slow viewer reads what it was sent: after every gap comes a keyframe.
    frames = await read_raw(
        slow, until=lambda frames: len(on_air_stream(frames)) >= 1 + len(got_normal) - dropped
    )
    parser = Fmp4Parser()
    got_slow = [i for p in on_air_stream(frames) for i in parser.feed(p) if isinstance(i, MediaFragment)]
    assert len(got_slow) == len(got_normal) - dropped
    previous = None
    for fragment in got_slow:
        if previous is None or fragment.sequence_number != previous + 1:
            assert fragment.keyframe, f"fragment {fragment.sequence_number} after a gap is not a keyframe"
        previous = fragment.sequence_number
    slow.close()
    await pub.close()


async def test_viewer_behind_too_long_is_closed_with_1008(serve: Serve, clip: Path) -> None:

    client = await serve_on_air(serve, send_budget=8 * 1024, max_behind=0.3)
    slow = raw_viewer(client.port, receive_buffer=4096)
    await asyncio.sleep(0.2)
    (viewer,) = client.app[LIVE].programs["main"].fanout.viewers
    pub = await publisher(client, "main-cam")
    data = clip.read_bytes()
    async with asyncio.timeout(10):
        while not viewer.gone:  # until the server gives up on it
            await pub.send_bytes(data)
            await asyncio.sleep(0.1)
    # The viewer wakes up and reads its queue: at the end are the error and the close frame,
    # then the server drops the connection.
    frames = await read_raw(slow)  # until the server drops the connection
    async with asyncio.timeout(5):
        while client.app[LIVE].programs["main"].viewer_count:
            await asyncio.sleep(0.05)
    assert any(op == 1 and b"live.too_slow" in p for op, p in frames)
    close = [p for op, p in frames if op == 8]
    assert close and int.from_bytes(close[0][:2], "big") == 1008
    slow.close()
    await pub.close()


async def test_publisher_stats_and_viewer_count_events(serve: Serve, clip: Path) -> None:
    client = await serve_on_air(serve)
    viewers = [await watcher(client) for _ in range(3)]
    pub = await publisher(client, "main-cam")

    async def keep_publishing() -> None:
        # Stats come every 2 s and measure the bitrate over the last 2 s: one clip sent in a
        # burst could fall just outside that window.
        while True:
            await pub.send_bytes(clip.read_bytes())
            await asyncio.sleep(0.5)

    publishing = asyncio.create_task(keep_publishing())
    try:
        async with asyncio.timeout(8):
            while True:  # the first stats may come before any fragment was parsed
                message = json.loads((await pub.receive()).data)
                if message["type"] == "stats" and message["bitrate"] > 0:
                    break
    finally:
        publishing.cancel()
    assert message["viewers"] == 3 and message["bitrate"] > 0 and message["fragment_age"] >= 0
    await viewers[0].read_until(1)
    async with asyncio.timeout(5):
        while not any(e["type"] == "viewers" for e in viewers[0].events):
            message = await viewers[0].ws.receive()
            if message.type == aiohttp.WSMsgType.TEXT:
                viewers[0].events.append(json.loads(message.data))
    counts = [e["count"] for e in viewers[0].events if e["type"] == "viewers"]
    assert counts[-1] == 3
    inputs = await (await client.get("/api/v1/inputs", headers=auth("producer", "main"))).json()
    main_cam = next(i for i in inputs["inputs"] if i["id"] == "main-cam")
    assert main_cam["state"] == "live" and main_cam["publisher"]["kind"] == "ws"
    assert main_cam["tracks"][0] == {"kind": "video", "codec": "avc1.42c00d", "width": 320, "height": 240}
    assert main_cam["gop_seconds"] == 1.0 and main_cam["stream_key"] == client.app[STREAM_KEYS].key(
        "main-cam"
    )
    assert {i["id"] for i in inputs["inputs"]} == {"main-cam", "stern-uk"}  # only its stage's inputs
    assert (await client.get("/api/v1/inputs")).status == 401
    assert (await client.get("/api/v1/inputs", headers=auth("viewer:closed"))).status == 403
    await pub.close()


async def test_a_stuck_viewer_does_not_delay_the_others(serve: Serve, clip: Path) -> None:
    """Fragments paced at 200 ms: the other viewer's delivery delay is the same with a stuck
    viewer in the audience (whose queue is full and who is skipping) as without one."""
    import time

    client = await serve_on_air(serve, send_budget=64 * 1024, max_behind=60)
    init, fragments = clip_items(clip)
    normal = await watcher(client)
    pub = await publisher(client, "main-cam")
    await pub.send_bytes(init.data)

    async def paced(batch: list[MediaFragment]) -> list[float]:
        delays = []
        for fragment in batch:
            sent = time.monotonic()
            await pub.send_bytes(fragment.data)
            before = len(normal.binary)
            await normal.read_until(before)  # the next binary message
            delays.append(time.monotonic() - sent)
            await asyncio.sleep(0.2)
        return sorted(delays)

    # main-cam goes on air at its first keyframe (after the slate): its init, then the fragment.
    await pub.send_bytes(fragments[0].data)
    await normal.read_until(1)
    alone = await paced(fragments[1:11])
    stuck = raw_viewer(client.port, receive_buffer=4096)
    try:
        await asyncio.sleep(0.2)
        # Fill the stuck viewer's queue (and the kernel's buffers) past its budget while the
        # other viewer reads along.
        reading = asyncio.create_task(normal.read_until(11 + 10 * len(fragments)))
        for _ in range(10):
            await pub.send_bytes(init.data)
            for fragment in fragments:
                await pub.send_bytes(fragment.data)
                await asyncio.sleep(0.005)
        await reading
        with_stuck = await paced(fragments[:10])  # (timestamps go back; the relay does not care)
        lagging = [v for v in client.app[LIVE].programs["main"].fanout.viewers if v.gate.dropped]
        assert len(lagging) == 1 and lagging[0].queued() > 0  # one viewer really is stuck and skipping
        # Medians: one scheduling hiccup of a busy CI machine is not the stuck viewer's doing.
        assert with_stuck[len(with_stuck) // 2] < 0.05 and alone[len(alone) // 2] < 0.05
        assert with_stuck[len(with_stuck) // 2] - alone[len(alone) // 2] < 0.01
        assert with_stuck[-1] < max(0.05, alone[-1]) + 0.05
    finally:
        stuck.close()  # also when an assertion fails: a leaked socket fails a later test
    await pub.close()
