"""Load and validate the policy file and the rate table; errors name the file and the key."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from config.errors import ConfigError
from handlers.policy import Policy, PolicySet, RateTable, Segment

Model = TypeVar("Model", bound=BaseModel)


def _read_toml(path: Path | None, packaged: str) -> tuple[str, dict]:
    if path is None:
        text = resources.files("config").joinpath(packaged).read_text(encoding="utf-8")
        label = f"config/{packaged}"
    else:
        label = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{label}: cannot read the file: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{label}: not valid UTF-8 at byte {exc.start}") from exc
    try:
        return label, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{label}: not valid TOML: {exc}") from exc


def _key_path(loc: tuple) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(top level)"


def _validate(model: type[Model], label: str, data: dict) -> Model:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        message = first["msg"].removeprefix("Value error, ")
        raise ConfigError(f"{label}: {_key_path(first['loc'])}: {message}") from exc


def load_policy(path: Path | None = None) -> Policy:
    """The policy at ``path``, or the built-in default policy."""
    label, data = _read_toml(path, "policy.toml")
    return _validate(Policy, label, data)


def load_rates(path: Path | None = None) -> RateTable:
    """The half-year rate table at ``path``, or the built-in table."""
    label, data = _read_toml(path, "rates.toml")
    return _validate(RateTable, label, data)


def load_policy_set(path: Path | None = None) -> PolicySet:
    """The default policy with its ``[[segments]]`` and ``[overrides]``.

    A segment names another policy file (relative to this one) and the debtor attributes it
    applies to; overrides map debtor ids or invoice numbers to a segment name or "default".
    """
    label, data = _read_toml(path, "policy.toml")
    segments_data = data.pop("segments", [])
    overrides = data.pop("overrides", {})
    default = _validate(Policy, label, data)
    if not isinstance(segments_data, list) or not isinstance(overrides, dict):
        raise ConfigError(f"{label}: segments must be [[segments]] tables, overrides a table")
    base = path.parent if path is not None else Path(".")
    segments = []
    for index, item in enumerate(segments_data):
        if not isinstance(item, dict) or "policy_file" not in item:
            raise ConfigError(f"{label}: segments[{index}].policy_file: missing")
        segment_file = Path(item.pop("policy_file"))
        segment = _validate(Segment, f"{label}: segments[{index}]", item)
        segments.append(
            (segment, load_policy(base / segment_file if not segment_file.is_absolute() else segment_file))
        )
    policies = PolicySet(
        default, tuple(segments), overrides.get("debtors", {}), overrides.get("invoices", {})
    )
    for kind in ("debtors", "invoices"):
        for key, name in overrides.get(kind, {}).items():
            if name not in policies.names:
                raise ConfigError(
                    f"{label}: overrides.{kind}.{key}: no segment named {name!r} "
                    f"(known: {', '.join(policies.names)})"
                )
    return policies
