"""step leases: a claim writes one narrow row instead of rewriting the planned step

Revision ID: 0019
Revises: 0018

- ``step_leases``: one row per claimed step (``step_id``, ``creditor_id``, ``lease_until``,
  ``emission``), indexed by ``(lease_until, step_id)``; the scheduler's claim inserts it (or,
  once the lease ran out, moves it on) and the step stays ``planned`` (``scheduler.tick``);
- ``ix_planned_steps_lease`` is dropped: nothing reads a lease on ``planned_steps`` any more,
  and every write of a step no longer pays for that index.

The steps ``emitted`` at 0018 stay in flight: each gets its lease (same ``lease_until``,
``emission`` 0, its ``emit_count`` kept, so a re-emission after that lease is emission
``emit_count + 1``, as before) and goes back to ``planned``. Undone, the steps with a lease
are ``emitted`` again with that lease and their emissions added to ``emit_count``.
"""

import sqlalchemy as sa
from alembic import op

import adapters.types

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "step_leases",
        sa.Column("step_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("creditor_id", sa.String(length=100), server_default="default", nullable=False),
        sa.Column("lease_until", adapters.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("emission", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("step_id"),
    )
    with op.batch_alter_table("step_leases", schema=None) as batch_op:
        batch_op.create_index("ix_step_leases_until", ["lease_until", "step_id"], unique=False)
    # an emitted step without a lease (none is written so) counts as run out: claimed again
    op.execute(
        "INSERT INTO step_leases (step_id, creditor_id, lease_until, emission) "
        "SELECT id, creditor_id, COALESCE(lease_until, due_at), 0 FROM planned_steps "
        "WHERE status = 'emitted'"
    )
    op.execute("UPDATE planned_steps SET status = 'planned', lease_until = NULL WHERE status = 'emitted'")
    with op.batch_alter_table("planned_steps", schema=None) as batch_op:
        batch_op.drop_index("ix_planned_steps_lease")


def downgrade() -> None:
    with op.batch_alter_table("planned_steps", schema=None) as batch_op:
        batch_op.create_index("ix_planned_steps_lease", ["status", "lease_until", "id"], unique=False)
    op.execute(
        "UPDATE planned_steps SET status = CASE WHEN status = 'planned' THEN 'emitted' ELSE status END, "
        "lease_until = CASE WHEN status = 'planned' THEN (SELECT l.lease_until FROM step_leases l "
        "WHERE l.step_id = planned_steps.id) ELSE lease_until END, "
        "emit_count = emit_count + (SELECT l.emission FROM step_leases l WHERE l.step_id = planned_steps.id) "
        "WHERE id IN (SELECT step_id FROM step_leases)"
    )
    with op.batch_alter_table("step_leases", schema=None) as batch_op:
        batch_op.drop_index("ix_step_leases_until")
    op.drop_table("step_leases")
