"""Settings read from environment variables (prefix ``RELANCE_``), validated once, frozen.

Every setting has a default that gives the embedded mode: SQLite under the data dir, an
in-process broker, e-mails and letters written as files under ``<data dir>/outbox``.
Setting a database URL, a Redis URL or an SMTP host replaces the embedded part one by one.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from config.errors import ConfigError
from config.urls import check_database_url, check_redis_url


class Settings(BaseSettings):
    """Everything the service reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="RELANCE_", frozen=True, extra="ignore")

    data_dir: Path = Field(Path("var"), description="SQLite file and outbox of the embedded mode")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default SQLite in data dir")
    redis_url: str | None = Field(None, description="Redis URL of the Dramatiq broker")
    redis_namespace: str = Field("relance", description="Redis key prefix of the broker")
    heartbeat_timeout_ms: int = Field(5000, ge=1000, description="Dramatiq worker heartbeat")
    maintenance_chance: int = Field(100_000, ge=0, le=1_000_000, description="per million")

    smtp_host: str | None = Field(None, description="SMTP server; unset = .eml files")
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_password_file: Path | None = Field(None, description="file holding the SMTP password")
    smtp_tls: Literal["starttls", "tls", "none"] = "starttls"
    smtp_ca_file: Path | None = Field(None, description="extra CA bundle to verify the server")
    smtp_timeout: float = Field(30.0, gt=0)
    smtp_deadline_seconds: float = Field(
        120.0, gt=0, description="longest SMTP transaction (connect to the server's answer), in all"
    )
    smtp_max_copies: int = Field(
        2, ge=1, le=10, description="copies of a message that may reach the server after lost answers"
    )
    sender: str = Field("relance@localhost", description="From: address of e-mails")

    policy_file: Path | None = Field(None, description="policy TOML; default: built-in policy")
    rates_file: Path | None = Field(None, description="rate table TOML; default: built-in table")
    template_dir: Path | None = Field(None, description="folder overriding built-in templates")
    partners_file: Path | None = Field(None, description="partners TOML; unset = no hand-over")
    webhooks_file: Path | None = Field(None, description="webhooks TOML (signals out); unset = no signal")
    creditors_file: Path | None = Field(
        None, description="creditors TOML: the creditors besides default (docs/configuration.md#creditors)"
    )

    anchor_key: SecretStr | None = Field(None, description="key signing evidence head statements")
    message_id_key: SecretStr | None = Field(
        None, description="key of the Message-IDs' keyed part; unset = message-id.key in the data dir"
    )
    delivery_status_key: SecretStr | None = Field(
        None, description="key delivery statuses must be signed with; unset = no signature checked"
    )
    tsa_url: str | None = Field(None, description="RFC 3161 time-stamping authority; unset = none")
    # personal data is kept while the claim can be pursued (docs/configuration.md#personal-data):
    # 5 years between traders (C. com. L110-4), 2 years against a consumer (C. conso L218-2)
    personal_data_retention_days: int = Field(
        1826, ge=1, description="days a business debtor's personal data is kept after its last change"
    )
    consumer_data_retention_days: int = Field(730, ge=1, description="the same for a consumer debtor")

    tick_seconds: float = Field(30.0, gt=0, description="scheduler tick interval")
    claim_lease_seconds: int = Field(300, ge=5, description="re-emit a claimed step after this")
    batch_size: int = Field(500, ge=1, le=100_000, description="steps claimed per batch")
    max_in_flight: int = Field(
        2000,
        ge=1,
        le=10_000_000,
        description="steps emitted and not yet handled, at most (keep it below lease x worker throughput)",
    )
    worker_batch: int = Field(
        50, ge=1, le=1000, description="due steps of one creditor per broker message (1 = one per step)"
    )
    now: datetime | None = Field(None, description="start the clock at this instant (testing)")
    now_since: float | None = Field(
        None, ge=0, description="Unix time at which the clock read RELANCE_NOW (testing)"
    )
    import_max_bytes: int = Field(
        20 * 1024 * 1024,
        ge=1,
        le=50 * 1024 * 1024,
        description="largest file the import_document actor accepts, in bytes once decoded",
    )
    worker_processes: int = Field(2, ge=1, le=64)
    worker_threads: int = Field(8, ge=1, le=256)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("now")
    @classmethod
    def _now_is_aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("needs a UTC offset, e.g. 2026-03-02T09:00:00+01:00")
        return value

    @field_validator("now_since")
    @classmethod
    def _since_needs_now(cls, value: float | None, info: ValidationInfo) -> float | None:
        if value is not None and info.data.get("now") is None:
            raise ValueError("set without RELANCE_NOW, the instant it dates")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url_is_usable(cls, value: str | None) -> str | None:
        return None if value is None else check_database_url(value)

    @field_validator("redis_url")
    @classmethod
    def _redis_url_is_usable(cls, value: str | None) -> str | None:
        return None if value is None else check_redis_url(value)

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'relance.db').resolve()}"

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / "outbox"

    @property
    def smtp_deadline(self) -> float:
        """The longest SMTP transaction: ``smtp_deadline_seconds``, never more than half the
        lease. A message's lease is what keeps a second worker from sending it while the first
        one is still transmitting (the first copy goes without a claim, within the first tenth
        of the lease); a transaction allowed to outlast the lease would let the scheduler emit
        the message again while the first transmission is still on the wire."""
        return min(self.smtp_deadline_seconds, self.claim_lease_seconds / 2)

    def smtp_secret(self) -> str | None:
        """The SMTP password, from the variable or the secret file (never logged)."""
        if self.smtp_password_file is not None:
            try:
                return self.smtp_password_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(
                    f"RELANCE_SMTP_PASSWORD_FILE: cannot read {self.smtp_password_file}: {exc.strerror}"
                ) from exc
        return self.smtp_password.get_secret_value() if self.smtp_password else None


def load_settings(**overrides: object) -> Settings:
    """Read the environment; a bad value raises ConfigError naming the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]  # validated by pydantic
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "RELANCE_" + "_".join(str(p) for p in first["loc"]).upper()
        hidden = "PASSWORD" in name or name.endswith("_URL")  # a URL may hold a password
        shown = "" if hidden else f" (got {first.get('input')!r})"
        message = first["msg"].removeprefix("Value error, ")
        raise ConfigError(f"{name}: {message}{shown}") from exc
