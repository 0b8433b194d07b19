"""HTML e-mails (handlers/templates/<lang>/<step>.html.j2) next to the plain-text part.

The HTML environment autoescapes user data; the text part stays raw. The e-mail built by
adapters.compose.email_bytes is multipart/alternative, text/plain first.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from decimal import Decimal
from email import message_from_bytes
from email.policy import default
from pathlib import Path

import pytest
from markupsafe import escape

from adapters.compose import email_bytes
from config.bootstrap import sample_context
from config.policy import load_policy
from handlers.render import LANGUAGES, Renderer, TemplateProblem

POLICY = load_policy()
STEPS = [s.template for s in POLICY.steps if not s.manual]  # a call or task has no message
HOSTILE = '<script>alert(1)</script> & "quoted"'
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &#34;quoted&#34;"


@pytest.fixture
def ctx():
    return copy.deepcopy(sample_context(POLICY))


@pytest.fixture(scope="module")
def renderer():
    return Renderer()


def _hostile(ctx: dict) -> dict:
    number = f"F-1 {HOSTILE}"
    ctx["invoices"][0]["number"] = number
    ctx["others"] = [{**ctx["others"][0], "number": f"F-2 {HOSTILE}"}]
    ctx["debtor"]["name"] = f"Débiteur {HOSTILE}"
    ctx["creditor"] = ctx["creditor"].model_copy(
        update={"name": f"Créancier {HOSTILE}", "signature": f"Signé {HOSTILE}"}
    )
    ctx["payment_urls"] = ['https://pay.example/1?a=1&b="2"']
    return ctx


def test_every_step_has_an_html_part_in_both_languages(renderer, ctx):
    renderer.check(STEPS, ctx)
    for step in STEPS:
        for language in LANGUAGES:
            rendered = renderer.render(step, language, ctx)
            assert rendered.body_html.startswith("<!DOCTYPE html>"), (step, language)
            assert f'<html lang="{language}">' in rendered.body_html
            assert f"<title>{escape(rendered.subject)}</title>" in rendered.body_html
            assert "F-0001" in rendered.body_html
            assert "<table" in rendered.body_html
            assert '<a href="https://pay.example/1"' in rendered.body_html
            assert "Votre société SAS" in rendered.body_html  # signature
            assert "http" not in rendered.body_html.replace("https://pay.example/1", "")


@pytest.mark.parametrize("step", ["reminder_2", "formal_notice"])
@pytest.mark.parametrize("language", LANGUAGES)
def test_user_data_is_escaped_in_html_and_raw_in_text(renderer, ctx, step, language):
    rendered = renderer.render(step, language, _hostile(ctx))
    html = rendered.body_html
    assert "<script>" not in html
    assert html.count("&lt;script&gt;") >= 4  # invoice (table, penalties), other, creditor
    assert f"F-1 {ESCAPED}" in html
    assert f"F-2 {ESCAPED}" in html
    assert f"Créancier {ESCAPED}" in html
    assert f"Signé {ESCAPED}" in html
    assert 'href="https://pay.example/1?a=1&amp;b=&#34;2&#34;"' in html
    # the text part is not HTML: nothing is escaped
    assert f"F-1 {HOSTILE}" in rendered.body_text
    assert f"Créancier {HOSTILE}" in rendered.body_text
    assert "&lt;" not in rendered.body_text and "&amp;" not in rendered.body_text


def test_the_email_is_multipart_alternative_text_first_then_html(renderer, ctx):
    ctx["invoices"][0]["number"] = "F-2026-042 & <b>"
    ctx["invoices"][0]["balance"] = Decimal("1234.56")
    ctx["totals"]["balance"] = Decimal("1234.56")
    rendered = renderer.render("reminder_2", "fr", ctx)
    content = email_bytes(
        sender="Relance <relance@creancier.example>",
        recipient="compta@debiteur.example",
        subject=rendered.subject,
        body_text=rendered.body_text,
        body_html=rendered.body_html,
        message_id="<m1@creancier.example>",
        at=datetime(2026, 3, 16, 9, 0, tzinfo=UTC),
        step="reminder_2",
    )
    message = message_from_bytes(content, policy=default)
    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    text, html = (p.get_content() for p in parts)
    assert "F-2026-042 & <b>" in text
    assert "F-2026-042 &amp; &lt;b&gt;" in html
    assert "1 234,56 €" in text
    assert "1 234,56 €" in html
    assert "2e relance pour facture impayée" in html
    assert message.get_body(("plain",)).get_content() == text
    assert message.get_body(("html",)).get_content() == html
    assert message["Subject"] == rendered.subject


def test_without_html_the_email_stays_single_part_plain_text():
    content = email_bytes(
        sender="relance@creancier.example",
        recipient="a@b.example",
        subject="s",
        body_text="Bonjour\n",
        message_id="<m2@creancier.example>",
        at=datetime(2026, 3, 16, 9, 0, tzinfo=UTC),
        step="notice",
    )
    message = message_from_bytes(content, policy=default)
    assert message.get_content_type() == "text/plain"
    assert message.get_body(("plain",)).get_content().rstrip() == "Bonjour"


def test_the_second_reminder_html_carries_the_mandatory_words(renderer, ctx):
    html = renderer.render("reminder_2", "fr", ctx).body_html
    assert "2e relance pour facture impayée" in html
    assert "L441-10" in html
    assert "12,34 €" in html and "40,00 €" in html and "12,15 %" in html


def test_the_third_reminder_and_formal_notice_html_carry_their_legal_mentions(renderer, ctx):
    assert "dernière relance avant mise en demeure" in renderer.render("reminder_3", "fr", ctx).body_html
    notice = renderer.render("formal_notice", "fr", ctx).body_html
    assert "24 mars 2026" in notice
    assert "1 052,34 €" in notice
    assert "mettons en demeure" in notice
    assert "injonction de payer" in notice


def _override(tmp_path: Path, name: str, text: str) -> Path:
    target = tmp_path / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return tmp_path


def test_an_html_override_replaces_only_the_html_part(tmp_path, ctx):
    renderer = Renderer(
        _override(tmp_path, "fr/notice.html.j2", "<p>Impayé : {{ invoices[0].number }} – {{ subject }}</p>\n")
    )
    ctx["invoices"][0]["number"] = "F<1>"
    rendered = renderer.render("notice", "fr", ctx)
    assert rendered.body_html == "<p>Impayé : F&lt;1&gt; – Avis d&#39;impayé : facture F&lt;1&gt;</p>\n"
    assert "F<1>" in rendered.body_text  # the built-in text template still renders
    assert renderer.render("reminder_2", "fr", ctx).body_html.startswith("<!DOCTYPE html>")


@pytest.mark.parametrize(
    ("name", "text", "what"),
    [
        ("fr/reminder_2.html.j2", "<p>\n{% if %}\n</p>\n", "line 2"),
        ("en/notice.html.j2", "<p>{{ nothere.x }}</p>\n", "nothere"),
        ("fr/_invoices.html.j2", "<table>{% endfor %}</table>\n", "endfor"),
    ],
    ids=["syntax error", "undefined variable", "broken partial"],
)
def test_a_broken_html_override_stops_the_start_up_check_naming_the_file(tmp_path, ctx, name, text, what):
    renderer = Renderer(_override(tmp_path, name, text))
    with pytest.raises(TemplateProblem) as caught:
        renderer.check(STEPS, ctx)
    assert name in str(caught.value)
    assert what in str(caught.value)
