"""The formal notice's deadline counts from the registered letter's presentation.

Worked out by hand on the French calendar of 2026 (Ascension Thu 14 May, Whit Monday
25 May, Victoire 1945 Fri 8 May, Assumption Sat 15 August), with the default policy:
``postal_delay_days`` 2 business days, ``deadline_days`` 8 calendar days.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest

from adapters.memory_store import MemoryData, MemoryUnitsOfWork
from config.bootstrap import make_context
from config.settings import Settings
from handlers.context import Context
from handlers.deadlines import deadline_after, formal_notice_deadline, presentation_day
from handlers.policy import Escalation
from handlers.service import ingest_one
from tests.support import invoice_issued

RULES = Escalation()


def test_the_defaults_give_8_days_from_a_presentation_2_business_days_after_posting():
    assert (RULES.deadline_days, RULES.postal_delay_days) == (8, 2)


def test_a_notice_posted_on_monday_11_may_is_presented_on_wednesday_and_due_on_thursday_21():
    # Mon 11 May + 2 business days: Tue 12 (1), Wed 13 (2); 13 + 8 = Thu 21 May, a business day
    assert presentation_day(date(2026, 5, 11), "FR", 2) == date(2026, 5, 13)
    assert formal_notice_deadline(date(2026, 5, 11), "FR", RULES) == date(2026, 5, 21)


def test_a_notice_posted_before_the_8_may_holiday_is_presented_after_the_weekend():
    # Thu 7 May + 2 business days: Fri 8 May is a public holiday (Victoire 1945), Sat 9 and
    # Sun 10 are the weekend, so Mon 11 (1), Tue 12 (2); 12 + 8 = Wed 20 May, a business day
    assert presentation_day(date(2026, 5, 7), "FR", 2) == date(2026, 5, 12)
    assert formal_notice_deadline(date(2026, 5, 7), "FR", RULES) == date(2026, 5, 20)


def test_a_notice_posted_before_ascension_is_presented_the_next_monday():
    # Wed 13 May + 2 business days: Thu 14 May is Ascension, so Fri 15 (1), Mon 18 (2);
    # 18 + 8 = Tue 26 May (Whit Monday, 25 May, is passed), a business day
    assert presentation_day(date(2026, 5, 13), "FR", 2) == date(2026, 5, 18)
    assert formal_notice_deadline(date(2026, 5, 13), "FR", RULES) == date(2026, 5, 26)


def test_a_deadline_falling_on_a_saturday_moves_to_the_monday():
    # Wed 20 May + 2 business days = Fri 22 May; 22 + 8 = Sat 30 May -> Mon 1 June
    assert presentation_day(date(2026, 5, 20), "FR", 2) == date(2026, 5, 22)
    assert formal_notice_deadline(date(2026, 5, 20), "FR", RULES) == date(2026, 6, 1)


def test_a_deadline_falling_on_a_sunday_before_a_holiday_moves_past_both():
    # a letter signed for on Sat 16 May: 16 + 8 = Sun 24 May, Mon 25 is Whit Monday -> Tue 26
    assert deadline_after(date(2026, 5, 16), "FR", 8) == date(2026, 5, 26)


def test_a_deadline_on_a_business_day_stays_there():
    # acknowledged on Wed 20 May: 20 + 8 = Thu 28 May, a business day
    assert deadline_after(date(2026, 5, 20), "FR", 8) == date(2026, 5, 28)


def test_without_a_postal_delay_the_deadline_counts_from_the_posting_day():
    # Mon 11 May + 0 = Mon 11 May; 11 + 8 = Tue 19 May
    rules = Escalation(postal_delay_days=0)
    assert presentation_day(date(2026, 5, 11), "FR", 0) == date(2026, 5, 11)
    assert formal_notice_deadline(date(2026, 5, 11), "FR", rules) == date(2026, 5, 19)


def test_the_business_days_are_those_of_the_debtor_s_country():
    # Germany has no holiday on 8 May 2026: Thu 7 May + 2 = Mon 11 May (Fri 8 (1), Mon 11 (2));
    # 11 + 8 = Tue 19 May
    assert presentation_day(date(2026, 5, 7), "DE", 2) == date(2026, 5, 11)
    assert formal_notice_deadline(date(2026, 5, 7), "DE", RULES) == date(2026, 5, 19)


def test_a_postal_delay_outside_0_to_30_days_is_refused():
    with pytest.raises(ValueError, match="postal_delay_days"):
        Escalation(postal_delay_days=31)
    with pytest.raises(ValueError, match="postal_delay_days"):
        Escalation(postal_delay_days=-1)


# -- a delivery status on the memory store ---------------------------------------------------

NOTICE_ID = "<notice-1@test>"
# the deadline a notice posted Mon 11 May plans: end of Thu 21 May in Paris = 22:00 UTC
PLANNED = datetime(2026, 5, 21, 22, 0, tzinfo=UTC)
NOW = datetime(2026, 5, 21, 8, 0, tzinfo=UTC)


@pytest.fixture
def ctx(tmp_path) -> Context:
    return make_context(Settings(data_dir=tmp_path))


@pytest.fixture
def data(ctx) -> MemoryData:
    """F-1 due 1 April, its formal notice posted on Monday 11 May by registered letter and
    e-mail, its deadline planned at the end of 21 May."""
    memory = MemoryData()
    feed(memory, ctx, invoice_issued("F-1", "2026-04-01", "4800.00"))
    found = next(i for i in memory.invoices.values() if i.number == "F-1")
    for channel, message_id in (("registered_letter", NOTICE_ID), ("email", "<copy-1@test>")):
        memory.add_message(
            message_id=message_id,
            debtor_id="D-1",
            channel=channel,
            step="formal_notice",
            created_at=datetime(2026, 5, 11, 7, 0, tzinfo=UTC),
            claims=[(found.id, "formal_notice")],
        )
    with MemoryUnitsOfWork(memory)() as uow:
        uow.store.add_step(found.id, "D-1", "escalation", "deadline.expired", PLANNED)
    return memory


def feed(data: MemoryData, ctx: Context, *events: dict[str, Any]) -> list[str]:
    statuses = []
    for event in events:
        with MemoryUnitsOfWork(data)() as uow:
            statuses.append(ingest_one(uow, json.dumps(event), NOW, ctx).status)
    return statuses


def status(message_id: str, kind: str, at: str) -> dict[str, Any]:
    return {
        "event_id": f"status-{message_id}-{kind}-{at}",
        "type": "delivery.status",
        "occurred_at": at,
        "message_id": message_id,
        "status": kind,
        "at": at,
    }


def escalation(data: MemoryData) -> Any:
    return next(s for s in data.steps.values() if s.step == "escalation")


def moved(data: MemoryData) -> list[dict[str, Any]]:
    return [json.loads(r.payload) for r in data.evidence if r.kind == "deadline.moved"]


@pytest.fixture
def log_lines(json_logs):
    """The JSON log lines written while the test runs (``json_logs`` of tests/conftest.py)."""
    return json_logs


def test_an_acknowledgment_later_than_expected_moves_the_deadline_later(data, ctx, log_lines):
    # signed for on Wed 20 May: 20 + 8 = Thu 28 May; it expires at its end, 22:00 UTC
    assert feed(data, ctx, status(NOTICE_ID, "acknowledged", "2026-05-20T10:42:00+02:00")) == ["accepted"]
    assert escalation(data).due_at == datetime(2026, 5, 28, 22, 0, tzinfo=UTC)
    (record,) = moved(data)
    assert record["invoice_numbers"] == ["F-1"] and record["message_id"] == NOTICE_ID
    assert (record["presented_on"], record["previous_deadline"], record["deadline"]) == (
        "2026-05-20",
        "2026-05-21",
        "2026-05-28",
    )
    assert record["reason"] == "registered letter acknowledged, presented on 2026-05-20"
    (line,) = [x for x in log_lines() if x["event"] == "deadline.moved"]
    assert (line["invoice_number"], line["deadline"], line["previous_deadline"]) == (
        "F-1",
        "2026-05-28",
        "2026-05-21",
    )


def test_an_acknowledgment_earlier_than_expected_never_moves_the_deadline_earlier(data, ctx):
    # signed for on Tue 12 May: 12 + 8 = Wed 20 May, before the 21 May the letter states
    feed(data, ctx, status(NOTICE_ID, "acknowledged", "2026-05-12T09:30:00+02:00"))
    assert escalation(data).due_at == PLANNED
    assert moved(data) == []


def test_an_unclaimed_letter_counts_from_its_first_presentation(data, ctx):
    # first presented (notice of arrival left) on Fri 15 May: 15 + 8 = Sat 23 May, then Sun
    # 24 and Whit Monday 25 May -> Tue 26 May; the 15 days at the post office do not count
    feed(data, ctx, status(NOTICE_ID, "unclaimed", "2026-05-15T11:00:00+02:00"))
    assert escalation(data).due_at == datetime(2026, 5, 26, 22, 0, tzinfo=UTC)
    assert moved(data)[0]["deadline"] == "2026-05-26"


def test_a_status_of_the_e_mail_copy_leaves_the_deadline_alone(data, ctx):
    feed(data, ctx, status("<copy-1@test>", "delivered", "2026-05-20T10:00:00+02:00"))
    assert escalation(data).due_at == PLANNED
    assert moved(data) == []


def test_a_bounced_registered_letter_dates_no_presentation(data, ctx):
    feed(data, ctx, status(NOTICE_ID, "bounced", "2026-05-20T10:00:00+02:00"))
    assert escalation(data).due_at == PLANNED and moved(data) == []


def test_a_late_acknowledgment_after_the_case_opened_changes_nothing_but_warns(data, ctx, log_lines):
    step = escalation(data)
    step.status = "done"  # the deadline expired and the case opened
    # signed for on Mon 25 May (Whit Monday, the post delivers): 25 + 8 = Tue 2 June
    feed(data, ctx, status(NOTICE_ID, "acknowledged", "2026-05-25T10:00:00+02:00"))
    assert (step.status, step.due_at) == ("done", PLANNED)
    assert moved(data) == []
    (line,) = [x for x in log_lines() if x["event"] == "deadline.not_moved"]
    assert line["level"] == "warning" and line["deadline"] == "2026-06-02"
