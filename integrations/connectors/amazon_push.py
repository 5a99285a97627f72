"""Changes the hub sends back to Amazon: shipments of seller-fulfilled orders and seller-fulfilled
stock levels.

- Shipments: Orders API v0 `confirmShipment` (POST /orders/v0/orders/{orderId}/shipmentConfirmation).
  Orders v2026-01-01, which the streams read, has no way to confirm a shipment; v0's operation is
  not deprecated and is the one Amazon documents. The order is read first (getOrder v2026-01-01,
  with its fulfilment and packages): a package already carrying this tracking number means an
  earlier attempt landed (its answer was lost), so nothing is sent twice, and the POST goes
  without the HTTP client's retries. Amazon ships FBA orders itself: those are refused.
- Stock: Listings Items API `patchListingsItem`, replacing the listing's `fulfillment_availability`
  for the seller's own channel (DEFAULT), one marketplace per request as the API wants. The listing
  is read first: FBA stock is what Amazon counts in its warehouses, and a DEFAULT quantity sent to
  an FBA listing would move the offer to seller-fulfilled, so an FBA listing is refused. The
  quantity is absolute, so the PATCH may be retried.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import BadResponse, ConfigurationError, NotFound
from . import amazon_config
from .amazon_mapping import iso

if TYPE_CHECKING:
    from commerce.pushes import FulfilmentPush, StockPush

    from .amazon import AmazonConnector
    from .amazon_config import Marketplace

# Amazon's carrierCode for each hub carrier: values of the CarrierCode list Amazon documents for
# shipment confirmations (the enumeration in its feeds' amzn-base.xsd, which the shipping
# confirmation template in Seller Central help G641 and confirmShipment share). Evri is still
# "Hermes UK" there, and Amazon Shipping is Amazon's name for its own carrier service.
CARRIER_NAMES = {
    "ups": "UPS",
    "usps": "USPS",
    "fedex": "FedEx",
    "dhl": "DHL",
    "dhl_ecommerce": "DHL eCommerce",
    "royal_mail": "Royal Mail",
    "parcelforce": "Parcelforce",
    "canada_post": "Canada Post",
    "australia_post": "Australia Post",
    "dpd": "DPD",
    "gls": "GLS",
    "evri": "Hermes UK",
    "ontrac": "OnTrac",
    "amazon_logistics": "Amazon Shipping",
    "japan_post": "Japan Post",
    "yamato": "YamatoTransport",
}

ORDER_DATA = ["FULFILLMENT", "PACKAGES"]
SHIPPABLE = {"UNSHIPPED", "PARTIALLY_SHIPPED"}
NOT_SHIPPABLE = {
    "PENDING": "is pending: Amazon has not authorised its payment yet",
    "PENDING_AVAILABILITY": "is a pre-order whose item is not released yet",
    "SHIPPED": "is already shipped",
    "CANCELLED": "is cancelled",
    "UNFULFILLABLE": "cannot be fulfilled",
}
SELLER_CHANNEL = "DEFAULT"


# --- Shipments --------------------------------------------------------------------------------------


def fulfil(connector: AmazonConnector, push: FulfilmentPush) -> str:
    order_id = push.order_external_id
    body = connector.api.call("getOrder", {"includedData": ORDER_DATA}, path={"orderId": order_id})
    order = body.get("order") if isinstance(body, dict) else None
    if not isinstance(order, dict):
        raise BadResponse(f"Amazon's answer for order {order_id} has no order.")
    packages = [p for p in order.get("packages") or [] if isinstance(p, dict)]
    for package in packages:
        if package.get("trackingNumber") == push.tracking_number:
            return f"{order_id}:{package.get('packageReferenceId')}"  # an earlier attempt landed

    fulfillment = order.get("fulfillment") or {}
    if fulfillment.get("fulfilledBy") == "AMAZON":
        raise BadResponse(
            f"Amazon order {order_id} is fulfilled by Amazon (FBA): Amazon ships it, not the seller.",
            hint="Only seller-fulfilled (MFN) orders take shipments from the hub.",
        )
    status = fulfillment.get("fulfillmentStatus")
    if status not in SHIPPABLE:
        shipped = ", ".join(str(p["trackingNumber"]) for p in packages if p.get("trackingNumber"))
        reason = NOT_SHIPPABLE.get(status) or (f"has the fulfilment status “{status}”" if status else "has no status")
        raise BadResponse(
            f"Amazon order {order_id} {reason}: it cannot be shipped.",
            hint=f"Amazon has it with tracking number {shipped}." if status == "SHIPPED" and shipped else "",
        )

    carrier = connector.platform_carrier(push.carrier)
    reference = _next_reference(packages)
    connector.api.call(
        "confirmShipment",
        path={"orderId": order_id},
        body={
            "marketplaceId": _marketplace_of(connector, order),
            "packageDetail": {
                "packageReferenceId": reference,
                "carrierCode": carrier,
                "trackingNumber": push.tracking_number,
                "shipDate": iso(amazon_config.now().replace(microsecond=0)),
                "orderItems": _order_items(order, push),
            },
        },
        retry=False,
    )
    return f"{order_id}:{reference}"


def _order_items(order: dict[str, Any], push: FulfilmentPush) -> list[dict[str, Any]]:
    """The items and quantities of this package: every unit still unshipped, or the pushed lines,
    each at most what Amazon has left to ship of it."""
    left: dict[str, int] = {}
    for item in order.get("orderItems") or []:
        fulfillment = item.get("fulfillment") or {}
        unshipped = fulfillment.get("quantityUnfulfilled")
        if unshipped is None:
            unshipped = int(item.get("quantityOrdered") or 0) - int(fulfillment.get("quantityFulfilled") or 0)
        left[str(item.get("orderItemId"))] = max(0, int(unshipped))
    order_id = order.get("orderId")
    wanted: dict[str, int] = {} if push.lines else dict(left)
    for line, quantity in push.lines:
        wanted[line] = wanted.get(line, 0) + quantity
    unknown = [line for line in wanted if line not in left]
    if unknown:
        raise NotFound(f"Amazon order {order_id} has no item {', '.join(unknown)}.")
    over = {line: quantity for line, quantity in wanted.items() if quantity > left[line]}
    if over:
        listed = ", ".join(f"{line} ({quantity}, {left[line]} left to ship)" for line, quantity in over.items())
        raise BadResponse(f"Amazon cannot ship these quantities of order {order_id}: {listed}.")
    items = [{"orderItemId": line, "quantity": quantity} for line, quantity in wanted.items() if quantity > 0]
    if not items:
        raise BadResponse(f"Amazon order {order_id} has nothing left to ship.")
    return items


def _marketplace_of(connector: AmazonConnector, order: dict[str, Any]) -> str:
    marketplace_id = (order.get("salesChannel") or {}).get("marketplaceId")
    if marketplace_id:
        return marketplace_id
    marketplaces = connector.config.marketplaces
    if len(marketplaces) == 1:
        return marketplaces[0].id
    raise BadResponse(f"Amazon did not say in which marketplace order {order.get('orderId')} was placed.")


def _next_reference(packages: list[dict[str, Any]]) -> str:
    """A package reference the order does not have yet: Amazon takes positive numbers only."""
    taken = {str(p.get("packageReferenceId")) for p in packages}
    number = len(packages) + 1
    while str(number) in taken:
        number += 1
    return str(number)


# --- Stock ------------------------------------------------------------------------------------------


def set_stock(connector: AmazonConnector, push: StockPush) -> str:
    seller_id = connector.credential("seller_id")
    path = {"sellerId": seller_id, "sku": push.sku}
    listed: list[Marketplace] = []
    for marketplace in _stock_marketplaces(connector, push):
        try:
            item = connector.api.call(
                "getListingsItem",
                {"marketplaceIds": [marketplace.id], "includedData": ["summaries", "fulfillmentAvailability"]},
                path=path,
            )
        except NotFound:
            continue
        channels = {
            str(entry.get("fulfillmentChannelCode"))
            for entry in (item.get("fulfillmentAvailability") if isinstance(item, dict) else None) or []
            if isinstance(entry, dict)
        }
        if channels - {SELLER_CHANNEL}:
            raise BadResponse(
                f"“{push.sku}” is fulfilled by Amazon (FBA) in {marketplace.country}: Amazon counts its stock, "
                "the hub cannot set it.",
                hint="Only seller-fulfilled (MFN) listings take stock levels from the hub.",
            )
        listed.append(marketplace)
    if not listed:
        raise NotFound(
            f"Amazon has no listing with the SKU “{push.sku}” for seller {seller_id}.",
            hint="Check the SKU, the seller ID and the marketplaces of the connection.",
        )
    # Amazon takes no negative quantity; a level below zero in the hub means none to sell.
    patch = {
        "productType": "PRODUCT",
        "patches": [
            {
                "op": "replace",
                "path": "/attributes/fulfillment_availability",
                "value": [{"fulfillment_channel_code": SELLER_CHANNEL, "quantity": max(0, push.quantity)}],
            }
        ],
    }
    for marketplace in listed:
        answer = connector.api.call("patchListingsItem", {"marketplaceIds": [marketplace.id]}, path=path, body=patch)
        _raise_refused(answer, push.sku, marketplace)
    return push.sku


def _stock_marketplaces(connector: AmazonConnector, push: StockPush) -> tuple[Marketplace, ...]:
    """The marketplace the push names (its location), or every marketplace of the connection."""
    marketplaces = connector.config.marketplaces
    if not push.location_id:
        return marketplaces
    chosen = tuple(m for m in marketplaces if m.id == push.location_id)
    if not chosen:
        names = ", ".join(f"{m.country} {m.id}" for m in marketplaces)
        raise ConfigurationError(
            f"“{push.location_id}” is not a marketplace of this Amazon connection.", hint=f"Its marketplaces: {names}."
        )
    return chosen


def _raise_refused(answer: Any, sku: str, marketplace: Marketplace) -> None:
    """Amazon answers a listing change with the submission's status: ACCEPTED, or INVALID with the
    issues that stopped it."""
    answer = answer if isinstance(answer, dict) else {}
    if answer.get("status") == "ACCEPTED":
        return
    issues = [i for i in answer.get("issues") or [] if isinstance(i, dict)]
    issues = [i for i in issues if i.get("severity") == "ERROR"] or issues
    reasons = "; ".join(": ".join(str(i[k]) for k in ("code", "message") if i.get(k)) for i in issues[:5])
    what = f"Amazon refused the stock level for “{sku}” in {marketplace.country}"
    raise BadResponse(f"{what}: {reasons}" if reasons else f"{what} ({answer.get('status') or 'no status'}).")
