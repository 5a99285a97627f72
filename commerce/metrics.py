"""The figures of a tenant's dashboard, computed in the database, cached and invalidated.

`dashboard(tenant, period_for(tenant, "30"))` returns the whole page's data as one plain dict
(its shape is in `dashboard`'s docstring). Every figure is an aggregate over indexed columns; only
small grouped rows come back to Python, never orders.

Definitions
- Days are the tenant's: a period runs from midnight before its first day to midnight after its
  last day in `tenant.time_zone`, and an order belongs to the local day of its `placed_at` (an order
  at 23:30 in New York on the 31st is on the 31st, although UTC says the 1st).
- Counted orders: placed in the period and not cancelled. Orders is their number; revenue is the
  sum of their `total`; AOV (average order value) is revenue / orders.
- Refunds: the sum of `Refund.amount` refunded in the period, whatever the order's date or
  status, in the refund's own currency. Net revenue = revenue - refunds.
- Money is never summed across currencies: every money figure is per currency. Order counts are
  summed across currencies.
- Change: percent change against the previous period (the same number of days immediately
  before), rounded to one decimal; None when the previous figure is zero or missing.
- Currencies: the base currency first (always present, so an empty dashboard shows zeros), then
  every currency with orders or refunds in the period or the previous period, most orders first.
- Unshipped: orders of any date that are not cancelled and are unfulfilled or partially fulfilled.
- Customers are the hub's customer rows that orders point at (orders without one, such as guest
  checkouts, count in neither figure). Among customers with a counted order in the period, one is
  new when they have no counted order before the period, else returning. Cancelled orders are
  ignored here as everywhere.
- Inventory: per variant, `available` summed over its locations. Low stock: 0 < available <= the
  reorder point (the variant's own, else the tenant's default). Out of stock: available <= 0.
  Variants without any inventory level do not track stock: they count as SKUs, nothing else.
- Series: revenue and orders per day, or per week (weeks start on Monday and are dated by their
  Monday, which may fall before the period; only the period's orders are in it), for every bucket
  of the period and every currency, zero-filled. Day buckets by default up to 31 days, else weeks.
- Channels: revenue and orders per (channel, currency); share is the percent of that currency's
  revenue. The preferred channel has the highest revenue in the base currency, else in the first
  currency with sales.
- Top products: line totals and quantities of counted orders in the period, grouped by SKU and
  title, the ten highest revenues in each currency (the order's currency).

Per source: `source_figures(tenant, connection_ids)` gives the stock and unshipped figures above
for only the rows that came from those connections (the overview's Amazon figures: commerce does
not know which platform a connection is, the page says which connections to count), in two
queries, cached like the rest.

Two figures read columns derived from orders when they are written (commerce.ingest, and
`Order.save` / `OrderLine.save` for single rows), so they need not search orders at read time:
customers by `Customer.first_order_at` (the earliest counted order), top products by the lines'
copies of their order's `placed_at`, `currency` and `counted`.

Caching: each (tenant, period, bucket) for five minutes, under a per-tenant version number that
is part of every key. `invalidate(tenant_id)` bumps the version, so every cached figure of the
tenant is dropped at once; integrations calls it whenever a sync commits a page.
"""

from __future__ import annotations

import logging
import time as clock
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Count, DateField, F, Q, QuerySet, Sum, Value, Window
from django.db.models.functions import Coalesce, RowNumber, Trunc
from django.utils import timezone

from tenants.models import Tenant

from .models import Customer, FulfillmentStatus, Order, OrderLine, OrderStatus, ProductVariant, Refund, StockItem

logger = logging.getLogger(__name__)

CACHE_SECONDS = 300
PERIOD_DAYS = {"7": 7, "30": 30, "90": 90}
MAX_CUSTOM_DAYS = 731
DAILY_UP_TO_DAYS = 31
BUCKETS = ("day", "week")
TOP_PRODUCTS = 10
LOW_STOCK_ROWS = 20
ZERO = Decimal("0")
CENT = Decimal("0.01")

# Short labels for the channels orders come from. Commerce knows no platforms, so this is a copy
# of what the dashboards show; an unknown channel gets a title-cased label.
CHANNEL_LABELS = {
    "shopify": "Shopify",
    "woocommerce": "WooCommerce",
    "amazon": "Amazon",
    "ebay": "eBay",
    "tiktok": "TikTok Shop",
    "stripe": "Stripe",
    "paypal": "PayPal",
    "square": "Square",
    "authorize_net": "Authorize.Net",
    "upload": "Upload",
    "manual": "Manual",
}


@dataclass(frozen=True)
class Period:
    start: date  # the first day, in the tenant's time zone (inclusive)
    end: date  # the last day (inclusive)
    key: str  # "7", "30", "90" or "custom"

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> Period:
        """The period of the same length immediately before this one."""
        end = self.start - timedelta(days=1)
        return Period(start=end - timedelta(days=self.days - 1), end=end, key=self.key)


def period_for(
    tenant: Tenant,
    key: str = "30",
    start: date | None = None,
    end: date | None = None,
    today: date | None = None,
) -> Period:
    """The last 7, 30 or 90 days up to today in the tenant's time zone, or a custom start..end."""
    key = str(key)
    if key == "custom":
        if start is None or end is None:
            raise ValueError("A custom period needs both a start date and an end date.")
        if start > end:
            raise ValueError("The start date must be on or before the end date.")
        if (end - start).days + 1 > MAX_CUSTOM_DAYS:
            raise ValueError(f"A custom period can be at most {MAX_CUSTOM_DAYS} days long.")
        return Period(start=start, end=end, key=key)
    if key not in PERIOD_DAYS:
        raise ValueError(f"Unknown period “{key}”: use 7, 30, 90 or custom.")
    today = today or timezone.localdate(timezone=tenant_zone(tenant))
    return Period(start=today - timedelta(days=PERIOD_DAYS[key] - 1), end=today, key=key)


def tenant_zone(tenant: Tenant) -> ZoneInfo:
    return ZoneInfo(tenant.time_zone)


def channel_label(channel: str) -> str:
    return CHANNEL_LABELS.get(channel) or channel.replace("_", " ").title()


# --- Cache ----------------------------------------------------------------------------------------


def _version_key(tenant_id: int) -> str:
    return f"metrics:version:{tenant_id}"


def _version(tenant_id: int) -> int:
    key = _version_key(tenant_id)
    try:
        version = cache.get(key)
        if version is None:
            # Seeded from the clock, not 0: if the version is ever evicted, the new one cannot bring
            # back figures cached under an old number.
            cache.add(key, clock.time_ns(), timeout=None)
            version = cache.get(key)
    except Exception:
        logger.warning("Cache unavailable; dashboard figures computed without it", exc_info=True)
        return 0
    return version


# The figures are cached, never only there: while the cache is out of reach they are computed from
# the database on every request, and dropping them is left to the tenant's `data_version`.


def _cache_get(key: str) -> Any:
    try:
        return cache.get(key)
    except Exception:
        return None


def _cache_set(key: str, data: Any) -> None:
    try:
        cache.set(key, data, CACHE_SECONDS)
    except Exception:
        logger.warning("Cache unavailable; dashboard figures not cached", exc_info=True)


def invalidate(tenant_id: int) -> None:
    """Drop every cached figure of the tenant (after a sync page, an upload or an edit commits)."""
    _bump(tenant_id)
    if connection.in_atomic_block:
        # Figures computed before the commit would be cached under the new version without the
        # change in them, so the version moves on again once the change is visible.
        transaction.on_commit(lambda: _bump(tenant_id))
    # The cache version reaches only the processes that share this cache (all of them with
    # Redis; only this one with the local-memory cache), so the tenant row's version moves on too,
    # once the change is committed, and every process reads it with the tenant.
    transaction.on_commit(lambda: Tenant.objects.filter(pk=tenant_id).update(data_version=F("data_version") + 1))


def _bump(tenant_id: int) -> None:
    key = _version_key(tenant_id)
    try:
        try:
            cache.incr(key)
        except ValueError:  # no version yet, so nothing of this tenant is cached
            cache.add(key, clock.time_ns(), timeout=None)
    except Exception:  # the tenant row's data_version moves on all the same
        logger.warning("Cache unavailable; dashboard figures dropped by the tenant's data version", exc_info=True)


def dashboard(tenant: Tenant, period: Period, *, bucket: str | None = None) -> dict[str, Any]:
    """The whole dashboard page's data, cached for five minutes or until `invalidate`.

    {
      "period": {"start", "end", "key", "days", "previous_start", "previous_end"},
      "currencies": ["USD", "EUR"],
      "sales": {currency: {"revenue", "orders", "aov", "refunds", "net_revenue",
                           "previous": {same keys}, "change": {same keys: percent or None}}},
      "orders": {"count", "previous", "change"},
      "unshipped": int,
      "customers": {"new", "returning"},
      "inventory": {"skus", "quantity", "low_stock", "out_of_stock"},
      "series": {"bucket": "day" | "week", "points": [{"date", "currency", "revenue", "orders"}]},
      "channels": [{"channel", "label", "currency", "revenue", "orders", "share"}],
      "preferred_channel": {"channel", "label", "currency"} | None,
      "top_products": [{"title", "sku", "quantity", "revenue", "currency"}],
      "low_stock": [{"variant_id", "sku", "title", "variant_title", "available", "reorder_point"}],
      "generated_at": datetime,
    }
    """
    bucket = bucket or ("day" if period.days <= DAILY_UP_TO_DAYS else "week")
    if bucket not in BUCKETS:
        raise ValueError(f"Unknown bucket “{bucket}”: use day or week.")
    # The tenant's settings are in the key, so changing them shows at once.
    key = ":".join(
        [
            "metrics:dashboard",
            str(tenant.pk),
            str(_version(tenant.pk)),
            str(tenant.data_version),
            period.key,
            period.start.isoformat(),
            period.end.isoformat(),
            bucket,
            tenant.time_zone,
            tenant.base_currency,
            str(tenant.default_reorder_point),
        ]
    )
    data = _cache_get(key)
    if data is None:
        data = compute_dashboard(tenant, period, bucket)
        _cache_set(key, data)
    return data


# --- Figures --------------------------------------------------------------------------------------


def compute_dashboard(tenant: Tenant, period: Period, bucket: str) -> dict[str, Any]:
    """`dashboard`'s data straight from the database, without the cache."""
    if connection.vendor != "postgresql":
        return _compute(tenant, period, bucket)
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        # Just-in-time compilation of the larger aggregates takes longer than running them. And
        # the indexes these queries use are in memory: at the default cost of a random read (4,
        # for spinning disks) the planner, expecting far more groups than there are and a hash
        # table that spills, sorts the period's orders and lines to group them instead of hashing
        # them, which is two to three times slower.
        cursor.execute("SET LOCAL jit = off; SET LOCAL random_page_cost = 1.1")
        return _compute(tenant, period, bucket)


def _compute(tenant: Tenant, period: Period, bucket: str) -> dict[str, Any]:
    zone = tenant_zone(tenant)
    previous = period.previous()
    start, end = _bounds(period, zone)
    previous_start, _ = _bounds(previous, zone)
    counted = Order.objects.for_tenant(tenant).exclude(status=OrderStatus.CANCELLED)

    grouped = list(
        counted.filter(placed_at__gte=start, placed_at__lt=end)
        .annotate(bucket=Trunc("placed_at", bucket, output_field=DateField(), tzinfo=zone))
        .values("bucket", "channel", "currency")
        .annotate(revenue=Sum("total"), orders=Count("*"))
        .order_by()
    )
    earlier = list(
        counted.filter(placed_at__gte=previous_start, placed_at__lt=start)
        .values("currency")
        .annotate(revenue=Sum("total"), orders=Count("*"))
        .order_by()
    )
    refunds = list(
        Refund.objects.for_tenant(tenant)
        .filter(refunded_at__gte=previous_start, refunded_at__lt=end)
        .values("currency")
        .annotate(
            current=Sum("amount", filter=Q(refunded_at__gte=start)),
            previous=Sum("amount", filter=Q(refunded_at__lt=start)),
        )
        .order_by()
    )

    current_sales: dict[str, dict] = defaultdict(lambda: {"revenue": ZERO, "orders": 0})
    for row in grouped:
        current_sales[row["currency"]]["revenue"] += row["revenue"]
        current_sales[row["currency"]]["orders"] += row["orders"]
    previous_sales = {row["currency"]: row for row in earlier}
    refunded = {row["currency"]: row for row in refunds}
    currencies = _currencies(tenant.base_currency, current_sales, previous_sales, refunded)

    sales = {}
    for currency in currencies:
        now = _figures(
            current_sales[currency]["revenue"],
            current_sales[currency]["orders"],
            _amount(refunded.get(currency, {}).get("current")),
        )
        before = _figures(
            _amount(previous_sales.get(currency, {}).get("revenue")),
            previous_sales.get(currency, {}).get("orders", 0),
            _amount(refunded.get(currency, {}).get("previous")),
        )
        sales[currency] = {
            **now,
            "previous": before,
            "change": {name: _change(now[name], before[name]) for name in now},
        }

    order_count = sum(row["orders"] for row in grouped)
    previous_count = sum(row["orders"] for row in earlier)
    channels = _channels(grouped, currencies)
    return {
        "period": {
            "start": period.start,
            "end": period.end,
            "key": period.key,
            "days": period.days,
            "previous_start": previous.start,
            "previous_end": previous.end,
        },
        "currencies": currencies,
        "sales": sales,
        "orders": {"count": order_count, "previous": previous_count, "change": _change(order_count, previous_count)},
        "unshipped": unshipped(tenant),
        "customers": customers(tenant, start, end),
        "inventory": inventory(tenant),
        "series": {"bucket": bucket, "points": _series(grouped, currencies, period, bucket)},
        "channels": channels,
        "preferred_channel": _preferred(channels),
        "top_products": sorted(top_products(tenant, start, end), key=lambda row: currencies.index(row["currency"])),
        "low_stock": low_stock(tenant),
        "generated_at": timezone.now(),
    }


def unshipped(tenant: Tenant, connection_ids: list[int] | None = None) -> int:
    orders = Order.objects.for_tenant(tenant)
    if connection_ids is not None:
        orders = orders.filter(connection_id__in=connection_ids)
    return (
        orders.filter(fulfillment_status__in=[FulfillmentStatus.UNFULFILLED, FulfillmentStatus.PARTIAL])
        .exclude(status=OrderStatus.CANCELLED)
        .count()
    )


def customers(tenant: Tenant, start: datetime, end: datetime) -> dict[str, int]:
    """New and returning customers, by `Customer.first_order_at` (their earliest counted order).

    A customer with a counted order in the period is new when their first is in it too, else
    returning. Conversely a first counted order in the period is a counted order in it, so the new
    ones are simply the customers whose first_order_at is in the period (a range of an index), and
    the returning ones the rest of those who ordered in it (one pass over the period's orders)."""
    # COUNT(DISTINCT) sorts the customer ids, which beats hashing them in a subquery's DISTINCT.
    total = (
        Order.objects.for_tenant(tenant)
        .exclude(status=OrderStatus.CANCELLED)
        .filter(placed_at__gte=start, placed_at__lt=end, customer__isnull=False)
        .aggregate(total=Count("customer", distinct=True))["total"]
    )
    new = Customer.objects.for_tenant(tenant).filter(first_order_at__gte=start, first_order_at__lt=end).count()
    return {"new": new, "returning": total - new}


def _stock(tenant: Tenant, connection_ids: list[int] | None = None) -> QuerySet:
    """The tenant's variants (of these connections only, if given) with `available` (summed over
    locations), `levels` and `point`."""
    variants = ProductVariant.objects.for_tenant(tenant)
    if connection_ids is not None:
        variants = variants.filter(connection_id__in=connection_ids)
    return variants.annotate(
        levels=Count("inventory_levels"),
        available=Coalesce(Sum("inventory_levels__available"), 0),
        point=Coalesce("reorder_point", Value(tenant.default_reorder_point)),
    )


def inventory(tenant: Tenant, connection_ids: list[int] | None = None) -> dict[str, int]:
    tracked = Q(levels__gt=0)
    figures = _stock(tenant, connection_ids).aggregate(
        skus=Count("pk"),
        quantity=Coalesce(Sum("available"), 0),
        low_stock=Count("pk", filter=tracked & Q(available__gt=0, available__lte=F("point"))),
        out_of_stock=Count("pk", filter=tracked & Q(available__lte=0)),
    )
    return {name: int(value) for name, value in figures.items()}


def source_figures(tenant: Tenant, connection_ids: list[int]) -> dict[str, int]:
    """SKUs, units, low and out of stock, and unshipped orders of the rows that came from these
    connections of the tenant, defined as the dashboard's own; cached for five minutes or until
    `invalidate`.

    {"skus", "quantity", "low_stock", "out_of_stock", "unshipped"}
    """
    ids = sorted(set(connection_ids))
    if not ids:
        return dict.fromkeys(("skus", "quantity", "low_stock", "out_of_stock", "unshipped"), 0)
    key = ":".join(
        [
            "metrics:sources",
            str(tenant.pk),
            str(_version(tenant.pk)),
            str(tenant.data_version),
            str(tenant.default_reorder_point),
            ",".join(map(str, ids)),
        ]
    )
    data = _cache_get(key)
    if data is None:
        data = {**inventory(tenant, ids), "unshipped": unshipped(tenant, ids)}
        _cache_set(key, data)
    return data


def stock_figures(tenant: Tenant) -> dict[str, int]:
    """The hub's own figures of the SKUs it keeps across channels (commerce.stock), in one
    aggregate: SKUs, units, low (0 < on hand <= the reorder point in force: the SKU's own, else the
    tenant's default) and out of stock. Not cached: one indexed aggregate over the tenant's SKUs.

    {"skus", "quantity", "low_stock", "out_of_stock"}
    """
    point = Coalesce("reorder_point", Value(tenant.default_reorder_point))
    figures = StockItem.objects.for_tenant(tenant).aggregate(
        skus=Count("pk"),
        quantity=Coalesce(Sum("on_hand"), 0),
        low_stock=Count("pk", filter=Q(on_hand__gt=0, on_hand__lte=point)),
        out_of_stock=Count("pk", filter=Q(on_hand__lte=0)),
    )
    return {name: int(value) for name, value in figures.items()}


def low_stock(tenant: Tenant) -> list[dict[str, Any]]:
    rows = (
        _stock(tenant)
        .filter(levels__gt=0, available__lte=F("point"))
        .order_by("available", "sku", "pk")
        .values("pk", "sku", "title", "product__title", "available", "point")[:LOW_STOCK_ROWS]
    )
    return [
        {
            "variant_id": row["pk"],
            "sku": row["sku"],
            "title": row["product__title"],
            "variant_title": row["title"],
            "available": row["available"],
            "reorder_point": row["point"],
        }
        for row in rows
    ]


def top_products(tenant: Tenant, start: datetime, end: datetime) -> list[dict[str, Any]]:
    # The lines carry their order's placed_at, currency and counted, so this reads one index.
    ranked = (
        OrderLine.objects.for_tenant(tenant)
        .filter(placed_at__gte=start, placed_at__lt=end, counted=True)
        .values("sku", "title", "currency")
        .annotate(quantity=Sum("quantity"), revenue=Sum("total"))
        .annotate(
            rank=Window(RowNumber(), partition_by=F("currency"), order_by=[F("revenue").desc(), F("sku"), F("title")])
        )
        .filter(rank__lte=TOP_PRODUCTS)
        .order_by("currency", "rank")
    )
    return [
        {
            "title": row["title"],
            "sku": row["sku"],
            "quantity": row["quantity"],
            "revenue": row["revenue"],
            "currency": row["currency"],
        }
        for row in ranked
    ]


# --- Shaping --------------------------------------------------------------------------------------


def _bounds(period: Period, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The period as [start, end) instants: local midnight before the first day and after the last."""
    return (
        datetime.combine(period.start, time.min, tzinfo=zone),
        datetime.combine(period.end + timedelta(days=1), time.min, tzinfo=zone),
    )


def _amount(value: Decimal | None) -> Decimal:
    return ZERO if value is None else value


def _figures(revenue: Decimal, orders: int, refunds: Decimal) -> dict[str, Any]:
    return {
        "revenue": revenue,
        "orders": orders,
        "aov": (revenue / orders).quantize(CENT, ROUND_HALF_UP) if orders else None,
        "refunds": refunds,
        "net_revenue": revenue - refunds,
    }


def _change(current: Decimal | int | None, previous: Decimal | int | None) -> float | None:
    if current is None or not previous:
        return None
    return round(float((Decimal(current) - Decimal(previous)) / Decimal(previous) * 100), 1)


def _currencies(base: str, current: dict, previous: dict, refunded: dict) -> list[str]:
    orders = {
        currency: current[currency]["orders"] if currency in current else 0
        for currency in {*current, *previous, *refunded}
    }
    others = sorted((c for c in orders if c != base), key=lambda c: (-orders[c], c))
    return [base, *others]


def _series(grouped: list[dict], currencies: list[str], period: Period, bucket: str) -> list[dict[str, Any]]:
    step = timedelta(days=1 if bucket == "day" else 7)
    first = period.start if bucket == "day" else period.start - timedelta(days=period.start.weekday())
    dates = []
    while first <= period.end:
        dates.append(first)
        first += step
    totals: dict[tuple[date, str], dict] = defaultdict(lambda: {"revenue": ZERO, "orders": 0})
    for row in grouped:
        totals[row["bucket"], row["currency"]]["revenue"] += row["revenue"]
        totals[row["bucket"], row["currency"]]["orders"] += row["orders"]
    return [
        {"date": day, "currency": currency, **totals.get((day, currency), {"revenue": ZERO, "orders": 0})}
        for currency in currencies
        for day in dates
    ]


def _channels(grouped: list[dict], currencies: list[str]) -> list[dict[str, Any]]:
    totals: dict[tuple[str, str], dict] = defaultdict(lambda: {"revenue": ZERO, "orders": 0})
    for row in grouped:
        totals[row["channel"], row["currency"]]["revenue"] += row["revenue"]
        totals[row["channel"], row["currency"]]["orders"] += row["orders"]
    revenue_of: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for (_, currency), figures in totals.items():
        revenue_of[currency] += figures["revenue"]
    rows = [
        {
            "channel": channel,
            "label": channel_label(channel),
            "currency": currency,
            "revenue": figures["revenue"],
            "orders": figures["orders"],
            "share": round(float(figures["revenue"] / revenue_of[currency] * 100), 1) if revenue_of[currency] else 0.0,
        }
        for (channel, currency), figures in totals.items()
    ]
    order = {currency: n for n, currency in enumerate(currencies)}
    return sorted(rows, key=lambda row: (order[row["currency"]], -row["revenue"], row["channel"]))


def _preferred(channels: list[dict]) -> dict[str, str] | None:
    # `channels` is sorted by currency (base first), then revenue: the first row with sales wins.
    for row in channels:
        if row["revenue"] > 0:
            return {"channel": row["channel"], "label": row["label"], "currency": row["currency"]}
    return None
