"""Fulfilling many orders at once, from a list (the API) or a CSV file (the dashboard, the API).

A CSV file has a header row naming its columns: order number, tracking number and carrier, and
optionally SKU and quantity (a parcel holding part of an order) and channel (when two platforms
use the same order number). Header names are matched loosely: "Order", "Order #", "order_number".

Rows of the same order with the same tracking number and carrier are one parcel: one fulfilment
holding their lines. Each parcel is checked on its own, so the others are fulfilled whatever
happens to it; a refused parcel is listed with its reason against each of its rows. A parcel is
fulfilled whole or not at all, so the corrected rows can simply be sent again.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO

from django.conf import settings
from django.db import transaction

from .fulfilment import FulfilmentError, accepted_carriers, fulfil, lines_for_skus, queue_pushes, remaining_by_order
from .metrics import channel_label
from .models import Fulfilment, FulfilmentSettings, FulfilmentSource, Order
from .upload_formats import UploadError, ValueProblem, csv_rows, parse_int

# Each column's accepted header names, compared lowercased with punctuation as spaces.
HEADERS: dict[str, set[str]] = {
    "order_number": {"order", "order number", "order no", "order name", "order id", "number"},
    "tracking_number": {"tracking number", "tracking", "tracking no", "tracking code", "tracking id"},
    "carrier": {"carrier", "shipping carrier", "tracking company", "courier", "shipping company"},
    "sku": {"sku", "line sku", "item sku", "variant sku"},
    "quantity": {"quantity", "qty", "line quantity"},
    "channel": {"channel", "platform"},
}
REQUIRED = ("order_number", "tracking_number", "carrier")


class BulkError(ValueError):
    """The whole file or list is refused (unreadable, columns missing, too many rows)."""


@dataclass
class BulkRow:
    row: int  # the row number a person finds in the file (the header is row 1), or the list position
    order_number: str = ""
    order_id: int | None = None  # the hub's id (the API), instead of the number
    channel: str = ""
    tracking_number: str = ""
    carrier: str = ""
    sku: str = ""
    line_id: int | None = None  # the hub's line id (the API), instead of the SKU
    quantity: int | None = None
    problem: str = ""  # the row itself cannot be read


@dataclass
class RowFailure:
    row: int
    order: str
    reason: str


@dataclass
class BulkResult:
    rows: int
    created: list[Fulfilment] = field(default_factory=list)
    failures: list[RowFailure] = field(default_factory=list)


def _header_key(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", name.lower()).strip()


def rows_from_csv(binary: IO[bytes]) -> list[BulkRow]:
    """The rows of an uploaded CSV file; BulkError when it cannot be used at all."""
    rows: list[BulkRow] = []
    columns: dict[str, str] | None = None
    try:
        for number, data in csv_rows(binary):
            if columns is None:
                columns = _columns(list(data))
            if len(rows) >= settings.FULFILMENT_BULK_MAX_ROWS:
                raise BulkError(f"A bulk fulfilment holds at most {settings.FULFILMENT_BULK_MAX_ROWS} rows.")
            rows.append(_row(number, {name: data.get(column, "") for name, column in columns.items()}))
    except UploadError as error:
        raise BulkError(str(error)) from None
    if not rows:
        raise BulkError("The file has no rows below its header.")
    return rows


def _columns(header: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for column in header:
        for name, aliases in HEADERS.items():
            if name not in found and _header_key(column) in aliases:
                found[name] = column
    missing = [name.replace("_", " ") for name in REQUIRED if name not in found]
    if missing:
        raise BulkError(
            f"The file needs a column for: {', '.join(missing)} (optional: sku, quantity, channel). "
            f"Its columns are: {', '.join(header)}."
        )
    return found


def _row(number: int, cells: dict[str, str]) -> BulkRow:
    row = BulkRow(
        row=number,
        order_number=cells.get("order_number", "").strip(),
        channel=cells.get("channel", "").strip(),
        tracking_number=cells.get("tracking_number", "").strip(),
        carrier=cells.get("carrier", "").strip(),
        sku=cells.get("sku", "").strip(),
    )
    quantity = cells.get("quantity", "").strip()
    if quantity:
        try:
            row.quantity = parse_int(quantity)
        except ValueProblem as problem:
            row.problem = f"Quantity: {problem}"
    return row


def bulk_fulfil(
    tenant,
    rows: Sequence[BulkRow],
    *,
    by=None,
    source: str = FulfilmentSource.BULK,
    notify_customer: bool | None = None,
) -> BulkResult:
    """Fulfil every parcel the rows describe; the pushes are queued once all are stored."""
    if len(rows) > settings.FULFILMENT_BULK_MAX_ROWS:
        raise BulkError(f"A bulk fulfilment holds at most {settings.FULFILMENT_BULK_MAX_ROWS} rows.")
    result = BulkResult(rows=len(rows))
    if notify_customer is None:
        notify_customer = FulfilmentSettings.of(tenant).notify_customers
    orders = _OrderFinder(tenant, rows)
    parcels: dict[tuple[int, str, str], list[BulkRow]] = {}
    parcel_order: dict[tuple[int, str, str], Order] = {}
    for row in rows:
        problem = row.problem or _row_problem(row)
        order = None
        if not problem:
            order, problem = orders.find(row)
        if problem or order is None:
            result.failures.append(RowFailure(row.row, row.order_number or str(row.order_id or ""), problem))
            continue
        key = (order.pk, row.tracking_number.strip(), _header_key(row.carrier))
        parcels.setdefault(key, []).append(row)
        parcel_order[key] = order

    accepted: dict[int, list[str]] = {}
    for key, members in parcels.items():
        order = parcel_order[key]
        try:
            if order.connection_id not in accepted:
                accepted[order.connection_id] = accepted_carriers(order)
            fulfilment = fulfil(
                order,
                members[0].tracking_number,
                members[0].carrier,
                parcel_lines(order, members),
                notify_customer=notify_customer,
                by=by,
                source=source,
                accepted=accepted[order.connection_id],
                queue=False,
            )
        except FulfilmentError as refused:
            result.failures.extend(RowFailure(row.row, order.number, str(refused)) for row in members)
        else:
            result.created.append(fulfilment)
    ids = [fulfilment.pk for fulfilment in result.created]
    transaction.on_commit(lambda: queue_pushes(ids))
    result.failures.sort(key=lambda failure: failure.row)
    return result


def _row_problem(row: BulkRow) -> str:
    if not row.order_number and row.order_id is None:
        return "The order number is missing."
    if row.quantity is not None and row.quantity < 1:
        return "The quantity must be at least 1."
    if row.quantity is not None and not row.sku and row.line_id is None:
        return "A quantity needs the SKU of the line it is for."
    return ""


class _OrderFinder:
    """The rows' orders, looked up in one query, within the tenant only."""

    def __init__(self, tenant, rows: Sequence[BulkRow]) -> None:
        numbers = {n for row in rows if row.order_number for n in _spellings(row.order_number)}
        ids = {row.order_id for row in rows if row.order_id is not None}
        self.by_number: dict[str, list[Order]] = defaultdict(list)
        self.by_id: dict[int, Order] = {}
        found = Order.objects.for_tenant(tenant).filter(number__in=numbers) | Order.objects.for_tenant(tenant).filter(
            pk__in=ids
        )
        for order in found.defer("raw", "billing_address", "shipping_address").order_by("pk"):
            self.by_number[order.number].append(order)
            self.by_id[order.pk] = order

    def find(self, row: BulkRow) -> tuple[Order | None, str]:
        if row.order_id is not None:
            order = self.by_id.get(row.order_id)
            return (order, "") if order else (None, f"There is no order with the id {row.order_id}.")
        matches = {order.pk: order for n in _spellings(row.order_number) for order in self.by_number.get(n, [])}
        candidates = list(matches.values())
        if row.channel:
            wanted = _header_key(row.channel)
            candidates = [o for o in candidates if wanted in (o.channel, _header_key(channel_label(o.channel)))]
        if not candidates:
            on = f" on {row.channel}" if row.channel else ""
            return None, f"There is no order #{row.order_number.lstrip('#')}{on}."
        if len(candidates) > 1:
            channels = ", ".join(sorted({channel_label(o.channel) for o in candidates}))
            return None, (
                f"Several orders have the number {row.order_number} ({channels}): add a channel column to choose."
            )
        return candidates[0], ""


def _spellings(number: str) -> set[str]:
    bare = number.strip().lstrip("#")
    return {bare, f"#{bare}"} if bare else set()


def parcel_lines(order: Order, rows: list[BulkRow]) -> list[tuple[int, int]] | None:
    """The parcel's lines; None (everything left) when no row names a line."""
    naming = [row for row in rows if row.sku or row.line_id is not None]
    if not naming:
        return None
    if len(naming) < len(rows):
        whole = ", ".join(str(row.row) for row in rows if row not in naming)
        raise FulfilmentError(
            f"Row {whole} names no SKU, so it ships the whole order, but other rows of the same parcel name "
            "lines: give every row of a parcel a SKU, or none."
        )
    left = remaining_by_order([order.pk])[order.pk]
    lines: list[tuple[int, int]] = []
    for row in naming:
        if row.line_id is not None:
            quantity = row.quantity
            if quantity is None and row.line_id in left.lines:
                quantity = left.lines[row.line_id]
                if not quantity:
                    label = left.labels[row.line_id]
                    raise FulfilmentError(f"Nothing of “{label}” is left to fulfil on order #{order.number}.")
            lines.append((row.line_id, quantity or 1))
        else:
            lines.extend(lines_for_skus(order, [(row.sku, row.quantity)], left))
    return lines
