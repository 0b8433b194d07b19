"""Start-up warnings about the creditor's identity: still the shipped example, or short of
the legal mentions a company's letters need (C. com. R123-237).

Not errors: a policy may be previewed (`relance simulate`) before it is finished. Each
policy with its own creditor is checked once, when the service is built. A preview of
e-invoices prints their seller as the creditor where the identity is still the example's
(``seller_as_creditor``, ``with_creditor``).
"""

from __future__ import annotations

import tomllib
from functools import lru_cache
from importlib import resources
from typing import Protocol

import structlog

from handlers import identity
from handlers.identity import missing_mentions
from handlers.policy import Creditor, Policy, PolicySet

log = structlog.get_logger("relance.config")

IDENTITY_KEYS = ("name", "address", "siren", "vat_number")


@lru_cache(maxsize=1)
def _examples() -> tuple[Creditor, ...]:
    """The creditor of the shipped config/policy.toml, and the one a policy without
    ``[creditor]`` gets."""
    text = resources.files("config").joinpath("policy.toml").read_text(encoding="utf-8")
    return Creditor.model_validate(tomllib.loads(text).get("creditor", {})), Creditor()


def example_keys(creditor: Creditor) -> list[str]:
    """The identity keys of ``[creditor]`` that still hold the shipped example's value."""
    found = []
    for key in IDENTITY_KEYS:
        value = getattr(creditor, key)
        if value is not None and any(value == getattr(example, key) for example in _examples()):
            found.append(key)
    return found


def warn_about_creditors(policies: PolicySet, owner: str = "default") -> None:
    """Log ``creditor.example_identity`` and ``creditor.mentions_missing`` (warnings) for
    each distinct creditor of the policies of ``owner`` (a creditor id, ``default`` for the
    service's own)."""
    seen: set[Creditor] = set()
    for name in policies.names:
        creditor = policies.named(name).creditor
        if creditor in seen:
            continue
        seen.add(creditor)
        examples = example_keys(creditor)
        if examples:
            log.warning(
                "creditor.example_identity", policy=name, keys=examples, creditor=creditor.name, owner=owner
            )
        missing = missing_mentions(creditor)
        if missing:
            log.warning(
                "creditor.mentions_missing", policy=name, keys=missing, creditor=creditor.name, owner=owner
            )


class Seller(Protocol):
    """What a preview reads of an e-invoice's seller (adapters.importers.einvoice.Seller)."""

    @property
    def name(self) -> str | None: ...
    @property
    def siren(self) -> str | None: ...
    @property
    def vat_id(self) -> str | None: ...
    @property
    def address(self) -> tuple[str, ...]: ...


def seller_as_creditor(seller: Seller) -> Creditor | None:
    """The seller of an imported e-invoice (BG-4, its address BG-5) as the creditor a preview
    prints: its name, address, and the SIREN and VAT number that pass their checks. None
    without a name. No legal form, capital or registry: the invoice does not state them."""
    if not seller.name:
        return None
    siren = seller.siren if seller.siren and identity.siren_problem(seller.siren) is None else None
    vat = identity.compact(seller.vat_id) if seller.vat_id else None
    if vat is not None and identity.vat_problem(vat, siren) is not None:
        vat = None
    return Creditor(name=seller.name[:200], address=seller.address, siren=siren, vat_number=vat)


def with_creditor(policies: PolicySet, creditor: Creditor) -> PolicySet:
    """``policies`` with ``creditor`` in place of every creditor still the shipped example's
    (a creditor configured by the operator stays)."""

    def fill(policy: Policy) -> Policy:
        return policy.model_copy(update={"creditor": creditor}) if example_keys(policy.creditor) else policy

    return policies.each(fill)
