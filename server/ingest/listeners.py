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
import socket
from collections.abc import AsyncIterator

from server.errors import ForumcastError, SrtUnavailable
from server.ingest.publisher import IngestEnv
from server.ingest.rtmp_server import RtmpServer, tls_context
from server.ingest.settings import IngestSettings
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


def check_ports(settings: IngestSettings) -> None:
    """Fail early, with one clear line, if a configured RTMP(S) or SRT port is taken.

    The listeners bind inside the application's startup, where a failure unwinds every
    context already started; trying the ports first (and letting go at once) turns the
    common mistake, a second instance on the same machine, into ``ingest.bind_failed``
    before anything starts. (Something may still take a port in between: the listeners
    report that too.)
    """
    wanted = [("RTMP", socket.SOCK_STREAM, settings.rtmp_port)]
    if settings.rtmps:
        wanted.append(("RTMPS", socket.SOCK_STREAM, settings.rtmps_port))
    wanted.append(("SRT", socket.SOCK_DGRAM, settings.srt_port))
    for name, kind, port in wanted:
        if not port:
            continue
        family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
        with socket.socket(family, kind) as probe:
            if kind == socket.SOCK_STREAM:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if settings.reuse_port:  # the other workers of the pool share it
                    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            try:
                probe.bind((settings.host, port))
            except OSError as exc:
                raise ForumcastError(
                    "ingest.bind_failed",
                    f"cannot listen for {name} on port {port}: {exc.strerror or exc}"
                    f" (set {name.lower()}_port to another port, or 0 to turn {name} off)",
                ) from exc
