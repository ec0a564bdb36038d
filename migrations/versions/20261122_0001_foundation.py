"""foundation

Revision ID: 0001
Revises:
Create Date: 2026-11-22 03:26:22.095823
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("full_name", sa.String(length=120), nullable=False),
        sa.Column("phone_number", sa.String(length=16), nullable=True),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column(
            "roles",
            sa.ARRAY(sa.String(length=16)),
            server_default=sa.text("'{CUSTOMER}'"),
            nullable=False,
        ),
        sa.Column("kyc_status", sa.String(length=16), server_default="PENDING", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "kyc_status IN ('PENDING', 'SUBMITTED', 'VERIFIED', 'REJECTED')",
            name=op.f("ck_users_kyc_status"),
        ),
        sa.CheckConstraint(
            "roles <@ ARRAY['CUSTOMER', 'MERCHANT', 'SUPPORT', 'ADMIN']::varchar[]",
            name=op.f("ck_users_roles"),
        ),
        sa.CheckConstraint("email = lower(email)", name=op.f("ck_users_email_lower")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
        sa.UniqueConstraint("phone_number", name=op.f("uq_users_phone_number")),
    )
    op.create_index(
        "ix_users_created_at_id",
        "users",
        [sa.literal_column("created_at DESC"), sa.literal_column("id DESC")],
        unique=False,
    )
    op.create_table(
        "audit_events",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("actor_id", sa.UUID(), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target_type", sa.String(length=32), nullable=True),
        sa.Column("target_id", sa.String(length=64), nullable=True),
        sa.Column("ip_address", postgresql.INET(), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column(
            "metadata",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["actor_id"],
            ["users.id"],
            name=op.f("fk_audit_events_actor_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    op.create_index(
        "ix_audit_events_action_id",
        "audit_events",
        ["action", sa.literal_column("id DESC")],
        unique=False,
    )
    op.create_index(
        "ix_audit_events_actor_id_id",
        "audit_events",
        ["actor_id", sa.literal_column("id DESC")],
        unique=False,
    )
    op.create_table(
        "auth_sessions",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_reason", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_auth_sessions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auth_sessions")),
    )
    op.create_index(
        "ix_auth_sessions_live_user",
        "auth_sessions",
        ["user_id"],
        unique=False,
        postgresql_where=sa.text("revoked_at IS NULL"),
    )
    op.create_table(
        "wallets",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=True),
        sa.Column("kind", sa.String(length=24), server_default="CUSTOMER", nullable=False),
        sa.Column("currency", sa.String(length=8), nullable=False),
        sa.Column("shard", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column(
            "balance", sa.Numeric(precision=38, scale=18), server_default="0", nullable=False
        ),
        sa.Column("held", sa.Numeric(precision=38, scale=18), server_default="0", nullable=False),
        sa.Column("status", sa.String(length=8), server_default="ACTIVE", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "(kind = 'CUSTOMER') = (user_id IS NOT NULL)", name=op.f("ck_wallets_owner")
        ),
        sa.CheckConstraint(
            "currency IN ('NGN', 'USD', 'GBP', 'EUR', 'BTC', 'ETH', 'USDT')",
            name=op.f("ck_wallets_currency"),
        ),
        sa.CheckConstraint(
            "kind <> 'CUSTOMER' OR (balance >= 0 AND held >= 0 AND held <= balance)",
            name=op.f("ck_wallets_customer_non_negative"),
        ),
        sa.CheckConstraint(
            "kind IN ('CUSTOMER', 'PROVIDER_CLEARING', 'FEES', 'FX_LIQUIDITY', 'BNPL_RECEIVABLE', 'MERCHANT_PAYABLE')",
            name=op.f("ck_wallets_kind"),
        ),
        sa.CheckConstraint("status IN ('ACTIVE', 'FROZEN')", name=op.f("ck_wallets_status")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_wallets_user_id_users"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wallets")),
    )
    op.create_index(
        "uq_wallets_platform_account",
        "wallets",
        ["kind", "currency", "shard"],
        unique=True,
        postgresql_where=sa.text("kind <> 'CUSTOMER'"),
    )
    op.create_index(
        "uq_wallets_user_currency",
        "wallets",
        ["user_id", "currency"],
        unique=True,
        postgresql_where=sa.text("kind = 'CUSTOMER'"),
    )
    op.create_table(
        "ledger_transactions",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("reference", sa.String(length=24), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("currency", sa.String(length=8), nullable=False),
        sa.Column("amount", sa.Numeric(precision=38, scale=18), nullable=False),
        sa.Column("fee", sa.Numeric(precision=38, scale=18), server_default="0", nullable=False),
        sa.Column("converted_currency", sa.String(length=8), nullable=True),
        sa.Column("converted_amount", sa.Numeric(precision=38, scale=18), nullable=True),
        sa.Column("exchange_rate", sa.Numeric(precision=38, scale=18), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("initiator_id", sa.UUID(), nullable=True),
        sa.Column("source_wallet_id", sa.UUID(), nullable=True),
        sa.Column("target_wallet_id", sa.UUID(), nullable=True),
        sa.Column(
            "metadata",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "kind IN ('DEPOSIT', 'WITHDRAWAL', 'TRANSFER', 'EXCHANGE', 'CRYPTO_BUY', 'CRYPTO_SELL', 'CHECKOUT_PAYMENT', 'INSTALLMENT_REPAYMENT', 'LATE_FEE', 'SETTLEMENT', 'REFUND', 'ADJUSTMENT')",
            name=op.f("ck_ledger_transactions_kind"),
        ),
        sa.CheckConstraint(
            "status IN ('CREATED', 'PROCESSING', 'COMPLETED', 'FAILED', 'CANCELLED')",
            name=op.f("ck_ledger_transactions_status"),
        ),
        sa.CheckConstraint("amount > 0 AND fee >= 0", name=op.f("ck_ledger_transactions_amounts")),
        sa.ForeignKeyConstraint(
            ["initiator_id"], ["users.id"], name=op.f("fk_ledger_transactions_initiator_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["source_wallet_id"],
            ["wallets.id"],
            name=op.f("fk_ledger_transactions_source_wallet_id_wallets"),
        ),
        sa.ForeignKeyConstraint(
            ["target_wallet_id"],
            ["wallets.id"],
            name=op.f("fk_ledger_transactions_target_wallet_id_wallets"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_transactions")),
        sa.UniqueConstraint("reference", name=op.f("uq_ledger_transactions_reference")),
    )
    op.create_index(
        "ix_ledger_transactions_source_wallet_id",
        "ledger_transactions",
        ["source_wallet_id"],
        unique=False,
    )
    op.create_index(
        "ix_ledger_transactions_target_wallet_id",
        "ledger_transactions",
        ["target_wallet_id"],
        unique=False,
    )
    op.create_table(
        "refresh_tokens",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("session_id", sa.UUID(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["auth_sessions.id"],
            name=op.f("fk_refresh_tokens_session_id_auth_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refresh_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_refresh_tokens_token_hash")),
    )
    op.create_index("ix_refresh_tokens_session_id", "refresh_tokens", ["session_id"], unique=False)
    op.create_table(
        "ledger_entries",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("transaction_id", sa.UUID(), nullable=False),
        sa.Column("wallet_id", sa.UUID(), nullable=False),
        sa.Column("currency", sa.String(length=8), nullable=False),
        sa.Column("amount", sa.Numeric(precision=38, scale=18), nullable=False),
        sa.Column("balance_after", sa.Numeric(precision=38, scale=18), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("amount <> 0", name=op.f("ck_ledger_entries_non_zero")),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_ledger_entries_transaction_id_ledger_transactions"),
        ),
        sa.ForeignKeyConstraint(
            ["wallet_id"], ["wallets.id"], name=op.f("fk_ledger_entries_wallet_id_wallets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_entries")),
    )
    op.create_index(
        "ix_ledger_entries_transaction_id", "ledger_entries", ["transaction_id"], unique=False
    )
    op.create_index(
        "ix_ledger_entries_wallet_id_id",
        "ledger_entries",
        ["wallet_id", sa.literal_column("id DESC")],
        unique=False,
    )
    op.create_table(
        "transaction_status_changes",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("transaction_id", sa.UUID(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_transaction_status_changes_transaction_id_ledger_transactions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transaction_status_changes")),
    )
    op.create_index(
        "ix_transaction_status_changes_transaction_id",
        "transaction_status_changes",
        ["transaction_id", "id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        "ix_transaction_status_changes_transaction_id", table_name="transaction_status_changes"
    )
    op.drop_table("transaction_status_changes")
    op.drop_index("ix_ledger_entries_wallet_id_id", table_name="ledger_entries")
    op.drop_index("ix_ledger_entries_transaction_id", table_name="ledger_entries")
    op.drop_table("ledger_entries")
    op.drop_index("ix_refresh_tokens_session_id", table_name="refresh_tokens")
    op.drop_table("refresh_tokens")
    op.drop_index("ix_ledger_transactions_target_wallet_id", table_name="ledger_transactions")
    op.drop_index("ix_ledger_transactions_source_wallet_id", table_name="ledger_transactions")
    op.drop_table("ledger_transactions")
    op.drop_index(
        "uq_wallets_user_currency",
        table_name="wallets",
        postgresql_where=sa.text("kind = 'CUSTOMER'"),
    )
    op.drop_index(
        "uq_wallets_platform_account",
        table_name="wallets",
        postgresql_where=sa.text("kind <> 'CUSTOMER'"),
    )
    op.drop_table("wallets")
    op.drop_index(
        "ix_auth_sessions_live_user",
        table_name="auth_sessions",
        postgresql_where=sa.text("revoked_at IS NULL"),
    )
    op.drop_table("auth_sessions")
    op.drop_index("ix_audit_events_actor_id_id", table_name="audit_events")
    op.drop_index("ix_audit_events_action_id", table_name="audit_events")
    op.drop_table("audit_events")
    op.drop_index("ix_users_created_at_id", table_name="users")
    op.drop_table("users")
