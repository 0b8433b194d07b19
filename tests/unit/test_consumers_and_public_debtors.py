"""Consumers get their own policy unless a segment says otherwise; public-sector debtors owe
the public-procurement rate fixed at the half-year interest started; their claims expire
under the four-year public rule."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from config.errors import ConfigError
from config.policy import load_policy_set, load_rates
from handlers.amounts import amounts_on
from handlers.planning import prescription_dates
from handlers.policy import PolicySet
from tests.support import POLICY_WITH_MEDIATOR

MAIN = POLICY_WITH_MEDIATOR


@dataclass
class Debtor:
    id: str
    kind: str
    country: str = "FR"
    language: str = "fr"
    segment: str | None = None
    insolvency_judgment_date: date | None = None


@dataclass
class Invoice:
    number: str
    currency: str
    amount_due: Decimal
    due_date: date
    issue_date: date
    delivered_on: date | None = None
    late_penalty_rate: Decimal | None = None
    paid: Decimal = Decimal("0.00")
    credited: Decimal = Decimal("0.00")

    @property
    def balance(self) -> Decimal:
        return self.amount_due - self.paid - self.credited


def policies_from(tmp_path: Path, text: str) -> PolicySet:
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    return load_policy_set(path)


def test_a_consumer_no_segment_matches_gets_the_shipped_consumer_policy(tmp_path):
    policies = policies_from(tmp_path, MAIN)
    consumer = policies.for_debtor(Debtor("C-1", "consumer"))
    assert policies.name_for(Debtor("C-1", "consumer")) == "consumer_default"
    assert consumer.name == "consumer-fr"
    # fewer steps than the business ladder, a longer final delay
    assert [s.name for s in consumer.steps] == ["due", "notice", "reminder_1", "formal_notice"]
    assert consumer.escalation.deadline_days == 15
    # the creditor's identity and its mediator are the main policy's
    assert consumer.creditor.name == "Atelier Durand SARL"
    assert consumer.mediator is not None and consumer.mediator.website == "https://www.cm2c.net"
    assert policies.for_debtor(Debtor("B-1", "business")).name == "main"


def test_a_segment_matching_consumers_wins_over_the_shipped_policy(tmp_path):
    (tmp_path / "mine.toml").write_text(MAIN.replace('name = "main"', 'name = "my-consumers"'), "utf-8")
    text = MAIN + '\n[[segments]]\nname = "mine"\npolicy_file = "mine.toml"\nmatch = { kind = "consumer" }\n'
    policies = policies_from(tmp_path, text)
    assert policies.for_debtor(Debtor("C-1", "consumer")).name == "my-consumers"


def test_consumer_policy_file_none_gives_consumers_the_main_policy(tmp_path):
    policies = policies_from(tmp_path, 'consumer_policy_file = "none"\n' + MAIN)
    assert policies.consumer is None
    assert policies.for_debtor(Debtor("C-1", "consumer")).name == "main"


def test_a_consumer_policy_file_that_is_not_a_string_is_one_clear_error(tmp_path):
    with pytest.raises(ConfigError) as error:
        policies_from(tmp_path, "consumer_policy_file = 3\n" + MAIN)
    assert str(error.value).endswith('consumer_policy_file: a file name, "built-in" or "none"')


def test_a_mediator_website_must_be_an_address(tmp_path):
    with pytest.raises(ConfigError) as error:
        policies_from(tmp_path, MAIN.replace("https://www.cm2c.net", "cm2c"))
    assert "mediator.website" in str(error.value)


def test_a_public_debtor_owes_the_rate_of_the_half_year_interest_started_for_the_whole_delay():
    policies = PolicySet(load_policy_set().default)
    rates = load_rates()
    invoice = Invoice("F-1", "EUR", Decimal("10000.00"), date(2026, 6, 10), date(2026, 5, 11))
    amounts = amounts_on(
        invoice,
        Debtor("MAIRIE", "public"),
        date(2026, 8, 9),
        policies.default,
        rates,
        with_penalties=True,
        movements=(),
    )
    # interest starts on 11 June 2026, in 2026-H1: ECB 2.15 % + 8 points = 10.15 %, kept for
    # the whole delay (R2192-31), though the ECB rate of 2026-H2 is 2.40 %.
    # 11 June to 9 August: 20 + 31 + 9 = 60 days; 10 000 x 0.1015 x 60 / 365 = 166.849… -> 166.85
    assert amounts.late_interest == Decimal("166.85")
    assert amounts.rate == Decimal("0.1015")
    assert amounts.indemnity == Decimal("40.00")  # L2192-13, D2192-35


def test_a_consumer_owes_neither_penalties_nor_the_indemnity():
    policies = PolicySet(load_policy_set().default)
    invoice = Invoice("F-1", "EUR", Decimal("450.00"), date(2026, 6, 24), date(2026, 5, 25))
    amounts = amounts_on(
        invoice,
        Debtor("C-1", "consumer"),
        date(2026, 9, 1),
        policies.default,
        load_rates(),
        with_penalties=True,
        movements=(),
    )
    assert (amounts.balance, amounts.late_interest, amounts.indemnity) == (
        Decimal("450.00"),
        Decimal("0.00"),
        Decimal("0.00"),
    )


@pytest.mark.parametrize(
    ("kind", "barred", "warned"),
    [
        # a claim on a public person: 4 years from 1 January after the year it arose
        # (loi 68-1250 art. 1): delivered in 2026 -> from 1 January 2027 -> 1 January 2031
        ("public", date(2031, 1, 1), date(2030, 7, 1)),
        ("business", date(2031, 3, 2), date(2030, 9, 2)),  # 5 years (C. com. L110-4)
        ("consumer", date(2028, 3, 2), date(2027, 9, 2)),  # 2 years (C. conso L218-2)
    ],
)
def test_prescription_depends_on_who_owes(kind, barred, warned):
    invoice = Invoice("F-1", "EUR", Decimal("100.00"), date(2026, 4, 1), date(2026, 3, 2))
    assert prescription_dates(invoice, kind) == (barred, warned)
