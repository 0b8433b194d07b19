"""holds, reversals: a person pauses an invoice or a debtor; a payment taken back

Revision ID: 0012
Revises: 0011

- ``invoices.hold_reason``, ``invoices.held_until``: ``invoice.held`` pauses the dunning of
  one invoice (no legal effect: ``handlers.holds``), until its last day or its release;
- ``debtors.hold_reason``, ``debtors.held_until``: ``debtor.held``, the same for all of a
  debtor's invoices;
- ``payments.payment_id``: the payment's own id (``payment.received``), unique per creditor
  and invoice when given (a unique index: payments without one are not compared);
- ``payments.reversed_on``: ``payment.reversed`` / ``credit_note.cancelled``: the row is kept,
  and left out of the movements the amounts are computed from.

Rows at 0011 are held by nothing and reversed by nothing (the columns are empty). Undone,
the holds in force are forgotten: their invoices stay paused until an event resumes them
(their steps were cancelled when the hold was put); and a reversed payment counts again.
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
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("payment_id", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("reversed_on", sa.Date(), nullable=True))
    op.create_index(
        "uq_payments_creditor_invoice_payment",
        "payments",
        ["creditor_id", "invoice_id", "payment_id"],
        unique=True,
    )


def downgrade() -> None:
    # plain ALTER TABLE … DROP COLUMN: a batch would copy the debtors table, which the
    # invoices' foreign key forbids dropping (as in 0010)
    op.drop_index("uq_payments_creditor_invoice_payment", table_name="payments")
    op.drop_column("payments", "reversed_on")
    op.drop_column("payments", "payment_id")
    for table in TABLES:
        op.drop_column(table, "held_until")
        op.drop_column(table, "hold_reason")
