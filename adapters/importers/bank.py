"""Bank statements to ``StatementEntry`` values: ISO 20022 camt.053 and French CFONB 120.

``read_statement(path)`` tells the two apart (an XML document, or fixed-width records) and
returns the booked entries in the order of the file. A file it cannot read raises
``StatementRejected`` naming the file, the record or element, and the reason. The
entries are then matched to open invoices by ``handlers.matching.match_entries``.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

from lxml import etree

from adapters.importers.xml import NotXml, local_name, namespace, parse_xml
from handlers.matching import StatementEntry

MAX_FILE_BYTES = 50 * 1024 * 1024
CAMT_053 = re.compile(r"urn:iso:std:iso:20022:tech:xsd:camt\.053\.001\.(0[2-8])")
# ISO 20022 bank transaction sub-families that mean money coming back: an unpaid direct
# debit (UPDD), a reversal due to a payment return (RRTN) or to a return/refund (PRDD)
RETURN_SUB_FAMILIES = {"UPDD", "RRTN", "PRDD"}


class StatementRejected(ValueError):
    def __init__(self, path: str, where: str, reason: str) -> None:
        super().__init__(f"{path}: {where}: {reason}")
        self.path, self.where, self.reason = path, where, reason


def read_statement(path: str | Path) -> list[StatementEntry]:
    """The booked entries of a camt.053 or CFONB 120 statement file."""
    shown = str(path)
    try:
        with open(path, "rb") as stream:
            data = stream.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise StatementRejected(shown, "file", exc.strerror or str(exc)) from None
    if len(data) > MAX_FILE_BYTES:
        raise StatementRejected(shown, "file", f"larger than {MAX_FILE_BYTES} bytes")
    if data.lstrip().startswith(b"<"):
        return read_camt053(data, shown)
    if re.match(rb"0[1-9][0-9]{5}", data):  # a record code, then the 5-digit bank code
        return read_cfonb120(data, shown)
    raise StatementRejected(shown, "file", "neither a camt.053 XML statement nor a CFONB 120 file")


# --- camt.053 ------------------------------------------------------------------------------


def _children(node: etree._Element | None, name: str) -> list[etree._Element]:
    if node is None:
        return []
    return [child for child in node if isinstance(child.tag, str) and local_name(child) == name]


def _at(node: etree._Element | None, path: str) -> etree._Element | None:
    """The first element down ``path`` (local names joined by '/'), whatever the namespace:
    the versions 001.02 to 001.08 differ in namespace, not in these paths."""
    for name in path.split("/"):
        found = _children(node, name)
        if not found:
            return None
        node = found[0]
    return node


def _all(node: etree._Element | None, path: str) -> list[etree._Element]:
    *parents, last = path.split("/")
    for name in parents:
        node = _at(node, name)
    return _children(node, last)


def _text(node: etree._Element | None, path: str) -> str | None:
    found = _at(node, path)
    text = (found.text or "").strip() if found is not None else ""
    return text or None


def _descendant_text(node: etree._Element | None, name: str) -> str | None:
    if node is None:
        return None
    for element in node.iter():
        if isinstance(element.tag, str) and local_name(element) == name and (element.text or "").strip():
            return (element.text or "").strip()
    return None


def read_camt053(data: bytes, shown: str) -> list[StatementEntry]:
    try:
        root = parse_xml(data)
    except NotXml as exc:
        raise StatementRejected(shown, "file", str(exc)) from None
    if not CAMT_053.fullmatch(namespace(root)) or _at(root, "BkToCstmrStmt") is None:
        raise StatementRejected(
            shown, "Document", f"not a camt.053.001.02–08 statement (namespace {namespace(root)!r})"
        )
    entries: list[StatementEntry] = []
    for s_index, statement in enumerate(_all(root, "BkToCstmrStmt/Stmt"), start=1):
        statement_id = _text(statement, "Id") or str(s_index)
        for n_index, entry in enumerate(_children(statement, "Ntry"), start=1):
            where = f"Stmt {statement_id} Ntry {n_index}"
            status = _text(entry, "Sts") or _text(entry, "Sts/Cd")
            if status not in (None, "BOOK"):  # pending or information only: not money yet
                continue
            entries.extend(_camt_entry(entry, statement_id, n_index, where, shown))
    return entries


def _amount(node: etree._Element | None, where: str, shown: str) -> tuple[Decimal, str]:
    if node is None or not re.fullmatch(r"[0-9]+(\.[0-9]+)?", (node.text or "").strip()):
        raise StatementRejected(shown, where, "Amt: missing or not an amount")
    currency = node.get("Ccy")
    if not currency:
        raise StatementRejected(shown, where, "Amt: no currency (Ccy)")
    return Decimal((node.text or "").strip()), currency


def _camt_date(node: etree._Element | None, where: str, shown: str) -> date | None:
    value = _text(node, "Dt") or (_text(node, "DtTm") or "")[:10] or None
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise StatementRejected(shown, where, f"{value!r} is not a date") from None


def _camt_entry(
    entry: etree._Element, statement_id: str, n_index: int, where: str, shown: str
) -> list[StatementEntry]:
    amount, currency = _amount(_at(entry, "Amt"), where, shown)
    credit = _text(entry, "CdtDbtInd") == "CRDT"
    common = {
        "booking_date": _camt_date(_at(entry, "BookgDt"), where, shown),
        "value_date": _camt_date(_at(entry, "ValDt"), where, shown),
        "credit": credit,
        "label": _text(entry, "AddtlNtryInf"),
    }
    reversal = _text(entry, "RvslInd") == "true" or _sub_family(entry) in RETURN_SUB_FAMILIES
    # the bank's own reference of the entry is unique at that bank; the entry reference
    # (NtryRef) only within its statement, so it goes with the statement's id
    own_ref = _text(entry, "AcctSvcrRef") or f"{statement_id}/{_text(entry, 'NtryRef') or n_index}"
    details = _all(entry, "NtryDtls/TxDtls")
    amounts = [_tx_amount(d) for d in details]
    if len(details) > 1 and all(a is not None for a in amounts):
        # a batch booked as one entry: one value per transaction, each with its own payer
        # and references, which is what matching needs
        result = []
        for index, (detail, node) in enumerate(zip(details, amounts, strict=True), start=1):
            tx_amount, tx_currency = _amount(node, f"{where} TxDtls {index}", shown)
            result.append(
                _with_details(detail, f"{own_ref}/{index}", tx_amount, tx_currency, reversal, common)
            )
        return result
    return [_with_details(details[0] if details else None, own_ref, amount, currency, reversal, common)]


def _tx_amount(detail: etree._Element) -> etree._Element | None:
    found = _at(detail, "AmtDtls/TxAmt/Amt")
    return found if found is not None else _at(detail, "Amt")


def _sub_family(node: etree._Element | None) -> str | None:
    return _text(node, "BkTxCd/Domn/Fmly/SubFmlyCd")


def _with_details(
    detail: etree._Element | None,
    reference: str,
    amount: Decimal,
    currency: str,
    reversal: bool,
    common: dict,
) -> StatementEntry:
    credit = common["credit"]
    remittance = _all(detail, "RmtInf/Ustrd") + _all(detail, "RmtInf/Strd/AddtlRmtInf")
    structured = _all(detail, "RmtInf/Strd/CdtrRefInf/Ref") + _all(detail, "RmtInf/Strd/RfrdDocInf/Nb")
    party = _at(detail, "RltdPties/Dbtr" if credit else "RltdPties/Cdtr")
    return_reason = _text(detail, "RtrInf/Rsn/Cd") or _text(detail, "RtrInf/Rsn/Prtry")
    return StatementEntry(
        reference=reference,
        amount=amount,
        currency=currency,
        remittance=tuple((e.text or "").strip() for e in remittance if (e.text or "").strip()),
        structured_references=tuple((e.text or "").strip() for e in structured if (e.text or "").strip()),
        counterparty=_descendant_text(party, "Nm"),
        end_to_end_id=_text(detail, "Refs/EndToEndId"),
        is_return=reversal or return_reason is not None or _sub_family(detail) in RETURN_SUB_FAMILIES,
        return_reason=return_reason,
        **common,
    )


# --- CFONB 120 -----------------------------------------------------------------------------

# the last character of a CFONB amount carries the last digit and the sign
_SIGNED_DIGITS = {ch: (i, 1) for i, ch in enumerate("{ABCDEFGHI")} | {
    ch: (i, -1) for i, ch in enumerate("}JKLMNOPQR")
}


def _records(data: bytes, shown: str) -> list[str]:
    text = data.decode("latin-1")  # CFONB files are ASCII or ISO-8859-1; latin-1 reads every byte
    lines = (
        text.splitlines()
        if "\n" in text or "\r" in text
        else [text[i : i + 120] for i in range(0, len(text), 120)]
    )
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if len(line) > 120:
            raise StatementRejected(shown, f"record {number}", f"{len(line)} characters, not 120")
        records.append(line.ljust(120))  # some banks trim the trailing blanks
    return records


def cfonb_amount(field: str, decimals: int) -> Decimal:
    """A 14-character CFONB amount: 13 digits and a last character for the last digit and
    the sign ('{', 'A'–'I' positive 0–9; '}', 'J'–'R' negative 0–9)."""
    if not re.fullmatch(r"[0-9]{13}[{}A-R]", field):
        raise ValueError(f"{field!r} is not a CFONB amount")
    last, sign = _SIGNED_DIGITS[field[-1]]
    return sign * Decimal(f"{field[:13]}{last}").scaleb(-decimals)


def _cfonb_date(value: str) -> date:
    day, month, year = int(value[:2]), int(value[2:4]), int(value[4:6])
    return date(2000 + year if year < 70 else 1900 + year, month, day)


def read_cfonb120(data: bytes, shown: str) -> list[StatementEntry]:
    """Records 01 (old balance), 04 (movement), 05 (complement of the movement before),
    07 (new balance); others are refused. Positions as in the CFONB « relevé de compte
    sur support informatique » (120 characters)."""
    entries: list[dict] = []
    for number, record in enumerate(_records(data, shown), start=1):
        kind, where = record[:2], f"record {number}"
        try:
            if kind == "04":
                entries.append(_movement(record))
            elif kind == "05":
                if not entries:
                    raise ValueError("a complement (05) before any movement (04)")
                _complement(entries[-1], record)
            elif kind in ("01", "07"):
                cfonb_amount(record[90:104], int(record[19]))  # checked, not kept
            else:
                raise ValueError(f"unknown record code {kind!r}")
        except ValueError as exc:
            raise StatementRejected(shown, where, str(exc)) from None
    return _with_stable_keys([_cfonb_entry(fields) for fields in entries])


def _with_stable_keys(entries: list[StatementEntry]) -> list[StatementEntry]:
    """CFONB 120 gives an entry no reference of its own: its key is ``cfonb-`` and 24 hex
    digits of the SHA-256 of what the entry says (account, dates, direction, amount,
    currency, label, remittance, end-to-end id) and its occurrence among the entries of the
    file that say exactly the same (0 for the first). The same statement read again, or
    sent again in a later file, gives the same keys."""
    seen: Counter[str] = Counter()
    keyed = []
    for entry in entries:
        fingerprint = "\x1f".join(
            (
                entry.reference,  # the account, from the record
                str(entry.booking_date),
                str(entry.value_date),
                "C" if entry.credit else "D",
                str(entry.amount),
                entry.currency,
                entry.label or "",
                "\x1e".join(entry.remittance),
                "\x1e".join(entry.structured_references),
                entry.end_to_end_id or "",
                entry.return_reason or "",
            )
        )
        occurrence = seen[fingerprint]
        seen[fingerprint] += 1
        digest = hashlib.sha256(f"{fingerprint}\x1f{occurrence}".encode()).hexdigest()[:24]
        keyed.append(replace(entry, reference=f"cfonb-{digest}"))
    return keyed


def _movement(record: str) -> dict:
    if not record[19].isdigit():
        raise ValueError(f"decimals {record[19]!r} is not a digit")
    amount = cfonb_amount(record[90:104], int(record[19]))
    account, booked = record[21:32].strip(), _cfonb_date(record[34:40])
    reject = record[40:42].strip()
    return {
        "reference": f"{record[2:7]}/{record[11:16]}/{account}",  # bank, branch, account
        "booking_date": booked,
        "value_date": _cfonb_date(record[42:48]) if record[42:48].strip() else None,
        "amount": abs(amount),
        "credit": amount > 0,
        "currency": record[16:19],
        "label": record[48:79].strip() or None,
        "remittance": [],
        "structured_references": [],
        "is_return": bool(reject),
        "return_reason": reject or None,
    }


def _complement(fields: dict, record: str) -> None:
    qualifier, info = record[45:48], record[48:118].strip()
    if not info:
        return
    if qualifier in ("LIB", "LCC"):
        if info not in fields["remittance"]:  # banks often repeat LIB as LCC
            fields["remittance"].append(info)
    elif qualifier == "LC2" and fields["remittance"]:  # the rest of the LCC before it
        fields["remittance"][-1] += info
    elif qualifier == "LCS":  # structured remittance (an RF creditor reference)
        fields["structured_references"].append(info)
    elif qualifier == "RCN":  # the payer's reference: the SEPA end-to-end id
        fields["end_to_end_id"] = info
    elif (qualifier == "NPY" and fields["credit"]) or (qualifier == "NBE" and not fields["credit"]):
        fields["counterparty"] = info


def _cfonb_entry(fields: dict) -> StatementEntry:
    fields = dict(fields)
    fields["remittance"] = tuple(fields["remittance"])
    fields["structured_references"] = tuple(fields["structured_references"])
    return StatementEntry(**fields)
