"""The creditors file (``RELANCE_CREDITORS_FILE``): the creditors other than ``default``
whose collections one service runs, each with its own identity and settings.

One TOML table per creditor, named by its id (the ``creditor_id`` of its events)::

    [atelier]
    policy = "atelier/policy.toml"      # its policy (steps, segments, [creditor]); default: the service's
    sender = "Atelier Durand <relances@atelier-durand.example>"
    reply_to = "compta@atelier-durand.example"
    partners = "atelier/partners.toml"  # its partners for hand-overs; default: none
    templates = "atelier/templates"     # its template overrides; default: the service's

    [atelier.creditor]                  # its identity on letters, over the policy's [creditor]
    name = "Atelier Durand SARL"
    address = ["3 quai des Arts", "69002 Lyon"]
    siren = "732 829 320"
    iban = "FR76 3000 6000 0112 3456 7890 189"
    bic = "AGRIFRPP"
    payment_link = "https://pay.atelier-durand.example/{invoice_number}"

    [atelier.smtp]                      # its own mail account; default: the service's
    host = "smtp.atelier-durand.example"
    port = 587
    tls = "starttls"
    user = "relances"
    password_env = "ATELIER_SMTP_PASSWORD"   # the password is read from this variable

Paths are relative to the creditors file. The file is read and checked when the service is
built: a mistake is one line naming the file, the creditor and the key.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Literal

import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from config.errors import ConfigError
from config.policy import _read_toml, load_policy_set
from handlers.context import Context
from handlers.events import CREDITOR_ID, DEFAULT_CREDITOR
from handlers.policy import Creditor, Policy, PolicySet

log = structlog.get_logger("relance.config")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SmtpAccount(_Strict):
    host: str = Field(min_length=1, max_length=253)
    port: int = Field(587, ge=1, le=65535)
    tls: Literal["starttls", "tls", "none"] = "starttls"
    user: str | None = None
    password_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")


class CreditorEntry(_Strict):
    """One creditor of the creditors file (see the module's docstring)."""

    policy: Path | None = None
    # one line each: they become headers of the e-mails
    sender: str | None = Field(None, min_length=3, max_length=300, pattern=r"^[^\r\n]+$")
    reply_to: str | None = Field(None, min_length=3, max_length=300, pattern=r"^[^\r\n]+$")
    partners: Path | None = None
    templates: Path | None = None
    creditor: dict[str, object] = Field(default_factory=dict)
    smtp: SmtpAccount | None = None


def read_creditors(path: Path | None) -> dict[str, CreditorEntry]:
    """The entries of the creditors file at ``path``, checked; none when no file is set."""
    if path is None:
        return {}
    label, data = _read_toml(path, "")
    entries: dict[str, CreditorEntry] = {}
    for name, value in data.items():
        where = f"{label}: [{name}]"
        _check_id(where, name)
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: a creditor is a table of settings")
        try:
            entries[name] = CreditorEntry.model_validate(value)
        except ValidationError as exc:
            first = exc.errors()[0]
            key = ".".join(str(part) for part in first["loc"])
            raise ConfigError(f"{where}.{key}: {first['msg']}") from None
    return entries


def _check_id(where: str, name: str) -> None:
    if name == DEFAULT_CREDITOR:
        raise ConfigError(f"{where}: 'default' is the service's own creditor, set by its own settings")
    if not re.fullmatch(CREDITOR_ID, name):
        raise ConfigError(f"{where}: a creditor id is 1 to 100 letters, digits, '.', '_' or '-'")


def creditor_policies(label: str, base: Path, entry: CreditorEntry, service: PolicySet) -> PolicySet:
    """The creditor's policies: its own file's, with its identity laid over each policy's
    ``[creditor]``; or the service's steps with its identity alone (the service's
    ``[creditor]`` is another company's: nothing of it is taken)."""
    if entry.policy is not None:
        policies = load_policy_set(_under(base, entry.policy))
        return _with_identity(label, policies, entry.creditor, own=True) if entry.creditor else policies
    return _with_identity(label, service, entry.creditor, own=False)


def _with_identity(label: str, policies: PolicySet, identity: dict[str, object], *, own: bool) -> PolicySet:
    def over(policy: Policy) -> Policy:
        merged = (policy.creditor.model_dump() if own else {}) | identity
        try:
            return policy.model_copy(update={"creditor": Creditor.model_validate(merged)})
        except ValidationError as exc:
            first = exc.errors()[0]
            key = ".".join(str(part) for part in first["loc"])
            raise ConfigError(f"{label}.creditor.{key}: {first['msg']}") from None

    return policies.each(over)


def smtp_password(label: str, account: SmtpAccount) -> str | None:
    """The account's password from the variable it names; a missing variable is an error."""
    if account.password_env is None:
        return None
    value = os.environ.get(account.password_env)
    if value is None:
        raise ConfigError(f"{label}.smtp.password_env: the variable {account.password_env} is not set")
    return value


def _under(base: Path, path: Path) -> Path:
    return path if path.is_absolute() else base / path


class FileCreditors(Mapping[str, Context]):
    """The contexts of the creditors file's creditors, by id; a creditor added to the file
    while the service runs is found without a restart.

    A lookup of an id it does not hold reads the file again when the file changed since it
    was last read (its modification time and size), and adds the contexts of the new
    creditors; those it already holds are kept as they are (a change to one of them needs
    a restart). A file that no longer reads is logged (``creditors.reload_failed``) and the
    creditors known so far are kept.
    """

    def __init__(self, path: Path, build: Callable[[dict[str, CreditorEntry]], dict[str, Context]]) -> None:
        self._path, self._build = path, build
        self._lock = threading.Lock()
        self._seen = self._stamp()
        self._contexts = build(read_creditors(path))

    def __getitem__(self, creditor: str) -> Context:
        found = self._contexts.get(creditor)
        if found is None and self._reloaded():
            found = self._contexts.get(creditor)
        if found is None:
            raise KeyError(creditor)
        return found

    def __iter__(self) -> Iterator[str]:
        return iter(dict(self._contexts))

    def __len__(self) -> int:
        return len(self._contexts)

    def _stamp(self) -> tuple[int, int] | None:
        try:
            found = self._path.stat()
        except OSError:
            return None
        return (found.st_mtime_ns, found.st_size)

    def _reloaded(self) -> bool:
        """Read the file again if it changed; whether new creditors were added."""
        with self._lock:
            stamp = self._stamp()
            if stamp == self._seen:
                return False
            self._seen = stamp
            try:
                entries = read_creditors(self._path)
                new = {name: entry for name, entry in entries.items() if name not in self._contexts}
                added = self._build(new)
            except ConfigError as exc:
                log.warning("creditors.reload_failed", file=str(self._path), reason=str(exc))
                return False
            if added:
                self._contexts = {**self._contexts, **added}
                log.info("creditors.added", file=str(self._path), creditors=sorted(added))
            return bool(added)
