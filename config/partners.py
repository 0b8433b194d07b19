"""Load and validate the partners file; errors name the file and the key, never a secret.

```toml
max_attempts = 10

[partners.agence_nord]
kind = "collection_agency"
channel = "webhook"
url = "https://api.agence-nord.example/v1/cases"
secret_env = "AGENCE_NORD_HMAC_KEY"

[partners.etude_martin]
kind = "commissaire_de_justice"
channel = "email"
email = "dossiers@etude-martin.example"

[procedures]
procedure_simplifiee = "etude_martin"
injonction_de_payer = "agence_nord"
```
"""

from __future__ import annotations

import os
import re
from email.utils import parseaddr
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from config.errors import ConfigError
from config.policy import _read_toml, _validate
from handlers.partners import PROCEDURES, Partner, Partners

_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MIN_SECRET_LENGTH = 16


class PartnerEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["collection_agency", "commissaire_de_justice", "factor", "internal"]
    channel: Literal["email", "webhook"]
    email: str | None = None
    url: str | None = None
    secret_env: str | None = None
    secret_file: Path | None = None
    timeout: float = Field(30.0, gt=0, le=120)
    max_dossier_bytes: int = Field(10 * 1024 * 1024, ge=0, le=100 * 1024 * 1024)


class PartnersFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_attempts: int = Field(10, ge=1, le=100)
    partners: dict[str, PartnerEntry] = Field(default_factory=dict)
    procedures: dict[str, str] = Field(default_factory=dict)


def load_partners(path: Path | None) -> Partners | None:
    """The partners at ``path`` with their secrets read; None when no file is configured."""
    if path is None:
        return None
    label, data = _read_toml(path, "")
    parsed = _validate(PartnersFile, label, data)
    partners = {name: _partner(label, path.parent, name, entry) for name, entry in parsed.partners.items()}
    for procedure, name in parsed.procedures.items():
        if procedure not in PROCEDURES:
            raise ConfigError(
                f"{label}: procedures.{procedure}: unknown procedure (known: {', '.join(PROCEDURES)})"
            )
        if name not in partners:
            known = ", ".join(partners) or "none defined"
            raise ConfigError(f"{label}: procedures.{procedure}: no partner named {name!r} (known: {known})")
    return Partners(partners, dict(parsed.procedures), parsed.max_attempts)


def _partner(label: str, base: Path, name: str, entry: PartnerEntry) -> Partner:
    where = f"{label}: partners.{name}"
    if not _NAME.match(name):
        raise ConfigError(
            f"{where}: a partner name is lower case letters, digits, '_' or '-', "
            "starting with a letter, at most 40 characters"
        )
    if entry.channel == "email":
        for key in ("url", "secret_env", "secret_file"):
            if getattr(entry, key) is not None:
                raise ConfigError(f'{where}.{key}: not used with channel = "email"')
        address = parseaddr(entry.email or "")[1]
        if "@" not in address or address != (entry.email or "").strip():
            raise ConfigError(
                f'{where}.email: an e-mail address is required with channel = "email" (got {entry.email!r})'
            )
        return Partner(
            name,
            entry.kind,
            "email",
            email=address,
            timeout=entry.timeout,
            max_dossier_bytes=entry.max_dossier_bytes,
        )
    if entry.email is not None:
        raise ConfigError(f'{where}.email: not used with channel = "webhook"')
    _check_url(where, entry.url)
    secret = _secret(where, base, entry)
    return Partner(
        name,
        entry.kind,
        "webhook",
        url=entry.url,
        secret=SecretStr(secret),
        timeout=entry.timeout,
        max_dossier_bytes=entry.max_dossier_bytes,
    )


def _check_url(where: str, url: str | None) -> None:
    if not url:
        raise ConfigError(f'{where}.url: required with channel = "webhook"')
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"{where}.url: not a valid URL: {exc}") from exc
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigError(f"{where}.url: must be an https:// (or http://) URL with a host")
    if parts.username or parts.password:
        raise ConfigError(
            f"{where}.url: must not contain credentials; the request is signed "
            "with the key of secret_env or secret_file"
        )
    if port == 0:
        raise ConfigError(f"{where}.url: port 0 is not valid")


def _secret(where: str, base: Path, entry: PartnerEntry) -> str:
    """The HMAC key from the environment variable or the file; its value is never shown."""
    if (entry.secret_env is None) == (entry.secret_file is None):
        raise ConfigError(f'{where}: give exactly one of secret_env and secret_file with channel = "webhook"')
    if entry.secret_env is not None:
        if not _ENV_NAME.match(entry.secret_env):
            raise ConfigError(f"{where}.secret_env: {entry.secret_env!r} is not an environment variable name")
        value = os.environ.get(entry.secret_env, "").strip()
        if not value:
            raise ConfigError(
                f"{where}.secret_env: the environment variable {entry.secret_env} is not set or empty"
            )
        key = "secret_env"
    else:
        assert entry.secret_file is not None
        file = entry.secret_file if entry.secret_file.is_absolute() else base / entry.secret_file
        try:
            value = file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{where}.secret_file: cannot read {file}: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{where}.secret_file: {file} is not UTF-8 text") from exc
        if not value:
            raise ConfigError(f"{where}.secret_file: {file} is empty")
        key = "secret_file"
    if len(value) < MIN_SECRET_LENGTH:
        raise ConfigError(f"{where}.{key}: the key must be at least {MIN_SECRET_LENGTH} characters long")
    return value
