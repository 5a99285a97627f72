"""The Shopify connector: request shape, mapping and errors against recorded payloads (`responses`),
and pagination, throttling and faults against a local fake Shopify (`tests.fakes.shopify_server`).

Nothing here sleeps for real: every sleep goes to a `FakeClock`, which the fake server's cost
bucket also runs on, so a wait restores exactly the points the bucket needed."""

from __future__ import annotations

import copy
import json
import logging
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs

import pytest
import requests
import responses
from django.utils import timezone
from responses.registries import OrderedRegistry

from commerce.records import CustomerRecord, InventoryRecord, OrderRecord, ProductRecord
from integrations.connectors import get_connector
from integrations.connectors.base import Failed
from integrations.connectors.shopify import ShopifyConnector
from integrations.errors import (
    AuthError,
    BadResponse,
    ConfigurationError,
    PermissionDenied,
    RateLimited,
    Unavailable,
)
from integrations.models import Connection
from tests.fakes.shopify_server import FakeClock, FakeShopify

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "shopify"
SHOP = "https://alpha-goods.myshopify.com"
ENDPOINT = f"{SHOP}/admin/api/2025-10/graphql.json"
TOKEN_URL = f"{SHOP}/admin/oauth/access_token"
TOKEN = "shpat_0123456789abcdef0123456789abcd"
SINCE = {"since": "2025-03-01T00:00:00Z"}
BEFORE_ALL = {"since": "2024-12-01T00:00:00Z"}  # earlier than every record of the fake shop


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def sent(api: responses.RequestsMock, index: int) -> dict:
    return json.loads(api.calls[index].request.body)


def records(connector: ShopifyConnector, stream: str, cursor: dict | None = None, **kwargs) -> list:
    return [record for page in connector.read(stream, cursor, **kwargs) for record in page.records]


@pytest.fixture(autouse=True)
def clock(monkeypatch) -> FakeClock:
    return FakeClock().install(monkeypatch)


@pytest.fixture
def api():
    with responses.RequestsMock(registry=OrderedRegistry) as mock:
        yield mock


@pytest.fixture
def connection(make_connection, tenant_a) -> Connection:
    return make_connection(tenant_a, credentials={"shop_domain": "alpha-goods.myshopify.com", "access_token": TOKEN})


@pytest.fixture
def connector(connection, clock) -> ShopifyConnector:
    return ShopifyConnector(connection, sleep=clock.sleep)


@pytest.fixture
def fake_shopify(settings, clock):
    """Start fake shops (`fake_shopify(orders=25, ...)`), all stopped after the test."""
    settings.INTEGRATIONS_ALLOW_PRIVATE_URLS = True
    started: list[FakeShopify] = []

    def start(**kwargs) -> FakeShopify:
        kwargs.setdefault("clock", clock)
        started.append(FakeShopify(**kwargs).start())
        return started[-1]

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def shop(fake_shopify) -> FakeShopify:
    return fake_shopify(orders=25, products=6, customers=12)


@pytest.fixture
def connect(make_connection, tenant_a, clock):
    """A connector to a fake shop, with small pages so a few records span several."""

    def make(server: FakeShopify, **credentials) -> ShopifyConnector:
        credentials = credentials or {"access_token": "shpat_fake_token"}
        connection = make_connection(
            tenant_a, base_url=server.url, credentials={"shop_domain": "fake-shop.myshopify.com", **credentials}
        )
        connector = ShopifyConnector(connection, sleep=clock.sleep)
        connector.page_sizes = {"orders": 10, "products": 4, "customers": 5, "inventory": 5}
        return connector

    return make


# --- Mapping: one fixture per stream ---------------------------------------------------------------


def test_orders_map_money_dates_statuses_lines_refunds_and_customer(api, connector):
    api.post(ENDPOINT, json=fixture("orders.json"))

    order = records(connector, "orders", SINCE)[0]

    assert isinstance(order, OrderRecord)
    assert order.external_id == "gid://shopify/Order/5501234567890"
    assert order.number == "1001"
    assert (order.currency, order.total, order.subtotal) == ("USD", Decimal("205.18"), Decimal("199.98"))
    assert (order.discounts, order.shipping, order.tax) == (Decimal("20.00"), Decimal("10.00"), Decimal("15.20"))
    assert order.placed_at == datetime(2025, 3, 14, 9, 26, 53, tzinfo=UTC)
    assert order.placed_at.tzinfo == UTC
    assert order.updated_at == datetime(2025, 3, 20, 11, 0, tzinfo=UTC)
    assert (order.status, order.financial_status, order.fulfillment_status) == (
        "completed",
        "partially_refunded",
        "fulfilled",
    )
    first, second = order.lines
    assert (first.title, first.quantity, first.unit_price, first.total) == (
        "IPod Nano - 8gb",
        1,
        Decimal("149.99"),
        Decimal("129.99"),
    )
    assert (first.sku, first.variant_external_id) == ("IPOD2008GREEN", "gid://shopify/ProductVariant/39072856")
    assert (second.quantity, second.total, second.variant_external_id) == (2, Decimal("49.98"), "")
    [refund] = order.refunds
    assert (refund.amount, refund.currency, refund.reason) == (Decimal("49.99"), "USD", "Damaged in transit")
    assert refund.refunded_at == datetime(2025, 3, 18, 16, 2, 11, tzinfo=UTC)
    assert isinstance(order.customer, CustomerRecord)
    assert (order.customer.email, order.customer.country, order.customer.accepts_marketing) == (
        "ayumu@example.com",
        "CA",
        True,
    )
    assert order.billing_address["city"] == "Ottawa"
    assert order.shipping_address["country"] == "CA"
    assert order.raw["totalPriceSet"]["presentmentMoney"] == {"amount": "188.78", "currencyCode": "EUR"}


def test_a_cancelled_order_maps_to_cancelled_and_voided(api, connector):
    api.post(ENDPOINT, json=fixture("orders.json"))

    order = records(connector, "orders", SINCE)[1]

    assert (order.status, order.financial_status, order.fulfillment_status) == ("cancelled", "voided", "unfulfilled")
    assert order.customer is None
    assert order.email == ""
    assert order.billing_address == {}


def test_products_map_variants_with_price_and_stock_per_location(api, connector):
    api.post(ENDPOINT, json={"data": {"shop": {"currencyCode": "USD"}}})
    api.post(ENDPOINT, json=fixture("products.json"))

    product, draft = records(connector, "products", SINCE)

    assert isinstance(product, ProductRecord)
    assert (product.title, product.vendor, product.product_type, product.status) == (
        "IPod Nano - 8GB",
        "Apple",
        "Cult Products",
        "active",
    )
    green, pink = product.variants
    assert (green.external_id, green.sku, green.price, green.currency) == (
        "gid://shopify/ProductVariant/39072856",
        "IPOD2008GREEN",
        Decimal("149.99"),
        "USD",
    )
    assert [(level.external_id, level.location_name, level.available) for level in green.inventory] == [
        ("gid://shopify/InventoryItem/30322695@gid://shopify/Location/346779380", "Ottawa Store", 12),
        ("gid://shopify/InventoryItem/30322695@gid://shopify/Location/346779381", "Toronto Warehouse", 0),
    ]
    assert green.inventory[0].variant_external_id == green.external_id
    assert pink.price == Decimal("159.99")
    assert (draft.status, draft.variants) == ("draft", [])


def test_customers_map_contact_marketing_and_utc_dates(api, connector):
    api.post(ENDPOINT, json=fixture("customers.json"))

    ayumu, ng = records(connector, "customers", SINCE)

    assert (ayumu.external_id, ayumu.email, ayumu.first_name, ayumu.last_name) == (
        "gid://shopify/Customer/544365967",
        "ayumu@example.com",
        "Ayumu",
        "Hirano",
    )
    assert (ayumu.phone, ayumu.country, ayumu.tags, ayumu.accepts_marketing) == (
        "+16135551111",
        "CA",
        ["vip", "wholesale"],
        True,
    )
    assert (ng.first_name, ng.country, ng.phone, ng.accepts_marketing) == ("", "", "", False)
    assert ng.updated_at == datetime(2025, 3, 2, 8, 15, tzinfo=UTC)


def test_inventory_yields_one_record_per_item_and_location(api, connector):
    api.post(ENDPOINT, json=fixture("inventory_items.json"))

    levels = records(connector, "inventory", SINCE)

    assert all(isinstance(level, InventoryRecord) for level in levels)
    assert [(level.external_id, level.variant_external_id, level.available) for level in levels] == [
        (
            "gid://shopify/InventoryItem/30322695@gid://shopify/Location/346779380",
            "gid://shopify/ProductVariant/39072856",
            12,
        ),
        (
            "gid://shopify/InventoryItem/30322695@gid://shopify/Location/346779381",
            "gid://shopify/ProductVariant/39072856",
            0,
        ),
        (
            "gid://shopify/InventoryItem/30322696@gid://shopify/Location/346779380",
            "gid://shopify/ProductVariant/39072857",
            3,
        ),
    ]
    assert levels[1].location_id == "gid://shopify/Location/346779381"
    assert levels[1].updated_at == datetime(2025, 3, 9, 8, 0, tzinfo=UTC)


def test_a_malformed_node_is_quarantined_and_the_rest_of_the_page_is_read(api, connector):
    body = fixture("orders.json")
    body["data"]["orders"]["nodes"][0]["totalPriceSet"]["shopMoney"]["amount"] = "lots"
    api.post(ENDPOINT, json=body)

    failed, order = records(connector, "orders", SINCE)

    assert isinstance(failed, Failed)
    assert failed.external_id == "gid://shopify/Order/5501234567890"
    assert "lots" in failed.error
    assert failed.payload["name"] == "#1001"
    assert isinstance(order, OrderRecord)


def test_a_bad_inventory_level_is_quarantined_alone(api, connector):
    body = fixture("inventory_items.json")
    del body["data"]["inventoryItems"]["nodes"][0]["inventoryLevels"]["nodes"][1]["quantities"]
    api.post(ENDPOINT, json=body)

    levels = records(connector, "inventory", SINCE)

    assert [type(level).__name__ for level in levels] == ["InventoryRecord", "Failed", "InventoryRecord"]
    assert levels[1].external_id == "gid://shopify/InventoryItem/30322695@gid://shopify/Location/346779381"


# --- Request shape ---------------------------------------------------------------------------------


def test_requests_go_to_the_pinned_version_with_the_token_and_the_updated_at_filter(api, connector, settings):
    settings.SHOPIFY_API_VERSION = "2025-07"
    api.post(f"{SHOP}/admin/api/2025-07/graphql.json", json=fixture("orders.json"))

    records(connector, "orders", SINCE)

    request = api.calls[0].request
    assert request.headers["X-Shopify-Access-Token"] == TOKEN
    assert request.headers["Content-Type"] == "application/json"
    body = sent(api, 0)
    assert body["operationName"] == "HubOrders"
    assert "sortKey: UPDATED_AT" in body["query"]
    assert "pageInfo { hasNextPage endCursor }" in body["query"]
    assert body["variables"] == {"first": 25, "after": None, "query": "updated_at:>='2025-03-01T00:00:00Z'"}


def test_the_base_url_replaces_the_shop_domain(api, make_connection, tenant_a):
    connection = make_connection(
        tenant_a, base_url="https://proxy.example.com/", credentials={"shop_domain": "x", "access_token": TOKEN}
    )
    api.post("https://proxy.example.com/admin/api/2025-10/graphql.json", json=fixture("customers.json"))

    assert len(records(get_connector(connection), "customers", SINCE)) == 2


def test_a_last_page_stores_the_latest_update_seen_as_the_next_since(api, connector):
    api.post(ENDPOINT, json=fixture("orders.json"))

    pages = list(connector.read("orders", SINCE))

    assert [page.cursor for page in pages] == [{"since": "2025-03-21T09:30:00Z"}]


def test_a_full_read_ignores_the_cursor(api, connector):
    api.post(ENDPOINT, json={"data": {"ordersCount": {"count": 2, "precision": "EXACT"}}})
    api.post(ENDPOINT, json=fixture("orders.json"))

    pages = list(connector.read("orders", {"since": "2025-03-01T00:00:00Z", "after": "abc"}, full=True))

    assert sent(api, 0)["operationName"] == "HubCount"
    assert sent(api, 1)["variables"] == {"first": 25, "after": None, "query": None}
    assert pages[0].total == 2


def test_a_nested_connection_cut_short_is_fetched_to_its_end(api, connector):
    body = fixture("orders.json")
    body["data"]["orders"]["nodes"] = body["data"]["orders"]["nodes"][:1]
    line_items = body["data"]["orders"]["nodes"][0]["lineItems"]
    line_items["pageInfo"] = {"hasNextPage": True, "endCursor": "cursor-25"}
    extra = copy.deepcopy(line_items["nodes"][0]) | {"id": "gid://shopify/LineItem/999"}
    more = {"nodes": [extra], "pageInfo": {"hasNextPage": False, "endCursor": "cursor-26"}}
    api.post(ENDPOINT, json=body)
    api.post(ENDPOINT, json={"data": {"node": {"lineItems": more}}})

    [order] = records(connector, "orders", SINCE)

    assert [line.external_id for line in order.lines][-1] == "gid://shopify/LineItem/999"
    assert len(order.lines) == 3
    assert sent(api, 1)["variables"] == {"id": "gid://shopify/Order/5501234567890", "after": "cursor-25"}
    assert "... on Order" in sent(api, 1)["query"]


def test_a_query_shopify_finds_too_costly_is_sent_again_with_smaller_pages(api, connector):
    api.post(ENDPOINT, json=fixture("max_cost_exceeded.json"))
    api.post(ENDPOINT, json=fixture("orders.json"))

    assert len(records(connector, "orders", SINCE)) == 2
    assert sent(api, 1)["variables"]["first"] == 12


def test_malformed_json_is_a_bad_response(api, connector):
    api.post(ENDPOINT, body='{"data": {"orders": ')

    with pytest.raises(BadResponse, match="malformed JSON"):
        records(connector, "orders", SINCE)


def test_a_denied_field_is_a_permission_error_naming_the_scope(api, connector):
    api.post(ENDPOINT, json=fixture("access_denied.json"))

    with pytest.raises(PermissionDenied) as caught:
        records(connector, "customers", SINCE)

    assert "read_customers" in caught.value.hint


def test_an_unknown_stream_is_a_configuration_error(connector):
    with pytest.raises(ConfigurationError):
        records(connector, "payouts")


# --- check() ---------------------------------------------------------------------------------------


def test_check_reports_the_shop_scopes_and_samples(api, connector):
    api.post(ENDPOINT, json=fixture("check.json"))

    result = connector.check()

    assert result.ok, result.message
    assert result.message == "Connected to Alpha Goods."
    assert "write_products" in result.granted
    assert result.missing == []  # write_products grants read_products
    assert result.samples == {"orders": 1520, "products": 84, "customers": 960, "inventory": 212}
    assert result.warnings == []
    assert result.details["domain"] == "alpha-goods.myshopify.com"
    assert sent(api, 0)["operationName"] == "HubCheck"


def test_check_warns_that_only_60_days_of_orders_are_visible_without_read_all_orders(api, connector):
    api.post(ENDPOINT, json=fixture("check_without_read_all_orders.json"))

    result = connector.check()

    assert result.ok
    assert result.missing == ["read_all_orders"]
    assert "only the last 60 days of orders are visible" in result.warnings[0].lower()


def test_check_fails_naming_a_missing_read_orders(api, connector):
    api.post(ENDPOINT, json=fixture("check_without_read_orders.json"))

    result = connector.check()

    assert not result.ok
    assert result.error_code == "permission"
    assert "lacks read_orders" in result.hint
    assert "read_orders" in result.missing
    assert "orders" not in result.samples


@pytest.mark.parametrize(
    ("status", "code", "hint"),
    [
        (401, "auth", "check the access token"),
        (403, "permission", "the app lacks read_orders"),
        (404, "not_found", "check the shop domain"),
        (503, "unavailable", ""),
    ],
)
def test_check_turns_an_error_status_into_a_hint_without_retrying(api, connector, status, code, hint):
    api.post(ENDPOINT, status=status, json={"errors": "no"})

    result = connector.check()

    assert not result.ok
    assert result.error_code == code
    assert hint in result.hint.lower()
    assert len(api.calls) == 1


def test_check_says_when_the_sites_https_is_misconfigured(api, connector):
    api.post(ENDPOINT, body=requests.exceptions.SSLError("certificate verify failed"))

    result = connector.check()

    assert not result.ok
    assert "https is misconfigured" in result.hint.lower()


def test_check_against_the_fake_shop(shop, connect):
    result = connect(shop).check()

    assert result.ok, result.message
    assert result.samples == {"orders": 25, "products": 6, "customers": 12, "inventory": 12}


# --- Client-credentials tokens ---------------------------------------------------------------------


@pytest.fixture
def app_connection(make_connection, tenant_a) -> Connection:
    credentials = {"shop_domain": "alpha-goods.myshopify.com", "client_id": "cid", "client_secret": "csecret"}
    return make_connection(tenant_a, credentials=credentials)


def test_a_client_credentials_token_is_fetched_and_kept_on_the_connection(api, app_connection, clock):
    api.post(TOKEN_URL, json=fixture("access_token.json"))
    api.post(ENDPOINT, json=fixture("customers.json"))
    api.post(ENDPOINT, json=fixture("customers.json"))

    records(ShopifyConnector(app_connection, sleep=clock.sleep), "customers", SINCE)
    stored = Connection.objects.get(pk=app_connection.pk)
    records(ShopifyConnector(stored, sleep=clock.sleep), "customers", SINCE)

    form = parse_qs(api.calls[0].request.body)
    assert form == {"grant_type": ["client_credentials"], "client_id": ["cid"], "client_secret": ["csecret"]}
    assert api.calls[1].request.headers["X-Shopify-Access-Token"] == "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"
    assert api.calls[2].request.headers["X-Shopify-Access-Token"] == "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"
    assert stored.credentials["access_token"] == "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"
    expires_at = datetime.fromisoformat(stored.credentials["access_token_expires_at"])
    assert abs(expires_at - (timezone.now() + timedelta(seconds=86399))) < timedelta(minutes=1)
    assert stored.credentials["client_secret"] == "csecret"


def keep_token(connection: Connection, token: str, expires_in: timedelta) -> None:
    expires_at = (timezone.now() + expires_in).isoformat()
    connection.credentials = {**connection.credentials, "access_token": token, "access_token_expires_at": expires_at}


def test_a_token_near_its_expiry_is_renewed_before_use(api, app_connection, clock):
    keep_token(app_connection, "old", timedelta(minutes=2))
    api.post(TOKEN_URL, json=fixture("access_token.json"))
    api.post(ENDPOINT, json=fixture("customers.json"))

    records(ShopifyConnector(app_connection, sleep=clock.sleep), "customers", SINCE)

    assert api.calls[1].request.headers["X-Shopify-Access-Token"] == "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"


def test_a_token_with_time_left_is_used_as_it_is(api, app_connection, clock):
    keep_token(app_connection, "kept", timedelta(hours=3))
    api.post(ENDPOINT, json=fixture("customers.json"))

    records(ShopifyConnector(app_connection, sleep=clock.sleep), "customers", SINCE)

    assert api.calls[0].request.headers["X-Shopify-Access-Token"] == "kept"


def test_a_kept_token_shopify_refuses_is_replaced_once(shop, connect):
    later = (timezone.now() + timedelta(hours=3)).isoformat()
    connector = connect(
        shop,
        client_id="fake-client-id",
        client_secret="fake-client-secret",
        access_token="shpat_revoked",
        access_token_expires_at=later,
    )

    assert len(records(connector, "customers")) == 12
    assert shop.issued_tokens == ["shpat_issued_1"]


def test_a_wrong_client_secret_fails_the_check_with_a_hint(shop, connect):
    result = connect(shop, client_id="fake-client-id", client_secret="wrong").check()

    assert not result.ok
    assert result.error_code == "auth"
    assert "client ID and secret" in result.hint


def test_tokens_never_reach_the_logs(shop, connect, caplog):
    caplog.set_level(logging.DEBUG)
    shop.storm(1, retry_after=1)
    connector = connect(shop, client_id="fake-client-id", client_secret="fake-client-secret")

    records(connector, "orders")

    assert shop.issued_tokens
    assert "shpat_" not in caplog.text
    assert "fake-client-secret" not in caplog.text


# --- Pagination against the fake shop --------------------------------------------------------------


def test_orders_are_read_across_pages_with_resumable_cursors(shop, connect):
    pages = list(connect(shop).read("orders", None))

    ids = [record.external_id for page in pages for record in page.records]
    assert len(ids) == len(set(ids)) == 25
    assert [len(page.records) for page in pages] == [10, 10, 5]
    assert set(pages[0].cursor) == {"after", "max_seen"}  # a first sync has no watermark yet
    latest = max(order["updatedAt"] for order in shop.orders)
    assert pages[-1].cursor == {"since": latest}
    assert pages[0].total == 25
    # Sorted by updatedAt, which in the fake runs against the id order.
    assert ids[0] == "gid://shopify/Order/1025"


def test_a_read_resumes_from_an_after_cursor(shop, connect):
    first = next(iter(connect(shop).read("orders", None)))
    before = len(shop.graphql_requests())

    rest = list(connect(shop).read("orders", first.cursor))

    seen = {r.external_id for r in first.records}
    resumed = [r.external_id for page in rest for r in page.records]
    assert len(resumed) == 15
    assert not seen & set(resumed)
    assert [r["operation"] for r in shop.graphql_requests()[before:]] == ["HubOrders", "HubOrders"]
    assert rest[-1].cursor == {"since": max(order["updatedAt"] for order in shop.orders)}


def test_an_incremental_read_asks_only_for_what_changed_since(shop, connect):
    connector = connect(shop)
    cursor = list(connector.read("orders", None))[-1].cursor
    touched = shop.touch("orders", 3)

    pages = list(connector.read("orders", cursor))

    # The order at the watermark itself is read again (see the next test), then what changed.
    assert [r.external_id for page in pages for r in page.records] == [
        "gid://shopify/Order/1001",
        "gid://shopify/Order/1004",
    ]
    assert shop.graphql_requests()[-1]["variables"]["query"] == f"updated_at:>='{cursor['since']}'"
    assert pages[-1].cursor == {"since": touched}


def test_an_order_changed_in_the_second_the_last_run_ended_on_is_read_by_the_next(shop, connect):
    """Shopify's times have whole seconds: an order changed after a run read the latest one, in the
    same second, carries the watermark's very time. A strict `updated_at:>` would never return it."""
    connector = connect(shop)
    cursor = list(connector.read("orders", None))[-1].cursor
    late = shop.orders[7]
    late["updatedAt"] = cursor["since"]
    late["displayFinancialStatus"] = "REFUNDED"

    records = [r for page in connector.read("orders", cursor) for r in page.records]

    assert late["id"] in {r.external_id for r in records}
    assert next(r for r in records if r.external_id == late["id"]).financial_status == "refunded"


def test_the_inventory_stream_reads_every_item_at_every_location(shop, connect):
    levels = records(connect(shop), "inventory")

    assert len(levels) == 6 * 2 * 2
    assert len({level.external_id for level in levels}) == 24


# --- Throttling --------------------------------------------------------------------------------------


def test_a_throttled_query_waits_for_the_points_and_succeeds(fake_shopify, connect, clock):
    shop = fake_shopify(orders=5, bucket_size=50, restore_rate=10)
    shop.drain(0)

    assert len(records(connect(shop), "orders", BEFORE_ALL)) == 5
    assert shop.throttled == 1
    assert clock.sleeps == [pytest.approx(1.3)]  # 12 points (and one to spare) at 10 a second


def test_the_client_waits_before_a_query_the_bucket_cannot_afford(fake_shopify, connect, clock):
    shop = fake_shopify(orders=25, bucket_size=30, restore_rate=10)

    assert len(records(connect(shop), "orders", BEFORE_ALL)) == 25
    assert shop.throttled == 0
    assert clock.sleeps == [pytest.approx(0.7)]  # 6 of the next page's 12 points left, and one to spare


def test_the_bucket_is_shared_by_every_connector_of_the_connection(fake_shopify, connect, clock):
    shop = fake_shopify(orders=10, bucket_size=30, restore_rate=10)
    first = connect(shop)
    records(first, "orders", BEFORE_ALL)  # 30 - 12 = 18 left
    records(first, "orders", BEFORE_ALL)  # 6 left

    other = ShopifyConnector(first.connection, sleep=clock.sleep)
    other.page_sizes = first.page_sizes
    records(other, "orders", BEFORE_ALL)

    assert shop.throttled == 0
    assert clock.sleeps == [pytest.approx(0.7)]


def test_throttling_that_never_lifts_ends_as_rate_limited(fake_shopify, connect):
    shop = fake_shopify(orders=5, restore_rate=0.0)
    shop.drain(0)

    with pytest.raises(RateLimited):
        records(connect(shop), "orders", BEFORE_ALL)
    assert shop.throttled == 6


# --- Faults --------------------------------------------------------------------------------------------


def test_a_429_storm_is_ridden_out_honouring_retry_after(shop, connect, clock):
    shop.storm(3, retry_after=7)

    assert len(records(connect(shop), "orders", BEFORE_ALL)) == 25
    assert clock.sleeps.count(7.0) == 3


def test_a_connector_from_the_registry_sleeps_on_the_installed_clock(shop, connect, clock):
    shop.storm(1, retry_after=5)
    connection = connect(shop).connection

    assert len(records(get_connector(connection), "customers", BEFORE_ALL)) == 12
    assert clock.sleeps == [5.0]


def test_a_5xx_mid_pagination_is_retried(shop, connect):
    shop.fail_page(2, status=503)

    assert len(records(connect(shop), "orders")) == 25
    assert len(shop.graphql_requests("HubOrders")) == 4


def test_a_read_timeout_mid_pagination_is_retried(shop, connect):
    connector = connect(shop)
    connector.client.timeout = (2.0, 0.2)
    shop.slow_page(2, delay=0.6)
    started = time.monotonic()

    assert len(records(connector, "orders")) == 25
    assert len(shop.graphql_requests("HubOrders")) == 4
    assert time.monotonic() - started < 3


def test_a_token_revoked_mid_read_stops_with_an_auth_error_and_its_hint(shop, connect):
    shop.revoke_after_page(1)
    pages = []

    with pytest.raises(AuthError) as caught:
        for page in connect(shop).read("orders", None):
            pages.append(page)

    assert len(pages) == 1
    assert "check the access token" in caught.value.hint.lower()


def test_malformed_json_mid_read_is_a_bad_response(shop, connect):
    shop.malformed_json(page=2)
    pages = []

    with pytest.raises(BadResponse):
        for page in connect(shop).read("orders", BEFORE_ALL):
            pages.append(page)

    assert len(pages) == 1


# --- Bulk exports --------------------------------------------------------------------------------------


def test_a_large_backfill_runs_as_a_bulk_export_read_in_bounded_pages(shop, connect, settings, clock):
    settings.SHOPIFY_BULK_THRESHOLD = 10
    connector = connect(shop)
    connector.bulk_page_size = 10

    pages = list(connector.read("orders", {"since": "2025-01-01T00:00:00Z"}, full=True))

    assert [len(page.records) for page in pages] == [10, 10, 5]
    assert pages[0].cursor["bulk"] == "gid://shopify/BulkOperation/1"
    assert pages[1].cursor["done"] == 20
    assert pages[-1].cursor == {"since": max(order["updatedAt"] for order in shop.orders)}
    order = pages[0].records[0]
    assert [line.external_id for line in order.lines] == [f"{order.external_id.replace('Order', 'LineItem')}01"]
    operations = [r["operation"] for r in shop.graphql_requests()]
    assert operations == ["HubCount", "HubBulkRun", "HubBulkStatus", "HubBulkStatus"]
    assert clock.sleeps == [connector.bulk_poll_interval]
    [download] = [r for r in shop.requests if r["path"].startswith("/bulk/")]
    assert "X-Shopify-Access-Token" not in download["headers"]


def test_a_product_bulk_export_puts_variants_and_stock_back_in_place(shop, connect, settings):
    settings.SHOPIFY_BULK_THRESHOLD = 3

    products = records(connect(shop), "products")

    assert len(products) == 6
    assert [len(p.variants) for p in products] == [2] * 6
    assert all(len(v.inventory) == 2 and v.currency == "USD" for p in products for v in p.variants)
    assert any(r["operation"] == "HubBulkRun" for r in shop.graphql_requests())


def test_a_stopped_bulk_read_resumes_where_it_stopped(shop, connect, settings):
    settings.SHOPIFY_BULK_THRESHOLD = 10
    connector = connect(shop)
    connector.bulk_page_size = 10
    first = next(iter(connector.read("orders", None)))

    again = connect(shop)
    again.bulk_page_size = 10
    rest = list(again.read("orders", first.cursor))

    assert [len(page.records) for page in rest] == [10, 5]
    assert len([r for r in shop.graphql_requests() if r["operation"] == "HubBulkRun"]) == 1
    resumed = {r.external_id for page in rest for r in page.records}
    assert not resumed & {r.external_id for r in first.records}


def test_a_failed_bulk_export_is_unavailable(shop, connect, settings):
    settings.SHOPIFY_BULK_THRESHOLD = 10
    shop.bulk_fails = True

    with pytest.raises(Unavailable, match="INTERNAL_SERVER_ERROR"):
        records(connect(shop), "orders")


def test_a_busy_bulk_slot_falls_back_to_paging(shop, connect, settings):
    settings.SHOPIFY_BULK_THRESHOLD = 10
    shop.bulk_busy = True

    assert len(records(connect(shop), "orders")) == 25


def test_a_bulk_result_is_downloaded_without_the_token(api, connector, settings):
    settings.SHOPIFY_BULK_THRESHOLD = 1
    status = fixture("bulk_operation_completed.json")
    api.post(ENDPOINT, json={"data": {"ordersCount": {"count": 2, "precision": "EXACT"}}})
    api.post(ENDPOINT, json=fixture("bulk_operation_run_query.json"))
    api.post(ENDPOINT, json=status)
    api.get(status["data"]["node"]["url"], body=(FIXTURES / "bulk_orders.jsonl").read_bytes())

    orders = records(connector, "orders")

    assert [len(order.lines) for order in orders] == [2, 0]
    assert orders[0].total == Decimal("50.00")
    assert "X-Shopify-Access-Token" not in api.calls[3].request.headers
    assert "bulkOperationRunQuery" in sent(api, 1)["query"]
    assert "lineItems { edges { node {" in sent(api, 1)["variables"]["query"]


def test_a_bulk_read_whose_export_is_gone_starts_a_new_one(shop, connect, settings):
    settings.SHOPIFY_BULK_THRESHOLD = 10
    connector = connect(shop)
    connector.bulk_page_size = 10
    first = next(iter(connector.read("orders", None)))
    shop.bulk_operations.clear()  # Shopify keeps a result for 7 days

    rest = records(connect(shop), "orders", first.cursor)

    assert len(rest) == 25
    assert len(shop.graphql_requests("HubBulkRun")) == 2


def test_a_malformed_bulk_line_is_a_bad_response(api, connector, settings):
    settings.SHOPIFY_BULK_THRESHOLD = 1
    status = fixture("bulk_operation_completed.json")
    api.post(ENDPOINT, json={"data": {"ordersCount": {"count": 2, "precision": "EXACT"}}})
    api.post(ENDPOINT, json=fixture("bulk_operation_run_query.json"))
    api.post(ENDPOINT, json=status)
    api.get(status["data"]["node"]["url"], body=b'{"id": "gid://shopify/Order/1"}\n{"id": "gid://shop')

    with pytest.raises(BadResponse, match="malformed"):
        records(connector, "orders")
