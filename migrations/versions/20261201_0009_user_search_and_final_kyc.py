"""user search indexes and final KYC rejections

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Trigram indexes serve `users(search:)` (ILIKE '%fragment%' on three columns) without a scan.
# pg_trgm ships with PostgreSQL's contrib and is a trusted extension (the database owner may
# create it); where it is missing (the embedded server) the search still works, unindexed.
_SEARCH = """
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm') THEN
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
    CREATE INDEX IF NOT EXISTS ix_users_email_trgm ON users USING gin (email gin_trgm_ops);
    CREATE INDEX IF NOT EXISTS ix_users_full_name_trgm ON users USING gin (full_name gin_trgm_ops);
    CREATE INDEX IF NOT EXISTS ix_users_phone_number_trgm
      ON users USING gin (phone_number gin_trgm_ops);
  END IF;
END
$$;
"""


def upgrade() -> None:
    op.add_column(
        "users",
        sa.Column("kyc_may_resubmit", sa.Boolean(), server_default=sa.text("true"), nullable=False),
    )
    op.execute(_SEARCH)


def downgrade() -> None:
    for name in ("ix_users_phone_number_trgm", "ix_users_full_name_trgm", "ix_users_email_trgm"):
        op.execute(f"DROP INDEX IF EXISTS {name}")
    op.drop_column("users", "kyc_may_resubmit")
