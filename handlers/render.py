"""Render the text of messages and letters from Jinja templates, per language and step.

Templates live in ``handlers/templates/<language>/<step>.txt.j2`` (plain text, not escaped)
and ``<step>.html.j2`` (the HTML part of e-mails, autoescaped); an operator's folder
(RELANCE_TEMPLATE_DIR) with the same layout overrides them file by file. Each text template
sets ``subject`` and renders the body; the HTML template receives that ``subject``. Every
template is rendered once at start-up with sample data, so a broken template stops the
service instead of failing a send.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from babel.dates import format_date
from babel.numbers import format_decimal
from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    StrictUndefined,
    Template,
    TemplateError,
    TemplateSyntaxError,
)
from jinja2.runtime import Context

from handlers.identity import legal_mention
from handlers.money import format_money, format_rate
from handlers.policy import Creditor

LANGUAGES = ("fr", "en")
SUBJECT_NUMBERS = 5  # a subject names every invoice up to this many,
SUBJECT_SHOWN = 3  # else the first three and how many others
_LOCALES = {"fr": "fr_FR", "en": "en_GB"}


class TemplateProblem(Exception):
    """A template is missing or does not render; the message names it."""


@dataclass(frozen=True)
class Rendered:
    subject: str
    body_text: str
    body_html: str


class _Context(Context):
    """Jinja's context, whose ``call`` calls the renderer's own helpers (``helpers``: plain
    functions and partials, none taking a context) at once.

    Jinja's ``Context.call`` looks each callable over for ``pass_context`` and the like
    (two ``hasattr`` and two look-ups of its markers) at every call in a template, a dozen
    per message; a helper has none of them. What it does for them is kept: the markers of
    the loop and block variables it is given dropped, a ``StopIteration`` made undefined.
    This leans on Jinja's internals (the compiled templates call ``context.call``, with
    those two markers): tests/unit/test_render.py checks the texts against Jinja's own."""

    def call(self, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        helper = _HELPERS.get(id(obj))
        if helper is None or helper is not obj:
            return super().call(obj, *args, **kwargs)
        kwargs.pop("_block_vars", None)
        kwargs.pop("_loop_vars", None)
        try:
            return helper(*args, **kwargs)
        except StopIteration:
            return self.environment.undefined(
                "value was undefined because a callable raised a StopIteration exception"
            )


_HELPERS: dict[int, Any] = {}  # the helpers made (``helpers``), by id, kept alive here: no id reused


class _Loaded(Environment):
    """An environment that finds the templates it has loaded in a plain dict, their
    globals a plain dict too.

    Its templates are never reloaded (``auto_reload`` off), so Jinja's own cache, a locked
    LRU looked up for the template and each of its includes on every rendering (a dozen
    times per message), would only ever give back the same template. A template's globals
    are a ``ChainMap`` over the environment's so that later changes of those show through;
    none is made here, and every rendering and include copies or iterates them (5 µs for a
    rendering's ``dict(globals, **values)``, 1 µs for each include's context): a dict of
    the same items is copied in a fraction of that."""

    context_class = _Context

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._loaded: dict[str, Template] = {}

    def get_template(
        self,
        name: str | Template,
        parent: str | None = None,
        globals: MutableMapping[str, Any] | None = None,  # the name Jinja gives it
    ) -> Template:
        if globals is not None or not isinstance(name, str):
            return super().get_template(name, parent, globals)
        if parent is not None:
            name = self.join_path(name, parent)
        found = self._loaded.get(name)
        if found is None:
            found = super().get_template(name)
            found.globals = dict(found.globals)
            self._loaded[name] = found
        return found

    def getattr(self, obj: Any, attribute: str) -> Any:
        """``obj.attribute`` in a template: Jinja's ``getattr``, which tries the attribute, then
        the item. A plain dict (an invoice's view, the totals) has no attribute of a name
        that is not one of ``dict``'s own (its instances have no ``__dict__``): its item is
        looked up at once, without the ``AttributeError`` raised and caught first."""
        if type(obj) is dict and attribute not in _DICT_ATTRIBUTES:
            try:
                return obj[attribute]
            except KeyError:
                pass  # undefined, as Jinja makes it
        return super().getattr(obj, attribute)


_DICT_ATTRIBUTES = frozenset(dir(dict))  # what ``getattr`` finds on any dict


def _environment(override: Path | None, *, html: bool = False) -> Environment:
    loaders: list[Any] = [PackageLoader("handlers", "templates")]
    if override is not None:
        loaders.insert(0, FileSystemLoader(str(override)))
    env = _Loaded(
        loader=ChoiceLoader(loaders),
        undefined=StrictUndefined,
        autoescape=html,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )  # compiled once per process
    return env


def _problem(name: str, exc: TemplateError) -> TemplateProblem:
    if isinstance(exc, TemplateSyntaxError):
        where = name if exc.name in (None, name) else f"{exc.name} (included by {name})"
        return TemplateProblem(f"template {where}, line {exc.lineno}: {exc.message}")
    return TemplateProblem(f"template {name}: {exc}")


class Renderer:
    """Renders one step's template for one language; caches compiled templates."""

    def __init__(self, override: Path | None = None) -> None:
        self._env = _environment(override)
        self._html_env = _environment(override, html=True)

    def render(self, step: str, language: str, context: dict[str, Any]) -> Rendered:
        language = language if language in LANGUAGES else "fr"
        name = f"{language}/{step}.txt.j2"
        values = {**context, **helpers(language)}
        try:
            template = self._env.get_template(name)
            module = template.make_module(values)  # one rendering gives body and subject
            body, subject = str(module), str(getattr(module, "subject"))  # noqa: B009  # set by the template
        except TemplateError as exc:
            raise _problem(name, exc) from exc
        except AttributeError as exc:
            raise TemplateProblem(f"template {name}: it must set `subject`") from exc
        subject = " ".join(subject.split())
        html_name = f"{language}/{step}.html.j2"
        try:
            body_html = self._html_env.get_template(html_name).render({**values, "subject": subject})
        except TemplateError as exc:
            raise _problem(html_name, exc) from exc
        return Rendered(subject, body.strip() + "\n", body_html.strip() + "\n")

    def render_document(self, name: str, language: str, context: dict[str, Any]) -> str:
        """Render the plain-text template ``<language>/<name>`` (a document, not a message:
        no subject), with the same helpers, override folder and checks as the messages."""
        template_name = f"{language}/{name}"
        try:
            return self._env.get_template(template_name).render({**context, **helpers(language)})
        except TemplateError as exc:
            raise _problem(template_name, exc) from exc

    def check(self, steps: Iterable[str], sample: dict[str, Any]) -> None:
        """Render every step (text and HTML) in every language once; raise TemplateProblem on
        the first failure."""
        for step in steps:
            for language in LANGUAGES:
                self.render(step, language, sample)


@functools.lru_cache(maxsize=16)
def helpers(language: str) -> Mapping[str, Any]:
    """The functions templates call, for ``language``: made once per language (callers copy
    them into their values, never change them)."""
    locale = _LOCALES.get(language, "fr_FR")

    def money(amount: Decimal, currency: str = "EUR") -> str:
        return format_money(amount, currency, language)

    def rate(value: Decimal) -> str:
        return format_rate(value, language)

    def mention(creditor: Creditor) -> str:
        return _legal_mention(creditor, language)

    def numbers(invoices: Sequence[dict[str, Any]], count: int | None = None) -> str:
        total = max(count or 0, len(invoices))  # ``count``: all claimed, when the list is cut
        return invoice_numbers([i["number"] for i in invoices[:SUBJECT_NUMBERS]], total, locale)

    made = {
        "money": money,
        "day": functools.partial(_day, locale=locale, language=language),
        "rate": rate,
        "legal_mention": mention,
        "numbers": numbers,
        "iban": grouped_iban,
    }
    if len(_HELPERS) > 1024:  # languages of data cycling through the cache: start again
        _HELPERS.clear()  # (a helper not found here is called as Jinja calls it: the same text)
    _HELPERS.update((id(helper), helper) for helper in made.values())
    return made


@functools.lru_cache(maxsize=4096)  # a few days (due dates, today) recur on every message
def _day(value: date, *, locale: str, language: str) -> str:
    text = format_date(value, format="long", locale=locale)
    if language == "fr" and value.day == 1:  # French writes « 1er avril »
        text = "1er" + text[1:]
    return text


_MENTIONS: dict[tuple[int, str], tuple[Creditor, str]] = {}


def _legal_mention(creditor: Creditor, language: str) -> str:
    """``legal_mention``, kept per creditor object and language (the policies live as long
    as the process; the object is kept with its line, so its id is not reused meanwhile)."""
    found = _MENTIONS.get((id(creditor), language))
    if found is not None and found[0] is creditor:
        return found[1]
    if len(_MENTIONS) > 1024:  # policies reloaded many times: start again
        _MENTIONS.clear()
    line = legal_mention(creditor, language)
    _MENTIONS[(id(creditor), language)] = (creditor, line)
    return line


def grouped_iban(iban: str) -> str:
    """An IBAN as printed: groups of four characters ("FR76 3000 6000 …")."""
    return " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))


def invoice_numbers(first: Sequence[str], count: int, locale: str) -> str:
    """The invoice numbers of a subject line: every one up to ``SUBJECT_NUMBERS``, else the
    first ``SUBJECT_SHOWN`` and how many others ("F-1, F-2, F-3 et 19 997 autres")."""
    if count <= SUBJECT_NUMBERS and len(first) >= count:
        return ", ".join(first[:count])
    rest = format_decimal(count - SUBJECT_SHOWN, locale=locale)
    word = ("autre" if count - SUBJECT_SHOWN == 1 else "autres") if locale.startswith("fr") else "other"
    if not locale.startswith("fr") and count - SUBJECT_SHOWN > 1:
        word = "others"
    joined = ", ".join(first[:SUBJECT_SHOWN])
    return f"{joined} et {rest} {word}" if locale.startswith("fr") else f"{joined} and {rest} {word}"
