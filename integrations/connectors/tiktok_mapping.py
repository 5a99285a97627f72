"""TikTok Shop payloads (Open API 202309) → `commerce.records`, one function per kind of record.

- Orders (`Get Order List`): the order id is its number; amounts are TikTok's decimal strings. The
  subtotal is the products' original price, the discounts are the seller's and TikTok's on them
  (what the buyer did not pay; TikTok reimburses its own share to the seller in settlements, which
  the hub does not read), shipping is what the buyer paid for it, the total `total_amount`. A line
  is one of TikTok's line items, at its original price, totalling its sale price; its variant is
  the SKU id, as in the products stream. The buyer is known by TikTok's user id.
- Products (`Search Products`): a variant per SKU with its price, and a stock level per SKU and
  warehouse. Stock carries no time of its own, so a level is written whenever it is read.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from commerce.models import FinancialStatus, FulfillmentStatus, OrderStatus
from commerce.records import (
    CustomerRecord,
    InventoryRecord,
    OrderLineRecord,
    OrderRecord,
    ProductRecord,
    VariantRecord,
)

from .values import amount as money
from .values import required_time, unix_time

ZERO = Decimal("0")

# TikTok's order status → (order status, financial status, fulfilment status). An order is paid
# once it leaves UNPAID; ON_HOLD is the buyer's short window to cancel a paid order. A package
# awaiting collection has been packed and labelled by the seller, which is when other platforms
# call an order fulfilled.
STATUSES: dict[str, tuple[str, str, str]] = {
    "UNPAID": (OrderStatus.OPEN, FinancialStatus.PENDING, FulfillmentStatus.UNFULFILLED),
    "ON_HOLD": (OrderStatus.OPEN, FinancialStatus.PAID, FulfillmentStatus.UNFULFILLED),
    "AWAITING_SHIPMENT": (OrderStatus.OPEN, FinancialStatus.PAID, FulfillmentStatus.UNFULFILLED),
    "PARTIALLY_SHIPPING": (OrderStatus.OPEN, FinancialStatus.PAID, FulfillmentStatus.PARTIAL),
    "AWAITING_COLLECTION": (OrderStatus.OPEN, FinancialStatus.PAID, FulfillmentStatus.FULFILLED),
    "IN_TRANSIT": (OrderStatus.OPEN, FinancialStatus.PAID, FulfillmentStatus.FULFILLED),
    "DELIVERED": (OrderStatus.COMPLETED, FinancialStatus.PAID, FulfillmentStatus.FULFILLED),
    "COMPLETED": (OrderStatus.COMPLETED, FinancialStatus.PAID, FulfillmentStatus.FULFILLED),
    "CANCELLED": (OrderStatus.CANCELLED, FinancialStatus.VOIDED, FulfillmentStatus.UNFULFILLED),
}
UNKNOWN_STATUS = (OrderStatus.UNKNOWN, FinancialStatus.UNKNOWN, FulfillmentStatus.UNKNOWN)

PRODUCT_STATUSES = {
    "ACTIVATE": "active",
    "DRAFT": "draft",
    "PENDING": "draft",
    "FAILED": "draft",
    "SELLER_DEACTIVATED": "archived",
    "PLATFORM_DEACTIVATED": "archived",
    "FREEZE": "archived",
    "DELETED": "archived",
}


# --- Orders ---------------------------------------------------------------------------------------


def map_order(payload: dict[str, Any]) -> OrderRecord:
    payment = payload.get("payment") or {}
    items = payload.get("line_items") or []
    currency = payment.get("currency") or next((i["currency"] for i in items if i.get("currency")), "")
    if not currency:
        raise ValueError("the order has no currency")
    lines = [map_line(item) for item in items]
    discounts = money(payment.get("seller_discount")) + money(payment.get("platform_discount"))
    sub_total = money(payment.get("sub_total"))
    original = payment.get("original_total_product_price")
    subtotal = money(original) if original not in (None, "") else sub_total + discounts
    status, financial, fulfillment = STATUSES.get(str(payload.get("status") or ""), UNKNOWN_STATUS)
    address = payload.get("recipient_address") or {}
    total = payment.get("total_amount")
    return OrderRecord(
        external_id=str(payload["id"]),
        number=str(payload["id"]),
        currency=currency,
        placed_at=required_time(payload, "create_time", unix_time),
        updated_at=unix_time(payload.get("update_time")),
        status=status,
        financial_status=financial,
        fulfillment_status=fulfillment,
        subtotal=subtotal,
        discounts=discounts,
        shipping=money(payment.get("shipping_fee")),
        tax=money(payment.get("tax")),
        total=money(total) if total not in (None, "") else sum((line.total for line in lines), ZERO),
        email=payload.get("buyer_email") or "",
        customer=order_customer(payload, address),
        shipping_address=dict(address),
        lines=lines,
        raw=payload,
    )


def map_line(item: dict[str, Any]) -> OrderLineRecord:
    quantity = int(item.get("quantity") or 1)  # 202309 sends one line item per unit, without a quantity
    unit_price = money(item.get("original_price") or item.get("sale_price"))
    sale_price = item.get("sale_price")
    name = item.get("product_name") or item.get("seller_sku") or ""
    variant = item.get("sku_name") or ""
    return OrderLineRecord(
        external_id=str(item["id"]),
        title=f"{name} ({variant})" if name and variant and variant.lower() != "default" else name,
        quantity=quantity,
        unit_price=unit_price,
        total=money(sale_price) * quantity if sale_price not in (None, "") else unit_price * quantity,
        sku=item.get("seller_sku") or "",
        variant_external_id=str(item.get("sku_id") or ""),
        raw=item,
    )


def order_customer(payload: dict[str, Any], address: dict[str, Any]) -> CustomerRecord | None:
    """The buyer, by TikTok's user id (its e-mail is a relay address, and may be absent)."""
    user_id = str(payload.get("user_id") or "")
    email = payload.get("buyer_email") or ""
    if not user_id and not email:
        return None
    first, last = address.get("first_name") or "", address.get("last_name") or ""
    if not first and not last:
        first, _, last = str(address.get("name") or "").partition(" ")
    return CustomerRecord(
        external_id=f"buyer:{user_id}" if user_id else f"buyer:{email.lower()}",
        email=email,
        first_name=first,
        last_name=last,
        country=address.get("region_code") or "",
    )


# --- Products -------------------------------------------------------------------------------------


def map_product(payload: dict[str, Any]) -> ProductRecord:
    updated_at = unix_time(payload.get("update_time"))
    title = payload.get("title") or ""
    status = str(payload.get("status") or "")
    return ProductRecord(
        external_id=str(payload["id"]),
        title=title or str(payload["id"]),
        status=PRODUCT_STATUSES.get(status, status.lower()),
        updated_at=updated_at,
        variants=[map_variant(sku, title, updated_at) for sku in payload.get("skus") or []],
        raw={key: value for key, value in payload.items() if key != "skus"},
    )


def map_variant(sku: dict[str, Any], product_title: str, updated_at: datetime | None) -> VariantRecord:
    sku_id = str(sku["id"])
    price = sku.get("price") or {}
    amount = price.get("sale_price") or price.get("tax_exclusive_price") or price.get("amount")
    attributes = [str(a.get("value_name")) for a in sku.get("sales_attributes") or [] if a.get("value_name")]
    return VariantRecord(
        external_id=sku_id,
        sku=sku.get("seller_sku") or "",
        title=" / ".join(attributes) or sku.get("seller_sku") or product_title,
        price=money(amount),
        currency=price.get("currency") or "",
        updated_at=updated_at,
        inventory=[map_stock(sku_id, level) for level in sku.get("inventory") or []],
        raw=sku,
    )


def map_stock(sku_id: str, level: dict[str, Any]) -> InventoryRecord:
    warehouse = str(level.get("warehouse_id") or "default")
    return InventoryRecord(
        external_id=f"{sku_id}@{warehouse}",
        variant_external_id=sku_id,
        available=int(level.get("quantity") or 0),
        location_id=warehouse,
        location_name=f"TikTok Shop warehouse {warehouse}",
        raw=level,
    )


# --- Values ---------------------------------------------------------------------------------------
