"""WooCommerce fulfilment and stock pushes over its REST API (`responses`): the Shipment Tracking
meta, completing the order, the customer note, partial shipments, an earlier attempt that landed,
WooCommerce's own reasons for a refusal, and stock on products and variations."""

from __future__ import annotations

import json

import pytest
import responses
from responses import matchers

from commerce.pushes import FulfilmentPush, StockPush
from integrations.connectors.woocommerce import WooCommerceConnector
from integrations.errors import BadResponse, ConfigurationError, NotFound, Unavailable
from integrations.http import HttpClient

SITE = "https://shop.example.com"
API = f"{SITE}/wp-json/wc/v3"
CREDENTIALS = {"site_url": SITE, "consumer_key": "ck_x", "consumer_secret": "cs_x"}
ORDER = {
    "id": 727,
    "status": "processing",
    "line_items": [
        {"id": 315, "name": "Canvas Tote", "quantity": 2},
        {"id": 316, "name": "Wool Beanie", "quantity": 1},
    ],
    "meta_data": [{"id": 1, "key": "_billing_vat", "value": "x"}],
}


@pytest.fixture
def api():
    with responses.RequestsMock() as mock:
        yield mock


@pytest.fixture
def woo(make_connection, tenant_a) -> WooCommerceConnector:
    connection = make_connection(tenant_a, platform="woocommerce", credentials=CREDENTIALS)
    return WooCommerceConnector(connection, client=HttpClient(sleep=lambda s: None))


def push(**kwargs) -> FulfilmentPush:
    defaults = {
        "tenant_id": 1,
        "connection_id": 1,
        "order_external_id": "727",
        "tracking_number": "1Z999",
        "carrier": "ups",
    }
    return FulfilmentPush(**{**defaults, **kwargs})


def body(call) -> dict:
    return json.loads(call.request.body)


def test_a_whole_order_is_tracked_completed_and_noted_for_the_customer(api, woo):
    api.get(f"{API}/orders/727", json=ORDER)
    api.put(f"{API}/orders/727", json={**ORDER, "status": "completed"})
    api.post(f"{API}/orders/727/notes", json={"id": 9}, status=201)
    assert (
        woo.fulfil(push(tracking_url="https://www.ups.com/track?tracknum=1Z999", notify_customer=True)) == "727:1Z999"
    )
    update = body(api.calls[1])
    assert update["status"] == "completed"
    [meta] = update["meta_data"]
    assert meta["key"] == "_wc_shipment_tracking_items"
    [item] = meta["value"]
    assert (item["tracking_provider"], item["tracking_number"]) == ("UPS", "1Z999")
    assert item["date_shipped"].isdigit() and len(item["tracking_id"]) == 32
    assert body(api.calls[2]) == {
        "note": "Shipped with UPS, tracking number 1Z999: https://www.ups.com/track?tracknum=1Z999",
        "customer_note": True,
    }


def test_a_partial_shipment_leaves_the_order_open_and_lists_what_shipped(api, woo):
    api.get(f"{API}/orders/727", json=ORDER)
    api.put(f"{API}/orders/727", json=ORDER)
    api.post(f"{API}/orders/727/notes", json={"id": 9}, status=201)
    woo.fulfil(push(lines=(("315", 1),), carrier="royal_mail"))
    update = body(api.calls[1])
    assert "status" not in update
    assert update["meta_data"][0]["value"][0]["tracking_provider"] == "Royal Mail"
    assert body(api.calls[2])["note"] == "Shipped with Royal Mail, tracking number 1Z999. Items: 1 × Canvas Tote."  # noqa: RUF001
    assert body(api.calls[2])["customer_note"] is False


def test_a_second_shipment_keeps_the_first_tracking_number(api, woo):
    first = {"tracking_provider": "UPS", "tracking_number": "1ZFIRST", "date_shipped": "1700000000", "tracking_id": "a"}
    api.get(
        f"{API}/orders/727", json={**ORDER, "meta_data": [{"key": "_wc_shipment_tracking_items", "value": [first]}]}
    )
    api.put(f"{API}/orders/727", json=ORDER)
    api.post(f"{API}/orders/727/notes", json={"id": 9}, status=201)
    woo.fulfil(push(lines=(("315", 2), ("316", 1))))
    update = body(api.calls[1])
    assert [i["tracking_number"] for i in update["meta_data"][0]["value"]] == ["1ZFIRST", "1Z999"]
    assert update["status"] == "completed"  # the lines cover the whole order


def test_an_earlier_attempt_that_landed_writes_nothing(api, woo):
    landed = {"tracking_provider": "UPS", "tracking_number": "1Z999"}
    api.get(
        f"{API}/orders/727", json={**ORDER, "meta_data": [{"key": "_wc_shipment_tracking_items", "value": [landed]}]}
    )
    assert woo.fulfil(push()) == "727:1Z999"
    assert len(api.calls) == 1


@pytest.mark.parametrize("status", ["cancelled", "refunded", "failed"])
def test_an_order_that_cannot_ship_is_refused_before_writing(api, woo, status):
    api.get(f"{API}/orders/727", json={**ORDER, "status": status})
    with pytest.raises(BadResponse, match=f"is {status}"):
        woo.fulfil(push())
    assert len(api.calls) == 1


def test_a_line_the_order_does_not_have(api, woo):
    api.get(f"{API}/orders/727", json=ORDER)
    with pytest.raises(NotFound, match="no line 999"):
        woo.fulfil(push(lines=(("999", 1),)))


def test_an_unknown_carrier_is_refused_with_the_accepted_list(api, woo):
    api.get(f"{API}/orders/727", json=ORDER)
    with pytest.raises(ConfigurationError, match="pony_express") as refused:
        woo.fulfil(push(carrier="pony_express"))
    assert "Royal Mail" in refused.value.hint


def test_woocommerces_own_reason_is_in_the_error(api, woo):
    api.get(f"{API}/orders/727", json=ORDER)
    api.put(
        f"{API}/orders/727",
        status=400,
        json={"code": "woocommerce_rest_shop_order_invalid_id", "message": "Invalid ID.", "data": {"status": 400}},
    )
    with pytest.raises(BadResponse, match=r"The platform answered 400 Bad Request: Invalid ID\.") as error:
        woo.fulfil(push())
    assert error.value.permanent


def test_the_note_is_sent_once_even_when_the_store_fails(api, woo):
    api.get(f"{API}/orders/727", json=ORDER)
    api.put(f"{API}/orders/727", json=ORDER)
    api.post(f"{API}/orders/727/notes", status=503, body="busy")
    with pytest.raises(Unavailable):
        woo.fulfil(push())
    assert [c.request.method for c in api.calls] == ["GET", "PUT", "POST"]


# --- Stock ----------------------------------------------------------------------------------------


def stock(**kwargs) -> StockPush:
    return StockPush(**{"tenant_id": 1, "connection_id": 1, "sku": "TOTE-NAT", "quantity": 7, **kwargs})


def test_stock_of_a_simple_product_found_by_sku(api, woo):
    api.get(
        f"{API}/products",
        match=[matchers.query_param_matcher({"sku": "TOTE-NAT"})],
        json=[{"id": 44, "sku": "TOTE-NAT"}],
    )
    api.put(
        f"{API}/products/44",
        json={"id": 44},
        match=[matchers.json_params_matcher({"manage_stock": True, "stock_quantity": 7})],
    )
    assert woo.set_stock(stock()) == "44"


def test_stock_of_a_variation_goes_to_its_product(api, woo):
    api.put(
        f"{API}/products/44/variations/45",
        json={"id": 45},
        match=[matchers.json_params_matcher({"manage_stock": True, "stock_quantity": 0})],
    )
    assert woo.set_stock(stock(quantity=0, product_external_id="44", variant_external_id="45")) == "45"


def test_an_unknown_sku(api, woo):
    api.get(f"{API}/products", json=[{"id": 50, "sku": "TOTE-NAT-XL"}])
    with pytest.raises(NotFound, match="no product with the SKU") as error:
        woo.set_stock(stock())
    assert "sync products first" in error.value.hint
