"""which policy planned each invoice: invoices.policy_key

Revision ID: 0006
Revises: 0005

The fingerprint (policy name and a hash of its ladder, handlers.ladder.policy_key) of the
policy whose steps are planned for the invoice. Invoices planned before this revision have
none: the scheduler's start-up pass compares each open one with the policy that applies
now, keeps a plan that policy would have made and re-plans the others.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("policy_key", sa.String(length=80), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.drop_column("policy_key")
