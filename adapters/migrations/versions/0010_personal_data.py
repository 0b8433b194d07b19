"""personal data: debtor salts and erasure

Revision ID: 0010
Revises: 0009

- ``debtor_salts``: one random salt per debtor. Version 3 evidence records hash the
  debtor's personal values (name, e-mail, address, phone, a message's recipient) sealed
  under it (HMAC-SHA256) instead of in cleartext (``handlers.evidence``); ``relance erase``
  deletes it. Records written before this revision keep their version and verify as they
  were.
- ``debtors.erased_at``: when ``relance erase`` removed the debtor's personal data.

Undone, the salts go, and with them the means to verify the version 3 records that still
hold a cleartext personal value: undo it only on a store that has no version 3 record.
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "debtor_salts",
        sa.Column("debtor_id", sa.String(length=100), nullable=False),
        sa.Column("salt", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("debtor_id"),
    )
    with op.batch_alter_table("debtors", schema=None) as batch_op:
        batch_op.add_column(sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # plain ALTER TABLE … DROP COLUMN: a batch would copy the debtors table, which the
    # invoices' foreign key forbids dropping (as in 0007)
    op.drop_column("debtors", "erased_at")
    op.drop_table("debtor_salts")
