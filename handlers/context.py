"""What the handlers need besides a session and ``now``: the policy and its companions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from handlers.partners import Partners
from handlers.policy import Policy, PolicySet, RateTable
from handlers.render import Renderer


@dataclass(frozen=True)
class Context:
    policies: PolicySet
    rates: RateTable
    renderer: Renderer
    sender: str
    message_domain: str
    lease: timedelta = timedelta(minutes=5)
    partners: Partners | None = None  # None: no automatic hand-over of cases

    @property
    def policy(self) -> Policy:
        """The default policy (used where no debtor is concerned)."""
        return self.policies.default

    def policy_for(self, debtor: object, invoice_number: str | None = None) -> Policy:
        return self.policies.for_debtor(debtor, invoice_number)
