"""The media core: fragmented MP4 parsing, timeline rewriting and fan-out decisions.

Everything in this package is sans-I/O (bytes in, values and bytes out) and imports
nothing from asyncio: the aiohttp handlers in :mod:`server.live` only move bytes between
sockets and these objects. That keeps the hard parts testable without an event loop.
"""
