"""Start and stop the ingest listeners the settings ask for: RTMP, RTMPS, SRT.

:func:`running_listeners` is an async context manager for the application's cleanup
context: it binds every configured listener (a port in use or an unreadable certificate is
``ingest.bind_failed`` / ``ingest.bad_certificate``, and the service does not start), runs
their supervised loops, and on exit closes every RTMP and SRT connection (their inputs'
automation fails over as for any publisher that left) before the live hub closes.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from server.ingest.publisher import IngestEnv
from server.ingest.rtmp_server import RtmpServer, tls_context
from server.supervisor import Supervisor


@contextlib.asynccontextmanager
async def running_listeners(env: IngestEnv, tasks: Supervisor) -> AsyncIterator[list[RtmpServer]]:
    settings = env.settings
    servers: list[RtmpServer] = []
    if settings.rtmp_port:
        servers.append(RtmpServer(env, port=settings.rtmp_port))
    if settings.rtmps:
        servers.append(
            RtmpServer(env, port=settings.rtmps_port, tls=tls_context(settings.tls_cert, settings.tls_key))
        )
    async with contextlib.AsyncExitStack() as stack:
        for server in servers:
            await server.start()
            stack.push_async_callback(server.stop)
            await stack.enter_async_context(tasks.running(f"{server.protocol}-idle", server.watch_idle))
        yield servers
