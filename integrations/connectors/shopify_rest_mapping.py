"""Shopify's REST-shaped payloads (what its webhooks deliver) → the records `shopify_mapping` makes
from the GraphQL nodes of the same objects: same external ids (the GraphQL gids, which every REST
object carries as `admin_graphql_api_id`), same statuses, money in the shop's currency, UTC times.

Where the two APIs disagree, the GraphQL reading wins, so a webhook and a sync of one order end in
one row with one set of values:
- A line's total is GraphQL's `discountedTotalSet` as the sync selects it: the original price less
  the line-level discounts, without order-level or discount-code allocations.
- A refund's amount is the sum of its successful refund transactions. REST gives those only in
  the customer's (presentment) currency, so when that is not the shop's currency the payload
  cannot give the shop amount: `ShopMoneyMissing` says so, and the caller reads the order through
  GraphQL instead.
- Products carry no currency: the caller passes the shop's. A product payload has no stock per
  location either, so its variants carry no inventory levels (those come from
  inventory_levels/update and the sync).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from commerce.models import FinancialStatus, FulfillmentStatus
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
from .shopify_mapping import FINANCIAL, FULFILLMENT, parse_datetime, required_datetime
from .shopify_mapping import order_status as graphql_order_status

# REST's order fulfillment_status → GraphQL's displayFulfillmentStatus (null: nothing shipped yet).
REST_FULFILLMENT = {
    None: "UNFULFILLED",
    "fulfilled": "FULFILLED",
    "partial": "PARTIALLY_FULFILLED",
    "restocked": "RESTOCKED",
}


class ShopMoneyMissing(ValueError):
    """The payload gives an amount only in the customer's currency, not the shop's."""


# --- Reading values --------------------------------------------------------------------------------


def gid(kind: str, value: Any) -> str:
    """A REST id as the GraphQL gid the sync stores: gid("Order", 450789469)."""
    if isinstance(value, bool) or not str(value or "").isdigit():
        raise ValueError(f"{value!r} is not a Shopify {kind} id.")
    return f"gid://shopify/{kind}/{int(value)}"


def gid_of(payload: dict[str, Any], kind: str) -> str:
    given = payload.get("admin_graphql_api_id")
    if given:
        if not str(given).startswith(f"gid://shopify/{kind}/"):
            raise ValueError(f"{given!r} is not a {kind} gid.")
        return str(given)
    return gid(kind, payload.get("id"))


decimal = values.amount


def money(bag: dict[str, Any] | None, plain: Any = None) -> tuple[Decimal, str]:
    """A REST money set's shop amount and currency; without the set, the plain field (REST's plain
    amounts are in the shop's currency too) and no currency."""
    shop = (bag or {}).get("shop_money") or {}
    if shop:
        return decimal(shop.get("amount")), shop.get("currency_code") or ""
    return decimal(plain), ""


def address(value: dict[str, Any] | None) -> dict[str, Any]:
    if not value:
        return {}
    return {
        "first_name": value.get("first_name") or "",
        "last_name": value.get("last_name") or "",
        "company": value.get("company") or "",
        "address1": value.get("address1") or "",
        "address2": value.get("address2") or "",
        "city": value.get("city") or "",
        "province": value.get("province_code") or value.get("province") or "",
        "zip": value.get("zip") or "",
        "country": value.get("country_code") or "",
        "phone": value.get("phone") or "",
    }


def order_status(payload: dict[str, Any]) -> str:
    return graphql_order_status({"cancelledAt": payload.get("cancelled_at"), "closedAt": payload.get("closed_at")})


# --- One function per object -----------------------------------------------------------------------


def customer(payload: dict[str, Any]) -> CustomerRecord:
    consent = payload.get("email_marketing_consent") or {}
    # `accepts_marketing` is what API versions before 2022-04 sent instead of the consent.
    subscribed = consent.get("state") == "subscribed" if consent else bool(payload.get("accepts_marketing"))
    tags = payload.get("tags") or ""
    return CustomerRecord(
        external_id=gid_of(payload, "Customer"),
        email=payload.get("email") or "",
        first_name=payload.get("first_name") or "",
        last_name=payload.get("last_name") or "",
        phone=payload.get("phone") or "",
        country=(payload.get("default_address") or {}).get("country_code") or "",
        accepts_marketing=subscribed,
        tags=[tag.strip() for tag in tags.split(",") if tag.strip()] if isinstance(tags, str) else list(tags),
        created_at=parse_datetime(payload.get("created_at")),
        updated_at=parse_datetime(payload.get("updated_at")),
        raw=payload,
    )


def order_line(item: dict[str, Any], applications: list[dict[str, Any]]) -> OrderLineRecord:
    unit_price, _ = money(item.get("price_set"), item.get("price"))
    quantity = int(item["quantity"])
    discounts = Decimal("0")
    for allocation in item.get("discount_allocations") or []:
        index = allocation.get("discount_application_index")
        application = applications[index] if isinstance(index, int) and 0 <= index < len(applications) else {}
        if application.get("target_selection") == "all" or application.get("type") == "discount_code":
            continue  # order-level and code discounts: outside discountedTotalSet
        discounts += money(allocation.get("amount_set"), allocation.get("amount"))[0]
    variant_id = item.get("variant_id")
    return OrderLineRecord(
        external_id=gid_of(item, "LineItem"),
        title=item.get("title") or "",
        quantity=quantity,
        unit_price=unit_price,
        total=unit_price * quantity - discounts,
        sku=item.get("sku") or "",
        variant_external_id=gid("ProductVariant", variant_id) if variant_id else "",
        raw=item,
    )


def refund(payload: dict[str, Any], shop_currency: str) -> RefundRecord:
    value = Decimal("0")
    for transaction in payload.get("transactions") or []:
        if transaction.get("kind") != "refund" or transaction.get("status", "success") != "success":
            continue
        if (transaction.get("currency") or shop_currency) != shop_currency:
            raise ShopMoneyMissing(f"Refund {payload.get('id')} is in {transaction.get('currency')} only.")
        value += decimal(transaction.get("amount"))
    return RefundRecord(
        external_id=gid_of(payload, "Refund"),
        amount=value,
        currency=shop_currency,
        refunded_at=required_datetime(payload.get("created_at"), "Refund created_at"),
        reason=payload.get("note") or "",
        raw=payload,
    )


def order(payload: dict[str, Any]) -> OrderRecord:
    total, currency = money(payload.get("total_price_set"), payload.get("total_price"))
    currency = currency or payload.get("currency") or ""
    if not currency:
        raise ValueError("The order has no currency.")
    applications = payload.get("discount_applications") or []
    fulfillment = REST_FULFILLMENT.get(payload.get("fulfillment_status"), "")
    return OrderRecord(
        external_id=gid_of(payload, "Order"),
        number=(payload.get("name") or "").lstrip("#"),
        currency=currency,
        placed_at=required_datetime(payload.get("processed_at") or payload.get("created_at"), "Order created_at"),
        updated_at=parse_datetime(payload.get("updated_at")),
        status=order_status(payload),
        financial_status=FINANCIAL.get(str(payload.get("financial_status") or "").upper(), FinancialStatus.UNKNOWN),
        fulfillment_status=FULFILLMENT.get(fulfillment, FulfillmentStatus.UNKNOWN),
        subtotal=money(payload.get("subtotal_price_set"), payload.get("subtotal_price"))[0],
        discounts=money(payload.get("total_discounts_set"), payload.get("total_discounts"))[0],
        shipping=money(payload.get("total_shipping_price_set"))[0],
        tax=money(payload.get("total_tax_set"), payload.get("total_tax"))[0],
        total=total,
        email=payload.get("email") or "",
        customer=customer(payload["customer"]) if payload.get("customer") else None,
        billing_address=address(payload.get("billing_address")),
        shipping_address=address(payload.get("shipping_address")),
        lines=[order_line(item, applications) for item in payload.get("line_items") or []],
        refunds=[refund(r, currency) for r in payload.get("refunds") or []],
        raw=payload,
    )


def variant(payload: dict[str, Any], currency: str) -> VariantRecord:
    return VariantRecord(
        external_id=gid_of(payload, "ProductVariant"),
        sku=payload.get("sku") or "",
        title=payload.get("title") or "",
        price=decimal(payload.get("price")),
        currency=currency,
        updated_at=parse_datetime(payload.get("updated_at")),
        raw=payload,
    )


def product(payload: dict[str, Any], currency: str) -> ProductRecord:
    if not isinstance(payload.get("title"), str):
        raise ValueError("The product has no title.")
    return ProductRecord(
        external_id=gid_of(payload, "Product"),
        title=payload["title"],
        vendor=payload.get("vendor") or "",
        product_type=payload.get("product_type") or "",
        status=(payload.get("status") or "").lower(),
        updated_at=parse_datetime(payload.get("updated_at")),
        variants=[variant(v, currency) for v in payload.get("variants") or []],
        raw=payload,
    )


def inventory_ids(payload: dict[str, Any]) -> tuple[str, str]:
    """An inventory_levels/update payload's item and location gids."""
    return gid("InventoryItem", payload.get("inventory_item_id")), gid("Location", payload.get("location_id"))


def inventory_level(payload: dict[str, Any], variant_id: str, location_name: str = "") -> InventoryRecord:
    """An inventory_levels/update payload, for the variant the caller found for its item (the
    payload does not name it). Keyed as the sync keys a level: "<item gid>@<location gid>"."""
    item_id, location_id = inventory_ids(payload)
    if payload.get("available") is None:
        raise ValueError("The inventory level has no available quantity.")
    return InventoryRecord(
        external_id=f"{item_id}@{location_id}",
        variant_external_id=variant_id,
        available=int(payload["available"]),
        location_id=location_id,
        location_name=location_name,
        updated_at=parse_datetime(payload.get("updated_at")),
        raw=payload,
    )
