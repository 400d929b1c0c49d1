"""No per-viewer parameter in any LL-HLS URL: two players, each with its own signed viewer id
and heartbeats, read the multivariant playlist, the media playlist and every URL in them,
and get the same URLs and the same bytes. On a closed stage the only difference is the
``token`` each carries, which is its invitation's (one per invitation, shared by everyone
it was given to), never anything per viewer."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from urllib.parse import urljoin

import aiohttp

from tests.conftest import TOKENS, Serve
from tests.live.test_hls_http import newest


def uris(playlist: str) -> list[str]:
    """Every URI a playlist names, in order: tag attributes and URI lines."""
    found = re.findall(r'URI="([^"]+)"', playlist)
    return found + [ln for ln in playlist.splitlines() if ln and not ln.startswith("#")]


class Player:
    def __init__(self, base: str, name: str, query: str = "") -> None:
        self.base, self.name, self.query = base, name, query
        self.session = aiohttp.ClientSession(headers={"User-Agent": name}, cookie_jar=aiohttp.CookieJar())
        self.viewer = ""

    async def read(self, url: str) -> bytes:
        async with self.session.get(url) as response:
            assert response.status == 200, (self.name, url, response.status)
            return await response.read()

    async def counted(self, stage: str) -> None:
        """A viewer id of its own, and a heartbeat with it (as our players do)."""
        url = f"{self.base}/live/{stage}/viewer-id{self.query}"
        async with self.session.post(url) as response:
            assert response.status == 201
            self.viewer = (await response.json())["id"]
        url = f"{self.base}/live/{stage}/heartbeat{self.query}"
        async with self.session.post(url, json={"id": self.viewer}) as response:
            assert response.status == 204

    async def close(self) -> None:
        await self.session.close()


async def everything(one: Player, two: Player, stage: str) -> tuple[list[list[str]], dict[str, bytes]]:
    """Both players read the stage's playlists (the media one for the same next part) and
    every URL in them: ([each player's URLs], {URL: body}), checking both got the same bytes
    wherever their URLs are the same."""
    await asyncio.gather(one.counted(stage), two.counted(stage))
    assert one.viewer != two.viewer
    multivariant = f"{one.base}/live/{stage}/index.m3u8"
    first = await asyncio.gather(*(p.read(multivariant + p.query) for p in (one, two)))
    media = [urljoin(multivariant, uris(body.decode())[0]) for body in first]
    for _ in range(100):  # the slate makes parts and segments on its own
        if "#EXTINF" in (await one.read(media[0])).decode():
            break
        await asyncio.sleep(0.1)
    msn, index = newest((await one.read(media[0])).decode())
    block = f"_HLS_msn={msn}&_HLS_part={index + 1}"
    playlists = await asyncio.gather(
        *(
            p.read(f"{url}{'&' if '?' in url else '?'}{block}")
            for p, url in zip((one, two), media, strict=True)
        )
    )
    found: list[list[str]] = []
    bodies: dict[str, bytes] = {}
    for player, top, url, playlist in zip((one, two), first, media, playlists, strict=True):
        urls = [url] + [urljoin(url, u) for u in uris(playlist.decode())]
        assert top.decode().count(player.viewer) == playlist.decode().count(player.viewer) == 0
        found.append(urls)
        for each in urls[1:]:
            if "/part/" in each and each == urls[-1]:
                continue  # the preload hint: not made yet
            body = await player.read(each)
            assert bodies.setdefault(each, body) == body, each  # the same URL: the same bytes
    return found, bodies


async def test_two_players_of_a_public_stage_fetch_the_same_urls(serve: Serve) -> None:
    client = await serve(hls_target_duration=1.0)
    base = f"http://127.0.0.1:{client.port}"
    one, two = Player(base, "player-one"), Player(base, "player-two")
    try:
        (urls_one, urls_two), bodies = await everything(one, two, "main")
    finally:
        await one.close()
        await two.close()
    assert urls_one == urls_two  # byte for byte, in the same order
    assert all("?" not in u for u in urls_one), urls_one
    kinds = {k for u in urls_one for k in ("/init/", "/part/", "/seg/", "media.m3u8") if k in u}
    assert kinds == {"/init/", "/part/", "/seg/", "media.m3u8"}, urls_one
    assert len(bodies) >= 10


async def test_on_a_closed_stage_only_the_invitation_token_differs(serve: Serve) -> None:
    client = await serve(hls_target_duration=1.0)
    base = f"http://127.0.0.1:{client.port}"
    invitations = [
        TOKENS.issue("viewer:closed", ttl=timedelta(hours=1), subject=who) for who in ("guest-a", "guest-b")
    ]
    assert invitations[0] != invitations[1]
    one = Player(base, "player-one", f"?token={invitations[0]}")
    two = Player(base, "player-two", f"?token={invitations[1]}")
    try:
        (urls_one, urls_two), _ = await everything(one, two, "closed")
    finally:
        await one.close()
        await two.close()
    assert all(f"token={invitations[0]}" in u for u in urls_one), urls_one
    assert all(f"token={invitations[1]}" in u for u in urls_two), urls_two
    anonymous = [
        [u.replace(t, "TOKEN") for u in urls]
        for urls, t in zip((urls_one, urls_two), invitations, strict=True)
    ]
    assert anonymous[0] == anonymous[1]
    assert all(u.endswith("?token=TOKEN") for u in anonymous[0]), anonymous[0]
