"""A corpus of nasty events (nasty_events.jsonl) through `relance ingest` and ingest_one.

Every nasty line is rejected with a reason naming its field (or what is wrong with the
line as a whole) and its line number, stored for replay, without a traceback and without
stopping the valid lines between them. The file mixes LF and CRLF line endings; a line
starting with a UTF-8 byte order mark is accepted (docs/events.md).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from adapters.orm import DebtorRow, InvoiceRow, RejectedEvent
from adapters.store import transaction
from handlers.service import ingest_one
from intake.ingest import _lines
from relance.cli import main
from tests.support import make_test_app

CORPUS = Path(__file__).with_name("nasty_events.jsonl")

# line number -> start of the reason (field path first, where there is a field)
REJECTED = {
    2: 'amount: money must be a JSON string such as "1200.00", not a number',  # 12.5
    4: "amount: money must be written with digits and a dot",  # "NaN"
    5: 'amount: money must be a JSON string such as "1200.00", not a number',  # 1e999
    6: "not valid JSON: a number has too many digits",  # a 5001-digit integer
    8: "occurred_at: Input should have timezone info",  # naive timestamp
    9: "invoice.due_date: Input should be a valid date",  # 2026-02-30
    10: "debtor.email: ",  # "\r\nBcc: x@y"
    11: "debtor.name: must not contain control characters",  # NUL
    13: "event_id: 'evt-dup' was already used by a different event",
    14: "an event must be a JSON object",  # an array
    15: "type: missing",  # {}
    16: "type: unknown event type 'invoice.paid'",
    18: "not valid UTF-8 at byte ",
    19: "line is longer than 262144 bytes",  # 300 KiB
    20: "not valid JSON: nesting too deep",  # 10 000 nested arrays
    22: "occurred_at: must be a timestamp with an offset",  # seconds since 1970
    23: "invoice_number: Input should be a valid string",  # a number
    24: "debtor.name: lone surrogate \\ud800 (escaped in the JSON text)",
    25: "not valid JSON: Invalid control character",  # a raw NUL byte
    26: "debtor_id: must not contain control characters",
    27: "paid_on: year must be between 1900 and 2199",  # 9999-12-31
    31: "liquidator.name: must not contain control characters",  # "\r\nBcc: …" in a liquidator
    33: 'duplicate key "type"',  # payment.received, then invoice.cancelled
    34: "event_id: lone surrogate \\ud800 (escaped in the JSON text)",
    35: "invoice_number: invisible character U+034F",  # combining grapheme joiner
    36: "debtor_id: invisible character U+3164",  # Hangul filler
    37: "invoice.debtor_id: invoice F-1 belongs to debtor D-1, not D-2",  # 1200.00 → 1.00
    38: "reason: must not contain control characters",  # "\r\nBcc: …" in a hold's reason
    39: "until: 2026-03-01 is before the day the hold was put (2026-03-10)",
    40: "invoice_number: invoice F-1 is not held",  # a release before any hold
    42: "reason: String should have at most 300 characters",  # a write-off's reason
    43: "payment_id: invoice F-1 has no payment 'SEPA-404'",  # a reversal of nothing
    44: "status_code: unknown status code '299'",  # not a DGFiP lifecycle code
    45: "amount: required for status 206",  # a partial approval without its amount
    46: "reason_code: must not contain control characters",  # "\r\nBcc: …" in a status's reason
    48: "debtor.phone: must not contain control characters",  # "\r\nBcc: …" after a phone number
    49: "debtor.phone: not a phone number",  # "12345"
    51: "credit_note_number: invoice F-1 has no credit note 'AV-404'",  # a cancellation of nothing
    52: "debtor_id: debtor D-1 is not held",  # a release before any hold (39's was refused)
}
# 3, 7 and 21 end with CRLF; 17 starts with a BOM; 32 (a conversion of a debtor with no
# opening judgment yet) is parked, which counts as accepted; 41 holds F-1; 47 is a status
# 205 "Approuvée" of F-1 (evidence only); 50 gives D-3 a French national phone number
ACCEPTED = [1, 3, 7, 12, 17, 21, 29, 32, 41, 47, 50]
DUPLICATE = [30]


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    for name in ("RELANCE_DATABASE_URL", "RELANCE_REDIS_URL", "RELANCE_SMTP_HOST"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "var"


def test_the_corpus_has_the_line_endings_and_sizes_it_claims():
    raw = CORPUS.read_bytes().split(b"\n")
    assert [n for n, line in enumerate(raw, 1) if line.endswith(b"\r")] == [3, 7, 21]
    assert raw[16].startswith(b"\xef\xbb\xbf")
    assert len(raw[18]) > 300 * 1024
    assert raw[19].count(b"[") == 10000


def test_ingest_rejects_each_nasty_line_by_number_and_field_and_goes_on(data_dir, capfd):
    assert main(["ingest", str(CORPUS), "--data-dir", str(data_dir)]) == 1
    out, err = capfd.readouterr()
    lines = out.splitlines()
    assert lines[-1] == f"accepted {len(ACCEPTED)}, duplicate {len(DUPLICATE)}, rejected {len(REJECTED)}"
    rejected = lines[:-1]
    assert [int(line.split(":")[0].removeprefix("line ")) for line in rejected] == list(REJECTED)
    for line, (number, reason) in zip(rejected, REJECTED.items(), strict=True):
        assert line.startswith(f"line {number}: rejected: {reason}"), line
    assert "Traceback" not in err

    assert main(["inbox", "--data-dir", str(data_dir)]) == 0
    out, err = capfd.readouterr()
    listed = [row.split("\t") for row in out.splitlines()]
    assert [where for _, _, where, _ in listed] == [f"{CORPUS}:{n}" for n in REJECTED]
    for (_, _, _, reason), expected in zip(listed, REJECTED.values(), strict=True):
        assert reason.startswith(expected)
    assert "Traceback" not in err


@pytest.mark.postgres
def test_the_corpus_through_the_actor_path_on_postgresql(postgres_url, tmp_path):
    """ingest_one, as the accounting_event actor calls it, with str payloads."""
    app = make_test_app(postgres_url, tmp_path, datetime(2026, 3, 12, 9, tzinfo=UTC))
    statuses = {}
    with CORPUS.open("rb") as stream:
        for number, raw in _lines(stream):
            if not raw.strip():
                continue
            text = raw.decode("utf-8", "surrogateescape")  # a producer that decoded badly
            with transaction(app.sessions) as session:
                result = ingest_one(session, text, app.clock.now(), app.ctx, source="broker", line_no=number)
            statuses[number] = result.status if result.status != "rejected" else result.reason
    for number, reason in REJECTED.items():
        expected = "not valid UTF-8" if number == 18 else reason
        assert statuses[number].startswith(expected), (number, statuses[number])
    assert {statuses[n] for n in ACCEPTED} <= {"accepted", "parked"}
    assert [statuses[n] for n in DUPLICATE] == ["duplicate"]
    with transaction(app.sessions) as session:
        stored = session.execute(select(RejectedEvent).order_by(RejectedEvent.id)).scalars().all()
        assert [row.line_no for row in stored] == list(REJECTED)
        assert all(row.source == "broker" and row.raw and row.replayed_at is None for row in stored)
        assert "\x00" not in "".join(row.raw for row in stored)
        f1 = session.execute(select(InvoiceRow).where(InvoiceRow.number == "F-1")).scalar_one()
        assert (f1.paid, f1.credited) == (Decimal("100.00"), Decimal("50.00"))
        assert (f1.status, f1.debtor_id, f1.amount_due) == ("open", "D-1", Decimal("1200.00"))
        assert (f1.hold_reason, f1.held_until.isoformat()) == ("négociation en cours", "2026-03-31")
        f2 = session.execute(select(InvoiceRow).where(InvoiceRow.number == "F-2")).scalar_one()
        assert (f2.amount_due, f2.paid) == (Decimal("500.00"), Decimal("0.10"))
        d3 = session.execute(select(DebtorRow).where(DebtorRow.id == "D-3")).scalar_one()
        assert d3.phone == "04 72 00 00 00"
