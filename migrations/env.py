"""Alembic environment: async engine, one advisory lock so concurrent migrators queue."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import create_async_engine

from stacklo.config import Settings
from stacklo.data.tables import metadata

# Any constant works; it only has to be the same for every migrator.
MIGRATION_LOCK = 7_246_001


def _url() -> str:
    url = context.config.attributes.get("database_url") or Settings().database_url
    if not url:
        raise SystemExit("set STACKLO_DATABASE_URL (or DATABASE_URL) to migrate")
    return str(url)


def _run(connection: Connection) -> None:
    connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK})
    try:
        context.configure(connection=connection, target_metadata=metadata, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
    finally:
        connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK})
        connection.commit()


async def _online() -> None:
    engine = create_async_engine(_url())
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_online())
