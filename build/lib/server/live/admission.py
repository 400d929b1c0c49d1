"""Who may open one more viewer connection: a bound per client address and one in total.

Pure bookkeeping, no sockets. A conference's audience often shares one address (a venue's
or an office's NAT), so the per-address bound is generous; it exists so that one client
cannot hold thousands of sockets (and their kernel buffers) by itself. The total bound
keeps one instance inside what its memory and file descriptors allow. Refused before the
WebSocket upgrade: 429 ``live.too_many_connections`` for an address at its bound, 503
``live.full`` for a full instance.
"""

from __future__ import annotations

from collections import Counter

from server.errors import ForumcastError

#: Default viewer connections one client address may hold.
MAX_VIEWERS_PER_IP = 200
#: Default viewer connections one instance holds.
MAX_VIEWERS = 20_000


class Admission:
    def __init__(self, *, per_ip: int = MAX_VIEWERS_PER_IP, total: int = MAX_VIEWERS) -> None:
        self.per_ip = per_ip
        self.total = total
        self._by_ip: Counter[str] = Counter()
        self._count = 0

    @property
    def count(self) -> int:
        return self._count

    def enter(self, address: str) -> None:
        """Count one more connection from ``address``, or raise the refusal."""
        if self._count >= self.total:
            raise ForumcastError("live.full", "this server holds all the viewers it can; try again shortly")
        if self._by_ip[address] >= self.per_ip:
            raise ForumcastError(
                "live.too_many_connections", f"at most {self.per_ip} viewer connections per client address"
            )
        self._by_ip[address] += 1
        self._count += 1

    def leave(self, address: str) -> None:
        if self._by_ip[address] <= 0:
            return
        self._by_ip[address] -= 1
        if not self._by_ip[address]:
            del self._by_ip[address]
        self._count -= 1
