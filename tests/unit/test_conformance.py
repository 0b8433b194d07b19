"""``conforms``: ``isinstance`` against a runtime-checkable protocol, each type checked once."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from handlers.conformance import conforms


@runtime_checkable
class Sink(Protocol):
    def write(self) -> None: ...


class Writer:
    def write(self) -> None:
        pass


class Reader:
    def read(self) -> None:
        pass


def test_a_type_that_conforms_is_known_and_one_that_does_not_is_refused_each_time():
    assert conforms(Writer(), Sink) and conforms(Writer(), Sink)
    assert not conforms(Reader(), Sink) and not conforms(Reader(), Sink)
    assert not conforms(None, Sink)
