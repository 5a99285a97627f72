"""The normalised records connectors produce and `commerce.ingest` consumes.

Platform-neutral: every connector maps its payloads into these (one explicit function per
platform and stream), and commerce never sees a platform's own shapes except in `raw`.
Money is Decimal in the record's currency; datetimes are timezone-aware (UTC).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Union


@dataclass
class CustomerRecord:
    external_id: str
    email: str = ""
    first_name: str = ""
    last_name: str = ""
    phone: str = ""
    country: str = ""
    accepts_marketing: bool = False
    tags: list[str] = field(default_factory=list)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass
class InventoryRecord:
    """Stock of one variant at one location. `external_id` is unique per connection
    (e.g. "<inventory item id>@<location id>")."""

    external_id: str
    variant_external_id: str
    available: int
    location_id: str = ""
    location_name: str = ""
    updated_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass
class VariantRecord:
    external_id: str
    sku: str = ""
    title: str = ""
    price: Decimal = Decimal("0")
    currency: str = ""
    updated_at: datetime | None = None
    inventory: list[InventoryRecord] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass
class ProductRecord:
    external_id: str
    title: str
    vendor: str = ""
    product_type: str = ""
    status: str = ""
    updated_at: datetime | None = None
    variants: list[VariantRecord] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass
class OrderLineRecord:
    external_id: str
    title: str
    quantity: int
    unit_price: Decimal
    total: Decimal
    sku: str = ""
    variant_external_id: str = ""
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass
class RefundRecord:
    external_id: str
    amount: Decimal
    currency: str
    refunded_at: datetime
    reason: str = ""
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass
class OrderRecord:
    """Statuses use commerce.models' OrderStatus / FinancialStatus / FulfillmentStatus values."""

    external_id: str
    number: str
    currency: str
    placed_at: datetime
    updated_at: datetime | None = None
    status: str = "open"
    financial_status: str = "pending"
    fulfillment_status: str = "unfulfilled"
    subtotal: Decimal = Decimal("0")
    discounts: Decimal = Decimal("0")
    shipping: Decimal = Decimal("0")
    tax: Decimal = Decimal("0")
    total: Decimal = Decimal("0")
    email: str = ""
    customer: CustomerRecord | None = None
    billing_address: dict[str, Any] = field(default_factory=dict)
    shipping_address: dict[str, Any] = field(default_factory=dict)
    lines: list[OrderLineRecord] = field(default_factory=list)
    refunds: list[RefundRecord] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass
class FeeRecord:
    """What a platform charged the seller for one sale or service (commission, fulfilment, …).
    `amount` is positive when charged and negative when given back (a fee refunded with an order).
    `type` is a commerce.models.FeeType value; `platform_type` the platform's own name for the fee,
    `event_type` the kind of event it came with (a shipment, a refund, a service fee…). An order is
    named by its `order_external_id`; ingest links the fee to that order of the same connection once
    both are stored, whichever comes first."""

    external_id: str
    amount: Decimal
    currency: str
    type: str = "other"
    platform_type: str = ""
    event_type: str = ""
    order_external_id: str = ""
    sku: str = ""
    posted_at: datetime | None = None
    updated_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass
class SettlementRecord:
    """One payout period: what the platform owes or paid the seller for it. `status` is a
    commerce.models.SettlementStatus value; `ended_at` is empty while the period is open."""

    external_id: str
    total: Decimal
    currency: str
    status: str = "unknown"
    started_at: datetime | None = None
    ended_at: datetime | None = None
    transferred_at: datetime | None = None
    updated_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict)


Record = Union[CustomerRecord, ProductRecord, InventoryRecord, OrderRecord, FeeRecord, SettlementRecord]  # noqa: UP007


@dataclass
class IngestFailure:
    """A record that could not be stored (e.g. stock for a variant the hub has never seen)."""

    external_id: str
    payload: Any
    error: str


@dataclass
class IngestResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0  # includes records older than what is stored, which are skipped
    failures: list[IngestFailure] = field(default_factory=list)

    def __iadd__(self, other: IngestResult) -> IngestResult:
        self.created += other.created
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.failures.extend(other.failures)
        return self
