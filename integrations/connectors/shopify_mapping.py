"""Shopify GraphQL nodes → normalised records, one explicit function per stream.

The fields read here are the ones `shopify_queries` selects. Amounts are read from `shopMoney`
(the shop's currency), so every order of a connection adds up in one currency; the customer's
`presentmentMoney` stays in `raw`. Datetimes become UTC; statuses become commerce's vocabularies.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
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

# --- Reading values --------------------------------------------------------------------------------


def nodes(connection: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not connection:
        return []
    if "nodes" in connection:
        return list(connection["nodes"] or [])
    return [edge["node"] for edge in connection.get("edges") or []]


def parse_datetime(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no timezone.")
    return parsed.astimezone(UTC)


def latest_update(current: str | None, nodes: list[Any]) -> str | None:
    """The latest `updatedAt` of `current` and the nodes, as ISO UTC; unreadable ones are skipped
    (their records are quarantined anyway)."""
    best = parse_datetime(current) if current else None
    for node in nodes:
        try:
            seen = parse_datetime(node.get("updatedAt"))
        except (AttributeError, TypeError, ValueError):
            continue
        if seen and (best is None or seen > best):
            best = seen
    return best.isoformat().replace("+00:00", "Z") if best else None


def required_datetime(value: str | None, name: str) -> datetime:
    parsed = parse_datetime(value)
    if parsed is None:
        raise ValueError(f"{name} is missing.")
    return parsed


def money(bag: dict[str, Any] | None) -> tuple[Decimal, str]:
    """A MoneyBag's shop amount and currency; (0, "") for a missing bag."""
    shop = (bag or {}).get("shopMoney") or {}
    if not shop:
        return Decimal("0"), ""
    try:
        value = Decimal(str(shop["amount"]))
    except (InvalidOperation, KeyError) as exc:
        raise ValueError(f"{shop.get('amount')!r} is not an amount.") from exc
    if not value.is_finite():
        raise ValueError(f"{shop['amount']!r} is not an amount.")
    return value, shop.get("currencyCode") or ""


def amount(bag: dict[str, Any] | None) -> Decimal:
    return money(bag)[0]


def address(value: dict[str, Any] | None) -> dict[str, Any]:
    if not value:
        return {}
    return {
        "first_name": value.get("firstName") or "",
        "last_name": value.get("lastName") or "",
        "company": value.get("company") or "",
        "address1": value.get("address1") or "",
        "address2": value.get("address2") or "",
        "city": value.get("city") or "",
        "province": value.get("provinceCode") or value.get("province") or "",
        "zip": value.get("zip") or "",
        "country": value.get("countryCodeV2") or "",
        "phone": value.get("phone") or "",
    }


# --- Statuses --------------------------------------------------------------------------------------

FINANCIAL = {
    "PENDING": FinancialStatus.PENDING,
    "AUTHORIZED": FinancialStatus.PENDING,
    "PARTIALLY_PAID": FinancialStatus.PENDING,
    "PAID": FinancialStatus.PAID,
    "PARTIALLY_REFUNDED": FinancialStatus.PARTIALLY_REFUNDED,
    "REFUNDED": FinancialStatus.REFUNDED,
    "VOIDED": FinancialStatus.VOIDED,
    "EXPIRED": FinancialStatus.VOIDED,
}
FULFILLMENT = {
    "FULFILLED": FulfillmentStatus.FULFILLED,
    "PARTIALLY_FULFILLED": FulfillmentStatus.PARTIAL,
    "IN_PROGRESS": FulfillmentStatus.PARTIAL,
    "UNFULFILLED": FulfillmentStatus.UNFULFILLED,
    "OPEN": FulfillmentStatus.UNFULFILLED,
    "PENDING_FULFILLMENT": FulfillmentStatus.UNFULFILLED,
    "SCHEDULED": FulfillmentStatus.UNFULFILLED,
    "ON_HOLD": FulfillmentStatus.UNFULFILLED,
    "REQUEST_DECLINED": FulfillmentStatus.UNFULFILLED,
    "RESTOCKED": FulfillmentStatus.UNFULFILLED,
}


def order_status(node: dict[str, Any]) -> str:
    if node.get("cancelledAt"):
        return OrderStatus.CANCELLED
    if node.get("closedAt"):
        return OrderStatus.COMPLETED
    return OrderStatus.OPEN


# --- One function per stream -----------------------------------------------------------------------


def customer(node: dict[str, Any]) -> CustomerRecord:
    email = node.get("defaultEmailAddress") or {}
    return CustomerRecord(
        external_id=node["id"],
        email=email.get("emailAddress") or node.get("email") or "",
        first_name=node.get("firstName") or "",
        last_name=node.get("lastName") or "",
        phone=(node.get("defaultPhoneNumber") or {}).get("phoneNumber") or node.get("phone") or "",
        country=(node.get("defaultAddress") or {}).get("countryCodeV2") or "",
        accepts_marketing=email.get("marketingState") == "SUBSCRIBED",
        tags=list(node.get("tags") or []),
        created_at=parse_datetime(node.get("createdAt")),
        updated_at=parse_datetime(node.get("updatedAt")),
        raw=node,
    )


def order_line(node: dict[str, Any]) -> OrderLineRecord:
    unit_price = amount(node.get("originalUnitPriceSet"))
    quantity = int(node["quantity"])
    total_bag = node.get("discountedTotalSet")
    return OrderLineRecord(
        external_id=node["id"],
        title=node.get("title") or "",
        quantity=quantity,
        unit_price=unit_price,
        total=amount(total_bag) if total_bag else unit_price * quantity,
        sku=node.get("sku") or "",
        variant_external_id=(node.get("variant") or {}).get("id") or "",
        raw=node,
    )


def refund(node: dict[str, Any], order_currency: str) -> RefundRecord:
    value, currency = money(node.get("totalRefundedSet"))
    return RefundRecord(
        external_id=node["id"],
        amount=value,
        currency=currency or order_currency,
        refunded_at=required_datetime(node.get("createdAt"), "Refund createdAt"),
        reason=node.get("note") or "",
        raw=node,
    )


def order(node: dict[str, Any]) -> OrderRecord:
    total, currency = money(node.get("totalPriceSet"))
    currency = currency or node.get("currencyCode") or ""
    if not currency:
        raise ValueError("The order has no currency.")
    return OrderRecord(
        external_id=node["id"],
        number=(node.get("name") or "").lstrip("#"),
        currency=currency,
        placed_at=required_datetime(node.get("processedAt") or node.get("createdAt"), "Order createdAt"),
        updated_at=parse_datetime(node.get("updatedAt")),
        status=order_status(node),
        financial_status=FINANCIAL.get(node.get("displayFinancialStatus"), FinancialStatus.UNKNOWN),
        fulfillment_status=FULFILLMENT.get(node.get("displayFulfillmentStatus"), FulfillmentStatus.UNKNOWN),
        subtotal=amount(node.get("subtotalPriceSet")),
        discounts=amount(node.get("totalDiscountsSet")),
        shipping=amount(node.get("totalShippingPriceSet")),
        tax=amount(node.get("totalTaxSet")),
        total=total,
        email=node.get("email") or "",
        customer=customer(node["customer"]) if node.get("customer") else None,
        billing_address=address(node.get("billingAddress")),
        shipping_address=address(node.get("shippingAddress")),
        lines=[order_line(line) for line in nodes(node.get("lineItems"))],
        refunds=[refund(r, currency) for r in node.get("refunds") or []],
        raw=node,
    )


def available(level: dict[str, Any]) -> int:
    for quantity in level.get("quantities") or []:
        if quantity.get("name") == "available":
            return int(quantity["quantity"])
    if level.get("available") is not None:  # API versions before 2023-01
        return int(level["available"])
    raise ValueError("The inventory level has no available quantity.")


def inventory(item_id: str, variant_id: str, level: dict[str, Any], raw: dict[str, Any]) -> InventoryRecord:
    location = level.get("location") or {}
    if not item_id or not location.get("id"):
        raise ValueError("The inventory level has no item or location id.")
    return InventoryRecord(
        external_id=f"{item_id}@{location['id']}",
        variant_external_id=variant_id,
        available=available(level),
        location_id=location["id"],
        location_name=location.get("name") or "",
        updated_at=parse_datetime(level.get("updatedAt")),
        raw=raw,
    )


def variant(node: dict[str, Any], currency: str) -> VariantRecord:
    item = node.get("inventoryItem") or {}
    try:
        price = Decimal(str(node.get("price") or "0"))
    except InvalidOperation as exc:
        raise ValueError(f"{node.get('price')!r} is not a price.") from exc
    return VariantRecord(
        external_id=node["id"],
        sku=node.get("sku") or "",
        title=node.get("title") or "",
        price=price,
        currency=currency,
        updated_at=parse_datetime(node.get("updatedAt")),
        inventory=[
            inventory(item.get("id", ""), node["id"], level, level) for level in nodes(item.get("inventoryLevels"))
        ],
        raw=node,
    )


def product(node: dict[str, Any], currency: str = "") -> ProductRecord:
    """Variant prices are in the shop's currency, which the product node does not carry."""
    return ProductRecord(
        external_id=node["id"],
        title=node["title"],
        vendor=node.get("vendor") or "",
        product_type=node.get("productType") or "",
        status=(node.get("status") or "").lower(),
        updated_at=parse_datetime(node.get("updatedAt")),
        variants=[variant(v, currency) for v in nodes(node.get("variants"))],
        raw=node,
    )


def inventory_item(node: dict[str, Any]) -> InventoryRecord:
    """An InventoryItem node carrying exactly one inventory level (the connector splits items so)."""
    levels = nodes(node.get("inventoryLevels"))
    if len(levels) != 1:
        raise ValueError(f"Expected one inventory level, got {len(levels)}.")
    variant_id = (node.get("variant") or {}).get("id")
    if not variant_id:
        raise ValueError("The inventory item has no variant.")
    record = inventory(node["id"], variant_id, levels[0], node)
    record.updated_at = record.updated_at or parse_datetime(node.get("updatedAt"))
    return record


def split_inventory_item(node: dict[str, Any]) -> list[dict[str, Any]]:
    """One payload per (item, location), so a bad level is quarantined alone."""
    return [{**node, "inventoryLevels": {"nodes": [level]}} for level in nodes(node.get("inventoryLevels"))]


def inventory_id(payload: dict[str, Any]) -> str:
    levels = nodes(payload.get("inventoryLevels"))
    location = (levels[0].get("location") or {}).get("id") if levels else ""
    return f"{payload.get('id')}@{location}" if location else str(payload.get("id") or "")
