"""LL-HLS over real HTTP: blocking reloads, preload hints, refusals, cache headers, closed
stages, and ffmpeg's HLS demuxer decoding across switches."""

from __future__ import annotations

import asyncio
import itertools
import re
import subprocess
import time
from typing import Any

import av

from server.clock import ManualClock
from server.http.hls_routes import LIVE_PLAYLIST
from server.http.keys import LIVE, STREAM_KEYS
from tests.conftest import Serve, at, auth, ffmpeg
from tests.live.streams import LoopPublisher, clip
from tests.support.hls_playlist import parse_media_playlist, parse_multivariant_playlist

MORNING = "2020-12-06T09:30:00+08:00"  # the opening: main-cam on the main program


def url(client: Any, input_id: str) -> str:
    key = client.app[STREAM_KEYS].key(input_id)
    return f"ws://127.0.0.1:{client.port}/ws/publish/{input_id}?key={key}&takeover=1"


async def media_url(client: Any, stage: str = "main", **params: str) -> str:
    response = await client.get(f"/live/{stage}/index.m3u8", params=params)
    assert response.status == 200, await response.text()
    text = await response.text()
    parse_multivariant_playlist(text)
    line = next(ln for ln in text.splitlines() if ln.startswith("media.m3u8"))
    return f"/live/{stage}/{line}"


def newest(text: str) -> tuple[int, int]:
    """(msn, part index) of the newest part listed."""
    sequence = int(re.search(r"#EXT-X-MEDIA-SEQUENCE:(\d+)", text).group(1))  # type: ignore[union-attr]
    msn, index = sequence, -1
    for line in text.splitlines():
        if line.startswith("#EXT-X-PART:"):
            index += 1
        elif line.startswith("#EXTINF"):
            msn, index = msn + 1, -1
    return msn, index


async def test_blocking_reload_preload_hint_and_refusals(serve: Serve) -> None:
    client = await serve(clock=ManualClock(at(MORNING), rate=1.0), stall_after=60.0, hls_target_duration=1.0)
    # GOP = 5 parts of 200 ms: no short part inside a segment (RFC 8216bis 4.4.4.9)
    cam = LoopPublisher(url(client, "main-cam"), clip("CAM", 320, 180, 25, "aac"))
    await cam.start()
    try:
        playlist = await media_url(client)
        assert "?" not in playlist  # nothing per viewer in a public stage's URLs
        for _ in range(100):
            text = await (await client.get(playlist)).text()
            if text.count("#EXTINF") >= 2:
                break
            await asyncio.sleep(0.1)
        response = await client.get(playlist)
        assert response.headers["Content-Type"].startswith("application/vnd.apple.mpegurl")
        assert response.headers["Cache-Control"] == LIVE_PLAYLIST
        text = await response.text()
        assert parse_media_playlist(text).warnings == []  # the strict RFC 8216bis reading
        msn, index = newest(text)
        # The next part: answered as soon as it exists (a part is 200 ms), and it is listed.
        started = time.monotonic()
        response = await client.get(playlist, params={"_HLS_msn": str(msn), "_HLS_part": str(index + 1)})
        waited = time.monotonic() - started
        assert response.status == 200 and waited < 1.0, waited
        assert response.headers["Cache-Control"] == "public, max-age=60"
        assert newest(await response.text()) >= (msn, index + 1)
        # The preload hint: held until that part exists, then its bytes.
        text = await response.text()
        hint = re.search(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="([^"]+)"', text).group(1)  # type: ignore[union-attr]
        part = await client.get(f"/live/main/{hint}")
        assert part.status == 200 and part.headers["Content-Type"] == "video/iso.segment"
        assert part.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        body = await part.read()
        assert b"moof" in body[:64] and b"mdat" in body
        # Too far ahead: 400 at once.
        response = await client.get(playlist, params={"_HLS_msn": str(msn + 5)})
        assert response.status == 400 and (await response.json())["error"]["code"] == "hls.too_far_ahead"
        for bad in ({"_HLS_msn": "x"}, {"_HLS_part": "1"}, {"_HLS_msn": "-1"}):
            assert (await client.get(playlist, params=bad)).status == 400
        # The input stalls (still connected, stall_after is long): a wait times out with 503.
        cam.stall()
        await asyncio.sleep(0.3)
        msn, index = newest(await (await client.get(playlist)).text())
        started = time.monotonic()
        response = await client.get(playlist, params={"_HLS_msn": str(msn), "_HLS_part": str(index + 2)})
        assert response.status == 503 and 2.5 <= time.monotonic() - started <= 4.0
        # Media URLs from another run of the server, or gone, are 404s.
        assert (await client.get("/live/main/zzz/part/1.m4s")).status == 404
        epoch = client.app[LIVE].hls_epoch
        assert (await client.get(f"/live/main/{epoch}/seg/99999.m4s")).status == 404
        init = await client.get(f"/live/main/{epoch}/init/1.mp4")
        assert init.status == 200 and init.headers["Content-Type"] == "video/mp4"
        assert (await client.get("/live/nowhere/index.m3u8")).status == 404
    finally:
        await cam.kill()


async def test_closed_stages_need_the_token_on_every_url(serve: Serve) -> None:
    client = await serve()
    assert (await client.get("/live/closed/index.m3u8")).status == 401
    assert (await client.get("/live/closed/index.m3u8", headers=auth("viewer:main"))).status == 403
    token = auth("viewer:closed")["Authorization"].split()[1]
    playlist = await media_url(client, "closed", token=token)
    assert f"token={token}" in playlist
    for _ in range(50):
        text = await (await client.get(playlist)).text()
        if "#EXT-X-PART:" in text:
            break
        await asyncio.sleep(0.1)
    uris = re.findall(r'URI="([^"]+)"', text)
    assert uris and all(f"token={token}" in u for u in uris)
    first_part = next(u for u in uris if "/part/" in u)
    # Invited answers are private: no shared cache keeps them, no page of any origin reads them.
    origin = {"Origin": "https://elsewhere.example"}
    for path in ("index.m3u8?token=" + token, playlist.split("/live/closed/")[-1], first_part):
        response = await client.get(f"/live/closed/{path}", headers=origin)
        assert response.status == 200, path
        assert response.headers["Cache-Control"] == "private, no-store", path
        assert "Access-Control-Allow-Origin" not in response.headers, path
    public = await client.get(await media_url(client), headers=origin)
    assert public.headers["Access-Control-Allow-Origin"] == "*"
    assert public.headers["Cache-Control"] == LIVE_PLAYLIST
    epoch = client.app[LIVE].hls_epoch
    without = [first_part.split("?")[0], "media.m3u8", f"{epoch}/init/1.mp4", f"{epoch}/seg/0.m4s"]
    for path in without:
        response = await client.get(f"/live/closed/{path}")
        assert response.status == 401, path
        assert response.headers["Content-Type"].startswith("application/json")


async def test_hls_cors(serve: Serve) -> None:
    client = await serve(hls_cors_origins="https://player.example")
    playlist = await media_url(client)
    for path in ("/live/main/index.m3u8", playlist):
        response = await client.get(path, headers={"Origin": "https://player.example"})
        assert response.headers["Access-Control-Allow-Origin"] == "https://player.example"
        assert response.headers["Access-Control-Expose-Headers"] == "Content-Length"
        assert response.headers["Vary"] == "Origin"
        response = await client.get(path, headers={"Origin": "https://evil.example"})
        assert "Access-Control-Allow-Origin" not in response.headers and response.headers["Vary"] == "Origin"
    client = await serve()  # hls_cors_origins = "*"
    response = await client.get("/live/main/index.m3u8", headers={"Origin": "https://player.example"})
    assert response.headers["Access-Control-Allow-Origin"] == "*" and "Vary" not in response.headers


async def test_ffmpeg_reads_the_program_across_switches(serve: Serve, tmp_path: Any) -> None:
    """ffmpeg's HLS demuxer decodes 20 s that include switches (one with a new resolution,
    one to the slate) without an error, and its timestamps run on without jumps."""
    client = await serve(clock=ManualClock(at(MORNING), rate=1.0))
    cam = LoopPublisher(url(client, "main-cam"), clip("CAM", 320, 180, 12, "aac"))
    uk = LoopPublisher(url(client, "stern-uk"), clip("UK", 256, 144, 25, "aac"))
    await cam.start()
    await uk.start()
    producer = auth("producer", "main")
    recording = tmp_path / "program.ts"
    try:
        await asyncio.sleep(3.0)
        process = await asyncio.create_subprocess_exec(
            ffmpeg(), "-v", "error", "-i", f"http://127.0.0.1:{client.port}/live/main/index.m3u8",
            "-t", "20", "-map", "0", "-c", "copy", "-f", "mpegts", str(recording),
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        for source in ("stern-uk", "slate", "main-cam"):
            await asyncio.sleep(4.0)
            response = await client.post("/api/v1/stages/main/take", json={"input": source}, headers=producer)
            assert response.status == 200
        _, stderr = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0 and stderr.decode().strip() == ""
    finally:
        await cam.kill()
        await uk.kill()
    decoded = subprocess.run(
        [ffmpeg(), "-v", "error", "-i", str(recording), "-f", "null", "-"], capture_output=True, text=True
    )
    assert decoded.returncode == 0 and decoded.stderr.strip() == ""
    with av.open(str(recording)) as container:
        times = [float(p.dts * p.time_base) for p in container.demux(video=0) if p.dts is not None]
        sizes = {(f.width, f.height) for f in av.open(str(recording)).decode(video=0)}
    assert times[-1] - times[0] >= 15
    steps = [b - a for a, b in itertools.pairwise(times)]
    assert min(steps) > 0 and max(steps) < 0.5, (min(steps), max(steps))
    assert {(320, 180), (256, 144)} <= sizes  # both resolutions decoded
