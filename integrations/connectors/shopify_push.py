"""Changes the hub sends back to Shopify: fulfilments (through the order's fulfillment orders and
`fulfillmentCreate`) and stock levels (`inventorySetQuantities`).

A fulfilment push first reads the order's fulfillment orders and fulfilments. A fulfilment that
already carries this tracking number means an earlier attempt landed (its answer was lost to a
timeout): its id is returned and nothing is created twice. The mutation itself is sent without the
HTTP client's retries, for the same reason; the hub's push retries re-read first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import BadResponse, NotFound

if TYPE_CHECKING:
    from commerce.pushes import FulfilmentPush, StockPush

    from .shopify import ShopifyConnector

# Shopify's names for the hub's carriers (its list of supported tracking companies): a known name
# gets Shopify's own tracking link and carrier logo.
CARRIER_NAMES = {
    "ups": "UPS",
    "usps": "USPS",
    "fedex": "FedEx",
    "dhl": "DHL Express",
    "dhl_ecommerce": "DHL eCommerce",
    "royal_mail": "Royal Mail",
    "parcelforce": "Parcelforce",
    "canada_post": "Canada Post",
    "australia_post": "Australia Post",
    "dpd": "DPD",
    "gls": "GLS",
    "evri": "Evri",
    "ontrac": "OnTrac",
    "amazon_logistics": "Amazon Logistics US",
    "japan_post": "Japan Post (EN)",
    "yamato": "Yamato (EN)",
}

FULFILLMENT_ORDERS = (
    "query HubFulfillmentOrders($id: ID!) { order(id: $id) { id "
    "fulfillments(first: 50) { id status trackingInfo { number company } } "
    "fulfillmentOrders(first: 20) { nodes { id status supportedActions { action } "
    "lineItems(first: 100) { nodes { id remainingQuantity lineItem { id } } } } } } }"
)
FULFILLMENT_CREATE = (
    "mutation HubFulfillmentCreate($fulfillment: FulfillmentInput!) { "
    "fulfillmentCreate(fulfillment: $fulfillment) { fulfillment { id status } userErrors { field message } } }"
)
VARIANT_BY_SKU = (
    "query HubVariantBySku($query: String!) { productVariants(first: 2, query: $query) { "
    "nodes { id sku inventoryItem { id tracked } } } }"
)
PRIMARY_LOCATION = "query HubPrimaryLocation { location { id name } }"
INVENTORY_SET = (
    "mutation HubInventorySet($input: InventorySetQuantitiesInput!) { inventorySetQuantities(input: $input) { "
    "inventoryAdjustmentGroup { id } userErrors { field message code } } }"
)


def fulfil(connector: ShopifyConnector, push: FulfilmentPush) -> str:
    order = (connector.query(FULFILLMENT_ORDERS, {"id": push.order_external_id}, "HubFulfillmentOrders") or {}).get(
        "order"
    )
    if not order:
        raise NotFound(f"Shopify has no order {push.order_external_id}.", hint="It may have been deleted.")
    for existing in order.get("fulfillments") or []:
        if any(info.get("number") == push.tracking_number for info in existing.get("trackingInfo") or []):
            return existing["id"]  # an earlier attempt landed

    by_order = _line_items_by_fulfillment_order(order, push)
    fulfillment: dict[str, Any] = {
        "lineItemsByFulfillmentOrder": by_order,
        "notifyCustomer": push.notify_customer,
        "trackingInfo": {"number": push.tracking_number, "company": connector.platform_carrier(push.carrier)},
    }
    if push.tracking_url:
        fulfillment["trackingInfo"]["url"] = push.tracking_url
    data = connector.query(FULFILLMENT_CREATE, {"fulfillment": fulfillment}, "HubFulfillmentCreate", retry=False)
    result = data.get("fulfillmentCreate") or {}
    _raise_user_errors(result, "Shopify refused the fulfilment")
    created = result.get("fulfillment") or {}
    if not created.get("id"):
        raise BadResponse("Shopify created no fulfilment and gave no reason.")
    return created["id"]


def _line_items_by_fulfillment_order(order: dict[str, Any], push: FulfilmentPush) -> list[dict[str, Any]]:
    """The fulfillment order line items to fulfil: every remaining one, or the pushed lines and
    quantities, taken from the open fulfillment orders that hold them."""
    open_orders = [
        fo
        for fo in (order.get("fulfillmentOrders") or {}).get("nodes") or []
        if fo.get("status") in ("OPEN", "IN_PROGRESS")
        and any(a.get("action") == "CREATE_FULFILLMENT" for a in fo.get("supportedActions") or [])
    ]
    if not open_orders:
        raise BadResponse(
            "Shopify has nothing left to fulfil on this order.",
            hint="It is fulfilled, cancelled, or held (on hold or awaiting payment) in Shopify.",
        )
    if not push.lines:
        return [{"fulfillmentOrderId": fo["id"]} for fo in open_orders]

    wanted = dict(push.lines)
    grouped: dict[str, list[dict[str, Any]]] = {}
    for fo in open_orders:
        for item in (fo.get("lineItems") or {}).get("nodes") or []:
            line_id = (item.get("lineItem") or {}).get("id")
            if line_id in wanted and wanted[line_id] > 0 and item.get("remainingQuantity", 0) > 0:
                take = min(wanted[line_id], item["remainingQuantity"])
                wanted[line_id] -= take
                grouped.setdefault(fo["id"], []).append({"id": item["id"], "quantity": take})
    short = {line: qty for line, qty in wanted.items() if qty > 0}
    if short:
        listed = ", ".join(f"{line} ({qty} more than Shopify has left)" for line, qty in short.items())
        raise BadResponse(f"Shopify cannot fulfil these quantities: {listed}.")
    return [{"fulfillmentOrderId": fo_id, "fulfillmentOrderLineItems": items} for fo_id, items in grouped.items()]


def set_stock(connector: ShopifyConnector, push: StockPush) -> str:
    variants = (connector.query(VARIANT_BY_SKU, {"query": f"sku:{_quoted(push.sku)}"}, "HubVariantBySku") or {}).get(
        "productVariants"
    ) or {}
    matches = [v for v in variants.get("nodes") or [] if v.get("sku") == push.sku]
    if not matches:
        raise NotFound(f"Shopify has no variant with the SKU “{push.sku}”.")
    if len(matches) > 1:
        raise BadResponse(f"Several Shopify variants have the SKU “{push.sku}”: make SKUs unique to push stock.")
    item = matches[0].get("inventoryItem") or {}
    if not item.get("tracked"):
        raise BadResponse(f"Shopify does not track stock for “{push.sku}”: turn on inventory tracking for it.")
    location_id = push.location_id or _primary_location(connector)
    data = connector.query(
        INVENTORY_SET,
        {
            "input": {
                "name": "available",
                "reason": "correction",
                "ignoreCompareQuantity": True,
                "quantities": [{"inventoryItemId": item["id"], "locationId": location_id, "quantity": push.quantity}],
            }
        },
        "HubInventorySet",
    )
    result = data.get("inventorySetQuantities") or {}
    _raise_user_errors(result, f"Shopify refused the stock level for “{push.sku}”")
    return item["id"]


def _primary_location(connector: ShopifyConnector) -> str:
    location = (connector.query(PRIMARY_LOCATION, None, "HubPrimaryLocation") or {}).get("location") or {}
    if not location.get("id"):
        raise BadResponse("Shopify did not say which location is the shop's primary one.")
    return location["id"]


def _raise_user_errors(result: dict[str, Any], what: str) -> None:
    errors = result.get("userErrors") or []
    if errors:
        message = "; ".join(str(e.get("message") or e) for e in errors)[:500]
        raise BadResponse(f"{what}: {message}")


def _quoted(value: str) -> str:
    """A value for Shopify's search syntax, quoted so spaces and colons stay part of it."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
