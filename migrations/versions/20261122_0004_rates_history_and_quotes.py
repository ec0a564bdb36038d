"""rates history and quotes

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 06:56:06.039968
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rate_ticks",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("base", sa.String(length=8), nullable=False),
        sa.Column("quote", sa.String(length=8), nullable=False),
        sa.Column("mid", sa.Numeric(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "base IN ('NGN', 'USD', 'GBP', 'EUR', 'BTC', 'ETH', 'USDT')",
            name=op.f("ck_rate_ticks_base"),
        ),
        sa.CheckConstraint(
            "quote IN ('NGN', 'USD', 'GBP', 'EUR', 'BTC', 'ETH', 'USDT')",
            name=op.f("ck_rate_ticks_quote"),
        ),
        sa.CheckConstraint("mid > 0", name=op.f("ck_rate_ticks_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rate_ticks")),
    )
    op.create_index(
        "ix_rate_ticks_observed_at",
        "rate_ticks",
        [sa.literal_column("observed_at DESC")],
        unique=False,
    )
    op.create_index(
        "ix_rate_ticks_pair_observed_at",
        "rate_ticks",
        ["base", "quote", sa.literal_column("observed_at DESC")],
        unique=False,
    )
    op.create_table(
        "quotes",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("source_currency", sa.String(length=8), nullable=False),
        sa.Column("source_amount", sa.Numeric(precision=38, scale=18), nullable=False),
        sa.Column("target_currency", sa.String(length=8), nullable=False),
        sa.Column("target_amount", sa.Numeric(precision=38, scale=18), nullable=False),
        sa.Column("rate", sa.Numeric(), nullable=False),
        sa.Column("fee", sa.Numeric(precision=38, scale=18), nullable=False),
        sa.Column("mid", sa.Numeric(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("transaction_id", sa.UUID(), nullable=True),
        sa.CheckConstraint(
            "kind IN ('EXCHANGE', 'CRYPTO_BUY', 'CRYPTO_SELL')", name=op.f("ck_quotes_kind")
        ),
        sa.CheckConstraint(
            "source_currency IN ('NGN', 'USD', 'GBP', 'EUR', 'BTC', 'ETH', 'USDT')",
            name=op.f("ck_quotes_source_currency"),
        ),
        sa.CheckConstraint(
            "target_currency IN ('NGN', 'USD', 'GBP', 'EUR', 'BTC', 'ETH', 'USDT')",
            name=op.f("ck_quotes_target_currency"),
        ),
        sa.CheckConstraint(
            "(used_at IS NULL) = (transaction_id IS NULL)", name=op.f("ck_quotes_used")
        ),
        sa.CheckConstraint(
            "source_amount > 0 AND target_amount > 0 AND fee >= 0 AND fee < source_amount AND rate > 0 AND source_currency <> target_currency",
            name=op.f("ck_quotes_amounts"),
        ),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_quotes_transaction_id_ledger_transactions"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_quotes_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quotes")),
    )
    op.create_index(
        "ix_quotes_user_id_created_at",
        "quotes",
        ["user_id", sa.literal_column("created_at DESC")],
        unique=False,
    )
    op.create_index("uq_quotes_transaction_id", "quotes", ["transaction_id"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_quotes_transaction_id", table_name="quotes")
    op.drop_index("ix_quotes_user_id_created_at", table_name="quotes")
    op.drop_table("quotes")
    op.drop_index("ix_rate_ticks_pair_observed_at", table_name="rate_ticks")
    op.drop_index("ix_rate_ticks_observed_at", table_name="rate_ticks")
    op.drop_table("rate_ticks")
