"""merchants and checkouts

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "merchants",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("category", sa.String(length=60), nullable=False),
        sa.Column("settlement_currency", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("review_reason", sa.Text(), nullable=True),
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
            "settlement_currency IN ('NGN', 'USD', 'GBP', 'EUR', 'BTC', 'ETH', 'USDT')",
            name=op.f("ck_merchants_currency"),
        ),
        sa.CheckConstraint(
            "status IN ('PENDING_REVIEW', 'ACTIVE', 'SUSPENDED', 'REJECTED')",
            name=op.f("ck_merchants_status"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_merchants_user_id_users"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_merchants")),
        sa.UniqueConstraint("user_id", name=op.f("uq_merchants_user_id")),
    )
    op.create_table(
        "checkouts",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("merchant_id", sa.UUID(), nullable=False),
        sa.Column("currency", sa.String(length=8), nullable=False),
        sa.Column("amount", sa.Numeric(precision=38, scale=18), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("reference", sa.String(length=64), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payment_method", sa.String(length=16), nullable=True),
        sa.Column("payer_id", sa.UUID(), nullable=True),
        sa.Column("payment_transaction_id", sa.UUID(), nullable=True),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("fee", sa.Numeric(precision=38, scale=18), server_default="0", nullable=False),
        sa.Column(
            "refunded", sa.Numeric(precision=38, scale=18), server_default="0", nullable=False
        ),
        sa.Column(
            "fee_returned", sa.Numeric(precision=38, scale=18), server_default="0", nullable=False
        ),
        sa.Column(
            "refunded_from_payable",
            sa.Numeric(precision=38, scale=18),
            server_default="0",
            nullable=False,
        ),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("settlement_transaction_id", sa.UUID(), nullable=True),
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
            "(status = 'REFUNDED') = (refunded = amount)", name=op.f("ck_checkouts_refunded")
        ),
        sa.CheckConstraint(
            "(status IN ('PAID', 'REFUNDED')) = (payment_transaction_id IS NOT NULL)",
            name=op.f("ck_checkouts_paid"),
        ),
        sa.CheckConstraint(
            "currency IN ('NGN', 'USD', 'GBP', 'EUR', 'BTC', 'ETH', 'USDT')",
            name=op.f("ck_checkouts_currency"),
        ),
        sa.CheckConstraint(
            "payment_method IS NULL OR payment_method IN ('WALLET', 'INSTALLMENTS')",
            name=op.f("ck_checkouts_method"),
        ),
        sa.CheckConstraint(
            "status IN ('OPEN', 'PAID', 'EXPIRED', 'CANCELLED', 'REFUNDED')",
            name=op.f("ck_checkouts_status"),
        ),
        sa.CheckConstraint(
            "amount > 0 AND fee >= 0 AND fee <= amount AND refunded >= 0 AND refunded <= amount AND fee_returned >= 0 AND fee_returned <= fee",
            name=op.f("ck_checkouts_amounts"),
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.id"],
            name=op.f("fk_checkouts_merchant_id_merchants"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["payer_id"],
            ["users.id"],
            name=op.f("fk_checkouts_payer_id_users"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["payment_transaction_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_checkouts_payment_transaction_id_ledger_transactions"),
        ),
        sa.ForeignKeyConstraint(
            ["settlement_transaction_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_checkouts_settlement_transaction_id_ledger_transactions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkouts")),
    )
    op.create_index(
        "ix_checkouts_merchant_created",
        "checkouts",
        ["merchant_id", sa.literal_column("created_at DESC"), sa.literal_column("id DESC")],
        unique=False,
    )
    op.create_index(
        "ix_checkouts_open_expiry",
        "checkouts",
        ["expires_at"],
        unique=False,
        postgresql_where=sa.text("status = 'OPEN'"),
    )
    op.create_index(
        "ix_checkouts_unsettled",
        "checkouts",
        ["merchant_id", "paid_at"],
        unique=False,
        postgresql_where=sa.text("paid_at IS NOT NULL AND settled_at IS NULL"),
    )
    op.create_index(
        "uq_checkouts_merchant_reference",
        "checkouts",
        ["merchant_id", "reference"],
        unique=True,
        postgresql_where=sa.text("reference IS NOT NULL"),
    )
    op.create_table(
        "checkout_refunds",
        sa.Column("transaction_id", sa.UUID(), nullable=False),
        sa.Column("checkout_id", sa.UUID(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["checkout_id"],
            ["checkouts.id"],
            name=op.f("fk_checkout_refunds_checkout_id_checkouts"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_checkout_refunds_transaction_id_ledger_transactions"),
        ),
        sa.PrimaryKeyConstraint("transaction_id", name=op.f("pk_checkout_refunds")),
    )
    op.create_index(
        "ix_checkout_refunds_checkout_id",
        "checkout_refunds",
        ["checkout_id", "created_at"],
        unique=False,
    )
    op.add_column("wallets", sa.Column("merchant_id", sa.UUID(), nullable=True))
    op.create_index(
        "uq_wallets_merchant_payable",
        "wallets",
        ["merchant_id", "currency", "shard"],
        unique=True,
        postgresql_where=sa.text("kind = 'MERCHANT_PAYABLE'"),
    )
    op.create_foreign_key(
        op.f("fk_wallets_merchant_id_merchants"),
        "wallets",
        "merchants",
        ["merchant_id"],
        ["id"],
        ondelete="RESTRICT",
    )
    op.create_check_constraint(
        op.f("ck_wallets_merchant"),
        "wallets",
        "(kind = 'MERCHANT_PAYABLE') = (merchant_id IS NOT NULL)",
    )
    # Payables are keyed by merchant: the platform-account index no longer covers them.
    op.drop_index("uq_wallets_platform_account", table_name="wallets")
    op.create_index(
        "uq_wallets_platform_account",
        "wallets",
        ["kind", "currency", "shard"],
        unique=True,
        postgresql_where=sa.text("kind NOT IN ('CUSTOMER', 'MERCHANT_PAYABLE')"),
    )


def downgrade() -> None:
    op.drop_index("uq_wallets_platform_account", table_name="wallets")
    op.create_index(
        "uq_wallets_platform_account",
        "wallets",
        ["kind", "currency", "shard"],
        unique=True,
        postgresql_where=sa.text("kind <> 'CUSTOMER'"),
    )
    op.drop_constraint(op.f("ck_wallets_merchant"), "wallets", type_="check")
    op.drop_constraint(op.f("fk_wallets_merchant_id_merchants"), "wallets", type_="foreignkey")
    op.drop_index(
        "uq_wallets_merchant_payable",
        table_name="wallets",
        postgresql_where=sa.text("kind = 'MERCHANT_PAYABLE'"),
    )
    op.drop_column("wallets", "merchant_id")
    op.drop_index("ix_checkout_refunds_checkout_id", table_name="checkout_refunds")
    op.drop_table("checkout_refunds")
    op.drop_index(
        "uq_checkouts_merchant_reference",
        table_name="checkouts",
        postgresql_where=sa.text("reference IS NOT NULL"),
    )
    op.drop_index(
        "ix_checkouts_unsettled",
        table_name="checkouts",
        postgresql_where=sa.text("paid_at IS NOT NULL AND settled_at IS NULL"),
    )
    op.drop_index(
        "ix_checkouts_open_expiry",
        table_name="checkouts",
        postgresql_where=sa.text("status = 'OPEN'"),
    )
    op.drop_index("ix_checkouts_merchant_created", table_name="checkouts")
    op.drop_table("checkouts")
    op.drop_table("merchants")
