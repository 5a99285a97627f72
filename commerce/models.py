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


# --- Fulfilment ------------------------------------------------------------------------------------


class FulfilmentPushStatus(models.TextChoices):
    """Where a hub fulfilment stands on its way to the platform (commerce.fulfilment)."""

    PENDING = "pending", "Waiting to be pushed"
    PUSHING = "pushing", "Pushing"
    PUSHED = "pushed", "Pushed"
    RETRYING = "retrying", "Retrying"
    FAILED = "failed", "Failed"


class FulfilmentSource(models.TextChoices):
    MANUAL = "manual", "Manual"
    BULK = "bulk", "Bulk"
    CSV = "csv", "CSV upload"
    RULE = "rule", "Auto-fulfilment rule"
    API = "api", "API"


class FulfilmentRule(TenantOwned):
    """Auto-fulfilment: orders arriving after the rule was switched on whose lines match it (by
    SKU, SKU prefix and/or connection) are fulfilled with its carrier and tracking number (empty
    for digital goods). See commerce.fulfilment_rules."""

    name = models.CharField(max_length=100)
    enabled = models.BooleanField(default=True)
    # Set whenever the rule is switched on: a rule never reaches back to orders placed before it.
    enabled_at = models.DateTimeField(null=True, blank=True, editable=False)
    connection = models.ForeignKey(
        "integrations.Connection",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="Only orders from this connection. Empty: any connection.",
    )
    skus = models.JSONField(default=list, blank=True, help_text="Lines with one of these SKUs.")
    sku_prefix = models.CharField(max_length=128, blank=True, help_text="Lines whose SKU starts with this.")
    carrier = models.CharField(max_length=32, help_text="A hub carrier code (commerce.carriers).")
    tracking_number = models.CharField(max_length=128, blank=True, help_text="Empty for digital goods.")
    notify_customer = models.BooleanField(default=True)
    orders_fulfilled = models.PositiveIntegerField(default=0, editable=False)
    last_error = models.TextField(blank=True, editable=False)
    last_error_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["pk"]
        indexes = [models.Index(fields=["tenant", "enabled"], name="fulfilmentrule_tenant_enabled")]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        if not self.enabled:
            self.enabled_at = None
        elif self.enabled_at is None:
            self.enabled_at = timezone.now()
        self.updated_at = timezone.now()
        if kwargs.get("update_fields") is not None:
            kwargs["update_fields"] = {*kwargs["update_fields"], "enabled_at", "updated_at"}
        super().save(*args, **kwargs)

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        if not (self.skus or self.sku_prefix or self.connection_id):
            raise ValidationError("Match on SKUs, a SKU prefix or a connection: a rule matching everything is refused.")
        if self.connection_id and self.tenant_id and self.connection.tenant_id != self.tenant_id:
            raise ValidationError({"connection": "Choose one of the client's own connections."})

    def matches_sku(self, sku: str) -> bool:
        """Whether a line with this SKU is the rule's (every line, when the rule names no SKU)."""
        if not (self.skus or self.sku_prefix):
            return True
        return sku in self.skus or bool(self.sku_prefix and sku.startswith(self.sku_prefix))


class Fulfilment(TenantOwned):
    """A shipment the hub pushes to the order's platform: tracking, carrier and the lines it ships.

    It counts against what remains to fulfil from its creation (unless it fails), but the order's
    `fulfillment_status` changes only once the platform has accepted it (`pushed`)."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="fulfilments")
    connection = models.ForeignKey("integrations.Connection", on_delete=models.RESTRICT, related_name="+")
    tracking_number = models.CharField(max_length=128, blank=True)
    carrier = models.CharField(max_length=32, help_text="A hub carrier code (commerce.carriers).")
    tracking_url = models.URLField(max_length=500, blank=True)
    # [[order line id, quantity]]; empty: every line still unfulfilled.
    lines = models.JSONField(default=list, blank=True)
    notify_customer = models.BooleanField(default=False)
    source = models.CharField(max_length=8, choices=FulfilmentSource.choices, default=FulfilmentSource.MANUAL)
    rule = models.ForeignKey(
        FulfilmentRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="fulfilments"
    )
    status = models.CharField(max_length=16, choices=FulfilmentPushStatus.choices, default=FulfilmentPushStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, help_text="The platform's reason, for people.")
    remote_id = models.CharField(max_length=255, blank=True, help_text="The platform's id for the fulfilment.")
    pushed_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["tenant", "-created_at"], name="fulfilment_tenant_recent"),
            models.Index(fields=["tenant", "status", "-created_at"], name="fulfilment_tenant_status"),
            models.Index(fields=["tenant", "pushed_at"], name="fulfilment_tenant_pushed"),
            # The sweep's retries that are due and pushes that stalled.
            models.Index(fields=["status", "next_attempt_at"], name="fulfilment_due"),
        ]
        constraints = [
            # A rule fulfils an order once, however often its task is delivered.
            models.UniqueConstraint(
                fields=["order", "rule"], condition=models.Q(rule__isnull=False), name="fulfilment_once_per_rule"
            ),
        ]

    def __str__(self) -> str:
        return f"Fulfilment {self.pk} of #{self.order.number}" if self.order_id else f"Fulfilment {self.pk}"

    @property
    def carrier_name(self) -> str:
        from .carriers import CARRIERS

        return CARRIERS[self.carrier].name if self.carrier in CARRIERS else self.carrier


class NotifyVia(models.TextChoices):
    PLATFORM = "platform", "The platform's own shipping email"
    HUB = "hub", "The hub, through your messaging connection"


class FulfilmentSettings(TenantOwned):
    """A client's fulfilment settings; a client without a row has the defaults."""

    sla_hours = models.PositiveIntegerField(
        "SLA (hours)", default=48, help_text="An order not shipped this long after it was placed is late."
    )
    notify_customers = models.BooleanField(
        default=True, help_text="Tell the customer when an order ships, unless a fulfilment says otherwise."
    )
    notify_via = models.CharField(
        "tell customers through",
        max_length=16,
        choices=NotifyVia.choices,
        default=NotifyVia.PLATFORM,
        help_text="The platform's own shipping email, or the hub through your messaging connection (SendGrid email, "
        "else Twilio SMS) with the tracking link.",
    )
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "fulfilment settings"
        verbose_name_plural = "fulfilment settings"
        constraints = [models.UniqueConstraint(fields=["tenant"], name="fulfilmentsettings_one_per_tenant")]

    def __str__(self) -> str:
        return f"Fulfilment settings of {self.tenant}"

    @classmethod
    def of(cls, tenant) -> FulfilmentSettings:
        """The tenant's settings, or the defaults (unsaved) when it has none."""
        tenant_id = getattr(tenant, "pk", tenant)
        return cls.objects.for_tenant(tenant_id).first() or cls(tenant_id=tenant_id)


# --- Stock across channels ---
# One figure per SKU (StockItem.on_hand) that every channel listing of the SKU is kept at: set by
# people, taken down by sales, reconciled with the platforms' own figures under each connection's
# conflict strategy. The logic is in commerce.stock; pushes go through commerce.pushes.


class ConflictStrategy(models.TextChoices):
    TIMESTAMP = "timestamp", "Newest figure wins"
    PLATFORM_PRIORITY = "platform_priority", "The platform's figure wins"
    HUB_PRIORITY = "hub_priority", "The hub's figure wins"
    MANUAL = "manual", "A person decides"


class StockItem(TenantOwned):
    """The hub's stock figure for one SKU of a tenant, across every channel it is listed on."""

    sku = models.CharField("SKU", max_length=128)
    title = models.CharField(max_length=255, blank=True)
    on_hand = models.IntegerField(default=0, help_text="Units available to sell on every channel.")
    reorder_point = models.IntegerField(null=True, blank=True, help_text="Empty: the tenant's default.")
    # Moves on with every change of on_hand: a push records the version it carried, so a push that
    # lands after the figure changed again is followed by another.
    version = models.PositiveBigIntegerField(default=0, editable=False)
    # When the figure was last changed, by anyone: the `timestamp` strategy compares it with the
    # time of a platform's figure.
    changed_at = models.DateTimeField(default=timezone.now, editable=False)
    # Orders placed before the item existed are history, already in the figure it started from.
    counted_at = models.DateTimeField(default=timezone.now, editable=False)
    # Set when the fall to the reorder point was announced, cleared when stock is above it again,
    # so each fall is announced once.
    low_since = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["sku"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "sku"], name="stockitem_one_per_sku"),
            models.CheckConstraint(condition=models.Q(on_hand__gte=0), name="stockitem_never_negative"),
        ]

    def __str__(self) -> str:
        return self.sku


class LinkSource(models.TextChoices):
    AUTO = "auto", "By SKU"
    MANUAL = "manual", "By hand"


class PushStatus(models.TextChoices):
    NEVER = "never", "Not pushed yet"
    QUEUED = "queued", "Queued"
    PUSHING = "pushing", "Pushing"
    RETRYING = "retrying", "Will retry"
    PUSHED = "pushed", "Pushed"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Not pushed (no platform behind it)"


class StockListing(TenantOwned):
    """One channel's listing of a stock item: the connection and the platform's ids for it, and
    the state of the last push of the hub's figure to it."""

    item = models.ForeignKey(StockItem, on_delete=models.CASCADE, related_name="listings")
    connection = models.ForeignKey("integrations.Connection", on_delete=models.CASCADE, related_name="+")
    # The synced variant the listing stands for, when there is one (its levels are the platform's figure).
    variant = models.ForeignKey(
        ProductVariant, null=True, blank=True, on_delete=models.SET_NULL, related_name="stock_listings"
    )
    product_external_id = models.CharField(max_length=128, blank=True)
    variant_external_id = models.CharField(max_length=128, blank=True)
    location_id = models.CharField(
        max_length=128, blank=True, help_text="The platform's location to set; empty for its default location."
    )
    linked_by = models.CharField(max_length=8, choices=LinkSource.choices, default=LinkSource.AUTO)
    # When the hub last took this platform's figure as its own: the platform's sales before then
    # were in that figure, so their orders do not take stock down again.
    adopted_at = models.DateTimeField(null=True, blank=True, editable=False)
    push_status = models.CharField(max_length=16, choices=PushStatus.choices, default=PushStatus.NEVER)
    push_attempts = models.PositiveIntegerField(default=0)
    push_message = models.TextField(blank=True, help_text="The platform's reason when a push failed.")
    pushed_quantity = models.IntegerField(null=True, blank=True)
    pushed_version = models.PositiveBigIntegerField(null=True, blank=True, editable=False)
    pushed_at = models.DateTimeField(null=True, blank=True, help_text="When a push last landed.")
    remote_id = models.CharField(max_length=255, blank=True)
    next_push_at = models.DateTimeField(null=True, blank=True)
    push_locked_until = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["item", "connection", "pk"]
        constraints = [
            # A platform's variant counts towards one SKU only.
            models.UniqueConstraint(
                fields=["connection", "variant_external_id"],
                condition=~models.Q(variant_external_id=""),
                name="stocklisting_one_item_per_variant",
            ),
            models.UniqueConstraint(
                fields=["item", "connection"],
                condition=models.Q(variant_external_id=""),
                name="stocklisting_one_sku_listing_per_connection",
            ),
        ]
        indexes = [models.Index(fields=["push_status", "next_push_at"], name="stocklisting_push_due")]

    def __str__(self) -> str:
        return f"{self.item} on {self.connection}"


class ConflictStatus(models.TextChoices):
    OPEN = "open", "Waiting for a person"
    ACCEPTED_HUB = "accepted_hub", "Hub's figure kept"
    ACCEPTED_PLATFORM = "accepted_platform", "Platform's figure taken"
    SETTLED = "settled", "Settled (the figures agree again)"


class StockConflict(TenantOwned):
    """A platform's figure that differs from the hub's on a connection whose strategy is `manual`."""

    item = models.ForeignKey(StockItem, on_delete=models.CASCADE, related_name="conflicts")
    listing = models.ForeignKey(StockListing, on_delete=models.CASCADE, related_name="conflicts")
    hub_quantity = models.IntegerField()
    platform_quantity = models.IntegerField()
    platform_seen_at = models.DateTimeField(help_text="The time of the platform's figure.")
    status = models.CharField(max_length=24, choices=ConflictStatus.choices, default=ConflictStatus.OPEN)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["listing"], condition=models.Q(status="open"), name="stockconflict_one_open_per_listing"
            )
        ]
        indexes = [models.Index(fields=["tenant", "status"], name="stockconflict_tenant_status")]

    def __str__(self) -> str:
        return f"{self.item}: hub {self.hub_quantity}, platform {self.platform_quantity}"


class Oversell(TenantOwned):
    """A sale the hub had no stock left for (two channels sold the last unit): for a person."""

    item = models.ForeignKey(StockItem, on_delete=models.CASCADE, related_name="oversells")
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="oversells")
    # The line by its platform id, not a foreign key: ingest deletes lines an order no longer has
    # in one statement, which a key pointing at them would turn into a search per page.
    line_external_id = models.CharField(max_length=128)
    sku = models.CharField("SKU", max_length=128)
    quantity = models.IntegerField(help_text="Units the line sold.")
    short = models.IntegerField(help_text="Units the hub did not have for it.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["order", "line_external_id"], name="oversell_once_per_line"),
        ]
        indexes = [models.Index(fields=["tenant", "resolved_at"], name="oversell_tenant_resolved")]

    def __str__(self) -> str:
        return f"{self.item}: {self.short} short on {self.order}"


class StockChannelSettings(TenantOwned):
    """How one connection's stock figures meet the hub's (no row: `timestamp`)."""

    connection = models.OneToOneField("integrations.Connection", on_delete=models.CASCADE, related_name="+")
    conflict_strategy = models.CharField(
        max_length=24, choices=ConflictStrategy.choices, default=ConflictStrategy.TIMESTAMP
    )

    class Meta:
        verbose_name = "stock settings of a connection"
        verbose_name_plural = "stock settings of connections"

    def __str__(self) -> str:
        return f"{self.connection}: {self.get_conflict_strategy_display()}"


class StockAlertSettings(TenantOwned):
    """A tenant's low-stock alerts (no row: no email)."""

    tenant = models.OneToOneField("tenants.Tenant", on_delete=models.CASCADE, related_name="stock_alert_settings")
    email_owners = models.BooleanField(
        default=False, help_text="Email the client's owners when a SKU falls to its reorder point."
    )

    class Meta:
        verbose_name = "low-stock alert settings"
        verbose_name_plural = "low-stock alert settings"

    def __str__(self) -> str:
        return f"{self.tenant}: {'email owners' if self.email_owners else 'no email'}"
