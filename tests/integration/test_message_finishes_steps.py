"""On PostgreSQL a reminder's message, its items and the steps it claims are written by one
statement (``adapters.dunning_store._INSERT_MESSAGE_FINISHING_STEPS``): the steps end done
with the emissions their leases carried, their leases gone, one statement fewer per reminder."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any, cast

import pytest
from sqlalchemy import event, select, update

from adapters.dunning_store import SqlDunningStore
from adapters.orm import MessageItem, MessageRow, PlannedStep, StepLease
from adapters.store import transaction
from handlers import service
from handlers.dunning import NewMessage
from handlers.messages import StepDue, StepsDue
from tests.integration.test_batched_steps import DUE_DAY, Kept, app_with_debtors, emitted


def statements_of(app, work) -> list[str]:
    """The statements sent while ``work`` runs (BEGIN and COMMIT are not sent as such)."""
    seen: list[str] = []

    def keep(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(" ".join(statement.split()))

    event.listen(app.engine, "before_cursor_execute", keep)
    try:
        work()
    finally:
        event.remove(app.engine, "before_cursor_execute", keep)
    return seen


def run_steps(app, message_id: str, steps: list[StepDue]) -> None:
    kept = Kept()  # the deliveries are not run: the batch's own statements only
    service.run_steps(app.units, kept, message_id, "default", steps, DUE_DAY, app.ctx)
    assert len(kept.tasks) == len(steps)


def finished_apart(monkeypatch) -> None:
    """The message, then its steps finished by a statement of their own, as before."""
    real = SqlDunningStore.record_message

    def in_two(self: SqlDunningStore, message: NewMessage) -> int:
        key = real(self, dataclasses.replace(message, finishes=()))
        self.finish_steps(message.finishes, message.created_at)
        return key

    monkeypatch.setattr(SqlDunningStore, "record_message", in_two)


def steps_and_leases(app, step_ids: list[int]) -> tuple[list[tuple[str, int, datetime | None]], int]:
    with transaction(app.sessions) as session:
        steps = session.execute(
            select(PlannedStep.status, PlannedStep.emit_count, PlannedStep.done_at)
            .where(PlannedStep.id.in_(step_ids))
            .order_by(PlannedStep.id)
        ).all()
        leases = session.scalars(select(StepLease.step_id).where(StepLease.step_id.in_(step_ids))).all()
    return [tuple(row) for row in steps], len(leases)


@pytest.mark.postgres
def test_a_reminders_steps_end_done_with_their_leases_emissions_in_the_statement_of_its_message(
    postgres_url, tmp_path, monkeypatch
):
    # Given ten debtors' due steps claimed by the scheduler, each already emitted twice
    # before (emit_count 2) and its lease carrying a third emission
    debtors = tuple(f"D-{n:02d}" for n in range(10))
    app = app_with_debtors(postgres_url, tmp_path, debtors)
    (batch,) = emitted(app)
    steps = sorted(cast(StepsDue, batch).steps, key=lambda s: s.debtor_id)
    with transaction(app.sessions) as session:
        session.execute(update(PlannedStep).where(PlannedStep.step == "pre_due").values(emit_count=2))
        session.execute(update(StepLease).values(emission=3))
    step_ids = sorted(s.step_id for s in steps)
    assert steps_and_leases(app, step_ids) == ([("planned", 2, None)] * 10, 10)

    # When five of them run with the steps finished by a statement of their own, then the
    # other five as they run now
    with monkeypatch.context() as patched:
        finished_apart(patched)
        apart = statements_of(app, lambda: run_steps(app, "batch-apart", steps[:5]))
    together = statements_of(app, lambda: run_steps(app, "batch-together", steps[5:]))

    # Then each step is done at the instant of its message, its emit_count 2 + 3, no lease left
    assert steps_and_leases(app, step_ids) == ([("done", 5, DUE_DAY)] * 10, 0)
    # and the five reminders took five statements fewer: the message's statement finished them
    assert len(apart) - len(together) == 5
    one_statement = [s for s in together if s.startswith("WITH m AS") and "DELETE FROM step_leases" in s]
    assert len(one_statement) == 5
    assert not [s for s in together if "UPDATE planned_steps" in s and not s.startswith("WITH m AS")]
    assert len([s for s in apart if s.startswith("WITH gone AS")]) == 5
    # and each message and its item are written as before
    with transaction(app.sessions) as session:
        messages = session.scalars(select(MessageRow.debtor_id).order_by(MessageRow.debtor_id)).all()
        items = session.scalars(select(MessageItem.step)).all()
    assert messages == list(debtors) and items == ["pre_due"] * 10
    app.dispose()
