"""Which server a client connects to next, and how long it waits first: sans I/O.

Several equal forumcast instances may serve one event behind a balancer; a client given
their addresses (``--server A --server B`` or ``--server A,B``) moves on when one dies. The
rule, decided here with no socket and no clock so it can be tested without a loop:

- a connection that ends for a reason worth retrying (it could not be made, or it was
  dropped) moves the client to the **next** URL in the order given, wrapping round;
- a full **round** of such endings, every URL once, costs one :class:`~clients.connection.Backoff`
  delay; moving on within a round costs none (another instance is likely up right now);
- a connection that **carried media** resets the backoff and starts a new round at the URL
  after it, so a blip costs a short delay and a long outage a long one, as with one URL.

With a single URL every ending completes a round: exactly the one-server behaviour (retry
the same URL after the backoff). The asyncio adapters (:mod:`clients.publisher`,
:mod:`clients.watcher`) only ask :attr:`ServerRotation.current` where to connect and call
:meth:`ServerRotation.ended` when a connection ends.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable
from dataclasses import dataclass

from clients.connection import DEFAULT_SERVER, Backoff, ClientError


def add_server_option(parser: argparse.ArgumentParser) -> None:
    """``--server URL`` for a client command: repeatable, each a URL or a comma-separated list."""
    parser.add_argument(
        "--server",
        action="append",
        metavar="URL",
        help="server address; repeat it or give a comma-separated list to fail over between equal"
        f" instances, in order (default $FORUMCAST_SERVER or {DEFAULT_SERVER})",
    )


def servers_from(args: argparse.Namespace) -> list[str]:
    """The addresses :func:`add_server_option` collected, else ``$FORUMCAST_SERVER``, else the default."""
    given: list[str] | None = args.server
    return split_servers(given or os.environ.get("FORUMCAST_SERVER") or DEFAULT_SERVER)


def split_servers(values: str | Iterable[str]) -> list[str]:
    """Server addresses as given on the command line: one, several (the option repeated) or
    comma-separated lists, in order, blanks and repeats dropped.

    Raises :class:`~clients.connection.ClientError` when nothing is left.
    """
    given = [values] if isinstance(values, str) else list(values)
    servers: list[str] = []
    for value in given:
        for part in value.split(","):
            server = part.strip()
            if server and server not in servers:
                servers.append(server)
    if not servers:
        raise ClientError("no server address given (like http://127.0.0.1:8080)")
    return servers


@dataclass(frozen=True, slots=True)
class NextAttempt:
    """What to do after a connection ended: wait ``delay`` seconds, then connect to ``url``."""

    url: str
    delay: float
    round_over: bool  # every URL failed since the last connection that carried media


class ServerRotation:
    """Round-robin over a client's server URLs with one backoff per full round.

    ``urls`` are whatever the adapter connects to (full WebSocket URLs); their order is the
    order of preference. The backoff is owned here: pass one to tune its delays.
    """

    def __init__(self, urls: str | Iterable[str], *, backoff: Backoff | None = None) -> None:
        self.urls: tuple[str, ...] = (urls,) if isinstance(urls, str) else tuple(urls)
        if not self.urls:
            raise ValueError("a rotation needs at least one URL")
        self.backoff = backoff or Backoff()
        self._index = 0
        self._failures = 0  # endings in the current round, since the last connection that worked
        self.rounds = 0  # full rounds that ended in a backoff

    @property
    def current(self) -> str:
        """The URL to connect to now."""
        return self.urls[self._index]

    @property
    def position(self) -> int:
        """The index of :attr:`current` in :attr:`urls`."""
        return self._index

    def ended(self, *, carried_media: bool) -> NextAttempt:
        """The connection to :attr:`current` ended (or could not be made) for a reason worth
        retrying; ``carried_media``: it worked for a while. Moves on to the next URL."""
        if carried_media:
            self.backoff.reset()
            self._failures = 0
        self._failures += 1
        self._index = (self._index + 1) % len(self.urls)
        round_over = self._failures >= len(self.urls)
        delay = 0.0
        if round_over:
            delay = self.backoff.next_delay()
            self._failures = 0
            self.rounds += 1
        return NextAttempt(self.current, delay, round_over)
