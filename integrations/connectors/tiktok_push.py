"""Changes the hub sends back to TikTok Shop (Open API 202309): shipments of seller-shipped orders
and stock levels.

TikTok ships packages, not orders. A fulfilment push first reads the order (Get Order Detail): a
line item that already carries the push's tracking number means an earlier attempt landed (its
answer was lost to a timeout), so that package's id is returned and nothing ships twice.
Otherwise the push's package is found: with no lines, the order's one package still awaiting
shipment; with lines, the package they fill. A push that fills only part of a package is refused
rather than split: splitting (Seller Center, or Split Orders with TikTok's splittable groups) is a
person's decision. An order with several packages still to ship is refused without lines, since
each package takes its own tracking number. The carrier becomes the `shipping_provider_id` TikTok
offers under that name for the order's delivery option (the list is cached per connection), and
Ship Package is sent once, without the HTTP client's retries; the hub's push retries read first.

A stock push sets one SKU's quantity in one warehouse (Update Inventory, absolute, so it may be
retried): the product and SKU ids from the synced catalogue, else found by seller SKU (Search
Products); the warehouse is the push's location, else the shop's default sales warehouse.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from django.core.cache import cache

from commerce.carriers import CARRIERS, UnknownCarrier, normalise

from ..errors import BadResponse, ConfigurationError, NotFound

if TYPE_CHECKING:
    from commerce.pushes import FulfilmentPush, StockPush

    from .tiktok import TikTokConnector

ORDER_PATH = "/order/202309/orders"
PROVIDERS_PATH = "/logistics/202309/delivery_options/{}/shipping_providers"
SHIP_PATH = "/fulfillment/202309/packages/{}/ship"
WAREHOUSES_PATH = "/logistics/202309/warehouses"
SEARCH_PATH = "/product/202309/products/search"
INVENTORY_PATH = "/product/202309/products/{}/inventory/update"
PROVIDERS_SECONDS = 86400
WAREHOUSE_SECONDS = 3600
SEARCH_SIZE = 20  # more than one match is refused anyway

# The names TikTok Shop lists these carriers by (its shipping providers differ by market and
# delivery option). A provider is also matched when the hub knows its name as the carrier's alias.
CARRIER_NAMES = {
    "ups": "UPS",
    "usps": "USPS",
    "fedex": "FedEx",
    "dhl": "DHL Express",
    "dhl_ecommerce": "DHL eCommerce",
    "ontrac": "OnTrac",
    "amazon_logistics": "Amazon Shipping",
    "royal_mail": "Royal Mail",
    "parcelforce": "Parcelforce Worldwide",
    "evri": "Evri",
    "dpd": "DPD",
    "gls": "GLS",
    "japan_post": "Japan Post",
    "yamato": "Yamato Transport",
}
SHIPPABLE = {"AWAITING_SHIPMENT", "PARTIALLY_SHIPPING"}
TO_SHIP = "AWAITING_SHIPMENT"  # a line item's display status until its package ships


# --- Fulfilment -----------------------------------------------------------------------------------


def fulfil(connector: TikTokConnector, push: FulfilmentPush) -> str:
    if not push.tracking_number:
        raise ConfigurationError("TikTok Shop ships a seller's package only with its tracking number.")
    order = _order(connector, push.order_external_id)
    items = [item for item in order.get("line_items") or [] if isinstance(item, dict)]
    for item in items:
        if item.get("tracking_number") == push.tracking_number and item.get("package_id"):
            return str(item["package_id"])  # an earlier attempt landed
    _check_seller_ships(order)
    package_id = _package(push, items)
    provider_id = _provider_id(connector, order, push.carrier)
    shipment = {"self_shipment": {"tracking_number": push.tracking_number, "shipping_provider_id": provider_id}}
    try:
        connector.call(SHIP_PATH.format(quote(package_id, safe="")), body=shipment, retry=False)
    except BadResponse as error:
        raise BadResponse(
            f"TikTok Shop refused to ship package {package_id}: {error.message}", hint=error.hint, status=error.status
        ) from error
    return package_id


def _order(connector: TikTokConnector, order_id: str) -> dict[str, Any]:
    data = connector.call(ORDER_PATH, method="GET", query={"ids": order_id})
    orders = data.get("orders")
    if not isinstance(orders, list):
        raise BadResponse(f"TikTok Shop's answer about order {order_id} has no list of orders.")
    order = next((o for o in orders if isinstance(o, dict) and str(o.get("id")) == order_id), None)
    if order is None:
        raise NotFound(f"TikTok Shop has no order {order_id}.", hint="It may belong to another shop.")
    return order


def _check_seller_ships(order: dict[str, Any]) -> None:
    order_id, status = order["id"], order.get("status")
    if order.get("fulfillment_type") == "FULFILLMENT_BY_TIKTOK":
        raise BadResponse(f"TikTok Shop order {order_id} is fulfilled by TikTok: it takes no shipment from the hub.")
    if order.get("shipping_type") == "TIKTOK":
        raise BadResponse(
            f"TikTok Shop order {order_id} ships on a TikTok Shipping label, whose tracking number is TikTok's.",
            hint="Ship it from Seller Center with the label TikTok Shop provides.",
        )
    if status not in SHIPPABLE:
        hint = (
            "TikTok Shop holds a new order while the buyer may cancel; push it again after."
            if status == "ON_HOLD"
            else ""
        )
        raise BadResponse(f"TikTok Shop order {order_id} is {status}: it cannot be shipped now.", hint=hint)


def _package(push: FulfilmentPush, items: list[dict[str, Any]]) -> str:
    """The one package this push ships, all of whose line items still awaiting shipment it holds."""
    order_id = push.order_external_id
    waiting = {
        str(i.get("id")): i for i in items if i.get("display_status") == TO_SHIP and not i.get("tracking_number")
    }
    wanted = {line: quantity for line, quantity in push.lines if quantity > 0}
    if push.lines:
        known = {str(i.get("id")) for i in items}
        unknown = [line for line in wanted if line not in known]
        if unknown:
            raise NotFound(f"TikTok Shop order {order_id} has no line item {', '.join(unknown)}.")
        done = [line for line in wanted if line not in waiting]
        if done:
            raise BadResponse(
                f"TikTok Shop order {order_id}: line item {', '.join(done)} is no longer awaiting shipment "
                "(shipped or cancelled)."
            )
        over = [line for line, quantity in wanted.items() if quantity > _quantity(waiting[line])]
        if over:
            raise BadResponse(f"TikTok Shop order {order_id}: more units than line item {', '.join(over)} holds.")
        chosen = [waiting[line] for line in wanted]
    else:
        chosen = list(waiting.values())
    if not chosen:
        raise BadResponse(f"TikTok Shop order {order_id} has nothing left to ship.")
    packages = sorted({str(i.get("package_id") or "") for i in chosen})
    if "" in packages:
        raise BadResponse(f"TikTok Shop has not put order {order_id} in a package yet; push it again later.")
    if len(packages) > 1:
        raise BadResponse(
            f"TikTok Shop order {order_id} has {len(packages)} packages to ship ({', '.join(packages)}), and each "
            "takes its own tracking number.",
            hint="Push each package's lines with its own tracking number.",
        )
    package_id = packages[0]
    if push.lines:
        left = [
            line
            for line, item in waiting.items()
            if str(item.get("package_id")) == package_id and wanted.get(line, 0) < _quantity(item)
        ]
        if left:
            raise BadResponse(
                f"Partial shipments need splitting in Seller Center: TikTok Shop ships package {package_id} of "
                f"order {order_id} whole, and it also holds line item {', '.join(left)}.",
                hint="Split the order in TikTok Shop Seller Center, sync orders, then push each package's lines.",
            )
    return package_id


def _quantity(item: dict[str, Any]) -> int:
    return int(item.get("quantity") or 1)  # 202309 sends a line item per unit, without a quantity


def _provider_id(connector: TikTokConnector, order: dict[str, Any], code: str) -> str:
    option = str(order.get("delivery_option_id") or "")
    if not option:
        raise BadResponse(f"TikTok Shop did not say which delivery option order {order['id']} uses.")
    providers = _providers(connector, option)
    for provider in providers:
        if _names(code, provider["name"]):
            return provider["id"]
    carrier = CARRIERS[code].name if code in CARRIERS else f"“{code}”"
    delivery = order.get("delivery_option_name") or option
    offered = ", ".join(provider["name"] for provider in providers) or "none"
    raise ConfigurationError(
        f"TikTok Shop does not offer {carrier} for order {order['id']} ({delivery}).",
        hint=f"TikTok Shop offers: {offered}.",
    )


def _providers(connector: TikTokConnector, option: str) -> list[dict[str, str]]:
    """The shipping providers TikTok offers for a delivery option, read once a day per connection."""
    key = f"tiktok:shipping-providers:{connector.cache_id}:{option}"
    providers = cache.get(key)
    if providers is None:
        data = connector.call(PROVIDERS_PATH.format(quote(option, safe="")), method="GET")
        listed = data.get("shipping_providers")
        if not isinstance(listed, list):
            raise BadResponse(f"TikTok Shop's answer about delivery option {option} has no list of providers.")
        providers = [
            {"id": str(p["id"]), "name": str(p.get("name") or p["id"])}
            for p in listed
            if isinstance(p, dict) and p.get("id")
        ]
        if providers:
            cache.set(key, providers, timeout=PROVIDERS_SECONDS)
    return providers


def _names(code: str, name: str) -> bool:
    """Whether TikTok's provider `name` is the hub carrier `code`."""
    if code in CARRIER_NAMES and _key(name) == _key(CARRIER_NAMES[code]):
        return True
    try:
        return normalise(name) == code
    except UnknownCarrier:
        return False


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", name.lower())


# --- Stock ----------------------------------------------------------------------------------------


def set_stock(connector: TikTokConnector, push: StockPush) -> str:
    if push.quantity < 0:
        raise BadResponse(
            f"TikTok Shop takes no negative stock ({push.quantity} for “{push.sku}”).",
            hint="Push 0 to stop selling it.",
        )
    if push.product_external_id and push.variant_external_id:
        product_id, sku_id = push.product_external_id, push.variant_external_id
    else:
        product_id, sku_id = _find_sku(connector, push.sku)
    warehouse_id = push.location_id or _default_warehouse(connector)
    levels = {"skus": [{"id": sku_id, "inventory": [{"warehouse_id": warehouse_id, "quantity": push.quantity}]}]}
    try:
        connector.call(INVENTORY_PATH.format(quote(product_id, safe="")), body=levels)
    except BadResponse as error:
        raise BadResponse(
            f"TikTok Shop refused the stock level for “{push.sku}”: {error.message}",
            hint=error.hint,
            status=error.status,
        ) from error
    return sku_id


def _find_sku(connector: TikTokConnector, seller_sku: str) -> tuple[str, str]:
    """(product id, SKU id) of the one live SKU with this seller SKU."""
    data = connector.call(SEARCH_PATH, query={"page_size": SEARCH_SIZE}, body={"seller_skus": [seller_sku]})
    products = data.get("products") or []
    if not isinstance(products, list):
        raise BadResponse("TikTok Shop's answer to Search Products has no list of products.")
    matches = [
        (str(product["id"]), str(sku["id"]))
        for product in products
        if isinstance(product, dict) and product.get("id") and product.get("status") != "DELETED"
        for sku in product.get("skus") or []
        if isinstance(sku, dict) and sku.get("id") and sku.get("seller_sku") == seller_sku
    ]
    if not matches:
        raise NotFound(f"TikTok Shop has no SKU with the seller SKU “{seller_sku}”.")
    if len(matches) > 1:
        raise BadResponse(
            f"Several TikTok Shop SKUs have the seller SKU “{seller_sku}”: make seller SKUs unique to push stock."
        )
    return matches[0]


def _default_warehouse(connector: TikTokConnector) -> str:
    """The shop's default sales warehouse, read once an hour per connection."""
    key = f"tiktok:default-warehouse:{connector.cache_id}"
    warehouse_id = cache.get(key)
    if warehouse_id is None:
        data = connector.call(WAREHOUSES_PATH, method="GET")
        default = next(
            (
                w
                for w in data.get("warehouses") or []
                if isinstance(w, dict) and w.get("type") == "SALES_WAREHOUSE" and w.get("is_default") and w.get("id")
            ),
            None,
        )
        if default is None:
            raise BadResponse(
                "TikTok Shop names no default sales warehouse for the shop.",
                hint="Choose one in Seller Center, or push stock to a warehouse of its own.",
            )
        warehouse_id = str(default["id"])
        cache.set(key, warehouse_id, timeout=WAREHOUSE_SECONDS)
    return warehouse_id
