"""Campaign subjects, texts and HTML: Django's template language in a sandbox.

Templates are written by tenants' users and filled with their customers' data, so they run in an
engine of their own, never the project's: it knows only an allow-list of harmless tags and filters
(no `load`, `include`, `extends`, `debug`, `url`, `static`, `csrf_token`…), loads no template
files, and sees nothing but the plain data it is given (strings, numbers, dates, and dicts and lists
of them; never a model, a request or the settings). A field it does not know renders empty.

In HTML every merge field is escaped, and nothing turns that off (no `autoescape` tag, no `safe`
filter): a customer's name could be markup. Plain text (SMS, the email's text part, subjects) is
not escaped. Dicts are read by key only, so a template cannot call their methods (`clear`, `pop`),
and names starting with an underscore are refused by the template language itself.

Merge data frozen with a recipient is JSON, so a string under a key ending in `_at` that reads as
an ISO 8601 time (`last_order.placed_at`) is given to the template as a time: the `date` filter
formats it, in the time zone `render` is given.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from contextlib import nullcontext
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

from django.template import Context, Engine, TemplateSyntaxError, defaultfilters, defaulttags
from django.template.defaulttags import ForNode
from django.template.library import Library
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.functional import Promise

__all__ = ["FILTERS", "MERGE_FIELDS", "TAGS", "TemplateProblem", "check", "render", "sample_context"]

MAX_SOURCE = 100_000  # characters
MAX_LOOP_DEPTH = 2  # for-loops inside for-loops, which multiply the work of a render
MAX_FLOAT_PLACES = 10

MERGE_FIELDS: dict[str, str] = {
    "first_name": "The customer's first name.",
    "last_name": "The customer's last name.",
    "full_name": "First and last name together.",
    "email": "The customer's email address.",
    "orders_count": "How many orders the customer has placed (cancelled ones left out).",
    "total_spent": "What the customer has spent in all, e.g. 182.50.",
    "currency": "The currency of those amounts, e.g. USD.",
    "last_order": "The customer's last order (empty without one): number, placed_at, total.",
    "last_order.number": "The last order's number.",
    "last_order.placed_at": 'When the last order was placed: {{ last_order.placed_at|date:"j F Y" }}.',
    "last_order.total": "The last order's total.",
    "discount_code": "The campaign's discount code.",
    "unsubscribe_url": "The customer's link to stop these messages.",
    "company": "Your company name.",
}

TAGS = ("comment", "firstof", "for", "if", "now", "spaceless", "templatetag", "verbatim", "with")
FILTERS = (
    "add",
    "capfirst",
    "cut",
    "date",
    "default",
    "default_if_none",
    "divisibleby",
    "escape",
    "first",
    "floatformat",
    "force_escape",
    "join",
    "last",
    "length",
    "linebreaks",
    "linebreaksbr",
    "lower",
    "pluralize",
    "slice",
    "slugify",
    "striptags",
    "time",
    "timesince",
    "timeuntil",
    "title",
    "truncatechars",
    "truncatewords",
    "upper",
    "urlencode",
    "wordcount",
    "yesno",
)


class TemplateProblem(Exception):
    """A template the hub will not render, with the field it is in and what to change."""

    def __init__(self, message: str, *, field: str = "body") -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def _floatformat(value, arg=-1):
    # Django's floatformat builds a string of as many digits as it is asked for.
    try:
        places = int(str(arg).rstrip("gu") or 0)
    except ValueError:
        places = 0
    return defaultfilters.floatformat(value, arg) if abs(places) <= MAX_FLOAT_PLACES else ""


_floatformat.is_safe = True

LIBRARY = Library()
LIBRARY.tags.update({name: defaulttags.register.tags[name] for name in TAGS})
LIBRARY.filters.update({name: defaultfilters.register.filters[name] for name in FILTERS})
LIBRARY.filters["floatformat"] = _floatformat


class SandboxEngine(Engine):
    """An engine whose only built-ins are LIBRARY's and that has no libraries to `{% load %}`."""

    def get_template_builtins(self, builtins):
        return [LIBRARY]

    def get_template_libraries(self, libraries):
        return {}


ENGINE = SandboxEngine(
    dirs=[],
    app_dirs=False,
    context_processors=[],
    debug=False,
    loaders=[("django.template.loaders.locmem.Loader", {})],
    string_if_invalid="",
    autoescape=True,
)


# --- Checking --------------------------------------------------------------------------------------


def check(source: str, *, field: str = "body") -> None:
    """Raise TemplateProblem if the template has a syntax error or uses what is not allowed."""
    _compile(source or "", field)


def _compile(source: str, field: str):
    if len(source) > MAX_SOURCE:
        raise TemplateProblem(f"A template holds at most {MAX_SOURCE:,} characters.", field=field)
    try:
        return _compiled(source)
    except TemplateSyntaxError as exc:
        raise TemplateProblem(_explain(str(exc)), field=field) from None
    except TemplateProblem as exc:
        raise TemplateProblem(exc.message, field=field) from None
    except Exception as exc:  # a tag's own parser failing on odd input
        raise TemplateProblem(f"The template cannot be read: {exc}", field=field) from None


@lru_cache(maxsize=256)
def _compiled(source: str):
    # A campaign renders the same few templates for every recipient: parse each once.
    template = ENGINE.from_string(source)
    if _loop_depth(template.nodelist) > MAX_LOOP_DEPTH:
        raise TemplateProblem(f"Put at most {MAX_LOOP_DEPTH} {{% for %}} loops inside one another.")
    return template


def _loop_depth(nodelist) -> int:
    deepest = 0
    for node in nodelist or ():
        inner = max((_loop_depth(getattr(node, name, None)) for name in node.child_nodelists), default=0)
        deepest = max(deepest, inner + (1 if isinstance(node, ForNode) else 0))
    return deepest


def _explain(error: str) -> str:
    """Django's parse errors, reworded for someone writing a campaign (who cannot load tags)."""
    if found := re.match(r"Invalid block tag on line (\d+): '([^']*)'(?:, expected (.*?))?\. Did you", error):
        line, tag, expected = found.groups()
        if tag in LIBRARY.tags or tag.startswith("end") or tag in ("else", "elif", "empty"):
            where = f"; expected {expected}" if expected else ""
            return f"Line {line}: {{% {tag} %}} is out of place here{where}."
        return f"Line {line}: the tag {{% {tag} %}} is not allowed in a message. Tags you can use: {', '.join(TAGS)}."
    if found := re.match(r"Invalid filter: '([^']*)'", error):
        return f"The filter |{found.group(1)} is not allowed in a message. Filters you can use: {', '.join(FILTERS)}."
    if found := re.match(r"Variables and attributes may not begin with underscores: '([^']*)'", error):
        return f"“{found.group(1)}”: merge fields and their parts cannot start with an underscore."
    return error


# --- Rendering -------------------------------------------------------------------------------------


def render(
    source: str, context: dict, *, html: bool = False, field: str | None = None, time_zone: str | None = None
) -> str:
    """The template filled with the context: escaped for HTML when `html`, as is otherwise.

    Times are shown in `time_zone` (an IANA name, e.g. the tenant's) when given. A template that
    cannot be read or fails while rendering raises TemplateProblem."""
    field = field or ("html" if html else "body")
    template = _compile(source or "", field)
    data = Context(dict(_plain(context or {}, "")), autoescape=html)
    try:
        with timezone.override(time_zone) if time_zone else nullcontext():
            return str(template.render(data))
    except Exception as exc:
        raise TemplateProblem(f"The template failed while filling it in: {exc}", field=field) from None


class MergeData(dict):
    """A dict a template reads by key only: its methods (clear, pop, update…) are out of reach."""

    __slots__ = ()

    def __getattribute__(self, name: str):
        if name.startswith("__") or name in READABLE:
            return super().__getattribute__(name)
        raise AttributeError(name)

    def __dir__(self):
        return sorted(READABLE)


READABLE = frozenset({"items", "keys", "values"})
PLAIN = (bool, int, float, Decimal, date, time, type(None))  # datetime is a date


def _plain(value: Any, key: str):
    """The value as data a template can only read, or TypeError for anything else."""
    if isinstance(value, Promise):
        value = str(value)
    if isinstance(value, str):
        # A copy as a plain str: a SafeString would skip escaping.
        text = str.__str__(value)
        if key.endswith("_at") and (moment := _moment(text)):
            return moment
        return text
    if isinstance(value, PLAIN):
        return value
    if isinstance(value, Mapping):
        return MergeData(
            {str(k): _plain(v, str(k)) for k, v in value.items() if isinstance(k, str) and not k.startswith("_")}
        )
    if isinstance(value, list | tuple):
        return tuple(_plain(item, "") for item in value)
    raise TypeError(f"Merge data must be plain data (text, numbers, dates, dicts, lists), not {type(value).__name__}.")


def _moment(text: str) -> datetime | None:
    try:
        moment = parse_datetime(text)
    except ValueError:
        return None
    if moment is not None and timezone.is_naive(moment):
        moment = moment.replace(tzinfo=UTC)
    return moment


# --- Previews --------------------------------------------------------------------------------------


def sample_context(tenant) -> dict:
    """A made-up customer of the tenant's, for previews and test sends (no one's real data)."""
    currency = getattr(tenant, "base_currency", "") or "USD"
    placed_at = (timezone.now() - timedelta(days=12)).replace(microsecond=0)
    return {
        "first_name": "Ada",
        "last_name": "Lovelace",
        "full_name": "Ada Lovelace",
        "email": "ada.lovelace@example.com",
        "orders_count": 3,
        "total_spent": "182.50",
        "currency": currency,
        "last_order": {"number": "1042", "placed_at": placed_at.isoformat(), "total": "64.00", "currency": currency},
        "discount_code": "WELCOME10",
        "unsubscribe_url": "https://example.com/unsubscribe/sample",
        "company": getattr(tenant, "name", "") or "Your company",
    }
