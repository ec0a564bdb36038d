"""Engines, the embedded PostgreSQL, and migrations."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from sqlalchemy import make_url, text
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
