"""``relance drafts``, ``relance approve`` and ``relance reject`` (docs/cli.md), run as
processes on the embedded store: their lines, their exit codes, the rows they leave.

The drafts come from ``relance simulate --data-dir`` with examples/policies/approval.toml,
whose formal notice requires approval. On examples/formal_notice_and_upcoming.jsonl,
CLI-VERT's F-A (1 000,00 €, due Mon 5 January 2026) reaches its formal notice on Mon 16
February 2026 (D+40 = Sat 14 February, moved to the Monday): two drafts, the registered
letter and the e-mail, each demanding a principal of 1000.00 EUR. The commands run on Thu
19 February 2026 at 10:00 in Paris: the drafts are 3 days old. Each demands 1 053,98 €:
1 000,00 € + 13,98 € of penalties (late from 6 January, 42 days at 2.15 % + 10 points =
12.15 %: 1000 * 0.1215 * 42 / 365 = 13.98) + the 40 € indemnity.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import payment

ROOT = Path(__file__).resolve().parents[2]
RELANCE = str(Path(sys.executable).with_name("relance"))
EVENTS = ROOT / "examples" / "formal_notice_and_upcoming.jsonl"
POLICY = ROOT / "examples" / "policies" / "approval.toml"
THURSDAY = "2026-02-19T10:00:00+01:00"


def relance(tmp_path: Path, *args: str, **settings: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELANCE_")}
    env |= {
        "RELANCE_DATA_DIR": str(tmp_path / "var"),
        "RELANCE_POLICY_FILE": str(POLICY),
        "RELANCE_NOW": THURSDAY,
        **settings,
    }
    return subprocess.run(
        [RELANCE, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def drafted(tmp_path) -> dict[str, int]:
    """The store after the formal notice was drafted: draft id per channel."""
    made = relance(
        tmp_path, "simulate", str(EVENTS), "--until", "2026-02-16", "--data-dir", str(tmp_path / "var")
    )
    assert made.returncode == 0, made.stderr
    shown = [json.loads(line) for line in made.stdout.splitlines()]
    waiting = [a for a in shown if a["action"] == "message.awaiting_approval"]
    assert [(a["step"], a["channel"]) for a in waiting] == [
        ("formal_notice", "registered_letter"),
        ("formal_notice", "email"),
    ]
    with sqlite3.connect(tmp_path / "var" / "relance.db") as db:
        rows = db.execute("SELECT channel, id FROM messages WHERE status = 'draft'").fetchall()
    return dict(rows)


def _messages(tmp_path: Path) -> dict[str, str]:
    with sqlite3.connect(tmp_path / "var" / "relance.db") as db:
        return dict(
            db.execute("SELECT channel, status FROM messages WHERE step = 'formal_notice'").fetchall()
        )


def _planned(tmp_path: Path, step: str) -> int:
    with sqlite3.connect(tmp_path / "var" / "relance.db") as db:
        return db.execute("SELECT count(*) FROM planned_steps WHERE step = ?", (step,)).fetchone()[0]


def test_drafts_lists_each_draft_with_its_debtor_step_invoices_amount_and_age(tmp_path, drafted):
    # Given the two drafts of F-A's formal notice, made on Monday 16 February
    # When the operator lists them on Thursday 19 February
    listed = relance(tmp_path, "drafts")
    # Then one line each: id, creditor, debtor, step, channel, invoices, amount, age in days
    assert listed.returncode == 0, listed.stderr
    letter, email = drafted["registered_letter"], drafted["email"]
    assert listed.stdout.splitlines() == [
        "id\tcreditor\tdebtor\tstep\tchannel\tinvoices\tprincipal\tclaimed\tage_days",
        f"{letter}\tdefault\tCLI-VERT\tformal_notice\tregistered_letter\tF-A\t1000.00 EUR\t1053.98 EUR\t3",
        f"{email}\tdefault\tCLI-VERT\tformal_notice\temail\tF-A\t1000.00 EUR\t1053.98 EUR\t3",
        "2 draft(s) awaiting approval",
    ]
    # And the status counts them, apart from what was sent
    status = relance(tmp_path, "status", "--json")
    assert json.loads(status.stdout)["drafts_awaiting_approval"] == 2


def test_approve_all_of_a_step_queues_each_draft_plans_the_escalation_and_keeps_the_chain(tmp_path, drafted):
    # Given the two drafts; a wrong id is one line and exit 2, nothing approved
    wrong = relance(tmp_path, "approve", str(drafted["email"]), "999")
    assert (wrong.returncode, wrong.stderr.strip(), wrong.stdout) == (2, "relance: error: no draft 999", "")
    assert _messages(tmp_path) == {"registered_letter": "draft", "email": "draft"}
    nothing = relance(tmp_path, "approve")
    assert nothing.returncode == 2 and "takes draft IDs, or --all" in nothing.stderr
    other_step = relance(tmp_path, "approve", str(drafted["email"]), "--step", "reminder_3")
    assert (other_step.returncode, other_step.stderr.strip()) == (
        2,
        f"relance: error: draft {drafted['email']} is a formal_notice, not a reminder_3",
    )
    # When marie approves every formal notice
    approved = relance(tmp_path, "approve", "--all", "--step", "formal_notice", "--by", "marie")
    # Then both are queued (pending: the scheduler's next tick emits them), the escalation
    # is planned, and the evidence records who approved
    assert approved.returncode == 0, approved.stderr
    late = " (drafted 3 day(s) ago: the last day to pay it states counts from then)"
    assert approved.stdout.splitlines() == [
        f"approved draft {drafted['registered_letter']} "
        f"(formal_notice by registered_letter to CLI-VERT: F-A): queued for sending{late}",
        f"approved draft {drafted['email']} "
        f"(formal_notice by email to CLI-VERT: F-A): queued for sending{late}",
        "2 approved, 2 draft(s) acted on",
    ]
    assert _messages(tmp_path) == {"registered_letter": "pending", "email": "pending"}
    assert _planned(tmp_path, "escalation") == 1
    with sqlite3.connect(tmp_path / "var" / "relance.db") as db:
        payloads = [
            json.loads(p)
            for (p,) in db.execute("SELECT payload FROM evidence WHERE kind = 'message.approved'")
        ]
    assert [(p["by"], p["channel"]) for p in payloads] == [("marie", "registered_letter"), ("marie", "email")]
    assert relance(tmp_path, "drafts").stdout.splitlines()[-1] == "0 draft(s) awaiting approval"
    again = relance(tmp_path, "approve", str(drafted["email"]))
    assert again.returncode == 2
    assert (
        again.stderr.strip()
        == f"relance: error: draft {drafted['email']} is no longer awaiting approval (approved)"
    )
    assert relance(tmp_path, "evidence", "verify").returncode == 0


def test_a_draft_approved_after_payment_is_not_sent_and_a_rejected_one_keeps_its_reason(tmp_path, drafted):
    # Given the two drafts, then F-A paid in full on Wednesday 18 February
    events = tmp_path / "paid.jsonl"
    events.write_text(json.dumps(payment("F-A", "1000.00", "2026-02-18")) + "\n", encoding="utf-8")
    assert relance(tmp_path, "ingest", str(events)).returncode == 0
    # When the e-mail is approved
    approved = relance(tmp_path, "approve", str(drafted["email"]), "--by", "marie")
    # Then it is not sent, and the line says why
    assert approved.returncode == 0, approved.stderr
    assert approved.stdout.splitlines()[0] == (
        f"not sent draft {drafted['email']} (formal_notice by email to CLI-VERT: F-A): F-A: invoice settled"
    )
    # When the letter is rejected without a reason, then with one
    bare = relance(tmp_path, "reject", str(drafted["registered_letter"]), "--reason", "  ")
    assert bare.returncode == 2 and "needs --reason TEXT" in bare.stderr
    rejected = relance(tmp_path, "reject", str(drafted["registered_letter"]), "--reason", "payé par virement")
    assert rejected.returncode == 0, rejected.stderr
    assert rejected.stdout.strip().endswith(": payé par virement")
    # Then neither leaves, and no escalation follows a notice never sent
    assert _messages(tmp_path) == {"registered_letter": "rejected", "email": "withdrawn"}
    assert _planned(tmp_path, "escalation") == 0


def test_approve_with_an_unreachable_broker_stops_before_approving_anything(tmp_path, drafted):
    # Given the two drafts and RELANCE_REDIS_URL naming a closed port
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # When every draft is approved
    result = relance(tmp_path, "approve", "--all", RELANCE_REDIS_URL=f"redis://127.0.0.1:{port}/0")
    # Then one line, exit 2, and both drafts still await approval
    assert result.returncode == 2
    assert result.stderr.strip().startswith(
        f"relance: error: RELANCE_REDIS_URL: Redis redis://127.0.0.1:{port}/0"
    )
    assert _messages(tmp_path) == {"registered_letter": "draft", "email": "draft"}
