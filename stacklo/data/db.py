"""Engines, the embedded PostgreSQL, and migrations."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from types import TracebackType

from sqlalchemy import exc, make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

log = logging.getLogger(__name__)

EMBEDDED_DATABASE = "stacklo"


def create_engine(url: str, *, pool_size: int = 10, max_overflow: int = 10) -> AsyncEngine:
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        # No pre-ping: it costs a round trip per checkout on every request. A connection that
        # died with the server fails its statement once; money mutations are idempotent, so
        # the client's retry is safe. Recycling bounds how stale a pooled connection gets.
        pool_recycle=1800,
        # Statements are short; a stuck one should fail rather than hold a pool slot forever.
        connect_args={"command_timeout": 30, "server_settings": {"application_name": "stacklo"}},
    )


# PostgreSQL saying "not now": shutting down (57P01), crashed (57P02), starting up or in
# recovery (57P03), out of connection slots (53300). Class 08 is a connection that failed.
_NOT_NOW = frozenset({"57P01", "57P02", "57P03", "53300"})
_DRIVERS = ("asyncpg", "sqlalchemy")


def unreachable(error: BaseException) -> bool:
    """The database could not be reached or dropped the connection (a restart, a failover, a
    network blip, every pooled connection busy), as opposed to a statement that failed.

    Nothing was half-written: a transaction whose connection broke is rolled back by the
    server, and one that committed before the answer was lost is found again by its
    idempotency key, so the request can be retried as it is. The error's causes and contexts
    are searched, since the driver's error arrives wrapped (and a rollback on a dead
    connection fails with the original as its context)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, exc.DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, exc.TimeoutError):  # no pooled connection came free in time
            return True
        state = getattr(current, "sqlstate", None)
        if isinstance(state, str) and (state.startswith("08") or state in _NOT_NOW):
            return True
        # Refused, reset, timed out, no route: raised by the driver's socket, not by a file.
        if isinstance(current, OSError) and _raised_in(current.__traceback__, _DRIVERS):
            return True
        current = current.__cause__ or current.__context__
    return False


def _raised_in(traceback: TracebackType | None, packages: tuple[str, ...]) -> bool:
    while traceback is not None:
        module = str(traceback.tb_frame.f_globals.get("__name__", ""))
        if module.split(".")[0] in packages:
            return True
        traceback = traceback.tb_next
    return False


def start_embedded(data_dir: Path) -> str:
    """Start (or reuse) PostgreSQL from the ``pgserver`` wheel in ``data_dir/pg``.

    Returns an asyncpg URL over the server's Unix socket. The server stops when the last
    process that started it exits, and the data stays in the folder.
    """
    from pgserver.postgres_server import get_server

    pgdata = (data_dir / "pg").resolve()
    pgdata.mkdir(parents=True, exist_ok=True)
    server = get_server(pgdata, cleanup_mode="stop")
    # EMBEDDED_DATABASE is a constant identifier, not input.
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{EMBEDDED_DATABASE}';")  # noqa: S608
    if "(1 row)" not in exists:
        server.psql(f"CREATE DATABASE {EMBEDDED_DATABASE};")
    uri = make_url(server.get_uri())
    url = URL.create(
        "postgresql+asyncpg",
        username=uri.username or "postgres",
        database=EMBEDDED_DATABASE,
        query=dict(uri.query),
    )
    return url.render_as_string(hide_password=False)


async def check_connection(url: str, limit_seconds: float = 10.0) -> None:
    """Raise with a readable reason if the database cannot be reached."""
    engine = create_async_engine(url, pool_size=1, max_overflow=0)
    try:
        async with asyncio.timeout(limit_seconds), engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    finally:
        await engine.dispose()


def migrations_dir() -> Path:
    """The alembic folder: inside the installed wheel, or beside the package in a checkout."""
    packaged = Path(__file__).resolve().parent.parent / "_migrations"
    if (packaged / "env.py").exists():
        return packaged
    return Path(__file__).resolve().parent.parent.parent / "migrations"


def migrate(url: str, revision: str = "head") -> None:
    """Apply migrations (synchronously; call it outside a running event loop)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.attributes["database_url"] = url
    command.upgrade(config, revision)
