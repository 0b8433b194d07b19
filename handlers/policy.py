"""The dunning policy as validated values: ladder steps, sending window, money and creditor.

A policy is data, loaded from a TOML file by ``config.policy``; nothing here reads files.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import time
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from handlers import identity

Channel = Literal["email", "letter", "registered_letter", "call", "task"]
# channels done by a person: a step asking only for these creates a task, not a message
MANUAL_CHANNELS = ("call", "task")
SchedulerEvent = Literal["invoice.due", "invoice.overdue", "deadline.expired"]

FORMAL_NOTICE = "formal_notice"
ESCALATION = "escalation"
CLAIM_DECLARATION = "claim_declaration"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Step(_Frozen):
    """One rung of the ladder: when (days from the due date), how, and with which template."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    offset_days: int = Field(ge=-60, le=365)
    event: Literal["invoice.due", "invoice.overdue"]
    channels: tuple[Channel, ...] = Field(min_length=1)
    states_penalties: bool = False
    # a person approves each message of this step before it leaves (``relance approve``)
    requires_approval: bool = Field(False, strict=True)
    # a call or task step: the kinds of debtor it is for, any other passes it (empty: all)
    debtor_kinds: tuple[Literal["business", "consumer", "public"], ...] = ()

    @field_validator("channels")
    @classmethod
    def _manual_or_sent(cls, channels: tuple[str, ...]) -> tuple[str, ...]:
        manual = [c for c in channels if c in MANUAL_CHANNELS]
        if manual and len(manual) != len(channels):
            raise ValueError(
                "a step is either sent (email, letter, registered_letter) or done by a person "
                "(call, task): make two steps instead of mixing them"
            )
        return channels

    @model_validator(mode="after")
    def _kinds_for_people_only(self) -> Step:
        if self.debtor_kinds and not self.manual:
            raise ValueError("debtor_kinds goes with a call or task step only (channels call, task)")
        return self

    @property
    def template(self) -> str:
        return self.name

    @property
    def manual(self) -> bool:
        """Whether a person does this step (a call or another task) instead of a message."""
        return self.channels[0] in MANUAL_CHANNELS


class Window(_Frozen):
    """Hours of the debtor's local day when messages may go out."""

    start: time = time(9, 0)
    end: time = time(18, 0)

    @model_validator(mode="after")
    def _start_before_end(self) -> Window:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class Escalation(_Frozen):
    # calendar days the formal notice gives, counted from the registered letter's presentation
    deadline_days: int = Field(8, ge=1, le=60)
    # business days from posting the registered letter to its expected first presentation
    # (La Poste's indicative J+2 in metropolitan France); the deadline counts from that day
    postal_delay_days: int = Field(2, ge=0, le=30)
    # procédure simplifiée up to this total claimed; an amount in euros, so it applies to EUR
    # cases only; it replaces the figure of the procedures' table (handlers/procedure_table.py)
    small_claims_limit: Decimal = Field(Decimal("5000.00"), gt=0)
    # a creditor established outside metropolitan France (overseas included) has 4 months
    # instead of 2 after the BODACC publication to declare its claim (C. com. R622-24)
    creditor_outside_metropolitan_france: bool = Field(False, strict=True)

    @property
    def claim_declaration_months(self) -> int:
        """Months after the BODACC publication to declare a claim (L622-24, R622-24)."""
        return 4 if self.creditor_outside_metropolitan_france else 2


class MoneyRules(_Frozen):
    recovery_indemnity: Decimal = Field(Decimal("40.00"), ge=0)
    penalty_margin: Decimal = Field(Decimal("0.10"), ge=0, le=1)
    # public-sector debtors (Code de la commande publique R2192-31): the ECB rate of the
    # half-year in which interest started to run, plus this margin, for the whole delay
    public_penalty_margin: Decimal = Field(Decimal("0.08"), ge=0, le=1)
    penalty_currencies: tuple[str, ...] = ("EUR",)
    # principal_first: payments and credit notes reduce the principal, penalties and the
    # indemnity are a separate claim beside it. interest_first: Code civil 1343-1 (accrued
    # penalties first), for creditors whose terms of sale say so
    payment_imputation: Literal["interest_first", "principal_first"] = "principal_first"
    # a balance below this is not chased: no reminder, no formal notice, no case. One amount
    # for every currency, or a table {"EUR" = "5.00", "default" = "5.00"}; 0 chases every cent
    minimum_balance: Decimal | dict[str, Decimal] = Decimal("5.00")

    @field_validator("minimum_balance")
    @classmethod
    def _minimum_not_negative(cls, value: Decimal | dict[str, Decimal]) -> Decimal | dict[str, Decimal]:
        amounts = value.values() if isinstance(value, dict) else [value]
        if any(amount < 0 for amount in amounts):
            raise ValueError("minimum_balance must be 0 or more")
        if isinstance(value, dict) and any(not _is_currency_key(k) for k in value):
            raise ValueError('minimum_balance keys are ISO currency codes ("EUR") or "default"')
        return value

    def minimum_for(self, currency: str) -> Decimal:
        """The smallest balance in ``currency`` that is still chased."""
        if not isinstance(self.minimum_balance, dict):
            return self.minimum_balance
        table = self.minimum_balance
        return table.get(currency, table.get("default", Decimal("5.00")))


def _is_currency_key(key: str) -> bool:
    return key == "default" or (len(key) == 3 and key.isalpha() and key.isupper())


class Creditor(_Frozen):
    """Who is owed: printed on every letter and in the formal notice.

    A company's letters carry its legal form, share capital, RCS number (the SIREN) and the
    city of its registry (C. com. R123-237); ``merchant`` says whether the creditor is a
    merchant (commerçant), which the uncontested-claims procedure of CPCE L126-1 requires
    of both sides.
    """

    name: str = Field("Votre société", min_length=1, max_length=200)
    address: tuple[str, ...] = ("1 rue de l'Exemple", "75001 Paris")
    siren: str | None = None  # 9 digits, Luhn check (spaces allowed in the file)
    email: str | None = None
    phone: str | None = None
    signature: str = "Le service comptabilité"
    legal_form: str | None = Field(None, min_length=1, max_length=60)  # e.g. "SAS", "SARL"
    share_capital: Decimal | None = Field(None, ge=0)  # in euros
    rcs_city: str | None = Field(None, min_length=1, max_length=60)  # "RCS Lyon"
    vat_number: str | None = None  # FR + key + SIREN, the key checked
    merchant: bool = True
    # how to pay, printed under every reminder: a bank transfer (the IBAN and BIC are
    # checked at start-up, config.policy), and a payment page for invoices that bring none
    # (``{invoice_number}`` is replaced by the invoice's number)
    iban: str | None = None
    bic: str | None = Field(None, pattern=r"^[A-Z0-9]{8}([A-Z0-9]{3})?$")
    payment_link: str | None = Field(None, max_length=500, pattern=r"^https://\S+$")

    @field_validator("iban")
    @classmethod
    def _iban_checked(cls, value: str | None) -> str | None:
        problem = None if value is None else identity.iban_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("siren", "vat_number", "iban", "bic", mode="before")
    @classmethod
    def _compact(cls, value: object) -> object:
        return identity.compact(value) if isinstance(value, str) else value

    @field_validator("siren")
    @classmethod
    def _siren_checked(cls, value: str | None) -> str | None:
        problem = None if value is None else identity.siren_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("vat_number")
    @classmethod
    def _vat_checked(cls, value: str | None, info: ValidationInfo) -> str | None:
        problem = None if value is None else identity.vat_problem(value, info.data.get("siren"))
        if problem:
            raise ValueError(problem)
        return value


class Mediator(_Frozen):
    """The consumer mediator the creditor belongs to (Code de la consommation L612-1),
    whose details a consumer is given once a dispute was not settled (L616-1)."""

    name: str = Field(min_length=1, max_length=200)
    website: str = Field(pattern=r"^https?://\S+$", max_length=300)
    address: tuple[str, ...] = ()


class MessageRules(_Frozen):
    # past this many invoices claimed (or listed as other overdue, or coming due), a message
    # lists the first ones, summarises the rest and carries the full statement (a CSV file
    # attached to e-mails, an annex to letters): handlers/statement.py
    max_listed_invoices: int = Field(50, ge=1, le=1000)


class Contact(_Frozen):
    # calendar days kept between two messages to one debtor: a courtesy step due sooner
    # after the last message waits for the first business day allowed; a formal notice and
    # an installment reminder are never held back (handlers/pressure.py). 0: no gap
    min_days_between_messages: int = Field(3, ge=0, le=30)


class LifecycleRules(_Frozen):
    # what the e-invoicing lifecycle statuses do (handlers/lifecycle.py): after 211
    # "Paiement transmis", dunning waits this many business days for the funds
    payment_transmitted_hold_business_days: int = Field(5, ge=1, le=30)


class Policy(_Frozen):
    """The whole dunning policy. ``steps`` are ordered from the mildest to the most severe."""

    name: str = "default"
    country: str = Field("FR", pattern=r"^[A-Z]{2}$")
    language: Literal["fr", "en"] = "fr"
    timezone: str = "Europe/Paris"
    window: Window = Window()
    steps: tuple[Step, ...] = Field(min_length=1)
    escalation: Escalation = Escalation()
    money: MoneyRules = MoneyRules()
    messages: MessageRules = MessageRules()
    contact: Contact = Contact()
    lifecycle: LifecycleRules = LifecycleRules()
    creditor: Creditor = Creditor()
    mediator: Mediator | None = None  # the consumer mediator (L612-1); None: none configured
    resume_step: str = Field("notice", description="where an invoice imported late enters")

    @field_validator("steps")
    @classmethod
    def _steps_ordered_and_unique(cls, steps: tuple[Step, ...]) -> tuple[Step, ...]:
        names = [s.name for s in steps]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"step names must be unique, repeated: {', '.join(duplicates)}")
        offsets = [s.offset_days for s in steps]
        if offsets != sorted(offsets) or len(set(offsets)) != len(offsets):
            raise ValueError("offset_days must increase strictly from one step to the next")
        return steps

    @model_validator(mode="after")
    def _resume_step_exists(self) -> Policy:
        if self.resume_step not in {s.name for s in self.steps}:
            raise ValueError(f"resume_step: no step named {self.resume_step!r}")
        return self

    def step(self, name: str) -> Step:
        for candidate in self.steps:
            if candidate.name == name:
                return candidate
        raise KeyError(name)

    def severity(self, name: str) -> int:
        """Rank of a step: higher is more severe; unknown names rank lowest."""
        for index, candidate in enumerate(self.steps):
            if candidate.name == name:
                return index
        return -1

    @property
    def has_formal_notice(self) -> bool:
        return any(s.name == FORMAL_NOTICE for s in self.steps)


RateField = Literal["ecb_rate", "legal_rate_other", "legal_rate_private_creditor"]
RATE_FIELDS: tuple[RateField, ...] = ("ecb_rate", "legal_rate_other", "legal_rate_private_creditor")


class HalfYearRate(_Frozen):
    """Rates of one calendar half-year, with where each figure comes from.

    ``ecb_rate``: the ECB main refinancing rate in force on 1 January / 1 July (C. com.
    L441-10 II). The two legal interest rates of the half-year (C. monétaire et financier
    L313-2, D313-1-A): ``legal_rate_other`` for "all other cases" (what a consumer debtor
    owes, and the base of the 3 x floor of a contractual penalty rate), and
    ``legal_rate_private_creditor`` for a creditor who is a private person not acting for
    professional needs. ``unconfirmed`` is ``true`` (every figure) or the list of the
    figures not confirmed yet.
    """

    ecb_rate: Decimal = Field(ge=0, le=1)
    legal_rate_other: Decimal | None = Field(None, ge=0, le=1)
    legal_rate_private_creditor: Decimal | None = Field(None, ge=0, le=1)
    source: str = Field(min_length=3)
    unconfirmed: bool | tuple[RateField, ...] = False

    @field_validator("unconfirmed", mode="before")
    @classmethod
    def _true_false_or_figures(cls, value: object) -> object:
        if isinstance(value, bool):
            return value
        if isinstance(value, list | tuple) and all(v in RATE_FIELDS for v in value):
            return tuple(value)
        raise ValueError(f"use true, false or a list of the figures not confirmed: {', '.join(RATE_FIELDS)}")

    def is_unconfirmed(self, name: RateField) -> bool:
        """Whether the figure ``name`` of this half-year is flagged not confirmed."""
        if isinstance(self.unconfirmed, bool):
            return self.unconfirmed
        return name in self.unconfirmed

    @property
    def unconfirmed_fields(self) -> tuple[RateField, ...]:
        """The figures present in this entry that are flagged not confirmed."""
        return tuple(f for f in RATE_FIELDS if getattr(self, f) is not None and self.is_unconfirmed(f))


class RateTable(_Frozen):
    """Half-year rates keyed ``YYYY-H1`` / ``YYYY-H2``."""

    rates: dict[str, HalfYearRate]

    @field_validator("rates")
    @classmethod
    def _keys_are_half_years(cls, rates: dict[str, HalfYearRate]) -> dict[str, HalfYearRate]:
        import re

        for key in rates:
            if not re.fullmatch(r"\d{4}-H[12]", key):
                raise ValueError(f"{key!r} is not a half-year like 2026-H1")
        return rates


MATCH_KEYS = ("kind", "country", "language", "segment")


class Segment(_Frozen):
    """A named policy and the debtors it applies to (every listed attribute must match)."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    match: dict[str, tuple[str, ...]]

    @field_validator("match", mode="before")
    @classmethod
    def _values_as_tuples(cls, value: object) -> object:
        if isinstance(value, dict):
            return {k: (v,) if isinstance(v, str) else v for k, v in value.items()}
        return value

    @field_validator("match")
    @classmethod
    def _known_keys(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        unknown = sorted(set(value) - set(MATCH_KEYS))
        if unknown:
            raise ValueError(f"unknown debtor attribute(s) {', '.join(unknown)}; use {', '.join(MATCH_KEYS)}")
        return value

    def matches(self, debtor: object) -> bool:
        return all(getattr(debtor, key, None) in values for key, values in self.match.items())


class PolicySet:
    """The default policy, segment policies and per-debtor / per-invoice overrides.

    Resolution: invoice override, then debtor override, then the first segment whose
    ``match`` fits the debtor, then, for a consumer, the consumer policy, then the default.
    """

    DEFAULT = "default"
    CONSUMER = "consumer_default"  # the shipped consumer policy (config/consumer.toml)

    def __init__(
        self,
        default: Policy,
        segments: tuple[tuple[Segment, Policy], ...] = (),
        debtor_overrides: dict[str, str] | None = None,
        invoice_overrides: dict[str, str] | None = None,
        *,
        rates: RateTable | None = None,
        consumer: Policy | None = None,
    ) -> None:
        self.default = default
        # the policy of consumer debtors no segment matches (None: the default policy)
        self.consumer = consumer
        # the half-year rates, for event handlers that compute penalties (they get the
        # policies only); None where no penalty needs computing
        self.rates = rates
        self.segments = segments
        self.debtor_overrides = dict(debtor_overrides or {})
        self.invoice_overrides = dict(invoice_overrides or {})
        self._named = {self.DEFAULT: default, **{s.name: p for s, p in segments}}
        if consumer is not None:
            self._named[self.CONSUMER] = consumer

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._named)

    @property
    def all(self) -> tuple[Policy, ...]:
        return tuple(self._named.values())

    def each(self, change: Callable[[Policy], Policy]) -> PolicySet:
        """The same set with ``change`` applied to every policy (default, segments, consumer)."""
        return PolicySet(
            change(self.default),
            tuple((segment, change(policy)) for segment, policy in self.segments),
            self.debtor_overrides,
            self.invoice_overrides,
            rates=self.rates,
            consumer=change(self.consumer) if self.consumer is not None else None,
        )

    def named(self, name: str) -> Policy:
        return self._named[name]

    def name_for(self, debtor: object, invoice_number: str | None = None) -> str:
        if invoice_number is not None and invoice_number in self.invoice_overrides:
            return self.invoice_overrides[invoice_number]
        debtor_id = getattr(debtor, "id", None)
        if debtor_id in self.debtor_overrides:
            return self.debtor_overrides[debtor_id]
        for segment, _ in self.segments:
            if segment.matches(debtor):
                return segment.name
        if self.consumer is not None and getattr(debtor, "kind", None) == "consumer":
            return self.CONSUMER
        return self.DEFAULT

    def for_debtor(self, debtor: object, invoice_number: str | None = None) -> Policy:
        """The policy governing ``debtor`` (and ``invoice_number`` when given)."""
        return self._named[self.name_for(debtor, invoice_number)]
