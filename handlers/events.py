"""The accounting event contract (docs/events.md): strict validation of one JSON object.

``parse_event`` turns one line into a typed event or raises ``EventRejected`` whose reason
names the field. Money must be a string decimal with at most two decimals; timestamps carry
an offset; names, addresses and e-mail addresses may not contain control characters.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import unicodedata
from datetime import date
from decimal import Decimal
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from handlers.evidence import canonical
from handlers.money import parse_amount

MAX_LINE_BYTES = 256 * 1024
KEPT_BYTES = 4096  # what is stored of a rejected line longer than MAX_LINE_BYTES
MAX_DEPTH = 16
MAX_REASON = 1000  # the width of rejected_events.reason
# dates and timestamps outside these years are refused: calendars, due dates and
# penalty periods computed from them would overflow Python's date range
FIRST_YEAR, LAST_YEAR = 1900, 2199


class Parked(Exception):
    """The event needs something not known yet (``key``, e.g. ``invoice:F-1``): it waits
    in the inbox until that arrives (handlers/inbox.py)."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


class EventRejected(ValueError):
    """An event that breaks the contract; ``reason`` names the field and what is wrong."""

    def __init__(self, reason: str, event_id: str | None = None) -> None:
        if len(reason) > MAX_REASON:  # a reason may quote a value of any length
            reason = reason[: MAX_REASON - 1] + "…"
        super().__init__(reason)
        self.reason = reason
        self.event_id = event_id


class OverlongLine(bytes):
    """The start of a line longer than ``MAX_LINE_BYTES`` (the rest was skipped unread into
    memory), with the ``size`` and ``sha256`` of the whole line, without its line ending."""

    size: int
    sha256: str

    @classmethod
    def of(cls, head: bytes, size: int, sha256: str) -> OverlongLine:
        line = cls(head)
        line.size, line.sha256 = size, sha256
        return line


def _too_long(raw: bytes) -> EventRejected:
    """The rejection of a line over the limit, naming its size and digest (the stored
    rejection keeps only its first ``KEPT_BYTES``)."""
    if isinstance(raw, OverlongLine):
        size, digest = raw.size, raw.sha256
    else:
        size, digest = len(raw), hashlib.sha256(raw).hexdigest()
    return EventRejected(
        f"line is longer than {MAX_LINE_BYTES} bytes: {size} bytes, sha256 {digest}; "
        f"its first {KEPT_BYTES} bytes are kept"
    )


def _no_controls(value: str) -> str:
    # a printable string has none of these (str.isprintable refuses every Cc, Cf, Cs, Zl
    # and Zp character, and more): the loop only runs for the others
    if value.isprintable():
        return value
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Cs") for ch in value):
        raise ValueError("must not contain control characters or line breaks")
    return value


# Unicode Default_Ignorable_Code_Point (DerivedCoreProperties.txt, 15.1), and what looks
# like nothing without being one: space separators other than U+0020 (NBSP…) and the
# braille blank. An identifier holding one reads the same as another that does not.
_INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f"
    "\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8"
    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e0fff"
    "\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u2800]"
)


def _identifier(value: str) -> str:
    """An id or number: NFC, no control character, nothing invisible (named by its code)."""
    if (found := _INVISIBLE.search(value)) is not None:
        raise ValueError(f"invisible character U+{ord(found.group()):04X}")
    return unicodedata.normalize("NFC", _no_controls(value))


# plain ASCII decimal notation: no exponent, sign '+', blanks, '_' or non-ASCII digits
_DECIMAL_TEXT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")


def _decimal_text(what: str, example: str):
    """A before-validator: a JSON string in plain decimal notation, else a reason."""

    def check(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, str):
            raise ValueError(f'{what} must be a JSON string such as "{example}", not a number')
        if not _DECIMAL_TEXT.fullmatch(value):
            raise ValueError(f'{what} must be written with digits and a dot, such as "{example}"')
        return value

    return check


_money_text = _decimal_text("money", "1200.00")
_rate_text = _decimal_text("rate", "0.15")


def _to_amount(value: str) -> Decimal:
    amount = parse_amount(value)
    if abs(amount) >= Decimal("1e12"):
        raise ValueError("amount is too large")
    return amount


def _positive(value: Decimal) -> Decimal:
    if value <= 0:
        raise ValueError("must be greater than 0")
    return value


def _strict_date(value: Any) -> Any:
    if not isinstance(value, str) or len(value) != 10:
        raise ValueError("must be a date written YYYY-MM-DD")
    return value


_TIMESTAMP_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]")


def _timestamp_text(value: Any) -> Any:
    # pydantic alone would also take a number of seconds since 1970 (UTC) or a bare date
    if not isinstance(value, str) or not _TIMESTAMP_TEXT.match(value):
        raise ValueError('must be a timestamp with an offset such as "2026-03-02T10:00:00+01:00"')
    return value


def _in_years(value: Any) -> Any:
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValueError(f"year must be between {FIRST_YEAR} and {LAST_YEAR}")
    return value


def _to_rate(value: str) -> Decimal:
    try:
        rate = Decimal(value)
    except ArithmeticError as exc:
        raise ValueError(f"{value!r} is not a decimal rate") from exc
    if not rate.is_finite() or not 0 <= rate <= 1:
        raise ValueError('must be an annual rate between 0 and 1, e.g. "0.15"')
    return rate


SafeText = Annotated[str, Field(min_length=1, max_length=300), AfterValidator(_no_controls)]
FreeText = Annotated[str, Field(max_length=5000)]
Money = Annotated[Decimal, BeforeValidator(_money_text), AfterValidator(_positive)]
Day = Annotated[date, BeforeValidator(_strict_date), AfterValidator(_in_years)]
Timestamp = Annotated[AwareDatetime, BeforeValidator(_timestamp_text), AfterValidator(_in_years)]
DebtorId = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_identifier)]
Rate = Annotated[Decimal, BeforeValidator(_rate_text), AfterValidator(_to_rate)]
InvoiceNumber = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_identifier)]


def _address_as_given(value: str) -> str:
    """Check an e-mail address and keep it as written: pydantic's ``EmailStr`` would return
    the normalised form, turning an ASCII punycode domain into Unicode."""
    _check_address(value)
    return value


@lru_cache(maxsize=16384)
def _check_address(value: str) -> None:
    """Raise if ``value`` is no e-mail address. The check is pure and costs more than the
    rest of a debtor's validation; a feed names the same debtor's address again and again,
    so the addresses found valid last are remembered (a bounded cache: the memory is flat,
    about 3 MB when full; 4 096 missed a third of the addresses of a feed whose invoices
    name one of the last 5 000 debtors)."""
    _EMAIL.validate_python(value)


_EMAIL: TypeAdapter[str] = TypeAdapter(EmailStr)
Email = Annotated[str, AfterValidator(_address_as_given), AfterValidator(_no_controls)]


# a phone number: international (+ and 8 to 15 digits, the first not 0: E.164) or French
# national (0 and 9 digits); spaces, dots, dashes and brackets between digits are allowed
_PHONE_INTERNATIONAL = re.compile(r"\+[1-9][0-9]{7,14}")
_PHONE_FRENCH = re.compile(r"0[1-9][0-9]{8}")
_PHONE_SEPARATORS = re.compile(r"[ .\-()]")


def _phone(value: str) -> str:
    """A phone number as written, once checked: control characters first (named)."""
    _no_controls(value)
    digits = _PHONE_SEPARATORS.sub("", value)
    if not (_PHONE_INTERNATIONAL.fullmatch(digits) or _PHONE_FRENCH.fullmatch(digits)):
        raise ValueError('not a phone number: use "+33 1 23 45 67 89" (international) or "01 23 45 67 89"')
    return value


Phone = Annotated[str, Field(min_length=1, max_length=40), AfterValidator(_phone)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, str_strip_whitespace=False)


def _known_country(value: str) -> str:
    from handlers.calendar import has_calendar

    if not has_calendar(value):
        raise ValueError(f"no public-holiday calendar for country {value!r}")
    return value


class Address(_Strict):
    line1: SafeText
    line2: SafeText | None = None
    postal_code: Annotated[str, Field(min_length=1, max_length=20), AfterValidator(_no_controls)]
    city: SafeText
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$"), AfterValidator(_known_country)]


class Debtor(_Strict):
    id: DebtorId
    name: SafeText
    kind: Literal["business", "consumer", "public"]
    email: Email | None = None
    phone: Phone | None = None
    language: Literal["fr", "en"] = "fr"
    timezone: Annotated[str, Field(min_length=1, max_length=64)] = "Europe/Paris"
    address: Address
    siren: Annotated[str, Field(pattern=r"^\d{9}$")] | None = None
    opt_out: bool = False
    segment: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")] | None = None
    merchant: bool | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from handlers.calendar import zone

        zone(value)
        return value


class Invoice(_Strict):
    number: InvoiceNumber
    debtor_id: DebtorId
    issue_date: Day
    due_date: Day
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
    amount_due: Annotated[Money, AfterValidator(_to_amount)]
    late_penalty_rate: Rate | None = None
    payment_url: (
        Annotated[str, Field(max_length=2000, pattern=r"^https?://\S+$"), AfterValidator(_no_controls)] | None
    ) = None
    delivered_on: Day | None = None
    factored_by: Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_identifier)] | None = (
        None
    )

    @model_validator(mode="after")
    def _due_after_issue(self) -> Invoice:
        if self.due_date < self.issue_date:
            raise ValueError("due_date must not be before issue_date")
        return self


# a creditor's id: letters, digits, '.', '_' and '-' (it names files and chains), 1 to 100
CREDITOR_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
DEFAULT_CREDITOR = "default"  # the creditor of an event that names none


class _Envelope(_Strict):
    event_id: Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_identifier)]
    occurred_at: Timestamp
    creditor_id: Annotated[str, Field(pattern=CREDITOR_ID)] = DEFAULT_CREDITOR


class InvoiceIssued(_Envelope):
    type: Literal["invoice.issued"]
    invoice: Invoice
    debtor: Debtor

    @model_validator(mode="after")
    def _same_debtor(self) -> InvoiceIssued:
        if self.invoice.debtor_id != self.debtor.id:
            raise ValueError("invoice.debtor_id must equal debtor.id")
        return self


class InvoiceUpdated(_Envelope):
    type: Literal["invoice.updated"]
    invoice: Invoice


class InvoiceCancelled(_Envelope):
    type: Literal["invoice.cancelled"]
    invoice_number: InvoiceNumber


class InvoiceWrittenOff(_Envelope):
    """The creditor gives up the claim (irrecoverable): everything stops for the invoice."""

    type: Literal["invoice.written_off"]
    invoice_number: InvoiceNumber
    reason: SafeText


PaymentId = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_identifier)]


class PaymentReceived(_Envelope):
    type: Literal["payment.received"]
    invoice_number: InvoiceNumber
    amount: Annotated[Money, AfterValidator(_to_amount)]
    paid_on: Day
    payment_id: PaymentId | None = None  # the bank's or ERP's id: what a reversal names


class PaymentReversed(_Envelope):
    """A payment taken back (a SEPA debit returned, a cheque unpaid): never paid."""

    type: Literal["payment.reversed"]
    invoice_number: InvoiceNumber
    payment_id: PaymentId
    reversed_on: Day
    reason: SafeText


class CreditNoteCancelled(_Envelope):
    type: Literal["credit_note.cancelled"]
    invoice_number: InvoiceNumber
    credit_note_number: InvoiceNumber


class CreditNoteIssued(_Envelope):
    type: Literal["credit_note.issued"]
    invoice_number: InvoiceNumber
    credit_note_number: InvoiceNumber
    amount: Annotated[Money, AfterValidator(_to_amount)]


class InvoiceDisputed(_Envelope):
    type: Literal["invoice.disputed"]
    invoice_number: InvoiceNumber
    reason: FreeText


class DisputeResolved(_Envelope):
    type: Literal["dispute.resolved"]
    invoice_number: InvoiceNumber
    outcome: Literal["upheld", "rejected"]


class PromiseToPay(_Envelope):
    type: Literal["promise_to_pay.recorded"]
    invoice_number: InvoiceNumber
    promised_date: Day
    amount: Annotated[Money, AfterValidator(_to_amount)] | None = None


class Installment(_Strict):
    due_date: Day
    amount: Annotated[Money, AfterValidator(_to_amount)]


class PaymentPlanAgreed(_Envelope):
    type: Literal["payment_plan.agreed"]
    debtor_id: DebtorId
    invoice_numbers: Annotated[list[InvoiceNumber], Field(min_length=1, max_length=1000)]
    installments: Annotated[list[Installment], Field(min_length=1, max_length=120)]


def _hold_ends_after_it_starts(until: date | None, info: ValidationInfo) -> date | None:
    """A hold whose last day is before the day it was put is a mistake, not a pause."""
    put = info.data.get("occurred_at")  # absent when it was itself refused
    if until is not None and put is not None and until < put.date():
        raise ValueError(f"{until.isoformat()} is before the day the hold was put ({put.date().isoformat()})")
    return until


class InvoiceHeld(_Envelope):
    """A person pauses the dunning of one invoice: no legal effect (docs/policy.md, "Holds")."""

    type: Literal["invoice.held"]
    invoice_number: InvoiceNumber
    reason: SafeText
    until: Day | None = None  # the last day of the hold; without it, until released

    _until_not_past = field_validator("until")(_hold_ends_after_it_starts)


class InvoiceReleased(_Envelope):
    type: Literal["invoice.released"]
    invoice_number: InvoiceNumber


class DebtorHeld(_Envelope):
    """A person pauses the dunning of all of a debtor's invoices, present and future."""

    type: Literal["debtor.held"]
    debtor_id: DebtorId
    reason: SafeText
    until: Day | None = None

    _until_not_past = field_validator("until")(_hold_ends_after_it_starts)


class DebtorReleased(_Envelope):
    type: Literal["debtor.released"]
    debtor_id: DebtorId


def _known_status(value: str) -> str:
    from handlers.lifecycle import BY_CODE

    if value not in BY_CODE:
        shown = value[:20]
        raise ValueError(f"unknown status code {shown!r}: not a DGFiP lifecycle code (200 to 228, 501)")
    return value


StatusCode = Annotated[str, Field(min_length=1, max_length=10), AfterValidator(_known_status)]
ReasonCode = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_identifier)]


StatusAmount = Annotated[Money, AfterValidator(_to_amount)]


class InvoiceStatusChanged(_Envelope):
    """A status of the invoice's e-invoicing lifecycle, from the platforms (docs/import.md)."""

    type: Literal["invoice.status_changed"]
    invoice_number: InvoiceNumber
    status_code: StatusCode
    at: Timestamp
    reason_code: ReasonCode | None = None
    # validated when absent too: 206 requires it
    amount: Annotated[StatusAmount | None, Field(validate_default=True)] = None

    @field_validator("amount")
    @classmethod
    def _amount_where_it_means_something(cls, amount: Decimal | None, info: ValidationInfo) -> Decimal | None:
        from handlers.lifecycle import AMOUNT_ALLOWED, AMOUNT_REQUIRED

        code = info.data.get("status_code")  # absent when it was itself refused
        if amount is None and code in AMOUNT_REQUIRED:
            raise ValueError(f"required for status {code} (the amount approved)")
        if amount is not None and code is not None and code not in AMOUNT_ALLOWED:
            raise ValueError(f"status {code} carries no amount (only 206 and 212 do)")
        return amount


class DebtorUpdated(_Envelope):
    type: Literal["debtor.updated"]
    debtor: Debtor


class Administrator(_Strict):
    """Who receives the claim declaration: the mandataire judiciaire, or the liquidator."""

    name: SafeText
    address: Annotated[list[SafeText], Field(min_length=1, max_length=6)]


class InsolvencyOpened(_Envelope):
    type: Literal["debtor.insolvency_opened"]
    debtor_id: DebtorId
    procedure: Literal["sauvegarde", "redressement", "liquidation"]
    judgment_date: Day
    bodacc_published_on: Day | None = None
    administrator: Administrator | None = None


class InsolvencyConverted(_Envelope):
    """A sauvegarde or redressement converted by judgment: to a liquidation (L641-1), which
    names the liquidator, or a sauvegarde to a redressement (L622-10)."""

    type: Literal["debtor.insolvency_converted"]
    debtor_id: DebtorId
    procedure: Literal["liquidation", "redressement"]
    judgment_date: Day
    liquidator: Administrator | None = None
    administrator: Administrator | None = None

    @model_validator(mode="after")
    def _who_receives_the_claims(self) -> InsolvencyConverted:
        if self.procedure == "liquidation" and self.liquidator is None:
            raise ValueError("liquidator: required when the procedure becomes a liquidation")
        if self.procedure == "liquidation" and self.administrator is not None:
            raise ValueError("administrator: a liquidation names a liquidator instead")
        if self.procedure != "liquidation" and self.liquidator is not None:
            raise ValueError("liquidator: only a liquidation names a liquidator")
        return self


class InsolvencyPlanAdopted(_Envelope):
    type: Literal["debtor.insolvency_plan_adopted"]
    debtor_id: DebtorId
    judgment_date: Day


class InsolvencyClosed(_Envelope):
    type: Literal["debtor.insolvency_closed"]
    debtor_id: DebtorId
    closed_on: Day
    outcome: Literal["plan_completed", "insufficient_assets", "debts_paid"]


class DeliveryStatus(_Envelope):
    type: Literal["delivery.status"]
    message_id: Annotated[str, Field(min_length=3, max_length=300), AfterValidator(_identifier)]
    status: Literal["delivered", "bounced", "acknowledged", "refused", "unclaimed"]
    at: Timestamp
    # HMAC-SHA256 of the canonical event without this field (``check_signature``)
    signature: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = None


def check_signature(data: dict[str, Any], key: bytes | None, event_id: str | None) -> None:
    """With a ``key`` configured, a delivery status must carry the HMAC-SHA256 (hex) under
    that key of its canonical JSON without ``signature``; raise EventRejected otherwise."""
    if key is None:
        return
    given = data.get("signature")
    if not isinstance(given, str):
        raise EventRejected(
            "signature: required (a signing key for delivery statuses is configured)", event_id
        )
    text = canonical({k: v for k, v in data.items() if k != "signature"})
    expected = hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, given):
        raise EventRejected("signature: does not match the event", event_id)


AccountingEvent = Annotated[
    InvoiceIssued
    | InvoiceUpdated
    | InvoiceCancelled
    | InvoiceWrittenOff
    | PaymentReceived
    | PaymentReversed
    | CreditNoteIssued
    | CreditNoteCancelled
    | InvoiceDisputed
    | DisputeResolved
    | PromiseToPay
    | PaymentPlanAgreed
    | InvoiceHeld
    | InvoiceReleased
    | InvoiceStatusChanged
    | DebtorHeld
    | DebtorReleased
    | DebtorUpdated
    | InsolvencyOpened
    | InsolvencyConverted
    | InsolvencyPlanAdopted
    | InsolvencyClosed
    | DeliveryStatus,
    Field(discriminator="type"),
]
EVENT_TYPES = (
    "invoice.issued",
    "invoice.updated",
    "invoice.cancelled",
    "invoice.written_off",
    "payment.received",
    "payment.reversed",
    "credit_note.issued",
    "credit_note.cancelled",
    "invoice.disputed",
    "dispute.resolved",
    "promise_to_pay.recorded",
    "payment_plan.agreed",
    "invoice.held",
    "invoice.released",
    "invoice.status_changed",
    "debtor.held",
    "debtor.released",
    "debtor.updated",
    "debtor.insolvency_opened",
    "debtor.insolvency_converted",
    "debtor.insolvency_plan_adopted",
    "debtor.insolvency_closed",
    "delivery.status",
)
_ADAPTER: TypeAdapter[Any] = TypeAdapter(AccountingEvent)


def _depth(value: Any, level: int = 0) -> int:
    if level > MAX_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level + 1)
    return level


def _field_path(loc: tuple) -> str:
    # drop the discriminator tag pydantic puts first (e.g. 'invoice.issued')
    parts = [p for p in loc[1:]] if loc and loc[0] in EVENT_TYPES else list(loc)
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(event)"


def decode_json(raw: str | bytes) -> dict[str, Any]:
    """The JSON object of one line, or EventRejected saying why it is not one."""
    if isinstance(raw, bytes):
        if len(raw) > MAX_LINE_BYTES:
            raise _too_long(raw)
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise EventRejected(f"not valid UTF-8 at byte {exc.start}") from exc
    if len(raw) * 4 > MAX_LINE_BYTES:  # else it cannot be too long, even all in 4-byte characters
        encoded = raw.encode("utf-8", "surrogatepass")
        if len(encoded) > MAX_LINE_BYTES:
            raise _too_long(encoded)
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError as exc:  # a str may carry lone surrogates; UTF-8 cannot
        raise EventRejected(f"not valid UTF-8: lone surrogate at character {exc.start}") from exc
    raw = raw.removeprefix("\ufeff")  # a byte order mark (Windows editors) is accepted
    try:
        data = _DECODER.decode(raw)
    except EventRejected:
        raise
    except json.JSONDecodeError as exc:
        raise EventRejected(f"not valid JSON: {exc.msg}") from exc
    except RecursionError as exc:
        raise EventRejected("not valid JSON: nesting too deep") from exc
    except ValueError as exc:  # an integer of more than 4300 digits
        raise EventRejected("not valid JSON: a number has too many digits") from exc
    if not isinstance(data, dict):
        raise EventRejected("an event must be a JSON object")
    if _MAY_ESCAPE_SURROGATE.search(raw):
        _refuse_lone_surrogates(data, "")
    # an object holds at most as many nested objects and arrays as the line has { and [
    if raw.count("{") + raw.count("[") > MAX_DEPTH and _depth(data) > MAX_DEPTH:
        raise EventRejected(f"nested deeper than {MAX_DEPTH} levels")
    return data


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are all different: with ``json``'s default, a second
    ``"type"`` would silently replace the first."""
    data = dict(pairs)
    if len(data) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise EventRejected(f"duplicate key {json.dumps(key)[:100]}")
            seen.add(key)
    return data


# ``\ud800`` escaped in the JSON text decodes to a lone surrogate, which UTF-8 cannot hold
_MAY_ESCAPE_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _refuse_lone_surrogates(value: Any, path: str) -> None:
    """Reject the first string or key holding a lone surrogate, naming its field."""
    if isinstance(value, dict):
        for key, item in value.items():
            if _LONE_SURROGATE.search(key):
                raise EventRejected(f"{_surrogate(key)} in a key{' of ' + path if path else ''}")
            _refuse_lone_surrogates(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _refuse_lone_surrogates(item, f"{path}[{index}]")
    elif isinstance(value, str) and _LONE_SURROGATE.search(value):
        raise EventRejected(f"{path}: {_surrogate(value)} (escaped in the JSON text)")


def _surrogate(text: str) -> str:
    found = _LONE_SURROGATE.search(text)
    return f"lone surrogate \\u{ord(found.group()) if found else 0:04x}"


def _reject_constant(text: str) -> Any:
    raise EventRejected(f"not valid JSON: {text} is not a number JSON allows")


# made once: ``json.loads`` given any argument makes a new decoder at each call
_DECODER = json.JSONDecoder(parse_constant=_reject_constant, object_pairs_hook=_object)


def parse_event(raw: str | bytes) -> Any:
    """Validate one accounting event; raise EventRejected naming the field on any breach."""
    return validate_event(decode_json(raw))


def validate_event(data: dict[str, Any]) -> Any:
    """``parse_event`` of a line already decoded by ``decode_json``."""
    event_id = data.get("event_id") if isinstance(data.get("event_id"), str) else None
    kind = data.get("type")
    if not isinstance(kind, str) or kind not in EVENT_TYPES:
        shown = kind[:100] if isinstance(kind, str) else type(kind).__name__
        reason = "type: missing" if kind is None else f"type: unknown event type {shown!r}"
        raise EventRejected(reason, event_id)
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_context=False, include_input=False)[0]
    # raised outside the except block, not chained to the validation error: that error
    # holds the exceptions raised by validators, with their frames, where the garbage
    # collector cannot see them; chained, every rejected line would keep its caller's
    # frames (a whole batch of ``relance ingest``) alive for good
    message = first["msg"].removeprefix("Value error, ")
    raise EventRejected(f"{_field_path(first['loc'])}: {message}", event_id)
