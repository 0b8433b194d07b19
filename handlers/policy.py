"""The dunning policy as validated values: ladder steps, sending window, money and creditor.

A policy is data, loaded from a TOML file by ``config.policy``; nothing here reads files.
"""

from __future__ import annotations

from datetime import time
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Channel = Literal["email", "letter", "registered_letter"]
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

    @property
    def template(self) -> str:
        return self.name


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
    deadline_days: int = Field(8, ge=1, le=60)
    # procédure simplifiée up to this total claimed; an amount in euros, so it applies to EUR
    # cases only (a case in another currency is recommended an injonction de payer)
    small_claims_limit: Decimal = Field(Decimal("5000.00"), gt=0)


class MoneyRules(_Frozen):
    recovery_indemnity: Decimal = Field(Decimal("40.00"), ge=0)
    penalty_margin: Decimal = Field(Decimal("0.10"), ge=0, le=1)
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
    """Who is owed: printed on every letter and in the formal notice."""

    name: str = Field("Votre société", min_length=1, max_length=200)
    address: tuple[str, ...] = ("1 rue de l'Exemple", "75001 Paris")
    siren: str | None = Field(None, pattern=r"^\d{9}$")
    email: str | None = None
    phone: str | None = None
    signature: str = "Le service comptabilité"


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
    creditor: Creditor = Creditor()
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


class HalfYearRate(_Frozen):
    """Rates of one calendar half-year, with where each figure comes from."""

    ecb_rate: Decimal = Field(ge=0, le=1)
    legal_rate_professional: Decimal | None = Field(None, ge=0, le=1)
    legal_rate_consumer: Decimal | None = Field(None, ge=0, le=1)
    source: str = Field(min_length=3)
    unconfirmed: bool = False


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
    ``match`` fits the debtor, then the default policy.
    """

    DEFAULT = "default"

    def __init__(
        self,
        default: Policy,
        segments: tuple[tuple[Segment, Policy], ...] = (),
        debtor_overrides: dict[str, str] | None = None,
        invoice_overrides: dict[str, str] | None = None,
        *,
        rates: RateTable | None = None,
    ) -> None:
        self.default = default
        # the half-year rates, for event handlers that compute penalties (they get the
        # policies only); None where no penalty needs computing
        self.rates = rates
        self.segments = segments
        self.debtor_overrides = dict(debtor_overrides or {})
        self.invoice_overrides = dict(invoice_overrides or {})
        self._named = {self.DEFAULT: default, **{s.name: p for s, p in segments}}

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._named)

    @property
    def all(self) -> tuple[Policy, ...]:
        return tuple(self._named.values())

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
        return self.DEFAULT

    def for_debtor(self, debtor: object, invoice_number: str | None = None) -> Policy:
        """The policy governing ``debtor`` (and ``invoice_number`` when given)."""
        return self._named[self.name_for(debtor, invoice_number)]
