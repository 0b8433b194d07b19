"""The accounting event contract (spec/events.md): handlers.events.parse_event."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from handlers.events import EVENT_TYPES, EventRejected, parse_event

ENVELOPE = {"event_id": "evt-0001", "occurred_at": "2026-03-02T09:00:00+01:00"}

DEBTOR = {
    "id": "D-1",
    "name": "Exemple SARL",
    "kind": "business",
    "email": "compta@exemple.fr",
    "language": "fr",
    "timezone": "Europe/Paris",
    "address": {"line1": "1 rue de l'Exemple", "postal_code": "75001", "city": "Paris", "country": "FR"},
    "siren": "123456789",
}

INVOICE = {
    "number": "F-2026-001",
    "debtor_id": "D-1",
    "issue_date": "2026-03-01",
    "due_date": "2026-03-31",
    "currency": "EUR",
    "amount_due": "1200.00",
}

VALID: dict[str, dict[str, Any]] = {
    "invoice.issued": {"invoice": INVOICE, "debtor": DEBTOR},
    "invoice.updated": {
        "invoice": {
            **INVOICE,
            "amount_due": "1100.00",
            "late_penalty_rate": "0.15",
            "payment_url": "https://pay.example/F-2026-001",
            "delivered_on": "2026-02-27",
        }
    },
    "invoice.cancelled": {"invoice_number": "F-2026-001"},
    "payment.received": {"invoice_number": "F-2026-001", "amount": "200.50", "paid_on": "2026-04-02"},
    "credit_note.issued": {"invoice_number": "F-2026-001", "credit_note_number": "AV-7", "amount": "99.99"},
    "invoice.disputed": {"invoice_number": "F-2026-001", "reason": "Livraison incomplète.\nVoir BL 12."},
    "dispute.resolved": {"invoice_number": "F-2026-001", "outcome": "rejected"},
    "promise_to_pay.recorded": {"invoice_number": "F-2026-001", "promised_date": "2026-04-15"},
    "payment.reversed": {
        "invoice_number": "F-2026-001",
        "payment_id": "SEPA-2026-0042",
        "reversed_on": "2026-03-02",
        "reason": "Prélèvement rejeté (AM04)",
    },
    "credit_note.cancelled": {"invoice_number": "F-2026-001", "credit_note_number": "AV-7"},
    "invoice.written_off": {"invoice_number": "F-2026-001", "reason": "Créance irrécouvrable"},
    "invoice.held": {"invoice_number": "F-2026-001", "reason": "Négociation en cours", "until": "2026-03-31"},
    "invoice.released": {"invoice_number": "F-2026-001"},
    "invoice.status_changed": {
        "invoice_number": "F-2026-001",
        "status_code": "212",
        "at": "2026-04-02T14:00:00+02:00",
        "amount": "1200.00",
    },
    "debtor.held": {"debtor_id": "D-1", "reason": "Client stratégique"},
    "debtor.released": {"debtor_id": "D-1"},
    "payment_plan.agreed": {
        "debtor_id": "D-1",
        "invoice_numbers": ["F-2026-001", "F-2026-002"],
        "installments": [
            {"due_date": "2026-05-05", "amount": "600.00"},
            {"due_date": "2026-06-05", "amount": "600.00"},
        ],
    },
    "debtor.updated": {
        "debtor": {
            **DEBTOR,
            "kind": "consumer",
            "language": "en",
            "email": None,
            "timezone": "America/Martinique",
            "opt_out": True,
        }
    },
    "debtor.insolvency_opened": {
        "debtor_id": "D-1",
        "procedure": "redressement",
        "judgment_date": "2026-04-10",
        "bodacc_published_on": "2026-04-20",
        "administrator": {"name": "Me Claire Dubois", "address": ["3 quai Jules Courmont", "69002 Lyon"]},
    },
    "debtor.insolvency_converted": {
        "debtor_id": "D-1",
        "procedure": "liquidation",
        "judgment_date": "2026-06-15",
        "liquidator": {"name": "Me Paul Marchand", "address": ["8 rue Grenette", "69002 Lyon"]},
    },
    "debtor.insolvency_plan_adopted": {"debtor_id": "D-1", "judgment_date": "2026-09-01"},
    "debtor.insolvency_closed": {
        "debtor_id": "D-1",
        "closed_on": "2027-03-01",
        "outcome": "insufficient_assets",
    },
    "delivery.status": {
        "message_id": "<abc123@relance.example>",
        "status": "bounced",
        "at": "2026-04-01T10:15:00Z",
    },
}


def event(kind: str = "invoice.issued", **changes: Any) -> dict[str, Any]:
    return {**ENVELOPE, "type": kind, **copy.deepcopy(VALID[kind]), **changes}


def line(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False)


def with_value(path: str, value: Any, kind: str = "invoice.issued") -> str:
    """The valid event of ``kind`` with the dotted ``path`` set to ``value`` (or removed)."""
    data = event(kind)
    *parents, last = path.split(".")
    target = data
    for part in parents:
        target = target[part]
    if value is REMOVE:
        del target[last]
    else:
        target[last] = value
    return line(data)


REMOVE = object()


def test_every_event_type_of_the_contract_has_an_example_here():
    assert set(VALID) == set(EVENT_TYPES)
    # 12, the three later stages of an insolvency (converted, plan adopted, closed), and the
    # holds of an invoice or a debtor and their releases, the write-off of an invoice, and
    # the reversal of a payment or cancellation of a credit note, and the e-invoicing
    # lifecycle statuses
    assert len(EVENT_TYPES) == 23


@pytest.mark.parametrize("kind", sorted(VALID))
def test_a_valid_event_of_each_type_parses(kind):
    parsed = parse_event(line(event(kind)))
    assert parsed.type == kind
    assert parsed.event_id == "evt-0001"
    assert parsed.occurred_at == datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def test_a_valid_invoice_issued_parses_with_exact_decimal_amounts_and_dates():
    parsed = parse_event(line(event()))
    assert parsed.invoice.amount_due == Decimal("1200.00")
    assert isinstance(parsed.invoice.amount_due, Decimal)
    assert str(parsed.invoice.amount_due) == "1200.00"
    assert parsed.invoice.issue_date == date(2026, 3, 1)
    assert parsed.invoice.due_date == date(2026, 3, 31)
    assert parsed.occurred_at.utcoffset() == timedelta(hours=1)
    assert parsed.debtor.address.city == "Paris"
    assert parsed.debtor.kind == "business"


def test_money_with_one_decimal_is_kept_exactly_as_cents():
    parsed = parse_event(with_value("amount", "12.3", kind="payment.received"))
    assert str(parsed.amount) == "12.30"


def test_optional_fields_are_parsed_with_their_types():
    updated = parse_event(line(event("invoice.updated")))
    assert updated.invoice.late_penalty_rate == Decimal("0.15")
    assert updated.invoice.delivered_on == date(2026, 2, 27)
    plan = parse_event(line(event("payment_plan.agreed")))
    assert [i.amount for i in plan.installments] == [Decimal("600.00"), Decimal("600.00")]
    assert sum(i.amount for i in plan.installments) == Decimal("1200.00")
    debtor = parse_event(line(event("debtor.updated"))).debtor
    assert (debtor.kind, debtor.language, debtor.opt_out, debtor.email) == ("consumer", "en", True, None)


def test_defaults_apply_when_optional_debtor_fields_are_absent():
    data = event()
    for key in ("language", "timezone", "email", "siren"):
        del data["debtor"][key]
    debtor = parse_event(line(data)).debtor
    assert (debtor.language, debtor.timezone, debtor.email, debtor.opt_out) == (
        "fr",
        "Europe/Paris",
        None,
        False,
    )


def test_unknown_extra_fields_are_ignored():
    data = event(source_system="SAP", trace={"spans": [1, 2, 3]})
    data["invoice"]["internal_ref"] = "X-9"
    data["debtor"]["address"]["floor"] = "3"
    parsed = parse_event(line(data))
    assert parsed.invoice.number == "F-2026-001"
    assert not hasattr(parsed, "source_system")


def test_a_line_may_be_given_as_utf8_bytes_with_a_trailing_newline():
    data = event()
    data["debtor"]["name"] = "Société Générale d'Équipement"
    parsed = parse_event((line(data) + "\n").encode("utf-8"))
    assert parsed.debtor.name == "Société Générale d'Équipement"


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


REJECTIONS = [
    # (id, raw line, the reason must start with / contain this)
    ("float money", with_value("invoice.amount_due", 1200.0), "invoice.amount_due:"),
    ("integer money", with_value("invoice.amount_due", 1200), "invoice.amount_due:"),
    ("boolean money", with_value("invoice.amount_due", True), "invoice.amount_due:"),
    ("three decimals", with_value("invoice.amount_due", "12.345"), "invoice.amount_due:"),
    ("zero amount", with_value("invoice.amount_due", "0.00"), "invoice.amount_due:"),
    ("negative amount", with_value("invoice.amount_due", "-5.00"), "invoice.amount_due:"),
    ("negative payment", with_value("amount", "-1.00", kind="payment.received"), "amount:"),
    ("NaN string", with_value("invoice.amount_due", "NaN"), "invoice.amount_due:"),
    ("Infinity string", with_value("invoice.amount_due", "Infinity"), "invoice.amount_due:"),
    ("1e400 string", with_value("invoice.amount_due", "1e400"), "invoice.amount_due:"),
    ("1e400 number", line(event()).replace('"1200.00"', "1e400"), "invoice.amount_due:"),
    ("exponent notation", with_value("invoice.amount_due", "1e3"), "invoice.amount_due:"),
    ("digit separators", with_value("invoice.amount_due", "1_000.00"), "invoice.amount_due:"),
    ("surrounding blanks", with_value("invoice.amount_due", " 12.30"), "invoice.amount_due:"),
    ("explicit plus sign", with_value("invoice.amount_due", "+12.30"), "invoice.amount_due:"),
    ("non-ASCII digits", with_value("invoice.amount_due", "١٢.٣٠"), "invoice.amount_due:"),
    ("amount too large", with_value("invoice.amount_due", "1000000000000.00"), "invoice.amount_due:"),
    ("float rate", with_value("invoice.late_penalty_rate", 0.15), "invoice.late_penalty_rate:"),
    ("rate above 1", with_value("invoice.late_penalty_rate", "2"), "invoice.late_penalty_rate:"),
    (
        "rate in exponent notation",
        with_value("invoice.late_penalty_rate", "1.5e-1"),
        "invoice.late_penalty_rate:",
    ),
    ("NaN rate", with_value("invoice.late_penalty_rate", "NaN"), "invoice.late_penalty_rate:"),
    ("naive occurred_at", with_value("occurred_at", "2026-03-02T09:00:00"), "occurred_at:"),
    ("date as occurred_at", with_value("occurred_at", "2026-03-02"), "occurred_at:"),
    ("naive delivery time", with_value("at", "2026-04-01T10:15:00", kind="delivery.status"), "at:"),
    ("30 February", with_value("invoice.issue_date", "2026-02-30"), "invoice.issue_date:"),
    ("date not YYYY-MM-DD", with_value("invoice.issue_date", "01/03/2026"), "invoice.issue_date:"),
    ("date with time", with_value("invoice.due_date", "2026-03-31T00:00:00"), "invoice.due_date:"),
    (
        "due before issue",
        with_value("invoice.due_date", "2026-02-28"),
        "due_date must not be before issue_date",
    ),
    ("debtor mismatch", with_value("invoice.debtor_id", "D-2"), "debtor_id"),
    ("unknown type", with_value("type", "invoice.paid"), "type:"),
    ("missing type", with_value("type", REMOVE), "type:"),
    ("type not a string", with_value("type", 7), "type:"),
    ("missing event_id", with_value("event_id", REMOVE), "event_id:"),
    ("empty event_id", with_value("event_id", ""), "event_id:"),
    ("event_id too long", with_value("event_id", "x" * 201), "event_id:"),
    ("missing invoice", with_value("invoice", REMOVE), "invoice:"),
    ("missing amount_due", with_value("invoice.amount_due", REMOVE), "invoice.amount_due:"),
    ("newline in name", with_value("debtor.name", "Evil\nCorp"), "debtor.name:"),
    ("control char in name", with_value("debtor.name", "Evil\x07Corp"), "debtor.name:"),
    ("line separator in name", with_value("debtor.name", "Evil\u2028Corp"), "debtor.name:"),
    ("CRLF in address", with_value("debtor.address.line1", "1 rue X\r\nBcc: x"), "debtor.address.line1:"),
    (
        "CRLF header injection in email",
        with_value("debtor.email", "a@b.fr\r\nBcc: victim@example.org"),
        "debtor.email:",
    ),
    ("not an email", with_value("debtor.email", "compta-at-exemple.fr"), "debtor.email:"),
    ("unknown time zone", with_value("debtor.timezone", "Mars/Olympus"), "debtor.timezone:"),
    ("path as time zone", with_value("debtor.timezone", "../../etc/passwd"), "debtor.timezone:"),
    ("lower-case country", with_value("debtor.address.country", "fr"), "debtor.address.country:"),
    ("unknown debtor kind", with_value("debtor.kind", "company"), "debtor.kind:"),
    ("bad currency", with_value("invoice.currency", "euro"), "invoice.currency:"),
    ("unknown outcome", with_value("outcome", "maybe", kind="dispute.resolved"), "outcome:"),
    ("empty installments", with_value("installments", [], kind="payment_plan.agreed"), "installments:"),
    (
        "float installment",
        with_value("installments", [{"due_date": "2026-05-05", "amount": 600.0}], kind="payment_plan.agreed"),
        "installments[0].amount:",
    ),
    ("unknown delivery status", with_value("status", "lost", kind="delivery.status"), "status:"),
    ("reversal without payment_id", with_value("payment_id", REMOVE, kind="payment.reversed"), "payment_id:"),
    (
        "payment_id of 101 characters",
        with_value("payment_id", "P" * 101, kind="payment.received"),
        "payment_id:",
    ),
    (
        "payment_id with a line break",
        with_value("payment_id", "P\n1", kind="payment.received"),
        "payment_id:",
    ),
    ("reversal without a day", with_value("reversed_on", REMOVE, kind="payment.reversed"), "reversed_on:"),
    (
        "cancelled credit note unnamed",
        with_value("credit_note_number", "", kind="credit_note.cancelled"),
        "credit_note_number:",
    ),
    ("write-off without reason", with_value("reason", REMOVE, kind="invoice.written_off"), "reason:"),
    ("hold without reason", with_value("reason", REMOVE, kind="invoice.held"), "reason:"),
    ("empty hold reason", with_value("reason", "", kind="debtor.held"), "reason:"),
    ("hold reason of 301 characters", with_value("reason", "x" * 301, kind="invoice.held"), "reason:"),
    ("line break in a hold reason", with_value("reason", "a\nb", kind="invoice.held"), "reason:"),
    ("hold until not a date", with_value("until", "31/03/2026", kind="invoice.held"), "until:"),
    ("release without debtor", with_value("debtor_id", REMOVE, kind="debtor.released"), "debtor_id:"),
]


@pytest.mark.parametrize(("raw", "names"), [r[1:] for r in REJECTIONS], ids=[r[0] for r in REJECTIONS])
def test_an_invalid_event_is_rejected_with_a_reason_naming_the_field(raw, names):
    with pytest.raises(EventRejected) as caught:
        parse_event(raw)
    reason = caught.value.reason
    assert reason.startswith(names) or names in reason, reason
    assert str(caught.value) == reason


def test_a_rejection_keeps_the_event_id_when_there_is_one():
    with pytest.raises(EventRejected) as caught:
        parse_event(with_value("invoice.amount_due", 12.5))
    assert caught.value.event_id == "evt-0001"


def test_the_nan_literal_is_rejected_as_json_that_is_not_allowed():
    raw = line(event()).replace('"1200.00"', "NaN")
    with pytest.raises(EventRejected, match="NaN"):
        parse_event(raw)


@pytest.mark.parametrize("literal", ["Infinity", "-Infinity"])
def test_infinity_literals_are_rejected(literal):
    with pytest.raises(EventRejected, match="Infinity"):
        parse_event(line(event()).replace('"1200.00"', literal))


def test_invalid_utf8_is_rejected_naming_the_byte_offset():
    raw = line(event()).encode("utf-8").replace(b"Exemple SARL", b"Exemple \xff SARL")
    offset = raw.index(b"\xff")
    with pytest.raises(EventRejected, match=f"UTF-8 at byte {offset}$"):
        parse_event(raw)


@pytest.mark.parametrize("raw", ['["invoice.issued"]', '"invoice.issued"', "42", "null", "true"])
def test_a_json_line_that_is_not_an_object_is_rejected(raw):
    with pytest.raises(EventRejected, match="must be a JSON object"):
        parse_event(raw)


@pytest.mark.parametrize("raw", ["", "{", '{"event_id": "x",}', "{'event_id': 'x'}"])
def test_a_line_that_is_not_json_is_rejected(raw):
    with pytest.raises(EventRejected, match="not valid JSON"):
        parse_event(raw)


def test_nesting_up_to_16_levels_is_accepted():
    # the event object itself is level 1; 15 nested objects in an ignored field make 16
    parse_event(line(event(extra=_nested(15))))


def test_nesting_deeper_than_16_levels_is_rejected():
    with pytest.raises(EventRejected, match="nested deeper than 16"):
        parse_event(line(event(extra=_nested(16))))


def test_pathological_nesting_is_rejected_without_crashing():
    with pytest.raises(EventRejected):
        parse_event("[" * 200_000 + "]" * 200_000)


def test_a_line_longer_than_256_kib_is_rejected_before_parsing():
    data = event(padding="x" * (256 * 1024))
    with pytest.raises(EventRejected, match="longer than 262144 bytes"):
        parse_event(line(data))
    with pytest.raises(EventRejected, match="longer than 262144 bytes"):
        parse_event(line(data).encode("utf-8"))


def test_a_line_just_under_256_kib_is_accepted():
    data = event(padding="")
    overhead = len(line(data).encode("utf-8"))
    data["padding"] = "x" * (256 * 1024 - overhead)
    assert len(line(data).encode("utf-8")) == 256 * 1024
    parse_event(line(data))


def test_the_size_limit_counts_bytes_not_characters():
    # 100 000 "é" are 100 000 characters but 200 000 bytes; twice that exceeds 262 144 bytes
    data = event(padding="é" * 140_000)
    assert len(line(data)) < 256 * 1024 < len(line(data).encode("utf-8"))
    with pytest.raises(EventRejected, match="longer than"):
        parse_event(line(data))


def test_a_country_without_a_holiday_calendar_is_rejected_naming_the_field():
    import json

    from handlers.events import EventRejected, parse_event

    event = {
        "event_id": "e",
        "type": "debtor.updated",
        "occurred_at": "2026-03-01T10:00:00+01:00",
        "debtor": {
            "id": "D",
            "name": "N",
            "kind": "business",
            "address": {"line1": "a", "postal_code": "1", "city": "c", "country": "ZZ"},
        },
    }
    with pytest.raises(EventRejected) as caught:
        parse_event(json.dumps(event))
    assert caught.value.reason == ("debtor.address.country: no public-holiday calendar for country 'ZZ'")


# --- the later stages of an insolvency -------------------------------------------------------


def test_a_conversion_to_liquidation_names_the_liquidator_who_receives_the_claims():
    parsed = parse_event(line(event("debtor.insolvency_converted")))
    assert parsed.liquidator.name == "Me Paul Marchand"
    assert parsed.liquidator.address == ["8 rue Grenette", "69002 Lyon"]
    assert parsed.judgment_date == date(2026, 6, 15)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"liquidator": REMOVE}, "(event): liquidator: required when the procedure becomes a liquidation"),
        (
            {"administrator": {"name": "Me X", "address": ["1 rue"]}},
            "(event): administrator: a liquidation names a liquidator instead",
        ),
        ({"procedure": "redressement"}, "(event): liquidator: only a liquidation names a liquidator"),
        ({"procedure": "sauvegarde"}, "procedure: Input should be 'liquidation' or 'redressement'"),
        (
            {"liquidator": {"name": "Me X", "address": []}},
            "liquidator.address: List should have at least 1 item",
        ),
        (
            {"liquidator": {"name": "Me X\r\nBcc: y", "address": ["1 rue"]}},
            "liquidator.name: must not contain",
        ),
    ],
)
def test_a_conversion_is_refused_with_the_field_at_fault(changes, reason):
    data = event("debtor.insolvency_converted")
    for key, value in changes.items():
        if value is REMOVE:
            del data[key]
        else:
            data[key] = value
    with pytest.raises(EventRejected) as caught:
        parse_event(line(data))
    assert caught.value.reason.startswith(reason)


def test_a_conversion_of_a_sauvegarde_to_a_redressement_may_name_a_new_administrator():
    data = event("debtor.insolvency_converted", procedure="redressement")
    del data["liquidator"]
    data["administrator"] = {"name": "Me Y", "address": ["2 rue", "75002 Paris"]}
    assert parse_event(line(data)).administrator.name == "Me Y"


def test_an_opening_may_name_the_mandataire_and_a_closure_says_its_outcome():
    assert parse_event(line(event("debtor.insolvency_opened"))).administrator.name == "Me Claire Dubois"
    with pytest.raises(EventRejected) as caught:
        parse_event(line(event("debtor.insolvency_closed", outcome="abandoned")))
    assert caught.value.reason.startswith("outcome: Input should be 'plan_completed'")
    with pytest.raises(EventRejected) as caught:
        parse_event(line(event("debtor.insolvency_plan_adopted", judgment_date="2026-02-30")))
    assert caught.value.reason.startswith("judgment_date: ")


def test_a_hold_ending_before_the_day_it_was_put_is_rejected_with_both_days():
    with pytest.raises(EventRejected) as rejected:
        parse_event(with_value("until", "2026-03-01", kind="debtor.held"))
    reason = "until: 2026-03-01 is before the day the hold was put (2026-03-02)"
    assert rejected.value.reason == reason


def test_a_hold_may_end_on_the_day_it_was_put_or_never():
    assert parse_event(with_value("until", "2026-03-02", kind="invoice.held")).until == date(2026, 3, 2)
    assert parse_event(with_value("until", REMOVE, kind="invoice.held")).until is None


def test_a_payment_may_carry_its_own_id():
    assert parse_event(with_value("payment_id", "SEPA-1", kind="payment.received")).payment_id == "SEPA-1"
    assert parse_event(line(event("payment.received"))).payment_id is None


def test_a_lifecycle_status_is_refused_naming_status_code_when_unknown_or_absent():
    """Given a status outside the DGFiP list, or none, then the reason names status_code."""
    for value, reason in (
        ("299", "status_code: unknown status code '299': not a DGFiP lifecycle code (200 to 228, 501)"),
        (REMOVE, "status_code: Field required"),
    ):
        with pytest.raises(EventRejected) as refused:
            parse_event(with_value("status_code", value, kind="invoice.status_changed"))
        assert refused.value.reason == reason


def test_a_lifecycle_amount_is_only_taken_where_it_means_something():
    """206 requires the amount approved; 205 carries none; 212 may carry the sum cashed."""
    partly = event("invoice.status_changed", status_code="206")
    del partly["amount"]
    approved = event("invoice.status_changed", status_code="205")
    for data, reason in (
        (partly, "amount: required for status 206 (the amount approved)"),
        (approved, "amount: status 205 carries no amount (only 206 and 212 do)"),
    ):
        with pytest.raises(EventRejected) as refused:
            parse_event(line(data))
        assert refused.value.reason == reason
    cashed = parse_event(line(event("invoice.status_changed")))
    assert (cashed.status_code, cashed.amount) == ("212", Decimal("1200.00"))


def test_the_debtor_and_invoices_an_event_names_are_read_from_its_fields():
    from handlers.inbox import _debtor_of, invoices_of

    named = {}
    for kind in ("invoice.issued", "payment.received", "debtor.updated", "payment_plan.agreed"):
        parsed = parse_event(line(event(kind)))
        named[kind] = (_debtor_of(parsed), invoices_of(parsed))
    data = {kind: event(kind) for kind in named}
    issued, paid, plan = data["invoice.issued"], data["payment.received"], data["payment_plan.agreed"]
    assert named == {
        "invoice.issued": (issued["debtor"]["id"], [issued["invoice"]["number"]]),
        "payment.received": (None, [paid["invoice_number"]]),  # a payment names its invoice only
        "debtor.updated": (data["debtor.updated"]["debtor"]["id"], []),
        "payment_plan.agreed": (plan["debtor_id"], plan["invoice_numbers"]),
    }
