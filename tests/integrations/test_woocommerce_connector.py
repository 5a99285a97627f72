"""The WooCommerce connector: mapping of the documented examples, request shape and authentication
(`responses`), and pagination, cursors and faults against a local fake store."""

from __future__ import annotations

import base64
import copy
import json
import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from commerce.records import CustomerRecord, InventoryRecord, OrderRecord, ProductRecord
from integrations.connectors import get_connector
from integrations.connectors.base import Failed
from integrations.connectors.woocommerce import WooCommerceConnector
from integrations.connectors.woocommerce_mapping import map_order
from integrations.errors import AuthError, BadResponse, ConfigurationError, Unavailable, UnsafeURL
from integrations.http import HttpClient
from tests.fakes.woocommerce_server import FakeWooCommerce

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "woocommerce"
SITE = "https://shop.example.com"
API = f"{SITE}/wp-json/wc/v3"
KEY = "ck_7f2d8a1b3c4e5f60718293a4b5c6d7e8f9012345"
SECRET = "cs_1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d"
CREDENTIALS = {"site_url": SITE, "consumer_key": KEY, "consumer_secret": SECRET}


def load(name: str):
    return json.loads((FIXTURES / name).read_text())


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


class Sleeps(list):
    """Records what the client would have slept; nothing sleeps."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def woo(make_connection, tenant_a, sleeps):
    """A WooCommerce connector for these credentials, on a client that records its sleeps."""

    def make(credentials: dict | None = None, *, base_url: str = "", timeout=(2.0, 5.0), verify=None):
        connection = make_connection(
            tenant_a, platform="woocommerce", credentials=credentials or CREDENTIALS, base_url=base_url
        )
        client = HttpClient(sleep=sleeps, timeout=timeout)
        if verify is not None:
            client.session.verify = verify
        return WooCommerceConnector(connection, client=client)

    return make


@pytest.fixture
def api():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def listing(api, route: str, body: list, *, total: int | None = None, pages: int = 1, site: str = API) -> None:
    total = len(body) if total is None else total
    api.get(f"{site}/{route}", json=body, headers={"X-WP-Total": str(total), "X-WP-TotalPages": str(pages)})


def records(pages) -> list:
    return [record for page in pages for record in page.records]


def query(call) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(call.request.url).query).items()}


@pytest.fixture
def store(settings):
    settings.INTEGRATIONS_ALLOW_PRIVATE_URLS = True
    with FakeWooCommerce(orders=250, products=12, customers=30) as fake:
        yield fake


@pytest.fixture
def tls_store(settings):
    settings.INTEGRATIONS_ALLOW_PRIVATE_URLS = True
    with FakeWooCommerce(orders=5, products=4, customers=3, tls=True) as fake:
        yield fake


# --- Mapping the documented examples ----------------------------------------------------------------


def test_orders_map_the_documented_example(woo, api):
    listing(api, "orders", load("orders_list.json"))
    listing(api, "orders/723/refunds", load("order_refunds_list.json"))

    [page] = woo().read("orders", None)

    processing, completed = page.records
    assert isinstance(processing, OrderRecord)
    assert (processing.external_id, processing.number, processing.currency) == ("727", "727", "USD")
    assert processing.placed_at == utc(2017, 3, 22, 19, 28, 2)
    assert processing.updated_at == utc(2017, 3, 22, 19, 28, 8)
    assert (processing.status, processing.financial_status, processing.fulfillment_status) == (
        "open",
        "paid",
        "unfulfilled",
    )
    assert (processing.subtotal, processing.discounts, processing.shipping, processing.tax, processing.total) == (
        Decimal("18.00"),
        Decimal("0.00"),
        Decimal("10.00"),
        Decimal("1.35"),
        Decimal("29.35"),
    )
    assert processing.email == "john.doe@example.com"
    assert processing.customer is None  # a guest order
    assert processing.billing_address["city"] == "San Francisco"
    single, variation = processing.lines
    assert (single.external_id, single.variant_external_id, single.quantity) == ("315", "93", 2)
    assert (single.unit_price, single.total) == (Decimal("3.00"), Decimal("6.00"))
    assert variation.title == "Ship Your Idea \u2013 Color: Black, Size: M Test"  # &ndash; unescaped
    assert (variation.variant_external_id, variation.sku, variation.unit_price) == ("23", "Bar3", Decimal("12.00"))
    assert processing.raw["order_key"] == "wc_order_58d2d042d1d"

    assert (completed.status, completed.financial_status, completed.fulfillment_status) == (
        "completed",
        "partially_refunded",
        "fulfilled",
    )
    assert completed.customer.external_id == "26"
    assert completed.customer.email == "joao.silva@example.com"
    # Known to the order only by its billing address, it must not outdate the customers stream's record.
    assert completed.customer.updated_at < completed.placed_at
    assert [(r.external_id, r.amount, r.refunded_at) for r in completed.refunds] == [
        ("726", Decimal("10.00"), utc(2017, 3, 21, 20, 7, 11)),
        ("724", Decimal("9.00"), utc(2017, 3, 21, 19, 55, 37)),
    ]
    assert "_hub" not in completed.raw


def test_refunds_whose_details_are_gone_are_dated_by_their_order(woo, api):
    listing(api, "orders", load("orders_list.json")[1:])
    api.get(f"{API}/orders/723/refunds", status=404, json={"code": "woocommerce_rest_invalid_id"})

    [page] = woo().read("orders", None)

    [order] = page.records
    assert [(r.external_id, r.amount, r.refunded_at) for r in order.refunds] == [
        ("726", Decimal("10.00"), utc(2017, 3, 21, 19, 54, 51)),
        ("724", Decimal("9.00"), utc(2017, 3, 21, 19, 54, 51)),
    ]


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("pending", ("open", "pending", "unfulfilled")),
        ("on-hold", ("open", "pending", "unfulfilled")),
        ("processing", ("open", "paid", "unfulfilled")),
        ("completed", ("completed", "paid", "fulfilled")),
        ("cancelled", ("cancelled", "voided", "unfulfilled")),
        ("failed", ("cancelled", "voided", "unfulfilled")),
        ("refunded", ("completed", "refunded", "unknown")),
        ("shipped", ("unknown", "paid", "unknown")),  # a plugin's status, on a paid order
    ],
)
def test_order_statuses_map_to_the_hubs_vocabulary(status, expected):
    payload = {**load("orders_list.json")[0], "status": status}
    order = map_order(payload)
    assert (order.status, order.financial_status, order.fulfillment_status) == expected


def test_a_fully_refunded_order_is_refunded(woo, api):
    order = {**load("orders_list.json")[0], "refunds": [{"id": 800, "reason": "", "total": "-29.35"}]}
    listing(api, "orders", [order])
    listing(api, "orders/727/refunds", [{**load("order_refunds_list.json")[0], "id": 800, "amount": "29.35"}])

    [page] = woo().read("orders", None)

    assert page.records[0].financial_status == "refunded"


def test_products_map_the_documented_example_with_their_variations(woo, api):
    listing(api, "products", load("products_list.json"))
    listing(api, "products/799/variations", load("product_variations_list.json"))
    api.get(f"{API}/data/currencies/current", json=load("data_currency_current.json"))

    [page] = woo().read("products", None)

    variable, simple = page.records
    assert isinstance(variable, ProductRecord)
    assert (variable.external_id, variable.title, variable.product_type, variable.status) == (
        "799",
        "Ship Your Idea",
        "Clothing",
        "active",
    )
    assert variable.updated_at == utc(2017, 3, 23, 20, 3, 12)
    assert [(v.external_id, v.title, v.price, v.currency) for v in variable.variants] == [
        ("733", "Green", Decimal("9.00"), "USD"),
        ("732", "Black", Decimal("9.00"), "USD"),
    ]
    assert variable.variants[0].updated_at == utc(2017, 3, 23, 3, 53, 11)
    assert all(v.inventory == [] for v in variable.variants)  # stock not managed in the example
    [only] = simple.variants
    assert (only.external_id, only.title, only.price, only.currency) == (
        "794",
        "Premium Quality",
        Decimal("21.99"),
        "USD",
    )
    assert "_hub" not in variable.raw


def test_managed_stock_becomes_a_level_at_the_default_location(woo, api):
    product = {**load("products_list.json")[1], "manage_stock": True, "stock_quantity": 12}
    listing(api, "products", [product])
    api.get(f"{API}/data/currencies/current", json=load("data_currency_current.json"))

    [page] = woo().read("products", None)

    [level] = page.records[0].variants[0].inventory
    assert level == InventoryRecord(
        external_id="794@default",
        variant_external_id="794",
        available=12,
        location_id="default",
        location_name="Default",
        raw=level.raw,
    )


def test_the_inventory_stream_reads_the_stock_of_simple_products_and_variations(woo, api):
    simple = {**load("products_list.json")[1], "manage_stock": True, "stock_quantity": 4}
    variable = load("products_list.json")[0]
    green, black = load("product_variations_list.json")
    listing(api, "products", [variable, simple])
    listing(api, "products/799/variations", [{**green, "manage_stock": True, "stock_quantity": 7}, black])

    [page] = woo().read("inventory", None)

    assert [(r.external_id, r.variant_external_id, r.available) for r in page.records] == [
        ("733@default", "733", 7),
        ("794@default", "794", 4),
    ]


def test_customers_map_the_documented_example(woo, api):
    listing(api, "customers", load("customers_list.json"))

    [page] = woo().read("customers", None)

    joao, john = page.records
    assert isinstance(joao, CustomerRecord)
    assert (joao.external_id, joao.email, joao.first_name, joao.last_name) == (
        "26",
        "joao.silva@example.com",
        "João",
        "Silva",
    )
    assert (joao.phone, joao.country) == ("(55) 5555-5555", "BR")
    assert joao.created_at == utc(2017, 3, 21, 19, 11, 14)
    assert joao.updated_at == utc(2017, 3, 21, 19, 11, 16)
    assert john.country == "US"


def test_a_malformed_record_is_quarantined_and_the_rest_of_the_page_parsed(woo, api):
    good, bad = load("orders_list.json")
    bad = {**bad, "total": "thirty-nine", "refunds": []}
    listing(api, "orders", [bad, good])

    [page] = woo().read("orders", None)

    failed, parsed = page.records
    assert isinstance(failed, Failed)
    assert failed.external_id == "723"
    assert failed.payload["total"] == "thirty-nine"
    assert "not an amount" in failed.error
    assert isinstance(parsed, OrderRecord)


def test_connector_is_registered_for_woocommerce_connections(make_connection, tenant_a):
    connection = make_connection(tenant_a, platform="woocommerce", credentials=CREDENTIALS)
    assert isinstance(get_connector(connection), WooCommerceConnector)


# --- Requests: shape and authentication --------------------------------------------------------------


def test_requests_carry_basic_auth_and_the_paging_parameters(woo, api):
    listing(api, "orders", [])

    list(woo().read("orders", None))

    [call] = api.calls
    assert call.request.headers["Authorization"] == "Basic " + base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()
    assert query(call) == {"per_page": "100", "page": "1", "orderby": "id", "order": "asc"}


def test_an_incremental_read_asks_for_records_modified_since_in_gmt(woo, api):
    listing(api, "orders", [])

    list(woo().read("orders", {"since": "2024-05-01T12:00:00"}))

    params = query(api.calls[0])
    assert (params["modified_after"], params["dates_are_gmt"]) == ("2024-05-01T12:00:00", "true")


def test_a_full_read_ignores_the_cursor(woo, api):
    listing(api, "orders", [])

    list(woo().read("orders", {"since": "2024-05-01T12:00:00", "page": 7}, full=True))

    params = query(api.calls[0])
    assert "modified_after" not in params
    assert params["page"] == "1"


def test_the_base_url_override_replaces_the_site_url(woo, api):
    listing(api, "orders", [], site="https://staging.example.com/wp-json/wc/v3")

    list(woo(base_url="https://staging.example.com").read("orders", None))

    assert api.calls[0].request.url.startswith("https://staging.example.com/wp-json/wc/v3/orders?")


def test_plain_http_is_refused_without_the_operators_permission(woo, api):
    connector = woo({**CREDENTIALS, "site_url": "http://shop.example.com"})

    with pytest.raises(UnsafeURL) as raised:
        list(connector.read("orders", None))

    assert "allow_insecure_http" in raised.value.hint
    result = connector.check()
    assert (result.ok, result.error_code) == (False, "unsafe_url")
    assert len(api.calls) == 0


def test_plain_http_with_permission_signs_requests_with_oauth1_instead_of_sending_the_keys(woo, api):
    listing(api, "orders", [], site="http://shop.example.com/wp-json/wc/v3")

    list(
        woo({**CREDENTIALS, "site_url": "http://shop.example.com", "allow_insecure_http": "true"}).read("orders", None)
    )

    [call] = api.calls
    params = query(call)
    assert params["oauth_consumer_key"] == KEY
    assert params["oauth_signature_method"] == "HMAC-SHA256"
    assert params["oauth_signature"]
    assert params["per_page"] == "100"
    assert "Authorization" not in call.request.headers
    assert SECRET not in call.request.url


@pytest.mark.parametrize(
    "site_url", ["https://127.0.0.1", "https://localhost/shop", "https://10.1.2.3", "https://169.254.169.254"]
)
def test_a_private_or_loopback_site_url_is_refused(woo, api, settings, site_url):
    settings.INTEGRATIONS_ALLOW_PRIVATE_URLS = False

    result = woo({**CREDENTIALS, "site_url": site_url}).check()

    assert (result.ok, result.error_code) == (False, "unsafe_url")
    assert len(api.calls) == 0


def test_a_missing_key_is_a_configuration_error(woo, api):
    result = woo({"site_url": SITE, "consumer_secret": SECRET}).check()

    assert (result.ok, result.error_code) == (False, "configuration")
    assert "Consumer key" in result.message


def test_an_unknown_stream_is_a_configuration_error(woo):
    with pytest.raises(ConfigurationError):
        list(woo().read("coupons", None))


def test_a_redirect_is_explained_not_followed(woo, api):
    api.get(f"{API}/orders", status=301, headers={"Location": "https://www.shop.example.com/wp-json/wc/v3/orders?x=1"})

    with pytest.raises(BadResponse) as raised:
        list(woo().read("orders", None))

    assert "https://www.shop.example.com/wp-json/wc/v3/orders" in raised.value.message
    assert "x=1" not in raised.value.message
    assert len(api.calls) == 1


# --- Check ---------------------------------------------------------------------------------------------


def test_check_reports_counts_permissions_and_latency(woo, api):
    listing(api, "orders", [load("orders_list.json")[0]], total=42, pages=42)
    listing(api, "products", [load("products_list.json")[0]], total=7, pages=7)
    listing(api, "customers", [load("customers_list.json")[0]], total=5, pages=5)
    api.post(f"{API}/commerce-hub-permission-probe", status=401, json={"code": "woocommerce_rest_authentication_error"})

    result = woo().check()

    assert result.ok, result.message
    assert result.samples == {"orders": 42, "products": 7, "customers": 5}
    assert result.granted == ["read"]
    assert result.details["key_permissions"] == "read"
    assert result.details["authentication"] == "basic"
    assert result.latency_ms is not None
    assert query(api.calls[0])["per_page"] == "1"


def test_check_warns_when_the_key_can_also_write(woo, api):
    for route in ("orders", "products", "customers"):
        listing(api, route, [], total=0, pages=0)
    api.post(f"{API}/commerce-hub-permission-probe", status=404, json={"code": "rest_no_route"})

    result = woo().check()

    assert result.ok
    assert result.granted == ["read", "write"]
    assert any("can also write" in warning for warning in result.warnings)


def test_check_lists_a_stream_the_key_cannot_read(woo, api):
    listing(api, "orders", [], total=3)
    listing(api, "products", [], total=2)
    api.get(f"{API}/customers", status=403, json={"code": "woocommerce_rest_cannot_view"})
    api.post(f"{API}/commerce-hub-permission-probe", status=401)

    result = woo().check()

    assert result.ok
    assert result.missing == ["customers"]
    assert result.samples == {"orders": 3, "products": 2}


def test_check_explains_wrong_keys(woo, api):
    api.get(f"{API}/orders", status=401, json=load("error_unauthorized.json"))

    result = woo().check()

    assert (result.ok, result.error_code) == (False, "auth")
    assert "consumer key and secret" in result.hint


def test_check_explains_a_wrong_site_url(woo, api):
    api.get(f"{API}/orders", status=404, body="<html>Not found</html>", content_type="text/html")

    result = woo().check()

    assert (result.ok, result.error_code) == (False, "not_found")
    assert "site URL and the API version" in result.hint


def test_check_explains_a_web_page_where_the_api_should_be(woo, api):
    api.get(f"{API}/orders", body="<!DOCTYPE html><html>My Store</html>", content_type="text/html; charset=UTF-8")

    result = woo().check()

    assert (result.ok, result.error_code) == (False, "bad_response")
    assert "permalink" in result.hint


def test_check_never_retries(woo, api, sleeps):
    api.get(f"{API}/orders", status=503)

    result = woo().check()

    assert (result.ok, result.error_code) == (False, "unavailable")
    assert len(api.calls) == 1
    assert sleeps == []


def test_check_explains_an_invalid_certificate(woo, tls_store):
    result = woo(tls_store.credentials()).check()

    assert (result.ok, result.error_code) == (False, "unavailable")
    assert "HTTPS is misconfigured" in result.hint


def test_check_succeeds_over_https_with_basic_auth(woo, tls_store):
    result = woo(tls_store.credentials(), verify=tls_store.ca_path).check()

    assert result.ok, result.message
    assert result.samples == {"orders": 5, "products": 4, "customers": 3}
    assert {seen.auth for seen in tls_store.seen()} == {"basic"}


def test_check_over_plain_http_is_signed_and_accepted(woo, store):
    result = woo(store.credentials()).check()

    assert result.ok, result.message
    assert result.details["authentication"] == "oauth1"
    assert result.details["key_permissions"] == "read"
    assert {seen.auth for seen in store.seen()} == {"oauth1"}


def test_a_wrong_secret_fails_the_oauth_signature(woo, store):
    result = woo(store.credentials(consumer_secret="cs_wrong")).check()

    assert (result.ok, result.error_code) == (False, "auth")


def test_check_explains_a_wrong_site_path(woo, store):
    result = woo(store.credentials(site_url=f"{store.url}/shop")).check()

    assert (result.ok, result.error_code) == (False, "not_found")
    assert "site URL" in result.hint


# --- Pagination and cursors against the fake store ---------------------------------------------------


def test_a_read_follows_x_wp_totalpages(woo, store):
    pages = list(woo(store.credentials()).read("orders", None))

    assert [len(page.records) for page in pages] == [100, 100, 50]
    assert {page.total for page in pages} == {250}
    assert sorted(int(r.external_id) for r in records(pages)) == sorted(store.orders)
    assert [seen.query["page"] for seen in store.seen("orders")] == ["1", "2", "3"]


def test_page_cursors_resume_and_the_last_one_holds_the_watermark(woo, store):
    pages = list(woo(store.credentials()).read("orders", None))

    latest = max(order["date_modified_gmt"] for order in store.orders.values())
    first, second, last = (page.cursor for page in pages)
    assert first == {"since": None, "page": 2, "max_seen": first["max_seen"], "started": first["started"]}
    assert second["page"] == 3
    assert second["max_seen"] >= first["max_seen"]
    assert last == {"since": latest}


def test_a_read_resumes_from_a_page_cursor(woo, store):
    first = next(iter(woo(store.credentials()).read("orders", None)))

    rest = list(woo(store.credentials()).read("orders", first.cursor))

    assert [len(page.records) for page in rest] == [100, 50]
    ids = {r.external_id for r in first.records} | {r.external_id for r in records(rest)}
    assert ids == {str(order_id) for order_id in store.orders}


def test_an_incremental_read_returns_what_changed_since_the_watermark(woo, store):
    *_, last = woo(store.credentials()).read("orders", None)
    for order_id in (1003, 1100, 1249):
        store.touch("orders", order_id)

    pages = list(woo(store.credentials()).read("orders", last.cursor))

    assert sorted(r.external_id for r in records(pages)) == ["1003", "1100", "1249"]
    assert pages[-1].cursor["since"] > last.cursor["since"]


def test_a_record_changed_during_a_sweep_is_read_by_the_next_one(woo, store):
    now = datetime.now(UTC).replace(microsecond=0)
    sweep = woo(store.credentials()).read("orders", None)
    first = next(sweep)
    # One order already read changes; then one not yet read changes, later.
    store.touch("orders", 1000, now)
    store.touch("orders", 1240, now + timedelta(seconds=5))
    *_, last = sweep

    pages = list(woo(store.credentials()).read("orders", last.cursor))

    assert "1000" in {r.external_id for r in first.records}
    assert {"1000", "1240"} <= {r.external_id for r in records(pages)}


def test_customers_are_read_whole_and_filtered_by_their_modified_time(woo, store):
    *_, last = woo(store.credentials()).read("customers", None)
    store.touch("customers", 105)

    pages = list(woo(store.credentials()).read("customers", last.cursor))

    assert [r.external_id for r in records(pages)] == ["105"]
    assert "modified_after" not in store.seen("customers")[-1].query


def test_products_come_with_their_variations_stock_and_the_stores_currency(woo, store):
    pages = list(woo(store.credentials()).read("products", None))

    products = {p.external_id: p for p in records(pages)}
    assert len(products) == 12
    variable = products["2010"]
    assert [(v.external_id, v.title, v.currency) for v in variable.variants] == [
        ("2011", "Colour 1", "USD"),
        ("2012", "Colour 2", "USD"),
    ]
    assert [level.available for v in variable.variants for level in v.inventory] == [10, 20]
    assert products["2000"].variants[0].inventory[0].available == 1
    assert products["2040"].variants[0].inventory == []  # stock not managed


def test_the_inventory_stream_from_the_fake_store(woo, store):
    pages = list(woo(store.credentials()).read("inventory", None))

    levels = {r.variant_external_id: r.available for r in records(pages)}
    assert levels["2000"] == 1
    assert (levels["2011"], levels["2012"]) == (10, 20)
    assert "2040" not in levels


# --- Faults -------------------------------------------------------------------------------------------


def test_a_429_storm_is_waited_out_as_retry_after_says(woo, store, sleeps):
    store.rate_limit(3, retry_after=2)

    pages = list(woo(store.credentials()).read("orders", None))

    assert len(records(pages)) == 250
    assert sleeps == [2.0, 2.0, 2.0]


def test_a_5xx_in_the_middle_of_a_sweep_is_retried(woo, store, sleeps):
    store.fail(page=2, status=503, times=2, endpoint="orders")

    pages = list(woo(store.credentials()).read("orders", None))

    assert len(records(pages)) == 250
    assert len(sleeps) == 2


def test_a_timeout_in_the_middle_of_a_sweep_is_retried(woo, store, sleeps):
    store.slow(page=2, seconds=1.5, endpoint="orders")

    pages = list(woo(store.credentials(), timeout=(2.0, 0.3)).read("orders", None))

    assert len(records(pages)) == 250
    assert len(sleeps) == 1


def test_an_outage_stops_the_sweep_after_the_pages_already_read_and_it_resumes_there(woo, store):
    store.fail(page=2, status=502, times=None, endpoint="orders")
    read: list = []

    with pytest.raises(Unavailable):
        for page in woo(store.credentials()).read("orders", None):
            read.append(page)

    assert len(read) == 1
    store.restore()
    rest = list(woo(store.credentials()).read("orders", read[-1].cursor))
    assert len(records(read)) + len(records(rest)) == 250


def test_keys_revoked_in_the_middle_of_a_sweep_stop_it_with_a_hint(woo, store, sleeps):
    # Revoked once page 2 is served: the refunds of page 2's orders, read next, are refused.
    store.revoke_after(2, endpoint="orders")
    read: list = []

    with pytest.raises(AuthError) as raised:
        for page in woo(store.credentials()).read("orders", None):
            read.append(page)

    assert len(read) == 1
    assert "consumer key and secret" in raised.value.hint
    assert sleeps == []  # a 401 is not retried


def test_malformed_json_is_a_bad_response(woo, store):
    store.malformed_json(page=2, endpoint="orders")

    with pytest.raises(BadResponse) as raised:
        list(woo(store.credentials()).read("orders", None))

    assert "malformed JSON" in raised.value.message


def test_a_web_page_instead_of_the_api_is_explained(woo, store):
    store.serve_html = True

    with pytest.raises(BadResponse) as raised:
        list(woo(store.credentials()).read("orders", None))

    assert "permalink" in raised.value.hint


def test_a_malformed_record_from_the_store_is_quarantined(woo, store):
    store.patch("orders", 1042, date_created_gmt="yesterday")

    pages = list(woo(store.credentials()).read("orders", None))

    failed = [r for r in records(pages) if isinstance(r, Failed)]
    assert [f.external_id for f in failed] == ["1042"]
    assert len(records(pages)) == 250


def test_the_keys_stay_out_of_the_logs(woo, tls_store, caplog):
    tls_store.rate_limit(1)
    caplog.set_level(logging.DEBUG)

    list(woo(tls_store.credentials(), verify=tls_store.ca_path).read("orders", None))

    assert tls_store.consumer_key not in caplog.text
    assert tls_store.consumer_secret not in caplog.text
    assert "retry" in caplog.text


def test_the_secret_is_never_sent_nor_logged_over_plain_http(woo, store, caplog):
    store.rate_limit(1)
    caplog.set_level(logging.DEBUG)

    list(woo(store.credentials()).read("orders", None))

    for seen in store.seen():
        assert store.consumer_secret not in json.dumps(seen.query)
        assert "Authorization" not in seen.headers
    assert store.consumer_secret not in caplog.text


def test_the_fixtures_are_left_untouched_by_mapping():
    payload = load("orders_list.json")[1]
    before = copy.deepcopy(payload)
    map_order(payload)
    assert payload == before
