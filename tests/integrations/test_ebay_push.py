"""eBay fulfilment and stock pushes against eBay's documented shapes (`responses`, fixtures in
tests/fixtures/ebay/): getOrder and getShippingFulfillments read first, createShippingFulfillment
with eBay's carrier codes, partial lines, an earlier attempt that landed, eBay's refusals in its
own words, a create never re-sent, one token renewal on a 401, and bulkUpdatePriceQuantity with
its status per SKU."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import responses

from commerce.pushes import FulfilmentPush, StockPush
from integrations.connectors import ebay_client
from integrations.connectors.ebay import EbayConnector
from integrations.errors import AuthError, BadResponse, ConfigurationError, NotFound, Unavailable
from integrations.http import HttpClient
from integrations.pushes import ConnectorPusher

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ebay"
API = "https://api.ebay.com"
TOKEN = f"{API}/identity/v1/oauth2/token"
NOW = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
CREDENTIALS = {
    "client_id": "HubTests-Hub-PRD-0123456789-abcdef01",
    "client_secret": "PRD-0123456789ab-cdef-0123-4567-89ab",
    "ru_name": "Hub_Tests-HubTests-Hub-PR-abcdefghi",
    "environment": "production",
    "refresh_token": "v^1.1#i^1#r^1#refresh",
}
WAITING = "45-67890-12345"  # get_order_awaiting_shipment.json: nothing shipped yet
PART_SHIPPED = "23-45678-90123"  # get_orders.json's second order: one line shipped, one not
ORDER = "/sell/fulfillment/v1/order/{}"
FULFILMENTS = "/sell/fulfillment/v1/order/{}/shipping_fulfillment"
BULK = "/sell/inventory/v1/bulk_update_price_quantity"


def load(name: str):
    return json.loads((FIXTURES / name).read_text())


def order(order_id: str) -> dict:
    if order_id == WAITING:
        return load("get_order_awaiting_shipment.json")
    if order_id == PART_SHIPPED:
        return copy.deepcopy(load("get_orders.json")["orders"][1])
    return load("get_order_cancelled.json")


@pytest.fixture(autouse=True)
def clock(monkeypatch):
    monkeypatch.setattr(ebay_client, "now", lambda: NOW)


@pytest.fixture
def api():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def connection(make_connection, tenant_a):
    return make_connection(tenant_a, "ebay", credentials=CREDENTIALS)


@pytest.fixture
def ebay(connection) -> EbayConnector:
    return EbayConnector(connection, client=HttpClient(sleep=lambda seconds: None))


def token(api, access: str = "v^1.1#first") -> None:
    api.add(responses.POST, TOKEN, json={"access_token": access, "expires_in": 7200, "token_type": "User"})


def shipped(fulfilments: list | None = None) -> dict:
    return {"fulfillments": fulfilments or [], "total": len(fulfilments or [])}


def reads(api, order_id: str, fulfilments: dict | None = None) -> None:
    """getOrder and getShippingFulfillments of the order (with a fresh token)."""
    token(api)
    api.add(responses.GET, API + ORDER.format(order_id), json=order(order_id))
    api.add(responses.GET, API + FULFILMENTS.format(order_id), json=fulfilments or shipped())


def created(api, order_id: str, fulfilment_id: str = "1Z999AA10123456784", *, status: int = 201, body=None) -> None:
    location = f"{API}{FULFILMENTS.format(order_id)}/{fulfilment_id}"
    headers = {"Location": location} if status == 201 else {}
    api.add(responses.POST, API + FULFILMENTS.format(order_id), json=body or {}, status=status, headers=headers)


def push(**kwargs) -> FulfilmentPush:
    defaults = {
        "tenant_id": 1,
        "connection_id": 1,
        "order_external_id": WAITING,
        "tracking_number": "1Z999AA10123456784",
        "carrier": "ups",
    }
    return FulfilmentPush(**{**defaults, **kwargs})


def posts(api, path: str) -> list:
    return [c for c in api.calls if c.request.method == "POST" and urlsplit(c.request.url).path == path]


def sent(api, path: str) -> dict:
    [call] = posts(api, path)
    return json.loads(call.request.body)


# --- Fulfilments ------------------------------------------------------------------------------------


def test_a_whole_order_ships_every_line_with_ebays_carrier_code(api, ebay):
    reads(api, WAITING)
    created(api, WAITING)
    assert ebay.fulfil(push()) == "1Z999AA10123456784"  # the id from eBay's Location header
    assert sent(api, FULFILMENTS.format(WAITING)) == {
        "lineItems": [
            {"lineItemId": "10001234567900", "quantity": 2},
            {"lineItemId": "10001234567901", "quantity": 1},
        ],
        "shippedDate": "2025-01-15T12:00:00.000Z",
        "shippingCarrierCode": "UPS",
        "trackingNumber": "1Z999AA10123456784",
    }
    [call] = posts(api, FULFILMENTS.format(WAITING))
    assert call.request.headers["Content-Type"] == "application/json"
    assert call.request.headers["Authorization"] == "Bearer v^1.1#first"


def test_an_order_whose_fulfilments_answer_is_only_a_zero_total_ships(api, ebay):
    reads(api, WAITING, {"total": 0})
    created(api, WAITING)
    ebay.fulfil(push())
    assert len(sent(api, FULFILMENTS.format(WAITING))["lineItems"]) == 2


def test_a_fulfilments_answer_without_a_list_is_a_bad_response(api, ebay):
    reads(api, WAITING, {"total": 1, "fulfillments": {"fulfillmentId": "X"}})
    with pytest.raises(BadResponse, match="no list of fulfilments"):
        ebay.fulfil(push())
    assert not posts(api, FULFILMENTS.format(WAITING))


@pytest.mark.parametrize(
    ("carrier", "code"),
    [("royal_mail", "RoyalMail"), ("canada_post", "CanadaPost"), ("evri", "Hermes"), ("parcelforce", "Parcelforce")],
)
def test_hub_carriers_are_named_the_way_ebay_codes_them(api, ebay, carrier, code):
    reads(api, WAITING)
    created(api, WAITING)
    ebay.fulfil(push(carrier=carrier))
    assert sent(api, FULFILMENTS.format(WAITING))["shippingCarrierCode"] == code


def test_lines_already_shipped_are_left_out(api, ebay):
    reads(api, PART_SHIPPED, load("get_shipping_fulfillments.json"))
    created(api, PART_SHIPPED, "9400111899223344556677")
    ebay.fulfil(push(order_external_id=PART_SHIPPED, tracking_number="9400111899223344556677", carrier="usps"))
    assert sent(api, FULFILMENTS.format(PART_SHIPPED))["lineItems"] == [{"lineItemId": "10001234567893", "quantity": 3}]


def test_units_shipped_in_earlier_fulfilments_are_not_shipped_again(api, ebay):
    earlier = {
        "fulfillmentId": "EARLIER1",
        "shipmentTrackingNumber": "EARLIER1",
        "lineItems": [{"lineItemId": "10001234567900", "quantity": 1}],
    }
    reads(api, WAITING, shipped([earlier]))
    created(api, WAITING)
    ebay.fulfil(push())
    assert sent(api, FULFILMENTS.format(WAITING))["lineItems"] == [
        {"lineItemId": "10001234567900", "quantity": 1},
        {"lineItemId": "10001234567901", "quantity": 1},
    ]


def test_a_partial_shipment_sends_only_the_pushed_lines_and_quantities(api, ebay):
    reads(api, WAITING)
    created(api, WAITING)
    ebay.fulfil(push(lines=(("10001234567900", 1),)))
    assert sent(api, FULFILMENTS.format(WAITING))["lineItems"] == [{"lineItemId": "10001234567900", "quantity": 1}]


def test_a_line_pushed_twice_is_sent_once_with_both_quantities(api, ebay):
    reads(api, WAITING)
    created(api, WAITING)
    ebay.fulfil(push(lines=(("10001234567900", 1), ("10001234567900", 1))))
    assert sent(api, FULFILMENTS.format(WAITING))["lineItems"] == [{"lineItemId": "10001234567900", "quantity": 2}]


def test_a_line_the_order_does_not_have_creates_nothing(api, ebay):
    reads(api, WAITING)
    with pytest.raises(NotFound, match="no line item 999"):
        ebay.fulfil(push(lines=(("999", 1),)))
    assert not posts(api, FULFILMENTS.format(WAITING))


def test_more_than_is_left_of_a_line_creates_nothing(api, ebay):
    reads(api, PART_SHIPPED, load("get_shipping_fulfillments.json"))
    with pytest.raises(BadResponse, match=r"10001234567892 \(1 asked, 0 left\)"):
        ebay.fulfil(push(order_external_id=PART_SHIPPED, lines=(("10001234567892", 1),)))
    assert not posts(api, FULFILMENTS.format(PART_SHIPPED))


def test_an_earlier_attempt_that_landed_creates_nothing(api, ebay):
    landed = {
        "fulfillmentId": "1Z999AA10123456784",
        "shipmentTrackingNumber": "1Z999AA10123456784",
        "lineItems": [{"lineItemId": "10001234567900", "quantity": 2}],
    }
    reads(api, WAITING, shipped([landed]))
    assert ebay.fulfil(push(tracking_number="1z999aa1 0123-456784")) == "1Z999AA10123456784"
    assert not posts(api, FULFILMENTS.format(WAITING))


def test_a_tracking_number_goes_without_the_labels_spaces_and_hyphens(api, ebay):
    reads(api, WAITING)
    created(api, WAITING)
    ebay.fulfil(push(tracking_number=" 1Z 999 AA1-0123-456784 "))
    assert sent(api, FULFILMENTS.format(WAITING))["trackingNumber"] == "1Z999AA10123456784"


@pytest.mark.parametrize("number", ["1Z999/AA1", "", "  "])
def test_a_tracking_number_ebay_cannot_take_is_refused_before_anything_is_sent(api, ebay, number):
    with pytest.raises(ConfigurationError, match="tracking number") as refused:
        ebay.fulfil(push(tracking_number=number))
    assert "letters and digits" in refused.value.hint
    assert not api.calls


def test_an_order_with_nothing_left_to_ship_creates_nothing(api, ebay):
    everything = {
        "fulfillmentId": "OLD1",
        "shipmentTrackingNumber": "OLD1",
        "lineItems": [{"lineItemId": "10001234567900", "quantity": 2}, {"lineItemId": "10001234567901"}],
    }
    reads(api, WAITING, shipped([everything]))
    with pytest.raises(BadResponse, match="nothing left to ship"):
        ebay.fulfil(push())
    assert not posts(api, FULFILMENTS.format(WAITING))


def test_a_cancelled_order_is_refused(api, ebay):
    reads(api, "34-56789-01234")
    with pytest.raises(BadResponse, match="is cancelled"):
        ebay.fulfil(push(order_external_id="34-56789-01234"))
    assert not posts(api, FULFILMENTS.format("34-56789-01234"))


def test_an_unknown_carrier_is_refused_with_ebays_accepted_list_before_anything_is_sent(api, ebay):
    with pytest.raises(ConfigurationError, match="yamato") as refused:
        ebay.fulfil(push(carrier="yamato"))
    assert "Royal Mail" in refused.value.hint and "Evri" in refused.value.hint
    assert "Yamato" not in refused.value.hint
    assert not api.calls


def test_the_pusher_offers_the_carriers_ebay_takes(connection, tenant_a):
    carriers = ConnectorPusher().carriers(tenant_a.pk, connection.pk)
    assert {"ups", "usps", "royal_mail", "evri", "ontrac"} <= set(carriers)
    assert "yamato" not in carriers


def test_ebays_refusal_reaches_the_push_result_in_its_own_words(api, connection, tenant_a):
    reads(api, WAITING)
    created(api, WAITING, status=400, body=load("error_invalid_tracking.json"))
    result = ConnectorPusher().fulfil(push(tenant_id=tenant_a.pk, connection_id=connection.pk))
    assert not result.ok and not result.retryable
    assert "32300: Invalid shipment tracking number or carrier" in result.message


def test_a_5xx_on_the_create_is_not_sent_again_and_the_next_attempt_finds_what_landed(api, connection, tenant_a):
    reads(api, WAITING)
    created(api, WAITING, status=500, body=load("error_system.json"))
    attempt = push(tenant_id=tenant_a.pk, connection_id=connection.pk)
    result = ConnectorPusher().fulfil(attempt)
    assert not result.ok and result.retryable
    assert len(posts(api, FULFILMENTS.format(WAITING))) == 1

    # eBay had created it after all: the hub's retry reads first and creates nothing.
    landed = {"fulfillmentId": "1Z999AA10123456784", "shipmentTrackingNumber": "1Z999AA10123456784"}
    api.replace(responses.GET, API + FULFILMENTS.format(WAITING), json=shipped([landed]))
    again = ConnectorPusher().fulfil(attempt)
    assert again.ok and again.remote_id == "1Z999AA10123456784"
    assert len(posts(api, FULFILMENTS.format(WAITING))) == 1


def test_a_401_on_the_create_renews_the_token_once_and_sends_it_again(api, ebay):
    reads(api, WAITING)
    token(api, "v^1.1#second")
    api.add(responses.POST, API + FULFILMENTS.format(WAITING), json=load("error_invalid_token.json"), status=401)
    created(api, WAITING)
    assert ebay.fulfil(push()) == "1Z999AA10123456784"
    creates = posts(api, FULFILMENTS.format(WAITING))
    assert [c.request.headers["Authorization"] for c in creates] == ["Bearer v^1.1#first", "Bearer v^1.1#second"]
    assert len(posts(api, "/identity/v1/oauth2/token")) == 2


def test_a_second_401_on_the_create_says_to_reconnect(api, ebay):
    reads(api, WAITING)
    token(api, "v^1.1#second")
    api.add(responses.POST, API + FULFILMENTS.format(WAITING), json=load("error_invalid_token.json"), status=401)
    with pytest.raises(AuthError, match="reconnect with eBay"):
        ebay.fulfil(push())
    assert len(posts(api, FULFILMENTS.format(WAITING))) == 2


def test_a_created_fulfilment_without_a_location_is_known_by_its_tracking_number(api, ebay):
    reads(api, WAITING)
    api.add(responses.POST, API + FULFILMENTS.format(WAITING), body="", status=201)
    assert ebay.fulfil(push()) == "1Z999AA10123456784"


def test_an_order_id_is_sent_escaped_in_the_path(api, ebay):
    token(api)
    api.add(responses.GET, API + "/sell/fulfillment/v1/order/12%2F34", json={"errors": []}, status=404)
    with pytest.raises(NotFound):
        ebay.fulfil(push(order_external_id="12/34"))


# --- Stock ------------------------------------------------------------------------------------------


def stock(**kwargs) -> StockPush:
    return StockPush(**{"tenant_id": 1, "connection_id": 1, "sku": "MUG-BLUE", "quantity": 7, **kwargs})


def test_stock_sets_the_skus_ship_to_home_quantity_only(api, ebay):
    token(api)
    api.add(responses.POST, API + BULK, json=load("bulk_update_price_quantity.json"))
    assert ebay.set_stock(stock()) == "MUG-BLUE"
    assert sent(api, BULK) == {"requests": [{"sku": "MUG-BLUE", "shipToLocationAvailability": {"quantity": 7}}]}


def test_the_hubs_ebay_location_is_the_ship_to_home_quantity(api, ebay):
    token(api)
    api.add(responses.POST, API + BULK, json=load("bulk_update_price_quantity.json"))
    ebay.set_stock(stock(location_id="ebay"))
    assert sent(api, BULK)["requests"][0]["shipToLocationAvailability"] == {"quantity": 7}


def test_a_level_below_zero_is_sent_as_none_left(api, ebay):
    token(api)
    api.add(responses.POST, API + BULK, json=load("bulk_update_price_quantity.json"))
    ebay.set_stock(stock(quantity=-3))
    assert sent(api, BULK)["requests"][0]["shipToLocationAvailability"] == {"quantity": 0}


def test_another_location_is_refused_before_anything_is_sent(api, ebay):
    with pytest.raises(ConfigurationError, match="no location “warehouse-2”"):
        ebay.set_stock(stock(location_id="warehouse-2"))
    assert not api.calls


@pytest.mark.parametrize("status", [200, 207])
def test_a_sku_ebay_refuses_inside_its_answer_is_a_failure_in_its_words(api, ebay, status):
    token(api)
    api.add(responses.POST, API + BULK, json=load("bulk_update_price_quantity_refused.json"), status=status)
    with pytest.raises(BadResponse, match="“MUG-BLUE” \\(400\\): 25759: shipToLocationAvailability quantity") as error:
        ebay.set_stock(stock())
    assert error.value.permanent


def test_a_sku_without_an_inventory_item_is_not_found(api, ebay):
    token(api)
    missing = {"errorId": 25702, "domain": "API_INVENTORY", "category": "REQUEST", "message": "SKU not found"}
    api.add(
        responses.POST, API + BULK, json={"responses": [{"sku": "MUG-BLUE", "statusCode": 404, "errors": [missing]}]}
    )
    with pytest.raises(NotFound, match="25702: SKU not found") as error:
        ebay.set_stock(stock())
    assert "Inventory API" in error.value.hint


def test_a_system_error_for_the_sku_may_be_tried_again(api, ebay):
    token(api)
    failed = {"errorId": 25001, "domain": "API_INVENTORY", "category": "APPLICATION", "message": "System error"}
    api.add(
        responses.POST, API + BULK, json={"responses": [{"sku": "MUG-BLUE", "statusCode": 500, "errors": [failed]}]}
    )
    with pytest.raises(Unavailable) as error:
        ebay.set_stock(stock())
    assert not error.value.permanent


def test_an_answer_that_says_nothing_of_the_sku_is_a_bad_response(api, ebay):
    token(api)
    api.add(responses.POST, API + BULK, json={"responses": [{"sku": "OTHER", "statusCode": 200}]})
    with pytest.raises(BadResponse, match="nothing of the SKU"):
        ebay.set_stock(stock())


def test_a_refused_request_carries_ebays_words(api, ebay):
    token(api)
    invalid = {"errorId": 25709, "domain": "API_INVENTORY", "category": "REQUEST", "message": "Invalid value for sku."}
    api.add(responses.POST, API + BULK, json={"errors": [invalid]}, status=400)
    with pytest.raises(BadResponse, match=r"The platform answered 400 Bad Request: 25709: Invalid value for sku\."):
        ebay.set_stock(stock())


def test_setting_a_quantity_is_idempotent_so_a_5xx_is_retried(api, ebay):
    token(api)
    api.add(responses.POST, API + BULK, json=load("error_system.json"), status=503)
    api.add(responses.POST, API + BULK, json=load("bulk_update_price_quantity.json"))
    assert ebay.set_stock(stock()) == "MUG-BLUE"
    assert len(posts(api, BULK)) == 2


def test_a_401_on_the_stock_update_renews_the_token_once(api, ebay):
    token(api, "v^1.1#old")
    token(api, "v^1.1#new")
    api.add(responses.POST, API + BULK, json=load("error_invalid_token.json"), status=401)
    api.add(responses.POST, API + BULK, json=load("bulk_update_price_quantity.json"))
    assert ebay.set_stock(stock()) == "MUG-BLUE"
    assert [c.request.headers["Authorization"] for c in posts(api, BULK)] == ["Bearer v^1.1#old", "Bearer v^1.1#new"]
