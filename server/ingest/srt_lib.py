"""A ctypes binding of the parts of libsrt (Haivision SRT, 1.5) that an ingest listener uses.

Python has no maintained SRT binding, and one listening port for many publishers needs the
listen callback (read each caller's streamid, set that connection's passphrase or a reject
code before the handshake completes), which sidecar processes (``srt-live-transmit``,
``ffmpeg -listen``) cannot give. So this module loads Debian's shared library:
``libsrt-openssl.so.1.5`` (package ``libsrt1.5-openssl``), ``libsrt-gnutls.so.1.5``
(``libsrt1.5-gnutls``, which ``srt-tools`` pulls in) or an upstream build's ``libsrt.so.1.5``.

Only this module touches ctypes. :class:`Library` wraps each C function in a typed method
that raises :class:`~server.errors.SrtError` (code ``srt.call_failed``, the library's own
message) on failure, except where failure is an expected answer (a non-blocking
``accept``/``recvmsg`` with nothing to read returns ``None``/``-1`` with the error code).
The constants are checked against ``srtcore/srt.h`` and ``access_control.h`` of SRT 1.5.1
(the ABI of the ``.so.1.5`` soname). Sockets are plain ``int`` (``SRTSOCKET`` is int32).

:func:`load` opens the library once per process; :meth:`Library.startup` and
:meth:`Library.cleanup` are counted, so the library's threads start with the first user and
stop (``srt_cleanup``) when the last one is done.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import ipaddress
import socket
import struct
import threading
from collections.abc import Callable
from typing import Any

from server.errors import SrtError, SrtUnavailable
from server.ingest.srt_streamid import MAX_STREAMID

#: Tried in order after ``ctypes.util.find_library``: upstream's name, then Debian's flavours.
SONAMES = ("libsrt.so.1.5", "libsrt-openssl.so.1.5", "libsrt-gnutls.so.1.5")
PACKAGES = "libsrt1.5-openssl or libsrt1.5-gnutls (apt-get install srt-tools brings the latter)"

# SRT_SOCKOPT (srt.h)
SRTO_SNDSYN = 1
SRTO_RCVSYN = 2
SRTO_LATENCY = 23
SRTO_PASSPHRASE = 26
SRTO_PBKEYLEN = 27
SRTO_STREAMID = 46
SRTO_PAYLOADSIZE = 49
SRTO_TRANSTYPE = 50
SRTO_ENFORCEDENCRYPTION = 53
SRTO_IPV6ONLY = 54
SRTO_PEERIDLETIMEO = 55

SRTT_LIVE = 0
LIVE_MAX_PAYLOAD = 1456  # SRT_LIVE_MAX_PLSIZE: one message read never exceeds it

# SRT_SOCKSTATUS
SRTS_LISTENING = 3
SRTS_CONNECTED = 5
SRTS_BROKEN = 6
SRTS_CLOSING = 7
SRTS_CLOSED = 8
SRTS_NONEXIST = 9

# SRT_ERRNO: 1000 * major + minor
SRT_ECONNLOST = 2001
SRT_ENOCONN = 2002
SRT_EINVSOCK = 5004
SRT_EASYNCRCV = 6002

# SRT_EPOLL_OPT
SRT_EPOLL_IN = 0x1
SRT_EPOLL_OUT = 0x4
SRT_EPOLL_ERR = 0x8

# Reject codes a listen callback may set (access_control.h, SRT_REJX_*: 1000 + an HTTP status).
SRT_REJC_PREDEFINED = 1000
REJX_BAD_REQUEST = 1400
REJX_UNAUTHORIZED = 1401
REJX_OVERLOAD = 1402
REJX_FORBIDDEN = 1403
REJX_NOTFOUND = 1404
REJX_BAD_MODE = 1405
REJX_CONFLICT = 1409
REJX_ISE = 1500
REJX_DOWN = 1503

SOCKADDR_STORAGE = 128

#: ``int (*)(void* opaque, SRTSOCKET ns, int hsversion, const sockaddr* peer, const char* streamid)``
ListenCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.c_void_p, ctypes.c_int32, ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p
)


class EpollEvent(ctypes.Structure):
    """``SRT_EPOLL_EVENT``: a socket and the events it is ready for."""

    _fields_ = (("fd", ctypes.c_int32), ("events", ctypes.c_int))


_c_int_p = ctypes.POINTER(ctypes.c_int)
_SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    "srt_startup": (ctypes.c_int, []),
    "srt_cleanup": (ctypes.c_int, []),
    "srt_getversion": (ctypes.c_uint32, []),
    "srt_setloglevel": (None, [ctypes.c_int]),
    "srt_create_socket": (ctypes.c_int32, []),
    "srt_setsockflag": (ctypes.c_int, [ctypes.c_int32, ctypes.c_int, ctypes.c_void_p, ctypes.c_int]),
    "srt_getsockflag": (ctypes.c_int, [ctypes.c_int32, ctypes.c_int, ctypes.c_void_p, _c_int_p]),
    "srt_bind": (ctypes.c_int, [ctypes.c_int32, ctypes.c_char_p, ctypes.c_int]),
    "srt_getsockname": (ctypes.c_int, [ctypes.c_int32, ctypes.c_char_p, _c_int_p]),
    "srt_listen": (ctypes.c_int, [ctypes.c_int32, ctypes.c_int]),
    "srt_listen_callback": (ctypes.c_int, [ctypes.c_int32, ListenCallback, ctypes.c_void_p]),
    "srt_setrejectreason": (ctypes.c_int, [ctypes.c_int32, ctypes.c_int]),
    "srt_accept": (ctypes.c_int32, [ctypes.c_int32, ctypes.c_char_p, _c_int_p]),
    "srt_recvmsg": (ctypes.c_int, [ctypes.c_int32, ctypes.c_char_p, ctypes.c_int]),
    "srt_close": (ctypes.c_int, [ctypes.c_int32]),
    "srt_getsockstate": (ctypes.c_int, [ctypes.c_int32]),
    "srt_getlasterror": (ctypes.c_int, [_c_int_p]),
    "srt_getlasterror_str": (ctypes.c_char_p, []),
    "srt_epoll_create": (ctypes.c_int, []),
    "srt_epoll_add_usock": (ctypes.c_int, [ctypes.c_int, ctypes.c_int32, _c_int_p]),
    "srt_epoll_remove_usock": (ctypes.c_int, [ctypes.c_int, ctypes.c_int32]),
    "srt_epoll_uwait": (
        ctypes.c_int,
        [ctypes.c_int, ctypes.POINTER(EpollEvent), ctypes.c_int, ctypes.c_int64],
    ),
    "srt_epoll_release": (ctypes.c_int, [ctypes.c_int]),
}


class Library:
    """One loaded libsrt with typed wrappers; get it from :func:`load`."""

    def __init__(self, cdll: ctypes.CDLL, path: str) -> None:
        self.path = path
        self._c: Any = cdll
        for name, (restype, argtypes) in _SIGNATURES.items():
            function = getattr(cdll, name)
            function.restype = restype
            function.argtypes = argtypes
        self._users = 0
        self._users_lock = threading.Lock()

    @property
    def version(self) -> str:
        number: int = self._c.srt_getversion()
        return f"{number >> 16}.{(number >> 8) & 0xFF}.{number & 0xFF}"

    # -- the library's lifetime, counted over its users

    def startup(self) -> None:
        with self._users_lock:
            if self._users == 0:
                self._check(self._c.srt_startup(), "srt_startup")
                # Errors reach us through return codes; the library's own log lines on
                # stderr (a rejected caller, a lost peer) would only repeat them.
                self._c.srt_setloglevel(2)  # LOG_CRIT
            self._users += 1

    def cleanup(self) -> None:
        with self._users_lock:
            self._users -= 1
            if self._users == 0:
                self._c.srt_cleanup()

    # -- errors

    def last_error(self) -> tuple[int, str]:
        """The calling thread's last SRT error: code (``SRT_E*``) and message."""
        code: int = self._c.srt_getlasterror(None)
        message: bytes | None = self._c.srt_getlasterror_str()
        return code, (message or b"").decode("utf-8", "replace")

    def _check(self, result: int, what: str) -> int:
        if result < 0:
            _, message = self.last_error()
            raise SrtError("srt.call_failed", f"{what}: {message}")
        return result

    # -- sockets

    def create_socket(self) -> int:
        return self._check(self._c.srt_create_socket(), "srt_create_socket")

    def set_int(self, sock: int, option: int, value: int) -> None:
        raw = ctypes.c_int32(value)
        self._check(self._c.srt_setsockflag(sock, option, ctypes.byref(raw), 4), f"srt_setsockflag({option})")

    def get_int(self, sock: int, option: int) -> int:
        raw = ctypes.c_int32(0)
        size = ctypes.c_int(4)
        self._check(
            self._c.srt_getsockflag(sock, option, ctypes.byref(raw), ctypes.byref(size)),
            f"srt_getsockflag({option})",
        )
        return raw.value

    def set_str(self, sock: int, option: int, value: str) -> None:
        raw = value.encode()
        buffer = ctypes.create_string_buffer(raw, len(raw))
        self._check(self._c.srt_setsockflag(sock, option, buffer, len(raw)), f"srt_setsockflag({option})")

    def get_str(self, sock: int, option: int, max_size: int = MAX_STREAMID + 1) -> str:
        buffer = ctypes.create_string_buffer(max_size)
        size = ctypes.c_int(max_size)
        self._check(
            self._c.srt_getsockflag(sock, option, buffer, ctypes.byref(size)), f"srt_getsockflag({option})"
        )
        return buffer.raw[: size.value].decode("utf-8", "replace")

    def bind(self, sock: int, address: bytes) -> None:
        self._check(self._c.srt_bind(sock, address, len(address)), "srt_bind")

    def sockname(self, sock: int) -> bytes:
        buffer = ctypes.create_string_buffer(SOCKADDR_STORAGE)
        size = ctypes.c_int(SOCKADDR_STORAGE)
        self._check(self._c.srt_getsockname(sock, buffer, ctypes.byref(size)), "srt_getsockname")
        return buffer.raw[: size.value]

    def listen(self, sock: int, backlog: int) -> None:
        self._check(self._c.srt_listen(sock, backlog), "srt_listen")

    def listen_callback(self, sock: int, hook: Any) -> None:
        """Install ``hook`` (a :data:`ListenCallback`; the caller keeps it alive)."""
        self._check(self._c.srt_listen_callback(sock, hook, None), "srt_listen_callback")

    def set_reject_reason(self, sock: int, code: int) -> None:
        self._check(self._c.srt_setrejectreason(sock, code), "srt_setrejectreason")

    def accept(self, sock: int) -> tuple[int, bytes] | None:
        """A new connection and its peer's sockaddr, or ``None`` when none waits (non-blocking)."""
        buffer = ctypes.create_string_buffer(SOCKADDR_STORAGE)
        size = ctypes.c_int(SOCKADDR_STORAGE)
        new: int = self._c.srt_accept(sock, buffer, ctypes.byref(size))
        if new < 0:
            code, message = self.last_error()
            if code == SRT_EASYNCRCV:
                return None
            raise SrtError("srt.call_failed", f"srt_accept: {message}")
        return new, buffer.raw[: size.value]

    def recvmsg(self, sock: int, buffer: ctypes.Array[ctypes.c_char]) -> int:
        """One message into ``buffer``: its size, or -1 (see :meth:`last_error`)."""
        received: int = self._c.srt_recvmsg(sock, buffer, len(buffer))
        return received

    def close(self, sock: int) -> None:
        self._c.srt_close(sock)  # a socket already gone is not an error worth raising here

    def state(self, sock: int) -> int:
        state: int = self._c.srt_getsockstate(sock)
        return state

    # -- epoll

    def epoll_create(self) -> int:
        return self._check(self._c.srt_epoll_create(), "srt_epoll_create")

    def epoll_add(self, eid: int, sock: int, events: int) -> None:
        flags = ctypes.c_int(events)
        self._check(self._c.srt_epoll_add_usock(eid, sock, ctypes.byref(flags)), "srt_epoll_add_usock")

    def epoll_remove(self, eid: int, sock: int) -> None:
        self._c.srt_epoll_remove_usock(eid, sock)

    def epoll_wait(self, eid: int, events: ctypes.Array[EpollEvent], timeout_ms: int) -> int:
        """How many of ``events`` were filled (0 on timeout)."""
        ready: int = self._c.srt_epoll_uwait(eid, events, len(events), timeout_ms)
        if ready < 0:
            code, message = self.last_error()
            raise SrtError("srt.call_failed", f"srt_epoll_uwait: {message} ({code})")
        return min(ready, len(events))

    def epoll_release(self, eid: int) -> None:
        self._c.srt_epoll_release(eid)


_loaded: Library | None = None
_load_lock = threading.Lock()


def load() -> Library:
    """The process's libsrt, opened on the first call; :class:`SrtUnavailable` if missing."""
    global _loaded
    with _load_lock:
        if _loaded is None:
            _loaded = open_library()
        return _loaded


def open_library(
    names: tuple[str, ...] = SONAMES, *, find: Callable[[str], str | None] = ctypes.util.find_library
) -> Library:
    """Open the first libsrt found (``find_library``'s answers, then ``names``), or raise
    :class:`SrtUnavailable` naming the Debian packages that provide it."""
    found = [path for path in (find("srt"), find("srt-openssl"), find("srt-gnutls")) if path]
    tried: list[str] = []
    for name in [*found, *names]:
        try:
            return Library(ctypes.CDLL(name), name)
        except OSError as exc:
            tried.append(f"{name} ({exc})")
    raise SrtUnavailable(
        f"libsrt 1.5 is not installed: install {PACKAGES}; tried {'; '.join(tried) or 'nothing'}"
    )


def sockaddr(ip: str, port: int) -> bytes:
    """A ``struct sockaddr_in``/``sockaddr_in6`` (Linux layout) for a numeric address."""
    address = ipaddress.ip_address(ip)
    if isinstance(address, ipaddress.IPv4Address):
        return struct.pack("=H", socket.AF_INET) + struct.pack("!H", port) + address.packed + bytes(8)
    return struct.pack("=H", socket.AF_INET6) + struct.pack("!HI", port, 0) + address.packed + bytes(4)


def format_sockaddr(raw: bytes) -> str:
    """``ip:port`` or ``[ip6]:port`` from a sockaddr; ``?`` for anything else."""
    if len(raw) >= 8:
        (family,) = struct.unpack_from("=H", raw)
        (port,) = struct.unpack_from("!H", raw, 2)
        if family == socket.AF_INET:
            return f"{ipaddress.IPv4Address(raw[4:8])}:{port}"
        if family == socket.AF_INET6 and len(raw) >= 24:
            address = ipaddress.IPv6Address(raw[8:24])
            if address.ipv4_mapped is not None:
                return f"{address.ipv4_mapped}:{port}"
            return f"[{address}]:{port}"
    return "?"


def sockaddr_at(pointer: int | None) -> bytes:
    """Copy the sockaddr a C pointer designates (the listen callback's ``peeraddr``)."""
    if not pointer:
        return b""
    (family,) = struct.unpack("=H", ctypes.string_at(pointer, 2))
    return ctypes.string_at(pointer, 28 if family == socket.AF_INET6 else 16)
