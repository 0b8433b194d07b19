"""The case dossier from the store: read the case in the caller's transaction, then build
its files with the pure assembly (``handlers.dossier``); nothing is written to the store."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session

from adapters.dossier_read import read_dossier
from adapters.orm import creditor_of
from handlers.context import Context
from handlers.dossier import archive, check_folder, dossier_files, write_files


def dossier_content(session: Session, case_id: int, ctx: Context, now: datetime) -> dict[str, bytes]:
    """Every file of the dossier of case ``case_id`` by relative name, the manifest last;
    written with the context of the case's creditor (its identity and policy)."""
    data = read_dossier(session, case_id)
    return dossier_files(data, now, ctx.for_creditor(creditor_of(session)))


def write_dossier(session: Session, case_id: int, folder: Path, ctx: Context, now: datetime) -> list[Path]:
    """Write the dossier of case ``case_id`` into ``folder`` (new or empty); return the files."""
    folder = Path(folder)
    check_folder(folder)
    files = dossier_content(session, case_id, ctx, now)  # before creating anything: may raise
    return write_files(files, folder)


def dossier_archive(session: Session, case_id: int, ctx: Context, now: datetime) -> bytes:
    """The same files as a ZIP: sorted names, every entry dated ``now`` (deterministic)."""
    return archive(dossier_content(session, case_id, ctx, now), now)
