"""Writing normalised records into commerce tables: one bulk statement per model per page.

The sync engine, webhooks, uploads and the demo seeder all land rows through here, so a record
from any source ends in the one row keyed by (connection, external id).

`ingest(stream, source, records)` takes one page of `commerce.records` and writes it in one
transaction. A record whose `updated_at` is not newer than the stored `platform_updated_at` is
left alone with everything nested in it, so a late webhook or a slow sync page never overwrites
newer data; a record without `updated_at` is always written.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

from .models import (
    Customer,
    InventoryLevel,
    Order,
    OrderLine,
    OrderStatus,
    Product,
    ProductVariant,
    Refund,
    refresh_first_orders,
    refresh_line_copies,
)
from .records import (
    CustomerRecord,
    IngestFailure,
    IngestResult,
    InventoryRecord,
    OrderRecord,
    ProductRecord,
)

UNIQUE_FIELDS = ["connection", "external_id"]

# The columns a record sets; everything else on a row (reorder points, created_at) is the hub's own.
CUSTOMER_FIELDS = [
    "email",
    "first_name",
    "last_name",
    "phone",
    "country",
    "accepts_marketing",
    "tags",
    "platform_created_at",
    "platform_updated_at",
    "raw",
]
ORDER_FIELDS = [
    "number",
    "channel",
    "customer",
    "email",
    "status",
    "financial_status",
    "fulfillment_status",
    "currency",
    "subtotal",
    "discounts",
    "shipping",
    "tax",
    "total",
    "placed_at",
    "billing_address",
    "shipping_address",
    "platform_updated_at",
    "raw",
]
# A line's copies of its order's columns, for the dashboard (see OrderLine).
LINE_COPIES = ["placed_at", "currency", "counted"]
LINE_FIELDS = [
    *["order", "variant", "sku", "title", "quantity", "unit_price", "total", "platform_updated_at", "raw"],
    *LINE_COPIES,
]
REFUND_FIELDS = ["order", "amount", "currency", "reason", "refunded_at", "platform_updated_at", "raw"]
PRODUCT_FIELDS = ["title", "vendor", "product_type", "status", "platform_updated_at", "raw"]
VARIANT_FIELDS = ["product", "sku", "title", "price", "currency", "platform_updated_at", "raw"]
LEVEL_FIELDS = ["variant", "location_id", "location_name", "available", "platform_updated_at", "raw"]


@dataclass(frozen=True)
class Source:
    """Where a page of records comes from: every row written gets this tenant and connection."""

    tenant_id: int
    connection_id: int
    channel: str  # the platform, copied to Order.channel


class UnknownStream(ValueError):
    """`ingest` was given a stream name commerce has no ingester for."""


class _Versioned(Protocol):
    external_id: str
    updated_at: datetime | None


R = TypeVar("R", bound=_Versioned)
Stored = dict[str, datetime | None]


# --- Streams --------------------------------------------------------------------------------------


def ingest(stream: str, source: Source, records: list) -> IngestResult:
    try:
        ingester = INGESTERS[stream]
    except KeyError:
        raise UnknownStream(f"Commerce has no ingester for the stream “{stream}”.") from None
    return ingester(source, records)


def ingest_customers(source: Source, records: list[CustomerRecord]) -> IngestResult:
    with transaction.atomic():
        customers, stored = _upsert_customers(source, records, timezone.now())
    return _tally(records, customers, stored)


def ingest_orders(source: Source, records: list[OrderRecord]) -> IngestResult:
    """Upsert orders with their customers, lines and refunds. Lines no longer in a written order
    are deleted. Every line of a written order is rewritten with it, copies of the order's columns
    included, and the customers the written orders point at, now or before, get their
    first_order_at recomputed."""
    now = timezone.now()
    with transaction.atomic():
        orders, stored, before = _changed_with(Order, source, _latest(records), "customer_id")
        # A skipped order's customer is a snapshot as old as the order, so it is skipped too. An
        # order carries only part of its customer, so it creates missing customers but never
        # overwrites one: the customers stream owns their details.
        embedded = [order.customer for order in orders.values() if order.customer is not None]
        _insert_missing_customers(source, embedded, now)
        # The customers the written orders point at now and those they pointed at before.
        left = {before[external_id][0] for external_id in orders if external_id in before} - {None}
        customer_ids = _lock_customers(source, {customer.external_id for customer in embedded}, left)
        _write(
            Order,
            [_order_row(source, order, _version(order, stored), customer_ids, now) for order in orders.values()],
            ORDER_FIELDS,
        )
        order_ids = _ids(Order, source, orders)
        _write_lines(source, orders, stored, order_ids, now)
        _write_refunds(source, orders, stored, order_ids, now)
        # An order moved to another customer may have been the first of the one it left.
        refresh_first_orders([*customer_ids.values(), *left])
    return _tally(records, orders, stored)


def ingest_products(source: Source, records: list[ProductRecord]) -> IngestResult:
    """Upsert products, their variants and the variants' inventory levels. Each level of nesting
    keeps the stale rule on its own `updated_at` as well as its parent's."""
    now = timezone.now()
    with transaction.atomic():
        products, stored = _changed(Product, source, _latest(records))
        _write(
            Product,
            [
                Product(
                    **_common(source, product.external_id, product.raw, _version(product, stored), now),
                    title=product.title,
                    vendor=product.vendor,
                    product_type=product.product_type,
                    status=product.status,
                )
                for product in products.values()
            ],
            PRODUCT_FIELDS,
        )
        product_ids = _ids(Product, source, products)

        latest_variants = _latest(v for product in products.values() for v in product.variants)
        variants, stored_variants = _changed(ProductVariant, source, latest_variants)
        product_of = {
            v.external_id: p.external_id
            for p in products.values()
            for v in p.variants
            if variants.get(v.external_id) is v
        }
        _write(
            ProductVariant,
            [
                ProductVariant(
                    **_common(source, variant.external_id, variant.raw, _version(variant, stored_variants), now),
                    product_id=product_ids[product_of[variant.external_id]],
                    sku=variant.sku,
                    title=variant.title,
                    price=variant.price,
                    currency=variant.currency,
                )
                for variant in variants.values()
            ],
            VARIANT_FIELDS,
        )
        variant_ids = _ids(ProductVariant, source, variants)

        latest_levels = _latest(level for variant in variants.values() for level in variant.inventory)
        levels, stored_levels = _changed(InventoryLevel, source, latest_levels)
        # A level nested in a variant belongs to it, whatever its own variant_external_id says.
        variant_of = {
            level.external_id: variant_ids[v.external_id]
            for v in variants.values()
            for level in v.inventory
            if levels.get(level.external_id) is level
        }
        _write(
            InventoryLevel,
            [_level_row(source, level, variant_of[level.external_id], stored_levels, now) for level in levels.values()],
            LEVEL_FIELDS,
        )
    return _tally(records, products, stored)


def ingest_inventory(source: Source, records: list[InventoryRecord]) -> IngestResult:
    """Upsert stock levels of variants this connection already has; stock of an unknown variant
    comes back as a failure for the caller to quarantine, and the rest is stored."""
    now = timezone.now()
    with transaction.atomic():
        variant_ids = _ids(ProductVariant, source, {record.variant_external_id for record in records})
        known = [record for record in records if record.variant_external_id in variant_ids]
        levels, stored = _changed(InventoryLevel, source, _latest(known))
        _write(
            InventoryLevel,
            [
                _level_row(source, level, variant_ids[level.variant_external_id], stored, now)
                for level in levels.values()
            ],
            LEVEL_FIELDS,
        )
    result = _tally(known, levels, stored)
    result.failures = [
        IngestFailure(
            external_id=record.external_id,
            payload=record.raw,
            error=f"unknown variant “{record.variant_external_id}”: not synced from this connection yet.",
        )
        for record in records
        if record.variant_external_id not in variant_ids
    ]
    return result


INGESTERS: dict[str, Callable[[Source, list], IngestResult]] = {
    "orders": ingest_orders,
    "products": ingest_products,
    "customers": ingest_customers,
    "inventory": ingest_inventory,
}


# --- Rows -----------------------------------------------------------------------------------------


def _common(source: Source, external_id: str, raw: dict[str, Any], version: datetime | None, now: datetime) -> dict:
    return {
        "tenant_id": source.tenant_id,
        "connection_id": source.connection_id,
        "external_id": external_id,
        "platform_updated_at": version,
        "raw": raw,
        "created_at": now,
        "updated_at": now,
    }


def _upsert_customers(source: Source, records: Iterable[CustomerRecord], now: datetime) -> tuple[dict, Stored]:
    customers, stored = _changed(Customer, source, _latest(records))
    _write(
        Customer,
        [_customer_row(source, customer, _version(customer, stored), now) for customer in customers.values()],
        CUSTOMER_FIELDS,
    )
    return customers, stored


def _customer_row(source: Source, customer: CustomerRecord, version: datetime | None, now: datetime) -> Customer:
    return Customer(
        **_common(source, customer.external_id, customer.raw, version, now),
        email=customer.email,
        first_name=customer.first_name,
        last_name=customer.last_name,
        phone=customer.phone,
        country=customer.country,
        accepts_marketing=customer.accepts_marketing,
        tags=customer.tags,
        platform_created_at=customer.created_at,
    )


def _insert_missing_customers(source: Source, records: Iterable[CustomerRecord], now: datetime) -> None:
    rows = [_customer_row(source, customer, customer.updated_at, now) for customer in _latest(records).values()]
    if rows:
        Customer.objects.bulk_create(sorted(rows, key=lambda row: row.external_id), ignore_conflicts=True)


def _order_row(
    source: Source, order: OrderRecord, version: datetime | None, customer_ids: dict[str, int], now: datetime
) -> Order:
    return Order(
        **_common(source, order.external_id, order.raw, version, now),
        number=order.number,
        channel=source.channel,
        customer_id=customer_ids[order.customer.external_id] if order.customer else None,
        email=order.email,
        status=order.status,
        financial_status=order.financial_status,
        fulfillment_status=order.fulfillment_status,
        currency=order.currency,
        subtotal=order.subtotal,
        discounts=order.discounts,
        shipping=order.shipping,
        tax=order.tax,
        total=order.total,
        placed_at=order.placed_at,
        billing_address=order.billing_address,
        shipping_address=order.shipping_address,
    )


def _write_lines(
    source: Source, orders: dict[str, OrderRecord], stored: Stored, order_ids: dict[str, int], now: datetime
) -> None:
    lines = {line.external_id: (order, line) for order in orders.values() for line in order.lines}
    variant_ids = _ids(
        ProductVariant, source, {line.variant_external_id for _, line in lines.values() if line.variant_external_id}
    )
    _write(
        OrderLine,
        [
            OrderLine(
                **_common(source, line.external_id, line.raw, _version(order, stored), now),
                order_id=order_ids[order.external_id],
                variant_id=variant_ids.get(line.variant_external_id),
                sku=line.sku,
                title=line.title,
                quantity=line.quantity,
                unit_price=line.unit_price,
                total=line.total,
                placed_at=order.placed_at,
                currency=order.currency,
                counted=order.status != OrderStatus.CANCELLED,
            )
            for order, line in lines.values()
        ],
        LINE_FIELDS,
    )
    # Only orders that were stored before can have lines that are gone; a new order has none.
    rewritten = [order_ids[external_id] for external_id in orders if external_id in stored]
    if rewritten:
        _scoped(OrderLine, source).filter(order_id__in=rewritten).exclude(external_id__in=list(lines)).delete()


def _write_refunds(
    source: Source, orders: dict[str, OrderRecord], stored: Stored, order_ids: dict[str, int], now: datetime
) -> None:
    refunds = {refund.external_id: (order, refund) for order in orders.values() for refund in order.refunds}
    _write(
        Refund,
        [
            Refund(
                **_common(source, refund.external_id, refund.raw, _version(order, stored), now),
                order_id=order_ids[order.external_id],
                amount=refund.amount,
                currency=refund.currency,
                reason=refund.reason,
                refunded_at=refund.refunded_at,
            )
            for order, refund in refunds.values()
        ],
        REFUND_FIELDS,
    )


def _level_row(
    source: Source, level: InventoryRecord, variant_id: int, stored: Stored, now: datetime
) -> InventoryLevel:
    return InventoryLevel(
        **_common(source, level.external_id, level.raw, _version(level, stored), now),
        variant_id=variant_id,
        location_id=level.location_id,
        location_name=level.location_name,
        available=level.available,
    )


# --- Queries --------------------------------------------------------------------------------------


def _scoped(model: type[models.Model], source: Source) -> models.QuerySet:
    return model.objects.for_tenant(source.tenant_id).filter(connection_id=source.connection_id)


def _latest(records: Iterable[R]) -> dict[str, R]:
    """One record per external id (a page may repeat one): the later, unless it is older."""
    latest: dict[str, R] = {}
    for record in records:
        kept = latest.get(record.external_id)
        if kept is None or not _older(record.updated_at, kept.updated_at):
            latest[record.external_id] = record
    return latest


def _changed(model: type[models.Model], source: Source, records: dict[str, R]) -> tuple[dict[str, R], Stored]:
    """The records to write (new, newer than stored, or undated) and the stored versions.

    The stored rows stay locked until the page commits, so a concurrent webhook or sync cannot
    write between this comparison and the upsert (SQLite serialises writers anyway)."""
    changed, stored, _ = _changed_with(model, source, records)
    return changed, stored


def _changed_with(
    model: type[models.Model], source: Source, records: dict[str, R], *columns: str
) -> tuple[dict[str, R], Stored, dict[str, tuple]]:
    """`_changed`, and the stored rows' values of `columns` in the same query."""
    if not records:
        return {}, {}, {}
    rows = (
        _scoped(model, source)
        .select_for_update()
        .filter(external_id__in=list(records))
        .order_by("pk")
        .values_list("external_id", "platform_updated_at", *columns)
    )
    stored: Stored = {}
    values: dict[str, tuple] = {}
    for external_id, version, *rest in rows:
        stored[external_id] = version
        values[external_id] = tuple(rest)
    changed = {
        external_id: record
        for external_id, record in records.items()
        if external_id not in stored or not _older_or_same(record.updated_at, stored[external_id])
    }
    return changed, stored, values


def _older(a: datetime | None, b: datetime | None) -> bool:
    return a is not None and b is not None and a < b


def _older_or_same(a: datetime | None, b: datetime | None) -> bool:
    return a is not None and b is not None and a <= b


def _version(record: _Versioned, stored: Stored) -> datetime | None:
    # An undated record keeps the stored version, so a later, older update still loses to it.
    return record.updated_at if record.updated_at is not None else stored.get(record.external_id)


def _write(model: type[models.Model], rows: Sequence[models.Model], update_fields: Iterable[str]) -> None:
    if not rows:
        return
    # Sorted so concurrent pages take row locks in one order and cannot deadlock.
    model.objects.bulk_create(
        sorted(rows, key=lambda row: row.external_id),
        update_conflicts=True,
        unique_fields=UNIQUE_FIELDS,
        update_fields=[*update_fields, "updated_at"],
    )


def _ids(model: type[models.Model], source: Source, external_ids: Collection[str]) -> dict[str, int]:
    if not external_ids:
        return {}
    scoped = _scoped(model, source).filter(external_id__in=list(external_ids))
    return dict(scoped.order_by().values_list("external_id", "pk"))


def _lock_customers(source: Source, external_ids: Collection[str], also: Collection[int]) -> dict[str, int]:
    """The external id → primary key map of these customers, locked until the page commits with
    the customers of ids `also`, in one query.

    first_order_at is recomputed from the orders a statement sees: of two pages writing orders of
    one customer at once, the second waits here until the first commits, so its recomputation
    sees the first's orders. Locked in external id order, as upserts lock, so no deadlock."""
    if not external_ids and not also:
        return {}
    rows = (
        _scoped(Customer, source)
        .filter(Q(external_id__in=list(external_ids)) | Q(pk__in=list(also)))
        .select_for_update()
        .order_by("external_id")
        .values_list("external_id", "pk")
    )
    return {external_id: pk for external_id, pk in rows if external_id in external_ids}


def _tally(records: Iterable[R], written: dict[str, R], stored: Stored) -> IngestResult:
    result = IngestResult()
    for record in records:
        if written.get(record.external_id) is not record:
            result.unchanged += 1
        elif record.external_id in stored:
            result.updated += 1
        else:
            result.created += 1
    return result


# --- Rows built by the caller ---------------------------------------------------------------------


def bulk_upsert(
    model: type[models.Model], rows: Sequence[models.Model], update_fields: Iterable[str]
) -> dict[str, int]:
    """Insert or update `rows` (all of one connection) by (connection, external_id) in one
    statement, and return the external id → primary key map for them (one more query), for
    linking child rows. No stale check: for callers that build rows themselves (the demo seeder).

    What is derived from orders is kept as `ingest_orders` keeps it, in a few more statements:
    order lines get their order's copies, and orders refresh their lines' copies and their
    customers' first_order_at."""
    if not rows:
        return {}
    sources = {(row.tenant_id, row.connection_id) for row in rows}
    if len(sources) != 1:
        raise ValueError("bulk_upsert takes the rows of one connection at a time.")
    (tenant_id, connection_id) = sources.pop()
    source = Source(tenant_id, connection_id, channel="")
    now = timezone.now()
    for row in rows:
        row.updated_at = now
    external_ids = {row.external_id for row in rows}
    if model is OrderLine:
        _copy_orders_onto(rows)
        update_fields = [*update_fields, *(name for name in LINE_COPIES if name not in update_fields)]
    if model is Order:
        customers_before = _scoped(Order, source).filter(external_id__in=list(external_ids)).values_list("customer_id")
        customers = {row.customer_id for row in rows} | {pk for (pk,) in customers_before}
    _write(model, rows, update_fields)
    ids = _ids(model, source, external_ids)
    if model is Order:
        refresh_line_copies(ids.values())
        refresh_first_orders(customers)
    return ids


def _copy_orders_onto(lines: Sequence[OrderLine]) -> None:
    orders = Order.objects.filter(pk__in={line.order_id for line in lines}).only("placed_at", "currency", "status")
    by_id = {order.pk: order for order in orders}
    for line in lines:
        order = by_id[line.order_id]
        line.placed_at, line.currency, line.counted = order.placed_at, order.currency, order.counted
