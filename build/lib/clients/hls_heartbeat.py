"""What makes the server count an LL-HLS player as a viewer: its heartbeat.

Playlists and media carry nothing per viewer, so a player says it is watching: it asks once
for a viewer id signed by the server (``POST /live/{stage}/viewer-id`` → ``{"id",
"interval"}``) and posts ``{"id"}`` to ``/live/{stage}/heartbeat`` every ``interval``
seconds while it plays. Both URLs sit beside the multivariant playlist and take its query
(a closed stage's ``token``). :func:`keep_counted` does that until it is cancelled; it never
raises for what the server or the network does (a refused id is asked for again, anything
else is tried again an interval later), since playback goes on without it.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit, urlunsplit

import aiohttp

#: Wait before trying again when the server gave no interval (it did not answer, or refused).
RETRY_AFTER = 5.0


def beside(playlist_url: str, name: str) -> str:
    """The URL ``name`` in the multivariant playlist's folder, with the playlist's query."""
    parts = urlsplit(playlist_url)
    folder = parts.path.rsplit("/", 1)[0]
    return urlunsplit((parts.scheme, parts.netloc, f"{folder}/{name}", parts.query, ""))


async def keep_counted(session: aiohttp.ClientSession, playlist_url: str) -> None:
    """Heartbeats for the playback of ``playlist_url`` until cancelled."""
    id_url, beat_url = beside(playlist_url, "viewer-id"), beside(playlist_url, "heartbeat")
    viewer: str | None = None
    interval = RETRY_AFTER
    while True:
        try:
            if viewer is None:
                async with session.post(id_url) as response:
                    if response.status == 201:
                        body = await response.json()
                        viewer, interval = str(body["id"]), float(body["interval"])
                    elif response.status == 429:
                        interval = float(response.headers.get("Retry-After", RETRY_AFTER))
            if viewer is not None:
                async with session.post(beat_url, json={"id": viewer}) as response:
                    if response.status == 422:  # not (any more) an id of this server: a new one next time
                        viewer = None
        except (aiohttp.ClientError, TimeoutError, ValueError, KeyError):
            pass  # playback goes on; the next beat tries again
        await asyncio.sleep(interval)
