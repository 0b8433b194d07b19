"""Load and validate the policy file and the rate table; errors name the file and the key."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import TypeVar

import structlog
from pydantic import BaseModel, ValidationError

from config.errors import ConfigError
from handlers.policy import Policy, PolicySet, RateTable, Segment

Model = TypeVar("Model", bound=BaseModel)
log = structlog.get_logger("relance.config")


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


# names of earlier versions of the rate file: the "professional" rate is the legal rate of
# "all other cases", the "consumer" one that of a creditor who is a private person
RENAMED_RATE_KEYS = {
    "legal_rate_professional": "legal_rate_other",
    "legal_rate_consumer": "legal_rate_private_creditor",
}


def load_rates(path: Path | None = None) -> RateTable:
    """The half-year rate table at ``path``, or the built-in table.

    Keys of earlier versions (``RENAMED_RATE_KEYS``) are still read, under their new name,
    with a ``rates.renamed_key`` warning naming the file and the key.
    """
    label, data = _read_toml(path, "rates.toml")
    entries = data.get("rates")
    if isinstance(entries, dict):
        for half_year, entry in entries.items():
            if isinstance(entry, dict):
                _rename_old_keys(label, half_year, entry)
    return _validate(RateTable, label, data)


def _rename_old_keys(label: str, half_year: str, entry: dict) -> None:
    for old, new in RENAMED_RATE_KEYS.items():
        if old not in entry:
            continue
        key = f"rates.{half_year}.{old}"
        if new in entry:
            raise ConfigError(f"{label}: {key}: the old name of {new}, which is also given; keep only {new}")
        entry[new] = entry.pop(old)
        log.warning("rates.renamed_key", file=label, key=key, use=new)


BUILT_IN = "built-in"  # consumer_policy_file: the shipped config/consumer.toml
NONE = "none"  # consumer_policy_file: consumers follow the main policy


def _consumer_policy(label: str, setting: object, base: Path, default: Policy) -> Policy | None:
    """The policy of consumer debtors no segment matches: the shipped one, the operator's
    file, or none; with the main policy's creditor and mediator unless it names its own."""
    if not isinstance(setting, str) or not setting:
        raise ConfigError(f'{label}: consumer_policy_file: a file name, "{BUILT_IN}" or "{NONE}"')
    if setting == NONE:
        return None
    path = None if setting == BUILT_IN else Path(setting)
    if path is not None and not path.is_absolute():
        path = base / path
    file_label, data = _read_toml(path, "consumer.toml")
    inherited = {key: getattr(default, key) for key in ("creditor", "mediator") if key not in data}
    return _validate(Policy, file_label, data).model_copy(update=inherited)


def load_policy_set(path: Path | None = None) -> PolicySet:
    """The default policy with its ``[[segments]]`` and ``[overrides]``.

    A segment names another policy file (relative to this one) and the debtor attributes it
    applies to; overrides map debtor ids or invoice numbers to a segment name or "default".
    """
    label, data = _read_toml(path, "policy.toml")
    segments_data = data.pop("segments", [])
    overrides = data.pop("overrides", {})
    consumer_file = data.pop("consumer_policy_file", BUILT_IN)
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
        default,
        tuple(segments),
        overrides.get("debtors", {}),
        overrides.get("invoices", {}),
        consumer=_consumer_policy(label, consumer_file, base, default),
    )
    for kind in ("debtors", "invoices"):
        for key, name in overrides.get(kind, {}).items():
            if name not in policies.names:
                raise ConfigError(
                    f"{label}: overrides.{kind}.{key}: no segment named {name!r} "
                    f"(known: {', '.join(policies.names)})"
                )
    return policies
