"""Where payments go: principal first (the default) or accrued penalties first (1343-1).

Figures are worked out by hand with the 2026-H1 rate of config/rates.toml: ECB 2.15 % +
10 points = 12.15 %; simple interest, principal x rate x days / 365, days from the day after
the due date through the computation day, rounded half-up to the cent once at the end.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from types import SimpleNamespace

from hypothesis import given
from hypothesis import strategies as st

from config.policy import load_policy
from handlers.escalation import by_currency
from handlers.money import Movement, impute_interest_first, impute_principal_first
from handlers.policy import MoneyRules
from handlers.procedures import recommend

DUE = date(2026, 1, 5)
PAID = date(2026, 1, 20)
NOTICE_DAY = date(2026, 2, 14)  # due date + 40 days: the default formal notice


def rate_1215(half_year: str) -> Decimal:
    return Decimal("0.1215")


def test_given_the_default_policy_when_read_then_payments_reduce_the_principal_first():
    assert MoneyRules().payment_imputation == "principal_first"
    assert load_policy().money.payment_imputation == "principal_first"


class TestPrincipalFirst:
    def test_given_999_paid_of_1000_when_the_formal_notice_is_due_then_1_euro_principal_and_penalties_apart(
        self,
    ):
        # 1000.00 due 5 January, 999.00 paid 20 January, computed 14 February.
        # 6-20 January (15 days) on 1000.00: 1000 * .1215 * 15 / 365 = 4.993151
        # 21 January - 14 February (11 + 14 = 25 days) on 1.00: 1 * .1215 * 25 / 365 = 0.008322
        # penalties 5.001473 -> 5.00, none of the payment on them; principal 1000 - 999 = 1.00
        result = impute_principal_first(
            Decimal("1000.00"), DUE, NOTICE_DAY, [Movement(PAID, Decimal("999.00"), "payment")], rate_1215
        )
        assert result.principal == Decimal("1.00")
        assert result.interest_paid == Decimal("0.00")
        assert result.interest_due == Decimal("5.00")
        assert [(s.days, s.balance) for s in result.interest.segments] == [
            (15, Decimal("1000.00")),
            (25, Decimal("1.00")),
        ]

    def test_given_the_whole_invoice_paid_late_then_the_principal_is_nil_and_penalties_stay_owed(self):
        # 1000.00 paid 20 January: 15 days on 1000.00 = 4.993151 -> 4.99, nothing after it
        result = impute_principal_first(
            Decimal("1000.00"), DUE, NOTICE_DAY, [Movement(PAID, Decimal("1000.00"), "payment")], rate_1215
        )
        assert result.principal == Decimal("0.00")
        assert result.interest_due == Decimal("4.99")

    def test_given_a_credit_note_and_a_payment_then_both_lower_the_principal_from_the_next_day(self):
        # 1200.00 due 1 April; credit note 100.00 on 5 April, payment 200.00 on 10 April;
        # computed 21 April. 2-5 April (4 days) on 1200, 6-10 April (5 days) on 1100,
        # 11-21 April (11 days) on 900: (4800 + 5500 + 9900) * .1215 / 365
        # = 20200 * .1215 / 365 = 6.724110 -> 6.72; principal 900.00
        result = impute_principal_first(
            Decimal("1200.00"),
            date(2026, 4, 1),
            date(2026, 4, 21),
            [
                Movement(date(2026, 4, 5), Decimal("100.00"), "credit_note"),
                Movement(date(2026, 4, 10), Decimal("200.00"), "payment"),
            ],
            rate_1215,
        )
        assert result.principal == Decimal("900.00")
        assert result.interest_due == Decimal("6.72")


class TestInterestFirst:
    """Code civil 1343-1, kept as a policy option."""

    def test_given_999_paid_of_1000_then_the_payment_pays_the_penalties_first(self):
        # on 20 January 4.993151 accrued -> 4.99 of the 999.00 goes to penalties, 994.01 to
        # principal: 1000 - 994.01 = 5.99 from 21 January. 25 days on 5.99:
        # 5.99 * .1215 * 25 / 365 = 0.049848; accrued 4.993151 + 0.049848 = 5.042999 -> 5.04,
        # 4.99 of it paid: 0.05 still due
        result = impute_interest_first(
            Decimal("1000.00"), DUE, NOTICE_DAY, [Movement(PAID, Decimal("999.00"), "payment")], rate_1215
        )
        assert result.interest_paid == Decimal("4.99")
        assert result.principal == Decimal("5.99")
        assert result.interest_due == Decimal("0.05")


movements = st.lists(
    st.builds(
        Movement,
        st.integers(min_value=-20, max_value=200).map(lambda n: DUE + timedelta(days=n)),
        st.decimals(min_value=Decimal("0.01"), max_value=Decimal("800.00"), places=2),
        st.sampled_from(["payment", "credit_note", "plan_payment"]),
    ),
    max_size=6,
)
amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("100000.00"), places=2)
days_after = st.integers(min_value=0, max_value=300)


@given(amount=amounts, moves=movements, days=days_after)
def test_property_principal_first_principal_is_amount_less_movements_and_penalties_never_negative(
    amount, moves, days
):
    until = DUE + timedelta(days=days)
    result = impute_principal_first(amount, DUE, until, moves, rate_1215)
    assert result.principal == amount - sum((m.amount for m in moves), Decimal("0.00"))
    assert result.interest_due >= 0
    assert result.interest_paid == 0
    # no day of penalties is counted on a principal at or below zero
    assert all(s.balance > 0 for s in result.interest.segments)


@given(amount=amounts, moves=movements, days=days_after)
def test_property_principal_first_penalties_never_exceed_those_on_the_unpaid_whole(amount, moves, days):
    until = DUE + timedelta(days=days)
    paid = impute_principal_first(amount, DUE, until, moves, rate_1215)
    unpaid = impute_principal_first(amount, DUE, until, [], rate_1215)
    assert paid.interest_due <= unpaid.interest_due


@given(
    amount=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("100000.00"), places=2),
    moves=st.lists(
        st.builds(
            Movement,
            st.integers(min_value=-20, max_value=200).map(lambda n: DUE + timedelta(days=n)),
            st.decimals(min_value=Decimal("0.01"), max_value=Decimal("800.00"), places=2),
            st.sampled_from(["payment", "credit_note"]),
        ),
        max_size=6,
    ),
)
def test_property_a_principal_that_is_not_overpaid_never_goes_below_zero(amount, moves):
    # movements limited to the amount due: what an invoice may receive before it is settled
    kept, total = [], Decimal("0.00")
    for move in moves:
        if total + move.amount <= amount:
            kept.append(move)
            total += move.amount
    result = impute_principal_first(amount, DUE, DUE + timedelta(days=250), kept, rate_1215)
    assert result.principal >= 0


def _debtor(**attributes):
    # the selection reads the debtor's kind and whether it is a merchant (handlers/procedures.py);
    # a business debtor known not to be one keeps these tests on the small-claims limit alone
    # (a merchant, or one not said, also gets recouvrement_creances_commerciales: test_procedures.py)
    facts = {"kind": "business", "merchant": False, **attributes}
    return SimpleNamespace(insolvency_judgment_date=None, insolvency_procedure=None, **facts)


def test_given_a_usd_claim_under_5000_then_no_small_claims_procedure_but_an_injonction():
    policy = load_policy()
    procedure, reasons, alternatives = recommend(_debtor(), [], Decimal("1040.00"), policy, "USD")
    assert procedure == "injonction_de_payer"
    assert reasons == [
        "uncontested claim of 1040.00 USD: the small-claims limit of 5000.00 EUR applies to claims in euros"
    ]
    assert alternatives == ["refere_provision"]


def test_given_a_eur_claim_of_exactly_5000_then_the_small_claims_procedure():
    procedure, _, _ = recommend(_debtor(), [], Decimal("5000.00"), load_policy(), "EUR")
    assert procedure == "procedure_simplifiee"


@given(st.lists(st.sampled_from(["EUR", "USD", "CHF", "GBP"]), max_size=12))
def test_property_grouped_invoices_never_mix_currencies_and_none_is_lost(currencies):
    invoices = [SimpleNamespace(number=f"F-{n}", currency=c) for n, c in enumerate(currencies)]
    groups = by_currency(invoices)  # type: ignore[arg-type]
    assert all({i.currency for i in group} == {currency} for currency, group in groups.items())
    assert sorted(i.number for g in groups.values() for i in g) == sorted(i.number for i in invoices)


invoice_states = st.lists(
    st.tuples(
        st.sampled_from(["EUR", "USD"]),
        st.decimals(min_value=Decimal("0.00"), max_value=Decimal("20.00"), places=2),
    ),
    max_size=10,
)


@given(invoices=invoice_states, minimum=st.sampled_from([Decimal("0"), Decimal("5.00"), Decimal("12.50")]))
def test_property_what_an_escalation_gathers_never_mixes_currencies_nor_holds_a_trifle(invoices, minimum):
    # the selection of handle_deadline: each invoice through the escalation hold, then one
    # case per currency
    from handlers.holds import escalation_hold

    rows = [
        SimpleNamespace(
            number=f"F-{n}",
            status="open",
            currency=currency,
            balance=balance,
            disputed=False,
            in_payment_plan=False,
            factored_by=None,
        )
        for n, (currency, balance) in enumerate(invoices)
    ]
    escalated = [r for r in rows if escalation_hold(r, minimum) is None]
    for currency, group in by_currency(escalated).items():  # type: ignore[arg-type]
        assert {i.currency for i in group} == {currency}
        assert all(i.balance >= minimum and i.balance > 0 for i in group)
