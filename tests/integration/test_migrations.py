"""Migrations build exactly the schema the code declares, and re-running them is a no-op."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from stacklo.data.db import migrate
from stacklo.data.tables import metadata


async def test_tables_match_the_migrations(engine: AsyncEngine) -> None:
    def diff(conn: Connection) -> list[object]:
        return list(compare_metadata(MigrationContext.configure(conn), metadata))

    async with engine.connect() as conn:
        assert await conn.run_sync(diff) == []


def test_migrating_again_changes_nothing(integration_url: str) -> None:
    migrate(integration_url)
