"""From a case's snapshot to the files of its dossier, without the store.

``dossier_files`` gives every file by relative name (``/``-separated), the manifest last;
``archive`` packs them into a deterministic ZIP and ``write_files`` into a folder.
"""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime
from pathlib import Path

from handlers.calendar import local_date
from handlers.context import Context
from handlers.dossier import markdown
from handlers.dossier.computation import computed_on as computation_day
from handlers.dossier.computation import details_on, live_update
from handlers.dossier.data import DossierData
from handlers.dossier.proofs import (
    deliveries,
    evidence_lines,
    manifest,
    message_files,
    to_json,
    verification_text,
)
from handlers.dossier.summary import summary_data
from handlers.procedure_views import case_options

INJONCTION = "injonction_de_payer"


def dossier_files(data: DossierData, now: datetime, ctx: Context) -> dict[str, bytes]:
    """Every file of the dossier of ``data``, exported at ``now``, under ``ctx``'s policies,
    rate table and templates."""
    policies, rates = ctx.policies, ctx.rates
    case, debtor = data.case, data.debtor
    day = computation_day(case, debtor, data.records)
    details = details_on(data.invoices, debtor, day, policies, rates)
    export_day = local_date(now, debtor.timezone)
    live = live_update(case, data.invoices, debtor, export_day, day, policies, rates)
    policy = policies.for_debtor(debtor)
    names = message_files(data.messages)
    options = case_options(case, debtor, data.invoices, policy, export_day)
    summary = summary_data(data, names, policy.creditor, details, day, live, export_day, now, rates, options)

    files: dict[str, bytes] = {name: m.content for m, name in zip(data.messages, names, strict=True)}
    files["summary.md"] = markdown.summary_md(ctx.renderer, summary).encode("utf-8")
    files["summary.json"] = to_json(summary)
    files["deliveries.json"] = to_json(deliveries(data.messages, names))
    files["evidence.jsonl"] = evidence_lines(data.records)
    files["verification.txt"] = verification_text(data.check, data.head, now).encode("utf-8")
    if case.recommended_procedure == INJONCTION:
        pairs = list(zip(data.messages, names, strict=True))
        files["injonction_de_payer.md"] = markdown.injonction_md(ctx.renderer, summary, pairs).encode("utf-8")
    files = dict(sorted(files.items()))
    files["manifest.json"] = manifest(case.id, files, now)
    return files


def archive(files: dict[str, bytes], now: datetime) -> bytes:
    """The files as a ZIP: sorted names, every entry dated ``now`` (deterministic)."""
    stamp = now.astimezone(UTC).timetuple()[:6]
    if stamp[0] < 1980:  # the earliest date a ZIP entry can carry
        stamp = (1980, 1, 1, 0, 0, 0)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as packed:
        for name in sorted(files):
            entry = zipfile.ZipInfo(name, date_time=stamp)
            entry.create_system = 3
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            packed.writestr(entry, files[name], compresslevel=9)
    return buffer.getvalue()


def check_folder(folder: Path) -> None:
    """Refuse anything but a new or empty folder (raises FileExistsError)."""
    if folder.exists() and not folder.is_dir():
        raise FileExistsError(f"{folder}: exists and is not a folder")
    if folder.is_dir() and any(folder.iterdir()):
        raise FileExistsError(f"{folder}: folder is not empty; give a new or empty folder")


def write_files(files: dict[str, bytes], folder: Path) -> list[Path]:
    """Write ``files`` under ``folder``; return their paths."""
    written = []
    for name, content in files.items():
        path = folder.joinpath(*name.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        written.append(path)
    return written
