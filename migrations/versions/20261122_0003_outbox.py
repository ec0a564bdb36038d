"""outbox

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 04:17:56.259389
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("CREATE SEQUENCE outbox_position")
    op.create_table(
        "outbox_events",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("topic", sa.String(length=32), nullable=False),
        sa.Column("aggregate_id", sa.String(length=64), nullable=False),
        sa.Column("audience", sa.ARRAY(sa.UUID()), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("position", sa.BigInteger(), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_events")),
        sa.UniqueConstraint("position", name=op.f("uq_outbox_events_position")),
    )
    op.create_index(
        "ix_outbox_events_audience",
        "outbox_events",
        ["audience"],
        unique=False,
        postgresql_using="gin",
    )
    op.create_index(
        "ix_outbox_events_unpublished",
        "outbox_events",
        ["id"],
        unique=False,
        postgresql_where=sa.text("published_at IS NULL"),
    )
    op.create_table(
        "outbox_state",
        sa.Column("id", sa.SmallInteger(), nullable=False),
        sa.Column("pruned_through", sa.BigInteger(), server_default="0", nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_outbox_state_singleton")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_state")),
    )

    op.execute("INSERT INTO outbox_state (id, pruned_through) VALUES (1, 0)")
    # Wake the relay at commit (NOTIFY is delivered when the inserting transaction commits).
    op.execute(
        """CREATE FUNCTION stacklo_notify_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN PERFORM pg_notify('stacklo_outbox', ''); RETURN NULL; END $$"""
    )
    op.execute(
        """CREATE TRIGGER outbox_events_notify AFTER INSERT ON outbox_events
           FOR EACH STATEMENT EXECUTE FUNCTION stacklo_notify_outbox()"""
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER outbox_events_notify ON outbox_events")
    op.execute("DROP FUNCTION stacklo_notify_outbox()")
    op.drop_table("outbox_state")
    op.drop_index(
        "ix_outbox_events_unpublished",
        table_name="outbox_events",
        postgresql_where=sa.text("published_at IS NULL"),
    )
    op.drop_index("ix_outbox_events_audience", table_name="outbox_events", postgresql_using="gin")
    op.drop_table("outbox_events")
    op.execute("DROP SEQUENCE outbox_position")
