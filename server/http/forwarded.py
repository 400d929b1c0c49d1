"""Who the client is behind a trusted HTTP front: ``X-Forwarded-For`` from listed proxies only.

Behind the nginx front (deploy/nginx/forumcast.conf) every connection comes from the front's
address, so everything keyed by the client's address (viewer admission per address, HLS
viewer ids per address, credential throttling, the distinct-client estimate, the audit log)
would see one client. The front appends the address it was connected from to
``X-Forwarded-For``; forumcast believes that header only when the connection comes from an
address in ``trusted_proxies`` (a list of addresses or CIDR networks; empty: never, the
default, because anyone can write the header).

:func:`client_address` is the decision, pure: walk ``X-Forwarded-For`` from the right (the
entry the nearest proxy wrote) past trusted proxies; the first address that is not one is
the client. A malformed entry stops the walk at the last address we can vouch for (a client
cannot make us skip past its own connection by writing garbage). :func:`forwarded` is the
middleware that hands the handlers a request whose ``remote`` is that address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Iterable, Sequence

from aiohttp import web
from aiohttp.typedefs import Middleware

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """Addresses or CIDR networks (``10.0.0.0/8``, ``::1``); ValueError names a bad one."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address or CIDR network") from None
    return tuple(networks)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


def _trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address, networks: Sequence[Network]) -> bool:
    return any(address.version == n.version and address in n for n in networks)


def client_address(peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[Network]) -> str | None:
    """The client's address: ``peer`` unless it is a trusted proxy, then the rightmost
    untrusted entry of the ``X-Forwarded-For`` headers (``forwarded_for``, in order)."""
    if peer is None or not trusted:
        return peer
    current = _address(peer)
    if current is None or not _trusted(current, trusted):
        return peer
    entries = [item for header in forwarded_for for item in header.split(",") if item.strip()]
    for entry in reversed(entries):
        address = _address(entry)
        if address is None:
            break
        current = address
        if not _trusted(address, trusted):
            break
    return str(current)


def forwarded(trusted: Sequence[Network]) -> Middleware:
    """The middleware: handlers see the client's address as ``request.remote``."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not trusted:  # nothing in front: the peer is the client
            return await handler(request)
        headers = request.headers.getall("X-Forwarded-For", [])
        if headers:
            client = client_address(request.remote, headers, trusted)
            if client is not None and client != request.remote:
                request = request.clone(remote=client)
        return await handler(request)

    return middleware
