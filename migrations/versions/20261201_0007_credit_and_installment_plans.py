"""credit and installment plans

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 09:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "credit_decisions",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("score", sa.SmallInteger(), nullable=False),
        sa.Column("currency", sa.String(length=8), nullable=False),
        sa.Column("credit_limit", sa.Numeric(precision=38, scale=18), nullable=False),
        sa.Column("reasons", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("factors", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("inputs", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('NONE', 'APPROVED', 'DECLINED', 'SUSPENDED')",
            name=op.f("ck_credit_decisions_status"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_credit_decisions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_decisions")),
    )
    op.create_index(
        "ix_credit_decisions_user_id",
        "credit_decisions",
        ["user_id", sa.literal_column("id DESC")],
        unique=False,
    )
    op.create_table(
        "credit_profiles",
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("currency", sa.String(length=8), nullable=False),
        sa.Column(
            "credit_limit", sa.Numeric(precision=38, scale=18), server_default="0", nullable=False
        ),
        sa.Column("score", sa.SmallInteger(), nullable=True),
        sa.Column(
            "reasons",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("suspended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('NONE', 'APPROVED', 'DECLINED', 'SUSPENDED')",
            name=op.f("ck_credit_profiles_status"),
        ),
        sa.CheckConstraint("credit_limit >= 0", name=op.f("ck_credit_profiles_limit")),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_credit_profiles_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_credit_profiles")),
    )
    op.create_table(
        "installment_plans",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("checkout_id", sa.UUID(), nullable=False),
        sa.Column("merchant_id", sa.UUID(), nullable=False),
        sa.Column("wallet_id", sa.UUID(), nullable=False),
        sa.Column("product", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("currency", sa.String(length=8), nullable=False),
        sa.Column("principal", sa.Numeric(precision=38, scale=18), nullable=False),
        sa.Column("fee", sa.Numeric(precision=38, scale=18), server_default="0", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "product IN ('PAY_IN_4', 'PAY_IN_3_MONTHLY', 'PAY_IN_6_MONTHLY')",
            name=op.f("ck_installment_plans_product"),
        ),
        sa.CheckConstraint(
            "status IN ('ACTIVE', 'COMPLETED', 'DEFAULTED', 'CANCELLED')",
            name=op.f("ck_installment_plans_status"),
        ),
        sa.CheckConstraint(
            "principal >= 0 AND fee >= 0", name=op.f("ck_installment_plans_amounts")
        ),
        sa.ForeignKeyConstraint(
            ["checkout_id"],
            ["checkouts.id"],
            name=op.f("fk_installment_plans_checkout_id_checkouts"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.id"],
            name=op.f("fk_installment_plans_merchant_id_merchants"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_installment_plans_user_id_users"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["wallet_id"], ["wallets.id"], name=op.f("fk_installment_plans_wallet_id_wallets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_installment_plans")),
        sa.UniqueConstraint("checkout_id", name=op.f("uq_installment_plans_checkout_id")),
    )
    op.create_index(
        "ix_installment_plans_user_created",
        "installment_plans",
        ["user_id", sa.literal_column("created_at DESC"), sa.literal_column("id DESC")],
        unique=False,
    )
    op.create_table(
        "installments",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("plan_id", sa.UUID(), nullable=False),
        sa.Column("sequence", sa.SmallInteger(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("principal", sa.Numeric(precision=38, scale=18), nullable=False),
        sa.Column("fee", sa.Numeric(precision=38, scale=18), server_default="0", nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column(
            "late_fee", sa.Numeric(precision=38, scale=18), server_default="0", nullable=False
        ),
        sa.Column(
            "principal_paid", sa.Numeric(precision=38, scale=18), server_default="0", nullable=False
        ),
        sa.Column(
            "fee_paid", sa.Numeric(precision=38, scale=18), server_default="0", nullable=False
        ),
        sa.Column(
            "late_fee_paid", sa.Numeric(precision=38, scale=18), server_default="0", nullable=False
        ),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('SCHEDULED', 'PAID', 'OVERDUE', 'WAIVED')",
            name=op.f("ck_installments_status"),
        ),
        sa.CheckConstraint(
            "principal >= 0 AND fee >= 0 AND late_fee >= 0 AND principal_paid BETWEEN 0 AND principal AND fee_paid BETWEEN 0 AND fee AND late_fee_paid BETWEEN 0 AND late_fee",
            name=op.f("ck_installments_amounts"),
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["installment_plans.id"],
            name=op.f("fk_installments_plan_id_installment_plans"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_installments")),
    )
    op.create_index(
        "ix_installments_open_due",
        "installments",
        ["due_date"],
        unique=False,
        postgresql_where=sa.text("status IN ('SCHEDULED', 'OVERDUE')"),
    )
    op.create_index(
        "uq_installments_plan_sequence", "installments", ["plan_id", "sequence"], unique=True
    )


def downgrade() -> None:
    op.drop_index("uq_installments_plan_sequence", table_name="installments")
    op.drop_index(
        "ix_installments_open_due",
        table_name="installments",
        postgresql_where=sa.text("status IN ('SCHEDULED', 'OVERDUE')"),
    )
    op.drop_table("installments")
    op.drop_index("ix_installment_plans_user_created", table_name="installment_plans")
    op.drop_table("installment_plans")
    op.drop_table("credit_profiles")
    op.drop_index("ix_credit_decisions_user_id", table_name="credit_decisions")
    op.drop_table("credit_decisions")
