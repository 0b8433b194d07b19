"""evidence record versions

Revision ID: 0009
Revises: 0007

- ``evidence.version``: how a record's hash is computed (``handlers.evidence``). Version 1
  hashes the previous hash, the sequence number, the time, the kind and the payload;
  version 2 also hashes the debtor, the invoice numbers, the case and the message the
  record is selected by. Records written before this revision are version 1 and keep
  verifying as they were; new records are version 2. Undone, the column goes and every
  version 2 record then reads as version 1, which does not match its hash: undo it only
  on a store that has no version 2 record.
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("evidence", schema=None) as batch_op:
        batch_op.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))


def downgrade() -> None:
    op.drop_column("evidence", "version")
