"""Input that cannot smuggle anything (docs/events.md, value rules and rejections):
duplicate JSON keys, escaped lone surrogates and invisible characters in identifiers."""

from __future__ import annotations

import json

import pytest

from handlers.events import EventRejected, parse_event

PAYMENT = (
    '{"event_id":"e-1","type":"payment.received","occurred_at":"2026-03-02T09:00:00+01:00",'
    '"invoice_number":"F-1","amount":"10.00","paid_on":"2026-03-02"}'
)


def payment(**fields: object) -> str:
    data = json.loads(PAYMENT)
    data.update(fields)
    return json.dumps(data, ensure_ascii=False)


def reason_of(raw: str) -> str:
    with pytest.raises(EventRejected) as rejected:
        parse_event(raw)
    return rejected.value.reason


def test_a_second_type_key_is_rejected_instead_of_winning():
    raw = PAYMENT.replace('"type":"payment.received"', '"type":"payment.received","type":"invoice.cancelled"')
    assert reason_of(raw) == 'duplicate key "type"'


def test_a_duplicate_key_in_a_nested_object_is_rejected():
    raw = (
        '{"event_id":"e-2","type":"invoice.updated","occurred_at":"2026-03-02T09:00:00+01:00",'
        '"invoice":{"number":"F-1","debtor_id":"D-1","issue_date":"2026-03-01","due_date":"2026-03-31",'
        '"currency":"EUR","amount_due":"1000.00","amount_due":"1.00"}}'
    )
    assert reason_of(raw) == 'duplicate key "amount_due"'


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (PAYMENT.replace('"e-1"', '"\\ud800"'), "event_id: lone surrogate \\ud800"),
        (PAYMENT.replace('"F-1"', '"F-\\udfff1"'), "invoice_number: lone surrogate \\udfff"),
        (PAYMENT.replace('"amount"', '"am\\ud800"'), "lone surrogate \\ud800 in a key"),
    ],
)
def test_an_escaped_lone_surrogate_is_rejected_naming_its_field(raw, reason):
    assert reason_of(raw).startswith(reason)


def test_an_escaped_surrogate_pair_is_one_character_and_accepted():
    event = parse_event(PAYMENT.replace('"F-1"', '"F-\\ud83d\\ude00"'))
    assert event.invoice_number == "F-\U0001f600"


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("invoice_number", "F-\u034f1", "U+034F"),  # combining grapheme joiner
        ("invoice_number", "F-1\u3164", "U+3164"),  # Hangul filler
        ("invoice_number", "F\u00a01", "U+00A0"),  # no-break space
        ("invoice_number", "F\u202f1", "U+202F"),  # narrow no-break space
        ("invoice_number", "F\u30001", "U+3000"),  # ideographic space
        ("invoice_number", "F-1\ufe0f", "U+FE0F"),  # variation selector
        ("invoice_number", "F-1\U000e0041", "U+E0041"),  # tag letter
        ("invoice_number", "F-1\u2800", "U+2800"),  # braille blank
        ("event_id", "e\u115f1", "U+115F"),  # Hangul choseong filler
        ("event_id", "e\uffa01", "U+FFA0"),  # halfwidth Hangul filler
    ],
)
def test_identifiers_refuse_invisible_characters_and_name_them(field, value, code):
    assert reason_of(payment(**{field: value})) == f"{field}: invisible character {code}"


def test_debtor_ids_and_credit_note_numbers_refuse_invisible_characters():
    credit = {
        "event_id": "e-3",
        "type": "credit_note.issued",
        "occurred_at": "2026-03-02T09:00:00+01:00",
        "invoice_number": "F-1",
        "credit_note_number": "AV\u034f-1",
        "amount": "1.00",
    }
    assert reason_of(json.dumps(credit)) == "credit_note_number: invisible character U+034F"
    held = {
        "event_id": "e-4",
        "type": "debtor.insolvency_opened",
        "occurred_at": "2026-03-02T09:00:00+01:00",
        "debtor_id": "D\u00a01",
        "procedure": "sauvegarde",
        "judgment_date": "2026-03-01",
    }
    assert reason_of(json.dumps(held)) == "debtor_id: invisible character U+00A0"


def test_identifiers_are_nfc_normalised():
    decomposed = "F-e\u0301"  # e + combining acute accent
    event = parse_event(payment(invoice_number=decomposed, event_id="e\u0301-1"))
    assert (event.invoice_number, event.event_id) == ("F-\u00e9", "\u00e9-1")


def test_an_ordinary_space_and_letters_of_any_script_stay_allowed_in_identifiers():
    event = parse_event(payment(invoice_number="Ф 2026/001-é"))
    assert event.invoice_number == "Ф 2026/001-é"
