"""``relance simulate`` with a formal notice that requires approval (examples/policies/approval.toml).

On examples/formal_notice_and_upcoming.jsonl, CLI-VERT's F-A (1 000,00 €, due Mon 5
January 2026) reaches its formal notice on Mon 16 February 2026 (D+40 = Sat 14 February,
moved to the Monday), on the registered letter and the e-mail. Sent, the notice states
its deadline: posted Mon 16, presented two business days later (Wed 18), eight days then:
Thu 26 February; the escalation follows at the end of that day (Fri 27 at 00:00).
"""

from __future__ import annotations

from pathlib import Path

from tests.simulation import simulate

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "examples" / "formal_notice_and_upcoming.jsonl"
POLICY = str(ROOT / "examples" / "policies" / "approval.toml")


def _of_f_a(actions: list[dict]) -> list[tuple[str, str, str, str]]:
    return [
        (a["at"][:10], a["action"], a.get("step", ""), a.get("channel", ""))
        for a in actions
        if "F-A" in a.get("invoice_numbers", []) and a["at"] >= "2026-02-16"
    ]


def test_a_preview_shows_the_formal_notice_awaiting_approval_and_no_escalation_from_it(tmp_path):
    # Given the formal notice requires approval, When the preview runs to 10 March
    actions, _ = simulate(EVENTS, "2026-03-10", tmp_path / "var", "--policy", POLICY)
    # Then F-A's notice awaits approval on both channels, and nothing follows from it
    assert _of_f_a(actions) == [
        ("2026-02-16", "message.awaiting_approval", "formal_notice", "registered_letter"),
        ("2026-02-16", "message.awaiting_approval", "formal_notice", "email"),
    ]
    waiting = [a for a in actions if a["action"] == "message.awaiting_approval"]
    assert all(
        a["subject"] == "Mise en demeure de payer – F-A" and a["amount_due"] == "1000.00" for a in waiting
    )


def test_approve_all_previews_the_notice_approved_at_once_and_its_escalation(tmp_path):
    # Given the same events, When the preview approves every draft as it is made
    actions, _ = simulate(EVENTS, "2026-03-10", tmp_path / "var", "--policy", POLICY, "--approve-all")
    # Then the notice is approved the same day, and the escalation follows its deadline
    assert _of_f_a(actions) == [
        ("2026-02-16", "message.awaiting_approval", "formal_notice", "registered_letter"),
        ("2026-02-16", "message.awaiting_approval", "formal_notice", "email"),
        ("2026-02-16", "message.approved", "formal_notice", "registered_letter"),
        ("2026-02-16", "message.approved", "formal_notice", "email"),
        ("2026-02-27", "deadline.expired", "escalation", ""),
        ("2026-02-27", "case.escalated", "", ""),
    ]
    approved = [a for a in actions if a["action"] == "message.approved"]
    assert {a["by"] for a in approved} == {"simulate --approve-all"}


def _levels(tmp_path, monkeypatch, *options: str) -> list[tuple[str, str | None]]:
    """F-A's debtor levels a subscriber to ``debtor.level_changed`` would hear, from 16 February."""
    monkeypatch.setenv("RELANCE_TEST_SIMULATED_KEY", "a-key-that-no-request-will-use-42")
    tmp_path.mkdir()
    webhooks = tmp_path / "webhooks.toml"
    webhooks.write_text(
        '[subscribers.erp]\nurl = "http://127.0.0.1:9/nobody"\nsecret_env = "RELANCE_TEST_SIMULATED_KEY"\n'
        'events = ["debtor.level_changed"]\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("RELANCE_WEBHOOKS_FILE", str(webhooks))
    actions, _ = simulate(EVENTS, "2026-02-17", tmp_path / "var", "--policy", POLICY, *options)
    return [
        (a["at"][:10], a.get("level"))
        for a in actions
        if a["action"] == "signal.recorded" and a["at"] >= "2026-02-16"
    ]


def test_a_drafted_formal_notice_raises_the_debtors_level_only_once_approved(tmp_path, monkeypatch):
    # Given a subscriber to levels; CLI-VERT stood at reminder_3 before 16 February
    # When the formal notice is only drafted, Then its level stays; approved, it rises
    assert _levels(tmp_path / "drafted", monkeypatch) == []
    assert _levels(tmp_path / "approved", monkeypatch, "--approve-all") == [("2026-02-16", "formal_notice")]
