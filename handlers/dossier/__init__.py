"""The case dossier: what a lawyer or commissaire de justice needs, as files (docs/dossier.md).

One case gives ``summary.md`` / ``summary.json`` (parties, invoices, payments, the penalty
computation per half-year segment, the recommended procedure), ``messages/`` (the exact
stored bytes of every e-mail and letter sent about the case's invoices), ``deliveries.json``,
``evidence.jsonl`` (the case's records of the evidence chain, with their hashes),
``verification.txt`` (the whole chain recomputed), ``injonction_de_payer.md`` when that is the
recommended procedure, and ``manifest.json`` (the SHA-256 of every other file).

This package is the pure part: it builds the files from a ``DossierData`` snapshot. The
snapshot is read from the store by ``adapters.dossier_read``, and ``adapters.dossier`` holds
the entry points that take a session (``write_dossier``, ``dossier_archive``).
"""

from handlers.dossier.assemble import archive, check_folder, dossier_files, write_files
from handlers.dossier.data import (
    CaseData,
    DebtorData,
    DossierData,
    InvoiceData,
    MessageData,
    PaymentData,
    RecordData,
)

__all__ = [
    "CaseData",
    "DebtorData",
    "DossierData",
    "InvoiceData",
    "MessageData",
    "PaymentData",
    "RecordData",
    "archive",
    "check_folder",
    "dossier_files",
    "write_files",
]
