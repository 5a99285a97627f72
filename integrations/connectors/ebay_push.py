"""Changes the hub sends back to eBay: shipping fulfilments (Sell Fulfillment API) and ship-to-home
stock levels (Sell Inventory API).

A fulfilment push reads the order (getOrder: its line items and what is left of each) and its
fulfilments (getShippingFulfillments) first. A fulfilment that already carries this tracking number
means an earlier attempt landed (its answer was lost to a timeout): its id is returned and nothing
is created twice. createShippingFulfillment itself is sent without the HTTP client's retries, for
the same reason; the hub's push retries read first again. eBay takes no tracking link and no
"notify the buyer" switch: it shows the tracking to the buyer itself.

A stock push sets the SKU's ship-to-home quantity with bulkUpdatePriceQuantity, which leaves
prices and offers alone. Setting a quantity is idempotent, so that call is retried like a read.
eBay answers 200 (or 207) with a status per SKU: a refused SKU inside it is a failure.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit

from ..errors import BadResponse, ConfigurationError, IntegrationError, NotFound, RateLimited, Unavailable
from . import ebay_client
from .ebay_client import decoded, error_words
from .ebay_mapping import LOCATION_ID
from .ebay_streams import param_time

if TYPE_CHECKING:
    from commerce.pushes import FulfilmentPush, StockPush

    from .ebay import EbayConnector

ORDER = "/sell/fulfillment/v1/order/{order_id}"
FULFILLMENTS = ORDER + "/shipping_fulfillment"
BULK_PRICE_QUANTITY = "/sell/inventory/v1/bulk_update_price_quantity"

# eBay's shipping carrier codes for the hub's carriers: the values of the Trading API's
# ShippingCarrierCodeType, which createShippingFulfillment's description points to (GeteBayDetails
# with DetailName ShippingCarrierDetails lists them per site). Parcelforce is spelt as eBay UK's
# GeteBayDetails answers it; Evri goes by its former name, Hermes. DHL eCommerce, Amazon Logistics,
# Japan Post and Yamato are left out: their codes could not be confirmed, and a refusal that lists
# the accepted carriers is better than a guessed code on the buyer's tracking.
CARRIER_NAMES = {
    "ups": "UPS",
    "usps": "USPS",
    "fedex": "FedEx",
    "dhl": "DHL",
    "royal_mail": "RoyalMail",
    "parcelforce": "Parcelforce",
    "canada_post": "CanadaPost",
    "australia_post": "AustraliaPost",
    "dpd": "DPD",
    "gls": "GLS",
    "evri": "Hermes",
    "ontrac": "OnTrac",
}
# eBay takes letters and digits only: "Do not include a space in the tracking number even if a
# space appears in the tracking number on the shipping label" (createShippingFulfillment).
LABEL_PUNCTUATION = re.compile(r"[\s-]+")
ALPHANUMERIC = re.compile(r"[A-Za-z0-9]+")


# --- Fulfilments ----------------------------------------------------------------------------------


def fulfil(connector: EbayConnector, push: FulfilmentPush) -> str:
    carrier = connector.platform_carrier(push.carrier)
    tracking = tracking_number(push.tracking_number)
    order_id = push.order_external_id
    escaped = quote(order_id, safe="")
    order = connector.api.get(ORDER.format(order_id=escaped))
    if not isinstance(order, dict) or not isinstance(order.get("lineItems"), list):
        raise BadResponse(f"eBay's getOrder answer for {order_id} has no line items.")
    answer = connector.api.get(FULFILLMENTS.format(order_id=escaped))
    # An order without fulfilments may come with `total: 0` alone.
    fulfilments = answer.get("fulfillments", []) if isinstance(answer, dict) else None
    if not isinstance(fulfilments, list):
        raise BadResponse(f"eBay's getShippingFulfillments answer for {order_id} has no list of fulfilments.")
    fulfilments = [f for f in fulfilments if isinstance(f, dict)]
    for existing in fulfilments:
        if str(existing.get("shipmentTrackingNumber") or "").upper() == tracking.upper():
            return str(existing.get("fulfillmentId") or tracking)  # an earlier attempt landed

    if (order.get("cancelStatus") or {}).get("cancelState") == "CANCELED":
        raise BadResponse(f"eBay order {order_id} is cancelled: it cannot be shipped.")
    response = connector.api.send(
        "POST",
        FULFILLMENTS.format(order_id=escaped),
        json={
            "lineItems": line_items(order, fulfilments, push),
            "shippedDate": param_time(ebay_client.now()),
            "shippingCarrierCode": carrier,
            "trackingNumber": tracking,
        },
        retry=False,
    )
    return fulfilment_id(response.headers.get("Location") or "", tracking)


def tracking_number(given: str) -> str:
    """The tracking number as eBay takes it: the label's spaces and hyphens left out."""
    number = LABEL_PUNCTUATION.sub("", given or "")
    if not ALPHANUMERIC.fullmatch(number):
        raise ConfigurationError(
            f"eBay does not take the tracking number “{given}”.",
            hint="eBay takes letters and digits only.",
        )
    return number


def line_items(order: dict[str, Any], fulfilments: list[dict[str, Any]], push: FulfilmentPush) -> list[dict[str, Any]]:
    """The line items and quantities to ship: every unit not shipped yet, or the pushed lines, each
    no more than is left of it."""
    left = remaining(order, fulfilments)
    order_id = push.order_external_id
    if not push.lines:
        items = [{"lineItemId": line, "quantity": quantity} for line, quantity in left.items() if quantity > 0]
        if not items:
            raise BadResponse(f"eBay has nothing left to ship on order {order_id}.", hint="It is shipped already.")
        return items

    wanted: dict[str, int] = {}
    for line, quantity in push.lines:  # eBay refuses a line named twice (errorId 32210)
        wanted[line] = wanted.get(line, 0) + quantity
    unknown = [line for line in wanted if line not in left]
    if unknown:
        raise NotFound(f"eBay order {order_id} has no line item {', '.join(unknown)}.")
    short = {line: quantity for line, quantity in wanted.items() if quantity > left[line] or quantity < 1}
    if short:
        listed = ", ".join(f"{line} ({quantity} asked, {left[line]} left)" for line, quantity in short.items())
        raise BadResponse(f"eBay cannot ship these quantities of order {order_id}: {listed}.")
    return [{"lineItemId": line, "quantity": quantity} for line, quantity in wanted.items()]


def remaining(order: dict[str, Any], fulfilments: list[dict[str, Any]]) -> dict[str, int]:
    """Each line item's quantity not shipped yet: what the fulfilments have not covered, none of a
    line eBay calls FULFILLED."""
    shipped: dict[str, int] = {}
    for fulfilment in fulfilments:
        for item in fulfilment.get("lineItems") or []:
            if isinstance(item, dict) and item.get("lineItemId"):
                line = str(item["lineItemId"])
                shipped[line] = shipped.get(line, 0) + int(item.get("quantity") or 1)  # eBay's default is 1
    left: dict[str, int] = {}
    for item in order["lineItems"]:
        if not isinstance(item, dict) or not item.get("lineItemId"):
            continue
        line = str(item["lineItemId"])
        if item.get("lineItemFulfillmentStatus") == "FULFILLED":
            left[line] = 0
        else:
            left[line] = max(0, int(item.get("quantity") or 0) - shipped.get(line, 0))
    return left


def fulfilment_id(location: str, tracking: str) -> str:
    """The new fulfilment's id, the last segment of the Location eBay answers with
    (…/order/{orderId}/shipping_fulfillment/{fulfillmentId}). Without one, the tracking number:
    eBay documents that a fulfilment with tracking is known by it."""
    segment = urlsplit(location).path.rstrip("/").rsplit("/", 1)[-1] if location else ""
    return unquote(segment) or tracking


# --- Stock ----------------------------------------------------------------------------------------


def set_stock(connector: EbayConnector, push: StockPush) -> str:
    if push.location_id not in ("", LOCATION_ID):
        raise ConfigurationError(
            f"eBay has no location “{push.location_id}”: the hub pushes its ship-to-home quantity only.",
            hint=f"Push the stock of “{LOCATION_ID}”.",
        )
    # A level below zero (more sold than was held) means none left to sell on eBay.
    quantity = max(0, push.quantity)
    request = {"requests": [{"sku": push.sku, "shipToLocationAvailability": {"quantity": quantity}}]}
    body = decoded(connector.api.send("POST", BULK_PRICE_QUANTITY, json=request))
    answers = body.get("responses") if isinstance(body, dict) else None
    mine = [a for a in answers if isinstance(a, dict) and a.get("sku") == push.sku] if isinstance(answers, list) else []
    if not mine:
        raise BadResponse(f"eBay's bulkUpdatePriceQuantity answer says nothing of the SKU “{push.sku}”.")
    for answer in mine:
        if answer.get("statusCode") != 200:
            raise refused_sku(push.sku, answer)
    return push.sku


def refused_sku(sku: str, answer: dict[str, Any]) -> IntegrationError:
    status = answer.get("statusCode")
    words = error_words(answer.get("errors")) or "no reason given"
    message = f"eBay refused the stock level of “{sku}” ({status}): {words}"
    if isinstance(status, int) and status >= 500:
        return Unavailable(message, status=status)
    if status == 429:
        return RateLimited(message, status=status)
    if status == 404:
        return NotFound(
            message,
            hint="Listings made outside the Inventory API (Seller Hub, the Trading API) have no inventory item.",
            status=status,
        )
    return BadResponse(message, status=status if isinstance(status, int) else None)
