"""The ``forumcast`` command's server side: ``serve`` the service, issue a ``token`` (or
``token revoke`` one), ``exhibits ingest`` a model.

The whole command (with the clients' ``publish``, ``watch`` and ``loadtest``) is put
together by :mod:`clients.cli`, the top layer; ``python -m server`` runs this part alone.
Errors a user can fix (bad configuration, a refused event file, a bad flag) print one line
(or, for an event file, one line per problem) on stderr and exit with code 2 — no traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from exhibits import cli as exhibits_cli
from server import audit
from server.auth import Tokens, parse_role, parse_ttl
from server.clock import SystemClock
from server.config import Config, describe, load_config
from server.errors import ConfigError, ForumcastError, ScheduleError
from server.http.app import create_app
from server.ingest.listeners import check_ports
from server.live.slate_card import cjk_font, font_warning
from server.logs import setup_logging
from server.revocations import Revocations
from server.schedule.loader import demo_event, load_event_file
from server.schedule.model import Event
from server.shared_secret import SECRET_KEY, shared_secret
from server.store import StoreUnavailable, key_prefix, open_store
from server.workers.pool import run_workers

log = logging.getLogger("forumcast")

EXIT_USAGE = 2


@dataclass(frozen=True, slots=True)
class Command:
    """A subcommand contributed by a package: its flags and what runs it."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    main: Callable[[argparse.Namespace], int]


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="TOML configuration file (also $FORUMCAST_CONFIG)")


def build_parser(extra: Iterable[Command] = ()) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="forumcast", description="Hybrid conference streaming backend")
    commands = parser.add_subparsers(dest="command", required=True)

    settings = "\n".join(f"  {key:<18} {doc} (default {default})" for key, default, doc in describe())
    serve = commands.add_parser(
        "serve",
        help="run the service (no arguments: the built-in demo event, in-memory state)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"settings (TOML keys; environment FORUMCAST_<KEY>):\n{settings}",
    )
    _add_config_flags(serve)
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--redis-url", dest="redis_url", help="shared state in Redis (default: in memory)")
    serve.add_argument(
        "--workers", type=int, help="instances on this machine sharing the port (Redis embedded if none)"
    )
    serve.add_argument("--data-dir", dest="data_dir")
    serve.add_argument("--event", metavar="FILE", help="event file (.yaml or frab/pretalx .json)")
    serve.add_argument(
        "--real-dates", dest="real_dates", action="store_const", const=True, help="demo at 6-8 Dec 2020"
    )
    serve.add_argument("--log-format", dest="log_format", choices=["text", "json"])
    serve.add_argument("--log-level", dest="log_level", choices=["debug", "info", "warning", "error"])

    for command in (*extra, EXHIBITS):
        sub = commands.add_parser(command.name, help=command.help)
        command.add_arguments(sub)
        sub.set_defaults(run=command.main)

    token = commands.add_parser(
        "token", help="print a signed token for a role (its jti on stderr), or revoke one"
    )
    _add_config_flags(token)
    token.add_argument("--role", help="producer, ops, exhibitor:ID or viewer:STAGE")
    token.add_argument("--stage", help="with --role producer: limit it to one stage")
    token.add_argument("--ttl", default="8h", help="lifetime like 30m, 8h, 2d (default 8h)")
    token.add_argument("--subject", default="", help="who the token is for (shown in logs)")
    actions = token.add_subparsers(dest="token_action")
    revoke = actions.add_parser(
        "revoke",
        help="revoke a token by its jti (or the token itself) in the shared store",
        description="Record the revocation in the store the servers share (redis_url or --redis-url); "
        "they refuse the token within a few seconds. With the in-memory store (no redis_url) there is "
        "nothing shared to write to: revoke through the running server with "
        "POST /api/v1/tokens/revoke and an ops token instead.",
    )
    revoke.add_argument(
        "jti", metavar="ID", help="the token's jti (printed by 'forumcast token'), or the token"
    )
    revoke.add_argument("--config", default=argparse.SUPPRESS, metavar="FILE", help="TOML configuration file")
    revoke.add_argument("--redis-url", dest="redis_url", default=argparse.SUPPRESS, help="the shared store")
    return parser


def _fail(message: str) -> int:
    print(f"forumcast: {message}", file=sys.stderr)
    return EXIT_USAGE


def load_event(config: Config, *, now: datetime) -> Event:
    if config.event:
        return load_event_file(config.event)
    return demo_event(now=now, real_dates=config.real_dates)


def serve(config: Config, *, reuse_port: bool = False) -> int:
    """Run the service: one instance here, or (``workers`` > 1) a supervised pool of them."""
    setup_logging(config.log_format, config.log_level)
    if not reuse_port:  # once per machine, not once per worker
        warning = font_warning(cjk_font())
        if warning is not None:
            log.warning(warning)
    if config.workers > 1:
        try:
            return run_workers(config, serve_worker)
        except ConfigError as exc:
            return _fail(exc.message)
    try:
        event = load_event(config, now=datetime.now(UTC))
    except ScheduleError as exc:
        print(f"forumcast: {exc.message}", file=sys.stderr)
        return EXIT_USAGE
    try:
        secret = _secret(config, event.id)
    except StoreUnavailable as exc:
        print(f"forumcast: {exc.message}", file=sys.stderr)
        return 1
    tokens = Tokens(secret, config.previous_secrets)
    if not config.secret:
        producer = tokens.issue("producer", ttl=timedelta(hours=24), subject="demo-producer")
        print(f"producer token (all stages, 24h): {producer}", flush=True)
    log.info(
        "%s: serving %s (%d stages, %d sessions%s) on http://%s:%d",
        config.instance(),
        event.id,
        len(event.stages),
        len(event.sessions),
        ", demo" + ("" if config.real_dates else " shifted to now")
        if event.demo and not config.event
        else "",
        config.host,
        config.port,
    )
    try:
        check_ports(config.ingest(reuse_port=reuse_port))
    except ForumcastError as exc:
        return _fail(exc.message)
    app = create_app(config, event, tokens=tokens, reuse_port=reuse_port)
    try:
        _run(app, config, reuse_port=reuse_port)
    except ForumcastError as exc:  # a listener could not start (port in use, certificate)
        return _fail(exc.message)
    log.info("stopped")
    return 0


def _run(app: web.Application, config: Config, *, reuse_port: bool) -> None:
    web.run_app(
        app,
        host=config.host,
        port=config.port,
        shutdown_timeout=config.shutdown_timeout,
        keepalive_timeout=config.keepalive_timeout,
        access_log=None,
        print=None,
        handle_signals=True,
        # Thousands of viewers may (re)connect at once after a network blip; the default 128
        # overflows and costs them seconds of SYN retries.
        backlog=4096,
        # Workers of one pool share the port; the kernel spreads connections over them.
        reuse_port=reuse_port or None,
    )


def serve_worker(config: Config) -> int:
    """One worker of ``serve --workers N`` (run in its own process by the pool)."""
    return serve(config, reuse_port=True)


def _secret(config: Config, namespace: str) -> str:
    """The configured secret; else one kept in the shared Redis; else a random one for this run."""
    if config.secret:
        return config.secret
    if config.redis_url:
        secret = asyncio.run(shared_secret(config.redis_url, namespace))
        log.warning(
            "no secret configured: tokens are signed with a secret generated once and kept in Redis "
            "(key %s), valid on every instance sharing it; configure 'secret' in production",
            key_prefix(namespace) + SECRET_KEY,
        )
        return secret
    log.warning("no secret configured: tokens are signed with a random secret and end with this process")
    return Tokens.random_secret()


def token(config: Config, args: argparse.Namespace) -> int:
    if args.token_action == "revoke":  # noqa: S105 (a subcommand's name, not a password)
        return revoke(config, args.jti)
    if not args.role:
        return _fail("token: --role is required (or 'forumcast token revoke ID')")
    if not config.secret:
        return _fail("no secret configured: set 'secret' in the config file or FORUMCAST_SECRET")
    try:
        ttl = parse_ttl(args.ttl)
        parse_role(args.role, args.stage)
        tokens = Tokens(config.secret, config.previous_secrets)
    except ValueError as exc:
        return _fail(str(exc))
    issued, jti = tokens.issue_with_id(args.role, stage=args.stage, ttl=ttl, subject=args.subject)
    print(f"jti: {jti}", file=sys.stderr)
    print(issued)
    return 0


def revoke(config: Config, given: str) -> int:
    """``forumcast token revoke ID``: append the revocation to the shared store."""
    if not config.redis_url:
        return _fail(
            "token revoke needs the shared store (redis_url or --redis-url); with the in-memory store "
            "revoke through the running server: POST /api/v1/tokens/revoke with an ops token"
        )
    jti, expires = given, None
    if given.count(".") == 2:  # a whole token: it must be one of ours
        if not config.secret:
            return _fail("revoking a whole token needs the 'secret' that signed it (or give its jti)")
        try:
            who = Tokens(config.secret, config.previous_secrets).verify(given, allow_expired=True)
        except (ValueError, ForumcastError) as exc:
            return _fail(f"cannot revoke that token: {getattr(exc, 'message', exc)}")
        jti, expires = who.jti, who.expires
    try:
        event = load_event(config, now=datetime.now(UTC))
        entry = asyncio.run(_revoke(config.redis_url, event.id, jti, expires))
    except ForumcastError as exc:
        return _fail(exc.message)
    print(f"revoked {entry['jti']}" + (f" (token expires {expires})" if expires else ""))
    return 0


async def _revoke(redis_url: str, namespace: str, jti: str, expires: int | None) -> dict[str, Any]:
    store = open_store(redis_url, namespace=namespace)
    try:
        clock = SystemClock()
        entry = await Revocations().revoke(store, jti, expires=expires, at=clock.wall())
        who = {"subject": "forumcast token revoke", "role": "cli", "scope": None, "jti": ""}
        await audit.append(
            store, at=clock.now(), who=who, action="token.revoke", target=f"token:{jti}", remote="cli"
        )
        return entry
    finally:
        await store.close()


EXHIBITS = Command(
    "exhibits", "the exhibition: ingest a 3D model", exhibits_cli.add_arguments, exhibits_cli.main
)


def main(argv: Sequence[str] | None = None, *, extra: Iterable[Command] = ()) -> int:
    args = build_parser(extra).parse_args(argv)
    if getattr(args, "run", None) is not None:
        return int(args.run(args))
    flags = {
        k: v
        for k, v in vars(args).items()
        if k in ("host", "port", "redis_url", "workers", "data_dir", "event", "real_dates")
        or k in ("log_format", "log_level")
    }
    try:
        config = load_config(args.config, overrides=flags)
    except ConfigError as exc:
        return _fail(exc.message)
    if args.command == "serve":
        return serve(config)
    return token(config, args)


if __name__ == "__main__":
    sys.exit(main())
