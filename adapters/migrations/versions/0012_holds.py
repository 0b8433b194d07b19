"""holds: a person pauses an invoice or a debtor

Revision ID: 0012
Revises: 0011

- ``invoices.hold_reason``, ``invoices.held_until``: ``invoice.held`` pauses the dunning of
  one invoice (no legal effect: ``handlers.holds``), until its last day or its release;
- ``debtors.hold_reason``, ``debtors.held_until``: ``debtor.held``, the same for all of a
  debtor's invoices.

Rows at 0011 are held by nothing (the columns are empty). Undone, the holds in force are
forgotten: their invoices stay paused until an event resumes them (their steps were
cancelled when the hold was put).
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

TABLES = ("invoices", "debtors")


def upgrade() -> None:
    for table in TABLES:
        # adding nullable columns needs no rebuild: batch mode issues plain ALTER TABLE
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("hold_reason", sa.String(length=300), nullable=True))
            batch_op.add_column(sa.Column("held_until", sa.Date(), nullable=True))


def downgrade() -> None:
    # plain ALTER TABLE … DROP COLUMN: a batch would copy the debtors table, which the
    # invoices' foreign key forbids dropping (as in 0010)
    for table in TABLES:
        op.drop_column(table, "held_until")
        op.drop_column(table, "hold_reason")
