"""The "coming due" section of the templates: listed after the demand, never in it.

The start-up sample (config.bootstrap.sample_context) claims F-0001 (total 1 052,34 €) and
mentions F-0002, 500,00 € due 20 March 2026.
"""

from __future__ import annotations

import copy

import pytest

from config.bootstrap import sample_context
from config.policy import load_policy
from handlers.render import Renderer

POLICY = load_policy()
OVERDUE_STEPS = [s.template for s in POLICY.steps if s.event == "invoice.overdue" and not s.manual]


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


@pytest.mark.parametrize("step", OVERDUE_STEPS)
def test_given_a_mentioned_invoice_then_the_french_text_lists_it_after_the_amount_demanded(renderer, step):
    body = renderer.render(step, "fr", copy.deepcopy(sample_context(POLICY))).body_text
    section = body[body.index("À échoir") :]
    assert "cette facture n'est pas comprise dans la somme réclamée" in section
    assert "Facture n° F-0002, à échéance le 20 mars 2026 : 500,00 €" in section
    assert "F-0002" not in body[: body.index("À échoir")]


def test_given_a_mentioned_invoice_then_the_english_html_has_a_coming_due_heading(renderer):
    html = renderer.render("formal_notice", "en", copy.deepcopy(sample_context(POLICY))).body_html
    assert "<h3>Coming due</h3>" in html and "Invoice F-0002, due 20 March 2026" in html


def test_given_nothing_mentioned_then_there_is_no_coming_due_section(renderer):
    ctx = copy.deepcopy(sample_context(POLICY)) | {"upcoming": []}
    rendered = renderer.render("formal_notice", "fr", ctx)
    assert "À échoir" not in rendered.body_text and "À échoir" not in rendered.body_html
