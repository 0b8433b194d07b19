"""What the handlers need besides a session and ``now``: the policy and its companions."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from handlers.dunning import Composer, DunningStore
from handlers.partners import Partners
from handlers.policy import Policy, PolicySet, RateTable
from handlers.render import Renderer
from handlers.webhooks import Webhooks

if TYPE_CHECKING:
    from handlers.handover import PartnerLink
    from handlers.ports import Transport
    from handlers.signals import SignalLink

DEFAULT_CREDITOR = "default"


class UnknownCreditor(LookupError):
    """An event or a row names a creditor the service is not configured for."""


@dataclass(frozen=True)
class Context:
    policies: PolicySet
    rates: RateTable
    renderer: Renderer
    sender: str
    message_domain: str
    lease: timedelta = timedelta(minutes=5)
    # the per-installation key of the Message-IDs (handlers.reminders.message_id_for)
    message_key: bytes = b""
    # delivery statuses must carry an HMAC ``signature`` under this key, when set
    status_key: bytes | None = None
    partners: Partners | None = None  # None: no automatic hand-over of cases
    # the reminder path's ports, given by the composition root (config.bootstrap)
    composer: Composer | None = None
    dunning: Callable[[object], DunningStore] | None = None  # the store on a unit of work
    partner_link: PartnerLink | None = None  # how dossiers reach partners (hand-overs)
    max_copies: int = 2  # copies of a message that may reach a server after lost answers, at most
    # whose collections this context serves, and the contexts of the other creditors (the
    # service's context only: ``config.creditors``)
    creditor: str = DEFAULT_CREDITOR
    others: Mapping[str, Context] = field(default_factory=dict)
    transports: Mapping[str, Transport] | None = None  # the creditor's own channels, if any
    reply_to: str | None = None  # where debtors' answers go, when not to the sender
    # the subscribers of signals, for every creditor (the units of work record with the same)
    webhooks: Webhooks | None = None
    signal_link: SignalLink | None = None  # how signals are posted (adapters.signals)

    def for_creditor(self, creditor: str) -> Context:
        """The context of ``creditor``: its policy and identity, sender, templates, partners
        and channels. Raises UnknownCreditor for a creditor the service does not know."""
        if creditor == self.creditor:
            return self
        found = self.others.get(creditor)
        if found is None:
            raise UnknownCreditor(
                f"creditor {creditor!r} is not configured: add it to the creditors file "
                "(RELANCE_CREDITORS_FILE, docs/configuration.md#creditors)"
            )
        return found

    def channels(self, service: Mapping[str, Transport]) -> Mapping[str, Transport]:
        """The creditor's own channels where it has them, the service's for the rest."""
        return {**service, **(self.transports or {})}

    @property
    def policy(self) -> Policy:
        """The default policy (used where no debtor is concerned)."""
        return self.policies.default

    def policy_for(self, debtor: object, invoice_number: str | None = None) -> Policy:
        return self.policies.for_debtor(debtor, invoice_number)

    def dunning_store(self, uow: object) -> DunningStore:
        """The reminder path's store on the unit of work ``uow``."""
        if self.dunning is None:
            raise RuntimeError("this context has no dunning store (config.bootstrap.make_context gives one)")
        return self.dunning(uow)

    def message_composer(self) -> Composer:
        if self.composer is None:
            raise RuntimeError("this context has no composer (config.bootstrap.make_context gives one)")
        return self.composer
