"""The ingest listeners' settings in one object, each default stated once here.

:class:`IngestSettings` is the ingest part of :class:`~server.config.Config` (which takes its
defaults from here); the listeners get it whole instead of long parameter lists.
"""

from __future__ import annotations

from dataclasses import dataclass

#: RTMP's registered port; 0 turns the listener off.
RTMP_PORT = 1935
#: The RTMPS listener's port, used only when a certificate is configured.
RTMPS_PORT = 1936
#: The one RTMP application name publishers use (``rtmp://host/live/INPUT``).
RTMP_APP = "live"
#: SRT's usual port; 0 turns the listener off.
SRT_PORT = 9000
#: SRT receiver latency, milliseconds (the retransmission window; 120 is libsrt's default).
SRT_LATENCY_MS = 120
#: Remuxed fragments are cut at keyframes and about this often in between.
FRAGMENT_MS = 200
#: Seconds a connection has from its first byte to publishing (handshake, connect, publish).
HANDSHAKE_TIMEOUT = 10.0
#: Seconds a publishing connection may send nothing before it is closed.
IDLE_TIMEOUT = 30.0
#: Most RTMP and SRT connections one instance holds at once (publishers and attempts).
MAX_CONNECTIONS = 256


@dataclass(frozen=True, slots=True, kw_only=True)
class IngestSettings:
    host: str = "0.0.0.0"  # noqa: S104
    rtmp_port: int = RTMP_PORT
    rtmp_app: str = RTMP_APP
    rtmps_port: int = RTMPS_PORT
    #: PEM certificate chain and key; both set turns RTMPS on.
    tls_cert: str = ""
    tls_key: str = ""
    srt_port: int = SRT_PORT
    srt_passphrase: str = ""
    srt_latency_ms: int = SRT_LATENCY_MS
    fragment_ms: int = FRAGMENT_MS
    handshake_timeout: float = HANDSHAKE_TIMEOUT
    idle_timeout: float = IDLE_TIMEOUT
    max_connections: int = MAX_CONNECTIONS
    #: Whether several processes share the ports (``serve --workers``).
    reuse_port: bool = False

    @property
    def rtmps(self) -> bool:
        return bool(self.tls_cert and self.tls_key and self.rtmps_port)
