"""transmission records: a message marked sent may have its evidence record still to write

Revision ID: 0020
Revises: 0019

- ``messages.record_due``: true from the moment a message is marked ``sent`` until its
  ``message.transmitted`` evidence record is written. The marking is one short write of the
  row; the records of the messages a batch marked are chained together at the end of the
  batch, and the scheduler writes those a crash left behind (``handlers.delivery``);
- ``ix_messages_record_due``: those messages by ``sent_at``, a partial index that holds only
  them (empty most of the time).

Every message at 0019 that is sent has its record already: ``record_due`` is false for all
of them. Undone, the records still due are lost with the column: write them first (a tick of
the scheduler does).
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("record_due", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_index(
        "ix_messages_record_due",
        "messages",
        ["sent_at"],
        unique=False,
        postgresql_where=sa.text("record_due"),
        sqlite_where=sa.text("record_due = 1"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_messages_record_due",
        table_name="messages",
        postgresql_where=sa.text("record_due"),
        sqlite_where=sa.text("record_due = 1"),
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("record_due")
