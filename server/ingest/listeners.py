"""Start and stop the ingest listeners the settings ask for: RTMP, RTMPS, SRT.

:func:`running_listeners` is an async context manager for the application's cleanup
context: it binds every configured listener (a port in use or an unreadable certificate is
``ingest.bind_failed`` / ``ingest.bad_certificate``, and the service does not start), runs
their supervised loops, and on exit closes every RTMP and SRT connection (their inputs'
automation fails over as for any publisher that left) before the live hub closes.

SRT needs libsrt (Debian ``libsrt1.5-openssl`` or ``-gnutls``, which ``srt-tools`` pulls
in). Without it the SRT listener stays off with a warning saying what to install, and
everything else runs: the demo must start on any machine.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from server.errors import SrtUnavailable
from server.ingest.publisher import IngestEnv
from server.ingest.rtmp_server import RtmpServer, tls_context
from server.ingest.srt_server import SrtServer
from server.supervisor import Supervisor

log = logging.getLogger("forumcast.ingest")

Listener = RtmpServer | SrtServer


@contextlib.asynccontextmanager
async def running_listeners(env: IngestEnv, tasks: Supervisor) -> AsyncIterator[list[Listener]]:
    settings = env.settings
    servers: list[Listener] = []
    if settings.rtmp_port:
        servers.append(RtmpServer(env, port=settings.rtmp_port))
    if settings.rtmps:
        tls = tls_context(settings.tls_cert, settings.tls_key)
        servers.append(RtmpServer(env, port=settings.rtmps_port, tls=tls))
    if settings.srt_port:
        servers.append(SrtServer(env, port=settings.srt_port))
    async with contextlib.AsyncExitStack() as stack:
        started: list[Listener] = []
        for server in servers:
            try:
                await server.start()
            except SrtUnavailable as exc:
                log.warning("SRT is off: %s", exc.message)
                continue
            stack.push_async_callback(server.stop)
            await stack.enter_async_context(tasks.running(f"{server.protocol}-idle", server.watch_idle))
            started.append(server)
        yield started
