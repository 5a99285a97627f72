"""TikTok Shop shipments and stock pushes against TikTok's documented 202309 shapes (`responses`):
the order read first, Ship Package with TikTok's provider id, an earlier attempt that landed,
packages and partial shipments, carriers TikTok does not offer, TikTok's error codes, a refreshed
token, a 5xx never re-sent, and Update Inventory by synced ids or by seller SKU."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from commerce.pushes import FulfilmentPush, StockPush
from integrations.connectors import tiktok_client
from integrations.connectors.tiktok import TikTokConnector
from integrations.errors import AuthError, BadResponse, ConfigurationError, NotFound, Unavailable
from integrations.http import HttpClient

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "tiktok"
API = "https://open-api.tiktokglobalshop.com"
AUTH = "https://auth.tiktok-shops.com"
ORDER = "/order/202309/orders"
OPTION = "7091146663229654785"
PROVIDERS = f"/logistics/202309/delivery_options/{OPTION}/shipping_providers"
PACKAGE = "1152227193938020930"
SHIP = f"/fulfillment/202309/packages/{PACKAGE}/ship"
WAREHOUSES = "/logistics/202309/warehouses"
SEARCH = "/product/202309/products/search"
PRODUCT = "1729592969712207008"
INVENTORY = f"/product/202309/products/{PRODUCT}/inventory/update"
REFRESH = "/api/v2/token/refresh"
NOW = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
CIPHER = "GCP_XF90igAAAABh00qsWgtvOiGFNqyubMt3"
CREDENTIALS = {
    "app_key": "6a1bcdkq4ubc2",
    "app_secret": "app-secret-for-tests",
    "access_token": "ROW_access-1",
    "access_token_expires_at": "2025-01-20T12:00:00Z",
    "refresh_token": "ROW_refresh-1",
    "refresh_token_expires_at": "2026-01-15T12:00:00Z",
    "shop_cipher": CIPHER,
    "shop_id": "7000714532876273420",
}
LINE_A, LINE_B = "577086512123755123", "577086512123755124"
USPS, UPS = "6617675021119438849", "6617675021119438850"


def load(name: str):
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture(autouse=True)
def clock(monkeypatch):
    monkeypatch.setattr(tiktok_client, "now", lambda: NOW)


@pytest.fixture
def api():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def tiktok(make_connection, tenant_a) -> TikTokConnector:
    connection = make_connection(tenant_a, "tiktok", credentials=dict(CREDENTIALS))
    return TikTokConnector(connection, client=HttpClient(sleep=lambda seconds: None))


def ok(data) -> dict:
    return {"code": 0, "message": "Success", "request_id": "202501151200000101", "data": data}


def refused(code: int, message: str) -> dict:
    return {"code": code, "message": message, "request_id": "2025011512000001019F3A", "data": {}}


def answer(api, method: str, path: str, body: dict, *, status: int = 200) -> None:
    api.add(method, API + path, json=body, status=status)


def order(**changes) -> dict:
    found = copy.deepcopy(load("get_order_detail.json")["data"]["orders"][0])
    found.update(changes)
    return found


def with_items(*items, **changes) -> dict:
    """The fixture's order with these line items: (id, package id, display status, tracking number)."""
    template = order()["line_items"][0]
    lines = [{**template, "id": i, "package_id": p, "display_status": s, "tracking_number": t} for i, p, s, t in items]
    packages = [{"id": p} for p in sorted({item[1] for item in items})]
    return order(line_items=lines, packages=packages, **changes)


def orders_answer(*found) -> dict:
    return ok({"orders": list(found)})


def calls(api, path: str):
    return [c for c in api.calls if urlsplit(c.request.url).path == path]


def query(call) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(call.request.url).query).items()}


def body(call) -> dict:
    return json.loads(call.request.body)


def push(**kwargs) -> FulfilmentPush:
    defaults = {
        "tenant_id": 1,
        "connection_id": 1,
        "order_external_id": "576461413038785752",
        "tracking_number": "9400111899223197428490",
        "carrier": "usps",
    }
    return FulfilmentPush(**{**defaults, **kwargs})


def ready_to_ship(api, found=None) -> None:
    answer(api, responses.GET, ORDER, orders_answer(found or order()))
    answer(api, responses.GET, PROVIDERS, load("shipping_providers.json"))
    answer(api, responses.POST, SHIP, ok({}))


# --- Shipments ------------------------------------------------------------------------------------


def test_a_seller_shipped_package_ships_with_the_tracking_number_and_tiktoks_provider_id(api, tiktok):
    ready_to_ship(api)
    assert tiktok.fulfil(push()) == PACKAGE
    [read] = calls(api, ORDER)
    assert query(read)["ids"] == "576461413038785752"
    assert query(read)["shop_cipher"] == CIPHER
    [ship] = calls(api, SHIP)
    assert body(ship) == {"self_shipment": {"tracking_number": "9400111899223197428490", "shipping_provider_id": USPS}}
    assert query(ship)["shop_cipher"] == CIPHER


def test_an_earlier_attempt_that_landed_is_not_shipped_twice(api, tiktok):
    shipped = with_items(
        (LINE_A, PACKAGE, "IN_TRANSIT", "9400111899223197428490"),
        (LINE_B, PACKAGE, "IN_TRANSIT", "9400111899223197428490"),
        status="IN_TRANSIT",
    )
    answer(api, responses.GET, ORDER, orders_answer(shipped))
    assert tiktok.fulfil(push()) == PACKAGE
    assert [urlsplit(c.request.url).path for c in api.calls] == [ORDER]


@pytest.mark.parametrize(
    ("carrier", "provider"),
    [("usps", USPS), ("ups", UPS), ("amazon_logistics", "6617675021119438852")],  # TikTok's “Amazon Shipping”
)
def test_the_carrier_is_tiktoks_provider_of_that_name(api, tiktok, carrier, provider):
    ready_to_ship(api)
    tiktok.fulfil(push(carrier=carrier))
    assert body(calls(api, SHIP)[0])["self_shipment"]["shipping_provider_id"] == provider


@pytest.mark.parametrize("carrier", ["royal_mail", "pony_express"])
def test_a_carrier_tiktok_does_not_offer_is_refused_with_the_providers_it_does(api, tiktok, carrier):
    ready_to_ship(api)
    with pytest.raises(ConfigurationError) as error:
        tiktok.fulfil(push(carrier=carrier))
    assert "does not offer" in str(error.value)
    assert "TikTok Shop offers: USPS, UPS, FedEx, Amazon Shipping, Other." in str(error.value)
    assert not calls(api, SHIP)


def test_the_providers_are_read_once_per_delivery_option_of_a_connection(api, tiktok):
    other = order(id="576461413038785999")
    answer(api, responses.GET, ORDER, orders_answer(order()))
    answer(api, responses.GET, ORDER, orders_answer(other))
    answer(api, responses.GET, PROVIDERS, load("shipping_providers.json"))
    answer(api, responses.POST, SHIP, ok({}))
    tiktok.fulfil(push())
    tiktok.fulfil(push(order_external_id="576461413038785999", tracking_number="1Z999AA10123456784", carrier="ups"))
    assert len(calls(api, PROVIDERS)) == 1
    assert [body(c)["self_shipment"]["shipping_provider_id"] for c in calls(api, SHIP)] == [USPS, UPS]


def test_lines_that_fill_a_package_ship_that_package(api, tiktok):
    found = with_items(
        (LINE_A, PACKAGE, "AWAITING_SHIPMENT", ""),
        (LINE_B, "1152227193938020999", "AWAITING_SHIPMENT", ""),
    )
    ready_to_ship(api, found)
    assert tiktok.fulfil(push(lines=((LINE_A, 1),))) == PACKAGE
    assert len(calls(api, SHIP)) == 1


def test_a_partial_package_is_refused_saying_it_needs_splitting_in_seller_center(api, tiktok):
    ready_to_ship(api)  # both of the fixture's line items are in one package
    with pytest.raises(BadResponse, match="Partial shipments need splitting in Seller Center") as error:
        tiktok.fulfil(push(lines=((LINE_A, 1),)))
    assert LINE_B in str(error.value)
    assert not calls(api, SHIP)


@pytest.mark.parametrize("lines", [(), ((LINE_A, 1), (LINE_B, 1))])
def test_an_order_with_several_packages_to_ship_is_refused_without_a_package_per_push(api, tiktok, lines):
    found = with_items(
        (LINE_A, PACKAGE, "AWAITING_SHIPMENT", ""),
        (LINE_B, "1152227193938020999", "AWAITING_SHIPMENT", ""),
    )
    ready_to_ship(api, found)
    with pytest.raises(BadResponse, match="has 2 packages to ship"):
        tiktok.fulfil(push(lines=lines))
    assert not calls(api, SHIP)


def test_without_lines_the_package_still_awaiting_shipment_ships(api, tiktok):
    found = with_items(
        (LINE_A, "1152227193938020999", "IN_TRANSIT", "1Z-EARLIER"),
        (LINE_B, PACKAGE, "AWAITING_SHIPMENT", ""),
        status="PARTIALLY_SHIPPING",
    )
    ready_to_ship(api, found)
    assert tiktok.fulfil(push()) == PACKAGE


@pytest.mark.parametrize(
    ("lines", "error", "message"),
    [
        ((("577086512199999999", 1),), NotFound, "has no line item 577086512199999999"),
        (((LINE_A, 2),), BadResponse, "more units than line item"),
    ],
)
def test_lines_tiktok_cannot_ship_are_refused(api, tiktok, lines, error, message):
    ready_to_ship(api)
    with pytest.raises(error, match=message):
        tiktok.fulfil(push(lines=lines))
    assert not calls(api, SHIP)


def test_a_line_already_shipped_under_another_number_is_refused(api, tiktok):
    found = with_items(
        (LINE_A, PACKAGE, "IN_TRANSIT", "1Z-EARLIER"),
        (LINE_B, PACKAGE, "AWAITING_SHIPMENT", ""),
        status="PARTIALLY_SHIPPING",
    )
    ready_to_ship(api, found)
    with pytest.raises(BadResponse, match="no longer awaiting shipment"):
        tiktok.fulfil(push(lines=((LINE_A, 1),)))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"shipping_type": "TIKTOK"}, "TikTok Shipping label"),
        ({"fulfillment_type": "FULFILLMENT_BY_TIKTOK"}, "fulfilled by TikTok"),
        ({"status": "ON_HOLD"}, "is ON_HOLD"),
        ({"status": "CANCELLED"}, "is CANCELLED"),
        ({"packages": [], "line_items": [dict(order()["line_items"][0], package_id="")]}, "in a package yet"),
    ],
)
def test_an_order_the_seller_cannot_ship_from_the_hub_is_refused(api, tiktok, changes, message):
    ready_to_ship(api, order(**changes))
    with pytest.raises(BadResponse, match=message) as error:
        tiktok.fulfil(push())
    assert error.value.permanent
    assert not calls(api, SHIP)


def test_a_shipment_without_a_tracking_number_is_refused_before_anything_is_sent(api, tiktok):
    with pytest.raises(ConfigurationError, match="only with its tracking number"):
        tiktok.fulfil(push(tracking_number=""))
    assert not api.calls


def test_an_order_tiktok_does_not_know(api, tiktok):
    answer(api, responses.GET, ORDER, orders_answer())
    with pytest.raises(NotFound, match="no order 576461413038785752"):
        tiktok.fulfil(push())


def test_tiktoks_refusal_is_a_bad_response_with_its_message_and_request_id(api, tiktok):
    answer(api, responses.GET, ORDER, orders_answer(order()))
    answer(api, responses.GET, PROVIDERS, load("shipping_providers.json"))
    answer(api, responses.POST, SHIP, refused(21011001, "The tracking number is invalid for this shipping provider."))
    with pytest.raises(BadResponse) as error:
        tiktok.fulfil(push())
    message = str(error.value)
    assert f"TikTok Shop refused to ship package {PACKAGE}" in message
    assert "21011001: The tracking number is invalid for this shipping provider." in message
    assert "request 2025011512000001019F3A" in message
    assert error.value.permanent
    assert len(calls(api, SHIP)) == 1


def test_an_expired_token_is_refreshed_once_and_the_shipment_sent_with_the_new_one(api, tiktok):
    answer(api, responses.GET, ORDER, orders_answer(order()))
    answer(api, responses.GET, PROVIDERS, load("shipping_providers.json"))
    answer(api, responses.POST, SHIP, load("error_access_token_expired.json"))
    answer(api, responses.POST, SHIP, ok({}))
    fresh = load("token_refresh.json")
    fresh["data"].update(access_token="ROW_access-2", access_token_expire_in=int((NOW + timedelta(days=7)).timestamp()))
    api.add(responses.GET, AUTH + REFRESH, json=fresh)
    assert tiktok.fulfil(push()) == PACKAGE
    assert len(calls(api, REFRESH)) == 1
    assert [c.request.headers["x-tts-access-token"] for c in calls(api, SHIP)] == ["ROW_access-1", "ROW_access-2"]


def test_a_token_refused_after_the_refresh_asks_to_reconnect_without_shipping_again(api, tiktok):
    answer(api, responses.GET, ORDER, orders_answer(order()))
    answer(api, responses.GET, PROVIDERS, load("shipping_providers.json"))
    answer(api, responses.POST, SHIP, load("error_access_token_expired.json"))
    fresh = load("token_refresh.json")
    fresh["data"].update(access_token="ROW_access-2", access_token_expire_in=int((NOW + timedelta(days=7)).timestamp()))
    api.add(responses.GET, AUTH + REFRESH, json=fresh)
    with pytest.raises(AuthError, match="reconnect TikTok Shop"):
        tiktok.fulfil(push())
    assert len(calls(api, REFRESH)) == 1
    assert len(calls(api, SHIP)) == 2


@pytest.mark.parametrize(
    "failure",
    [
        {"status": 503, "body": "Service Unavailable"},
        {"status": 200, "json": refused(36009003, "Internal error. Please try again later.")},
    ],
)
def test_a_failed_shipment_is_not_sent_again_and_may_be_retried_later(api, tiktok, failure):
    answer(api, responses.GET, ORDER, orders_answer(order()))
    answer(api, responses.GET, PROVIDERS, load("shipping_providers.json"))
    api.add(responses.POST, API + SHIP, **failure)
    with pytest.raises(Unavailable) as error:
        tiktok.fulfil(push())
    assert not error.value.permanent  # the hub tries again later, reading the order first
    assert len(calls(api, SHIP)) == 1


# --- Stock ----------------------------------------------------------------------------------------


def stock(**kwargs) -> StockPush:
    return StockPush(**{"tenant_id": 1, "connection_id": 1, "sku": "TEE-RED-L", "quantity": 7, **kwargs})


def search_answer(*products) -> dict:
    return ok({"products": list(products), "total_count": len(products), "next_page_token": ""})


def fixture_products() -> list[dict]:
    return copy.deepcopy(load("search_products.json")["data"]["products"])


def test_stock_of_a_synced_sku_goes_to_the_default_sales_warehouse(api, tiktok):
    answer(api, responses.GET, WAREHOUSES, load("warehouses.json"))
    answer(api, responses.POST, INVENTORY, ok({}))
    sku = tiktok.set_stock(stock(product_external_id=PRODUCT, variant_external_id="1729592969712207013"))
    assert sku == "1729592969712207013"
    [update] = calls(api, INVENTORY)
    assert body(update) == {
        "skus": [{"id": "1729592969712207013", "inventory": [{"warehouse_id": "7068517275539719942", "quantity": 7}]}]
    }
    assert query(update)["shop_cipher"] == CIPHER
    assert not calls(api, SEARCH)


def test_the_default_warehouse_is_read_once_per_connection(api, tiktok):
    answer(api, responses.GET, WAREHOUSES, load("warehouses.json"))
    answer(api, responses.POST, INVENTORY, ok({}))
    ids = {"product_external_id": PRODUCT, "variant_external_id": "1729592969712207013"}
    tiktok.set_stock(stock(**ids))
    tiktok.set_stock(stock(**ids, quantity=3))
    assert len(calls(api, WAREHOUSES)) == 1
    assert [body(c)["skus"][0]["inventory"][0]["quantity"] for c in calls(api, INVENTORY)] == [7, 3]


def test_stock_of_a_sku_not_synced_is_found_by_seller_sku(api, tiktok):
    answer(api, responses.POST, SEARCH, search_answer(*fixture_products()))
    answer(api, responses.POST, INVENTORY, ok({}))
    assert tiktok.set_stock(stock(location_id="7068517275539719961")) == "1729592969712207013"
    [search] = calls(api, SEARCH)
    assert body(search) == {"seller_skus": ["TEE-RED-L"]}
    assert 1 <= int(query(search)["page_size"]) <= 100
    assert body(calls(api, INVENTORY)[0])["skus"][0]["inventory"] == [
        {"warehouse_id": "7068517275539719961", "quantity": 7}
    ]
    assert not calls(api, WAREHOUSES)  # the push named its warehouse


def deleted(product: dict) -> dict:
    return {**product, "status": "DELETED"}


@pytest.mark.parametrize(
    ("found", "error", "message"),
    [
        ([], NotFound, "no SKU with the seller SKU “TEE-RED-L”"),
        (fixture_products()[1:], NotFound, "no SKU with the seller SKU"),  # a search hit, not this SKU
        ([deleted(fixture_products()[0])], NotFound, "no SKU with the seller SKU"),
        (
            [fixture_products()[0], {**fixture_products()[0], "id": "1729592969712207999"}],
            BadResponse,
            "Several TikTok Shop SKUs",
        ),
    ],
)
def test_a_sku_tiktok_cannot_take_stock_for(api, tiktok, found, error, message):
    answer(api, responses.POST, SEARCH, search_answer(*found))
    with pytest.raises(error, match=message):
        tiktok.set_stock(stock(location_id="7068517275539719942"))
    assert not calls(api, INVENTORY)


def test_a_shop_without_a_default_sales_warehouse_is_told_to_choose_one(api, tiktok):
    warehouses = load("warehouses.json")
    warehouses["data"]["warehouses"] = [w for w in warehouses["data"]["warehouses"] if w["type"] != "SALES_WAREHOUSE"]
    answer(api, responses.GET, WAREHOUSES, warehouses)
    with pytest.raises(BadResponse, match="no default sales warehouse"):
        tiktok.set_stock(stock(product_external_id=PRODUCT, variant_external_id="1729592969712207013"))
    assert not calls(api, INVENTORY)


def test_tiktoks_refusal_of_a_stock_level_carries_its_message(api, tiktok):
    answer(api, responses.POST, INVENTORY, refused(12052700, "The SKU does not belong to this product."))
    with pytest.raises(BadResponse) as error:
        tiktok.set_stock(stock(product_external_id=PRODUCT, variant_external_id="1", location_id="7068517275539719942"))
    assert "refused the stock level for “TEE-RED-L”" in str(error.value)
    assert "12052700: The SKU does not belong to this product., request 2025011512000001019F3A" in str(error.value)


def test_negative_stock_is_refused_before_anything_is_sent(api, tiktok):
    with pytest.raises(BadResponse, match="no negative stock"):
        tiktok.set_stock(stock(quantity=-2, product_external_id=PRODUCT, variant_external_id="1"))
    assert not api.calls
