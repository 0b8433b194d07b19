"""What the handlers need besides a session and ``now``: the policy and its companions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from handlers.policy import Policy, RateTable
from handlers.render import Renderer


@dataclass(frozen=True)
class Context:
    policy: Policy
    rates: RateTable
    renderer: Renderer
    sender: str
    message_domain: str
    lease: timedelta = timedelta(minutes=5)
