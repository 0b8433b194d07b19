"""Isolation of creditors, as a property: random histories of events for two creditors that
use the same invoice numbers, debtor id and event ids, played together in one store, give
each creditor exactly what it gets when its history is played alone in a store of its own:
the same invoices, steps, messages (word for word), cases, and the same evidence."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from pydantic import SecretStr
from sqlalchemy import select

from adapters.orm import CaseRow, EvidenceRecord, InvoiceRow, MessageRow, PlannedStep
from adapters.store import transaction
from handlers.service import ingest_one
from relance.reports import verify_chain
from tests.contract.test_store_histories import NUMBERS, START, _case_state, _event, _invoice_state, histories
from tests.integration.test_creditors import creditors_file
from tests.support import advance, make_test_app

OTHER = "atelier"
TICKS = [START + timedelta(days=d, hours=1) for d in range(0, 150, 4)]  # every 4 days, 5 months


def _of(creditor: str, event: dict[str, Any]) -> dict[str, Any]:
    return event if creditor == "default" else event | {"creditor_id": creditor}


def _play(app, plays: dict[str, list], rounds: int) -> None:
    """Each creditor's history, its i-th events together on day 3 × i, over ``rounds`` days
    of events; ticks at the same instants in every store (a store's clock is part of what
    it does, not of whose events it holds)."""
    longest = rounds
    ticks = iter(TICKS)
    tick = next(ticks)
    for i in range(longest):
        now = START + timedelta(days=3 * i)
        while tick <= now:
            advance(app, tick)
            tick = next(ticks)
        advance(app, now)
        for creditor, history in plays.items():
            if i < len(history):
                kind, which, variant = history[i]
                with app.units() as uow:
                    raw = json.dumps(_of(creditor, _event(i, kind, NUMBERS[which], variant)))
                    ingest_one(uow, raw, now, app.ctx)
    for rest in [tick, *ticks]:
        advance(app, rest)


def _without_ids(payload: str) -> Any:
    """A record's payload without the store's own integer keys (they differ between stores)."""
    value = json.loads(payload)

    def strip(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: strip(x) for k, x in v.items() if not (k.endswith("id") and isinstance(x, int))}
        if isinstance(v, list):
            return [strip(x) for x in v]
        return v

    return strip(value)


def _state(app, creditor: str) -> dict[str, Any]:
    with transaction(app.sessions) as uow:
        uow.scope(creditor)
        invoices = list(uow.execute(select(InvoiceRow)).scalars())
        number = {i.id: i.number for i in invoices}
        return {
            "invoices": sorted(_invoice_state(i) for i in invoices),
            "steps": sorted(
                (number[p.invoice_id], p.step, p.status, p.due_at.isoformat(), p.reason or "")
                for p in uow.execute(select(PlannedStep)).scalars()
            ),
            "messages": sorted(
                (m.channel, m.step, m.recipient, m.subject, m.body_text, m.status, m.message_id)
                for m in uow.execute(select(MessageRow)).scalars()
            ),
            "cases": sorted(_case_state(c, []) for c in uow.execute(select(CaseRow)).scalars()),
            "evidence": [
                (r.seq, r.kind, r.at.isoformat(), r.debtor_id, r.invoice_numbers, _without_ids(r.payload))
                for r in uow.execute(select(EvidenceRecord).order_by(EvidenceRecord.seq)).scalars()
            ],
        }


def _store(tmp: Path, name: str):
    folder = tmp / name
    folder.mkdir()
    # one Message-ID key for the three stores: the same message gets the same id in each
    return make_test_app(
        f"sqlite:///{folder / 'relance.db'}",
        folder,
        START,
        creditors_file=creditors_file(folder),
        message_id_key=SecretStr("one key for the stores compared"),
    )


@settings(
    max_examples=10,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(ours=histories, theirs=histories)
def test_two_creditors_with_the_same_ids_get_what_each_would_get_alone(tmp_path_factory, ours, theirs):
    tmp = tmp_path_factory.mktemp("isolation")
    together, alone_ours, alone_theirs = _store(tmp, "together"), _store(tmp, "ours"), _store(tmp, "theirs")
    try:
        rounds = max(len(ours), len(theirs))
        _play(together, {"default": ours, OTHER: theirs}, rounds)
        _play(alone_ours, {"default": ours}, rounds)
        _play(alone_theirs, {OTHER: theirs}, rounds)
        assert _state(together, "default") == _state(alone_ours, "default")
        assert _state(together, OTHER) == _state(alone_theirs, OTHER)
        assert verify_chain(together, "default").ok and verify_chain(together, OTHER).ok
    finally:
        for app in (together, alone_ours, alone_theirs):
            app.dispose()
