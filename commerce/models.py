"""What the hub knows about a tenant's shops: orders, products, customers, stock, refunds, fees and
settlements.

Commerce knows nothing about platforms. Every row points at its source connection by a string
foreign key, carries the platform's id for it (unique per connection) and keeps the platform's raw
payload beside the promoted columns. Money is Decimal beside its currency; times are UTC.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Exists, Min, OuterRef, Subquery
from django.utils import timezone

from tenants.models import TenantOwned


def money(**kwargs) -> models.DecimalField:
    # Four places hold every ISO 4217 currency exactly (KWD and BHD use three).
    return models.DecimalField(max_digits=18, decimal_places=4, default=Decimal("0"), **kwargs)


class CommerceRecord(TenantOwned):
    connection = models.ForeignKey("integrations.Connection", on_delete=models.RESTRICT, related_name="+")
    external_id = models.CharField(max_length=128)
    platform_updated_at = models.DateTimeField(null=True, blank=True)
    raw = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        abstract = True
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "external_id"], name="%(app_label)s_%(class)s_unique_external"
            ),
        ]


class Customer(CommerceRecord):
    email = models.EmailField(blank=True)
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    phone = models.CharField(max_length=32, blank=True)
    country = models.CharField(max_length=2, blank=True)
    accepts_marketing = models.BooleanField(default=False)
    tags = models.JSONField(default=list, blank=True)
    platform_created_at = models.DateTimeField(null=True, blank=True)
    # The placed_at of the customer's earliest counted (not cancelled) order, or empty without one.
    # Derived, never set by a record: every write of orders refreshes it (`refresh_first_orders`),
    # so the dashboard tells new from returning customers without searching their earlier orders.
    first_order_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta(CommerceRecord.Meta):
        indexes = [
            models.Index(fields=["tenant", "email"], name="customer_tenant_email"),
            models.Index(fields=["tenant", "first_order_at"], name="customer_tenant_first_order"),
        ]

    def __str__(self) -> str:
        return self.full_name or self.email or self.external_id

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class Product(CommerceRecord):
    title = models.CharField(max_length=255)
    vendor = models.CharField(max_length=255, blank=True)
    product_type = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=32, blank=True)

    class Meta(CommerceRecord.Meta):
        pass

    def __str__(self) -> str:
        return self.title


class ProductVariant(CommerceRecord):
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="variants")
    sku = models.CharField(max_length=128, blank=True)
    title = models.CharField(max_length=255, blank=True)
    price = money()
    currency = models.CharField(max_length=3)
    reorder_point = models.IntegerField(null=True, blank=True, help_text="Empty: the tenant's default.")

    class Meta(CommerceRecord.Meta):
        indexes = [models.Index(fields=["tenant", "sku"], name="variant_tenant_sku")]

    def __str__(self) -> str:
        return self.sku or self.title or self.external_id


class InventoryLevel(CommerceRecord):
    variant = models.ForeignKey(ProductVariant, on_delete=models.CASCADE, related_name="inventory_levels")
    location_id = models.CharField(max_length=128, blank=True)
    location_name = models.CharField(max_length=255, blank=True)
    available = models.IntegerField(default=0)

    class Meta(CommerceRecord.Meta):
        indexes = [models.Index(fields=["tenant", "available"], name="inventory_tenant_available")]

    def __str__(self) -> str:
        return f"{self.variant} @ {self.location_name or self.location_id}: {self.available}"


class OrderStatus(models.TextChoices):
    OPEN = "open", "Open"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"
    UNKNOWN = "unknown", "Unknown"


class FinancialStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PAID = "paid", "Paid"
    PARTIALLY_REFUNDED = "partially_refunded", "Partially refunded"
    REFUNDED = "refunded", "Refunded"
    VOIDED = "voided", "Voided"
    UNKNOWN = "unknown", "Unknown"


class FulfillmentStatus(models.TextChoices):
    UNFULFILLED = "unfulfilled", "Unfulfilled"
    PARTIAL = "partial", "Partially fulfilled"
    FULFILLED = "fulfilled", "Fulfilled"
    UNKNOWN = "unknown", "Unknown"


class Order(CommerceRecord):
    number = models.CharField(max_length=64)
    # The source platform, copied from the connection so channel reports aggregate over one index.
    channel = models.CharField(max_length=32)
    customer = models.ForeignKey(Customer, null=True, blank=True, on_delete=models.SET_NULL, related_name="orders")
    email = models.EmailField(blank=True)
    status = models.CharField(max_length=16, choices=OrderStatus.choices, default=OrderStatus.OPEN)
    financial_status = models.CharField(max_length=24, choices=FinancialStatus.choices, default=FinancialStatus.PENDING)
    fulfillment_status = models.CharField(
        max_length=16, choices=FulfillmentStatus.choices, default=FulfillmentStatus.UNFULFILLED
    )
    currency = models.CharField(max_length=3)
    subtotal = money()
    discounts = money()
    shipping = money()
    tax = money()
    total = money()
    placed_at = models.DateTimeField()
    billing_address = models.JSONField(default=dict, blank=True)
    shipping_address = models.JSONField(default=dict, blank=True)

    class Meta(CommerceRecord.Meta):
        ordering = ["-placed_at"]
        indexes = [
            # Covering the columns the dashboard aggregates, so its sums are index-only scans.
            models.Index(
                fields=["tenant", "placed_at"],
                include=["status", "currency", "total", "channel", "customer"],
                name="order_tenant_placed_totals",
            ),
            # A customer's earlier orders, for new versus returning customers.
            models.Index(fields=["tenant", "customer", "placed_at"], include=["status"], name="order_tenant_customer"),
            models.Index(fields=["tenant", "channel", "placed_at"], name="order_tenant_channel_placed"),
            models.Index(fields=["tenant", "fulfillment_status"], name="order_tenant_fulfillment"),
            models.Index(fields=["tenant", "updated_at"], name="order_tenant_updated"),
        ]

    def __str__(self) -> str:
        return f"#{self.number}"

    @property
    def counted(self) -> bool:
        """Whether the order counts in figures: every order that is not cancelled."""
        return self.status != OrderStatus.CANCELLED

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        # The customer as stored, so a save that moves the order refreshes the one it left too.
        instance._stored_customer_id = instance.__dict__.get("customer_id")
        return instance

    def save(self, *args, **kwargs) -> None:
        """Save one order and keep what is derived from it current, as commerce.ingest does for a
        page: its lines' copies of its columns and its customers' first_order_at."""
        adding = self._state.adding
        super().save(*args, **kwargs)
        if not adding:
            self.lines.update(placed_at=self.placed_at, currency=self.currency, counted=self.counted)
        refresh_first_orders([self.customer_id, getattr(self, "_stored_customer_id", None)])
        self._stored_customer_id = self.customer_id


class OrderLine(CommerceRecord):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    variant = models.ForeignKey(ProductVariant, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    sku = models.CharField(max_length=128, blank=True)
    title = models.CharField(max_length=255)
    quantity = models.IntegerField(default=1)
    unit_price = money()
    total = money()
    # Copies of the order's columns, written with the line (commerce.ingest, `save`) and rewritten
    # whenever the order is, so top products aggregates a period's lines without joining orders.
    placed_at = models.DateTimeField(editable=False)
    currency = models.CharField(max_length=3, editable=False)
    counted = models.BooleanField(editable=False, help_text="The order is not cancelled.")

    class Meta(CommerceRecord.Meta):
        indexes = [
            # Covering what top products aggregates, so its sums are index-only scans.
            models.Index(
                fields=["tenant", "placed_at"],
                include=["counted", "currency", "sku", "title", "quantity", "total"],
                name="orderline_tenant_placed",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.title}"

    def save(self, *args, **kwargs) -> None:
        self.placed_at, self.currency, self.counted = self.order.placed_at, self.order.currency, self.order.counted
        super().save(*args, **kwargs)


class Refund(CommerceRecord):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="refunds")
    amount = money()
    currency = models.CharField(max_length=3)
    reason = models.CharField(max_length=255, blank=True)
    refunded_at = models.DateTimeField()

    class Meta(CommerceRecord.Meta):
        indexes = [models.Index(fields=["tenant", "refunded_at"], name="refund_tenant_refunded")]

    def __str__(self) -> str:
        return f"{self.amount} {self.currency} on {self.order}"


class FeeType(models.TextChoices):
    COMMISSION = "commission", "Commission"
    FULFILMENT = "fulfilment", "Fulfilment"
    REFERRAL = "referral", "Referral"
    OTHER = "other", "Other"


class Fee(CommerceRecord):
    """What a platform charged the seller: positive `amount` is charged, negative given back (a fee
    refunded with its order). The platform's own name for the fee is `platform_type`."""

    # The platform's order id is kept beside the link: a fee may be stored before its order, and
    # ingest links the two when the order comes (commerce.ingest).
    order = models.ForeignKey(Order, null=True, blank=True, on_delete=models.SET_NULL, related_name="fees")
    order_external_id = models.CharField(max_length=128, blank=True)
    type = models.CharField(max_length=16, choices=FeeType.choices, default=FeeType.OTHER)
    platform_type = models.CharField(max_length=64, blank=True)
    event_type = models.CharField(max_length=64, blank=True, help_text="What the fee came with: a shipment, a refund…")
    sku = models.CharField(max_length=128, blank=True)
    amount = money()
    currency = models.CharField(max_length=3)
    posted_at = models.DateTimeField(null=True, blank=True, help_text="Empty when the platform does not date it.")

    class Meta(CommerceRecord.Meta):
        ordering = ["-posted_at", "-pk"]
        indexes = [
            models.Index(fields=["tenant", "posted_at"], name="fee_tenant_posted"),
            # The fees still waiting for an order of theirs, found when the order is written.
            models.Index(fields=["connection", "order_external_id"], name="fee_connection_order"),
        ]

    def __str__(self) -> str:
        return f"{self.platform_type or self.get_type_display()} {self.amount} {self.currency}"


class SettlementStatus(models.TextChoices):
    OPEN = "open", "Open"
    CLOSED = "closed", "Closed, not paid yet"
    PAID = "paid", "Paid"
    FAILED = "failed", "Payment failed"
    UNKNOWN = "unknown", "Unknown"


class Settlement(CommerceRecord):
    """One payout period of a platform: its total for the seller and whether it has been paid."""

    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True, help_text="Empty while the period is open.")
    total = money()
    currency = models.CharField(max_length=3, blank=True)
    status = models.CharField(max_length=16, choices=SettlementStatus.choices, default=SettlementStatus.UNKNOWN)
    transferred_at = models.DateTimeField(null=True, blank=True)

    class Meta(CommerceRecord.Meta):
        ordering = ["-started_at", "-pk"]
        indexes = [models.Index(fields=["tenant", "started_at"], name="settlement_tenant_started")]

    def __str__(self) -> str:
        return f"Settlement {self.external_id} ({self.get_status_display()})"


# --- Derived columns -------------------------------------------------------------------------------


def refresh_first_orders(customer_ids: Iterable[int | None]) -> None:
    """Set `first_order_at` of these customers from their orders, in one UPDATE.

    Recomputed rather than adjusted, so it stays right whatever changed: an order placed earlier
    arriving late, the first order cancelled, an order moved to another customer (refresh both)."""
    ids = sorted({pk for pk in customer_ids if pk is not None})
    if ids:
        Customer.objects.filter(pk__in=ids).update(first_order_at=first_counted_order())


def first_counted_order() -> Subquery:
    """The placed_at of the earliest counted order of the outer query's customer, or NULL."""
    return Subquery(
        Order.objects.filter(tenant=OuterRef("tenant"), customer=OuterRef("pk"))
        .exclude(status=OrderStatus.CANCELLED)
        .order_by()
        .values("customer")
        .annotate(first=Min("placed_at"))
        .values("first")
    )


def refresh_line_copies(order_ids: Iterable[int]) -> None:
    """Copy each order's placed_at, currency and counted onto its lines, in one UPDATE (for rows
    written without commerce.ingest, which writes lines with their copies)."""
    ids = sorted(set(order_ids))
    if not ids:
        return
    order = Order.objects.filter(pk=OuterRef("order_id"))
    OrderLine.objects.filter(order_id__in=ids).update(
        placed_at=Subquery(order.values("placed_at")),
        currency=Subquery(order.values("currency")),
        counted=Exists(order.exclude(status=OrderStatus.CANCELLED)),
    )


class ImportKind(models.TextChoices):
    ORDERS = "orders", "Orders"
    PRODUCTS = "products", "Products"
    CUSTOMERS = "customers", "Customers"


class ImportFormat(models.TextChoices):
    CSV = "csv", "CSV"
    JSON = "json", "JSON"
    XML = "xml", "XML"


class ImportStatus(models.TextChoices):
    DRAFT = "draft", "Waiting for column mapping"
    VALIDATING = "validating", "Validating"
    INVALID = "invalid", "Has invalid rows"
    IMPORTING = "importing", "Importing"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class ImportJob(TenantOwned):
    """One uploaded file (orders, products or customers) and its way into the tenant's data.

    The file lives in the uploads storage under a name made of the tenant id and the job's uuid;
    validation and import run on the task cluster and record their progress here."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(max_length=16, choices=ImportKind.choices)
    format = models.CharField(max_length=8, choices=ImportFormat.choices)
    original_filename = models.CharField(max_length=255)
    stored_path = models.CharField(max_length=255, editable=False)
    size = models.BigIntegerField(default=0)
    columns = models.JSONField(default=list, blank=True, help_text="The file's columns, in order.")
    # {target field: file column}
    mapping = models.JSONField(default=dict, blank=True)
    day_first = models.BooleanField(default=False, help_text="Read 03/04/2025 as 3 April, not March 4.")
    status = models.CharField(max_length=16, choices=ImportStatus.choices, default=ImportStatus.DRAFT)
    import_valid_only = models.BooleanField(default=False)
    # Rows processed in the current phase (validation, then import); during import it is also where
    # a redelivered task resumes, so it is committed with each batch.
    progress = models.PositiveIntegerField(default=0)
    rows_total = models.PositiveIntegerField(default=0)
    rows_valid = models.PositiveIntegerField(default=0)
    rows_invalid = models.PositiveIntegerField(default=0)
    rows_imported = models.PositiveIntegerField(default=0)
    records_created = models.PositiveIntegerField(default=0)
    records_updated = models.PositiveIntegerField(default=0)
    # The first row errors: [{"row", "column", "field", "message"}]
    errors = models.JSONField(default=list, blank=True)
    message = models.TextField(blank=True, help_text="Why the job failed, for people.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["tenant", "-created_at"], name="importjob_tenant_recent")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} upload {self.original_filename} ({self.get_status_display()})"

    @property
    def is_running(self) -> bool:
        return self.status in {ImportStatus.VALIDATING, ImportStatus.IMPORTING}

    @property
    def percent(self) -> int | None:
        if self.status == ImportStatus.DONE:
            return 100
        if self.status == ImportStatus.IMPORTING and self.rows_total:
            return min(100, int(100 * self.progress / self.rows_total))
        return None
