"""The reminder path's statements built once (adapters/dunning_store.py, adapters/uow.py) run
on the unit of work's connection, out of reach of its creditor filter: each names its creditor
itself. Two creditors with the same debtor id, invoice number, step and day: each unit of work
sees only its own creditor's rows, salt and chain head — on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import event, select

from adapters.dunning_store import CHUNK, SqlDunningStore
from adapters.orm import (
    DebtorRow,
    DebtorSalt,
    EvidenceHead,
    EvidenceRecord,
    InvoiceRow,
    MessageItem,
    MessageRow,
    PlannedStep,
)
from adapters.store import transaction
from handlers import evidence
from handlers.dunning import NewMessage

NOW = datetime(2026, 4, 14, 8, 0, tzinfo=UTC)
DAY = date(2026, 4, 14)
CREDITORS = ("default", "atelier")


def _seed(sessions) -> dict[str, dict[str, int]]:
    """The same debtor "D-1", invoice "F-1", step and message day under both creditors; ids by
    creditor. Only "atelier"'s debtor has a salt; "default"'s message is a draft."""
    ids: dict[str, dict[str, int]] = {}
    for n, creditor in enumerate(CREDITORS):
        with transaction(sessions) as uow:
            uow.scope(creditor)
            uow.add(
                DebtorRow(
                    id="D-1",
                    name=f"Debtor of {creditor}",
                    kind="business",
                    email=f"compta@{creditor}.example",
                    address={},
                    updated_at=NOW,
                )
            )
            if creditor == "atelier":
                uow.add(DebtorSalt(debtor_id="D-1", salt="ab" * 32, created_at=NOW))
            uow.flush()
            invoice = InvoiceRow(
                number="F-1",
                debtor_id="D-1",
                issue_date=date(2026, 2, 1),
                due_date=date(2026, 3, 1),
                currency="EUR",
                amount_due=Decimal(100 * (n + 1)),
                status="open",
                created_at=NOW,
                updated_at=NOW,
            )
            uow.add(invoice)
            uow.flush()
            step = PlannedStep(
                invoice_id=invoice.id,
                debtor_id="D-1",
                step="first",
                event="invoice.overdue",
                due_at=NOW,
                status="emitted",
            )
            message = MessageRow(
                message_id=f"<{creditor}@example>",
                debtor_id="D-1",
                channel="email" if creditor == "default" else "letter",
                step="first",
                local_day=DAY,
                recipient="x",
                subject="s",
                body_text="b",
                content=b"c",
                content_sha256="0" * 64,
                amounts={"currency": "EUR" if creditor == "default" else "CHF"},
                status="draft" if creditor == "default" else "sent",
                attempts=0,
                created_at=NOW,
            )
            uow.add_all([step, message])
            uow.flush()
            uow.add(MessageItem(message_pk=message.id, invoice_id=invoice.id, step="first", channel="email"))
            ids[creditor] = {"invoice": invoice.id, "step": step.id, "message": message.id}
    return ids


def test_each_creditor_reads_only_its_own_rows_on_the_reminder_path(sessions):
    ids = _seed(sessions)
    both_invoices = [ids[c]["invoice"] for c in CREDITORS]
    for creditor in CREDITORS:
        other = next(c for c in CREDITORS if c != creditor)
        with transaction(sessions) as uow:
            uow.scope(creditor)
            store = SqlDunningStore(uow)
            assert store.step(ids[other]["step"]) is None  # another creditor's step, by its id
            found = store.step(ids[creditor]["step"])
            assert found is not None and found.invoice_id == ids[creditor]["invoice"]
            debtor = store.lock_debtor("D-1")
            assert debtor is not None and debtor.name == f"Debtor of {creditor}"
            assert debtor.creditor_id == creditor
            assert [i.id for i in store.open_invoices("D-1")] == [ids[creditor]["invoice"]]
            drafts = {ids["default"]["invoice"]: "<default@example>"} if creditor == "default" else {}
            assert store.awaiting_drafts(both_invoices) == drafts
            claims = {(ids[creditor]["invoice"], "first", "email")}
            assert store.recorded_claims(both_invoices) == claims  # read with the drafts
            assert SqlDunningStore(uow).recorded_claims(both_invoices) == claims  # read alone
            channel, currency = ("email", "EUR") if creditor == "default" else ("letter", "CHF")
            assert SqlDunningStore(uow).messages_on("D-1", DAY) == [(channel, currency)]  # read alone
            # "default"'s message is a draft: it has no last message day
            assert store.last_message_day("D-1") == (DAY if creditor == "atelier" else None)
            assert store.messages_on("D-1", DAY) == [(channel, currency)]  # read with the last day


def test_the_evidence_of_each_creditor_uses_its_own_salt_and_its_own_head(sessions):
    _seed(sessions)
    for creditor in CREDITORS:
        with transaction(sessions) as uow:
            uow.scope(creditor)
            SqlDunningStore(uow).lock_debtor("D-1")  # its salt, read with it (none for "default")
            evidence.append(uow, "reminder.sent", NOW, {"name": "Debtor"}, debtor_id="D-1")
    with transaction(sessions) as uow:
        uow.scope(None)
        salts = dict(uow.execute(select(DebtorSalt.creditor_id, DebtorSalt.salt)).all())
        heads = dict(uow.execute(select(EvidenceHead.creditor_id, EvidenceHead.seq)).all())
        records = uow.execute(select(EvidenceRecord).order_by(EvidenceRecord.creditor_id)).scalars().all()
        # "atelier" kept its salt; "default" got its own, made when its first record needed one
        assert salts["atelier"] == "ab" * 32 and len(salts["default"]) == 64
        assert salts["default"] != salts["atelier"]
        assert heads == {"default": 1, "atelier": 1}
        assert [(r.creditor_id, r.seq) for r in records] == [("atelier", 1), ("default", 1)]
        for record in records:
            head = uow.execute(select(EvidenceHead).where(EvidenceHead.creditor_id == record.creditor_id))
            check = evidence.verify(
                [record], head.scalar_one(), {"D-1": bytes.fromhex(salts[record.creditor_id])}
            )
            assert check.ok, (record.creditor_id, check)  # hashed under its creditor's salt


@pytest.mark.parametrize("known_absent", [True, False])
def test_a_salt_made_meanwhile_by_another_transaction_is_the_one_used(sessions, known_absent):
    _seed(sessions)
    with transaction(sessions) as uow:
        uow.scope("default")
        if known_absent:  # read as absent with the debtor, made by someone else since
            uow.know_salt("default", "D-1", None)
        with transaction(sessions) as other:
            other.scope("default")
            other.add(DebtorSalt(debtor_id="D-1", salt="cd" * 32, created_at=NOW))
        evidence.append(uow, "reminder.sent", NOW, {"name": "Debtor"}, debtor_id="D-1")
    with transaction(sessions) as uow:
        uow.scope("default")
        record = uow.execute(select(EvidenceRecord)).scalar_one()
        head = uow.execute(select(EvidenceHead)).scalar_one()
        assert evidence.verify([record], head, {"D-1": bytes.fromhex("cd" * 32)}).ok


def test_a_message_is_marked_sent_only_by_a_unit_of_work_of_its_creditor(sessions):
    ids = _seed(sessions)
    with transaction(sessions) as uow:
        uow.scope("atelier")  # "default"'s message, by its id, from "atelier"
        assert uow.messages().mark_done(ids["default"]["message"], NOW, tracking_id="t") is None
    with transaction(sessions) as uow:
        uow.scope("default")
        sent = uow.messages().mark_done(ids["default"]["message"], NOW, count_attempt=True, tracking_id="t")
        assert sent is not None and (sent.status, sent.attempts) == ("sent", 1)
    with transaction(sessions) as uow:
        uow.scope(None)
        rows = uow.execute(select(MessageRow.creditor_id, MessageRow.status, MessageRow.tracking_id)).all()
    assert sorted(rows) == [("atelier", "sent", None), ("default", "sent", "t")]


def _new_message(key: str, claims: tuple[tuple[int, str], ...], *, draft: bool = False) -> NewMessage:
    return NewMessage(
        message_id=f"<{key}@example>",
        debtor_id="D-1",
        channel="email",
        step="second",
        local_day=DAY,
        recipient="compta@example",
        subject="Relance",
        body_text="b",
        content=b"bytes",
        content_sha256="1" * 64,
        amounts={"currency": "EUR"},
        lease_until=NOW,
        created_at=NOW,
        claims=claims,
        draft=draft,
    )


@pytest.mark.parametrize("claimed", [0, 1, 2, 1_203])
def test_a_message_and_its_items_are_recorded_for_the_creditor_of_the_unit_of_work(sessions, claimed):
    ids = _seed(sessions)
    recorded: dict[str, int] = {}
    for creditor in CREDITORS:
        claims = tuple((ids[creditor]["invoice"], f"s{n}") for n in range(claimed))
        with transaction(sessions) as uow:
            uow.scope(creditor)
            store = SqlDunningStore(uow)
            store.lock_debtor("D-1")
            statements: list[str] = []
            listen = (uow.connection(), "before_cursor_execute")

            def count(conn, cursor, statement, parameters, context, executemany, found=statements):
                found.append(statement)

            event.listen(*listen, count)
            recorded[creditor] = store.record_message(_new_message(f"new-{creditor}", claims, draft=True))
            event.remove(*listen, count)
            postgres = uow.connection().dialect.name == "postgresql"
            # PostgreSQL: one statement; SQLite: the message, then its items by chunks
            assert len(statements) == (1 if postgres else 1 + -(-claimed // CHUNK))
            assert store.recorded_claims([ids[creditor]["invoice"]]) == {
                (ids[creditor]["invoice"], "first", "email"),
                *((ids[creditor]["invoice"], f"s{n}", "email") for n in range(claimed)),
            }
    with transaction(sessions) as uow:
        uow.scope(None)
        for creditor in CREDITORS:
            row = uow.get(MessageRow, recorded[creditor])
            assert row is not None
            assert (row.creditor_id, row.message_id, row.status, row.lease_until) == (
                creditor,
                f"<new-{creditor}@example>",
                "draft",
                None,
            )
            assert row.content == b"bytes" and row.amounts == {"currency": "EUR"} and row.local_day == DAY
            items = uow.execute(
                select(MessageItem.invoice_id, MessageItem.step, MessageItem.channel)
                .where(MessageItem.message_pk == recorded[creditor])
                .order_by(MessageItem.id)
            ).all()
            assert items == [(ids[creditor]["invoice"], f"s{n}", "email") for n in range(claimed)]
