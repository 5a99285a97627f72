"""WooCommerce payloads (REST API wc/v3) → `commerce.records`, one function per stream.

Money arrives as strings ("29.35") and becomes Decimal; the only float WooCommerce sends (a line's
`price`) is not read. Times come from the `*_gmt` fields, which are UTC without an offset. Names
arrive HTML-escaped ("Ship Your Idea &ndash; Black") and are unescaped.

The connector adds what one list request does not carry under the `_hub` key of a payload, so
a payload kept with a failed record maps again on its own:
- orders: `_hub.refunds`, the order's refunds from /orders/<id>/refunds (the order lists its
  refunds without their dates);
- products: `_hub.variations` (from /products/<id>/variations) and `_hub.currency` (the store's
  currency: products carry none).
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from commerce.models import FinancialStatus, FulfillmentStatus, OrderStatus
from commerce.records import (
    CustomerRecord,
    InventoryRecord,
    OrderLineRecord,
    OrderRecord,
    ProductRecord,
    RefundRecord,
    VariantRecord,
)

from . import values

HUB = "_hub"
# WooCommerce stock has no locations: every level is at this one.
LOCATION_ID = "default"
LOCATION_NAME = "Default"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ZERO = Decimal("0")
# A unit price keeps four places, as the hub stores money.
UNIT_PRICE_PLACES = Decimal("0.0001")

# WooCommerce order status → (order status, financial status, fulfilment status). A failed payment
# is no sale: it counts as cancelled until the customer pays again, which moves it to processing.
ORDER_STATUSES: dict[str, tuple[str, str, str]] = {
    "pending": (OrderStatus.OPEN, FinancialStatus.PENDING, FulfillmentStatus.UNFULFILLED),
    "on-hold": (OrderStatus.OPEN, FinancialStatus.PENDING, FulfillmentStatus.UNFULFILLED),
    "checkout-draft": (OrderStatus.OPEN, FinancialStatus.PENDING, FulfillmentStatus.UNFULFILLED),
    "processing": (OrderStatus.OPEN, FinancialStatus.PAID, FulfillmentStatus.UNFULFILLED),
    "completed": (OrderStatus.COMPLETED, FinancialStatus.PAID, FulfillmentStatus.FULFILLED),
    "cancelled": (OrderStatus.CANCELLED, FinancialStatus.VOIDED, FulfillmentStatus.UNFULFILLED),
    "failed": (OrderStatus.CANCELLED, FinancialStatus.VOIDED, FulfillmentStatus.UNFULFILLED),
    "trash": (OrderStatus.CANCELLED, FinancialStatus.VOIDED, FulfillmentStatus.UNFULFILLED),
    # Whether a refunded order had shipped, WooCommerce does not say.
    "refunded": (OrderStatus.COMPLETED, FinancialStatus.REFUNDED, FulfillmentStatus.UNKNOWN),
}

PRODUCT_STATUSES = {
    "publish": "active",
    "draft": "draft",
    "pending": "draft",
    "future": "draft",
    "private": "archived",
    "trash": "archived",
}


# --- Streams --------------------------------------------------------------------------------------


def map_order(payload: dict[str, Any]) -> OrderRecord:
    currency = payload["currency"]
    placed_at = required_gmt(payload, "date_created_gmt")
    updated_at = gmt(payload.get("date_modified_gmt"))
    total = money(payload.get("total"))
    lines = [map_order_line(item) for item in payload.get("line_items") or []]
    refunds = map_refunds(payload, currency, fallback_at=updated_at or placed_at)
    status, financial, fulfillment = order_statuses(
        payload.get("status", ""), paid=bool(payload.get("date_paid_gmt")), refunded=sum_of(refunds), total=total
    )
    billing = payload.get("billing") or {}
    return OrderRecord(
        external_id=str(payload["id"]),
        number=str(payload.get("number") or payload["id"]),
        currency=currency,
        placed_at=placed_at,
        updated_at=updated_at,
        status=status,
        financial_status=financial,
        fulfillment_status=fulfillment,
        subtotal=sum((money(item.get("subtotal")) for item in payload.get("line_items") or []), ZERO),
        discounts=money(payload.get("discount_total")),
        shipping=money(payload.get("shipping_total")),
        tax=money(payload.get("total_tax")),
        total=total,
        email=billing.get("email") or "",
        customer=order_customer(payload),
        billing_address=dict(billing),
        shipping_address=dict(payload.get("shipping") or {}),
        lines=lines,
        refunds=refunds,
        raw=without_hub(payload),
    )


def map_product(payload: dict[str, Any]) -> ProductRecord:
    hub = payload.get(HUB) or {}
    currency = hub.get("currency") or ""
    kind = payload.get("type", "")
    if kind == "variable":
        variants = [map_variation(variation, currency) for variation in hub.get("variations") or []]
    elif kind == "grouped":
        variants = []  # a grouped product sells its children, which are products of their own
    else:
        variants = [
            VariantRecord(
                external_id=str(payload["id"]),
                sku=payload.get("sku") or "",
                title=text(payload.get("name")),
                price=money(payload.get("price")),
                currency=currency,
                updated_at=gmt(payload.get("date_modified_gmt")),
                inventory=stock_levels(payload),
                raw=without_hub(payload),
            )
        ]
    return ProductRecord(
        external_id=str(payload["id"]),
        title=text(payload.get("name")),
        vendor=text(first_label(payload.get("brands"))),
        product_type=text(first_label(payload.get("categories"))),
        status=PRODUCT_STATUSES.get(payload.get("status", ""), payload.get("status", "")),
        updated_at=gmt(payload.get("date_modified_gmt")),
        variants=variants,
        raw=without_hub(payload),
    )


def map_customer(payload: dict[str, Any]) -> CustomerRecord:
    billing = payload.get("billing") or {}
    shipping = payload.get("shipping") or {}
    return CustomerRecord(
        external_id=str(payload["id"]),
        email=payload.get("email") or billing.get("email") or "",
        first_name=payload.get("first_name") or billing.get("first_name") or "",
        last_name=payload.get("last_name") or billing.get("last_name") or "",
        phone=billing.get("phone") or "",
        country=(billing.get("country") or shipping.get("country") or "")[:2],
        created_at=gmt(payload.get("date_created_gmt")),
        updated_at=gmt(payload.get("date_modified_gmt")),
        raw=payload,
    )


def map_stock(payload: dict[str, Any]) -> InventoryRecord:
    """The stock of one simple product or one variation (the `inventory` stream)."""
    levels = stock_levels(payload)
    if not levels:
        raise ValueError("its stock is not managed by WooCommerce")
    return levels[0]


# --- Parts ----------------------------------------------------------------------------------------


def map_order_line(item: dict[str, Any]) -> OrderLineRecord:
    quantity = int(item.get("quantity") or 0)
    subtotal = money(item.get("subtotal"))
    product_id = item.get("variation_id") or item.get("product_id")
    return OrderLineRecord(
        external_id=str(item["id"]),
        title=text(item.get("name")),
        quantity=quantity,
        # Before discounts, as the shop listed it; `total` is what the line cost after them.
        unit_price=(subtotal / quantity).quantize(UNIT_PRICE_PLACES) if quantity else subtotal,
        total=money(item.get("total")),
        sku=item.get("sku") or "",
        variant_external_id=str(product_id) if product_id else "",
        raw=item,
    )


def map_refunds(payload: dict[str, Any], currency: str, *, fallback_at: datetime) -> list[RefundRecord]:
    details = {str(refund.get("id")): refund for refund in (payload.get(HUB) or {}).get("refunds") or []}
    refunds = []
    for summary in payload.get("refunds") or []:
        refund_id = str(summary["id"])
        detail = details.get(refund_id)
        if detail is not None:
            refunds.append(
                RefundRecord(
                    external_id=refund_id,
                    amount=abs(money(detail.get("amount"))),
                    currency=currency,
                    refunded_at=gmt(detail.get("date_created_gmt")) or fallback_at,
                    reason=detail.get("reason") or "",
                    raw=detail,
                )
            )
        else:
            # The order's own list has no date: the order's last change is the closest we know.
            refunds.append(
                RefundRecord(
                    external_id=refund_id,
                    amount=abs(money(summary.get("total"))),
                    currency=currency,
                    refunded_at=fallback_at,
                    reason=summary.get("reason") or summary.get("refund") or "",
                    raw=summary,
                )
            )
    return refunds


def map_variation(payload: dict[str, Any], currency: str) -> VariantRecord:
    options = [str(attribute.get("option", "")) for attribute in payload.get("attributes") or []]
    return VariantRecord(
        external_id=str(payload["id"]),
        sku=payload.get("sku") or "",
        title=text(payload.get("name")) or " / ".join(option for option in options if option),
        price=money(payload.get("price")),
        currency=currency,
        updated_at=gmt(payload.get("date_modified_gmt")),
        inventory=stock_levels(payload),
        raw=payload,
    )


def stock_levels(payload: dict[str, Any]) -> list[InventoryRecord]:
    """The one stock level of a product or variation whose stock WooCommerce counts. A variation
    whose `manage_stock` is "parent" draws on its product's stock, which it reports as its own.
    Stock has no timestamp in WooCommerce, so a level is written whenever it is read."""
    if not payload.get("manage_stock") or payload.get("stock_quantity") is None:
        return []
    variant_id = str(payload["id"])
    return [
        InventoryRecord(
            external_id=f"{variant_id}@{LOCATION_ID}",
            variant_external_id=variant_id,
            available=int(payload["stock_quantity"]),
            location_id=LOCATION_ID,
            location_name=LOCATION_NAME,
            raw={
                key: payload.get(key)
                for key in ("id", "parent_id", "sku", "manage_stock", "stock_quantity", "stock_status", "backorders")
                if key in payload
            },
        )
    ]


def order_statuses(status: str, *, paid: bool, refunded: Decimal, total: Decimal) -> tuple[str, str, str]:
    if status in ORDER_STATUSES:
        order, financial, fulfillment = ORDER_STATUSES[status]
    else:
        # A status a plugin added ("shipped", "awaiting-shipment", …).
        financial = FinancialStatus.PAID if paid else FinancialStatus.UNKNOWN
        order, fulfillment = OrderStatus.UNKNOWN, FulfillmentStatus.UNKNOWN
    if refunded > 0 and financial == FinancialStatus.PAID:
        financial = FinancialStatus.REFUNDED if refunded >= total else FinancialStatus.PARTIALLY_REFUNDED
    return order, financial, fulfillment


def order_customer(payload: dict[str, Any]) -> CustomerRecord | None:
    """The order's registered customer, known to the order only by id and billing address; a
    guest order has none. Dated at the epoch, so that it creates a customer the hub has not seen
    yet but never overwrites what the customers stream read (with the account's own name and
    creation date)."""
    customer_id = payload.get("customer_id")
    if not customer_id:
        return None
    billing = payload.get("billing") or {}
    return CustomerRecord(
        external_id=str(customer_id),
        email=billing.get("email") or "",
        first_name=billing.get("first_name") or "",
        last_name=billing.get("last_name") or "",
        phone=billing.get("phone") or "",
        country=(billing.get("country") or "")[:2],
        updated_at=EPOCH,
        raw={"customer_id": customer_id, "billing": billing},
    )


# --- Values ---------------------------------------------------------------------------------------


money = values.amount  # exact Decimals; a float by its shortest repr


def gmt(value: Any) -> datetime | None:
    """A WooCommerce `*_gmt` time ("2017-03-22T19:28:02", UTC without an offset), aware."""
    if not value:
        return None
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def required_gmt(payload: dict[str, Any], key: str) -> datetime:
    value = gmt(payload.get(key))
    if value is None:
        raise ValueError(f"“{key}” is missing")
    return value


def sum_of(refunds: list[RefundRecord]) -> Decimal:
    return sum((refund.amount for refund in refunds), ZERO)


def text(value: Any) -> str:
    return html.unescape(str(value)) if value else ""


def first_label(items: Any) -> str:
    return str(items[0].get("name") or "") if isinstance(items, list) and items else ""


def without_hub(payload: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in payload.items() if key != HUB}
