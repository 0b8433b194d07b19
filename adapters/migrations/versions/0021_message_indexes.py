"""message indexes: a debtor's messages found by (debtor, creditor, day); one index fewer per item

Revision ID: 0021
Revises: 0020

- ``ix_messages_debtor_day`` on ``messages (debtor_id, creditor_id, local_day)`` replaces
  ``ix_messages_creditor_id`` and ``ix_messages_debtor_id``: the reminder path reads a
  debtor's recent messages by debtor, creditor and day. With the two single-column indexes,
  a planner without statistics on ``messages`` (a new store before its first ``ANALYZE``, or
  autovacuum off) chose the creditor's index for that read and for the marking of a message
  by its ``id`` (both cost alike on an unknown table), and read every message of the
  creditor each time. The debtor comes first so that no index starts with the creditor alone:
  the marking goes by the primary key and the read by the debtor, with or without
  statistics. Reads by creditor and status (drafts, outbox) keep ``ix_messages_pending``. A
  message insert maintains four indexes instead of five.
- ``ix_message_items_invoice_id`` is dropped: ``uq_sent_step (invoice_id, step, channel)``
  starts with the same column and serves every read by invoice; each item inserted
  maintained both.
- PostgreSQL 14 and later, built with lz4: the stored e-mail (``messages.content``, about
  3 kB, compressed when the row is written) is compressed with lz4 instead of pglz, about
  half the server's CPU for that compression; rows written before keep pglz (both are read
  alike). Undone, new rows go back to the server's default.
"""

from alembic import op
from sqlalchemy import text

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index(
            "ix_messages_debtor_day", ["debtor_id", "creditor_id", "local_day"], unique=False
        )
        batch_op.drop_index("ix_messages_creditor_id")
        batch_op.drop_index("ix_messages_debtor_id")
    with op.batch_alter_table("message_items", schema=None) as batch_op:
        batch_op.drop_index("ix_message_items_invoice_id")
    if _lz4_available():
        op.execute("ALTER TABLE messages ALTER COLUMN content SET COMPRESSION lz4")


def downgrade() -> None:
    if _lz4_available():
        op.execute("ALTER TABLE messages ALTER COLUMN content SET COMPRESSION DEFAULT")
    with op.batch_alter_table("message_items", schema=None) as batch_op:
        batch_op.create_index("ix_message_items_invoice_id", ["invoice_id"], unique=False)
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index("ix_messages_debtor_id", ["debtor_id"], unique=False)
        batch_op.create_index("ix_messages_creditor_id", ["creditor_id"], unique=False)
        batch_op.drop_index("ix_messages_debtor_day")


def _lz4_available() -> bool:
    """PostgreSQL 14 or later built with lz4 (``default_toast_compression`` offers it)."""
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    offered = bind.execute(
        text(
            "SELECT current_setting('server_version_num')::int >= 140000 AND EXISTS ("
            "SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' "
            "AND 'lz4' = ANY(enumvals))"
        )
    ).scalar_one()
    return bool(offered)
