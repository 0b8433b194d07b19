"""Who receives the signals (outbound webhooks), and for which creditors.

Loaded from the webhooks file (``RELANCE_WEBHOOKS_FILE``, see ``config/webhooks.py``) with
the secrets already read; without that file no signal is recorded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import SecretStr

# the facts a subscriber may receive (docs/webhooks.md)
SIGNAL_TYPES = ("debtor.level_changed", "case.opened", "case.closed", "invoice.settled")


@dataclass(frozen=True)
class Subscriber:
    """One endpoint and what it receives (the secret is never shown in a repr)."""

    name: str
    url: str
    secret: SecretStr = field(repr=False)
    events: frozenset[str]
    creditors: frozenset[str] | None = None  # None: every creditor
    timeout: float = 10.0

    def wants(self, signal_type: str, creditor: str) -> bool:
        return signal_type in self.events and (self.creditors is None or creditor in self.creditors)


@dataclass(frozen=True)
class Webhooks:
    """The subscribers of the webhooks file, and how often a delivery is tried."""

    subscribers: Mapping[str, Subscriber]
    max_attempts: int = 10

    def get(self, name: str) -> Subscriber | None:
        return self.subscribers.get(name)

    def for_signal(self, signal_type: str, creditor: str) -> list[Subscriber]:
        """The subscribers of ``signal_type`` for ``creditor``, by name."""
        return [s for _, s in sorted(self.subscribers.items()) if s.wants(signal_type, creditor)]
