"""deposits and withdrawals still waiting for the provider's word, for the reconciler's round

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_ledger_transactions_in_flight",
        "ledger_transactions",
        ["kind", "updated_at"],
        postgresql_where=sa.text("status = 'PROCESSING' AND kind IN ('DEPOSIT', 'WITHDRAWAL')"),
    )


def downgrade() -> None:
    op.drop_index("ix_ledger_transactions_in_flight", "ledger_transactions")
