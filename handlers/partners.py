"""Partners that escalated cases are handed to, and which procedure goes to which partner.

Loaded from the partners file (``RELANCE_PARTNERS_FILE``, see ``config/partners.py``) with
their secrets already read; without that file there is no automatic hand-over and every
case stays open for a person.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import SecretStr

from handlers.procedure_table import TABLE

PROCEDURES = tuple(row.code for row in TABLE)  # every procedure a case may be recommended
KINDS = ("collection_agency", "commissaire_de_justice", "factor", "internal")
CHANNELS = ("email", "webhook")


@dataclass(frozen=True)
class Partner:
    """One partner and how its dossiers reach it (the secret is never shown in a repr)."""

    name: str
    kind: str  # collection_agency | commissaire_de_justice | factor | internal
    channel: str  # email | webhook
    email: str | None = None
    url: str | None = None
    secret: SecretStr | None = field(default=None, repr=False)
    timeout: float = 30.0
    max_dossier_bytes: int = 10 * 1024 * 1024


@dataclass(frozen=True)
class Partners:
    """The configured partners and the procedure -> partner map."""

    partners: Mapping[str, Partner]
    procedures: Mapping[str, str]
    max_attempts: int = 10

    def get(self, name: str) -> Partner | None:
        return self.partners.get(name)

    def for_procedure(self, procedure: str) -> Partner | None:
        name = self.procedures.get(procedure)
        return self.partners.get(name) if name else None
