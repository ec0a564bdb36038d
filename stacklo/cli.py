"""``stacklo serve | worker | migrate | create-admin | ledger verify | persisted-queries register
| schema``."""

from __future__ import annotations

import argparse
import asyncio
import errno
import functools
import ipaddress
import json
import os
import signal
import socket
import sys
from collections.abc import Sequence
from typing import Any

from stacklo.config import Settings


def _fail(message: str, code: int = 1) -> int:
    print(f"stacklo: error: {message}", file=sys.stderr)
    return code


def _database_url(settings: Settings) -> str:
    """The configured server, checked; or the embedded one, started and migrated."""
    from stacklo.data.db import check_connection, migrate, start_embedded

    if settings.database_url is None:
        url = start_embedded(settings.data_dir)
        migrate(url)
        return url
    url = settings.database_url
    try:
        from sqlalchemy import make_url

        make_url(url)
        asyncio.run(check_connection(url))
    except Exception as e:  # any reason: say it in one line
        raise SystemExit(
            _fail(f"cannot connect to the database ({_redacted(url)}): {_reason(e)}", 2)
        ) from None
    return url


def _redacted(url: str) -> str:
    try:
        from sqlalchemy import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # unparsable: show nothing of it
        return "unparsable URL"


def _reason(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text[:200]


def _port_free(host: str, port: int) -> str | None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                return f"port {port} on {host} is already in use"
            return f"cannot listen on {host}:{port}: {e.strerror}"
    return None


def _refuse_production(settings: Settings) -> int | None:
    """Exit code 2 and one line per reason when production would run on laptop parts."""
    problems = settings.production_problems()
    for problem in problems:
        _fail(f"production refuses to start: {problem}")
    return 2 if problems else None


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = Settings()
    refused = _refuse_production(settings)
    if refused is not None:
        return refused
    problem = _port_free(args.host, args.port)
    if problem:
        return _fail(problem)
    if settings.database_url is not None:
        # Production: migrations are an explicit step (`stacklo migrate`), not a side effect.
        _database_url(settings)
    elif args.workers > 1:
        # Several processes share one embedded server: start and migrate it once, here.
        os.environ["STACKLO_DATABASE_URL"] = _database_url(settings)
        os.environ.setdefault("STACKLO_RUN_WORKER_IN_PROCESS", "true")
        if not settings.redis_url:
            # No Redis: the workers fan out through the embedded PostgreSQL's LISTEN/NOTIFY.
            url = os.environ["STACKLO_DATABASE_URL"]
            os.environ.setdefault("STACKLO_BROADCAST_URL", url.replace("+asyncpg", "", 1))
        settings.secret  # noqa: B018 - create the shared secret before the workers race for it
    # uvicorn re-raises SIGTERM after its graceful shutdown; with the default handler that kills
    # the process before atexit runs, leaving the embedded PostgreSQL behind. Exit instead.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    config = uvicorn.Config(
        "stacklo.app:app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        # Our own middleware decides which proxies may set X-Forwarded-For.
        proxy_headers=False,
        server_header=False,
        log_level="warning",
        access_log=False,
        ws_ping_interval=20,
        ws_ping_timeout=20,
        ws_per_message_deflate=settings.ws_compression,
        # A socket message is a request body: the same bound (a larger one closes with 1009).
        ws_max_size=settings.max_body_bytes,
    )
    announce = functools.partial(_announce, args.host, args.port, settings)
    if args.workers == 1:

        class Announcing(uvicorn.Server):
            async def startup(self, sockets: Any = None) -> None:
                await super().startup(sockets)
                if self.started:  # the socket is bound: say where
                    announce()

        server = Announcing(config)
        server.run()
        return 0 if server.started else 3  # uvicorn's own exit code for a failed start
    # What uvicorn.run does for several workers, with the announcement once the port is bound.
    from uvicorn.supervisors import Multiprocess

    sock = config.bind_socket()
    announce()
    Multiprocess(config, sockets=[sock]).run()
    return 0


def _announce(host: str, port: int, settings: Settings) -> None:
    """Where to point a browser or a client: one line for people, one JSON log line."""
    from stacklo.observability import configure_logging, log

    configure_logging(settings.log_level, settings.log_json)
    try:
        everywhere = ipaddress.ip_address(host).is_unspecified
    except ValueError:
        everywhere = False
    shown = "localhost" if everywhere else host
    shown = f"[{shown}]" if ":" in shown else shown
    url = f"http://{shown}:{port}/graphql"
    ide = "open it in a browser for GraphiQL" if settings.graphiql_enabled else "GraphiQL is off"
    print(f"Stacklo is listening on {url} ({ide}; WebSocket: ws{url[4:]})", file=sys.stderr)
    log.info("listening", url=url, host=host, port=port, graphiql=settings.graphiql_enabled)


def worker(args: argparse.Namespace) -> int:
    """The outbox relay and the rate ticker (later also the scheduler), safe to run several
    times: each job leads through its own advisory lock."""
    from stacklo.app import build_rates, run_jobs
    from stacklo.data.db import create_engine
    from stacklo.data.outbox import OutboxBell
    from stacklo.data.uow import SqlUnitOfWorkFactory
    from stacklo.observability import configure_logging, log
    from stacklo.realtime.broadcast import make_broadcast

    settings = Settings()
    refused = _refuse_production(settings)
    if refused is not None:
        return refused
    if not settings.redis_url:
        return _fail(
            "stacklo worker publishes through Redis: set REDIS_URL "
            "(the embedded default runs the relay inside serve)"
        )
    url = _database_url(settings)
    configure_logging(settings.log_level, settings.log_json)

    async def run() -> int:
        # Five connections are held for good (relay, ticker, scheduler, notifier, outbox bell);
        # the jobs borrow beside them.
        engine = create_engine(url, pool_size=8, max_overflow=4)
        broadcast = make_broadcast(settings.broadcast_url)
        try:
            await broadcast.connect()
        except Exception as e:  # Redis down: one line, non-zero
            await engine.dispose()
            return _fail(f"cannot connect to Redis: {_reason(e)}", 2)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        bell = OutboxBell(engine)
        uow = SqlUnitOfWorkFactory(engine)
        uow.committed = bell.ring
        rates = build_rates(settings, uow)
        log.info("worker_started")
        try:
            await asyncio.gather(
                run_jobs(settings, engine, broadcast, rates, stop, bell), bell.run(stop)
            )
        finally:
            await broadcast.disconnect()
            await engine.dispose()
        log.info("worker_stopped")
        return 0

    return asyncio.run(run())


def migrate_cmd(args: argparse.Namespace) -> int:
    from stacklo.data.db import migrate

    settings = Settings()
    url = _database_url(settings)  # embedded: started and migrated already
    if settings.database_url is not None:
        migrate(url)
    print("migrations applied")
    return 0


def create_admin(args: argparse.Namespace) -> int:
    from stacklo.data.db import create_engine
    from stacklo.domain.auth import SignUp
    from stacklo.domain.errors import DomainError
    from stacklo.domain.models import RequestMeta, Role

    settings = Settings()
    url = _database_url(settings)

    async def run() -> int:
        from stacklo.app import build_services

        engine = create_engine(url, pool_size=1, max_overflow=0)
        try:
            services = build_services(settings, engine)
            try:
                issued = await services.auth.sign_up(
                    SignUp(
                        args.email,
                        args.password,
                        args.full_name,
                        None,
                        args.currency,
                        RequestMeta(user_agent="stacklo-cli"),
                        roles=(Role.ADMIN,),
                    )
                )
            except DomainError as e:
                return _fail(f"{e.code.value}: {e.message}")
            print(f"admin created: {issued.user.email} ({issued.user.id})")
            return 0
        finally:
            await engine.dispose()

    return asyncio.run(run())


def ledger_verify(args: argparse.Namespace) -> int:
    from stacklo.data.db import create_engine
    from stacklo.data.ledger_check import verify

    url = _database_url(Settings())

    async def run() -> int:
        engine = create_engine(url, pool_size=1, max_overflow=0)
        try:
            report = await verify(engine)
        finally:
            await engine.dispose()
        if args.json:
            print(
                json.dumps(
                    {
                        "ok": report.ok,
                        "violations": report.violations,
                        "transactions": report.transactions,
                        "entries": report.entries,
                        "accounts": report.accounts,
                        "customerBalances": {
                            c: str(v) for c, v in report.customer_balances.items()
                        },
                        "customerHeld": {c: str(v) for c, v in report.customer_held.items()},
                    }
                )
            )
            return 0 if report.ok else 1
        if report.ok:
            print(
                f"ledger verify: OK ({report.transactions} transactions, {report.entries} entries, "
                f"{report.accounts} accounts)"
            )
            return 0
        for line in report.violations:
            print(f"VIOLATION {line}")
        print(f"ledger verify: {len(report.violations)} violation(s)")
        return 1

    return asyncio.run(run())


def register_operations(args: argparse.Namespace) -> int:
    """Register a client's operations (Apollo manifests or .graphql files) for the allowlist."""
    from pathlib import Path

    from stacklo.data.db import create_engine
    from stacklo.data.persisted import Registered
    from stacklo.web.persisted import ManifestError, operations_in

    operations = []
    for name in args.files:
        path = Path(name)
        if not path.is_file():
            return _fail(f"{name}: no such file")
        try:
            operations += operations_in(path.name, path.read_text())
        except ManifestError as e:
            return _fail(str(e))
    url = _database_url(Settings())

    async def run() -> int:
        engine = create_engine(url, pool_size=1, max_overflow=0)
        try:
            added = await Registered(engine).register(operations)
        finally:
            await engine.dispose()
        print(f"{len(operations)} operations registered ({added} new)")
        return 0

    return asyncio.run(run())


def schema_cmd(args: argparse.Namespace) -> int:
    from stacklo.api import schema

    print(schema.as_str())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from stacklo.domain.money import CurrencyCode

    parser = argparse.ArgumentParser(prog="stacklo", description="Stacklo GraphQL server.")
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("serve", help="run the HTTP/WebSocket server")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1)
    p.set_defaults(run=serve)

    p = commands.add_parser("worker", help="run the outbox relay (needs REDIS_URL)")
    p.set_defaults(run=worker)

    p = commands.add_parser("migrate", help="apply database migrations")
    p.set_defaults(run=migrate_cmd)

    p = commands.add_parser("create-admin", help="create a user with the ADMIN role")
    p.add_argument("--email", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--full-name", default="Administrator")
    p.add_argument(
        "--currency", type=CurrencyCode, default=CurrencyCode.NGN, choices=list(CurrencyCode)
    )
    p.set_defaults(run=create_admin)

    p = commands.add_parser("ledger", help="ledger tools")
    ledger = p.add_subparsers(dest="ledger_command", required=True)
    v = ledger.add_parser(
        "verify", help="check every ledger invariant; non-zero exit on a violation"
    )
    v.add_argument(
        "--json",
        action="store_true",
        help="print the report as JSON, with what customers hold per currency",
    )
    v.set_defaults(run=ledger_verify)

    p = commands.add_parser("persisted-queries", help="operations registered ahead of time")
    persisted = p.add_subparsers(dest="persisted_command", required=True)
    r = persisted.add_parser(
        "register",
        help="register a client's operations (Apollo persisted-query manifests, .graphql files)",
    )
    r.add_argument("files", nargs="+", metavar="FILE")
    r.set_defaults(run=register_operations)

    p = commands.add_parser("schema", help="print the GraphQL schema (SDL)")
    p.set_defaults(run=schema_cmd)

    args = parser.parse_args(argv)
    if getattr(args, "workers", 1) < 1:
        return _fail("--workers must be at least 1")
    try:
        code: int = args.run(args)
    except KeyboardInterrupt:
        return 130
    except SystemExit as e:
        return int(e.code) if isinstance(e.code, int) else 1
    return code


if __name__ == "__main__":
    sys.exit(main())
