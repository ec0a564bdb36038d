"""Migrations build exactly the schema the code declares, and re-running them is a no-op."""

import asyncio

import asyncpg
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from stacklo.data.db import migrate
from stacklo.data.tables import metadata

# Everything a migration could change, as text: tables and columns, constraints, indexes,
# triggers, functions and sequences, and the alembic revision.
SHAPE = """
SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable
       || ' ' || coalesce(column_default, '')
  FROM information_schema.columns WHERE table_schema = 'public'
UNION ALL SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' '
       || pg_get_constraintdef(oid) FROM pg_constraint WHERE connamespace = 'public'::regnamespace
UNION ALL SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = 'public'
UNION ALL SELECT 'trigger ' || tgname || ' ' || pg_get_triggerdef(oid) FROM pg_trigger
       WHERE NOT tgisinternal
UNION ALL SELECT 'function ' || proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace
UNION ALL SELECT 'sequence ' || sequencename FROM pg_sequences WHERE schemaname = 'public'
UNION ALL SELECT 'revision ' || version_num FROM alembic_version
"""


def _shape(url: str) -> list[str]:
    async def read() -> list[str]:
        conn = await asyncpg.connect(
            make_url(url).set(drivername="postgresql").render_as_string(False)
        )
        try:
            return sorted(row[0] for row in await conn.fetch(SHAPE))
        finally:
            await conn.close()

    return asyncio.run(read())


async def test_tables_match_the_migrations(engine: AsyncEngine) -> None:
    def diff(conn: Connection) -> list[object]:
        return list(compare_metadata(MigrationContext.configure(conn), metadata))

    async with engine.connect() as conn:
        assert await conn.run_sync(diff) == []


def test_migrating_again_changes_nothing(integration_url: str) -> None:
    before = _shape(integration_url)
    assert any(line.startswith("revision ") for line in before)
    migrate(integration_url)
    assert _shape(integration_url) == before
