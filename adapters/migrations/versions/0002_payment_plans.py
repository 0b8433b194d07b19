"""payment plans and their installments

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 10:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

import adapters.types

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "payment_plans",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("debtor_id", sa.String(length=100), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("anchor_invoice_id", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("agreed_at", adapters.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", adapters.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.String(length=300), nullable=True),
        sa.ForeignKeyConstraint(
            ["anchor_invoice_id"],
            ["invoices.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
    )
    with op.batch_alter_table("payment_plans", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_payment_plans_anchor_invoice_id"), ["anchor_invoice_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_payment_plans_debtor_id"), ["debtor_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_payment_plans_status"), ["status"], unique=False)

    op.create_table(
        "plan_invoices",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["invoices.id"],
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["payment_plans.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("plan_id", "invoice_id", name="uq_plan_invoice"),
    )
    with op.batch_alter_table("plan_invoices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_plan_invoices_invoice_id"), ["invoice_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_plan_invoices_plan_id"), ["plan_id"], unique=False)

    op.create_table(
        "plan_installments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("step_stem", sa.String(length=30), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("amount", adapters.types.Money(), nullable=False),
        sa.Column("paid", adapters.types.Money(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["payment_plans.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("plan_id", "seq", name="uq_plan_installment"),
    )
    with op.batch_alter_table("plan_installments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_plan_installments_plan_id"), ["plan_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("plan_installments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_plan_installments_plan_id"))

    op.drop_table("plan_installments")
    with op.batch_alter_table("plan_invoices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_plan_invoices_plan_id"))
        batch_op.drop_index(batch_op.f("ix_plan_invoices_invoice_id"))

    op.drop_table("plan_invoices")
    with op.batch_alter_table("payment_plans", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payment_plans_status"))
        batch_op.drop_index(batch_op.f("ix_payment_plans_debtor_id"))
        batch_op.drop_index(batch_op.f("ix_payment_plans_anchor_invoice_id"))

    op.drop_table("payment_plans")
