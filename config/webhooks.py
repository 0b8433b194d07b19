"""Load and validate the webhooks file; errors name the file and the key, never a secret.

```toml
max_attempts = 10

[subscribers.erp]
url = "https://erp.example/relance/signals"
secret_env = "RELANCE_ERP_WEBHOOK_KEY"
events = ["debtor.level_changed", "case.opened", "case.closed", "invoice.settled"]
creditors = ["default"]  # optional: every creditor when left out
```

A URL is ``https://``, or ``http://`` to a loopback host only (an agent on the same machine).
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from config.errors import ConfigError
from config.partners import _ENV_NAME, _NAME, MIN_SECRET_LENGTH
from config.policy import _read_toml, _validate
from handlers.webhooks import SIGNAL_TYPES, Subscriber, Webhooks


class SubscriberEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str
    secret_env: str
    events: list[str] = Field(min_length=1)
    creditors: list[str] | None = None
    timeout: float = Field(10.0, gt=0, le=60)


class WebhooksFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_attempts: int = Field(10, ge=1, le=100)
    subscribers: dict[str, SubscriberEntry] = Field(default_factory=dict)


def load_webhooks(path: Path | None) -> Webhooks | None:
    """The subscribers at ``path`` with their secrets read; None when no file is configured."""
    if path is None:
        return None
    label, data = _read_toml(path, "")
    parsed = _validate(WebhooksFile, label, data)
    subscribers = {
        name: _subscriber(f"{label}: subscribers.{name}", name, e) for name, e in parsed.subscribers.items()
    }
    return Webhooks(subscribers, parsed.max_attempts)


def _subscriber(where: str, name: str, entry: SubscriberEntry) -> Subscriber:
    if not _NAME.match(name):
        raise ConfigError(
            f"{where}: a subscriber name is lower case letters, digits, '_' or '-', "
            "starting with a letter, at most 40 characters"
        )
    _check_url(where, entry.url)
    unknown = [e for e in entry.events if e not in SIGNAL_TYPES]
    if unknown:
        raise ConfigError(f"{where}.events: unknown {unknown[0]!r} (known: {', '.join(SIGNAL_TYPES)})")
    if entry.creditors is not None and not entry.creditors:
        raise ConfigError(f"{where}.creditors: empty; leave it out for every creditor")
    return Subscriber(
        name=name,
        url=entry.url,
        secret=SecretStr(_secret(where, entry.secret_env)),
        events=frozenset(entry.events),
        creditors=frozenset(entry.creditors) if entry.creditors is not None else None,
        timeout=entry.timeout,
    )


def _check_url(where: str, url: str) -> None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        raise ConfigError(f"{where}.url: not a valid URL: {exc}") from exc
    if not parts.hostname or parts.scheme not in ("https", "http"):
        raise ConfigError(f"{where}.url: must be an https:// URL with a host")
    if parts.username or parts.password:
        raise ConfigError(f"{where}.url: must not contain credentials; the request is signed")
    if parts.scheme == "http" and not _loopback(parts.hostname):
        raise ConfigError(
            f"{where}.url: http:// only to a loopback host (localhost, 127.0.0.1, ::1); use https://"
        )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _secret(where: str, env: str) -> str:
    """The HMAC key from the environment variable; its value is never shown."""
    if not _ENV_NAME.match(env):
        raise ConfigError(f"{where}.secret_env: {env!r} is not an environment variable name")
    value = os.environ.get(env, "").strip()
    if not value:
        raise ConfigError(f"{where}.secret_env: the environment variable {env} is not set or empty")
    if len(value) < MIN_SECRET_LENGTH:
        raise ConfigError(f"{where}.secret_env: the key must be at least {MIN_SECRET_LENGTH} characters long")
    return value
