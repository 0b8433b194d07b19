"""signals to webhook subscribers (outbound webhooks)

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

import adapters.types

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signals",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("creditor_id", sa.String(length=100), server_default="default", nullable=False),
        sa.Column("subscriber", sa.String(length=40), nullable=False),
        sa.Column("signal_type", sa.String(length=40), nullable=False),
        sa.Column("idempotency_key", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_until", adapters.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("response_code", sa.Integer(), nullable=True),
        sa.Column("created_at", adapters.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", adapters.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idempotency_key"),
    )
    with op.batch_alter_table("signals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_signals_creditor_id"), ["creditor_id"], unique=False)
        batch_op.create_index("ix_signals_pending", ["status", "lease_until"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("signals", schema=None) as batch_op:
        batch_op.drop_index("ix_signals_pending")
        batch_op.drop_index(batch_op.f("ix_signals_creditor_id"))

    op.drop_table("signals")
