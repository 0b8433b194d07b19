"""``isinstance`` against a runtime-checkable protocol, each type checked once.

``isinstance(x, SomeProtocol)`` lists the protocol's members anew at each call
(``typing._get_protocol_attrs``); on the reminder path it is asked for every record and
task. A type found to conform is known from then on: one set look-up."""

from __future__ import annotations

from typing import Any

_CONFORMING: set[tuple[Any, type]] = set()  # (protocol, type) pairs found to conform


def conforms(candidate: object, protocol: Any) -> bool:
    """``isinstance(candidate, protocol)`` for a runtime-checkable ``protocol``."""
    key = (protocol, type(candidate))
    if key in _CONFORMING:
        return True
    if not isinstance(candidate, protocol):
        return False
    _CONFORMING.add(key)
    return True
