"""Producer control over HTTP: take, auto, the program in the stage document, refusals;
closed stages' programs; tally and preview as publishers see them."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import timedelta
from typing import Any

import aiohttp
import pytest

from server.clock import ManualClock
from server.http.keys import STREAM_KEYS
from server.schedule.model import Event, InputDecl, InputKind
from tests.conftest import Serve, at, auth
from tests.live.streams import LoopPublisher, ProgramRecorder, clip

MORNING = "2020-12-06T09:30:00+08:00"  # the opening runs, on main-cam


def publisher_url(client: Any, input_id: str) -> str:
    key = client.app[STREAM_KEYS].key(input_id)
    return f"ws://127.0.0.1:{client.port}/ws/publish/{input_id}?key={key}"


async def program_of(client: Any, stage: str = "main", **headers: str) -> dict[str, Any] | None:
    body = await (await client.get(f"/api/v1/stages/{stage}", headers=headers)).json()
    return body.get("program")


async def test_take_and_auto_over_http(serve: Serve) -> None:
    client = await serve(clock=ManualClock(at(MORNING), rate=1.0))
    cam = LoopPublisher(publisher_url(client, "main-cam"), clip("CAM", 320, 180, 12, "aac"))
    uk = LoopPublisher(publisher_url(client, "stern-uk"), clip("UK", 256, 144, 25, "opus"))
    viewer = ProgramRecorder(await client.ws_connect("/ws/watch/main"))
    viewer.start()
    await cam.start()
    await uk.start()
    try:
        await viewer.wait_source("main-cam")
        program = await program_of(client)
        assert program is not None
        assert program["source"] == "main-cam" and program["mode"] == "auto"
        assert program["reason"] == "schedule" and program["session"] == "opening"
        assert program["slate"] is False and program["since"]

        producer = auth("producer", "main")
        response = await client.post("/api/v1/stages/main/take", json={"input": "stern-uk"}, headers=producer)
        assert response.status == 200
        taken = (await response.json())["program"]
        # Pending until stern-uk's next keyframe, then on air.
        assert taken["mode"] == "manual"
        assert taken["source"] == "stern-uk" or taken["pending"] == {"source": "stern-uk", "reason": "manual"}
        await viewer.wait_source("stern-uk")
        program = await program_of(client)
        assert program is not None and program["source"] == "stern-uk" and program["reason"] == "manual"
        # The viewers' "now" says what is on, and that it is not the slate.
        now = viewer.events("now")[-1]
        assert now["program"]["source"] == "stern-uk" and now["slate"] is False
        assert now["session"]["id"] == "opening"
        # Tally: stern-uk on air, main-cam off.
        await asyncio.sleep(0.2)
        assert uk.tallies()[-1] == {"type": "tally", "on_air": True, "preview": False, "stage": "main"}
        assert cam.tallies()[-1]["on_air"] is False

        response = await client.post("/api/v1/stages/main/auto", headers=producer)
        assert response.status == 200 and (await response.json())["program"]["mode"] == "auto"
        await viewer.wait_source("main-cam")
        # A take of what the schedule wants anyway, then auto: it stays on, now by schedule.
        await client.post("/api/v1/stages/main/take", json={"input": "main-cam"}, headers=producer)
        assert (await program_of(client) or {})["reason"] == "manual"
        response = await client.post("/api/v1/stages/main/auto", headers=producer)
        program = (await response.json())["program"]
        assert (program["source"], program["mode"], program["reason"]) == ("main-cam", "auto", "schedule")
        assert viewer.events("now")[-1]["program"]["reason"] == "schedule"

        # GET /api/v1/inputs: health and tally of each input.
        inputs = (await (await client.get("/api/v1/inputs", headers=producer)).json())["inputs"]
        by_id = {i["id"]: i for i in inputs}
        assert by_id["main-cam"]["up"] is True and by_id["main-cam"]["on_air"] is True
        assert by_id["stern-uk"]["on_air"] is False and by_id["stern-uk"]["gop_seconds"] == 1.0
        assert by_id["main-cam"]["gop_seconds"] == pytest.approx(0.48)
        assert by_id["main-cam"]["tracks"][0] == {
            "kind": "video",
            "codec": by_id["main-cam"]["tracks"][0]["codec"],
            "width": 320,
            "height": 180,
        }

        # A producer previewing stern-uk lights its PREVIEW tally.
        preview = await client.ws_connect("/ws/watch/input/stern-uk", headers=producer)
        await asyncio.sleep(0.3)
        assert uk.tallies()[-1]["preview"] is True
        await preview.close()
        await asyncio.sleep(0.3)
        assert uk.tallies()[-1]["preview"] is False
    finally:
        await viewer.stop()
        await cam.kill()
        await uk.kill()


async def test_refused_takes_change_nothing(serve: Serve) -> None:
    client = await serve(clock=ManualClock(at(MORNING), rate=1.0))
    cam = LoopPublisher(publisher_url(client, "main-cam"), clip("CAM", 320, 180, 12, "aac"))
    await cam.start()
    try:
        for _ in range(50):
            program = await program_of(client)
            if program is not None and program["source"] == "main-cam":
                break
            await asyncio.sleep(0.05)
        before = await program_of(client)
        assert before is not None and before["source"] == "main-cam"
        take = "/api/v1/stages/main/take"
        cases: list[tuple[str, dict[str, str], Any, int, str]] = [
            (take, {}, {"input": "stern-uk"}, 401, "auth.missing_token"),
            (take, {"Authorization": "Bearer nonsense"}, {"input": "stern-uk"}, 401, "auth.invalid_token"),
            (
                take,
                auth("producer", "main", ttl=timedelta(seconds=-5)),
                {"input": "main-cam"},
                401,
                "auth.expired_token",
            ),
            (take, auth("producer", "forum-a"), {"input": "main-cam"}, 403, "auth.forbidden"),
            (take, auth("viewer:main"), {"input": "main-cam"}, 403, "auth.forbidden"),
            (
                "/api/v1/stages/nowhere/take",
                auth("producer"),
                {"input": "main-cam"},
                404,
                "live.unknown_stage",
            ),
            (take, auth("producer", "main"), {"input": "forum-cam"}, 404, "live.unknown_input"),
            (take, auth("producer", "main"), {"input": "stern-uk"}, 409, "program.input_down"),
            (take, auth("producer", "main"), {}, 400, "program.bad_take"),
            (take, auth("producer", "main"), {"input": "main-cam", "cut": "soon"}, 400, "program.bad_take"),
            (take, auth("producer", "main"), ["main-cam"], 400, "program.bad_take"),
            ("/api/v1/stages/main/auto", {}, None, 401, "auth.missing_token"),
            ("/api/v1/stages/main/auto", auth("producer", "forum-a"), None, 403, "auth.forbidden"),
        ]
        for path, headers, body, status, code in cases:
            response = await client.post(path, json=body, headers=headers)
            payload = await response.json()
            assert (response.status, payload["error"]["code"]) == (status, code), (path, body, payload)
            assert payload["error"]["message"]
        response = await client.post(
            take, data=b"{not json", headers={**auth("producer", "main"), "Content-Type": "application/json"}
        )
        assert response.status == 400
        after = await program_of(client)
        assert after is not None
        assert (after["source"], after["mode"], after["since"]) == (
            before["source"],
            before["mode"],
            before["since"],
        )
    finally:
        await cam.kill()


def with_closed_inputs(event: Event) -> Event:
    """The fixture event with an input on the closed-door stage (for the return feed)."""
    stages = tuple(
        dataclasses.replace(
            s, inputs=(InputDecl("closed-cam", "closed", "Seminar camera", InputKind.CAMERA),)
        )
        if s.id == "closed"
        else s
        for s in event.stages
    )
    return dataclasses.replace(event, stages=stages)


async def test_closed_stage_programs_need_an_invitation(serve: Serve, event: Event) -> None:
    client = await serve(event=with_closed_inputs(event), clock=ManualClock(at(MORNING), rate=1.0))
    path = "/ws/watch/closed"
    keys = client.app[STREAM_KEYS]
    refusals = [
        ({}, {}, 401),
        ({"Authorization": "Bearer nonsense"}, {}, 401),
        (auth("viewer:closed", ttl=timedelta(seconds=-1)), {}, 401),
        (auth("viewer:main"), {}, 403),
        (auth("producer", "main"), {}, 403),
        ({}, {"key": keys.key("main-cam")}, 401),  # another stage's input key
        ({}, {"key": "wrong"}, 401),
    ]
    for headers, params, status in refusals:
        response = await client.get(path, headers=headers, params=params)
        # Refused as plain HTTP before any upgrade: JSON, no media byte.
        assert response.status == status, (headers, params)
        assert response.headers["Content-Type"].startswith("application/json")
        assert "error" in await response.json()
    # Invited, a producer of the stage, or the stage's own publisher key: each plays (the slate).
    for headers, params in (
        (auth("viewer:closed"), {}),
        (auth("producer", "closed"), {}),
        ({}, {"key": keys.key("closed-cam")}),
    ):
        ws = await client.ws_connect(path, headers=headers, params=params)
        got_init = got_fragment = False
        async with asyncio.timeout(10):
            while not got_fragment:
                message = await ws.receive()
                if message.type is aiohttp.WSMsgType.BINARY:
                    got_init = got_init or message.data[4:8] == b"ftyp"
                    got_fragment = got_init and message.data[4:8] in (b"moof", b"prft", b"styp")
                else:
                    assert message.type is aiohttp.WSMsgType.TEXT, message
        await ws.close()
    # Public listings show the closed stage without stream details; an invite sees its program.
    assert await program_of(client, "closed") is None
    listed = await (await client.get("/api/v1/stages")).json()
    assert all("program" not in s for s in listed["stages"] if s["id"] == "closed")
    invited = await program_of(client, "closed", **auth("viewer:closed"))
    assert invited is not None and invited["source"] == "slate" and invited["slate"] is True
    sessions = await (await client.get("/api/v1/sessions")).json()
    assert all(s["stage"] != "closed" for s in sessions["sessions"])
    text = await (await client.get("/api/v1/schedule.json")).text()
    assert '"closed"' not in json.dumps(json.loads(text)["schedule"]["conference"]["rooms"])


async def test_automation_follows_delays(serve: Serve) -> None:
    """The keynote (10:00, stern-uk, backup main-cam) delayed by 10 minutes: automation
    serves the opening until 10:10, then the keynote, on its backup while stern-uk is down,
    and on stern-uk as soon as it publishes."""
    clock = ManualClock(at("2020-12-06T09:55:00+08:00"), rate=1.0)
    client = await serve(clock=clock)
    cam = LoopPublisher(publisher_url(client, "main-cam"), clip("CAM", 320, 180, 12, "aac"))
    uk = LoopPublisher(publisher_url(client, "stern-uk"), clip("UK", 256, 144, 25, "opus"))
    viewer = ProgramRecorder(await client.ws_connect("/ws/watch/main"))
    viewer.start()
    await cam.start()
    try:
        await viewer.wait_source("main-cam")
        response = await client.post(
            "/api/v1/stages/main/delay", json={"minutes": 10}, headers=auth("producer", "main")
        )
        assert response.status == 200
        clock.set(at("2020-12-06T10:05:00+08:00"))  # the opening overruns
        await asyncio.sleep(0.3)
        program = await program_of(client)
        assert program is not None and (program["source"], program["session"]) == ("main-cam", "opening")
        clock.set(at("2020-12-06T10:10:00+08:00"))  # the delayed keynote starts
        for _ in range(200):  # the scheduler's wake-up: up to 10 s on a loaded machine
            program = await program_of(client)
            if program is not None and program["session"] == "keynote":
                break
            await asyncio.sleep(0.05)
        assert program is not None and (program["source"], program["session"]) == ("main-cam", "keynote")
        assert viewer.events("now")[-1]["session"]["id"] == "keynote"
        await uk.start()  # the remote link comes up: the keynote's own input
        await viewer.wait_source("stern-uk")
        program = await program_of(client)
        assert program is not None and program["reason"] == "schedule"
    finally:
        await viewer.stop()
        await cam.kill()
        await uk.kill()
