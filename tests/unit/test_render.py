"""Message texts per step and language (handlers.render) with the start-up sample data.

The sample (config.bootstrap.sample_context) is one invoice F-0001 of 1200.00 EUR issued
5 Jan 2026, due 4 Feb 2026, 200.00 paid, balance 1000.00, penalties 12.34 at 12.15 %,
indemnity 40.00, total claimed 1000.00 + 12.34 + 40.00 = 1052.34, deadline 24 Mar 2026.
"""

from __future__ import annotations

import copy
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from config.bootstrap import sample_context
from config.policy import load_policy
from handlers.render import Renderer, TemplateProblem

POLICY = load_policy()
STEPS = [s.template for s in POLICY.steps if not s.manual]  # a call or task has no message


@pytest.fixture
def ctx():
    return copy.deepcopy(sample_context(POLICY))


@pytest.fixture(scope="module")
def renderer():
    return Renderer()


def test_every_built_in_template_renders_in_both_languages(renderer, ctx):
    renderer.check(STEPS, ctx)
    for step in STEPS:
        for language in ("fr", "en"):
            rendered = renderer.render(step, language, ctx)
            assert rendered.subject.strip(), (step, language)
            assert "\n" not in rendered.subject
            assert "F-0001" in rendered.subject + rendered.body_text
            assert rendered.body_text.endswith("\n")


def test_the_second_reminder_in_french_carries_the_mandatory_words_and_french_amounts(renderer, ctx):
    rendered = renderer.render("reminder_2", "fr", ctx)
    assert rendered.subject.startswith("2e relance pour facture impayée")
    assert "F-0001" in rendered.subject
    assert "2e relance pour facture impayée" in rendered.body_text
    assert "1 000,00 €" in rendered.body_text  # balance
    assert "200,00 €" in rendered.body_text  # already paid
    assert "12,34 €" in rendered.body_text  # penalties so far
    assert "40,00 €" in rendered.body_text  # recovery indemnity
    assert "12,15 %" in rendered.body_text  # the annual rate
    assert "L441-10" in rendered.body_text
    assert "4 février 2026" in rendered.body_text  # due date, long French form
    assert "1000.00" not in rendered.body_text  # never a raw Decimal


def test_the_third_reminder_announces_the_formal_notice(renderer, ctx):
    rendered = renderer.render("reminder_3", "fr", ctx)
    assert "3e relance" in rendered.subject
    assert "dernière relance avant mise en demeure" in rendered.subject
    assert "dernière relance avant mise en demeure" in rendered.body_text
    assert "1 000,00 €" in rendered.body_text


def test_the_formal_notice_states_the_deadline_the_total_and_what_follows(renderer, ctx):
    rendered = renderer.render("formal_notice", "fr", ctx)
    assert "mise en demeure" in rendered.subject.lower()
    assert "F-0001" in rendered.subject
    assert "24 mars 2026" in rendered.body_text  # deadline 2026-03-24
    assert "1 052,34 €" in rendered.body_text  # 1000.00 + 12.34 + 40.00
    assert "mettons en demeure" in rendered.body_text
    assert "injonction de payer" in rendered.body_text
    assert "Votre société SAS" in rendered.body_text  # the creditor signs it


def test_the_formal_notice_says_penalties_run_until_payment_and_40_euros_are_owed_per_invoice(renderer, ctx):
    # L441-10: penalties run until full payment; D441-5: 40 € per invoice paid late. The
    # amount demanded is the one of the sending day, 16 March 2026 in the sample.
    body = renderer.render("formal_notice", "fr", ctx).body_text
    assert (
        "Ce montant est arrêté au 16 mars 2026 : conformément à l'article L441-10 du Code de commerce, "
        "les pénalités de retard continuent de courir jusqu'au paiement complet, et l'indemnité forfaitaire "
        "pour frais de recouvrement de 40,00 € est due pour chaque facture payée en retard."
    ) in body
    english = renderer.render("formal_notice", "en", ctx)
    assert (
        "This amount is calculated as at 16 March 2026: under article L441-10 of the French Commercial Code, "
        "late-payment penalties continue to accrue until payment in full, and the fixed recovery indemnity "
        "of €40.00 is owed for each invoice paid late."
    ) in english.body_text
    assert "continue to accrue until payment in full" in english.body_html


def test_the_formal_notice_deadline_is_written_as_a_long_french_date(renderer, ctx):
    ctx["deadline"] = date(2026, 12, 9)
    assert "au plus tard le 9 décembre 2026" in renderer.render("formal_notice", "fr", ctx).body_text


def test_a_consumers_formal_notice_has_no_b2b_penalties_and_starts_legal_interest(renderer, ctx):
    ctx["consumer"] = True
    for inv in ctx["invoices"]:
        inv["late_interest"], inv["indemnity"] = Decimal("0.00"), Decimal("0.00")
    ctx["totals"] = {
        "balance": Decimal("1000.00"),
        "late_interest": Decimal("0.00"),
        "indemnity": Decimal("0.00"),
        "claimed": Decimal("1000.00"),
    }
    body = renderer.render("formal_notice", "fr", ctx).body_text
    assert "indemnité forfaitaire" not in body
    assert "L441-10" not in body
    assert "mise en demeure fait courir les intérêts au taux légal" in body
    assert "la somme totale de 1 000,00 €" in body
    assert "continuent de courir jusqu'au paiement complet" not in body  # business debtors only


def test_several_invoices_are_listed_together_in_one_message(renderer, ctx):
    second = {
        **ctx["invoices"][0],
        "number": "F-0002",
        "balance": Decimal("234.56"),
        "paid_so_far": Decimal("0.00"),
    }
    ctx["invoices"].append(second)
    rendered = renderer.render("reminder_2", "fr", ctx)
    assert "F-0001" in rendered.subject and "F-0002" in rendered.subject
    assert "234,56 €" in rendered.body_text
    assert "les factures suivantes restent impayées" in rendered.body_text


def test_the_english_texts_use_english_amounts_and_dates(renderer, ctx):
    reminder = renderer.render("reminder_2", "en", ctx)
    assert reminder.subject == "Second reminder for unpaid invoice: F-0001"
    assert "€1,000.00" in reminder.body_text
    assert "4 February 2026" in reminder.body_text
    notice = renderer.render("formal_notice", "en", ctx)
    assert "24 March 2026" in notice.body_text
    assert "€1,052.34" in notice.body_text


def test_an_unknown_language_falls_back_to_french(renderer, ctx):
    assert renderer.render("reminder_2", "de", ctx) == renderer.render("reminder_2", "fr", ctx)


def _override(tmp_path: Path, name: str, text: str) -> Path:
    target = tmp_path / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return tmp_path


def test_an_override_folder_replaces_one_template_and_keeps_the_others(tmp_path, ctx):
    text = '{% set subject = "Impayé " ~ invoices[0].number %}Total : {{ money(totals.balance) }}\n'
    folder = _override(tmp_path, "fr/notice.txt.j2", text)
    renderer = Renderer(folder)
    notice = renderer.render("notice", "fr", ctx)
    assert notice.subject == "Impayé F-0001"
    assert notice.body_text == "Total : 1 000,00 €\n"
    assert renderer.render("reminder_2", "fr", ctx).subject.startswith("2e relance pour facture impayée")


@pytest.mark.parametrize(
    ("name", "text", "named", "what"),
    [
        ("fr/reminder_2.txt.j2", '{% set subject = "x" %}\n{% if %}\n', "fr/reminder_2.txt.j2", "line 2"),
        ("en/notice.txt.j2", '{% set subject = "x" %}{{ nothere.x }}\n', "en/notice.txt.j2", "nothere"),
        ("fr/due.txt.j2", "Bonjour {{ debtor.name }}\n", "fr/due.txt.j2", "subject"),
        # a broken partial: the message names the partial, not only the step including it
        ("fr/_signature.txt.j2", "Cordialement {% endif %}\n", "fr/_signature.txt.j2", "endif"),
    ],
    ids=["syntax error", "undefined variable", "no subject", "broken include"],
)
def test_a_broken_override_template_stops_the_start_up_check_naming_the_file(
    tmp_path, ctx, name, text, named, what
):
    renderer = Renderer(_override(tmp_path, name, text))
    with pytest.raises(TemplateProblem) as caught:
        renderer.check(STEPS, ctx)
    assert named in str(caught.value)
    assert what in str(caught.value)


def test_the_first_of_the_month_is_written_1er_in_french_and_plainly_in_english():
    from datetime import date

    from handlers.render import helpers

    assert helpers("fr")["day"](date(2026, 4, 1)) == "1er avril 2026"
    assert helpers("fr")["day"](date(2026, 4, 11)) == "11 avril 2026"
    assert helpers("en")["day"](date(2026, 4, 1)) == "1 April 2026"


def test_every_message_renders_as_with_jinjas_own_environment_and_cache(renderer, ctx):
    # Given the renderer's environment, which keeps its loaded templates and their globals
    # in plain dicts, and Jinja's own environment with the same options
    from jinja2 import ChoiceLoader, Environment, PackageLoader, StrictUndefined

    from handlers.render import helpers

    def plain(html: bool) -> Environment:
        return Environment(
            loader=ChoiceLoader([PackageLoader("handlers", "templates")]),
            undefined=StrictUndefined,
            autoescape=html,
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,
        )

    text_env, html_env = plain(False), plain(True)
    several = ctx | {"invoices": [ctx["invoices"][0], {**ctx["invoices"][0], "number": "F-0002"}], "count": 2}
    for step in STEPS:
        for language in ("fr", "en"):
            for values in (ctx, several):
                # When both render the message twice (the second time from the kept templates)
                first = renderer.render(step, language, values)
                second = renderer.render(step, language, values)
                module = text_env.get_template(f"{language}/{step}.txt.j2").make_module(
                    {**values, **helpers(language)}
                )
                subject = " ".join(str(module.subject).split())
                html = html_env.get_template(f"{language}/{step}.html.j2").render(
                    {**values, **helpers(language), "subject": subject}
                )
                # Then the texts are the same, character for character
                assert first == second
                assert (first.subject, first.body_text, first.body_html) == (
                    subject,
                    str(module).strip() + "\n",
                    html.strip() + "\n",
                )


def test_a_dicts_item_is_found_as_jinja_finds_it_its_own_attributes_first():
    # The renderer looks a plain dict's item up at once when dict has no attribute of that
    # name; Jinja's own environment tries the attribute first: the same values, the same
    # undefined names
    from jinja2 import Environment, StrictUndefined, UndefinedError

    from handlers.render import _environment

    ours, plain = _environment(None), Environment(undefined=StrictUndefined)
    values = {"inv": {"number": "F-1", "items": "key", "get": 3, "": 0}, "obj": Decimal("1.50")}
    text = "{{ inv.number }}|{{ inv.items is callable }}|{{ inv.get('number') }}|{{ obj.real }}"
    assert ours.from_string(text).render(values) == plain.from_string(text).render(values)
    assert ours.from_string(text).render(values) == "F-1|True|F-1|1.50"
    for missing in ("{{ inv.nothere }}", "{{ obj.nothere }}"):
        with pytest.raises(UndefinedError) as ours_error:
            ours.from_string(missing).render(values)
        with pytest.raises(UndefinedError) as plain_error:
            plain.from_string(missing).render(values)
        assert str(ours_error.value) == str(plain_error.value)


def test_the_helpers_are_called_at_once_and_other_callables_as_jinja_calls_them():
    # The renderer's context calls its own helpers without Jinja's look-over (it leans on
    # the compiled templates calling ``context.call``, with the loop and block markers);
    # a callable taking the context still gets it
    from jinja2 import pass_context

    from handlers.render import _Context, _environment, helpers

    env = _environment(None)
    assert env.context_class is _Context
    seen = []

    @pass_context
    def where(context, name):
        seen.append(context["who"])
        return name

    values = {**helpers("fr"), "who": "F-1", "where": where, "amounts": [Decimal("1.5"), Decimal("-2")]}
    text = (
        "{% for a in amounts %}{{ money(a, 'EUR') }};{% endfor %}{{ day(when) }}|{{ where('x') }}"
        "{% set b %}{{ money(amounts[0]) }}{% endset %}{{ b }}"
    )
    rendered = env.from_string(text).render(values | {"when": date(2026, 4, 1)})
    assert rendered == "1,50 €;-2,00 €;1er avril 2026|x1,50 €"
    assert seen == ["F-1"]
