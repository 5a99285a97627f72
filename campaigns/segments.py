"""Segments: rules over a tenant's synced customers and their orders.

Rules are `{"match": "all" | "any", "rules": [{"field": …, "op": …, "value": …}, …]}`; no rules
match every customer of the tenant. `validate` checks and normalises them (what a Segment stores),
`customers` turns them into one filtered queryset, `count` backs the live count while they are
edited (one aggregate query), and `recipients` streams the people a campaign goes to.

How the fields read:

- `total_spent` and `order_count` add up the customer's counted (not cancelled) orders, whatever
  their currency: a tenant selling in several currencies should segment by platform as well.
- `last_order_at` and `first_order_at` are about counted orders too. A date (`before`, `after`) is
  a day in the tenant's time zone: `before` is earlier than that day, `after` later than it.
  `within_days` is "within the last N days", and `not_within_days` is its exact opposite, so it
  also matches customers who have never ordered.
- `tag` compares whole tags (never part of one), ignoring case (ASCII case only on SQLite).
- `product_bought` looks at the lines of counted orders: `sku_is` is an exact SKU, `title_contains`
  a case-insensitive part of the line's title.

A person can be a customer once per connection with the same email address, so recipients are one
per address: the email address trimmed and in lower case, or the phone number with spaces,
punctuation (`-().`) and a trunk "(0)" taken out. A phone number must then be in E.164 form (a
leading + and the country code); numbers without one are skipped, since the hub cannot tell their
country. Which addresses are reachable is decided in SQL only, so `count` and `recipients` always
agree. Whether a person may be sent to (consent, suppressions) is the sender's business, not the
segment's.
"""

from __future__ import annotations

import operator
import re
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from functools import reduce
from typing import TYPE_CHECKING, Any

from django.db import NotSupportedError
from django.db.models import (
    BooleanField,
    Count,
    DecimalField,
    Exists,
    Expression,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, Lower, Replace, Trim, Upper
from django.db.models.lookups import (
    GreaterThan,
    GreaterThanOrEqual,
    In,
    LessThan,
    LessThanOrEqual,
    Range,
    Regex,
)
from django.utils import timezone

from commerce.models import Customer, Order, OrderLine, OrderStatus
from integrations.models import Connection
from integrations.platforms import CATALOGUE, Kind, Platform
from tenants.models import Tenant

from .models import Channel

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "FIELDS",
    "OPS",
    "RecipientData",
    "SegmentError",
    "count",
    "customers",
    "recipients",
    "validate",
]

# Customers read per query while streaming recipients (their merge data: two queries per chunk).
CHUNK_SIZE = 500
MAX_RULES = 50
MAX_DAYS = 36_500
MAX_TEXT = 255


class SegmentError(Exception):
    """Rules the hub cannot use, with the place in them it is about (e.g. "rules[2].value")."""

    def __init__(self, message: str, *, field: str = "rules") -> None:
        super().__init__(message)
        self.message = message
        self.field = field


COMPARISONS = ["gt", "gte", "lt", "lte", "between"]
DATES = ["before", "after", "within_days", "not_within_days"]

OPS: dict[str, str] = {
    "gt": "more than",
    "gte": "at least",
    "lt": "less than",
    "lte": "at most",
    "between": "between (inclusive)",
    "before": "before",
    "after": "after",
    "within_days": "within the last N days",
    "not_within_days": "not within the last N days",
    "in": "is one of",
    "not_in": "is not one of",
    "has": "has",
    "has_not": "does not have",
    "sku_is": "SKU is",
    "title_contains": "title contains",
    "is": "is",
}

FIELDS: dict[str, dict] = {
    "total_spent": {"label": "Total spent", "type": "money", "ops": COMPARISONS},
    "order_count": {"label": "Number of orders", "type": "integer", "ops": COMPARISONS},
    "last_order_at": {"label": "Last order", "type": "date", "ops": DATES},
    "first_order_at": {"label": "First order", "type": "date", "ops": DATES},
    "platform": {
        "label": "Store platform",
        "type": "choices",
        "ops": ["in", "not_in"],
        "choices": [spec.platform for spec in CATALOGUE.values() if spec.kind == Kind.COMMERCE],
    },
    "country": {"label": "Country (ISO 3166 code)", "type": "countries", "ops": ["in", "not_in"]},
    "tag": {"label": "Customer tag", "type": "text", "ops": ["has", "has_not"]},
    "product_bought": {"label": "Bought a product", "type": "text", "ops": ["sku_is", "title_contains"]},
    "accepts_marketing": {"label": "Accepts marketing", "type": "boolean", "ops": ["is"]},
    "email_domain": {"label": "Email domain", "type": "text", "ops": ["is"]},
}


# --- Validation ----------------------------------------------------------------------------------


def validate(rules: dict | None) -> dict:
    """The rules in their stored form, or SegmentError naming the first problem."""
    if rules is None:
        rules = {}
    if not isinstance(rules, dict):
        raise SegmentError('Give the rules as an object: {"match": "all", "rules": [...]}.')
    match = rules.get("match") or "all"
    if match not in ("all", "any"):
        raise SegmentError('Use "all" (every rule) or "any" (at least one rule).', field="match")
    items = rules.get("rules") or []
    if not isinstance(items, list):
        raise SegmentError("Give the rules as a list.")
    if len(items) > MAX_RULES:
        raise SegmentError(f"A segment has at most {MAX_RULES} rules.")
    return {"match": match, "rules": [_rule(index, item) for index, item in enumerate(items)]}


def _rule(index: int, item: Any) -> dict:
    where = f"rules[{index}]"
    if not isinstance(item, dict):
        raise SegmentError('Give each rule as an object: {"field": …, "op": …, "value": …}.', field=where)
    field, op = item.get("field"), item.get("op")
    if field not in FIELDS:
        raise SegmentError(f"Unknown field “{field}”: use one of {', '.join(FIELDS)}.", field=f"{where}.field")
    ops = FIELDS[field]["ops"]
    if op not in ops:
        raise SegmentError(f"{FIELDS[field]['label']} takes the operators {', '.join(ops)}.", field=f"{where}.op")
    value = VALUES[field](op, item.get("value"), f"{where}.value")
    return {"field": field, "op": op, "value": value}


def _decimal(value: Any, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise SegmentError("Give an amount, e.g. 100 or 49.90.", field=where)
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise SegmentError("Give an amount, e.g. 100 or 49.90.", field=where) from None
    if not amount.is_finite() or abs(amount) >= Decimal("1e14"):
        raise SegmentError("Give an amount, e.g. 100 or 49.90.", field=where)
    return str(amount)


def _integer(value: Any, where: str, *, least: int = 0, most: int | None = None) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise SegmentError("Give a whole number.", field=where)
    if value < least:
        raise SegmentError(f"Give a whole number of at least {least}.", field=where)
    if most is not None and value > most:
        raise SegmentError(f"Give a whole number of at most {most}.", field=where)
    return value


def _between(parse: Callable[[Any, str], Any], value: Any, where: str) -> list:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise SegmentError("Give two values, the lowest and the highest: [low, high].", field=where)
    low, high = parse(value[0], f"{where}[0]"), parse(value[1], f"{where}[1]")
    if Decimal(low) > Decimal(high):
        raise SegmentError("The first value must not be larger than the second.", field=where)
    return [low, high]


def _money_value(op: str, value: Any, where: str) -> str | list:
    return _between(_decimal, value, where) if op == "between" else _decimal(value, where)


def _count_value(op: str, value: Any, where: str) -> int | list:
    return _between(_integer, value, where) if op == "between" else _integer(value, where)


def _date_value(op: str, value: Any, where: str) -> str | int:
    if op in ("within_days", "not_within_days"):
        return _integer(value, where, least=1, most=MAX_DAYS)
    try:
        return date.fromisoformat(value.strip()).isoformat()
    except (AttributeError, ValueError):
        raise SegmentError("Give a date as YYYY-MM-DD, e.g. 2026-01-31.", field=where) from None


def _list(value: Any, where: str, what: str, normalise: Callable[[str], str]) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise SegmentError(f"Give a list of {what}.", field=where)
    return list(dict.fromkeys(normalise(v.strip()) for v in value))


def _platform_value(op: str, value: Any, where: str) -> list[str]:
    platforms = _list(value, where, 'platforms, e.g. ["shopify"]', str.lower)
    unknown = [p for p in platforms if p not in Platform.values]
    if unknown:
        raise SegmentError(f"Unknown platform “{unknown[0]}”.", field=where)
    return platforms


def _country_value(op: str, value: Any, where: str) -> list[str]:
    countries = _list(value, where, 'two-letter country codes, e.g. ["GB", "US"]', str.upper)
    wrong = [c for c in countries if not re.fullmatch(r"[A-Z]{2}", c)]
    if wrong:
        raise SegmentError(f"“{wrong[0]}” is not a two-letter country code (ISO 3166-1), e.g. GB.", field=where)
    return countries


def _text_value(op: str, value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise SegmentError("Give some text.", field=where)
    if len(value.strip()) > MAX_TEXT:
        raise SegmentError(f"Give at most {MAX_TEXT} characters.", field=where)
    return value.strip()


def _boolean_value(op: str, value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise SegmentError("Give true or false.", field=where)
    return value


def _domain_value(op: str, value: Any, where: str) -> str:
    domain = _text_value(op, value, where).lstrip("@").lower()
    if not re.fullmatch(r"[^\s@.]+(\.[^\s@.]+)+", domain):
        raise SegmentError("Give a domain, e.g. example.com.", field=where)
    return domain


VALUES: dict[str, Callable[[str, Any, str], Any]] = {
    "total_spent": _money_value,
    "order_count": _count_value,
    "last_order_at": _date_value,
    "first_order_at": _date_value,
    "platform": _platform_value,
    "country": _country_value,
    "tag": _text_value,
    "product_bought": _text_value,
    "accepts_marketing": _boolean_value,
    "email_domain": _domain_value,
}


# --- Queries -------------------------------------------------------------------------------------


def customers(tenant: Tenant | int | None, rules: dict | None) -> QuerySet[Customer]:
    """The tenant's customers the rules match: one queryset, each customer once."""
    spec = validate(rules)
    found = Customer.objects.for_tenant(tenant)
    if tenant is None or not spec["rules"]:
        return found
    tenant = _tenant(tenant)
    conditions = [CONDITIONS[rule["field"]](tenant, rule["op"], rule["value"]) for rule in spec["rules"]]
    return found.filter(reduce(operator.and_ if spec["match"] == "all" else operator.or_, conditions))


def _tenant(tenant: Tenant | int) -> Tenant:
    # A tenant given by id costs one query (its time zone places dates, its currency the merge data).
    return tenant if isinstance(tenant, Tenant) else Tenant.objects.get(pk=tenant)


def _counted_orders(tenant: Tenant) -> QuerySet[Order]:
    return Order.objects.for_tenant(tenant).exclude(status=OrderStatus.CANCELLED)


MONEY = DecimalField(max_digits=24, decimal_places=4)
COMPARE = {
    "gt": GreaterThan,
    "gte": GreaterThanOrEqual,
    "lt": LessThan,
    "lte": LessThanOrEqual,
}


def _per_customer(tenant: Tenant, aggregate, output_field, zero) -> Coalesce:
    """One figure of the outer customer's counted orders (0 without any): a correlated subquery
    on the (tenant, customer, placed_at) index, the same SQL on SQLite and PostgreSQL."""
    orders = _counted_orders(tenant).filter(customer=OuterRef("pk")).order_by().values("customer")
    return Coalesce(
        Subquery(orders.annotate(figure=aggregate).values("figure"), output_field=output_field),
        Value(zero, output_field=output_field),
        output_field=output_field,
    )


def _compare(expression, op: str, value, parse) -> Q:
    if op == "between":
        return Q(Range(expression, [parse(value[0]), parse(value[1])]))
    return Q(COMPARE[op](expression, parse(value)))


def _total_spent(tenant: Tenant, op: str, value) -> Q:
    return _compare(_per_customer(tenant, Sum("total"), MONEY, Decimal("0")), op, value, Decimal)


def _order_count(tenant: Tenant, op: str, value) -> Q:
    return _compare(_per_customer(tenant, Count("pk"), IntegerField(), 0), op, value, int)


def _day_start(tenant: Tenant, day: str) -> datetime:
    return datetime.combine(date.fromisoformat(day), time.min, tzinfo=zoneinfo.ZoneInfo(tenant.time_zone))


def _since(tenant: Tenant, op: str, value) -> datetime:
    """The moment a date rule turns on: orders at or after it are "after" / "within"."""
    if op in ("within_days", "not_within_days"):
        return timezone.now() - timedelta(days=value)
    if op == "after":
        return _day_start(tenant, value) + timedelta(days=1)
    return _day_start(tenant, value)


def _last_order_at(tenant: Tenant, op: str, value) -> Q:
    # Existence tests rather than a max(): each is one probe of the (tenant, customer, placed_at) index.
    orders = _counted_orders(tenant).filter(customer=OuterRef("pk"))
    ordered_since = Exists(orders.filter(placed_at__gte=_since(tenant, op, value)))
    if op in ("after", "within_days"):
        return Q(ordered_since)
    if op == "not_within_days":
        return ~Q(ordered_since)
    return Q(Exists(orders)) & ~Q(ordered_since)


def _first_order_at(tenant: Tenant, op: str, value) -> Q:
    # Customer.first_order_at is the derived placed_at of the earliest counted order (commerce.models).
    since = Q(first_order_at__gte=_since(tenant, op, value))
    if op in ("after", "within_days"):
        return since
    if op == "not_within_days":
        return ~since
    return Q(first_order_at__lt=_since(tenant, op, value))


def _negated(op: str, condition: Q) -> Q:
    return ~condition if op in ("not_in", "has_not") else condition


def _platform(tenant: Tenant, op: str, value) -> Q:
    connections = Connection.objects.for_tenant(tenant).filter(platform__in=value).values("pk")
    return _negated(op, Q(connection__in=connections))


def _country(tenant: Tenant, op: str, value) -> Q:
    return _negated(op, Q(In(Upper("country"), value)))


def _tag(tenant: Tenant, op: str, value) -> Q:
    return _negated(op, Q(HasTag(value)))


def _product_bought(tenant: Tenant, op: str, value) -> Q:
    # Lines carry copies of their order's `counted`, and the tenant's lines are covered by an index
    # holding sku and title (orderline_tenant_placed). An uncorrelated IN reads them once, where
    # SQLite would run a correlated EXISTS over them for every customer.
    lines = OrderLine.objects.for_tenant(tenant).filter(counted=True, order__customer__isnull=False)
    lines = lines.filter(sku=value) if op == "sku_is" else lines.filter(title__icontains=value)
    return Q(pk__in=lines.values("order__customer"))


def _accepts_marketing(tenant: Tenant, op: str, value) -> Q:
    return Q(accepts_marketing=value)


def _email_domain(tenant: Tenant, op: str, value) -> Q:
    return Q(email__iendswith=f"@{value}")


CONDITIONS: dict[str, Callable[[Tenant, str, Any], Q]] = {
    "total_spent": _total_spent,
    "order_count": _order_count,
    "last_order_at": _last_order_at,
    "first_order_at": _first_order_at,
    "platform": _platform,
    "country": _country,
    "tag": _tag,
    "product_bought": _product_bought,
    "accepts_marketing": _accepts_marketing,
    "email_domain": _email_domain,
}


class HasTag(Expression):
    """Whether the customer's `tags` (a JSON list of strings) holds this tag, whole and ignoring case.

    JSONField's `contains` lookup does not exist on SQLite, and a LIKE over the serialised list
    would match part of a tag or trip over escaped characters, so this asks each database to
    unpack the list: json_each on SQLite, jsonb_array_elements_text on PostgreSQL. Anything but a
    list holds no tags."""

    def __init__(self, tag: str) -> None:
        super().__init__(output_field=BooleanField())
        self.tag = tag
        self.tags = F("tags")

    def get_source_expressions(self) -> list:
        return [self.tags]

    def set_source_expressions(self, exprs) -> None:
        (self.tags,) = exprs

    def as_sql(self, compiler, connection):
        raise NotSupportedError(f"Tag rules are not supported on {connection.vendor}.")

    def as_sqlite(self, compiler, connection):
        tags, params = compiler.compile(self.tags)
        # SQLite's lower() folds ASCII letters only: an exact match catches the rest.
        sql = (
            f"EXISTS (SELECT 1 FROM json_each(CASE WHEN json_type({tags}) = 'array' THEN {tags} ELSE '[]' END)"
            " AS tag WHERE tag.type = 'text' AND (tag.value = %s OR lower(tag.value) = %s))"
        )
        return sql, (*params, *params, self.tag, self.tag.lower())

    def as_postgresql(self, compiler, connection):
        tags, params = compiler.compile(self.tags)
        sql = (
            "EXISTS (SELECT 1 FROM jsonb_array_elements("
            f"CASE WHEN jsonb_typeof({tags}) = 'array' THEN {tags} ELSE '[]'::jsonb END) AS tag(value)"
            " WHERE jsonb_typeof(tag.value) = 'string' AND lower(tag.value #>> '{}') = lower(%s))"
        )
        return sql, (*params, *params, self.tag)


# --- Addresses -----------------------------------------------------------------------------------

# Close to Django's validate_email for the dot-atom addresses shops hold, in a dialect Python's re
# (SQLite's REGEXP) and PostgreSQL's ~ read alike; applied to the trimmed, lower-case address.
EMAIL_PATTERN = (
    r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{1,62}[a-z0-9]$"
)
PHONE_PATTERN = r"^\+[1-9][0-9]{6,14}$"  # E.164, as campaigns.messaging.check_phone
PHONE_PUNCTUATION = (" ", "\u00a0", "\t", "\r", "\n", "-", "(", ")", ".")


def _email_address():
    value = F("email")
    for space in ("\t", "\r", "\n"):
        # Whitespace at either end goes with TRIM; inside, it stays and fails the pattern.
        value = Replace(value, Value(space), Value(" "))
    return Lower(Trim(value))


def _phone_number():
    # "+44 (0)20 …": the trunk 0 some write after the country code is not dialled from abroad.
    value = Replace(F("phone"), Value("(0)"), Value(""))
    for character in PHONE_PUNCTUATION:
        value = Replace(value, Value(character), Value(""))
    return value


def _address(channel: str):
    """The SQL expression of a customer's address on the channel, and the condition that it is
    one the channel can reach."""
    if channel == Channel.EMAIL:
        address, pattern = _email_address(), EMAIL_PATTERN
    elif channel == Channel.SMS:
        address, pattern = _phone_number(), PHONE_PATTERN
    else:
        raise SegmentError(f"Unknown channel “{channel}”: use email or sms.", field="channel")
    return address, Q(Regex(address, pattern))


def count(tenant: Tenant | int | None, rules: dict | None, channel: str | None = None) -> int:
    """How many customers match (channel None), or how many distinct addresses they can be
    reached at on the channel: one aggregate query either way."""
    found = customers(tenant, rules)
    if channel is None:
        return found.count()
    address, reachable = _address(channel)
    return found.filter(reachable).aggregate(n=Count(address, distinct=True))["n"]


# --- Recipients ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecipientData:
    address: str
    customer_id: int
    first_name: str
    last_name: str
    # {"orders_count", "total_spent" (decimal string), "currency", "last_order": {"number",
    # "placed_at" (ISO 8601), "total", "currency"} or None, "country", "platform"}
    merge: dict


def recipients(tenant: Tenant | int | None, rules: dict | None, channel: str) -> Iterator[RecipientData]:
    """The people the rules match, one per address reachable on the channel (`count` of them).

    Streams: the matching customers are read in chunks of CHUNK_SIZE in address order, and each
    chunk's merge data takes two queries. Of the customers sharing an address, the first by id
    is the recipient and the merge data is theirs."""
    found = customers(tenant, rules)
    address, reachable = _address(channel)
    rows = (
        found.filter(reachable)
        .annotate(recipient_address=address)
        .order_by("recipient_address", "pk")
        .values_list("recipient_address", "pk", "first_name", "last_name", "country", "connection__platform")
    )
    return _stream(None if tenant is None else _tenant(tenant), rows)


def _stream(tenant: Tenant | None, rows) -> Iterator[RecipientData]:
    if tenant is None:
        return
    chunk: list[tuple] = []
    last = None
    for row in rows.iterator(chunk_size=CHUNK_SIZE):
        if row[0] == last:
            continue
        last = row[0]
        chunk.append(row)
        if len(chunk) >= CHUNK_SIZE:
            yield from _with_merge(tenant, chunk)
            chunk = []
    if chunk:
        yield from _with_merge(tenant, chunk)


def _with_merge(tenant: Tenant, chunk: list[tuple]) -> Iterator[RecipientData]:
    ids = [row[1] for row in chunk]
    orders = _counted_orders(tenant).filter(customer_id__in=ids)
    totals = {
        customer: (number, spent)
        for customer, number, spent in orders.order_by()
        .values("customer")
        .annotate(number=Count("pk"), spent=Sum("total"))
        .values_list("customer", "number", "spent")
    }
    latest = _counted_orders(tenant).filter(customer=OuterRef("customer")).order_by("-placed_at", "-pk")
    last_orders = {
        customer: {"number": number, "placed_at": placed_at.isoformat(), "total": _amount(total), "currency": currency}
        for customer, number, placed_at, total, currency in orders.filter(pk=Subquery(latest.values("pk")[:1]))
        .order_by()
        .values_list("customer", "number", "placed_at", "total", "currency")
    }
    for address, pk, first_name, last_name, country, platform in chunk:
        number, spent = totals.get(pk, (0, Decimal("0")))
        last_order = last_orders.get(pk)
        merge = {
            "orders_count": number,
            "total_spent": _amount(spent),
            "currency": last_order["currency"] if last_order else tenant.base_currency,
            "last_order": last_order,
            "country": country,
            "platform": platform,
        }
        yield RecipientData(address, pk, first_name, last_name, merge)


def _amount(value: Decimal | None) -> str:
    """Money as a decimal string: two places unless it needs more (KWD has three)."""
    value = Decimal(value or 0)
    cents = value.quantize(Decimal("0.01"))
    return str(cents) if cents == value else format(value.normalize(), "f")
