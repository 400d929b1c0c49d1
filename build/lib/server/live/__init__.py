"""Live media over sockets: publishers in, viewers out. Thin adapters over :mod:`server.media`."""
