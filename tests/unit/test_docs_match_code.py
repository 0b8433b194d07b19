"""The guides match the code: every log event is documented in docs/cli.md (operators alert
on them), and the schema revision shown is the one `relance migrate` prints.

The code is read, not run: each call of a structlog logger (``log.info("event.name", …)``,
``structlog.get_logger(…).warning(…)``, ``getattr(log, level)(…)``) gives its event name,
from a literal, a module constant, or a local variable assigned literals. A name built at
run time is listed in ``BUILT_AT_RUN_TIME`` with every value it can take.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("handlers", "adapters", "config", "worker", "scheduler", "relance")
LEVELS = {"debug", "info", "warning", "warn", "error", "exception", "critical", "fatal", "msg"}

# (file, variable) -> every event name the variable can hold there
BUILT_AT_RUN_TIME = {
    ("handlers/cases.py", "kind"): {"case.updated", "case.paid", "case.closed"},  # f"case.{status}"
    ("handlers/approval.py", "kind"): {"message.approved", "message.rejected", "message.withdrawn"},
    ("handlers/factoring.py", "kind"): {"invoice.factored", "invoice.unfactored"},
    ("handlers/insolvency.py", "kind"): {
        "insolvency.converted",
        "insolvency.plan_adopted",
        "insolvency.closed",
    },
}


def _is_get_logger(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "get_logger"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "structlog"
    )


def _loggers(tree: ast.Module) -> set[str]:
    return {
        target.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and _is_get_logger(node.value)
        for target in node.targets
        if isinstance(target, ast.Name)
    }


def _event_arguments(tree: ast.Module) -> Iterator[tuple[ast.expr, ast.AST]]:
    """(first argument, enclosing function or module) of every structlog logging call."""
    names = _loggers(tree)

    def is_logger(node: ast.AST) -> bool:
        return (isinstance(node, ast.Name) and node.id in names) or _is_get_logger(node)

    def visit(node: ast.AST, scope: ast.AST) -> Iterator[tuple[ast.expr, ast.AST]]:
        for child in ast.iter_child_nodes(node):
            inner = child if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else scope
            if isinstance(child, ast.Call) and child.args:
                func = child.func
                direct = isinstance(func, ast.Attribute) and func.attr in LEVELS and is_logger(func.value)
                dynamic = (
                    isinstance(func, ast.Call)
                    and isinstance(func.func, ast.Name)
                    and func.func.id == "getattr"
                    and is_logger(func.args[0])
                )
                if direct or dynamic:
                    yield child.args[0], scope
            yield from visit(child, inner)

    yield from visit(tree, tree)


def _assigned(scope: ast.AST, name: str) -> list[ast.expr]:
    values: list[ast.expr] = []
    body = scope.body if isinstance(scope, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef)) else []
    for statement in body:
        for node in ast.walk(statement):
            if not isinstance(node, ast.Assign):
                continue
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id == name:
                    values.append(node.value)
                elif isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                    values += [
                        v
                        for t, v in zip(target.elts, node.value.elts, strict=True)
                        if getattr(t, "id", None) == name
                    ]
    return values


def _names(value: ast.expr, scope: ast.AST, module: ast.Module) -> set[str] | None:
    """The event names ``value`` can be, or None when they cannot be read from the code."""
    if isinstance(value, ast.Constant) and isinstance(value.value, str):
        return {value.value}
    if isinstance(value, ast.IfExp):
        body, orelse = _names(value.body, scope, module), _names(value.orelse, scope, module)
        return None if body is None or orelse is None else body | orelse
    if isinstance(value, ast.Name):
        found = _assigned(scope, value.id) or _assigned(module, value.id)
        results = [_names(each, module, module) for each in found]
        if not found or any(r is None for r in results):
            return None
        return set().union(*results)  # type: ignore[arg-type]
    return None


def emitted_events() -> tuple[set[str], list[str]]:
    """Every event name logged by the code, and the calls whose name could not be read."""
    events: set[str] = set()
    unread: list[str] = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            module = ast.parse(path.read_text(encoding="utf-8"))
            for argument, scope in _event_arguments(module):
                names = _names(argument, scope, module)
                if names is None and isinstance(argument, ast.Name):
                    names = BUILT_AT_RUN_TIME.get((relative, argument.id))
                if names is None:
                    unread.append(f"{relative}:{argument.lineno}: {ast.unparse(argument)}")
                else:
                    events |= names
    return events, unread


def documented_events() -> set[str]:
    """The names in the first column of docs/cli.md's operations-log table."""
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    section = text.split("## Operations log", 1)[1].split("\n## ", 1)[0]
    first_cells = (line.split("|")[1] for line in section.splitlines() if line.startswith("| `"))
    return {name for cell in first_cells for name in re.findall(r"`([^`]+)`", cell)}


def test_the_scanner_finds_events_logged_every_way():
    events, _ = emitted_events()
    # a literal, a module constant, a conditional local, a getattr call, a chained get_logger
    assert {"scheduler.tick", "insolvency.origin_presumed", "rates.missing", "rates.missing_soon"} <= events
    assert {"worker.ready", "case.paid", "invoice.factored"} <= events


def test_every_log_event_name_can_be_read_from_the_code():
    _, unread = emitted_events()
    assert unread == [], "name each event with a literal or a constant, or list it in BUILT_AT_RUN_TIME"


def test_every_log_event_is_documented_in_the_cli_guide():
    events, _ = emitted_events()
    missing = sorted(events - documented_events())
    assert missing == [], f"add these to the operations log of docs/cli.md: {missing}"


def test_the_guides_show_the_schema_revision_that_relance_migrate_prints():
    from alembic.script import ScriptDirectory
    from sqlalchemy import create_engine

    from adapters.store import _alembic_config

    head = ScriptDirectory.from_config(_alembic_config(create_engine("sqlite://"))).get_current_head()
    for guide in ("README.md", "docs/cli.md"):
        shown = re.findall(r"schema at revision (\d+)", (ROOT / guide).read_text(encoding="utf-8"))
        assert shown and set(shown) == {head}, (
            f"{guide} shows revision {shown}, `relance migrate` prints {head}"
        )
