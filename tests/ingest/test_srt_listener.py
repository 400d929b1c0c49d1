"""server/ingest/srt_listener.py against the real libsrt and real callers: several ffmpeg
publishers at once, each on its own connection with its own streamid and whole TS packets;
refusals with the code the caller sees; passphrases per connection; srt-live-transmit's
bytes received exactly; kicking one publisher; a loop that falls behind; stop() with
publishers connected, leaving no thread behind."""

from __future__ import annotations

import asyncio
import io
import socket
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import av
import pytest

from server.errors import SrtError
from server.ingest import srt_lib
from server.ingest.srt_listener import Admission, ListenerState, Refusal, SrtListener
from tests.ingest.srt_support import (
    Caller,
    Recorder,
    ffmpeg_publish,
    free_udp_port,
    library,
    srt_live_transmit_caller,
    srt_threads,
    ts_packets,
)

Admit = Callable[[str, str], Admission | Refusal]


def admit_all(_streamid: str, _peer: str) -> Admission:
    return Admission()


class Bench:
    """Listeners and callers of one test, all stopped or killed at its end."""

    def __init__(self) -> None:
        self.listeners: list[SrtListener] = []
        self.callers: list[Caller] = []

    async def listen(
        self, admit: Admit = admit_all, recorder: Recorder | None = None, **limits: Any
    ) -> tuple[SrtListener, Recorder]:
        library()
        recorder = recorder or Recorder()
        listener = SrtListener(
            "127.0.0.1",
            0,
            admit=admit,
            on_open=recorder.on_open,
            on_data=recorder.on_data,
            on_close=recorder.on_close,
            loop=asyncio.get_running_loop(),
            **limits,
        )
        await listener.start()
        self.listeners.append(listener)
        return listener, recorder

    async def ffmpeg(self, listener: SrtListener, streamid: str, **options: Any) -> Caller:
        caller = await ffmpeg_publish(listener.port, streamid, **options)
        self.callers.append(caller)
        return caller

    async def slt(self, listener: SrtListener, streamid: str) -> Caller:
        caller = await srt_live_transmit_caller(listener.port, streamid)
        self.callers.append(caller)
        return caller

    async def close(self) -> None:
        for caller in self.callers:
            if caller.process.returncode is None:
                caller.process.kill()
                await caller.process.wait()
        for listener in self.listeners:
            await listener.stop()


@pytest.fixture
async def bench() -> AsyncIterator[Bench]:
    bench = Bench()
    yield bench
    await bench.close()


def video_frames(ts: bytes) -> int:
    """H.264 frames an independent demuxer (PyAV) finds in the received TS."""
    with av.open(io.BytesIO(ts), format="mpegts") as container:
        return sum(1 for packet in container.demux(video=0) if packet.size)


def pids(ts: bytes) -> set[int]:
    return {((ts[i + 1] & 0x1F) << 8) | ts[i + 2] for i in range(0, len(ts), 188)}


async def test_two_ffmpeg_publishers_at_once_each_on_its_own_connection(bench: Bench) -> None:
    asked: list[tuple[str, str]] = []

    def admit(streamid: str, peer: str) -> Admission:
        asked.append((streamid, peer))
        return Admission()

    listener, got = await bench.listen(admit)
    first = "#!::r=stage1-cam,k=K1,m=publish"
    callers = [await bench.ffmpeg(listener, first), await bench.ffmpeg(listener, "plain-key-2")]
    results = [await caller.finish() for caller in callers]
    assert [code for code, _ in results] == [0, 0], results
    await got.wait_for(lambda: len(got.closed) == 2)

    assert sorted(streamid for streamid, _ in asked) == sorted([first, "plain-key-2"])
    assert all(peer.startswith("127.0.0.1:") for _, peer in asked)
    a, b = got.conn_of(first), got.conn_of("plain-key-2")
    assert a != b
    assert got.peers[a] != got.peers[b]  # two callers, two source ports
    for conn in (a, b):
        assert got.in_order(conn) == ["open", "data", "close"]
        assert got.closed[conn] == "the publisher disconnected"
        data = bytes(got.data[conn])
        assert ts_packets(data) > 100
        assert {0x0000, 0x1000, 0x0100} <= pids(data)  # PAT, ffmpeg's PMT and video PIDs
        assert 40 <= video_frames(data) <= 50  # 2 s at 25 fps; the last few may not make it
    assert listener.connections == 0


async def test_a_refused_caller_sees_the_code_and_is_never_opened(bench: Bench) -> None:
    refusals = {
        "#!::r=cam,k=WRONG": Refusal(1401, "wrong key"),
        "#!::r=nope,k=K": Refusal(1404, "no such input"),
    }
    listener, got = await bench.listen(lambda streamid, _peer: refusals[streamid])
    callers = [await bench.ffmpeg(listener, streamid) for streamid in refusals]
    (code_401, stderr_401), (code_404, stderr_404) = [await caller.finish() for caller in callers]
    assert code_401 != 0 and "PREDEFINED:401" in stderr_401
    assert code_404 != 0 and "PREDEFINED:404" in stderr_404
    assert got.events == []


async def test_passphrases_are_per_connection(bench: Bench) -> None:
    secret = "correct-horse-battery"

    def admit(streamid: str, _peer: str) -> Admission:
        return Admission(passphrase=secret if streamid.startswith("enc") else "")

    listener, got = await bench.listen(admit)
    right = await bench.ffmpeg(listener, "enc-right", passphrase=secret, pbkeylen=32)
    wrong = await bench.ffmpeg(listener, "enc-wrong", passphrase="battery-horse-correct")
    missing = await bench.ffmpeg(listener, "enc-missing")
    plain = await bench.ffmpeg(listener, "plain")
    unexpected = await bench.ffmpeg(listener, "plain-but-encrypted", passphrase=secret)

    assert (await right.finish())[0] == 0
    assert (await plain.finish())[0] == 0
    code, stderr = await wrong.finish()
    assert code != 0 and "BADSECRET" in stderr
    code, stderr = await missing.finish()
    assert code != 0 and "UNSECURE" in stderr
    code, stderr = await unexpected.finish()
    assert code != 0 and "UNSECURE" in stderr
    await got.wait_for(lambda: len(got.closed) == 2)
    assert sorted(got.streamids.values()) == ["enc-right", "plain"]
    for conn in got.streamids:
        assert 40 <= video_frames(bytes(got.data[conn])) <= 50  # decrypted in full, the other unaffected


async def test_srt_live_transmit_bytes_arrive_exactly(bench: Bench) -> None:
    listener, got = await bench.listen(
        lambda streamid, _peer: Admission() if streamid == "slt" else Refusal(1401, "wrong key")
    )
    payload = b"".join(b"\x47" + n.to_bytes(4, "big") + bytes(183) for n in range(700))
    caller = await bench.slt(listener, "slt")
    await caller.wait_for_line("SRT target connected")  # what it reads before is dropped
    await caller.feed(payload)
    await got.wait_for(lambda: sum(len(data) for data in got.data.values()) >= len(payload))
    await caller.interrupt()
    await got.wait_for(lambda: len(got.closed) == 1)
    (conn,) = got.streamids
    assert got.streamids[conn] == "slt"
    assert bytes(got.data[conn]) == payload
    assert got.closed[conn] == "the publisher disconnected"

    refused = await bench.slt(listener, "not-slt")
    _, stderr = await refused.finish()  # it exits 0 even so
    assert "Application-defined rejection reason" in stderr
    assert list(got.streamids.values()) == ["slt"]


async def test_close_connection_kicks_one_publisher_only(bench: Bench) -> None:
    listener, got = await bench.listen()
    await bench.ffmpeg(listener, "kicked", seconds=30)
    await bench.ffmpeg(listener, "stays", seconds=30)
    await got.wait_for(lambda: len(got.data) == 2 and all(len(d) > 10_000 for d in got.data.values()))
    kicked, stays = got.conn_of("kicked"), got.conn_of("stays")
    listener.close_connection(kicked, "taken over by another publisher")
    await got.wait_for(lambda: kicked in got.closed)
    assert got.closed[kicked] == "taken over by another publisher"
    kicked_bytes, stays_bytes = len(got.data[kicked]), len(got.data[stays])
    await got.wait_for(lambda: len(got.data[stays]) > stays_bytes + 20_000)
    assert len(got.data[kicked]) == kicked_bytes
    assert got.in_order(kicked) == ["open", "data", "close"]
    assert stays not in got.closed
    assert listener.connections == 1


class BreaksOnData(Recorder):
    def on_data(self, conn: int, payload: bytes) -> None:
        if self.streamids[conn] == "breaks":
            raise ValueError("cannot demux this")
        super().on_data(conn, payload)


async def test_a_callback_that_raises_closes_its_own_connection_only(bench: Bench) -> None:
    listener, got = await bench.listen(recorder=BreaksOnData())
    await bench.ffmpeg(listener, "breaks", seconds=30)
    await bench.ffmpeg(listener, "works", seconds=30)
    await got.wait_for(lambda: len(got.closed) == 1 and len(got.data) == 2)
    breaks, works = got.conn_of("breaks"), got.conn_of("works")
    assert got.closed == {breaks: "the application failed: ValueError('cannot demux this')"}
    assert got.in_order(breaks) == ["open", "close"]
    before = len(got.data[works])
    await got.wait_for(lambda: len(got.data[works]) > before + 20_000)
    listener.close_connection(breaks, "again")  # closed already: nothing happens
    listener.close_connection(999, "never was")
    assert works not in got.closed


async def test_a_publisher_the_loop_cannot_keep_up_with_is_closed(bench: Bench) -> None:
    listener, got = await bench.listen(max_queued=1000)  # less than one message batch
    await bench.ffmpeg(listener, "fast")
    await got.wait_for(lambda: len(got.closed) == 1)
    (conn,) = got.closed
    assert got.closed[conn] == "too slow: more than 1000 bytes waiting to be handled"
    assert got.in_order(conn) == ["open", "close"]


async def test_admit_that_raises_rejects_and_the_listener_goes_on(bench: Bench) -> None:
    def admit(streamid: str, _peer: str) -> Admission:
        if streamid == "boom":
            raise RuntimeError("the key store is down")
        return Admission()

    listener, got = await bench.listen(admit)
    code, stderr = await (await bench.ffmpeg(listener, "boom")).finish()
    assert code != 0 and "PREDEFINED:500" in stderr
    code, _ = await (await bench.ffmpeg(listener, "fine", seconds=1)).finish()
    assert code == 0
    await got.wait_for(lambda: len(got.closed) == 1)
    assert list(got.streamids.values()) == ["fine"]


async def test_max_connections_refuses_the_next_caller(bench: Bench) -> None:
    listener, got = await bench.listen(max_connections=1)
    await bench.ffmpeg(listener, "first", seconds=30)
    await got.wait_for(lambda: len(got.streamids) == 1)
    code, stderr = await (await bench.ffmpeg(listener, "second")).finish()
    assert code != 0 and "PREDEFINED:402" in stderr
    assert list(got.streamids.values()) == ["first"]


async def test_stop_with_publishers_connected_leaves_nothing_running(bench: Bench) -> None:
    assert srt_threads() == []
    listener, got = await bench.listen()
    assert srt_threads() != []
    callers = [await bench.ffmpeg(listener, name, seconds=30) for name in ("one", "two")]
    await got.wait_for(lambda: len(got.data) == 2 and all(len(d) > 5_000 for d in got.data.values()))

    await listener.stop()
    # Every on_close was delivered before stop() returned.
    assert got.closed == {conn: "the SRT listener stopped" for conn in got.streamids}
    assert listener.state is ListenerState.STOPPED
    assert not [t for t in threading.enumerate() if t.name.startswith("srt-listener")]
    assert srt_threads() == []  # srt_cleanup() joined libsrt's own threads
    for caller in callers:  # the publishers were told: they stop sending long before 30 s
        code, _ = await caller.finish(timeout=15)
        assert code != 0
    await listener.stop()  # a second stop() is harmless


async def test_a_taken_port_is_a_clear_error(bench: Bench) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        listener = SrtListener(
            "127.0.0.1", port, admit=admit_all, on_open=print, on_data=print, on_close=print,
            loop=asyncio.get_running_loop(),
        )  # fmt: skip
        with pytest.raises(SrtError) as caught:
            await listener.start()
    assert caught.value.code == "srt.bind_failed"
    assert f"127.0.0.1:{port}" in caught.value.message

    first, _ = await bench.listen()
    second = SrtListener(
        "127.0.0.1", first.port, admit=admit_all, on_open=print, on_data=print, on_close=print,
        loop=asyncio.get_running_loop(),
    )  # fmt: skip
    with pytest.raises(SrtError) as caught:
        await second.start()
    assert caught.value.code == "srt.bind_failed"
    await first.stop()
    assert srt_threads() == []  # the failed starts released the library too


async def test_a_fixed_port_and_the_answers_to_bad_settings() -> None:
    port = free_udp_port()
    listener = SrtListener(
        "localhost", port, admit=admit_all, on_open=print, on_data=print, on_close=print,
        loop=asyncio.get_running_loop(),
    )  # fmt: skip
    await listener.start()
    try:
        assert listener.port == port
        with pytest.raises(RuntimeError, match="running"):
            await listener.start()
    finally:
        await listener.stop()
    with pytest.raises(SrtError, match="10 to 79 characters"):
        Admission(passphrase="short")
    with pytest.raises(ValueError, match="1000 or more"):
        Refusal(srt_lib.SRT_REJC_PREDEFINED - 1, "internal codes are libsrt's")
