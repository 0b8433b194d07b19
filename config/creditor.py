"""Start-up warnings about the creditor's identity: still the shipped example, or short of
the legal mentions a company's letters need (C. com. R123-237).

Not errors: a policy may be previewed (`relance simulate`) before it is finished. Each
policy with its own creditor is checked once, when the service is built.
"""

from __future__ import annotations

import tomllib
from functools import lru_cache
from importlib import resources

import structlog

from handlers.identity import missing_mentions
from handlers.policy import Creditor, PolicySet

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
