"""Manual uploads: orders, products and customers from CSV, JSON or XML files.

A person uploads a file (`create_job`), checks the preview and maps the file's columns to our
fields (`suggest_mapping` pre-fills it), and starts the import (`start_import`). The task
`run_job` then validates every row and, when no row is invalid (or the person chose to import the
valid rows only), imports them in batches through `commerce.ingest`, onto the tenant's one
"Manual uploads" connection. External ids come from the file, so uploading a file again updates
the rows it created instead of duplicating them.

Orders: one row per order line; consecutive rows with the same order id are the lines of one
order (rows of one order that are not adjacent are merged too). An order's channel is "manual"
unless a `channel` column names a commerce platform of the catalogue (an Amazon export counts as
Amazon). An order with an invalid row is skipped whole. Products: one row per variant;
consecutive rows with the same product id are its variants; a stock column sets the variant's
stock at the "Manual upload" location. Customers: one row each.
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from importlib import import_module
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import FileSystemStorage
from django.core.files.uploadedfile import UploadedFile
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from integrations.models import Connection, ConnectionStatus, SyncFrequency
from integrations.platforms import CATALOGUE, Kind, Platform
from tenants import audit
from tenants.models import Tenant

from .ingest import Source, ingest
from .models import (
    FinancialStatus,
    FulfillmentStatus,
    ImportJob,
    ImportKind,
    ImportStatus,
    Order,
    OrderLine,
    OrderStatus,
)
from .records import (
    CustomerRecord,
    IngestResult,
    InventoryRecord,
    OrderLineRecord,
    OrderRecord,
    ProductRecord,
    VariantRecord,
)
from .upload_formats import (
    UploadError,
    ValueProblem,
    format_for,
    parse_bool,
    parse_country,
    parse_currency,
    parse_datetime,
    parse_decimal,
    parse_int,
    read_rows,
)

logger = logging.getLogger(__name__)

BATCH_ROWS = 500
PREVIEW_ROWS = 10
COLUMN_SCAN_ROWS = 100  # JSON and XML rows may differ in their keys: columns come from the first ones
MAX_ERRORS = 100
MAX_ROWS_PER_RECORD = 5000  # lines of one order, variants of one product
PROGRESS_EVERY = 1000
DEFAULT_MAX_BYTES = 200 * 1024 * 1024
STARTABLE = {ImportStatus.DRAFT, ImportStatus.INVALID, ImportStatus.FAILED}
MANUAL = Platform.MANUAL.value


def max_upload_bytes() -> int:
    return int(getattr(settings, "UPLOAD_MAX_BYTES", DEFAULT_MAX_BYTES))


def uploads_storage() -> FileSystemStorage:
    return FileSystemStorage(location=getattr(settings, "UPLOADS_DIR", settings.BASE_DIR / "var" / "uploads"))


# --- Target fields --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    tz: ZoneInfo
    day_first: bool


Parser = Callable[[str, Context], Any]


@dataclass(frozen=True)
class Target:
    name: str
    label: str
    parse: Parser
    synonyms: tuple[str, ...] = ()


def text(max_length: int) -> Parser:
    def parse(value: str, ctx: Context) -> str:
        value = value.strip()
        if len(value) > max_length:
            raise ValueProblem(f"Longer than {max_length} characters.")
        return value

    return parse


def email(value: str, ctx: Context) -> str:
    value = value.strip()
    try:
        validate_email(value)
    except ValidationError:
        raise ValueProblem(f"“{value}” is not an email address.") from None
    return value


def plain(parse: Callable[[str], Any]) -> Parser:
    return lambda value, ctx: parse(value)


money = plain(parse_decimal)


def quantity(value: str, ctx: Context) -> int:
    number = parse_int(value)
    if number < 0:
        raise ValueProblem("A quantity cannot be negative.")
    return number


def when(value: str, ctx: Context) -> datetime:
    return parse_datetime(value, tz=ctx.tz, day_first=ctx.day_first)


def _words(value: str) -> str:
    return re.sub(r"[\s_\-]+", " ", value.strip().lower())


def choice(words: dict[str, str], default: str) -> Parser:
    table = {_words(k): v for k, v in words.items()}
    return lambda value, ctx: table.get(_words(value), default)


def _alnum(value: str) -> str:
    return re.sub(r"[^a-z0-9]", "", value.lower())


def _channel_aliases() -> list[tuple[str, str]]:
    aliases = {}
    for spec in CATALOGUE.values():
        if spec.kind == Kind.COMMERCE:
            for alias in (spec.platform, spec.label, spec.label.split()[0]):
                aliases[_alnum(alias)] = str(spec.platform)
    return sorted(aliases.items(), key=lambda item: -len(item[0]))


CHANNEL_ALIASES = _channel_aliases()


def channel(value: str, ctx: Context) -> str:
    """A commerce platform of the catalogue ("Amazon", "amazon.de", "TikTok Shop"), else manual."""
    wanted = _alnum(value)
    for alias, platform in CHANNEL_ALIASES:
        if wanted == alias or (len(alias) >= 4 and wanted.startswith(alias)):
            return platform
    return MANUAL


ORDER_STATUSES = {
    **dict.fromkeys(["open", "pending", "processing", "on hold", "new", "unshipped", "partially shipped"], "open"),
    **dict.fromkeys(["completed", "complete", "closed", "shipped", "delivered", "fulfilled", "refunded"], "completed"),
    **dict.fromkeys(["cancelled", "canceled", "voided", "void", "failed", "declined"], "cancelled"),
}
FINANCIAL_STATUSES = {
    **dict.fromkeys(["paid", "captured", "completed", "complete", "settled"], FinancialStatus.PAID),
    **dict.fromkeys(["pending", "authorized", "authorised", "unpaid", "awaiting payment"], FinancialStatus.PENDING),
    "partially refunded": FinancialStatus.PARTIALLY_REFUNDED,
    "refunded": FinancialStatus.REFUNDED,
    **dict.fromkeys(["voided", "void", "cancelled", "canceled"], FinancialStatus.VOIDED),
}
FULFILLMENT_STATUSES = {
    **dict.fromkeys(["fulfilled", "shipped", "delivered", "complete", "completed"], FulfillmentStatus.FULFILLED),
    **dict.fromkeys(["partial", "partially fulfilled", "partially shipped"], FulfillmentStatus.PARTIAL),
    **dict.fromkeys(
        ["unfulfilled", "unshipped", "not shipped", "pending", "awaiting shipment", "none"],
        FulfillmentStatus.UNFULFILLED,
    ),
}
PRODUCT_STATUSES = {"active": "active", "published": "active", "publish": "active", "draft": "draft"}
PRODUCT_STATUSES |= {"archived": "archived", "inactive": "archived", "disabled": "archived"}


def product_status(value: str, ctx: Context) -> str:
    return PRODUCT_STATUSES.get(_words(value), _words(value)[:32])


PLACED_AT_WORDS = ("placed at", "order date", "date", "created at", "created", "purchase date", "date placed")

TARGETS: dict[str, tuple[Target, ...]] = {
    ImportKind.ORDERS: (
        Target("external_id", "Order ID", text(100), ("order id", "id", "order", "order reference", "name")),
        Target("number", "Order number", text(64), ("order number", "order no", "number", "name", "order name")),
        Target("placed_at", "Placed at", when, PLACED_AT_WORDS),
        Target("currency", "Currency", plain(parse_currency), ("currency", "currency code")),
        Target("total", "Total", money, ("total", "order total", "total amount", "grand total", "amount")),
        Target("subtotal", "Subtotal", money, ("subtotal", "sub total", "items total")),
        Target("tax", "Tax", money, ("tax", "taxes", "total tax", "tax amount", "vat")),
        Target("shipping", "Shipping", money, ("shipping", "shipping cost", "shipping total", "shipping amount")),
        Target("discounts", "Discounts", money, ("discount", "discounts", "discount amount", "total discount")),
        Target("status", "Status", choice(ORDER_STATUSES, OrderStatus.UNKNOWN), ("status", "order status")),
        Target(
            "financial_status",
            "Financial status",
            choice(FINANCIAL_STATUSES, FinancialStatus.UNKNOWN),
            ("financial status", "payment status"),
        ),
        Target(
            "fulfillment_status",
            "Fulfilment status",
            choice(FULFILLMENT_STATUSES, FulfillmentStatus.UNKNOWN),
            ("fulfillment status", "fulfilment status", "shipping status", "shipment status"),
        ),
        Target("email", "Email", email, ("email", "customer email", "buyer email", "e mail")),
        Target("customer_name", "Customer name", text(201), ("customer name", "customer", "buyer name", "full name")),
        Target("customer_id", "Customer ID", text(128), ("customer id",)),
        Target("channel", "Channel", channel, ("channel", "platform", "sales channel", "marketplace", "source")),
        Target("sku", "SKU", text(128), ("sku", "item sku", "product sku", "lineitem sku")),
        Target(
            "line_title",
            "Line title",
            text(255),
            ("product name", "item name", "title", "product title", "lineitem name", "product", "item"),
        ),
        Target("quantity", "Quantity", quantity, ("quantity", "qty", "lineitem quantity", "quantity purchased")),
        Target("unit_price", "Unit price", money, ("unit price", "price", "item price", "lineitem price")),
    ),
    ImportKind.PRODUCTS: (
        Target("external_id", "Product ID", text(50), ("product id", "id", "handle", "item id", "asin")),
        Target("title", "Title", text(255), ("title", "name", "product name", "product title", "item name")),
        Target("sku", "SKU", text(64), ("sku", "variant sku", "seller sku", "item sku")),
        Target("price", "Price", money, ("price", "variant price", "unit price", "regular price", "list price")),
        Target("currency", "Currency", plain(parse_currency), ("currency", "currency code")),
        Target("vendor", "Vendor", text(255), ("vendor", "brand", "manufacturer")),
        Target("product_type", "Type", text(255), ("type", "product type", "category")),
        Target("status", "Status", product_status, ("status",)),
        Target(
            "stock",
            "Stock quantity",
            plain(parse_int),
            ("stock", "stock quantity", "quantity", "qty", "inventory", "inventory quantity", "available"),
        ),
    ),
    ImportKind.CUSTOMERS: (
        Target("external_id", "Customer ID", text(128), ("customer id", "id", "user id", "contact id")),
        Target("email", "Email", email, ("email", "email address", "e mail")),
        Target("first_name", "First name", text(100), ("first name", "firstname", "given name")),
        Target("last_name", "Last name", text(100), ("last name", "lastname", "surname", "family name")),
        Target("phone", "Phone", text(32), ("phone", "phone number", "telephone", "mobile")),
        Target("country", "Country", plain(parse_country), ("country", "country code")),
        Target(
            "accepts_marketing",
            "Accepts marketing",
            plain(parse_bool),
            ("accepts marketing", "accepts email marketing", "newsletter", "subscribed", "marketing opt in"),
        ),
    ),
}
# Each group needs one of its fields mapped, and a value in every row.
REQUIRED: dict[str, list[tuple[str, ...]]] = {
    ImportKind.ORDERS: [("external_id",), ("placed_at",)],
    ImportKind.PRODUCTS: [("external_id", "sku")],
    ImportKind.CUSTOMERS: [("external_id", "email")],
}


def targets(kind: str) -> tuple[Target, ...]:
    return TARGETS[kind]


def label(kind: str, name: str) -> str:
    return next((t.label for t in TARGETS[kind] if t.name == name), name)


def missing_required(kind: str, mapping: dict[str, str]) -> list[str]:
    return [
        " or ".join(label(kind, name) for name in group)
        for group in REQUIRED[kind]
        if not any(mapping.get(name) for name in group)
    ]


# --- Column mapping -------------------------------------------------------------------------------


def _normalise(header: str) -> str:
    header = header.replace("#", " number ")
    return " ".join(re.sub(r"[^a-z0-9]+", " ", header.lower()).split())


def _score(column: str, synonyms: Iterable[str]) -> float:
    normalised = _normalise(column)
    best = 0.0
    for synonym in synonyms:
        if normalised == synonym or sorted(normalised.split()) == sorted(synonym.split()):
            return 1.0
        best = max(best, difflib.SequenceMatcher(None, normalised, synonym).ratio())
    return best


def suggest_mapping(kind: str, columns: list[str]) -> dict[str, str]:
    """Each target field gets the file column whose header reads most like it ("Order ID",
    "order_number", "Total Amount"), each column at most once; the order number falls back to
    the order id's column."""
    candidates = sorted(
        (
            (_score(column, target.synonyms), -position, -index, target.name, column)
            for index, target in enumerate(TARGETS[kind])
            for position, column in enumerate(columns)
        ),
        reverse=True,
    )
    mapping: dict[str, str] = {}
    for score, _, _, name, column in candidates:
        if score >= 0.85 and name not in mapping and column not in mapping.values():
            mapping[name] = column
    if kind == ImportKind.ORDERS:
        # One column is often both: "Order ID" only, or "order_number" only.
        for name, other in (("number", "external_id"), ("external_id", "number")):
            if name not in mapping and other in mapping:
                mapping[name] = mapping[other]
    return {t.name: mapping[t.name] for t in TARGETS[kind] if t.name in mapping}


# --- Rows -----------------------------------------------------------------------------------------


@dataclass
class ParsedRow:
    number: int
    data: dict[str, str]
    values: dict[str, Any] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)

    def error(self, column: str, field_label: str, message: str) -> None:
        self.errors.append({"row": self.number, "column": column, "field": field_label, "message": message})


def parse_row(kind: str, mapping: dict[str, str], number: int, data: dict[str, str], ctx: Context) -> ParsedRow:
    row, failed = ParsedRow(number, data), set()
    for target in TARGETS[kind]:
        column = mapping.get(target.name)
        raw = (data.get(column) or "").strip() if column else ""
        if not raw:
            continue
        try:
            row.values[target.name] = target.parse(raw, ctx)
        except ValueProblem as problem:
            failed.add(target.name)
            row.error(column, target.label, str(problem))
    for group in REQUIRED[kind]:
        if not any(name in row.values or name in failed for name in group):
            names = " or ".join(label(kind, name) for name in group)
            row.error(mapping.get(group[0], ""), names, f"{names} is required.")
    if kind == ImportKind.CUSTOMERS and "external_id" not in row.values and len(row.values.get("email", "")) > 128:
        row.error(mapping.get("email", ""), "Email", "Longer than 128 characters, so it cannot be the customer ID.")
    return row


def record_key(kind: str, row: ParsedRow) -> str:
    if kind == ImportKind.ORDERS:
        return str(row.values.get("external_id", ""))
    if kind == ImportKind.PRODUCTS:
        return str(row.values.get("external_id") or row.values.get("sku", ""))
    return f"row-{row.number}"  # every customer row stands alone


def parsed_rows(job: ImportJob, *, skip: int = 0) -> Iterator[ParsedRow]:
    """Every row of the job's file, parsed with its mapping; the rows of one record (an order's
    lines, a product's variants) past MAX_ROWS_PER_RECORD are errors."""
    ctx = Context(ZoneInfo(job.tenant.time_zone), job.day_first)
    previous, run = None, 0
    with uploads_storage().open(job.stored_path, "rb") as binary:
        for index, (number, data) in enumerate(read_rows(binary, job.format)):
            if index < skip:
                continue
            row = parse_row(job.kind, job.mapping, number, data, ctx)
            key = record_key(job.kind, row)
            run = run + 1 if key == previous else 1
            previous = key
            if run > MAX_ROWS_PER_RECORD:
                row.error("", "", f"More than {MAX_ROWS_PER_RECORD} rows for one record.")
            yield row


def groups(kind: str, rows: Iterable[ParsedRow]) -> Iterator[list[ParsedRow]]:
    """Consecutive rows of one record."""
    group: list[ParsedRow] = []
    for row in rows:
        if group and record_key(kind, row) != record_key(kind, group[0]):
            yield group
            group = []
        group.append(row)
    if group:
        yield group


# --- Records --------------------------------------------------------------------------------------


def _raw(job: ImportJob, row: ParsedRow) -> dict[str, Any]:
    return {"import_job": job.pk, "row": row.number, "data": row.data}


def build_order(job: ImportJob, rows: list[ParsedRow]) -> tuple[str, OrderRecord]:
    first = rows[0].values
    order = OrderRecord(
        external_id=first["external_id"],
        number=first.get("number") or first["external_id"],
        currency=first.get("currency") or job.tenant.base_currency,
        placed_at=first["placed_at"],
        status=first.get("status", OrderStatus.UNKNOWN),
        financial_status=first.get("financial_status", FinancialStatus.UNKNOWN),
        fulfillment_status=first.get("fulfillment_status", FulfillmentStatus.UNKNOWN),
        discounts=abs(first.get("discounts", Decimal("0"))),
        shipping=first.get("shipping", Decimal("0")),
        tax=first.get("tax", Decimal("0")),
        email=first.get("email", ""),
        customer=_order_customer(first),
        raw=_raw(job, rows[0]),
    )
    order.raw["given"] = [name for name in ("subtotal", "total") if name in first]
    order.subtotal, order.total = first.get("subtotal", Decimal("0")), first.get("total", Decimal("0"))
    order.lines = [line for row in rows if (line := _order_line(job, order.external_id, row)) is not None]
    _complete_totals(order)
    return first.get("channel", MANUAL), order


def _order_customer(values: dict[str, Any]) -> CustomerRecord | None:
    external_id = values.get("customer_id") or values.get("email", "").lower()
    if not external_id or len(external_id) > 128:
        return None
    first_name, _, last_name = values.get("customer_name", "").partition(" ")
    return CustomerRecord(
        external_id=external_id, email=values.get("email", ""), first_name=first_name[:100], last_name=last_name[:100]
    )


def _order_line(job: ImportJob, order_id: str, row: ParsedRow) -> OrderLineRecord | None:
    values = row.values
    if not {"sku", "line_title", "quantity", "unit_price"} & values.keys():
        return None
    count, price = values.get("quantity", 1), values.get("unit_price", Decimal("0"))
    return OrderLineRecord(
        external_id=f"{order_id}:{row.number}",  # the file's row: the same file again gives the same ids
        title=values.get("line_title") or values.get("sku") or "Item",
        quantity=count,
        unit_price=price,
        total=price * count,
        sku=values.get("sku", ""),
        raw=_raw(job, row),
    )


def _complete_totals(order: OrderRecord) -> None:
    """Totals the file does not give are worked out from the lines."""
    given = order.raw.get("given", [])
    if "subtotal" not in given:
        order.subtotal = sum((line.total for line in order.lines), Decimal("0"))
    if "total" not in given:
        order.total = order.subtotal - order.discounts + order.shipping + order.tax


def build_product(job: ImportJob, rows: list[ParsedRow]) -> ProductRecord:
    first = rows[0].values
    product_id = first.get("external_id") or first["sku"]
    product = ProductRecord(
        external_id=product_id,
        title=first.get("title") or first.get("sku") or product_id,
        vendor=first.get("vendor", ""),
        product_type=first.get("product_type", ""),
        status=first.get("status", ""),
        raw=_raw(job, rows[0]),
    )
    for row in rows:
        product.variants.append(_variant(job, product_id, row))
    return product


def _variant(job: ImportJob, product_id: str, row: ParsedRow) -> VariantRecord:
    values = row.values
    sku = values.get("sku", "")
    variant_id = f"{product_id}:{sku}" if sku and sku != product_id else product_id
    variant = VariantRecord(
        external_id=variant_id,
        sku=sku,
        title=values.get("title", ""),
        price=values.get("price", Decimal("0")),
        currency=values.get("currency") or job.tenant.base_currency,
        raw=_raw(job, row),
    )
    if "stock" in values:
        variant.inventory.append(
            InventoryRecord(
                external_id=f"{variant_id}@{MANUAL}",
                variant_external_id=variant_id,
                available=values["stock"],
                location_id=MANUAL,
                location_name="Manual upload",
            )
        )
    return variant


def build_customer(job: ImportJob, row: ParsedRow) -> CustomerRecord:
    values = row.values
    return CustomerRecord(
        external_id=values.get("external_id") or values["email"].lower(),
        email=values.get("email", ""),
        first_name=values.get("first_name", ""),
        last_name=values.get("last_name", ""),
        phone=values.get("phone", ""),
        country=values.get("country", ""),
        accepts_marketing=values.get("accepts_marketing", False),
        raw=_raw(job, row),
    )


@dataclass
class Batch:
    """The records of up to BATCH_ROWS rows, one per external id, with each order's channel."""

    kind: str
    records: dict[str, Any] = field(default_factory=dict)
    channels: dict[str, str] = field(default_factory=dict)
    rows: int = 0

    def add(self, job: ImportJob, group: list[ParsedRow]) -> None:
        self.rows += len(group)
        if self.kind == ImportKind.CUSTOMERS:
            record = build_customer(job, group[0])
            self.records[record.external_id] = record  # the later row of one customer wins
            return
        if self.kind == ImportKind.ORDERS:
            channel_name, record = build_order(job, group)
            self.channels[record.external_id] = channel_name
        else:
            record = build_product(job, group)
        kept = self.records.get(record.external_id)
        if kept is not None:  # the same order or product again, further down the file
            merge(kept, record)
        else:
            self.records[record.external_id] = record

    def by_channel(self) -> dict[str, list]:
        split: dict[str, list] = {}
        for key, record in self.records.items():
            split.setdefault(self.channels.get(key, MANUAL), []).append(record)
        return split


def merge(kept: OrderRecord | ProductRecord, later: OrderRecord | ProductRecord) -> None:
    if isinstance(kept, OrderRecord):
        known = {line.external_id for line in kept.lines}
        kept.lines.extend(line for line in later.lines if line.external_id not in known)
        _complete_totals(kept)
    else:
        known = {variant.external_id for variant in kept.variants}
        kept.variants.extend(v for v in later.variants if v.external_id not in known)


def merge_earlier_lines(job: ImportJob, connection: Connection, orders: dict[str, OrderRecord]) -> None:
    """An order this job already wrote from rows further up the file keeps those lines: ingest
    replaces an order's lines with the record's."""
    earlier = Order.objects.for_tenant(job.tenant_id).filter(
        connection=connection, external_id__in=list(orders), raw__import_job=job.pk
    )
    lines = OrderLine.objects.for_tenant(job.tenant_id).filter(order__in=earlier).select_related("order")
    for line in lines.order_by("pk"):
        order = orders[line.order.external_id]
        if all(kept.external_id != line.external_id for kept in order.lines):
            order.lines.append(
                OrderLineRecord(
                    external_id=line.external_id,
                    title=line.title,
                    quantity=line.quantity,
                    unit_price=line.unit_price,
                    total=line.total,
                    sku=line.sku,
                    raw=line.raw,
                )
            )
    for order in orders.values():
        _complete_totals(order)


# --- Jobs -----------------------------------------------------------------------------------------


def create_job(tenant: Tenant, upload: UploadedFile, kind: str, *, user=None, request=None) -> ImportJob:
    """Store an uploaded file and make its job (a draft, waiting for the column mapping).
    Raises UploadError, with a message for people, when the file is refused."""
    name = Path(upload.name or "").name[:255]
    fmt = format_for(name)
    if fmt is None:
        raise UploadError("Upload a .csv, .json or .xml file (also .tsv, .txt, .jsonl, .ndjson).")
    limit = max_upload_bytes()
    if upload.size > limit:
        raise UploadError(f"The file is {_megabytes(upload.size)}; the largest upload is {_megabytes(limit)}.")
    if not upload.size:
        raise UploadError("The file is empty.")
    job = ImportJob(tenant=tenant, kind=kind, format=fmt, original_filename=name, size=upload.size, created_by=user)
    storage = uploads_storage()
    # Named by tenant and uuid only: the client's file name never reaches the file system.
    job.stored_path = storage.save(f"{tenant.pk}/{job.uuid}.{fmt}", upload)
    try:
        rows = first_rows(job, COLUMN_SCAN_ROWS)
        if not rows:
            raise UploadError("The file has no rows.")
    except UploadError:
        storage.delete(job.stored_path)
        raise
    job.columns = list(dict.fromkeys(column for _, data in rows for column in data))
    job.mapping = suggest_mapping(kind, job.columns)
    job.save()
    audit.record(
        "upload.created", request=request, actor=user, tenant=tenant, target=job, kind=kind, size=job.size, format=fmt
    )
    return job


def _megabytes(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB"


def first_rows(job: ImportJob, limit: int = PREVIEW_ROWS) -> list[tuple[int, dict[str, str]]]:
    rows = []
    with uploads_storage().open(job.stored_path, "rb") as binary:
        for row in read_rows(binary, job.format):
            rows.append(row)
            if len(rows) >= limit:
                break
    return rows


def start_import(
    job: ImportJob, mapping: dict[str, str], *, day_first: bool, valid_only: bool, user=None, request=None
) -> bool:
    """Queue the job's validation and import; False when it is not in a state to start."""
    unchanged = job.status == ImportStatus.INVALID and mapping == job.mapping and day_first == job.day_first
    # The rows were just validated with this very mapping: importing the valid ones needs no second pass.
    status = ImportStatus.IMPORTING if unchanged and valid_only else ImportStatus.VALIDATING
    started = ImportJob.objects.filter(pk=job.pk, status__in=STARTABLE).update(
        mapping=mapping,
        day_first=day_first,
        import_valid_only=valid_only,
        status=status,
        progress=0,
        message="",
        started_at=timezone.now(),
        finished_at=None,
    )
    if not started:
        return False
    job.refresh_from_db()
    audit.record("import.started", request=request, actor=user, tenant=job.tenant, target=job, valid_only=valid_only)
    transaction.on_commit(lambda: _enqueue(job.pk))
    return True


def _enqueue(job_id: int) -> None:
    from django_q.tasks import async_task

    async_task("commerce.uploads.run_job", job_id, task_name=f"import-job-{job_id}")


def run_job(job_id: int) -> str:
    """The task: validate, then import. Delivered again after a worker died, it starts the
    validation over, or resumes the import after its last committed batch; a finished job is
    left alone."""
    job = ImportJob.objects.select_related("tenant").filter(pk=job_id).first()
    if job is None or not job.is_running:
        return "nothing to do"
    try:
        if job.status == ImportStatus.VALIDATING:
            validate(job)
        if job.status == ImportStatus.IMPORTING:
            import_rows(job)
    except UploadError as error:
        _finish(job, ImportStatus.FAILED, str(error))
    except Exception:
        logger.exception("Import job %s failed", job.pk)
        _finish(job, ImportStatus.FAILED, "The import stopped on an internal error; it has been logged.")
    return job.status


def validate(job: ImportJob) -> None:
    job.progress = job.rows_total = job.rows_valid = job.rows_invalid = 0
    job.rows_imported = job.records_created = job.records_updated = 0
    job.errors = []
    for row in parsed_rows(job):
        job.rows_total += 1
        if row.errors:
            job.rows_invalid += 1
            job.errors.extend(row.errors[: max(0, MAX_ERRORS - len(job.errors))])
        else:
            job.rows_valid += 1
        job.progress = job.rows_total
        if job.progress % PROGRESS_EVERY == 0:
            job.save(update_fields=["progress"])
    if not job.rows_valid:
        _finish(job, ImportStatus.INVALID, "No row can be imported.")
    elif job.rows_invalid and not job.import_valid_only:
        _finish(job, ImportStatus.INVALID, "Nothing was imported because some rows are invalid.")
    else:
        job.status, job.progress = ImportStatus.IMPORTING, 0
        job.save()


def import_rows(job: ImportJob) -> None:
    connection = manual_connection(job.tenant)
    batch, consumed = Batch(job.kind), job.progress
    # Resuming: the rows of committed batches are skipped; batches end between records.
    for group in groups(job.kind, parsed_rows(job, skip=job.progress)):
        consumed += len(group)
        if not any(row.errors for row in group):
            batch.add(job, group)
        if batch.rows >= BATCH_ROWS:
            _commit(job, connection, batch, consumed)
            batch = Batch(job.kind)
    _commit(job, connection, batch, consumed)
    _finish(job, ImportStatus.DONE)


def _commit(job: ImportJob, connection: Connection, batch: Batch, consumed: int) -> None:
    result = IngestResult()
    with transaction.atomic():
        if job.kind == ImportKind.ORDERS and batch.records:
            merge_earlier_lines(job, connection, batch.records)
        for channel_name, records in batch.by_channel().items():
            result += ingest(job.kind, Source(job.tenant_id, connection.pk, channel_name), records)
        job.progress = consumed
        job.rows_imported += batch.rows
        job.records_created += result.created
        job.records_updated += result.updated
        job.save(update_fields=["progress", "rows_imported", "records_created", "records_updated"])
    if batch.records:
        invalidate_dashboard(job.tenant_id)


def invalidate_dashboard(tenant_id: int) -> None:
    try:
        invalidate = getattr(import_module("commerce.metrics"), "invalidate", None)
    except ImportError:
        return
    if invalidate is not None:
        invalidate(tenant_id)


def _finish(job: ImportJob, status: str, message: str = "") -> None:
    job.status, job.message, job.finished_at = status, message, timezone.now()
    job.save()
    audit.record(
        "import.finished",
        actor=job.created_by,
        tenant=job.tenant,
        target=job,
        status=status,
        rows=job.rows_total,
        invalid=job.rows_invalid,
        imported=job.rows_imported,
        created=job.records_created,
        updated=job.records_updated,
    )


def manual_connection(tenant: Tenant) -> Connection:
    """The tenant's one "Manual uploads" connection: disabled, so nothing ever schedules a sync."""
    with transaction.atomic():
        # The tenant row lock makes two first imports at once create one connection, not two.
        Tenant.objects.select_for_update().filter(pk=tenant.pk).first()
        connection = Connection.objects.for_tenant(tenant).filter(platform=MANUAL).order_by("pk").first()
        if connection is None:
            connection = Connection.objects.create(
                tenant=tenant,
                platform=MANUAL,
                name="Manual uploads",
                # Data arrives by upload, so the source is as good as connected; nothing tests it.
                status=ConnectionStatus.CONNECTED,
                sync_frequency=SyncFrequency.MANUAL,
                enabled=False,
                credentials={},
            )
    return connection
