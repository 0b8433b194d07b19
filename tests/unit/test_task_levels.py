"""A call or task step is no level of the debtor (handlers.signals.level_of)."""

from __future__ import annotations

from types import SimpleNamespace

from config.policy import load_policy
from handlers.policy import PolicySet
from handlers.signals import level_of


class Reached:
    """The two reads level_of makes of the store, for one debtor."""

    def __init__(self, steps: list[tuple[str, str]]) -> None:
        self._steps = steps

    def steps_reached(self, debtor_id: str) -> list[tuple[str, str]]:
        return self._steps

    def open_invoices(self, debtor_id: str) -> list[object]:
        return []


def test_a_done_call_after_reminder_3_leaves_the_level_at_reminder_3_with_its_severity():
    """Given F-1's reminder_3 and call done on the default policy, then the debtor's level is
    reminder_3 with severity 6 (its place among the message steps), not the call."""
    debtor = SimpleNamespace(id="D-1", kind="business", country="FR", language="fr", segment=None)
    level = level_of(Reached([("F-1", "reminder_3"), ("F-1", "call")]), debtor, PolicySet(load_policy()))
    assert (level.step, level.severity) == ("reminder_3", 6)


def test_the_formal_notice_keeps_severity_7_with_the_call_in_the_ladder():
    debtor = SimpleNamespace(id="D-1", kind="business", country="FR", language="fr", segment=None)
    level = level_of(Reached([("F-1", "call"), ("F-1", "formal_notice")]), debtor, PolicySet(load_policy()))
    assert (level.step, level.severity) == ("formal_notice", 7)
