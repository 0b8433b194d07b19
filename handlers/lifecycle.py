"""The e-invoicing lifecycle statuses of the French reform (the DGFiP's list of codes) and
what each does to dunning: one pure table, read by ``handlers.statuses`` (which applies
the effects), the event contract (which codes exist, which need an amount) and the docs.

Every status is evidence, whatever its effect: it is kept in the evidence chain with its
code, label and reason, and shown in the case dossier (docs/import.md, docs/dossier.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Effect = Literal[
    "never_issued",  # 213, 501: deemed never issued, everything stops, no penalties
    "refused",  # 210: closed as refused, never chased, no case
    "dispute",  # 207: the invoice is disputed (as invoice.disputed)
    "suspend",  # 208: held until 209
    "complete",  # 209: lifts the hold of 208
    "approve_part",  # 206: only the approved amount is chased
    "payment_sent",  # 211: a short hold, then dunning resumes if no funds came
    "cashed",  # 212: a payment of the amount (or of the balance)
    "factored",  # 225, 226: the factor collects, dunning stops
    "evidence",  # everything else: kept as evidence only
]


@dataclass(frozen=True)
class Status:
    code: str
    label: str  # as the DGFiP names it
    effect: Effect
    mandatory: bool = False  # one of the four statuses every platform must exchange


STATUSES: tuple[Status, ...] = (
    Status("200", "Déposée", "evidence", mandatory=True),
    Status("201", "Émise par la plateforme", "evidence"),
    Status("202", "Reçue par la plateforme", "evidence"),
    Status("203", "Mise à disposition", "evidence"),  # evidence of receipt
    Status("204", "Prise en charge", "evidence"),
    Status("205", "Approuvée", "evidence"),  # evidence of acceptance
    Status("206", "Approuvée partiellement", "approve_part"),
    Status("207", "En litige", "dispute"),
    Status("208", "Suspendue", "suspend"),
    Status("209", "Complétée", "complete"),
    Status("210", "Refusée", "refused", mandatory=True),
    Status("211", "Paiement transmis", "payment_sent"),
    Status("212", "Encaissée", "cashed", mandatory=True),
    Status("213", "Rejetée", "never_issued", mandatory=True),
    Status("214", "Visée", "evidence"),
    Status("220", "Annulée", "evidence"),
    Status("221", "Erreur de routage", "evidence"),
    Status("224", "Demande de paiement direct", "evidence"),
    Status("225", "Affacturée", "factored"),
    Status("226", "Affacturée confidentiel", "factored"),
    Status("227", "Changement de compte à payer", "evidence"),
    Status("228", "Non affacturée", "evidence"),
    Status("501", "Irrecevable", "never_issued"),
)
BY_CODE: dict[str, Status] = {s.code: s for s in STATUSES}

# the statuses whose event must carry an amount: the approved part
AMOUNT_REQUIRED: frozenset[str] = frozenset({"206"})
# the statuses an amount means something for (212: the sum cashed; absent, the balance)
AMOUNT_ALLOWED: frozenset[str] = frozenset({"206", "212"})

SUSPENDED_HOLD = "status 208"  # the hold reason of a 208, lifted by a 209
PAYMENT_SENT_HOLD = "status 211"  # the hold reason of a 211, lifted at its last day


def status_of(code: str) -> Status:
    """The status of a known code (KeyError otherwise: the contract refuses unknown codes)."""
    return BY_CODE[code]


def is_status_hold(reason: str | None) -> bool:
    """Whether a hold was put by a status (208, 211) rather than by a person."""
    return reason in (SUSPENDED_HOLD, PAYMENT_SENT_HOLD)
