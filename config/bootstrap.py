"""The composition root: the only place that picks concrete adapters from the settings.

``build_app`` wires store, policy, templates, channels and clock; every part can be
replaced by keyword (tests and ``relance simulate`` do). Nothing connects at import time.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from email.utils import parseaddr
from pathlib import Path
from typing import Any

import structlog
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from adapters.compose import FontMissing
from adapters.composer import DocumentComposer
from adapters.dunning_store import SqlDunningStore
from adapters.handover import PartnerLinks
from adapters.publisher import DramatiqPublisher
from adapters.signals import SignalPoster
from adapters.store import (
    SqlUnitsOfWork,
    StoreUnavailable,
    check_connection,
    make_engine,
    migrate,
    schema_is_current,
    session_factory,
)
from adapters.transports import FileDrop, SmtpMailer
from config.creditor import warn_about_creditors
from config.creditors import CreditorEntry, FileCreditors, SmtpAccount, creditor_policies, smtp_password
from config.errors import ConfigError
from config.partners import load_partners
from config.policy import load_policy_set, load_rates
from config.settings import Settings, load_settings
from config.webhooks import load_webhooks
from handlers.context import Context
from handlers.dossier.sample import check_templates
from handlers.plans import TEMPLATES as INSTALLMENT_TEMPLATES
from handlers.policy import Policy, PolicySet, RateTable
from handlers.ports import Clock, OffsetClock, Publisher, SystemClock, Transport, UnitsOfWork
from handlers.rates import HalfYearWithoutRate, rates_due_soon
from handlers.render import Renderer, TemplateProblem

log = structlog.get_logger("relance.rates")


@dataclass
class App:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    units: UnitsOfWork  # what the use cases open their transactions with
    ctx: Context
    clock: Clock
    transports: Mapping[str, Transport]
    publisher: Publisher | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def embedded_store(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def dispose(self) -> None:
        self.engine.dispose()


def make_clock(settings: Settings) -> Clock:
    return OffsetClock(settings.now, settings.now_since) if settings.now is not None else SystemClock()


def make_transports(settings: Settings) -> dict[str, Transport]:
    outbox = settings.outbox_dir
    email: Transport
    if settings.smtp_host:
        email = SmtpMailer(
            settings.smtp_host,
            settings.smtp_port,
            settings.smtp_tls,
            settings.smtp_user,
            _secret(settings.smtp_secret()),
            settings.smtp_timeout,
            settings.smtp_ca_file,
            deadline=settings.smtp_deadline,
        )
    else:
        email = FileDrop(outbox / "email", ".eml")
    return {
        "email": email,
        "letter": FileDrop(outbox / "letters", ".pdf"),
        "registered_letter": FileDrop(outbox / "registered", ".pdf", tracking=True),
    }


def _secret(value: str | None) -> SecretStr | None:
    return SecretStr(value) if value is not None else None


MESSAGE_ID_KEY_FILE = "message-id.key"


def message_id_key(settings: Settings) -> bytes:
    """The key of the Message-IDs' keyed part: ``RELANCE_MESSAGE_ID_KEY``, else the file
    ``message-id.key`` in the data dir, written (mode 0600) with 32 random bytes on first use."""
    if settings.message_id_key is not None:
        return settings.message_id_key.get_secret_value().encode("utf-8")
    path = settings.data_dir / MESSAGE_ID_KEY_FILE
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        pass
    except ValueError as exc:
        raise ConfigError(f"{path}: not a hexadecimal key") from exc
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process wrote it first
        return bytes.fromhex(path.read_text().strip())
    key = secrets.token_bytes(32)
    with os.fdopen(fd, "w") as file:
        file.write(key.hex() + "\n")
    return key


def _key_bytes(value: SecretStr | None) -> bytes | None:
    return value.get_secret_value().encode("utf-8") if value is not None else None


def message_domain(sender: str) -> str:
    address = parseaddr(sender)[1]
    if "@" not in address:
        raise ConfigError(f"RELANCE_SENDER: {sender!r} is not an e-mail address")
    return address.rsplit("@", 1)[1]


def sample_context(policy: Policy) -> dict[str, Any]:
    """Data shaped like a real message, to render every template once at start-up."""
    invoice = {
        "number": "F-0001",
        "issue_date": date(2026, 1, 5),
        "due_date": date(2026, 2, 4),
        "currency": "EUR",
        "amount_due": Decimal("1200.00"),
        "balance": Decimal("1000.00"),
        "paid_so_far": Decimal("200.00"),
        "paid_on_penalties": Decimal("1.50"),
        "late_interest": Decimal("12.34"),
        "indemnity": Decimal("40.00"),
        "rate": Decimal("0.1215"),
    }
    totals = {
        "balance": Decimal("1000.00"),
        "late_interest": Decimal("12.34"),
        "indemnity": Decimal("40.00"),
        "claimed": Decimal("1052.34"),
    }
    return {
        "debtor": {"name": "Exemple SARL", "address": {}, "id": "D-1"},
        "creditor": policy.creditor,
        "invoices": [invoice],
        "totals": totals,
        "currency": "EUR",
        "today": date(2026, 3, 16),
        "deadline": date(2026, 3, 24),
        "consumer": False,
        "public": False,
        "mediator": policy.mediator,  # shown when set, as after a consumer's rejected dispute
        "others": [invoice],
        # a coming-due invoice mentioned outside the amount demanded
        "upcoming": [
            {
                "number": "F-0002",
                "due_date": date(2026, 3, 20),
                "balance": Decimal("500.00"),
                "currency": "EUR",
            }
        ],
        "payment_urls": ["https://pay.example/1"],
        "count": 1,  # invoices claimed; past the policy's max_listed_invoices, ``summary`` says
        "summary": None,  # of the ones not listed (handlers.reminders.bounded)
        "installments": [
            {
                "seq": 1,
                "count": 2,
                "due_date": date(2026, 3, 20),
                "amount": Decimal("500.00"),
                "paid": Decimal("100.00"),
                "due": Decimal("400.00"),
            }
        ],
        "plan": {"invoices": ["F-0001"], "remaining": Decimal("900.00"), "installments_left": 2},
    }


def make_context(settings: Settings, policy: Policy | None = None) -> Context:
    """The service's context (creditor ``default``), with the context of each creditor of
    the creditors file (``config.creditors``) in ``others``."""
    policies = PolicySet(policy) if policy is not None else load_policy_set(settings.policy_file)
    rates = load_rates(settings.rates_file)
    policies.rates = rates  # event handlers compute the penalties still owed on a paid invoice
    renderer = _checked_renderer(settings.template_dir, policies, rates)
    ctx = Context(
        policies=policies,
        rates=rates,
        renderer=renderer,
        sender=settings.sender,
        message_domain=message_domain(settings.sender),
        message_key=message_id_key(settings),
        status_key=_key_bytes(settings.delivery_status_key),
        lease=timedelta(seconds=settings.claim_lease_seconds),
        partners=load_partners(settings.partners_file),
        composer=_composer(),
        dunning=SqlDunningStore,
        partner_link=PartnerLinks(),
        max_copies=settings.smtp_max_copies,
        webhooks=load_webhooks(settings.webhooks_file),
        signal_link=SignalPoster(),
    )
    if settings.creditors_file is None:
        return ctx

    def build(entries: dict[str, CreditorEntry]) -> dict[str, Context]:
        return {name: _creditor_context(settings, ctx, name, entry) for name, entry in entries.items()}

    return replace(ctx, others=FileCreditors(settings.creditors_file, build))


def _checked_renderer(template_dir: Path | None, policies: PolicySet, rates: RateTable) -> Renderer:
    renderer = Renderer(template_dir)
    try:
        for each in policies.all:
            renderer.check(
                [*(s.template for s in each.steps if not s.manual), *INSTALLMENT_TEMPLATES],
                sample_context(each),
            )
        check_templates(renderer, policies, rates)
    except TemplateProblem as exc:
        raise ConfigError(str(exc)) from exc
    return renderer


def _creditor_context(settings: Settings, service: Context, name: str, entry: CreditorEntry) -> Context:
    """A creditor's own context: what its entry sets, the service's for the rest."""
    path = settings.creditors_file
    assert path is not None  # there are entries
    label, base = f"{path}: [{name}]", path.parent
    policies = creditor_policies(label, base, entry, service.policies)
    policies.rates = service.rates
    templates = base / entry.templates if entry.templates is not None else settings.template_dir
    renderer = service.renderer
    if entry.templates is not None or entry.policy is not None or entry.creditor:
        renderer = _checked_renderer(templates, policies, service.rates)
    sender = entry.sender or service.sender
    return replace(
        service,
        creditor=name,
        policies=policies,
        renderer=renderer,
        sender=sender,
        reply_to=entry.reply_to,
        message_domain=message_domain(sender),
        partners=load_partners(base / entry.partners) if entry.partners is not None else None,
        transports=_creditor_mail(settings, label, entry.smtp) if entry.smtp is not None else None,
    )


def _creditor_mail(settings: Settings, label: str, account: SmtpAccount) -> dict[str, Transport]:
    mailer = SmtpMailer(
        account.host,
        account.port,
        account.tls,
        account.user,
        _secret(smtp_password(label, account)),
        settings.smtp_timeout,
        settings.smtp_ca_file,
        deadline=settings.smtp_deadline,
    )
    return {"email": mailer}


def _composer() -> DocumentComposer:
    try:
        return DocumentComposer()
    except FontMissing as exc:
        raise ConfigError(str(exc)) from exc


def build_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    policy: Policy | None = None,
    transports: Mapping[str, Transport] | None = None,
    publisher: Publisher | None = None,
    engine: Engine | None = None,
) -> App:
    """Everything the service needs, from settings; any part can be given instead."""
    settings = settings or load_settings()
    engine = engine or make_engine(settings.effective_database_url)
    sessions = session_factory(engine)
    ctx = make_context(settings, policy)
    sessions.configure(info={"webhooks": ctx.webhooks})  # who the units of work record signals for
    return App(
        settings=settings,
        engine=engine,
        sessions=sessions,
        units=SqlUnitsOfWork(sessions),
        ctx=ctx,
        clock=clock or make_clock(settings),
        transports=transports or make_transports(settings),
        publisher=publisher,
    )


def check_store(app: App) -> None:
    """Raise StoreUnavailable, naming the setting the database comes from, when it does not answer."""
    try:
        check_connection(app.engine)
    except StoreUnavailable as exc:
        setting = "RELANCE_DATABASE_URL" if app.settings.database_url else "RELANCE_DATA_DIR"
        raise StoreUnavailable(f"{setting}: {exc}") from exc


def prepare_store(app: App, *, auto_migrate: bool) -> None:
    """Check the database answers and its schema is current (migrating when allowed)."""
    check_store(app)
    if schema_is_current(app.engine):
        return
    if not auto_migrate:
        raise ConfigError("the database schema is not current: run `relance migrate` first")
    migrate(app.engine)


def warn_at_start(app: App) -> None:
    """What the service says once when it starts (``relance run``, ``worker``,
    ``scheduler``): half-years without a rate, a creditor identity still the example's or
    short of its legal mentions. Read-only commands and previews stay quiet."""
    warn_about_rates(app)
    warn_about_creditors(app.ctx.policies)
    for creditor, context in app.ctx.others.items():
        warn_about_creditors(context.policies, creditor)


def warn_about_rates(app: App) -> list[HalfYearWithoutRate]:
    """Log the half-years without a rate that have started or start within 30 days.

    ``rates.missing_soon`` (warning) before the half-year starts, ``rates.missing``
    (error) once it has started: penalties of that half-year cannot be computed until the
    operator adds it to the rate table. Days are counted in the default policy's time zone,
    on the app's clock.
    """
    found = rates_due_soon(app.ctx.rates, app.clock.now(), app.ctx.policy.timezone)
    for each in found:
        event = "rates.missing" if each.started else "rates.missing_soon"
        getattr(log, each.level)(
            event,
            half_year=each.half_year,
            starts_on=each.starts_on.isoformat(),
            days_left=each.days_left,
            rates_file=str(app.settings.rates_file or "config/rates.toml"),
        )
    return found


def attach_publisher(app: App, broker: Any) -> App:
    """Publish through ``broker`` (a Dramatiq broker built by ``worker.broker.make_broker``)."""
    app.publisher = DramatiqPublisher(broker)
    return app
