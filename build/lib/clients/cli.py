"""The whole ``forumcast`` command: the server's subcommands and the clients'.

The command-line is the top layer, so it lives with the clients, which may import the
server; the server never imports the clients.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from clients import loadtest, publish, watch
from server import cli as server_cli
from server.cli import Command

CLIENT_COMMANDS = (
    Command(
        "loadtest",
        "many lean viewers of a stage from one process (loopback only)",
        loadtest.add_arguments,
        loadtest.main,
    ),
    Command("publish", "push a file or a live test pattern to an input", publish.add_arguments, publish.main),
    Command("watch", "probe a stage: time to first frame, latency, drops", watch.add_arguments, watch.main),
)


def main(argv: Sequence[str] | None = None) -> int:
    return server_cli.main(argv, extra=CLIENT_COMMANDS)


if __name__ == "__main__":
    sys.exit(main())
