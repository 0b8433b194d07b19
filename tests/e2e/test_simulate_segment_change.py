"""``relance simulate`` with a debtor moved to another segment half-way up its ladder.

examples/policies/segmented.toml. Invoice F-1 due Wed 1 April 2026, on the default ladder
until the debtor becomes a key account on Tue 14 April: pre_due D-5 = Fri 27 March, due
Wed 1 April, notice D+3 = Sat 4 April -> Tue 7 (Mon 6 is Easter Monday), reminder_1
D+10 = Sat 11 -> Mon 13 April. Then the key-accounts ladder for the steps after
reminder_1: reminder_2 D+30 = Fri 1 May (holiday) -> Mon 4 May, reminder_3 D+45 =
Sat 16 May -> Mon 18 May, formal_notice D+60 = Sun 31 May -> Mon 1 June. The default
ladder would have sent reminder_2 on 21 April with a letter.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

from relance.cli import main
from tests.support import DEBTOR, invoice_issued

SEGMENTED = Path(__file__).resolve().parents[2] / "examples" / "policies" / "segmented.toml"


def test_a_debtor_moved_to_key_accounts_gets_their_ladder_for_the_rest_and_nothing_twice(tmp_path):
    moved = {
        "event_id": "moved-D-1",
        "type": "debtor.updated",
        "occurred_at": "2026-04-14T10:00:00+02:00",
        "debtor": {**DEBTOR, "segment": "key_account"},
    }
    events = tmp_path / "events.jsonl"
    events.write_text(
        "\n".join(json.dumps(e) for e in (invoice_issued("F-1", "2026-04-01"), moved)) + "\n",
        encoding="utf-8",
    )
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        options = ["--until", "2026-06-10", "--policy", str(SEGMENTED), "--data-dir", str(tmp_path / "data")]
        code = main(["simulate", str(events), *options])
    assert code == 0
    actions = [json.loads(line) for line in out.getvalue().splitlines()]
    sent = [(a["at"][:10], a["step"], a["channel"]) for a in actions if a["action"] == "reminder.sent"]
    assert sent == [
        ("2026-03-27", "pre_due", "email"),
        ("2026-04-01", "due", "email"),
        ("2026-04-07", "notice", "email"),
        ("2026-04-13", "reminder_1", "email"),
        ("2026-05-04", "reminder_2", "email"),
        ("2026-05-18", "reminder_3", "email"),
        ("2026-06-01", "formal_notice", "registered_letter"),
        ("2026-06-01", "formal_notice", "email"),
    ]
