"""merchants, insolvency stages, factored invoices

Revision ID: 0007
Revises: 0006

- ``debtors.merchant``: whether the debtor is a merchant (commerçant: the commercial court,
  the uncontested-claims procedure of CPCE L126-1); None when the producer did not say.
- ``debtors.insolvency_stage``: where the debtor's collective procedure stands (opened,
  liquidation, plan, closed); ``debtors.insolvency_administrator``: the mandataire or the
  liquidator who receives the claim declaration (name and address); and
  ``debtors.insolvency_closed_on``.
- ``invoices.factored_by``: the factor the invoice was assigned to, who collects it.

Every column is nullable: rows written before this revision keep their meaning.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("debtors", schema=None) as batch_op:
        batch_op.add_column(sa.Column("merchant", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("insolvency_stage", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("insolvency_administrator", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("insolvency_closed_on", sa.Date(), nullable=True))
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("factored_by", sa.String(length=200), nullable=True))


def downgrade() -> None:
    # plain ALTER TABLE … DROP COLUMN (SQLite 3.35 and later): a batch would copy the debtors
    # table, which the invoices' foreign key forbids dropping
    op.drop_column("invoices", "factored_by")
    for column in ("insolvency_closed_on", "insolvency_administrator", "insolvency_stage", "merchant"):
        op.drop_column("debtors", column)
