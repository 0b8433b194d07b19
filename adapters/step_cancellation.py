"""Cancel the pending steps of invoices in one statement (PostgreSQL).

The steps' ``UPDATE`` and the ``DELETE`` of their leases go in one round trip (a
data-modifying ``WITH``), as SQLite's two statements leave them (``SqlStore.cancel_pending``):
both parts see the rows as they were before the statement, so the leases taken are those of
the steps cancelled now and of the same invoices' steps cancelled before, the latter only
for an invoice a step of which was cancelled now. One invoice's (``SqlStore``) or those of
many: an ingest batch cancels the steps of all the invoices its payments settled since its
last write in one statement (``UnitOfWork.cancel_pending_later``).
"""

from __future__ import annotations

import functools
from typing import Any, cast

from sqlalchemy import bindparam, delete, func, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from adapters.orm import PlannedStep, StepLease
from adapters.sql_lists import not_one_of, one_of
from handlers.store import PENDING, StepFilter

_STEPS: Any = PlannedStep.__table__
_PENDING = list(PENDING)
_LEASES: Any = StepLease.__table__


def cancel_steps(
    session: Session, invoices: list[int], why: str, which: StepFilter, creditor: str | None
) -> list[int]:
    """Cancel with ``why`` the pending steps of ``invoices`` that ``which`` takes, and delete
    the leases of their cancelled steps; the ids of the steps cancelled. With ``creditor``,
    every part is limited to its rows, as a scoped unit of work's ``do_orm_execute`` filter
    limits ORM statements. Steps mapped in the session have the updated attributes expired,
    as the ORM's ``UPDATE`` would. Run on the session's connection: nothing is flushed."""
    prefix = which.spare_prefix is not None and not which.names
    statement = _cancel_statement(bool(which.names), bool(which.spare), prefix, creditor is not None)
    params: dict[str, Any] = {"invoices": invoices, "why": why, "pending": _PENDING}
    if creditor is not None:
        params["creditor"] = creditor
    if which.names:
        params["names"] = list(which.names)
    if which.spare:
        params["spare"] = list(which.spare)
    if prefix:
        params["prefix"] = _like_escaped(cast(str, which.spare_prefix))
    ids = list(session.connection().execute(statement, params).scalars())
    for step_id in ids:
        mapped = session.identity_map.get(identity_key(PlannedStep, step_id))
        if mapped is not None:
            session.expire(mapped, ["status", "reason", "emit_count"])
    return ids


@functools.cache
def _cancel_statement(names: bool, spare: bool, prefix: bool, scoped: bool) -> Any:
    """The statement of ``cancel_steps``: the steps of ``:invoices`` still pending (of
    ``:names`` only, but ``:spare``, but those starting with ``:prefix``, as the shape asks)
    cancelled with ``:why``, and the leases of those invoices' cancelled steps deleted; with
    ``scoped``, every part limited to ``:creditor``'s rows. The parameters are named apart
    from the columns: a Core ``UPDATE`` sets a column from a parameter of its name. Built
    once per shape, so that SQLAlchemy's compiled cache and psycopg's prepared statement are
    reused."""
    steps, leases = _STEPS.c, _LEASES.c

    def mine(table: Any) -> list[Any]:
        return [table.c.creditor_id == bindparam("creditor")] if scoped else []

    leased = select(leases.emission).where(leases.step_id == steps.id, *mine(_LEASES)).scalar_subquery()
    taken = [
        one_of(steps.invoice_id, "invoices", postgres=True),
        one_of(steps.status, "pending", postgres=True),
    ]
    if names:
        taken.append(one_of(steps.step, "names", postgres=True))
    if spare:
        taken.append(not_one_of(steps.step, "spare", postgres=True))
    if prefix:  # the value escaped by ``_like_escaped``, as ``autoescape=True`` does
        taken.append(~steps.step.startswith(bindparam("prefix", type_=steps.step.type), escape="/"))
    now = (
        update(_STEPS)
        .where(*taken, *mine(_STEPS))
        .values(
            status="cancelled",
            emit_count=steps.emit_count + func.coalesce(leased, 0),
            reason=bindparam("why", type_=steps.reason.type),
        )
        .returning(steps.id, steps.invoice_id)
        .cte("cancelled_now")
    )
    cancelled_before = select(steps.id).where(
        steps.invoice_id.in_(select(now.c.invoice_id)), steps.status == "cancelled", *mine(_STEPS)
    )
    taken_now = leases.step_id.in_(select(now.c.id))
    taken_before = leases.step_id.in_(cancelled_before)
    gone = delete(_LEASES).where(or_(taken_now, taken_before), *mine(_LEASES))
    return select(now.c.id).add_cte(gone.cte("leases_gone"))


def _like_escaped(text: str) -> str:
    """``text`` for a ``LIKE`` pattern with ``ESCAPE '/'``, as SQLAlchemy's ``autoescape``."""
    return text.replace("/", "//").replace("%", "/%").replace("_", "/_")
