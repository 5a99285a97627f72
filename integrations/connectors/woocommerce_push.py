"""Changes the hub sends back to WooCommerce: fulfilments and stock levels, through the REST API.

WooCommerce has no fulfilment object. A shipment is recorded the way the WooCommerce Shipment
Tracking extension stores it (the order's `_wc_shipment_tracking_items` meta, which that extension
shows to the customer and in emails), the order is completed when everything shipped, and a note
with the carrier, the tracking number and link (and for a partial shipment, what was in it) is
added, visible to the customer when they are to be told.

The order is read first: a tracking number it already carries means an earlier attempt landed, so
nothing is written twice. The PUT is idempotent and may be retried; the note is sent once.
"""

from __future__ import annotations

import hashlib
import time
from typing import TYPE_CHECKING, Any

from ..errors import BadResponse, NotFound

if TYPE_CHECKING:
    from commerce.pushes import FulfilmentPush, StockPush

    from .woocommerce import WooCommerceConnector

TRACKING_META = "_wc_shipment_tracking_items"
# The Shipment Tracking extension's names for the hub's carriers (its provider list).
CARRIER_NAMES = {
    "ups": "UPS",
    "usps": "USPS",
    "fedex": "Fedex",
    "dhl": "DHL US",
    "dhl_ecommerce": "DHL eCommerce",
    "royal_mail": "Royal Mail",
    "parcelforce": "Parcelforce",
    "canada_post": "Canada Post",
    "australia_post": "Australia Post",
    "dpd": "DPD",
    "gls": "GLS",
    "evri": "Evri",
    "ontrac": "OnTrac",
    "amazon_logistics": "Amazon Logistics",
    "japan_post": "Japan Post",
    "yamato": "Yamato",
}
# Orders WooCommerce will not ship.
CLOSED = {"cancelled", "refunded", "failed", "trash", "checkout-draft"}


def fulfil(connector: WooCommerceConnector, push: FulfilmentPush) -> str:
    order_id = push.order_external_id
    order, _ = connector.get(f"orders/{order_id}")
    if not isinstance(order, dict) or "id" not in order:
        raise BadResponse(f"WooCommerce answered something other than order {order_id}.")
    shipped_id = f"{order_id}:{push.tracking_number}"
    tracking = _tracking_items(order)
    if any(item.get("tracking_number") == push.tracking_number for item in tracking):
        return shipped_id  # an earlier attempt landed
    if order.get("status") in CLOSED:
        raise BadResponse(f"WooCommerce order {order_id} is {order['status']}: it cannot be shipped.")

    names = {
        str(line.get("id")): line.get("name") or line.get("sku") or str(line.get("id"))
        for line in order.get("line_items") or []
    }
    unknown = [line for line, _ in push.lines if line not in names]
    if unknown:
        raise NotFound(f"WooCommerce order {order_id} has no line {', '.join(unknown)}.")
    provider = connector.platform_carrier(push.carrier)
    tracking.append(
        {
            "tracking_provider": provider,
            "custom_tracking_provider": "",
            "custom_tracking_link": "",
            "tracking_number": push.tracking_number,
            "date_shipped": str(int(time.time())),
            "tracking_id": hashlib.md5(f"{push.tracking_number}{provider}".encode(), usedforsecurity=False).hexdigest(),
        }
    )
    update: dict[str, Any] = {"meta_data": [{"key": TRACKING_META, "value": tracking}]}
    if not push.lines or _covers_every_line(order, push.lines):
        update["status"] = "completed"
    connector.write("PUT", f"orders/{order_id}", update)

    note = f"Shipped with {provider}, tracking number {push.tracking_number}"
    note += f": {push.tracking_url}" if push.tracking_url else "."
    if push.lines:
        items = ", ".join(f"{qty} × {names[line]}" for line, qty in push.lines)  # noqa: RUF001 (the sign, not x)
        note += f" Items: {items}."
    connector.write(
        "POST", f"orders/{order_id}/notes", {"note": note, "customer_note": push.notify_customer}, retry=False
    )
    return shipped_id


def _tracking_items(order: dict[str, Any]) -> list[dict[str, Any]]:
    for meta in order.get("meta_data") or []:
        if meta.get("key") == TRACKING_META and isinstance(meta.get("value"), list):
            return [item for item in meta["value"] if isinstance(item, dict)]
    return []


def _covers_every_line(order: dict[str, Any], lines: tuple[tuple[str, int], ...]) -> bool:
    shipped = dict(lines)
    return all(
        shipped.get(str(line.get("id")), 0) >= int(line.get("quantity") or 0) for line in order.get("line_items") or []
    )


def set_stock(connector: WooCommerceConnector, push: StockPush) -> str:
    product_id, variation_id = push.product_external_id, push.variant_external_id
    if not product_id:
        found, _ = connector.get("products", {"sku": push.sku})
        matches = (
            [p for p in found if isinstance(p, dict) and p.get("sku") == push.sku] if isinstance(found, list) else []
        )
        if not matches:
            raise NotFound(
                f"WooCommerce has no product with the SKU “{push.sku}”.",
                hint="A variation is found through the synced catalogue: sync products first.",
            )
        product_id, variation_id = str(matches[0]["id"]), ""
    data = {"manage_stock": True, "stock_quantity": push.quantity}
    if variation_id and variation_id != product_id:
        connector.write("PUT", f"products/{product_id}/variations/{variation_id}", data)
        return variation_id
    connector.write("PUT", f"products/{product_id}", data)
    return product_id
