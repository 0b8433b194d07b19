"""bank statement entries imported by `relance import`, matched or kept for a person

Revision ID: 0017
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

import adapters.types

revision = "0017"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bank_entries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("creditor_id", sa.String(length=100), server_default="default", nullable=False),
        sa.Column("entry_key", sa.String(length=100), nullable=False),
        sa.Column("source", sa.String(length=500), nullable=False),
        sa.Column("booking_date", sa.Date(), nullable=True),
        sa.Column("value_date", sa.Date(), nullable=True),
        sa.Column("amount", adapters.types.Money(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("credit", sa.Boolean(), nullable=False),
        sa.Column("is_return", sa.Boolean(), nullable=False),
        sa.Column("counterparty", sa.String(length=300), nullable=True),
        sa.Column("remittance", sa.Text(), nullable=False),
        sa.Column("end_to_end_id", sa.String(length=100), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("candidates", sa.Text(), nullable=False),
        sa.Column("allocations", sa.Text(), nullable=False),
        sa.Column("matched_by", sa.String(length=100), nullable=True),
        sa.Column("imported_at", adapters.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("creditor_id", "entry_key", name="uq_bank_entries_creditor_key"),
    )
    with op.batch_alter_table("bank_entries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_bank_entries_status"), ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("bank_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bank_entries_status"))
    op.drop_table("bank_entries")
