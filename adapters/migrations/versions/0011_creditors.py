"""creditors as tenants

Revision ID: 0011
Revises: 0010

Every row that belongs to one creditor's collections gets a ``creditor_id`` (the rows of a
store at 0010 become creditor ``default``), and what was unique in the whole store becomes
unique per creditor:

- ``debtors``: primary key ``(creditor_id, id)``; ``debtor_salts``: ``(creditor_id, debtor_id)``;
- ``invoices``: number unique per creditor, and the debtor foreign key names the creditor;
- ``inbox_events``, ``payments``, ``payment_plans``: ``event_id`` unique per creditor;
- ``evidence``: one chain per creditor, primary key ``(creditor_id, seq)``; ``evidence_head``:
  one row per creditor;
- ``planned_steps``, ``messages``, ``cases``, ``handovers``, ``rejected_events``: the column,
  so the scheduler and the workers know whose a row is from its own id.

Message-IDs, broker message ids and the integer keys stay unique in the whole store.

SQLite cannot change a primary key in place: the tables are rebuilt (alembic's batch
mode), with foreign keys off for the migration (``migrations/env.py``) and checked after.
"""

import warnings

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

DEFAULT = "default"
# the tables that only gain the column (and an index for the per-creditor listings)
PLAIN = ("planned_steps", "messages", "cases", "handovers", "rejected_events")
# the tables whose event_id becomes unique per creditor: their unique constraint's name
EVENT_IDS = {"inbox_events": "inbox_events", "payments": "payments", "payment_plans": "payment_plans"}
# unnamed constraints get these names in SQLite's batch rebuild
CONVENTION = {
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _column() -> sa.Column:
    return sa.Column("creditor_id", sa.String(length=100), nullable=False, server_default=DEFAULT)


def _unique_name(table: str, column: str) -> str:
    """The name of a single-column unique constraint made without a name in 0001/0002."""
    return f"{table}_{column}_key" if _postgres() else f"uq_{table}_{column}"


def _pk_name(table: str) -> str:
    return f"{table}_pkey" if _postgres() else f"pk_{table}"


def upgrade() -> None:
    _invoices_off_debtors()
    _rekey("debtors", ["creditor_id", "id"])
    _rekey("debtor_salts", ["creditor_id", "debtor_id"])
    _rekey("evidence", ["creditor_id", "seq"])
    _invoices_per_creditor()
    for table in EVENT_IDS:
        with op.batch_alter_table(table, naming_convention=CONVENTION) as batch:
            batch.add_column(_column())
            batch.drop_constraint(_unique_name(table, "event_id"), type_="unique")
            batch.create_unique_constraint(f"uq_{table}_creditor_event", ["creditor_id", "event_id"])
    for table in PLAIN:
        with op.batch_alter_table(table) as batch:
            batch.add_column(_column())
            batch.create_index(f"ix_{table}_creditor_id", ["creditor_id"])
    with op.batch_alter_table("evidence_head") as batch:
        batch.add_column(_column())
        batch.create_unique_constraint("uq_evidence_head_creditor", ["creditor_id"])


def _invoices_off_debtors() -> None:
    """PostgreSQL: the invoices' foreign key to ``debtors.id`` goes before that key does."""
    if _postgres():
        op.drop_constraint("invoices_debtor_id_fkey", "invoices", type_="foreignkey")


def _rekey(table: str, key: list[str]) -> None:
    with warnings.catch_warnings():
        # SQLite's rebuild copies the reflected table, whose old key SQLAlchemy then warns
        # it replaces by the new one: which is the point
        warnings.filterwarnings("ignore", "Table '_alembic_tmp_", sa.exc.SAWarning)
        with op.batch_alter_table(table, naming_convention=CONVENTION) as batch:
            batch.add_column(_column())
            if _postgres():
                batch.drop_constraint(_pk_name(table), type_="primary")
            batch.create_primary_key(f"pk_{table}", key)


def _invoices_per_creditor() -> None:
    with op.batch_alter_table("invoices", naming_convention=CONVENTION) as batch:
        batch.add_column(_column())
        batch.drop_constraint(_unique_name("invoices", "number"), type_="unique")
        if not _postgres():
            batch.drop_constraint(_debtor_foreign_key(), type_="foreignkey")
        batch.create_unique_constraint("uq_invoices_creditor_number", ["creditor_id", "number"])
        batch.create_foreign_key(
            "fk_invoices_debtor", "debtors", ["creditor_id", "debtor_id"], ["creditor_id", "id"]
        )


def _debtor_foreign_key() -> str:
    """SQLite: the name of the invoices' foreign key to debtors (made without one in 0001,
    with one by an undone 0011), as the batch rebuild knows it."""
    for key in sa.inspect(op.get_bind()).get_foreign_keys("invoices"):
        if key["referred_table"] == "debtors":
            return key["name"] or "fk_invoices_debtor_id_debtors"
    raise RuntimeError("the invoices have no foreign key to the debtors")


def downgrade() -> None:
    # only a store of one creditor (``default``) can go back: the keys would collide
    for table in ("debtors", "invoices", "evidence", "inbox_events"):
        others = op.get_bind().execute(
            sa.text(f"SELECT COUNT(*) FROM {table} WHERE creditor_id <> :c"), {"c": DEFAULT}
        )
        if others.scalar_one():
            raise RuntimeError(f"cannot undo 0011: {table} holds rows of creditors other than default")
    with op.batch_alter_table("evidence_head") as batch:
        batch.drop_constraint("uq_evidence_head_creditor", type_="unique")
        batch.drop_column("creditor_id")
    for table in PLAIN:
        with op.batch_alter_table(table) as batch:
            batch.drop_index(f"ix_{table}_creditor_id")
            batch.drop_column("creditor_id")
    for table in EVENT_IDS:
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(f"uq_{table}_creditor_event", type_="unique")
            batch.create_unique_constraint(_unique_name(table, "event_id"), ["event_id"])
            batch.drop_column("creditor_id")
    with op.batch_alter_table("invoices") as batch:
        batch.drop_constraint("fk_invoices_debtor", type_="foreignkey")
        batch.drop_constraint("uq_invoices_creditor_number", type_="unique")
        batch.create_unique_constraint(_unique_name("invoices", "number"), ["number"])
        batch.drop_column("creditor_id")
    for table, key in (("evidence", "seq"), ("debtor_salts", "debtor_id"), ("debtors", "id")):
        with op.batch_alter_table(table) as batch:
            if _postgres():
                batch.drop_constraint(f"pk_{table}", type_="primary")
            batch.create_primary_key(_pk_name(table), [key])
            batch.drop_column("creditor_id")
    with op.batch_alter_table("invoices") as batch:
        batch.create_foreign_key("invoices_debtor_id_fkey", "debtors", ["debtor_id"], ["id"])
