"""eBay payloads → `commerce.records`, one function per kind of record.

- Orders (Sell Fulfillment API `Order`): the order id is its number; amounts are eBay's `value`
  in the seller's currency (`convertedFrom*` is the buyer's). Totals come from `pricingSummary`:
  the subtotal before discounts, item discounts, shipping net of shipping discounts, tax, total.
  A line's variant is its SKU (listings made without one have none).
- Refunds: `paymentSummary.refunds` once issued (`REFUNDED`); the line items' own refunds only when
  the order lists none, so a refund is never counted twice. Amounts are what the seller gave back.
- Inventory items (Sell Inventory API): a variant per SKU; a product per inventory item group (a
  multi-variation listing) or per SKU outside one; a stock level per SKU, the ship-to-home quantity.
  Items carry no price (prices are on offers) and no time.

A product made from a group carries the items of its group seen on one page under `_hub.skus`, so
a quarantined payload maps again on its own.
"""

from __future__ import annotations

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
from .values import iso_time as time_of
from .values import required_time

HUB = "_hub"
ZERO = Decimal("0")
UNIT_PRICE_PLACES = Decimal("0.0001")  # a unit price keeps four places, as the hub stores money
LOCATION_ID = "ebay"
LOCATION_NAME = "eBay (ship to home)"

FULFILLMENT = {
    "NOT_STARTED": FulfillmentStatus.UNFULFILLED,
    "IN_PROGRESS": FulfillmentStatus.PARTIAL,
    "FULFILLED": FulfillmentStatus.FULFILLED,
}
PAYMENT = {
    "PENDING": FinancialStatus.PENDING,
    "PAID": FinancialStatus.PAID,
    "PARTIALLY_REFUNDED": FinancialStatus.PARTIALLY_REFUNDED,
    "FULLY_REFUNDED": FinancialStatus.REFUNDED,
    "FAILED": FinancialStatus.VOIDED,
}


# --- Orders ---------------------------------------------------------------------------------------


def map_order(payload: dict[str, Any]) -> OrderRecord:
    order_id = str(payload["orderId"])
    pricing = payload.get("pricingSummary") or {}
    total = pricing.get("total") or {}
    currency = str(total.get("currency") or "")
    if len(currency) != 3:
        raise ValueError("the order's total has no currency")
    contact = ship_to(payload)
    address = dict(contact.get("contactAddress") or {})
    if contact.get("fullName"):
        address["name"] = contact["fullName"]
    registration = (payload.get("buyer") or {}).get("buyerRegistrationAddress") or {}
    email = registration.get("email") or contact.get("email") or ""
    return OrderRecord(
        external_id=order_id,
        number=order_id,
        currency=currency,
        placed_at=required_time(payload, "creationDate"),
        updated_at=required_time(payload, "lastModifiedDate"),
        status=order_status(payload),
        financial_status=PAYMENT.get(str(payload.get("orderPaymentStatus") or ""), FinancialStatus.UNKNOWN),
        fulfillment_status=FULFILLMENT.get(str(payload.get("orderFulfillmentStatus") or ""), FulfillmentStatus.UNKNOWN),
        subtotal=money(pricing.get("priceSubtotal")),
        discounts=abs(money(pricing.get("priceDiscount"))),
        shipping=money(pricing.get("deliveryCost")) - abs(money(pricing.get("deliveryDiscount"))),
        tax=money(pricing.get("tax")),
        total=money(total),
        email=email,
        customer=order_customer(payload, email, address),
        shipping_address=address,
        lines=[map_line(item) for item in payload.get("lineItems") or []],
        refunds=map_refunds(order_id, payload, currency),
        raw=payload,
    )


def order_status(payload: dict[str, Any]) -> str:
    # getOrders leaves out checkouts not paid yet, so a failed payment is no sale.
    if (payload.get("cancelStatus") or {}).get("cancelState") == "CANCELED":
        return OrderStatus.CANCELLED
    if payload.get("orderPaymentStatus") == "FAILED":
        return OrderStatus.CANCELLED
    fulfillment = payload.get("orderFulfillmentStatus")
    if fulfillment == "FULFILLED":
        return OrderStatus.COMPLETED
    return OrderStatus.OPEN if fulfillment in FULFILLMENT else OrderStatus.UNKNOWN


def map_line(item: dict[str, Any]) -> OrderLineRecord:
    quantity = int(item.get("quantity") or 0)
    cost = money(item.get("lineItemCost"))
    unit_price = (cost / quantity).quantize(UNIT_PRICE_PLACES) if quantity else cost
    sku = str(item.get("sku") or "")
    return OrderLineRecord(
        external_id=str(item["lineItemId"]),
        title=item.get("title") or sku or str(item.get("legacyItemId") or ""),
        quantity=quantity,
        unit_price=unit_price,
        total=money(item["discountedLineItemCost"]) if item.get("discountedLineItemCost") else cost,
        sku=sku,
        variant_external_id=sku,
        raw=item,
    )


def ship_to(payload: dict[str, Any]) -> dict[str, Any]:
    for instruction in payload.get("fulfillmentStartInstructions") or []:
        contact = ((instruction or {}).get("shippingStep") or {}).get("shipTo")
        if contact:
            return contact
    return {}


def order_customer(payload: dict[str, Any], email: str, address: dict[str, Any]) -> CustomerRecord | None:
    """The buyer, known by their eBay user ID (or the immutable ID eBay sends in its place)."""
    username = str((payload.get("buyer") or {}).get("username") or "")
    if not username:
        return None
    registration = (payload.get("buyer") or {}).get("buyerRegistrationAddress") or {}
    first, _, last = str(registration.get("fullName") or address.get("name") or "").partition(" ")
    return CustomerRecord(
        external_id=f"buyer:{username}",
        email=email,
        first_name=first,
        last_name=last,
        country=address.get("countryCode") or (registration.get("contactAddress") or {}).get("countryCode") or "",
    )


def map_refunds(order_id: str, payload: dict[str, Any], currency: str) -> list[RefundRecord]:
    issued = ((payload.get("paymentSummary") or {}).get("refunds")) or []
    if not issued:
        issued = [refund for item in payload.get("lineItems") or [] for refund in item.get("refunds") or []]
    refunds: dict[str, RefundRecord] = {}
    for refund in issued:
        if refund.get("refundStatus", "REFUNDED") != "REFUNDED":
            continue  # pending or failed: no money moved yet
        refunded_at = time_of(refund.get("refundDate"))
        if refunded_at is None:
            raise ValueError("an issued refund without a refundDate")
        amount = refund.get("amount") or {}
        external_id = refund.get("refundReferenceId") or refund.get("refundId")
        external_id = str(external_id or f"{order_id}/refund/{refunded_at.strftime('%Y%m%dT%H%M%S')}")
        refunds[external_id] = RefundRecord(
            external_id=external_id,
            amount=money(amount),
            currency=str(amount.get("currency") or currency),
            refunded_at=refunded_at,
            reason="eBay refund",
            raw=refund,
        )
    return list(refunds.values())


# --- Inventory items -----------------------------------------------------------------------------


def map_inventory(payload: dict[str, Any]) -> InventoryRecord:
    sku = str(payload["sku"])
    ship_to_home = (payload.get("availability") or {}).get("shipToLocationAvailability") or {}
    return InventoryRecord(
        external_id=sku,
        variant_external_id=sku,
        available=int(ship_to_home.get("quantity") or 0),
        location_id=LOCATION_ID,
        location_name=LOCATION_NAME,
        raw=payload,
    )


def map_product(payload: dict[str, Any]) -> ProductRecord:
    """A product per inventory item group (`_hub.skus`: its items on one page) or per lone SKU.

    Undated, so always written: a group seen again on a later page with other SKUs gets them as
    variants of its own."""
    hub = payload.get(HUB) or {}
    items = hub.get("skus") or [payload]
    group = group_of(payload)
    product = payload.get("product") or {}
    return ProductRecord(
        external_id=f"group:{group}" if group else str(payload["sku"]),
        title=product.get("title") or str(payload.get("sku") or group),
        vendor=product.get("brand") or "",
        status="active",
        variants=[map_variant(item) for item in items],
        raw={"inventoryItemGroupKey": group} if group else without_hub(payload),
    )


def map_variant(item: dict[str, Any]) -> VariantRecord:
    sku = str(item["sku"])
    return VariantRecord(
        external_id=sku,
        sku=sku,
        title=(item.get("product") or {}).get("title") or sku,
        raw=without_hub(item),
    )


def group_of(item: dict[str, Any]) -> str:
    keys = item.get("groupIds") or item.get("inventoryItemGroupKeys") or []
    return str(keys[0]) if keys else ""


def product_payloads(items: list[Any]) -> list[Any]:
    """A page's inventory items as one payload per product: grouped items together."""
    groups: dict[str, list[dict[str, Any]]] = {}
    payloads: list[Any] = []
    for item in items:
        if isinstance(item, dict) and item.get("sku") and group_of(item):
            groups.setdefault(group_of(item), []).append(item)
        else:
            payloads.append(item)  # a lone SKU, or unreadable and quarantined as it is
    payloads += [{**members[0], HUB: {"skus": members}} for members in groups.values()]
    return payloads


# --- Values ---------------------------------------------------------------------------------------


def money(value: Any) -> Decimal:
    """An eBay `Amount` ({"value": "12.34", "currency": "USD"}) as a Decimal; zero when absent."""
    return values.amount(value.get("value") if isinstance(value, dict) else value)


def without_hub(payload: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in payload.items() if key != HUB}
