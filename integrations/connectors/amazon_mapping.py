"""Amazon SP-API payloads → `commerce.records`, one function per kind of record.

- Orders (Orders API v2026-01-01 `Order`, items included): the order id is its number; totals come
  from `proceeds` (ITEM, SHIPPING, TAX, DISCOUNT), or from the items' prices while Amazon has not
  priced a pending order yet. An item's variant is its seller SKU.
- Refunds (Finances v0 `RefundEventList`, one `ShipmentEvent` per refund): what the buyer got back,
  the charges (principal, tax, shipping…) less the promotions taken back; Amazon's fees and their
  refunds are left out (commerce has no place for fees). A refund has no id of its own: it is
  known by its order and the time it was posted.
- FBA inventory summaries: a variant per seller SKU, a product per ASIN, and a level per SKU and
  marketplace (fulfillable units).

The connector adds what a payload does not carry under its `_hub` key, so a quarantined payload
maps again on its own: an order's refund events (`_hub.refunds`), an inventory summary's
marketplace (`_hub.marketplace`), and a product's summaries of its SKUs (`_hub.skus`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
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

from .amazon_config import MARKETPLACES
from .values import amount as money
from .values import iso_time as time_of
from .values import required_time

HUB = "_hub"
ZERO = Decimal("0")

# Fulfilment status → (order status, financial status, fulfilment status). Amazon charges the buyer
# when it ships, and authorises payment once an order leaves PENDING. Whether an order was refunded
# is not in the order: refunds are rows of their own (see `refunds`).
STATUSES: dict[str, tuple[str, str, str]] = {
    "PENDING_AVAILABILITY": (OrderStatus.OPEN, FinancialStatus.PENDING, FulfillmentStatus.UNFULFILLED),
    "PENDING": (OrderStatus.OPEN, FinancialStatus.PENDING, FulfillmentStatus.UNFULFILLED),
    "UNSHIPPED": (OrderStatus.OPEN, FinancialStatus.PAID, FulfillmentStatus.UNFULFILLED),
    "PARTIALLY_SHIPPED": (OrderStatus.OPEN, FinancialStatus.PAID, FulfillmentStatus.PARTIAL),
    "SHIPPED": (OrderStatus.COMPLETED, FinancialStatus.PAID, FulfillmentStatus.FULFILLED),
    "CANCELLED": (OrderStatus.CANCELLED, FinancialStatus.VOIDED, FulfillmentStatus.UNFULFILLED),
    "UNFULFILLABLE": (OrderStatus.UNKNOWN, FinancialStatus.UNKNOWN, FulfillmentStatus.UNFULFILLED),
}
UNKNOWN_STATUS = (OrderStatus.UNKNOWN, FinancialStatus.UNKNOWN, FulfillmentStatus.UNKNOWN)


# --- Orders ---------------------------------------------------------------------------------------


def map_order(payload: dict[str, Any]) -> OrderRecord:
    hub = payload.get(HUB) or {}
    marketplace = MARKETPLACES.get((payload.get("salesChannel") or {}).get("marketplaceId") or "")
    items = payload.get("orderItems") or []
    lines = [map_line(item) for item in items]
    proceeds = payload.get("proceeds") or {}
    grand_total = proceeds.get("grandTotal") or {}
    parts = breakdown(proceeds.get("breakdowns"))
    currency = grand_total.get("currencyCode") or item_currency(items) or (marketplace.currency if marketplace else "")
    if not currency:
        raise ValueError("the order has no currency and no known marketplace")
    priced = sum((line.unit_price * line.quantity for line in lines), ZERO)
    status, financial, fulfillment = STATUSES.get(
        str((payload.get("fulfillment") or {}).get("fulfillmentStatus") or ""), UNKNOWN_STATUS
    )
    buyer = payload.get("buyer") or {}
    address = (payload.get("recipient") or {}).get("deliveryAddress") or {}
    updated_at = required_time(payload, "lastUpdatedTime")
    events = hub.get("refunds") or []
    refunds = [refund for event in events if (refund := map_refund(payload["orderId"], event))]
    if events:
        # An order sent again for its refunds must be newer than the copy stored (whose version is
        # its lastUpdatedTime), or ingest would keep that copy and drop the refunds with it; and
        # newer again each time the connector sends it with more of them.
        posted = [time_of(event.get("PostedDate")) for event in events]
        updated_at = max([updated_at, *filter(None, posted)]) + timedelta(microseconds=len(events))
    return OrderRecord(
        external_id=str(payload["orderId"]),
        number=str(payload["orderId"]),
        currency=currency,
        placed_at=required_time(payload, "createdTime"),
        updated_at=updated_at,
        status=status,
        financial_status=financial,
        fulfillment_status=fulfillment,
        subtotal=parts.get("ITEM", priced),
        discounts=abs(parts.get("DISCOUNT", ZERO)),
        shipping=parts.get("SHIPPING", ZERO),
        tax=parts.get("TAX", ZERO),
        total=money(grand_total.get("amount")) if grand_total else priced,
        email=buyer.get("buyerEmail") or "",
        customer=order_customer(buyer, address),
        shipping_address=dict(address),
        lines=lines,
        refunds=refunds,
        raw=without_hub(payload),
    )


def map_line(item: dict[str, Any]) -> OrderLineRecord:
    product = item.get("product") or {}
    quantity = int(item.get("quantityOrdered") or 0)
    unit_price = money(((product.get("price") or {}).get("unitPrice") or {}).get("amount"))
    parts = breakdown((item.get("proceeds") or {}).get("breakdowns"))
    total = parts["ITEM"] - abs(parts.get("DISCOUNT", ZERO)) if "ITEM" in parts else unit_price * quantity
    return OrderLineRecord(
        external_id=str(item["orderItemId"]),
        title=product.get("title") or product.get("sellerSku") or product.get("asin") or "",
        quantity=quantity,
        unit_price=unit_price,
        total=total,
        sku=product.get("sellerSku") or "",
        variant_external_id=product.get("sellerSku") or "",
        raw=item,
    )


def order_customer(buyer: dict[str, Any], address: dict[str, Any]) -> CustomerRecord | None:
    """The buyer, known by the anonymised address Amazon relays mail through (FBM orders only)."""
    email = buyer.get("buyerEmail") or ""
    if not email:
        return None
    first, _, last = (buyer.get("buyerName") or "").partition(" ")
    return CustomerRecord(
        external_id=f"buyer:{email.lower()}",
        email=email,
        first_name=first,
        last_name=last,
        country=address.get("countryCode") or "",
    )


def breakdown(parts: Any) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = {}
    for part in parts or []:
        kind = part.get("type")
        if kind:
            totals[kind] = totals.get(kind, ZERO) + money((part.get("subtotal") or {}).get("amount"))
    return totals


def item_currency(items: list[dict[str, Any]]) -> str:
    for item in items:
        price = (((item.get("product") or {}).get("price") or {}).get("unitPrice")) or {}
        if price.get("currencyCode"):
            return price["currencyCode"]
    return ""


# --- Refunds --------------------------------------------------------------------------------------


def map_refund(order_id: str, event: dict[str, Any]) -> RefundRecord | None:
    """A refund ShipmentEvent; None for one that moved no money back to the buyer."""
    posted = time_of(event.get("PostedDate"))
    if posted is None:
        raise ValueError("a refund event without a PostedDate")
    amounts: list[dict[str, Any]] = [c.get("ChargeAmount") or {} for c in event.get("OrderChargeAdjustmentList") or []]
    for item in event.get("ShipmentItemAdjustmentList") or []:
        amounts += [charge.get("ChargeAmount") or {} for charge in item.get("ItemChargeAdjustmentList") or []]
        amounts += [promotion.get("PromotionAmount") or {} for promotion in item.get("PromotionAdjustmentList") or []]
    # In a refund event the charges given back are negative and the promotions taken back positive.
    amount = -sum((money(a.get("CurrencyAmount")) for a in amounts), ZERO)
    currency = next((a["CurrencyCode"] for a in amounts if a.get("CurrencyCode")), "")
    if not amount or not currency:
        return None
    return RefundRecord(
        external_id=refund_id(order_id, event),
        amount=amount,
        currency=currency,
        refunded_at=posted,
        reason="Amazon refund",
        raw=event,
    )


def refund_id(order_id: str, event: dict[str, Any]) -> str:
    posted = time_of(event.get("PostedDate"))
    return f"{order_id}/refund/{posted.strftime('%Y%m%dT%H%M%S') if posted else 'undated'}"


def refunded_order_ids(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    by_order: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        if event.get("AmazonOrderId"):
            by_order.setdefault(event["AmazonOrderId"], []).append(event)
    return by_order


# --- Inventory and products ----------------------------------------------------------------------


def map_inventory(payload: dict[str, Any]) -> InventoryRecord:
    sku = payload["sellerSku"]
    marketplace = MARKETPLACES[(payload.get(HUB) or {})["marketplace"]]
    details = payload.get("inventoryDetails") or {}
    available = details.get("fulfillableQuantity")
    return InventoryRecord(
        external_id=f"{sku}@{marketplace.id}",
        variant_external_id=sku,
        available=int(available if available is not None else payload.get("totalQuantity") or 0),
        location_id=marketplace.id,
        location_name=f"FBA {marketplace.name}",
        updated_at=time_of(payload.get("lastUpdatedTime")),
        raw=without_hub(payload),
    )


def map_product(payload: dict[str, Any]) -> ProductRecord:
    """A product per ASIN, with a variant per seller SKU of it (`_hub.skus`: the summaries of the
    ASIN's SKUs on one page; the payload's own SKU without it). Summaries carry no price.

    The product itself is undated, so it is always written: a product seen again on a later
    page with another SKU must not be skipped as older, with its new variant."""
    hub = payload.get(HUB) or {}
    marketplace = MARKETPLACES.get(hub.get("marketplace") or "")
    currency = marketplace.currency if marketplace else ""
    variants = [map_variant(summary, currency) for summary in hub.get("skus") or [payload]]
    return ProductRecord(
        external_id=payload.get("asin") or payload["sellerSku"],
        title=payload.get("productName") or payload["sellerSku"],
        vendor="Amazon FBA",
        status="active",
        variants=variants,
        raw={"asin": payload.get("asin"), "productName": payload.get("productName")},
    )


def map_variant(summary: dict[str, Any], currency: str) -> VariantRecord:
    sku = summary["sellerSku"]
    title = summary.get("productName") or sku
    return VariantRecord(
        external_id=sku,
        sku=sku,
        title=f"{title} ({summary['condition']})" if summary.get("condition") else title,
        currency=currency,
        updated_at=time_of(summary.get("lastUpdatedTime")),
        raw=without_hub(summary),
    )


def product_payloads(summaries: list[Any], marketplace: str) -> list[Any]:
    """A page's summaries as one payload per ASIN, carrying the summaries of its SKUs."""
    by_asin: dict[str, list[dict[str, Any]]] = {}
    payloads: list[Any] = []
    for summary in summaries:
        if isinstance(summary, dict) and (summary.get("asin") or summary.get("sellerSku")):
            by_asin.setdefault(summary.get("asin") or summary["sellerSku"], []).append(summary)
        else:
            payloads.append(summary)  # unreadable: quarantined as it is
    for skus in by_asin.values():
        payloads.append({**skus[0], HUB: {"marketplace": marketplace, "skus": skus}})
    return payloads


# --- Values ---------------------------------------------------------------------------------------


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def without_hub(payload: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in payload.items() if key != HUB}
