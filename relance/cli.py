"""The ``relance`` command (docs/cli.md). Every failure is one line and a non-zero exit."""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from adapters.store import StoreUnavailable
from config.errors import ConfigError
from config.logging import configure_logging
from config.settings import Settings, load_settings
from handlers.events import DEFAULT_CREDITOR
from handlers.manual import OUTCOMES

if TYPE_CHECKING:
    from intake.importing import Files

EXIT_USAGE = 2


class CommandError(Exception):
    """A problem with what the operator asked; printed as one line, exit 2."""


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {}
    if getattr(args, "data_dir", None):
        overrides["data_dir"] = Path(args.data_dir)
    if getattr(args, "policy", None):
        overrides["policy_file"] = Path(args.policy)
    settings = load_settings(**overrides)
    configure_logging(settings.log_level)
    return settings


def _app(args: argparse.Namespace, *, auto_migrate: bool = False):
    from config.bootstrap import build_app, prepare_store

    app = build_app(_settings(args))
    prepare_store(app, auto_migrate=auto_migrate or app.embedded_store)
    return app


def cmd_run(args: argparse.Namespace) -> int:
    from relance.service import run_all_in_one

    return run_all_in_one(_settings(args))


def _needs_redis(settings: Settings, command: str) -> None:
    if not settings.redis_url:
        raise CommandError(
            f"`relance {command}` needs RELANCE_REDIS_URL (a shared broker); "
            "for the embedded mode use `relance run`"
        )


def cmd_worker(args: argparse.Namespace) -> int:
    from relance.service import exec_dramatiq_workers

    settings = _settings(args)
    _needs_redis(settings, "worker")
    return exec_dramatiq_workers(settings)


def cmd_scheduler(args: argparse.Namespace) -> int:
    from relance.service import run_scheduler_only

    settings = _settings(args)
    _needs_redis(settings, "scheduler")
    return run_scheduler_only(settings)


def cmd_migrate(args: argparse.Namespace) -> int:
    from adapters.store import migrate
    from config.bootstrap import build_app, check_store

    app = build_app(_settings(args))
    check_store(app)
    revision = migrate(app.engine)
    print(f"schema at revision {revision}")
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    from intake.ingest import ingest_files, ingest_stream

    files: list[str] = args.file
    if "-" in files and len(files) > 1:
        raise CommandError("- (stdin) is read alone, not with other files")
    if args.jobs < 1:
        raise CommandError(f"--jobs {args.jobs}: at least 1")
    for path in files:
        if path != "-" and not Path(path).is_file():
            raise CommandError(f"{path}: no such file")
    app = _app(args)
    if files == ["-"]:
        counts = ingest_stream(app, sys.stdin.buffer, "<stdin>", sys.stdout)
    else:
        try:
            counts = ingest_files(app, files, sys.stdout, jobs=args.jobs)
        except FileNotFoundError as exc:
            raise CommandError(f"{exc.filename}: no such file") from exc
    return 1 if counts["rejected"] else 0


def _files(paths: list[str], what: str) -> Files:
    """The files of ``paths`` (a folder: its files in name order); none is an error."""
    from intake.importing import NoSuchFile, files_of

    try:
        files = files_of(paths)
    except NoSuchFile as exc:
        raise CommandError(str(exc)) from exc
    if not files:
        raise CommandError(f"{', '.join(paths)}: no file to {what}")
    return files


def cmd_import(args: argparse.Namespace) -> int:
    from intake.importing import import_files

    files = _files(args.paths, "import")
    if args.via_broker:
        return _send_files(args, files)
    counts = import_files(_app(args), files, sys.stdout, creditor=args.creditor)
    return 1 if counts["rejected"] else 0


def _send_files(args: argparse.Namespace, files: Files) -> int:
    """``relance import --via-broker``: each file to the ``import_document`` actor."""
    from intake.upload import send_files
    from worker.broker import check_redis, make_broker

    settings = _settings(args)
    if not settings.redis_url:
        raise CommandError("`relance import --via-broker` needs RELANCE_REDIS_URL (the workers' broker)")
    check_redis(settings)
    broker = make_broker(settings)
    try:
        refused = send_files(broker, files, args.creditor, settings.import_max_bytes, sys.stdout)
    finally:
        broker.close()
    return 1 if refused else 0


def cmd_statement(args: argparse.Namespace) -> int:
    from adapters.importers.bank import StatementRejected
    from intake.statements import lines, proposals

    files = _files(args.paths, "read")
    try:
        results = proposals(_app(args), files, args.creditor)
    except StatementRejected as exc:
        raise CommandError(str(exc)) from exc
    for line in lines(results):
        print(line)
    return 0


def cmd_payments(args: argparse.Namespace) -> int:
    from handlers.context import UnknownCreditor
    from relance.bank_payments import MatchRefused, match, retry, waiting_lines

    app = _app(args)
    try:
        app.ctx.for_creditor(args.creditor)
    except UnknownCreditor as exc:
        raise CommandError(str(exc)) from exc
    if args.action == "unmatched":
        if args.rest:
            raise CommandError("`relance payments unmatched` takes no argument")
        if args.by:
            raise CommandError("--by goes with `relance payments match`")
        if args.retry:
            retry(app, args.creditor, sys.stdout)
        for line in waiting_lines(app, args.creditor):
            print(line)
        return 0
    if args.retry:
        raise CommandError("--retry goes with `relance payments unmatched`")
    if len(args.rest) < 2:
        raise CommandError("`relance payments match` needs ENTRY and at least one INVOICE")
    key, *numbers = args.rest
    try:
        found = match(app, args.creditor, key, numbers, args.by, sys.stdout)
    except MatchRefused as exc:
        raise CommandError(str(exc)) from exc
    paid = ", ".join(f"{p.invoice_number} {p.amount}" for p in found.payments)
    print(f"bank entry {key} {found.status}: {paid}")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from relance.simulate import simulate, throwaway_dir

    try:
        until = date.fromisoformat(args.until)
    except ValueError as exc:
        raise CommandError(f"--until: {args.until!r} is not a date YYYY-MM-DD") from exc
    keep = bool(args.data_dir)
    data_dir = Path(args.data_dir) if keep else throwaway_dir()
    overrides: dict = {
        "data_dir": data_dir,
        "database_url": None,
        "redis_url": None,
        "smtp_host": None,
        "partners_file": None,
    }  # a preview hands nothing over
    if args.policy:
        overrides["policy_file"] = Path(args.policy)
    settings = load_settings(**overrides)
    configure_logging(os.environ.get("RELANCE_SIMULATE_LOG_LEVEL", "WARNING"))
    try:
        with _simulation_source(args.files) as (source, sellers):
            return simulate(
                settings, source, until, sys.stdout, args.format, sellers, approve_all=args.approve_all
            )
    finally:
        if not keep:
            shutil.rmtree(data_dir, ignore_errors=True)


@contextmanager
def _simulation_source(files: list[str]) -> Iterator[tuple[TextIO, list[Any]]]:
    """The events of ``files`` as one text stream: a JSON Lines file (or ``-``) as it is,
    an e-invoice (.xml, .pdf) imported into its events, in the order given; and the
    sellers of the e-invoices, in that order."""
    sellers: list[Any] = []
    if files == ["-"]:
        yield sys.stdin, sellers
        return
    if "-" in files:
        raise CommandError("- (stdin) cannot be given with other files")
    from intake.importing import simulation_lines

    parts = []
    for name in files:
        if Path(name).suffix.lower() in (".xml", ".pdf"):
            try:
                lines, seller = simulation_lines(Path(name), sys.stderr)
            except ValueError as exc:  # the file gave no event: a preview cannot guess it
                raise CommandError(str(exc)) from exc
            parts.extend(lines)
            sellers.append(seller)
            continue
        try:
            with open(name, encoding="utf-8", errors="replace") as stream:
                parts.extend(line.rstrip("\n") for line in stream)
        except FileNotFoundError as exc:
            raise CommandError(f"{name}: no such file") from exc
    yield io.StringIO("".join(f"{line}\n" for line in parts)), sellers


def cmd_status(args: argparse.Namespace) -> int:
    from relance.reports import status

    app = _app(args)
    report = status(app, args.creditor)
    print(
        json.dumps(report, indent=2, ensure_ascii=False)
        if args.json
        else "\n".join(f"{k}: {v}" for k, v in report.items())
    )
    return 0


def cmd_rates(args: argparse.Namespace) -> int:
    """Print the rate table (RELANCE_RATES_FILE or the built-in one) and what it lacks."""
    from config.bootstrap import make_clock
    from config.policy import load_policy_set, load_rates
    from relance.rates import jsonl_lines, table_lines

    settings = _settings(args)
    table = load_rates(settings.rates_file)
    policy = load_policy_set(settings.policy_file).default
    lines = jsonl_lines if args.format == "jsonl" else table_lines
    for line in lines(table, policy.money.penalty_margin, make_clock(settings).now(), policy.timezone):
        print(line)
    return 0


def cmd_evidence(args: argparse.Namespace) -> int:
    if args.action == "anchor":
        return _evidence_anchor(args)
    if args.out:
        raise CommandError("--out goes with `evidence anchor`")
    return cmd_evidence_verify(args)


def cmd_evidence_verify(args: argparse.Namespace) -> int:
    from relance.evidence import AnchorProblem, check_anchor
    from relance.reports import verify_chains

    app = _app(args)
    checks = verify_chains(app, args.creditor)
    if args.anchor and len(checks) > 1:
        raise CommandError("--anchor checks one chain: name its creditor with --creditor")
    broken = 0
    for creditor, check in checks.items():
        named = f"{creditor}: " if len(checks) > 1 else ""
        if not check.ok:
            verified = f"{check.records} records verified before it"
            print(f"{named}broken at record {check.broken_seq}: {check.reason} ({verified})")
            broken += 1
            continue
        if args.anchor:
            try:
                problem = check_anchor(app, Path(args.anchor), check, creditor)
            except AnchorProblem as exc:
                raise CommandError(str(exc)) from exc
            if problem is not None:
                print(f"broken against {args.anchor}: {problem}")
                return 1
        head = f", head {check.head_hash}" if check.head_hash else ""
        print(f"{named}ok {check.records} records{head}")
    return 1 if broken else 0


def _evidence_anchor(args: argparse.Namespace) -> int:
    from relance.evidence import AnchorProblem, anchor_head

    if not args.out:
        raise CommandError("evidence anchor needs --out DIR")
    if args.anchor:
        raise CommandError("--anchor goes with `evidence verify`")
    try:
        made = anchor_head(_app(args), Path(args.out), args.creditor or DEFAULT_CREDITOR)
    except AnchorProblem as exc:
        raise CommandError(str(exc)) from exc
    print(f"anchored record {made.anchor.seq}, head {made.anchor.hash}: {made.statement}")
    if made.token is not None:
        print(f"time-stamped: {made.token}")
    return 0


def cmd_cases(args: argparse.Namespace) -> int:
    from relance.reports import list_cases

    for line in list_cases(_app(args), args.status, args.procedure, args.creditor):
        print(line)
    return 0


def cmd_case(args: argparse.Namespace) -> int:
    from relance.reports import case_summary, export_case

    if args.action == "show" and (args.dir or args.zip):
        raise CommandError("`relance case show ID` takes no DIR and no --zip")
    if args.action == "export" and not args.dir:
        raise CommandError("`relance case export ID DIR` needs DIR")
    app = _app(args)
    try:
        if args.action == "show":
            print(case_summary(app, args.id), end="")
            return 0
        target = Path(args.dir)
        if args.zip and target.suffix.lower() != ".zip":
            target = target.with_name(target.name + ".zip")
        for path in export_case(app, args.id, target, as_zip=args.zip):
            print(path)
    except OSError as exc:  # a non-empty folder, an existing zip file, no permission
        raise CommandError(
            f"{exc.filename}: {exc.strerror}" if exc.filename and exc.strerror else str(exc)
        ) from exc
    except LookupError as exc:
        raise CommandError(str(exc)) from exc
    return 0


def cmd_erase(args: argparse.Namespace) -> int:
    """Erase a debtor's personal data, or list with --due the debtors past retention."""
    from relance.erasure import ErasureRefused, due_for_erasure, erase_debtor

    if args.due == bool(args.debtor):
        raise CommandError("`relance erase` takes a DEBTOR, or --due to list the debtors past retention")
    app = _app(args)
    if args.due:
        due = due_for_erasure(app, args.creditor)
        for debtor_id, changed in due:
            print(f"{debtor_id}\tlast change {changed.date().isoformat()}")
        print(f"{len(due)} debtor(s) past retention")
        return 0
    try:
        done = erase_debtor(app, args.debtor, args.creditor)
    except ErasureRefused as exc:
        raise CommandError(str(exc)) from exc
    print(
        f"erased {done.debtor_id}: {done.messages} message(s), {done.inbox_events} inbox event(s), "
        f"{done.rejected_events} rejected event(s), {done.records_sealed} evidence record(s) sealed"
        + (f", {done.records_kept} older record(s) kept as they are" if done.records_kept else "")
    )
    return 0


def cmd_tasks(args: argparse.Namespace) -> int:
    from relance.tasks import list_tasks

    for line in list_tasks(_app(args), args.due, args.creditor):
        print(line)
    return 0


def cmd_task(args: argparse.Namespace) -> int:
    from handlers.manual import Outcome
    from relance.tasks import TaskRefused, complete_task

    promised = _day(args.promised_date, "--promised-date") if args.promised_date else None
    outcome = Outcome(args.outcome, args.note, promised, args.by or _login())
    try:
        done = complete_task(_app(args), args.id, outcome)
    except TaskRefused as exc:
        raise CommandError(str(exc)) from exc
    print(f"task {done.task_id} done: {done.outcome}")
    for event_id, status, reason in done.events:
        print(f"{event_id}\t{status}" + (f"\t{reason}" if reason else ""))
    return 0


def _day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise CommandError(f"{option} {text!r}: use a date YYYY-MM-DD") from exc


def _login() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name known (a container without a passwd entry)
        return "operator"


def cmd_inbox(args: argparse.Namespace) -> int:
    from relance.reports import list_rejected

    if args.action is None:
        if args.id is not None or args.file:
            raise CommandError("`relance inbox` takes no ID; use `relance inbox replay ID`")
        for line in list_rejected(_app(args), everything=args.all, creditor=args.creditor):
            print(line)
        return 0
    if args.id is None:
        raise CommandError("`relance inbox replay ID` needs ID (see `relance inbox`)")
    return _inbox_replay(args)


def _inbox_replay(args: argparse.Namespace) -> int:
    from handlers.events import MAX_LINE_BYTES
    from relance.inbox import replay

    replacement = None
    if args.file:
        try:
            stream = sys.stdin.buffer if args.file == "-" else open(args.file, "rb")  # noqa: SIM115
        except OSError as exc:
            raise CommandError(f"{args.file}: {exc.strerror or exc}") from exc
        with stream:
            data = stream.read(4 * MAX_LINE_BYTES)
        lines = [line for line in data.split(b"\n") if line.strip()]
        if len(lines) != 1:
            raise CommandError(f"{args.file}: must hold exactly one JSON line, found {len(lines)}")
        replacement = lines[0].rstrip(b"\r")
    app = _app(args)
    try:
        result = replay(app, args.id, replacement)
    except (LookupError, ValueError) as exc:
        raise CommandError(str(exc).strip("'\"")) from exc
    if result.status == "rejected":
        print(f"rejected: {result.reason}")
        return 1
    print("duplicate" if result.status == "duplicate" else "accepted")
    return 0


def cmd_drafts(args: argparse.Namespace) -> int:
    from relance.drafts import draft_lines

    for line in draft_lines(_app(args), args.creditor):
        print(line)
    return 0


def cmd_approve(args: argparse.Namespace) -> int:
    from handlers.approval import NotAwaiting
    from relance.drafts import approve_drafts, chosen, operator, outcome_line

    if args.all == bool(args.ids):
        raise CommandError("`relance approve` takes draft IDs, or --all (see `relance drafts`)")
    app = _app(args)
    try:
        ids = chosen(app, args.ids, args.all, args.step, args.creditor)
    except NotAwaiting as exc:
        raise CommandError(str(exc).strip("'\"")) from exc
    if app.settings.redis_url:  # published after each commit; the scheduler re-emits a lost one
        from config.bootstrap import attach_publisher
        from worker.broker import check_redis, make_broker

        check_redis(app.settings)  # unreachable: one line and exit 2, before any approval
        broker = make_broker(app.settings)
        attach_publisher(app, broker)
    try:
        outcomes = approve_drafts(app, ids, operator(args.by))
    finally:
        if app.publisher is not None:
            broker.close()
    now = app.clock.now()
    for outcome in outcomes:
        print(outcome_line(outcome, now))
    print(f"{sum(o.status == 'approved' for o in outcomes)} approved, {len(outcomes)} draft(s) acted on")
    return 0


def cmd_reject(args: argparse.Namespace) -> int:
    from handlers.approval import NotAwaiting
    from relance.drafts import chosen, operator, outcome_line, reject_drafts

    if not args.reason or not args.reason.strip():
        raise CommandError("`relance reject` needs --reason TEXT (it is kept in the evidence)")
    app = _app(args)
    try:
        ids = chosen(app, args.ids, False, None, args.creditor)
    except NotAwaiting as exc:
        raise CommandError(str(exc).strip("'\"")) from exc
    for outcome in reject_drafts(app, ids, operator(args.by), args.reason.strip()):
        print(outcome_line(outcome))
    return 0


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line: ``relance: error: ...`` and exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"relance: error: {message} (see `{self.prog} --help`)\n")


def cmd_dlq(args: argparse.Namespace) -> int:
    from relance.dlq import dead_letters, replay

    settings = _settings(args)
    if not settings.redis_url:
        raise CommandError(
            "`relance dlq` reads the Redis broker (RELANCE_REDIS_URL); in the "
            "embedded mode unfinished work is re-emitted from the database"
        )
    from worker.broker import check_redis

    check_redis(settings)
    if args.action == "list":
        count = 0
        for letter in dead_letters(settings):
            print(letter.line())
            count += 1
        print(f"{count} dead letter(s)")
        return 0
    if args.all:
        args.ids = [letter.key for letter in dead_letters(settings)]
    elif not args.ids:
        raise CommandError("dlq replay: name dead letters (key or message id) or use --all")
    from worker.broker import make_broker

    broker = make_broker(settings)
    missing = [wanted for wanted in args.ids if not replay(settings, broker, wanted)]
    broker.close()
    if missing:
        raise CommandError(f"no dead letter {', '.join(missing)}")
    print(f"replayed {len(args.ids)}")
    return 0


def _creditor_option(
    command: argparse.ArgumentParser, what: str, default: str | None = None, absent: str = "every creditor"
) -> None:
    shown = f"default: {default}" if default else f"not given: {absent}"
    command.add_argument("--creditor", metavar="ID", default=default, help=f"{what} ({shown})")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="relance", description="Dunning worker: reminders, formal notices, escalation.")
    common = _Parser(add_help=False)
    common.add_argument(
        "--data-dir", help="folder of the embedded store and outbox (default ./var, or RELANCE_DATA_DIR)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler, help_text: str) -> argparse.ArgumentParser:
        command = sub.add_parser(name, parents=[common], help=help_text, description=help_text)
        command.__class__ = _Parser
        command.set_defaults(handler=handler)
        return command

    add("run", cmd_run, "the whole service in one process (scheduler + workers)")
    add("worker", cmd_worker, "Dramatiq worker processes only (needs Redis)")
    add("scheduler", cmd_scheduler, "the scheduler only (needs Redis)")
    add("migrate", cmd_migrate, "create or upgrade the database schema")
    ingest = add("ingest", cmd_ingest, "validate and apply accounting events (JSON Lines)")
    ingest.add_argument("file", nargs="+", metavar="FILE", help="JSON Lines files, or - for stdin (alone)")
    ingest.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="apply up to N of the files at a time, one process each (the files are independent feeds)",
    )
    imports = add(
        "import",
        cmd_import,
        "import e-invoices (Factur-X PDF, UBL, CII) and bank statements (camt.053, CFONB 120) as events",
    )
    imports.add_argument(
        "paths",
        nargs="+",
        metavar="FILE|DIR",
        help="e-invoice or statement files, or folders (their files in name order)",
    )
    _creditor_option(
        imports,
        "whose invoices (its identity must be the seller's) or bank account",
        absent="the seller's; for a statement, default",
    )
    imports.add_argument(
        "--via-broker",
        action="store_true",
        help="send each file to the workers through the broker (RELANCE_REDIS_URL) instead of applying it",
    )
    payments = add(
        "payments", cmd_payments, "bank entries kept without a matching invoice, and matching them"
    )
    payments.add_argument(
        "action",
        choices=("unmatched", "match"),
        help="unmatched: list them; match ENTRY INVOICE...: pay those invoices with the entry",
    )
    payments.add_argument(
        "rest", nargs="*", metavar="ENTRY INVOICE", help="match: the entry, then its invoices"
    )
    payments.add_argument(
        "--retry", action="store_true", help="unmatched: match them again against the open invoices first"
    )
    payments.add_argument("--by", metavar="NAME", help="match: who matched it (kept with the entry)")
    _creditor_option(payments, "whose bank entries", DEFAULT_CREDITOR)
    statement = add(
        "statement", cmd_statement, "match bank statement entries (camt.053, CFONB 120) to open invoices"
    )
    statement.add_argument(
        "paths", nargs="+", metavar="FILE|DIR", help="statement files, or folders (their files in name order)"
    )
    _creditor_option(statement, "whose bank account: its open invoices", DEFAULT_CREDITOR)
    simulate = add("simulate", cmd_simulate, "preview the policy on events with a virtual clock")
    simulate.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="JSON Lines files or e-invoices (.xml, .pdf), in order; or - for stdin",
    )
    simulate.add_argument("--until", required=True, help="last day simulated (YYYY-MM-DD)")
    simulate.add_argument("--policy", help="policy TOML file to preview")
    simulate.add_argument("--format", choices=("jsonl", "table"), default="jsonl")
    simulate.add_argument(
        "--approve-all",
        action="store_true",
        help="approve every draft as soon as it is made (requires_approval)",
    )
    status = add("status", cmd_status, "open invoices, amounts by age, today's sends, cases")
    _creditor_option(status, "whose figures")
    status.add_argument("--json", action="store_true", help="print JSON")
    rates = add("rates", cmd_rates, "the half-year rate table, and the half-years it lacks")
    rates.add_argument("--format", choices=("table", "jsonl"), default="table")
    evidence = add("evidence", lambda a: cmd_evidence(a), "evidence chain commands")
    evidence.add_argument(
        "action",
        choices=("verify", "anchor"),
        help="verify: recompute the chain; anchor: write the signed chain head into --out DIR",
    )
    evidence.add_argument("--anchor", metavar="FILE", help="verify: the chain must still hold this head")
    evidence.add_argument("--out", metavar="DIR", help="anchor: folder of the head statement")
    _creditor_option(evidence, "whose chain (verify: every chain when not given)")
    cases = add("cases", cmd_cases, "list escalated cases")
    _creditor_option(cases, "whose cases")
    cases.add_argument("--status", choices=("open", "handed_over", "paid", "closed"))
    cases.add_argument("--procedure")
    case = add("case", cmd_case, "one case: show its summary, or export its dossier")
    case.add_argument(
        "action",
        choices=("show", "export"),
        help="show: print the summary; export: write the dossier into DIR",
    )
    case.add_argument("id", metavar="ID", type=int, help="case id (see `relance cases`)")
    case.add_argument("dir", metavar="DIR", nargs="?", help="export: a new or empty folder")
    case.add_argument("--zip", action="store_true", help="export: write DIR as a .zip file")
    tasks = add("tasks", cmd_tasks, "list the open tasks for people (calls, manual actions)")
    tasks.add_argument("--due", action="store_true", help="only those due today or earlier")
    _creditor_option(tasks, "whose tasks")
    task = add("task", cmd_task, "report what a task for a person came to")
    task.add_argument("action", choices=("done",), help="done: close the task with its outcome")
    task.add_argument("id", metavar="ID", type=int, help="task id (see `relance tasks`)")
    task.add_argument("--outcome", required=True, choices=OUTCOMES, help="what the call or action came to")
    task.add_argument("--note", metavar="TEXT", help="what the operator wants kept (a dispute's reason)")
    task.add_argument(
        "--promised-date", metavar="YYYY-MM-DD", help="with --outcome promise: the day promised"
    )
    task.add_argument("--by", metavar="NAME", help="who did it (default: the login name)")
    inbox = add("inbox", cmd_inbox, "list rejected events kept for replay, or replay one")
    _creditor_option(inbox, "list: whose rejected events")
    inbox.add_argument(
        "action",
        nargs="?",
        choices=("replay",),
        help="replay: ingest rejected event ID again (as stored, or --file)",
    )
    inbox.add_argument("id", metavar="ID", nargs="?", type=int, help="rejected event id")
    inbox.add_argument(
        "--file", metavar="FILE", help="replay: a corrected JSON line to ingest instead (- for stdin)"
    )
    inbox.add_argument(
        "--all", action="store_true", help="list also the events already replayed, with the time of replay"
    )
    erase = add("erase", cmd_erase, "remove a debtor's personal data once its claims are over")
    erase.add_argument("debtor", metavar="DEBTOR", nargs="?", help="debtor id")
    erase.add_argument("--due", action="store_true", help="list the debtors past retention; erase nothing")
    _creditor_option(erase, "whose debtor", DEFAULT_CREDITOR)
    drafts = add("drafts", cmd_drafts, "messages awaiting a person's approval (requires_approval steps)")
    _creditor_option(drafts, "whose drafts")
    approve = add("approve", cmd_approve, "approve drafts: re-checked, then sent")
    approve.add_argument("ids", nargs="*", type=int, metavar="ID", help="draft id (see `relance drafts`)")
    approve.add_argument("--all", action="store_true", help="every draft awaiting approval")
    approve.add_argument("--step", metavar="STEP", help="only drafts of this step")
    approve.add_argument("--by", metavar="NAME", help="who approves (default: the login name)")
    _creditor_option(approve, "only drafts of this creditor")
    reject = add("reject", cmd_reject, "reject drafts: never sent, the reason kept in the evidence")
    reject.add_argument("ids", nargs="+", type=int, metavar="ID", help="draft id (see `relance drafts`)")
    reject.add_argument("--reason", required=True, metavar="TEXT", help="why (kept in the evidence)")
    reject.add_argument("--by", metavar="NAME", help="who rejects (default: the login name)")
    _creditor_option(reject, "only drafts of this creditor")
    dlq = add("dlq", cmd_dlq, "broker messages that exhausted their retries (Redis)")
    dlq.add_argument("action", nargs="?", choices=("list", "replay"), default="list")
    dlq.add_argument("ids", nargs="*", metavar="ID", help="dead letter key or message id")
    dlq.add_argument("--all", action="store_true", help="replay every dead letter")
    return parser


EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports a writer whose reader left


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that flushing it at exit raises nothing more."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (ConfigError, StoreUnavailable, CommandError) as exc:
        print(f"relance: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (`relance … | head`): stop quietly
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except Exception as exc:  # a missing service surfaces as a library error: say which
        from relance.errors import describe_service_error

        message = describe_service_error(exc)
        if message is None:
            raise
        print(f"relance: error: {message}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
