"""Writing normalised records into commerce tables: one bulk statement per model per page.

The sync engine, webhooks, uploads and the demo seeder all land rows through here, so a record
from any source ends in the one row keyed by (connection, external id).

`ingest(stream, source, records)` takes one page of `commerce.records` and writes it in one
transaction. A record whose `updated_at` is not newer than the stored `platform_updated_at` is
left alone with everything nested in it, so a late webhook or a slow sync page never overwrites
newer data; a record without `updated_at` is always written. The comparison runs under row locks,
and the upsert's update repeats it for rows that were not there to lock: two writers of one new
order (two webhook workers, a webhook and a sync page) cannot leave the older version stored.

Orders, the bulk of a sync, go in as plain tuples: their lines and refunds too, one
`INSERT … ON CONFLICT` statement per table and page, which returns the orders' ids (`_upsert`).
The other streams go through `bulk_create`, but for fees, which are as many as order lines.

Fees and settlements come as one stream, `finances` (`ingest_finances` splits a page by kind). A
fee names its order by the platform's order id: it is linked to that order when both are stored,
whichever is written first (a first sync reads fees faster than orders on some platforms).

Each page of orders, customers, products or inventory is announced with `records_written` (the
rows it created and changed; see commerce.signals), which costs no query: the upserts return the
rows' ids. After a page of products or stock commits, its variants are reconciled with the hub's
stock figures (`commerce.stock_sync`); after a page of orders, its sales are taken off them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from itertools import chain
from operator import itemgetter
from typing import Any, Protocol, TypeVar

import orjson
from django.db import connection, models, transaction
from django.db.models import OuterRef, Q, Subquery
from django.utils import timezone

from . import stock_sync
from .models import (
    Customer,
    Fee,
    InventoryLevel,
    Order,
    OrderLine,
    OrderStatus,
    Product,
    ProductVariant,
    Refund,
    Settlement,
    refresh_first_orders,
    refresh_line_copies,
)
from .records import (
    CustomerRecord,
    FeeRecord,
    IngestFailure,
    IngestResult,
    InventoryRecord,
    OrderRecord,
    ProductRecord,
    SettlementRecord,
)
from .signals import records_written

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
# Orders, their lines and refunds are written as plain tuples (see `_upsert`), in this column order:
# the columns every commerce row has, external id first, then the model's own.
COMMON_COLUMNS = ["external_id", "tenant", "connection", "platform_updated_at", "raw", "created_at", "updated_at"]
ORDER_COLUMNS = [*COMMON_COLUMNS, *(name for name in ORDER_FIELDS if name not in COMMON_COLUMNS)]
LINE_COLUMNS = [*COMMON_COLUMNS, *(name for name in LINE_FIELDS if name not in COMMON_COLUMNS)]
REFUND_COLUMNS = [*COMMON_COLUMNS, *(name for name in REFUND_FIELDS if name not in COMMON_COLUMNS)]
PRODUCT_FIELDS = ["title", "vendor", "product_type", "status", "platform_updated_at", "raw"]
VARIANT_FIELDS = ["product", "sku", "title", "price", "currency", "platform_updated_at", "raw"]
LEVEL_FIELDS = ["variant", "location_id", "location_name", "available", "platform_updated_at", "raw"]
FEE_FIELDS = [
    *["order", "order_external_id", "type", "platform_type", "event_type", "sku", "amount", "currency"],
    *["posted_at", "platform_updated_at", "raw"],
]
FEE_COLUMNS = [*COMMON_COLUMNS, *(name for name in FEE_FIELDS if name not in COMMON_COLUMNS)]
SETTLEMENT_FIELDS = [
    *["started_at", "ended_at", "total", "currency", "status", "transferred_at"],
    *["platform_updated_at", "raw"],
]


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
        customers, stored, customer_ids = _upsert_customers(source, records, timezone.now())
        _announce(Customer, source, "customers", customers, stored, customer_ids)
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
        order_ids = _upsert(
            Order,
            source,
            ORDER_COLUMNS,
            [_order_row(source, order, _version(order, stored), customer_ids, now) for order in orders.values()],
            ORDER_FIELDS,
            returning_ids=True,
        )
        # An order another writer stored meanwhile in a newer version was left alone by the upsert
        # (it returned no id for it): its lines and refunds are left alone with it.
        orders = {external_id: order for external_id, order in orders.items() if external_id in order_ids}
        _write_lines(source, orders, stored, order_ids, now)
        _write_refunds(source, orders, stored, order_ids, now)
        _link_fees(source, [external_id for external_id in orders if external_id not in stored])
        # An order moved to another customer may have been the first of the one it left.
        refresh_first_orders([*customer_ids.values(), *left])
        _announce(Order, source, "orders", orders, stored, order_ids)
    return _tally(records, orders, stored)


def ingest_products(source: Source, records: list[ProductRecord]) -> IngestResult:
    """Upsert products, their variants and the variants' inventory levels. Each level of nesting
    keeps the stale rule on its own `updated_at` as well as its parent's."""
    now = timezone.now()
    with transaction.atomic():
        products, stored = _changed(Product, source, _latest(records))
        product_ids = _write(
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
            source,
        )

        latest_variants = _latest(v for product in products.values() for v in product.variants)
        variants, stored_variants = _changed(ProductVariant, source, latest_variants)
        product_of = {
            v.external_id: p.external_id
            for p in products.values()
            for v in p.variants
            if variants.get(v.external_id) is v
        }
        variant_ids = _write(
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
            source,
        )

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
        stock_sync.after_page(source.tenant_id, source.connection_id, product_ids=product_ids.values())
        _announce(Product, source, "products", products, stored, product_ids)
    return _tally(records, products, stored)


def ingest_inventory(source: Source, records: list[InventoryRecord]) -> IngestResult:
    """Upsert stock levels of variants this connection already has; stock of an unknown variant
    comes back as a failure for the caller to quarantine, and the rest is stored."""
    now = timezone.now()
    with transaction.atomic():
        variant_ids = _ids(ProductVariant, source, {record.variant_external_id for record in records})
        known = [record for record in records if record.variant_external_id in variant_ids]
        levels, stored = _changed(InventoryLevel, source, _latest(known))
        level_ids = _write(
            InventoryLevel,
            [
                _level_row(source, level, variant_ids[level.variant_external_id], stored, now)
                for level in levels.values()
            ],
            LEVEL_FIELDS,
            source,
        )
        stock_sync.after_page(source.tenant_id, source.connection_id, level_ids=level_ids.values())
        _announce(InventoryLevel, source, "inventory", levels, stored, level_ids)
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


def ingest_finances(source: Source, records: list[FeeRecord | SettlementRecord]) -> IngestResult:
    """A page of the `finances` stream: settlements and fees, in any mix."""
    unknown = [r for r in records if not isinstance(r, (FeeRecord, SettlementRecord))]
    if unknown:
        raise TypeError(f"The finances stream takes fees and settlements, not {type(unknown[0]).__name__}.")
    result = ingest_settlements(source, [r for r in records if isinstance(r, SettlementRecord)])
    result += ingest_fees(source, [r for r in records if isinstance(r, FeeRecord)])
    return result


def ingest_settlements(source: Source, records: list[SettlementRecord]) -> IngestResult:
    now = timezone.now()
    with transaction.atomic():
        settlements, stored = _changed(Settlement, source, _latest(records))
        _write(
            Settlement,
            [
                Settlement(
                    **_common(source, s.external_id, s.raw, _version(s, stored), now),
                    started_at=s.started_at,
                    ended_at=s.ended_at,
                    total=s.total,
                    currency=s.currency,
                    status=s.status,
                    transferred_at=s.transferred_at,
                )
                for s in settlements.values()
            ],
            SETTLEMENT_FIELDS,
        )
    return _tally(records, settlements, stored)


def ingest_fees(source: Source, records: list[FeeRecord]) -> IngestResult:
    """Upsert fees, each linked to its order when this connection has it. A fee is not changed by
    a record as old as the stored one (fees are dated by when they were posted, and a posted fee
    does not change), so a sync that reads a period again writes nothing new."""
    now = timezone.now()
    with transaction.atomic():
        fees, stored = _changed(Fee, source, _latest(records))
        order_ids = _ids(Order, source, {fee.order_external_id for fee in fees.values() if fee.order_external_id})
        _upsert(
            Fee,
            source,
            FEE_COLUMNS,
            [
                (
                    *_common_row(source, fee.external_id, fee.raw, _version(fee, stored), now),
                    order_ids.get(fee.order_external_id),
                    fee.order_external_id,
                    fee.type,
                    fee.platform_type,
                    fee.event_type,
                    fee.sku,
                    fee.amount,
                    fee.currency,
                    fee.posted_at,
                )
                for fee in fees.values()
            ],
            FEE_FIELDS,
        )
    return _tally(records, fees, stored)


INGESTERS: dict[str, Callable[[Source, list], IngestResult]] = {
    "orders": ingest_orders,
    "products": ingest_products,
    "customers": ingest_customers,
    "inventory": ingest_inventory,
    "finances": ingest_finances,
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


def _common_row(
    source: Source, external_id: str, raw: dict[str, Any], version: datetime | None, now: datetime
) -> tuple:
    """COMMON_COLUMNS' values."""
    return (external_id, source.tenant_id, source.connection_id, version, raw, now, now)


def _upsert_customers(
    source: Source, records: Iterable[CustomerRecord], now: datetime
) -> tuple[dict, Stored, dict[str, int]]:
    customers, stored = _changed(Customer, source, _latest(records))
    customer_ids = _write(
        Customer,
        [_customer_row(source, customer, _version(customer, stored), now) for customer in customers.values()],
        CUSTOMER_FIELDS,
        source,
    )
    return customers, stored, customer_ids


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
) -> tuple:
    """An order as a tuple of ORDER_COLUMNS' values."""
    return (
        *_common_row(source, order.external_id, order.raw, version, now),
        order.number,
        source.channel,
        customer_ids[order.customer.external_id] if order.customer else None,
        order.email,
        order.status,
        order.financial_status,
        order.fulfillment_status,
        order.currency,
        order.subtotal,
        order.discounts,
        order.shipping,
        order.tax,
        order.total,
        order.placed_at,
        order.billing_address,
        order.shipping_address,
    )


def _write_lines(
    source: Source, orders: dict[str, OrderRecord], stored: Stored, order_ids: dict[str, int], now: datetime
) -> None:
    lines = {line.external_id: (order, line) for order in orders.values() for line in order.lines}
    variant_ids = _ids(
        ProductVariant, source, {line.variant_external_id for _, line in lines.values() if line.variant_external_id}
    )
    # What a line takes from its order: the version, the order's primary key, and the copies of
    # the order's columns (LINE_COPIES, which end the row).
    of_order = {
        external_id: (
            _version(order, stored),
            order_ids[external_id],
            (order.placed_at, order.currency, order.status != OrderStatus.CANCELLED),
        )
        for external_id, order in orders.items()
    }
    rows = []
    for order, line in lines.values():
        version, order_id, copies = of_order[order.external_id]
        rows.append(
            (
                *_common_row(source, line.external_id, line.raw, version, now),
                order_id,
                variant_ids.get(line.variant_external_id),
                line.sku,
                line.title,
                line.quantity,
                line.unit_price,
                line.total,
                *copies,
            )
        )
    _upsert(OrderLine, source, LINE_COLUMNS, rows, LINE_FIELDS)
    # Only orders that were stored before can have lines that are gone; a new order has none.
    rewritten = [order_ids[external_id] for external_id in orders if external_id in stored]
    if rewritten:
        _scoped(OrderLine, source).filter(order_id__in=rewritten).exclude(external_id__in=list(lines)).delete()


def _write_refunds(
    source: Source, orders: dict[str, OrderRecord], stored: Stored, order_ids: dict[str, int], now: datetime
) -> None:
    refunds = {refund.external_id: (order, refund) for order in orders.values() for refund in order.refunds}
    _upsert(
        Refund,
        source,
        REFUND_COLUMNS,
        [
            (
                *_common_row(source, refund.external_id, refund.raw, _version(order, stored), now),
                order_ids[order.external_id],
                refund.amount,
                refund.currency,
                refund.reason,
                refund.refunded_at,
            )
            for order, refund in refunds.values()
        ],
        REFUND_FIELDS,
    )


def _link_fees(source: Source, order_external_ids: list[str]) -> None:
    """Link the fees stored before these (new) orders to them, in one UPDATE."""
    if not order_external_ids:
        return
    order = _scoped(Order, source).filter(external_id=OuterRef("order_external_id")).values("pk")[:1]
    _scoped(Fee, source).filter(order_external_id__in=sorted(order_external_ids), order__isnull=True).update(
        order_id=Subquery(order)
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
    rows = _select(model, source, records, ["platform_updated_at", *columns], lock=True)
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


def _write(
    model: type[models.Model],
    rows: Sequence[models.Model],
    update_fields: Iterable[str],
    source: Source | None = None,
) -> dict[str, int]:
    """Upsert `rows` by (connection, external_id); with `source`, return the external id →
    primary key map of the rows (the upsert returns the keys of inserted and updated rows alike,
    so this costs no query where the database can return rows from a bulk insert)."""
    if not rows:
        return {}
    # Sorted so concurrent pages take row locks in one order and cannot deadlock.
    model.objects.bulk_create(
        sorted(rows, key=lambda row: row.external_id),
        update_conflicts=True,
        unique_fields=UNIQUE_FIELDS,
        update_fields=[*update_fields, "updated_at"],
    )
    if source is None:
        return {}
    if all(row.pk is not None for row in rows):
        return {row.external_id: row.pk for row in rows}
    return _ids(model, source, [row.external_id for row in rows])  # SQLite before 3.35


def _announce(
    model: type[models.Model], source: Source, stream: str, written: dict[str, Any], stored: Stored, ids: dict[str, int]
) -> None:
    """Send `records_written` for a page: the rows it inserted and the rows it changed."""
    records_written.send(
        sender=model,
        tenant_id=source.tenant_id,
        connection_id=source.connection_id,
        stream=stream,
        created=[ids[key] for key in written if key not in stored and key in ids],
        updated=[ids[key] for key in written if key in stored and key in ids],
    )


def _ids(model: type[models.Model], source: Source, external_ids: Collection[str]) -> dict[str, int]:
    return dict(_select(model, source, external_ids, [model._meta.pk.attname]))


def _select(
    model: type[models.Model], source: Source, external_ids: Collection[str], columns: Sequence[str], *, lock=False
) -> list[tuple]:
    """(external_id, *columns) of this source's stored rows of these external ids, found by their
    (connection, external_id) key; `columns` are attribute names that are also column names. With
    `lock`, the rows stay locked until the transaction ends, taken in external id order as the
    upserts take them, so concurrent pages cannot deadlock.

    Asked so that the database can read the unique index while a sync fills the table faster
    than its statistics follow. Those make the tenant and the connection look rare, and a query
    by tenant, connection and external ids then read every row stored so far, on every page:
    SQLite, asked for rows in primary key order, through the tenant's index (which ends in it);
    PostgreSQL by intersecting the tenant's and the connection's indexes. In external id order,
    only the unique index serves SQLite. PostgreSQL checks the tenant outside a subquery it may
    not merge into the outer query, which leaves it the unique index and the connection's; it
    still reads the connection's rows while its statistics give the connection a few hundred
    rows at most, until autovacuum analyzes the table again."""
    keys = sorted(set(external_ids))
    if not keys:
        return []
    if connection.vendor != "postgresql":
        queryset = _scoped(model, source).filter(external_id__in=keys).order_by("external_id")
        return list((queryset.select_for_update() if lock else queryset).values_list("external_id", *columns))
    quote = connection.ops.quote_name
    selected = ", ".join(quote(column) for column in ["external_id", *columns])
    sql = (
        f"SELECT {selected} FROM (SELECT {selected}, tenant_id FROM {quote(model._meta.db_table)} "
        f"WHERE connection_id = %s AND external_id = ANY(%s) ORDER BY external_id "
        f"OFFSET 0{' FOR UPDATE' if lock else ''}) AS stored WHERE tenant_id = %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [source.connection_id, keys, source.tenant_id])
        return cursor.fetchall()


def _upsert(
    model: type[models.Model],
    source: Source,
    columns: Sequence[str],
    rows: list[tuple],
    update_fields: Iterable[str],
    *,
    returning_ids: bool = False,
) -> dict[str, int]:
    """Insert `rows` (tuples of `columns`' values, external id first), or update the stored row of
    the same (connection, external_id) with them; with `returning_ids`, return the external id →
    primary key map of the rows.

    What `bulk_create(update_conflicts=True)` does, from tuples instead of model instances: making
    and converting a model instance per row cost more than the database's own work."""
    if not rows:
        return {}
    # Sorted so concurrent pages take row locks in one order and cannot deadlock.
    rows = sorted(rows, key=itemgetter(0))
    returning = returning_ids and connection.features.can_return_rows_from_bulk_insert
    statement = _upsert_statement(model, tuple(columns), tuple(update_fields), returning, connection.vendor)
    with connection.cursor() as cursor:
        ids = dict(statement.execute(cursor, rows))
    if returning_ids and not returning:  # SQLite before 3.35
        ids = _ids(model, source, [row[0] for row in rows])
    return ids


@dataclass(frozen=True)
class _UpsertStatement:
    """`_upsert`'s SQL for one model and list of columns, and how the rows go in.

    PostgreSQL gets a page's rows as one JSON array of arrays, one parameter that the server
    parses in C and spreads over the columns (`jsonb_array_elements`), each value cast to its
    column's type from the text the JSON holds. Django sends an array per column instead, and a
    VALUES list has a parameter per value; both cost the client more, escaping array elements or
    splitting the query in Python, than the insert costs the server.

    SQLite gets a VALUES list, one parameter per value, of as many rows as its parameter limit
    allows, as Django sends it."""

    head: str  # up to the rows
    tail: str  # from the conflict clause on
    returning: bool
    json_rows: bool  # PostgreSQL's way
    names: tuple[str, ...]  # the column names
    # (column index, conversion) of the columns whose values do not go in as the rows have them.
    conversions: tuple[tuple[int, Callable[[Any], Any]], ...]
    max_rows: int

    def execute(self, cursor: Any, rows: list[tuple]) -> list[tuple]:
        """Send `rows`; return what the statement returns for them."""
        values = self._converted(rows)
        if self.json_rows:
            from django.db.backends.postgresql.psycopg_any import Jsonb

            # The JSON goes to the driver as orjson's bytes, not copied into a str first.
            cursor.execute(self.head + self.tail, [Jsonb(values, dumps=_json_bytes)])
            return cursor.fetchall() if self.returning else []
        row = f"({', '.join(['%s'] * len(self.names))})"
        returned: list[tuple] = []
        for start in range(0, len(values), self.max_rows):
            batch = values[start : start + self.max_rows]
            cursor.execute(f"{self.head}VALUES {', '.join([row] * len(batch))}{self.tail}", list(chain(*batch)))
            if self.returning:
                returned += cursor.fetchall()
        return returned

    def _converted(self, rows: list[tuple]) -> list[tuple]:
        if not self.conversions:
            return rows
        # The same few times (now, the orders' versions and dates) recur in every row of a
        # page, and converting a time is slow: each distinct one is converted once.
        converted: dict[tuple[int, Any], Any] = {}
        out = []
        for row in rows:
            values = list(row)
            for index, convert in self.conversions:
                value = values[index]
                if value is None:
                    continue
                if isinstance(value, datetime):
                    key = (index, value)
                    if key not in converted:
                        converted[key] = convert(value)
                    values[index] = converted[key]
                else:
                    values[index] = convert(value)
            out.append(tuple(values))
        return out


@lru_cache
def _upsert_statement(
    model: type[models.Model], columns: tuple[str, ...], update_fields: tuple[str, ...], returning: bool, vendor: str
) -> _UpsertStatement:
    quote = connection.ops.quote_name
    opts = model._meta
    fields = [opts.get_field(name) for name in columns]
    names = tuple(field.column for field in fields)
    unique = ", ".join(quote(opts.get_field(name).column) for name in UNIQUE_FIELDS)
    assignments = ", ".join(
        f"{column} = EXCLUDED.{column}"
        for column in (quote(opts.get_field(name).column) for name in [*update_fields, "updated_at"])
    )
    tail = f" ON CONFLICT ({unique}) DO UPDATE SET {assignments}"
    if "platform_updated_at" in columns:
        # The stored versions were compared under row locks, but a row that did not exist then had
        # nothing to lock: a concurrent writer may have inserted it since, with a newer version.
        # The update leaves such a row alone (and returns nothing for it). An undated record goes
        # in with the stored version, so equal versions are written.
        version = quote(opts.get_field("platform_updated_at").column)
        target = quote(opts.db_table)
        tail += (
            f" WHERE {target}.{version} IS NULL OR EXCLUDED.{version} IS NULL"
            f" OR EXCLUDED.{version} >= {target}.{version}"
        )
    if returning:
        tail += f" RETURNING {quote(opts.get_field('external_id').column)}, {quote(opts.pk.column)}"
    head = f"INSERT INTO {quote(opts.db_table)} ({', '.join(quote(name) for name in names)}) "
    if vendor == "postgresql":
        head += f"SELECT {', '.join(_from_json(field, index) for index, field in enumerate(fields))} "
        head += "FROM jsonb_array_elements(%s::jsonb) AS item"
    conversions = tuple(
        (index, convert) for index, field in enumerate(fields) if (convert := _conversion(field, vendor)) is not None
    )
    # SQLite caps the parameters of a statement (config/sqlite3 says how many).
    max_rows = max(1, (connection.features.max_query_params or 999) // len(columns))
    return _UpsertStatement(head, tail, returning, vendor == "postgresql", names, conversions, max_rows)


def _conversion(field: models.Field, vendor: str) -> Callable[[Any], Any] | None:
    """How a value of `field` goes to the database, if not as the row has it: as Django's field
    converts it for the driver, and on PostgreSQL into the JSON of the rows, in the text the
    column type's input reads (times in ISO 8601 with their offset; amounts as strings, exact; a
    JSON column's value stays nested)."""
    kind = field.get_internal_type()
    if kind == "DecimalField":

        def amount(value: Any) -> Any:
            # An amount that is not a finite Decimal is converted, or refused, as Django does.
            value = value if isinstance(value, Decimal) and value.is_finite() else field.to_python(value)
            return str(value) if vendor == "postgresql" else value

        return amount
    if kind == "DateTimeField":
        if vendor == "postgresql":
            return datetime.isoformat
        return lambda value: connection.ops.adapt_datetimefield_value(value)
    if kind == "JSONField" and vendor != "postgresql":
        return _json_text
    return None


def _from_json(field: models.Field, index: int) -> str:
    """The value of `field` in element `index` of a row sent as a JSON array, in PostgreSQL.

    Cast to the column's type without its size or precision, so that the insert converts it as
    it converts any value: a text too long for its column is refused, an amount is rounded."""
    if field.get_internal_type() == "JSONField":
        return f"NULLIF(item -> {index}, 'null')"  # None is SQL NULL, as Django stores it
    return f"(item ->> {index})::{re.sub(r'[(].*', '', field.db_type(connection))}"


# What Django's JSONField writes is `json.dumps(value)`. orjson writes the same JSON several times
# faster (without the spaces, and non-ASCII characters as they are); told to refuse the types
# json.dumps refuses but orjson knows (times, dataclasses), it leaves to json.dumps whatever
# json.dumps alone handles (an integer beyond 64 bits, a key that is not a string) or refuses.
# (A float that is not a number is the one difference: orjson writes null where json.dumps
# writes NaN, which is not JSON and which PostgreSQL refuses.)
_ORJSON_AS_DJANGO = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def _json_bytes(value: Any) -> bytes:
    try:
        return orjson.dumps(value, option=_ORJSON_AS_DJANGO)
    except orjson.JSONEncodeError:
        return json.dumps(value).encode()


def _json_text(value: Any) -> str:
    """A JSON column's value as SQLite stores it."""
    return _json_bytes(value).decode()


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
