"""The hash-chained evidence log (handlers.evidence): canonical form, hashing, verification.

Records are built in memory (no database): each one's hash covers the previous hash, its
sequence number, time, kind and canonical payload.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from adapters.orm import EvidenceHead, EvidenceRecord
from handlers.evidence import GENESIS, canonical, record_hash, verify

T0 = datetime(2026, 3, 16, 8, 0, tzinfo=UTC)


def build_chain(count: int) -> list[EvidenceRecord]:
    records: list[EvidenceRecord] = []
    prev = GENESIS
    for seq in range(1, count + 1):
        at = T0 + timedelta(minutes=seq)
        kind = "message.sent" if seq % 2 else "event.accepted"
        payload = canonical({"seq": seq, "invoice": f"F-{seq:04d}", "amount": Decimal("100.00") * seq})
        digest = record_hash(prev, seq, at, kind, payload)
        records.append(
            EvidenceRecord(
                seq=seq, at=at, kind=kind, invoice_numbers=[], payload=payload, prev_hash=prev, hash=digest
            )
        )
        prev = digest
    return records


def head_of(records: list[EvidenceRecord]) -> EvidenceHead:
    last = records[-1]
    return EvidenceHead(id=1, seq=last.seq, hash=last.hash)


def test_canonical_json_sorts_keys_has_no_spaces_and_writes_decimals_and_dates_as_strings():
    value = {"b": Decimal("1.50"), "a": [date(2026, 3, 1), T0], "é": "x"}
    assert canonical(value) == '{"a":["2026-03-01","2026-03-16T08:00:00+00:00"],"b":"1.50","é":"x"}'


def test_canonical_json_refuses_values_it_cannot_write_faithfully():
    with pytest.raises(TypeError, match="set"):
        canonical({"a": {1, 2}})


def test_a_record_hash_is_the_sha256_of_its_linked_content():
    payload = '{"a":1}'
    expected = hashlib.sha256(
        f"{GENESIS}\n1\n2026-03-16T08:00:00+00:00\nmessage.sent\n{payload}".encode()
    ).hexdigest()
    assert record_hash(GENESIS, 1, T0, "message.sent", payload) == expected


def test_an_intact_chain_verifies():
    records = build_chain(5)
    check = verify(records, head_of(records))
    assert check.ok
    assert check.records == 5
    assert check.broken_seq is None and check.reason is None


def test_an_empty_chain_with_no_head_verifies():
    check = verify([], None)
    assert check.ok and check.records == 0


def test_an_altered_payload_breaks_the_chain_at_that_record():
    records = build_chain(5)
    records[2].payload = records[2].payload.replace("300.00", "3.00")
    check = verify(records, head_of(build_chain(5)))
    assert not check.ok
    assert check.broken_seq == 3
    assert check.records == 2  # records 1 and 2 still hold
    assert "content" in check.reason


@pytest.mark.parametrize("field", ["kind", "at"])
def test_an_altered_kind_or_time_breaks_the_chain_at_that_record(field):
    records = build_chain(4)
    if field == "kind":
        records[1].kind = "message.skipped"
    else:
        records[1].at = records[1].at + timedelta(seconds=1)
    check = verify(records, head_of(build_chain(4)))
    assert (check.ok, check.broken_seq) == (False, 2)


def test_an_altered_record_whose_hash_was_recomputed_breaks_the_link_of_the_next_one():
    records = build_chain(5)
    forged = records[1]
    forged.payload = canonical({"seq": 2, "invoice": "F-0002", "amount": Decimal("0.01")})
    forged.hash = record_hash(forged.prev_hash, forged.seq, forged.at, forged.kind, forged.payload)
    check = verify(records, head_of(build_chain(5)))
    assert not check.ok
    assert check.broken_seq == 3
    assert "previous-hash" in check.reason


def test_a_removed_middle_record_is_reported_missing_by_its_number():
    records = build_chain(5)
    del records[2]  # seq 3
    check = verify(records, head_of(build_chain(5)))
    assert not check.ok
    assert check.broken_seq == 3
    assert "record 3 is missing" in check.reason


def test_reordered_records_break_the_chain_at_the_first_out_of_place_one():
    records = build_chain(5)
    records[1], records[2] = records[2], records[1]  # order 1, 3, 2, 4, 5
    check = verify(records, head_of(build_chain(5)))
    assert not check.ok
    assert check.broken_seq == 2


def test_swapped_records_renumbered_to_look_in_order_still_break_the_chain():
    records = build_chain(4)
    second, third = records[1], records[2]
    second.seq, third.seq = 3, 2
    records[1], records[2] = third, second  # seq 1, 2, 3, 4 again, contents swapped
    check = verify(records, head_of(build_chain(4)))
    assert not check.ok
    assert check.broken_seq == 2


def test_a_truncated_tail_is_detected_through_the_chain_head():
    full = build_chain(5)
    check = verify(full[:3], head_of(full))  # records 4 and 5 deleted, head still says 5
    assert not check.ok
    assert check.records == 3
    assert check.broken_seq == 4
    assert "removed" in check.reason


def test_an_entirely_deleted_chain_is_detected_through_the_head():
    full = build_chain(3)
    check = verify([], head_of(full))
    assert not check.ok
    assert check.broken_seq == 1


def test_a_replaced_last_record_is_detected_through_the_head_and_named():
    # the last record is rewritten with a self-consistent hash: only the head still knows
    records = build_chain(4)
    original_head = head_of(records)
    last = records[-1]
    last.payload = canonical({"seq": 4, "invoice": "F-0004", "amount": Decimal("0.00")})
    last.hash = record_hash(last.prev_hash, last.seq, last.at, last.kind, last.payload)
    check = verify(records, original_head)
    assert not check.ok
    assert check.broken_seq == 4
    assert "removed" not in check.reason  # nothing after it was removed: it was altered


def test_records_beyond_the_head_are_detected():
    records = build_chain(4)
    check = verify(records, head_of(records[:3]))
    assert not check.ok
    assert check.broken_seq == 4


def chain_v2(count: int) -> list[EvidenceRecord]:
    """Records of version 2, each naming a debtor, invoices, a case and a message."""
    from handlers.evidence import record_hash_v2, selectors

    records: list[EvidenceRecord] = []
    prev = GENESIS
    for seq in range(1, count + 1):
        at, kind, payload = T0 + timedelta(minutes=seq), "reminder.sent", canonical({"seq": seq})
        row = EvidenceRecord(
            seq=seq,
            at=at,
            kind=kind,
            debtor_id="D-1",
            invoice_numbers=[f"F-{seq}"],
            case_id=seq,
            message_id=f"<m{seq}@x>",
            payload=payload,
            prev_hash=prev,
            version=2,
        )
        row.hash = record_hash_v2(
            prev, seq, at, kind, selectors("D-1", [f"F-{seq}"], seq, f"<m{seq}@x>"), payload
        )
        records.append(row)
        prev = row.hash
    return records


def test_a_version_2_hash_covers_the_selectors_after_a_v2_line():
    from handlers.evidence import record_hash_v2, selectors

    chosen = selectors("D-1", ["F-1", "F-2"], 7, "<m@x>")
    assert chosen == '{"case_id":7,"debtor_id":"D-1","invoice_numbers":["F-1","F-2"],"message_id":"<m@x>"}'
    expected = hashlib.sha256(
        f"v2\n{GENESIS}\n1\n2026-03-16T08:00:00+00:00\nreminder.sent\n{chosen}\n{{}}".encode()
    ).hexdigest()
    assert record_hash_v2(GENESIS, 1, T0, "reminder.sent", chosen, "{}") == expected


@pytest.mark.parametrize(
    "column, value",
    [
        ("debtor_id", "D-2"),
        ("invoice_numbers", ["F-9"]),
        ("case_id", 99),
        ("message_id", "<z@x>"),
        ("version", 1),
    ],
)
def test_changing_what_selects_a_version_2_record_breaks_it(column, value):
    records = chain_v2(3)
    assert verify(records, head_of(records)).ok
    setattr(records[1], column, value)
    check = verify(records, head_of(records))
    assert (check.ok, check.broken_seq, check.reason) == (False, 2, "content does not match its hash")


def test_versions_1_and_2_chain_together():
    from handlers.evidence import hash_of

    old = build_chain(2)
    new = chain_v2(2)
    for row in new:
        row.seq += 2
    new[0].prev_hash = old[-1].hash
    new[0].hash = hash_of(new[0])
    new[1].prev_hash = new[0].hash
    new[1].hash = hash_of(new[1])
    records = old + new
    assert verify(records, head_of(records)).ok


def test_records_without_their_head_do_not_verify():
    check = verify(build_chain(3), None)
    assert (check.ok, check.broken_seq, check.reason) == (False, 3, "the chain head is missing")


def test_an_empty_chain_without_a_head_verifies():
    assert verify([], None).ok


def test_a_version_3_record_keeps_its_hash_when_its_personal_values_are_sealed():
    from handlers.evidence import hash_of, record_hash_v3, sealed_payload, selectors

    salt = bytes(range(32))
    payload = canonical({"channel": "email", "to": "compta@acme.example", "amount_due": "1200.00"})
    row = EvidenceRecord(
        seq=1, at=T0, kind="reminder.sent", debtor_id="D-1", invoice_numbers=["F-1"], case_id=None,
        message_id="<m@x>", payload=payload, prev_hash=GENESIS, version=3,
    )  # fmt: skip
    chosen = selectors("D-1", ["F-1"], None, "<m@x>")
    row.hash = record_hash_v3(GENESIS, 1, T0, "reminder.sent", chosen, sealed_payload(payload, salt))
    assert hash_of(row, salt) == row.hash
    assert verify([row], head_of([row]), {"D-1": salt}).ok

    row.payload = sealed_payload(payload, salt)  # erased: the salt is then deleted
    assert "compta@acme.example" not in row.payload
    assert verify([row], head_of([row]), {}).ok

    row.payload = row.payload.replace('"1200.00"', '"12.00"')
    assert not verify([row], head_of([row]), {}).ok
