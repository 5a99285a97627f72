"""The client's own dashboard. Every query is scoped with `for_tenant(request.tenant)`."""

from __future__ import annotations

import csv
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.core.paginator import Paginator
from django.db.models import Count, F, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone

from integrations.models import Connection, SyncFrequency, SyncStatus
from integrations.platforms import Platform
from integrations.services import connection_stats
from integrations.tasks import next_sync_times
from tenants.models import Activity, Tenant
from tenants.views import tenant_required

from . import charts
from .metrics import channel_label, dashboard, period_for, source_figures
from .models import FulfillmentStatus, Order, OrderStatus, ProductVariant
from .stock_views import stock_context

PERIODS = {"7": "7 days", "30": "30 days", "90": "90 days"}
DEFAULT_PERIOD = "30"
ORDERS_PER_PAGE = 50
UNSHIPPED = "unshipped"
CSV_COLUMNS = (
    "number",
    "channel",
    "placed_at",
    "status",
    "financial_status",
    "fulfillment_status",
    "currency",
    "subtotal",
    "discounts",
    "shipping",
    "tax",
    "total",
    "email",
)
# A spreadsheet runs a cell that starts with one of these as a formula (OWASP "CSV injection").
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


# --- Overview -------------------------------------------------------------------------------------


def _period(request: HttpRequest, tenant: Tenant):
    """The period the page asks for, and a message when a custom range cannot be used (the page
    then shows the default period instead of failing)."""
    key = request.GET.get("period", DEFAULT_PERIOD)
    if key == "custom":
        start, end = request.GET.get("start", "").strip(), request.GET.get("end", "").strip()
        if not start or not end:
            return period_for(tenant, DEFAULT_PERIOD), "Choose both a start and an end date for a custom period."
        try:
            start_day, end_day = date.fromisoformat(start), date.fromisoformat(end)
        except ValueError:
            return period_for(tenant, DEFAULT_PERIOD), "Enter the dates of a custom period as YYYY-MM-DD."
        try:
            return period_for(tenant, "custom", start_day, end_day), None
        except ValueError as error:  # its messages are written for people
            return period_for(tenant, DEFAULT_PERIOD), str(error)
    if key not in PERIODS:
        key = DEFAULT_PERIOD
    return period_for(tenant, key), None


@dataclass
class ConnectionRow:
    connection: Connection
    stats: dict
    next_sync: object

    @property
    def last_status_label(self) -> str:
        status = self.stats.get("last_status")
        return SyncStatus(status).label if status in SyncStatus.values else ""

    @property
    def schedule_note(self) -> str:
        """Why there is no next sync time, in words."""
        c = self.connection
        if not c.enabled:
            return "Paused"
        if c.sync_frequency == SyncFrequency.MANUAL:
            return "Manual only"
        if c.is_demo:
            return "Not scheduled (demo data)"
        return "Not scheduled yet"


def connection_rows(tenant: Tenant) -> list[ConnectionRow]:
    connections = list(Connection.objects.for_tenant(tenant).order_by("name"))
    if not connections:
        return []
    stats = connection_stats(connections)
    next_times = next_sync_times(connections)
    return [ConnectionRow(c, stats.get(c.pk, {}), next_times.get(c.pk)) for c in connections]


def amazon_figures(tenant: Tenant, rows: list[ConnectionRow]) -> dict | None:
    """The overview's Amazon figures, over every Amazon connection of the tenant; None without one.
    The last sync is the latest finished run of any of them, from the connections panel's stats."""
    amazon = [row for row in rows if row.connection.platform == Platform.AMAZON]
    if not amazon:
        return None
    last = max(
        (row for row in amazon if row.stats.get("last_finished_at")),
        key=lambda row: row.stats["last_finished_at"],
        default=None,
    )
    return {
        **source_figures(tenant, [row.connection.pk for row in amazon]),
        "accounts": len(amazon),
        "last_sync": last,
    }


@tenant_required
def home(request: HttpRequest) -> HttpResponse:
    tenant = request.tenant
    period, period_error = _period(request, tenant)
    data = dashboard(tenant, period)
    info, series = data["period"], data["series"]
    # The base currency is always listed (so an empty dashboard shows zeros); a chart is drawn only
    # for a currency that sold something.
    selling = [c for c in data["currencies"] if data["sales"][c]["orders"]]
    channel_currencies = list(dict.fromkeys(row["currency"] for row in data["channels"]))
    product_currencies = list(dict.fromkeys(row["currency"] for row in data["top_products"]))
    connections = connection_rows(tenant)
    context = {
        "data": data,
        "period": info,
        "period_choices": PERIODS,
        "period_error": period_error,
        # After a bad custom range the form shows what was typed, so it can be corrected.
        "form_start": request.GET.get("start", "")[:10] if period_error else info["start"].isoformat(),
        "form_end": request.GET.get("end", "")[:10] if period_error else info["end"].isoformat(),
        "sales": [(currency, data["sales"][currency]) for currency in data["currencies"]],
        "sales_charts": [
            (c, charts.sales_chart(series["points"], c, info["start"], info["end"], series["bucket"])) for c in selling
        ],
        "channel_charts": [(c, charts.channel_chart(data["channels"], c)) for c in channel_currencies],
        "top_product_charts": [(c, charts.top_products_chart(data["top_products"], c)) for c in product_currencies],
        "order_count": data["orders"]["count"],
        "stock_alerts": data["inventory"]["low_stock"] + data["inventory"]["out_of_stock"],
        "connections": connections,
        "amazon": amazon_figures(tenant, connections),
        "recent_orders": Order.objects.for_tenant(tenant).select_related("customer")[:10],
        # The activity panel's first entries; its script polls the feed for newer ones.
        "activity": list(Activity.objects.for_tenant(tenant).order_by("-id")[:10]),
    }
    return render(request, "dashboard/home.html", context)


# --- Orders ---------------------------------------------------------------------------------------


@dataclass
class OrderFilters:
    q: str = ""
    channel: str = ""
    status: str = ""
    fulfillment: str = ""

    @classmethod
    def from_request(cls, request: HttpRequest) -> OrderFilters:
        get = request.GET
        status = get.get("status", "")
        fulfillment = get.get("fulfillment", "")
        return cls(
            q=get.get("q", "").strip()[:100],
            channel=get.get("channel", "").strip()[:32],
            status=status if status in OrderStatus.values else "",
            fulfillment=fulfillment if fulfillment in {*FulfillmentStatus.values, UNSHIPPED} else "",
        )

    @property
    def active(self) -> bool:
        return any((self.q, self.channel, self.status, self.fulfillment))

    def apply(self, orders: QuerySet[Order]) -> QuerySet[Order]:
        if self.q:
            orders = orders.filter(Q(number__icontains=self.q.lstrip("#")) | Q(email__icontains=self.q))
        if self.channel:
            orders = orders.filter(channel=self.channel)
        if self.status:
            orders = orders.filter(status=self.status)
        if self.fulfillment == UNSHIPPED:
            # The overview's "unshipped" figure: not cancelled, nothing or only part shipped.
            orders = orders.filter(
                fulfillment_status__in=[FulfillmentStatus.UNFULFILLED, FulfillmentStatus.PARTIAL]
            ).exclude(status=OrderStatus.CANCELLED)
        elif self.fulfillment:
            orders = orders.filter(fulfillment_status=self.fulfillment)
        return orders


def filtered_orders(request: HttpRequest) -> tuple[QuerySet[Order], OrderFilters]:
    filters = OrderFilters.from_request(request)
    return filters.apply(Order.objects.for_tenant(request.tenant)).order_by("-placed_at", "-pk"), filters


@tenant_required
def order_list(request: HttpRequest) -> HttpResponse:
    orders, filters = filtered_orders(request)
    page = Paginator(orders.select_related("customer"), ORDERS_PER_PAGE).get_page(request.GET.get("page"))
    channels = Order.objects.for_tenant(request.tenant).values_list("channel", flat=True).distinct().order_by("channel")
    context = {
        "page": page,
        "filters": filters,
        "channel_choices": [(c, channel_label(c)) for c in channels],
        "status_choices": OrderStatus.choices,
        "fulfillment_choices": [(UNSHIPPED, "Not shipped yet"), *FulfillmentStatus.choices],
    }
    return render(request, "dashboard/order_list.html", context)


def address_lines(address: dict) -> list[str]:
    """A stored address as printable lines (Shopify and WooCommerce spell a few keys differently)."""

    def pick(*keys: str) -> str:
        return next((str(address[k]).strip() for k in keys if address.get(k)), "")

    name = " ".join(filter(None, [pick("first_name"), pick("last_name")])) or pick("name")
    place = " ".join(filter(None, [pick("zip", "postcode"), pick("city"), pick("province", "state")]))
    lines = [name, pick("company"), pick("address1", "address_1"), pick("address2", "address_2"), place]
    return [line for line in [*lines, pick("country")] if line]


@tenant_required
def order_detail(request: HttpRequest, pk: int) -> HttpResponse:
    order = get_object_or_404(Order.objects.for_tenant(request.tenant).select_related("customer"), pk=pk)
    context = {
        "order": order,
        "lines": order.lines.all(),
        "channel": channel_label(order.channel),
        "ships_to": address_lines(order.shipping_address or {}),
    }
    return render(request, "dashboard/order_detail.html", context)


class _Echo:
    """A file-like object whose write() hands the line back, so csv.writer can feed a stream."""

    def write(self, value: str) -> str:
        return value


def csv_cell(value: object) -> object:
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def csv_amount(value: Decimal) -> str:
    """At least two decimal places, more only when the amount has them (10.0000 → "10.00")."""
    exponent = value.normalize().as_tuple().exponent
    places = max(2, -exponent) if isinstance(exponent, int) else 2
    return f"{value:.{places}f}"


@tenant_required
def order_csv(request: HttpRequest) -> StreamingHttpResponse:
    """The order table with the page's filters, streamed in chunks so a large export never sits in memory."""
    orders, _ = filtered_orders(request)
    tz = zoneinfo.ZoneInfo(request.tenant.time_zone)
    rows = orders.values_list(*CSV_COLUMNS).iterator(chunk_size=2000)
    placed_at = CSV_COLUMNS.index("placed_at")
    amounts = [CSV_COLUMNS.index(name) for name in ("subtotal", "discounts", "shipping", "tax", "total")]

    def lines() -> Iterator[str]:
        writer = csv.writer(_Echo())
        yield writer.writerow(CSV_COLUMNS)
        for row in rows:
            cells = [csv_cell(value) for value in row]
            cells[placed_at] = row[placed_at].astimezone(tz).isoformat()
            for i in amounts:
                cells[i] = csv_amount(row[i])
            yield writer.writerow(cells)

    filename = f"orders-{request.tenant.slug}-{timezone.localdate(timezone=tz).isoformat()}.csv"
    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


# --- Stock ----------------------------------------------------------------------------------------


def stock_alerts(tenant: Tenant) -> QuerySet[ProductVariant]:
    """Variants at or below their reorder point, emptiest first. The definitions are the metrics'
    (`commerce.metrics`): stock is summed over locations, the reorder point is the variant's or the
    tenant's default, and a variant without inventory levels does not track stock."""
    return (
        ProductVariant.objects.for_tenant(tenant)
        .annotate(
            levels=Count("inventory_levels"),
            available=Coalesce(Sum("inventory_levels__available"), 0),
            point=Coalesce("reorder_point", Value(tenant.default_reorder_point)),
        )
        .filter(levels__gt=0, available__lte=F("point"))
        .select_related("product")
        .order_by("available", "sku", "pk")
    )


@tenant_required
def stock(request: HttpRequest) -> HttpResponse:
    data = dashboard(request.tenant, period_for(request.tenant, DEFAULT_PERIOD))
    page = Paginator(stock_alerts(request.tenant), ORDERS_PER_PAGE).get_page(request.GET.get("page"))
    context = {"inventory": data["inventory"], "page": page, **stock_context(request)}
    return render(request, "dashboard/stock.html", context)
