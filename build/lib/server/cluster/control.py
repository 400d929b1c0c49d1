"""Control between instances over Redis pub/sub: events for all, requests to one.

Never media: pub/sub drops a subscriber that falls behind, which is fine for a ``now``
event (the state is also kept in a key, re-read after every reconnection) and fatal for a
stream. Two channels per instance: the event's ``events`` (program states from leaders,
schedule changes) and its own inbox ``to:{id}`` (a producer's command forwarded to the
stage's leader, and the leader's reply). A request waits :data:`REPLY_TIMEOUT` for its
reply; none means the leader died meanwhile (``cluster.no_leader``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from redis.exceptions import RedisError

from server.clock import Clock
from server.cluster.plane import Plane
from server.errors import CODES, ForumcastError

log = logging.getLogger("forumcast.cluster")

#: Seconds a forwarded command waits for the leader's reply.
REPLY_TIMEOUT = 2.0
#: Seconds between attempts to subscribe again after the connection broke.
RETRY_AFTER = 0.5

Handler = Callable[[dict[str, Any]], None]
Responder = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class Control:
    def __init__(
        self,
        plane: Plane,
        clock: Clock,
        *,
        on_event: Handler,
        on_request: Responder,
        on_reconnect: Callable[[], Awaitable[None]],
    ) -> None:
        self._plane = plane
        self._clock = clock
        self._on_event = on_event
        self._on_request = on_request
        self._on_reconnect = on_reconnect
        self._ids = itertools.count(1)
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.subscribed = asyncio.Event()

    async def run(self) -> None:
        """Listen forever (a supervised task), subscribing again whenever the connection breaks."""
        names = self._plane.names
        while True:
            pubsub = self._plane.redis.pubsub()
            try:
                await pubsub.subscribe(names.events, names.inbox(self._plane.instance))
                self.subscribed.set()
                await self._on_reconnect()
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        self._dispatch(message["data"])
            except (RedisError, OSError) as exc:
                self.subscribed.clear()
                log.warning("cluster: lost the control channel (%s); subscribing again", exc)
                await self._clock.sleep(RETRY_AFTER)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()

    def _dispatch(self, raw: bytes) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            return
        if not isinstance(message, dict):
            return
        kind = message.get("type")
        if kind == "reply":
            future = self._waiting.pop(str(message.get("id")), None)
            if future is not None and not future.done():
                future.set_result(message)
        elif kind == "request":
            asyncio.get_running_loop().create_task(self._answer(message))
        else:
            self._on_event(message)

    async def _answer(self, request: dict[str, Any]) -> None:
        try:
            reply = await self._on_request(request)
        except ForumcastError as exc:
            reply = {"ok": False, "code": exc.code, "message": exc.message}
        reply.update({"type": "reply", "id": request.get("id")})
        try:
            await self._plane.publish(self._plane.names.inbox(str(request.get("from"))), reply)
        except (RedisError, OSError) as exc:
            log.warning("cluster: could not answer a request (%s)", exc)

    async def publish(self, message: dict[str, Any]) -> None:
        """An event for every instance (this one included)."""
        await self._plane.publish(self._plane.names.events, message)

    async def request(self, instance: str, message: dict[str, Any]) -> dict[str, Any]:
        """Send ``message`` to ``instance`` and return its reply; ``cluster.no_leader`` if none
        came within :data:`REPLY_TIMEOUT`, the replier's own error if it refused."""
        request_id = f"{self._plane.instance}#{next(self._ids)}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = future
        payload = {**message, "type": "request", "id": request_id, "from": self._plane.instance}
        try:
            await self._plane.publish(self._plane.names.inbox(instance), payload)
            reply = await asyncio.wait_for(future, REPLY_TIMEOUT)
        except (RedisError, OSError, TimeoutError):
            raise ForumcastError(
                "cluster.no_leader", f"instance {instance!r} did not answer in time"
            ) from None
        finally:
            self._waiting.pop(request_id, None)
        if not reply.get("ok"):
            code = str(reply.get("code", "internal.error"))
            raise ForumcastError(code if code in CODES else "internal.error", str(reply.get("message", "")))
        return reply
