"""tasks for people: calls and other manual actions; the debtor's phone

Revision ID: 0018
Revises: 0017

- ``tasks``: one row per task a ``call`` or ``task`` step creates (``handlers.manual``),
  unique per creditor and ``task_key`` (a redelivered step adds no second task), open until
  an operator reports its outcome;
- ``debtors.phone``: the optional phone number of ``invoice.issued`` (personal data).

Rows at 0017 have no task and no phone. Undone, the tasks and the phones are dropped.
"""

import sqlalchemy as sa
from alembic import op

import adapters.types

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("debtors", schema=None) as batch_op:
        batch_op.add_column(sa.Column("phone", sa.String(length=40), nullable=True))
    op.create_table(
        "tasks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("creditor_id", sa.String(length=100), server_default="default", nullable=False),
        sa.Column("task_key", sa.String(length=64), nullable=False),
        sa.Column("debtor_id", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("step", sa.String(length=40), nullable=False),
        sa.Column("phone", sa.String(length=40), nullable=True),
        sa.Column("invoice_numbers", sa.JSON(), nullable=False),
        sa.Column("amounts", sa.JSON(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("promised_date", sa.Date(), nullable=True),
        sa.Column("done_by", sa.String(length=100), nullable=True),
        sa.Column("created_at", adapters.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("done_at", adapters.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("creditor_id", "task_key", name="uq_task_key"),
    )
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tasks_creditor_id"), ["creditor_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_tasks_debtor_id"), ["debtor_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tasks_debtor_id"))
        batch_op.drop_index(batch_op.f("ix_tasks_creditor_id"))
    op.drop_table("tasks")
    with op.batch_alter_table("debtors", schema=None) as batch_op:
        batch_op.drop_column("phone")
