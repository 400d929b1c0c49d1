"""Service configuration: defaults < TOML file (``--config``) < ``FORUMCAST_*`` environment < CLI flags.

Every setting is a field of :class:`Config` with its default and a one-line doc. Values are
validated as they are merged; an unknown key, a value of the wrong type or a missing file
raises :class:`~server.errors.ConfigError` whose message names the key (or file) and what
is wrong. The CLI prints that one line and exits with code 2.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exhibits.settings import ExhibitionSettings
from server.errors import ConfigError
from server.http.forwarded import parse_networks
from server.http.page_headers import parse_frame_ancestors
from server.ingest.settings import IngestSettings
from server.live.settings import LiveSettings
from server.schedule.scheduler import UPCOMING_MINUTES

#: Default seconds an idle HTTP connection stays open. aiohttp also closes a connection that
#: has not sent a whole request within this time from its start, so it bounds slow header
#: reads (slowloris) too.
KEEPALIVE_TIMEOUT = 30.0

_LIVE = LiveSettings()  # the live path's defaults, stated once in its modules
_EXHIBITION = ExhibitionSettings()  # the exhibition's, likewise
_INGEST = IngestSettings()  # the RTMP and SRT listeners', likewise

ENV_PREFIX = "FORUMCAST_"


def _doc(text: str) -> dict[str, str]:
    return {"doc": text}


@dataclass(frozen=True, slots=True)
class Config:
    host: str = field(default="0.0.0.0", metadata=_doc("interface to listen on"))  # noqa: S104
    port: int = field(default=8080, metadata=_doc("TCP port to listen on (1-65535)"))
    redis_url: str = field(
        default="",
        metadata=_doc(
            "redis://, unix:// or redis+sentinel:// URL of the shared store; empty = in-memory"
            " (or an embedded Redis with workers > 1)"
        ),
    )
    instance_id: str = field(
        default="", metadata=_doc("this instance's name in the cluster; empty = hostname:port")
    )
    workers: int = field(
        default=1, metadata=_doc("instances to run on this machine sharing the port (SO_REUSEPORT)")
    )
    data_dir: str = field(default="data", metadata=_doc("directory for models and caches"))
    event: str = field(default="", metadata=_doc("event file (.yaml or frab .json); empty = built-in demo"))
    real_dates: bool = field(default=False, metadata=_doc("serve the demo at its real dates (6-8 Dec 2020)"))
    secret: str = field(default="", metadata=_doc("HS256 secret for tokens; empty = random per start"))
    previous_secrets: list[str] = field(
        default_factory=list,
        metadata=_doc("older secrets whose tokens stay valid until they expire (env 'a,b')"),
    )
    public_url: str = field(default="", metadata=_doc("base URL used in exports; empty = from the request"))
    upcoming_minutes: int = field(
        default=UPCOMING_MINUTES, metadata=_doc("a stage is 'upcoming' this long before a session")
    )
    shutdown_timeout: float = field(
        default=10.0, metadata=_doc("seconds to finish in-flight work on shutdown")
    )
    keepalive_timeout: float = field(
        default=KEEPALIVE_TIMEOUT,
        metadata=_doc("seconds an idle connection is kept, and the most a client may take to send a request"),
    )
    log_format: str = field(default="text", metadata=_doc("'text' or 'json' (one JSON object per line)"))
    log_level: str = field(default="info", metadata=_doc("debug, info, warning or error"))
    metrics_token: bool = field(default=False, metadata=_doc("require an ops token on /metrics"))
    stream_keys: dict[str, str] = field(
        default_factory=dict,
        metadata=_doc("input id -> stream key ([stream_keys] table; env 'id=key,id=key'); others derived"),
    )
    demo_inputs: bool = field(
        default=True, metadata=_doc("with the demo event: publish a looping picture on stages")
    )
    max_box_size: int = field(
        default=_LIVE.max_box_size, metadata=_doc("largest fMP4 box a publisher may send, bytes")
    )
    gop_cache_bytes: int = field(
        default=_LIVE.gop_cache_bytes, metadata=_doc("bound of each stream's cached GOP, bytes")
    )
    send_budget: int = field(
        default=_LIVE.send_budget, metadata=_doc("bytes queued to a viewer before it skips to a keyframe")
    )
    max_behind: float = field(
        default=_LIVE.max_behind, metadata=_doc("seconds a viewer may stay behind before it is closed")
    )
    stall_after: float = field(
        default=_LIVE.stall_after,
        metadata=_doc("seconds without a fragment before an on-air input fails over"),
    )
    failback_after: float = field(
        default=_LIVE.failback_after,
        metadata=_doc("seconds a returning input must stay up before automation fails back"),
    )
    hls_target_duration: float = field(
        default=_LIVE.hls_target_duration,
        metadata=_doc("LL-HLS target segment duration, seconds (segments start at keyframes)"),
    )
    hls_part_target: float = field(
        default=_LIVE.hls_part_target,
        metadata=_doc("LL-HLS part target, seconds (a part is one program fragment)"),
    )
    hls_window: int = field(
        default=_LIVE.hls_window, metadata=_doc("LL-HLS segments kept in each media playlist")
    )
    hls_cors_origins: str = field(
        default="*", metadata=_doc("origins that may fetch HLS: '*', a comma-separated list, or empty")
    )
    viewer_send_buffer: int = field(
        default=_LIVE.viewer_send_buffer,
        metadata=_doc("kernel send buffer of each viewer's socket, bytes (bounds what a non-reader pins)"),
    )
    max_viewers_per_ip: int = field(
        default=_LIVE.max_viewers_per_ip, metadata=_doc("viewer connections one client address may hold")
    )
    max_viewers: int = field(
        default=_LIVE.max_viewers, metadata=_doc("viewer connections one instance holds")
    )
    slate_size: str = field(
        default="x".join(map(str, _LIVE.slate_size)),
        metadata=_doc("the slate picture's WIDTHxHEIGHT (even numbers)"),
    )

    rtmp_port: int = field(
        default=_INGEST.rtmp_port, metadata=_doc("RTMP listener for OBS, vMix, hardware encoders; 0 = off")
    )
    rtmp_host: str = field(
        default="", metadata=_doc("interface for the RTMP and SRT listeners; empty = host")
    )
    rtmp_app: str = field(
        default=_INGEST.rtmp_app, metadata=_doc("the RTMP application name (rtmp://host:port/APP/INPUT)")
    )
    rtmps_port: int = field(
        default=_INGEST.rtmps_port, metadata=_doc("RTMPS listener, on when tls_cert and tls_key are set")
    )
    tls_cert: str = field(default="", metadata=_doc("PEM certificate chain for RTMPS"))
    tls_key: str = field(default="", metadata=_doc("PEM private key for RTMPS"))
    srt_port: int = field(
        default=_INGEST.srt_port, metadata=_doc("SRT listener (UDP) for MPEG-TS publishers; 0 = off")
    )
    srt_passphrase: str = field(
        default="", metadata=_doc("SRT encryption passphrase every SRT publisher must use; empty = none")
    )
    srt_latency_ms: int = field(
        default=_INGEST.srt_latency_ms, metadata=_doc("SRT receiver latency (retransmission window), ms")
    )
    fragment_ms: int = field(
        default=_INGEST.fragment_ms,
        metadata=_doc("RTMP/SRT inputs are cut into fragments at keyframes and about this often, ms"),
    )
    ingest_handshake_timeout: float = field(
        default=_INGEST.handshake_timeout,
        metadata=_doc("seconds an RTMP/SRT connection has from connecting to publishing"),
    )
    ingest_idle_timeout: float = field(
        default=_INGEST.idle_timeout, metadata=_doc("seconds a publishing RTMP/SRT connection may be silent")
    )

    catalog: str = field(default="", metadata=_doc("exhibit catalog (.yaml or .csv); empty = built-in demo"))
    demo_models: bool = field(
        default=True,
        metadata=_doc("build the demo exhibits' procedural models at start (cached in data_dir)"),
    )
    ingest_workers: int = field(
        default=_EXHIBITION.workers, metadata=_doc("processes for 3D ingest and the hall scene")
    )
    max_upload_bytes: int = field(
        default=_EXHIBITION.max_upload_bytes, metadata=_doc("largest 3D model upload, bytes (413 above)")
    )
    max_triangles: int = field(
        default=_EXHIBITION.max_triangles, metadata=_doc("most triangles an uploaded model may have")
    )
    max_jobs_per_exhibitor: int = field(
        default=_EXHIBITION.max_jobs_per_exhibitor,
        metadata=_doc("unfinished ingest jobs one exhibit may have (429 model.busy above)"),
    )
    max_queued_jobs: int = field(
        default=_EXHIBITION.max_queued_jobs,
        metadata=_doc("ingest jobs waiting for a worker in total (429 ingest.queue_full above)"),
    )
    max_shared_blob_bytes: int = field(
        default=_EXHIBITION.max_shared_blob_bytes,
        metadata=_doc("largest model file shared between instances through Redis, bytes (413 above)"),
    )
    model_compression: str = field(
        default="opt-in", metadata=_doc("gzip/br for model files: off, opt-in (?compress=1) or auto")
    )
    cors_origins: str = field(
        default="*",
        metadata=_doc("origins that may fetch model files: '*', a comma-separated list, or empty"),
    )
    model_cache_bytes: int = field(
        default=_EXHIBITION.cache_bytes, metadata=_doc("memory for hot model files, bytes")
    )
    trusted_proxies: list[str] = field(
        default_factory=list,
        metadata=_doc(
            "addresses or CIDR networks of HTTP fronts whose X-Forwarded-For names the client"
            " (env 'a,b'); empty = the connection's address is the client"
        ),
    )
    frame_ancestors: str = field(
        default="'none'",
        metadata=_doc("origins that may frame the viewer and hall pages, space-separated; 'none' = none"),
    )

    def replace(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)

    @property
    def slate_dimensions(self) -> tuple[int, int]:
        width, _, height = self.slate_size.partition("x")
        return int(width), int(height)

    def instance(self) -> str:
        """This instance's id in the cluster: ``instance_id``, else ``hostname:port``."""
        return self.instance_id or f"{socket.gethostname()}:{self.port}"

    def ingest(self, *, reuse_port: bool = False) -> IngestSettings:
        """The RTMP and SRT listeners' part of the settings."""
        return IngestSettings(
            host=self.rtmp_host or self.host,
            rtmp_port=self.rtmp_port,
            rtmp_app=self.rtmp_app,
            rtmps_port=self.rtmps_port,
            tls_cert=self.tls_cert,
            tls_key=self.tls_key,
            srt_port=self.srt_port,
            srt_passphrase=self.srt_passphrase,
            srt_latency_ms=self.srt_latency_ms,
            fragment_ms=self.fragment_ms,
            handshake_timeout=self.ingest_handshake_timeout,
            idle_timeout=self.ingest_idle_timeout,
            reuse_port=reuse_port,
        )

    def live(self) -> LiveSettings:
        """The live path's part of the settings."""
        return LiveSettings(
            max_box_size=self.max_box_size,
            gop_cache_bytes=self.gop_cache_bytes,
            send_budget=self.send_budget,
            max_behind=self.max_behind,
            stall_after=self.stall_after,
            failback_after=self.failback_after,
            hls_target_duration=self.hls_target_duration,
            hls_part_target=self.hls_part_target,
            hls_window=self.hls_window,
            slate_size=self.slate_dimensions,
            viewer_send_buffer=self.viewer_send_buffer,
            max_viewers_per_ip=self.max_viewers_per_ip,
            max_viewers=self.max_viewers,
        )


_FIELDS = {f.name: f for f in dataclasses.fields(Config)}


def _default(f: dataclasses.Field[Any]) -> Any:
    """A field's default, made by its factory for tables and lists."""
    factory = f.default_factory
    return factory() if callable(factory) else f.default


_TYPES: dict[str, type] = {f.name: type(_default(f)) for f in dataclasses.fields(Config)}
#: The shortest stream key a configuration may set.
MIN_STREAM_KEY = 16
_CHOICES = {
    "log_format": ("text", "json"),
    "log_level": ("debug", "info", "warning", "error"),
    "model_compression": ("off", "opt-in", "auto"),
}


def _coerce(key: str, value: Any, source: str) -> Any:
    """Convert ``value`` to the type of setting ``key`` or raise ConfigError naming it."""
    kind = _TYPES[key]
    where = f"{key!r} in {source}"
    result: Any
    if kind is bool:
        if isinstance(value, bool):
            result = value
        elif isinstance(value, str) and value.lower() in (
            "1",
            "true",
            "yes",
            "on",
            "0",
            "false",
            "no",
            "off",
        ):
            result = value.lower() in ("1", "true", "yes", "on")
        else:
            raise ConfigError(f"config: {where} must be true or false, got {value!r}")
    elif kind is int:
        try:
            if isinstance(value, bool | float):
                raise ValueError
            result = int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"config: {where} must be an integer, got {value!r}") from None
    elif kind is float:
        try:
            if isinstance(value, bool):
                raise ValueError
            result = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"config: {where} must be a number, got {value!r}") from None
    elif kind is dict:
        result = _table(value, where)
    elif kind is list:
        result = _networks(value, where) if key == "trusted_proxies" else _secrets(value, where)
    else:
        if not isinstance(value, str):
            raise ConfigError(f"config: {where} must be a string, got {value!r}")
        result = value
    if key == "stream_keys" and (short := sorted(k for k, v in result.items() if len(v) < MIN_STREAM_KEY)):
        # Shorter keys are guessable even throttled; the derived ones are 32 characters.
        raise ConfigError(
            f"config: {where}: the stream keys of {', '.join(short)} are shorter than "
            f"{MIN_STREAM_KEY} characters"
        )
    if key == "port" and not 1 <= result <= 65535:
        raise ConfigError(f"config: {where} must be between 1 and 65535, got {result}")
    if key in ("rtmp_port", "rtmps_port", "srt_port") and not 0 <= result <= 65535:
        raise ConfigError(f"config: {where} must be between 0 (off) and 65535, got {result}")
    if key == "fragment_ms" and not 20 <= result <= 5000:
        raise ConfigError(f"config: {where} must be between 20 and 5000 ms, got {result}")
    if key == "srt_latency_ms" and not 20 <= result <= 8000:
        raise ConfigError(f"config: {where} must be between 20 and 8000 ms, got {result}")
    if key == "srt_passphrase" and result and not 10 <= len(result) <= 79:
        raise ConfigError(f"config: {where} must be 10 to 79 characters (SRT's rule), or empty")
    if key == "rtmp_app" and not (result and result.isascii() and "/" not in result and "?" not in result):
        raise ConfigError(f"config: {where} must be a non-empty name without '/' or '?', got {result!r}")
    if key in ("max_box_size", "gop_cache_bytes", "send_budget", "viewer_send_buffer") and result < 4096:
        raise ConfigError(f"config: {where} must be at least 4096 bytes, got {result}")
    if key in (
        "workers",
        "ingest_workers",
        "max_upload_bytes",
        "max_triangles",
        "model_cache_bytes",
        "max_shared_blob_bytes",
        "hls_window",
        "max_viewers_per_ip",
        "max_viewers",
    ) and (result < 1):
        raise ConfigError(f"config: {where} must be at least 1, got {result}")
    if key in ("max_jobs_per_exhibitor", "max_queued_jobs") and result < 1:
        raise ConfigError(f"config: {where} must be at least 1, got {result}")
    if key == "slate_size":
        width, _, height = result.partition("x")
        if not (
            width.isdigit()
            and height.isdigit()
            and 64 <= int(width) <= 3840
            and 64 <= int(height) <= 2160
            and int(width) % 2 == 0
            and int(height) % 2 == 0
        ):
            raise ConfigError(
                f"config: {where} must be WIDTHxHEIGHT, even, 64..3840 x 64..2160, got {result!r}"
            )
    if key in ("max_behind", "stall_after", "failback_after", "hls_target_duration", "hls_part_target") and (
        result <= 0
    ):
        raise ConfigError(f"config: {where} must be positive, got {result}")
    if key in ("upcoming_minutes",) and result < 0:
        raise ConfigError(f"config: {where} must not be negative, got {result}")
    if key == "keepalive_timeout" and not 0 < result <= 3600:
        raise ConfigError(f"config: {where} must be in (0, 3600] seconds, got {result}")
    if key in ("ingest_handshake_timeout", "ingest_idle_timeout") and result <= 0:
        raise ConfigError(f"config: {where} must be positive, got {result}")
    if key == "shutdown_timeout" and result <= 0:
        raise ConfigError(f"config: {where} must be positive, got {result}")
    if key == "frame_ancestors":
        try:
            parse_frame_ancestors(result)
        except ValueError as exc:
            raise ConfigError(f"config: {where}: {exc}") from None
    if key in _CHOICES and result not in _CHOICES[key]:
        raise ConfigError(f"config: {where} must be one of {', '.join(_CHOICES[key])}, got {result!r}")
    return result


def _table(value: Any, where: str) -> dict[str, str]:
    """A table of strings: a TOML table, or ``id=value,id=value`` from the environment."""
    if isinstance(value, str):
        pairs = [item.partition("=") for item in value.split(",") if item.strip()]
        if any(not sep or not k.strip() or not v.strip() for k, sep, v in pairs):
            raise ConfigError(f"config: {where} must look like 'id=value,id=value', got {value!r}")
        return {k.strip(): v.strip() for k, _, v in pairs}
    if not isinstance(value, dict) or not all(isinstance(v, str) and v for v in value.values()):
        raise ConfigError(f"config: {where} must be a table of non-empty strings, got {value!r}")
    return dict(value)


def _networks(value: Any, where: str) -> list[str]:
    """Addresses or CIDR networks: a TOML array, or ``a,b`` from the environment."""
    items = [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
        raise ConfigError(f"config: {where} must be a list of addresses or CIDR networks")
    try:
        parse_networks(items)
    except ValueError as exc:
        raise ConfigError(f"config: {where}: {exc}") from None
    return list(items)


def _secrets(value: Any, where: str) -> list[str]:
    """A list of secrets of at least 32 bytes: a TOML array, or ``a,b`` from the environment."""
    items = [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) and len(v.encode()) >= 32 for v in items):
        raise ConfigError(f"config: {where} must be a list of secrets of at least 32 bytes each")
    return list(items)


def _from_file(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"config: file {str(path)!r} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"config: cannot read {str(path)!r}: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config: {str(path)!r} is not valid TOML: {exc}") from None
    out = {}
    for key, value in data.items():
        if key not in _FIELDS:
            raise ConfigError(f"config: unknown key {key!r} in {str(path)!r}")
        out[key] = _coerce(key, value, repr(str(path)))
    return out


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    out = {}
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or name == "FORUMCAST_CONFIG":
            continue
        key = name[len(ENV_PREFIX) :].lower()
        if key not in _FIELDS:
            raise ConfigError(f"config: unknown environment variable {name}")
        out[key] = _coerce(key, value, f"environment variable {name}")
    return out


def load_config(
    file: str | Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Merge the layers in order of precedence and validate every value.

    ``file`` falls back to ``$FORUMCAST_CONFIG``; ``overrides`` are the CLI flags that
    were given (None values are ignored, so absent flags do not mask lower layers).
    """
    env = os.environ if env is None else env
    file = file or env.get("FORUMCAST_CONFIG") or None
    merged: dict[str, Any] = {}
    if file is not None:
        merged.update(_from_file(Path(file)))
    merged.update(_from_env(env))
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if key not in _FIELDS:
            raise ConfigError(f"config: unknown option {key!r}")
        merged[key] = _coerce(key, value, "command-line flags")
    if bool(merged.get("tls_cert")) != bool(merged.get("tls_key")):
        raise ConfigError("config: 'tls_cert' and 'tls_key' go together (RTMPS needs both)")
    return Config(**merged)


def describe() -> list[tuple[str, str, str]]:
    """(key, default, doc) of every setting, for the README and ``--help``."""
    return [(f.name, repr(_default(f)), f.metadata["doc"]) for f in dataclasses.fields(Config)]
