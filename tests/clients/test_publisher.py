"""``publish`` against a stand-in publish endpoint on loopback: reconnects, refusals, events."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from http import HTTPStatus

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response

from clients.connection import Backoff, Refused, Verdict
from clients.outbox import Item
from clients.publisher import Publisher, publish
from clients.source import Clip, split
from server.encoding.testpattern import PatternSettings, encode_clip
from server.media.fmp4 import Fmp4Parser
from server.media.types import InitSegment, MediaFragment

KEY = "stream-key"


@pytest.fixture(scope="module")
def pattern() -> Clip:
    """Two seconds, a keyframe every second fragment (GOP 10 frames, fragments of 5)."""
    return split(encode_clip("pub", 2.0, PatternSettings(width=320, height=180, gop=10)))


@dataclass
class Received:
    path: str
    items: list[InitSegment | MediaFragment] = field(default_factory=list)
    close_code: int | None = None


@dataclass
class FakeIngest:
    """forumcast's ``/ws/publish/{input}`` as far as a publisher can tell: checks the key,
    says the tally, parses what arrives; ``close_after`` ends connection *n* after that many
    fragments with a given close code."""

    url: str = ""
    connections: list[Received] = field(default_factory=list)
    close_after: dict[int, tuple[int, int, dict[str, object] | None]] = field(default_factory=dict)
    events: list[dict[str, object]] = field(default_factory=list)

    def check_key(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.headers.get("Authorization") != f"Bearer {KEY}":
            body = json.dumps({"error": {"code": "live.bad_key", "message": "wrong stream key"}})
            return connection.respond(HTTPStatus.UNAUTHORIZED, body)
        return None

    async def handler(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        received = Received(ws.request.path)
        self.connections.append(received)
        number = len(self.connections)
        parser = Fmp4Parser()
        await ws.send(json.dumps({"type": "tally", "on_air": True, "stage": "main"}))
        for event in self.events:
            await ws.send(json.dumps(event))
        try:
            async for message in ws:
                assert isinstance(message, bytes)
                received.items.extend(parser.feed(message))
                fragments = sum(isinstance(i, MediaFragment) for i in received.items)
                if number in self.close_after and fragments >= self.close_after[number][0]:
                    _, code, error = self.close_after[number]
                    if error is not None:
                        await ws.send(json.dumps(error))
                    await ws.close(code, "scripted")
                    break
        finally:
            received.close_code = ws.close_code


@contextlib.asynccontextmanager
async def running(ingest: FakeIngest) -> AsyncIterator[FakeIngest]:
    async with serve(ingest.handler, "127.0.0.1", 0, process_request=ingest.check_key) as server:
        port = server.sockets[0].getsockname()[1]
        ingest.url = f"ws://127.0.0.1:{port}/ws/publish/stern-uk"
        yield ingest


async def live(pattern: Clip, *, interval: float = 0.01) -> AsyncGenerator[Item, None]:
    """The clip as a fast live source: init, then a fragment every ``interval`` seconds."""
    yield pattern.init
    for fragment in pattern.fragments:
        await asyncio.sleep(interval)
        yield fragment


def fragments(received: Received) -> list[MediaFragment]:
    return [item for item in received.items if isinstance(item, MediaFragment)]


async def test_publishes_init_then_every_fragment_and_closes_at_the_end(pattern: Clip) -> None:
    async with running(FakeIngest()) as ingest:
        report = await publish(ingest.url, KEY, live(pattern))
    (received,) = ingest.connections
    assert received.path == "/ws/publish/stern-uk"
    assert received.items[0] == pattern.init
    assert [f.data for f in fragments(received)] == [f.data for f in pattern.fragments]
    assert received.close_code == 1000
    assert report.ended == "source ended"
    assert report.connections == 1
    assert report.on_air
    assert report.outbox is not None
    assert report.outbox.fragments_sent == len(pattern.fragments)
    assert report.outbox.fragments_dropped == 0


async def test_reconnects_with_takeover_and_resumes_at_a_keyframe(pattern: Clip) -> None:
    ingest = FakeIngest(close_after={1: (3, 1001, None)})
    statuses: list[str] = []
    async with running(ingest):
        report = await publish(
            ingest.url,
            KEY,
            live(pattern, interval=0.02),
            backoff=Backoff(initial=0.01),
            on_status=statuses.append,
        )
    first, second = ingest.connections
    assert "takeover" not in first.path
    assert second.path == "/ws/publish/stern-uk?takeover=1"
    assert isinstance(second.items[0], InitSegment)
    assert second.items[0].data == pattern.init.data
    resumed = fragments(second)
    assert resumed[0].keyframe
    assert resumed[-1].data == pattern.fragments[-1].data
    assert report.connections == 2
    assert report.ended == "source ended"
    assert statuses == ["server going away (scripted); reconnecting in 0.0 s"]


async def test_a_wrong_key_is_refused_without_retrying(pattern: Clip) -> None:
    async with running(FakeIngest()) as ingest:
        with pytest.raises(Refused, match=r"not authorised.*live\.bad_key: wrong stream key"):
            await publish(ingest.url, "wrong", live(pattern), backoff=Backoff(initial=0.01))
    assert ingest.connections == []


async def test_being_taken_over_stops_without_a_fight(pattern: Clip) -> None:
    ingest = FakeIngest(close_after={1: (2, 4409, None)})
    async with running(ingest):
        report = await publish(ingest.url, KEY, live(pattern), backoff=Backoff(initial=0.01))
    assert len(ingest.connections) == 1
    assert report.verdict is Verdict.TAKEN_OVER
    assert report.ended.startswith("another publisher took over")


async def test_refused_media_is_fatal_and_says_why(pattern: Clip) -> None:
    error = {"type": "error", "code": "media.missing_tfdt", "message": "a traf without tfdt"}
    ingest = FakeIngest(close_after={1: (1, 1007, error)})
    async with running(ingest):
        with pytest.raises(Refused, match=r"refused the media.*a traf without tfdt"):
            await publish(ingest.url, KEY, live(pattern), backoff=Backoff(initial=0.01))


async def test_without_reconnect_a_drop_ends_publishing(pattern: Clip) -> None:
    ingest = FakeIngest(close_after={1: (2, 1001, None)})
    async with running(ingest):
        report = await publish(ingest.url, KEY, live(pattern), reconnect=False)
    assert len(ingest.connections) == 1
    assert report.verdict is Verdict.RETRY
    assert report.ended.startswith("server going away")


async def test_stop_and_duration_close_cleanly(pattern: Clip) -> None:
    async with running(FakeIngest()) as ingest:
        report = await publish(ingest.url, KEY, live(pattern, interval=0.05), duration=0.2)
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(0.2, stop.set)
        stopped = await publish(ingest.url, KEY, live(pattern, interval=0.05), stop=stop)
    assert report.ended == stopped.ended == "stopped"
    assert [r.close_code for r in ingest.connections] == [1000, 1000]
    assert 0 < len(fragments(ingest.connections[0])) < len(pattern.fragments)


async def test_unreachable_servers_are_retried_until_stopped(pattern: Clip) -> None:
    statuses: list[str] = []
    report = await publish(
        "ws://127.0.0.1:9/ws/publish/x",
        KEY,
        live(pattern),
        duration=0.5,
        backoff=Backoff(initial=0.1),
        on_status=statuses.append,
    )
    assert report.connections == 0
    assert report.ended == "stopped"
    assert len(statuses) >= 2
    assert statuses[0].startswith("cannot connect")
    delays = [float(status.split("reconnecting in ")[1].removesuffix(" s")) for status in statuses]
    assert delays[:2] == [0.1, 0.2]  # doubling: nothing was sent in between


async def test_server_events_reach_the_caller(pattern: Clip) -> None:
    ingest = FakeIngest(events=[{"type": "stats", "bitrate": 1_020_000, "fragment_age": 0.21, "viewers": 12}])
    seen: list[dict[str, object]] = []
    async with running(ingest):
        await publish(ingest.url, KEY, live(pattern), on_event=seen.append)
    assert [event["type"] for event in seen[:2]] == ["tally", "stats"]


async def test_several_servers_a_drop_moves_on_to_the_next_with_takeover(pattern: Clip) -> None:
    first, second = FakeIngest(close_after={1: (3, 1001, None)}), FakeIngest()
    statuses: list[str] = []
    async with running(first), running(second):
        publisher = Publisher([first.url, second.url], KEY, live(pattern, interval=0.02))
        assert publisher.url == first.url
        report = await publisher.run(on_status=statuses.append)
    assert publisher.url == second.url
    assert report.url == second.url
    assert report.connections == 2
    assert report.ended == "source ended"
    assert len(first.connections) == 1
    (moved,) = second.connections
    assert moved.path == "/ws/publish/stern-uk?takeover=1"
    assert isinstance(moved.items[0], InitSegment)
    assert fragments(moved)[0].keyframe
    assert fragments(moved)[-1].data == pattern.fragments[-1].data
    assert statuses == [f"server going away (scripted); reconnecting to {second.url} in 0.0 s"]


async def test_several_servers_an_unreachable_one_is_skipped_without_waiting(pattern: Clip) -> None:
    statuses: list[str] = []
    async with running(FakeIngest()) as ingest:
        report = await publish(
            ["ws://127.0.0.1:9/ws/publish/stern-uk", ingest.url],
            KEY,
            live(pattern),
            backoff=Backoff(initial=5),
            on_status=statuses.append,
        )
    assert report.ended == "source ended"
    assert report.connections == 1
    (received,) = ingest.connections
    assert received.path == "/ws/publish/stern-uk?takeover=1"
    assert len(statuses) == 1
    assert statuses[0].startswith("cannot connect")
    assert statuses[0].endswith(f"; reconnecting to {ingest.url} in 0.0 s")  # not the 5 s backoff


async def test_several_unreachable_servers_back_off_once_per_round(pattern: Clip) -> None:
    statuses: list[str] = []
    report = await publish(
        ["ws://127.0.0.1:9/ws/publish/x", "ws://127.0.0.1:7/ws/publish/x"],
        KEY,
        live(pattern),
        duration=0.6,
        backoff=Backoff(initial=0.1),
        on_status=statuses.append,
    )
    assert report.connections == 0
    delays = [float(status.rsplit(" in ", 1)[1].removesuffix(" s")) for status in statuses]
    assert delays[:4] == [0.0, 0.1, 0.0, 0.2]
    assert [s.split("reconnecting to ")[1].split(" in ")[0] for s in statuses[:2]] == [
        "ws://127.0.0.1:7/ws/publish/x",
        "ws://127.0.0.1:9/ws/publish/x",
    ]
