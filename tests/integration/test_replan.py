"""A policy or segment change re-plans the remaining steps of the open invoices.

Default ladder of examples/policies/segmented.toml (offsets from the due date D, window
09:00 Paris): pre_due -5, due 0, notice +3, reminder_1 +10, reminder_2 +20, reminder_3 +30,
formal_notice +40. Invoice F-1 is due Wed 1 April 2026: reminder_1 falls on D+10 =
Sat 11 April, sent Mon 13 April 09:00; the old plan keeps reminder_2 on Tue 21 April,
reminder_3 on D+30 = Fri 1 May (holiday) -> Mon 4 May and formal_notice on Mon 11 May.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from adapters.orm import EvidenceRecord, InvoiceRow, MessageItem, PlannedStep
from adapters.store import transaction
from handlers.ladder import policy_key
from scheduler.loop import replan_at_start
from scheduler.replan import replan_changed_invoices
from tests.integration.test_flow import at
from tests.support import DEBTOR, ingest, invoice_issued, make_test_app, run_until

SEGMENTED = Path(__file__).resolve().parents[2] / "examples" / "policies" / "segmented.toml"

# Policy B: other offsets, and a letter with reminder_2
POLICY_B = """
name = "policy-b"
resume_step = "notice"

[[steps]]
name = "notice"
offset_days = 5
event = "invoice.overdue"
channels = ["email"]

[[steps]]
name = "reminder_1"
offset_days = 12
event = "invoice.overdue"
channels = ["email"]

[[steps]]
name = "reminder_2"
offset_days = 25
event = "invoice.overdue"
channels = ["email", "letter"]
states_penalties = true

[[steps]]
name = "formal_notice"
offset_days = 45
event = "invoice.overdue"
channels = ["registered_letter", "email"]
states_penalties = true
"""


def start(database_url: str, data_dir: Path, now: str, policy_file: Path):
    return make_test_app(database_url, data_dir, at(now), policy_file=policy_file)


def planned(app) -> dict[str, str]:
    """Ladder steps still planned for F-1, with their local due instant."""
    with transaction(app.sessions) as session:
        rows = session.execute(
            select(PlannedStep.step, PlannedStep.due_at).where(
                PlannedStep.status == "planned",
                PlannedStep.event != "deadline.expired",
            )
        ).all()
    paris = at("2026-01-01 00:00").tzinfo
    return {step: due.astimezone(paris).strftime("%Y-%m-%d %H:%M") for step, due in rows}


def replanned_records(app) -> list[dict]:
    with transaction(app.sessions) as session:
        payloads = session.execute(
            select(EvidenceRecord.payload).where(EvidenceRecord.kind == "invoice.replanned")
        ).scalars()
        return [json.loads(p) for p in payloads]


def sent(app, step: str) -> list[str]:
    with transaction(app.sessions) as session:
        return list(session.execute(select(MessageItem.channel).where(MessageItem.step == step)).scalars())


@pytest.fixture
def under_a(database_url, tmp_path):
    """F-1 planned on the default ladder, run until reminder_1 was sent (Mon 13 April)."""
    app = start(database_url, tmp_path, "2026-03-02 10:00", SEGMENTED)
    ingest(app, invoice_issued("F-1", "2026-04-01"))
    run_until(app, at("2026-04-13 09:00"))
    assert sent(app, "reminder_1") == ["email"]
    app.dispose()
    return database_url, tmp_path


def policy_b(tmp_path: Path) -> Path:
    path = tmp_path / "policy_b.toml"
    path.write_text(POLICY_B, encoding="utf-8")
    return path


def test_a_restart_on_policy_b_re_plans_the_rest_from_the_due_date_and_sends_nothing_twice(under_a):
    database_url, tmp_path = under_a
    app = start(database_url, tmp_path, "2026-04-14 10:00", policy_b(tmp_path))
    try:
        result = replan_at_start(app)
        assert (result.stale, result.replanned) == (1, 1)
        # B after reminder_1: reminder_2 D+25 = Sun 26 April -> Mon 27 April,
        # formal_notice D+45 = Sat 16 May -> Mon 18 May; A's reminder_3 is gone
        assert planned(app) == {"reminder_2": "2026-04-27 09:00", "formal_notice": "2026-05-18 09:00"}
        [record] = replanned_records(app)
        assert record["old_policy"] == "segmented-fr" and record["new_policy"] == "policy-b"
        assert record["removed"] == ["reminder_3"] and record["added"] == []
        run_until(app, at("2026-04-27 09:00"))
        assert sent(app, "reminder_1") == ["email"]  # not sent again
        assert sorted(sent(app, "reminder_2")) == ["email", "letter"]  # B's channels
    finally:
        app.dispose()


def test_a_restart_long_after_enters_policy_b_today_without_a_burst(under_a):
    database_url, tmp_path = under_a
    # restarted on Wed 20 May: B's reminder_2 (27 April) and formal_notice (18 May) are past;
    # reminder_2 moves to today, formal_notice keeps its 20 days after it: Tue 9 June
    app = start(database_url, tmp_path, "2026-05-20 10:00", policy_b(tmp_path))
    try:
        replan_at_start(app)
        assert planned(app) == {"reminder_2": "2026-05-20 09:00", "formal_notice": "2026-06-09 09:00"}
        with transaction(app.sessions) as session:
            earliest = session.execute(
                select(func.min(PlannedStep.due_at)).where(PlannedStep.status == "planned")
            ).scalar_one()
        assert earliest.astimezone(at("2026-01-01 00:00").tzinfo).date().isoformat() == "2026-05-20"
    finally:
        app.dispose()


def test_a_restart_on_the_same_policy_re_plans_nothing(under_a):
    database_url, tmp_path = under_a
    app = start(database_url, tmp_path, "2026-04-14 10:00", SEGMENTED)
    try:
        before = planned(app)
        result = replan_at_start(app)
        assert (result.checked, result.stale, result.replanned) == (1, 0, 0)
        assert planned(app) == before
        assert replanned_records(app) == []
    finally:
        app.dispose()


def test_a_second_pass_finds_nothing_to_re_plan(under_a):
    database_url, tmp_path = under_a
    app = start(database_url, tmp_path, "2026-04-14 10:00", policy_b(tmp_path))
    try:
        replan_at_start(app)
        again = replan_at_start(app)
        assert (again.stale, again.replanned) == (0, 0)
        assert len(replanned_records(app)) == 1
    finally:
        app.dispose()


def test_an_invoice_planned_before_keys_were_recorded_keeps_a_plan_its_policy_would_make(under_a):
    database_url, tmp_path = under_a
    app = start(database_url, tmp_path, "2026-04-14 10:00", SEGMENTED)
    try:
        with transaction(app.sessions) as session:
            session.execute(update(InvoiceRow).values(policy_key=None))
        result = replan_at_start(app)
        assert (result.stale, result.replanned) == (1, 0)
        assert replanned_records(app) == []
        with transaction(app.sessions) as session:
            key = session.execute(select(InvoiceRow.policy_key)).scalar_one()
        assert key == policy_key(app.ctx.policies.default)
    finally:
        app.dispose()


def test_a_debtor_moved_to_the_key_accounts_segment_gets_their_ladder_for_the_rest(under_a):
    database_url, tmp_path = under_a
    app = start(database_url, tmp_path, "2026-04-14 10:00", SEGMENTED)
    try:
        moved = {
            "event_id": "moved-D-1",
            "type": "debtor.updated",
            "occurred_at": "2026-04-14T10:00:00+02:00",
            "debtor": {**DEBTOR, "segment": "key_account"},
        }
        assert ingest(app, moved) == ["accepted"]
        # key accounts after reminder_1: reminder_2 D+30 = Fri 1 May (holiday) -> Mon 4 May,
        # reminder_3 D+45 = Sat 16 May -> Mon 18 May, formal_notice D+60 = Sun 31 May -> Mon 1 June
        assert planned(app) == {
            "reminder_2": "2026-05-04 09:00",
            "reminder_3": "2026-05-18 09:00",
            "formal_notice": "2026-06-01 09:00",
        }
        [record] = replanned_records(app)
        assert (record["old_policy"], record["new_policy"]) == ("segmented-fr", "key-accounts-fr")
        assert record["removed"] == [] and record["added"] == []
        run_until(app, at("2026-05-04 09:00"))
        assert sent(app, "reminder_1") == ["email"]
        assert sent(app, "reminder_2") == ["email"]  # the key accounts send no letter
        assert replan_at_start(app).stale == 0  # the event recorded the new key
    finally:
        app.dispose()


def test_an_update_that_keeps_the_segment_re_plans_nothing(under_a):
    database_url, tmp_path = under_a
    app = start(database_url, tmp_path, "2026-04-14 10:00", SEGMENTED)
    try:
        before = planned(app)
        renamed = {
            "event_id": "renamed-D-1",
            "type": "debtor.updated",
            "occurred_at": "2026-04-14T10:00:00+02:00",
            "debtor": {**DEBTOR, "name": "ACME Industrie"},
        }
        assert ingest(app, renamed) == ["accepted"]
        assert planned(app) == before
        assert replanned_records(app) == []
    finally:
        app.dispose()


def test_a_disputed_invoice_keeps_its_pause_and_resumes_on_the_policy_then_in_force(under_a):
    database_url, tmp_path = under_a
    app = start(database_url, tmp_path, "2026-04-14 10:00", SEGMENTED)
    disputed = {
        "event_id": "dispute-F-1",
        "type": "invoice.disputed",
        "occurred_at": "2026-04-14T10:00:00+02:00",
        "invoice_number": "F-1",
        "reason": "quantité",
    }
    assert ingest(app, disputed) == ["accepted"]
    app.dispose()
    app = start(database_url, tmp_path, "2026-04-15 10:00", policy_b(tmp_path))
    try:
        replan_at_start(app)
        assert planned(app) == {}  # still paused
        resolved = {
            "event_id": "resolved-F-1",
            "type": "dispute.resolved",
            "occurred_at": "2026-04-15T10:00:00+02:00",
            "invoice_number": "F-1",
            "outcome": "rejected",
        }
        assert ingest(app, resolved) == ["accepted"]
        # resumed on B: reminder_2 D+25 = Mon 27 April, formal_notice Mon 18 May
        assert planned(app) == {"reminder_2": "2026-04-27 09:00", "formal_notice": "2026-05-18 09:00"}
    finally:
        app.dispose()


def test_two_schedulers_starting_at_once_re_plan_each_invoice_once(database_url, tmp_path):
    app = start(database_url, tmp_path, "2026-03-02 10:00", SEGMENTED)
    ingest(app, *(invoice_issued(f"F-{n:02}", "2026-04-01") for n in range(30)))
    app.dispose()
    app = start(database_url, tmp_path, "2026-03-03 10:00", policy_b(tmp_path))
    try:
        with ThreadPoolExecutor(2) as pool:
            passes = list(
                pool.map(
                    lambda _: replan_changed_invoices(
                        app.sessions, app.ctx.policies, app.clock.now(), batch_size=7
                    ),
                    range(2),
                )
            )
        assert sum(p.replanned for p in passes) == 30
        assert len(replanned_records(app)) == 30
        assert replan_at_start(app).stale == 0
    finally:
        app.dispose()
