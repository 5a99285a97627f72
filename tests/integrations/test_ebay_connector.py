"""The eBay connector against `responses`: credentials and hosts, access tokens and their cache,
renew once then fail, 429s and 5xx, malformed answers, order windows, offsets and the watermark,
inventory pages, and the connection test."""

from __future__ import annotations

import base64
import copy
import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from django.core.cache import cache

from commerce.records import InventoryRecord, OrderRecord, ProductRecord
from integrations.connectors import ebay_client, get_connector
from integrations.connectors.base import Failed
from integrations.connectors.ebay import EbayConnector
from integrations.connectors.ebay_streams import LOOKBACK, WINDOW
from integrations.errors import AuthError, BadResponse, ConfigurationError, PermissionDenied, RateLimited, Unavailable
from integrations.http import HttpClient
from integrations.platforms import spec_for
from integrations.tokens import LOCK_POLLS

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ebay"
API = "https://api.ebay.com"
TOKEN = f"{API}/identity/v1/oauth2/token"
ORDERS = "/sell/fulfillment/v1/order"
ITEMS = "/sell/inventory/v1/inventory_item"
NOW = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
END = NOW - timedelta(minutes=2)
CREDENTIALS = {
    "client_id": "HubTests-Hub-PRD-0123456789-abcdef01",
    "client_secret": "PRD-0123456789ab-cdef-0123-4567-89ab",
    "ru_name": "Hub_Tests-HubTests-Hub-PR-abcdefghi",
    "environment": "production",
    "refresh_token": "v^1.1#i^1#r^1#refresh",
    "refresh_token_expires_at": "2026-06-01T00:00:00Z",
}
SCOPES = (
    "https://api.ebay.com/oauth/api_scope https://api.ebay.com/oauth/api_scope/sell.fulfillment "
    "https://api.ebay.com/oauth/api_scope/sell.inventory"
)


def load(name: str):
    return json.loads((FIXTURES / name).read_text())


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture(autouse=True)
def clock(monkeypatch):
    monkeypatch.setattr(ebay_client, "now", lambda: NOW)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def api():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def connection(make_connection, tenant_a):
    def make(base_url: str = "", **credentials):
        return make_connection(tenant_a, "ebay", credentials={**CREDENTIALS, **credentials}, base_url=base_url)

    return make


@pytest.fixture
def ebay(connection, sleeps):
    """An eBay connector for these credentials, on a client that records its sleeps."""

    def make(base_url: str = "", *, on=None, **credentials) -> EbayConnector:
        return EbayConnector(on or connection(base_url, **credentials), client=HttpClient(sleep=sleeps))

    return make


def token(api, access: str = "v^1.1#first", expires_in: int = 7200, *, url: str = TOKEN, status=200, body=None):
    body = body if body is not None else {"access_token": access, "expires_in": expires_in, "token_type": "User"}
    api.add(responses.POST, url, json=body, status=status)


def get(api, path: str, body=None, *, status: int = 200, headers=None, base: str = API):
    api.add(responses.GET, base + path, json=body if body is not None else {}, status=status, headers=headers)


def calls(api, path: str):
    return [c for c in api.calls if urlsplit(c.request.url).path == path]


def query(call) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(call.request.url).query).items()}


def orders_page(orders=None, *, total=None, next_offset: int | None = None) -> dict:
    orders = load("get_orders.json")["orders"] if orders is None else orders
    body = {"total": len(orders) if total is None else total, "limit": 200, "orders": orders}
    if next_offset is not None:
        body["next"] = f"{API}{ORDERS}?limit=200&offset={next_offset}"
    return body


def no_orders() -> dict:
    return {"total": 0, "limit": 200, "orders": []}


def items_page(items=None, *, next_link: str | None = None) -> dict:
    body = load("get_inventory_items.json")
    if items is not None:
        body["inventoryItems"] = items
    if next_link:
        body["next"] = next_link
    return body


def read(connector, stream="orders", cursor=None, full=False):
    return list(connector.read(stream, cursor, full=full))


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def window(after: datetime, before: datetime) -> str:
    return f"lastmodifieddate:[{stamp(after)}..{stamp(before)}]"


def recent(**extra) -> dict:
    """A cursor whose watermark leaves one window to read."""
    return {"watermark": stamp(NOW - timedelta(hours=1)), **extra}


# --- Registry, catalogue, hosts ------------------------------------------------------------------------


def test_connector_is_registered_for_ebay_connections(connection):
    assert isinstance(get_connector(connection()), EbayConnector)


def test_the_catalogue_has_the_connect_credentials_and_the_connectors_streams():
    spec = spec_for("ebay")
    fields = {f.name: f for f in spec.credentials}
    assert fields["ru_name"].required and "callback" in fields["ru_name"].help_text
    assert fields["refresh_token"].secret and not fields["refresh_token"].required
    assert not fields["refresh_token_expires_at"].required and not fields["refresh_token_expires_at"].secret
    assert fields["environment"].choices == ("production", "sandbox")
    assert tuple(spec.streams) == EbayConnector.streams
    assert spec.oauth


def test_sandbox_connections_use_ebays_sandbox_hosts(ebay, api):
    token(api, url="https://api.sandbox.ebay.com/identity/v1/oauth2/token")
    get(api, ITEMS, items_page(), base="https://api.sandbox.ebay.com")
    records = [r for page in read(ebay(environment="sandbox"), "inventory") for r in page.records]
    assert len(records) == 3
    assert {urlsplit(c.request.url).netloc for c in api.calls} == {"api.sandbox.ebay.com"}


def test_the_base_url_override_serves_the_apis_and_the_token_endpoint(ebay, api):
    token(api, url="https://proxy.example.com/identity/v1/oauth2/token")
    get(api, ITEMS, items_page(), base="https://proxy.example.com")
    assert len([r for page in read(ebay("https://proxy.example.com/"), "inventory") for r in page.records]) == 3


def test_an_unknown_environment_is_a_configuration_error_before_anything_is_sent(ebay, api):
    result = ebay(environment="live").check()
    assert not result.ok and result.error_code == "configuration" and "production or sandbox" in result.hint
    assert not api.calls


def test_without_a_refresh_token_nothing_is_sent_and_connecting_is_asked_for(ebay, api):
    result = ebay(refresh_token="").check()
    assert not result.ok and result.error_code == "configuration"
    assert "no eBay refresh token" in result.message and "Connect" in result.hint
    assert not api.calls


# --- Access tokens -----------------------------------------------------------------------------------------


def test_the_refresh_token_buys_an_access_token_sent_as_a_bearer_token(ebay, api):
    token(api, "v^1.1#abc")
    get(api, ITEMS, items_page([]))
    read(ebay(), "inventory")
    minted = calls(api, "/identity/v1/oauth2/token")[0].request
    keys = base64.b64encode(f"{CREDENTIALS['client_id']}:{CREDENTIALS['client_secret']}".encode()).decode()
    assert minted.headers["Authorization"] == f"Basic {keys}"
    assert parse_qs(minted.body) == {
        "grant_type": ["refresh_token"],
        "refresh_token": [CREDENTIALS["refresh_token"]],
        "scope": [SCOPES],
    }
    assert calls(api, ITEMS)[0].request.headers["Authorization"] == "Bearer v^1.1#abc"


def test_the_access_token_is_cached_and_shared_by_every_worker_of_the_connection(ebay, connection, api):
    token(api)
    get(api, ITEMS, items_page([]))
    shop = connection()
    read(ebay(on=shop), "inventory")
    read(ebay(on=shop), "inventory")
    assert len(calls(api, "/identity/v1/oauth2/token")) == 1
    assert len(calls(api, ITEMS)) == 2


def test_a_token_within_a_minute_of_its_expiry_is_not_kept(ebay, connection, api):
    token(api, expires_in=60)
    get(api, ITEMS, items_page([]))
    shop = connection()
    read(ebay(on=shop), "inventory")
    read(ebay(on=shop), "inventory")
    assert len(calls(api, "/identity/v1/oauth2/token")) == 2


def test_a_new_consent_never_uses_the_old_ones_cached_token(ebay, connection, api):
    token(api)
    get(api, ITEMS, items_page([]))
    shop = connection()
    read(ebay(on=shop), "inventory")
    shop.credentials = {**shop.credentials, "refresh_token": "v^1.1#reconnected"}
    read(ebay(on=shop), "inventory")
    assert len(calls(api, "/identity/v1/oauth2/token")) == 2


def test_a_worker_waits_for_the_token_another_worker_is_minting(ebay, api, sleeps):
    connector = ebay()
    tokens = connector.api.tokens
    cache.add(tokens.lock_key, "another-worker", timeout=60)

    def other_worker_finishes(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 3:
            cache.set(tokens.key, "v^1.1#from-the-other-worker", timeout=600)

    connector.client.sleep = other_worker_finishes
    get(api, ITEMS, items_page([]))
    read(connector, "inventory")
    assert not calls(api, "/identity/v1/oauth2/token")
    assert calls(api, ITEMS)[0].request.headers["Authorization"] == "Bearer v^1.1#from-the-other-worker"


def test_a_lock_that_stays_taken_is_not_waited_on_for_ever(ebay, api, sleeps):
    connector = ebay()
    cache.add(connector.api.tokens.lock_key, "a-dead-worker", timeout=600)
    token(api)
    get(api, ITEMS, items_page([]))
    read(connector, "inventory")
    assert len(calls(api, "/identity/v1/oauth2/token")) == 1
    assert len(sleeps) == LOCK_POLLS


def test_a_401_renews_the_token_once_and_the_request_goes_through(ebay, api):
    token(api, "v^1.1#old")
    token(api, "v^1.1#new")
    get(api, ITEMS, load("error_invalid_token.json"), status=401)
    get(api, ITEMS, items_page([]))
    read(ebay(), "inventory")
    assert [c.request.headers["Authorization"] for c in calls(api, ITEMS)] == ["Bearer v^1.1#old", "Bearer v^1.1#new"]


def test_a_second_401_after_renewing_says_to_reconnect_with_ebay(ebay, api):
    token(api, "v^1.1#old")
    token(api, "v^1.1#new")
    get(api, ITEMS, load("error_invalid_token.json"), status=401)
    with pytest.raises(AuthError) as caught:
        read(ebay(), "inventory")
    assert "reconnect with eBay" in caught.value.message and "Connect" in caught.value.hint
    assert len(calls(api, "/identity/v1/oauth2/token")) == 2
    assert len(calls(api, ITEMS)) == 2


def test_a_revoked_refresh_token_is_refused_at_the_token_endpoint_with_the_same_advice(ebay, api):
    token(api, status=400, body=load("identity_invalid_grant.json"))
    with pytest.raises(AuthError) as caught:
        read(ebay(), "inventory")
    assert "reconnect with eBay" in caught.value.message and "invalid_grant" in caught.value.message
    assert not calls(api, ITEMS)


def test_a_403_is_a_scope_not_granted_and_the_token_is_not_renewed(ebay, api):
    token(api)
    get(api, ITEMS, load("error_insufficient_scope.json"), status=403)
    with pytest.raises(PermissionDenied) as caught:
        read(ebay(), "inventory")
    assert "Insufficient permissions" in caught.value.message  # eBay's own words come along
    assert "sell.inventory" in caught.value.hint
    assert len(calls(api, "/identity/v1/oauth2/token")) == 1


def test_a_token_that_expires_in_the_middle_of_a_sync_is_renewed_and_the_sync_goes_on(ebay, api):
    token(api, "v^1.1#first")
    token(api, "v^1.1#second")
    api.add(responses.GET, API + ORDERS, json=orders_page(total=4, next_offset=2))
    api.add(responses.GET, API + ORDERS, json=load("error_invalid_token.json"), status=401)
    api.add(responses.GET, API + ORDERS, json=orders_page(total=4))
    pages = read(ebay(), cursor=recent())
    assert [c.request.headers["Authorization"] for c in calls(api, ORDERS)] == [
        "Bearer v^1.1#first",
        "Bearer v^1.1#first",
        "Bearer v^1.1#second",
    ]
    assert [query(c)["offset"] for c in calls(api, ORDERS)] == ["0", "2", "2"]
    assert sum(len(p.records) for p in pages) == 4


# --- 429, 5xx and malformed answers ----------------------------------------------------------------------


def test_a_429_with_retry_after_waits_that_long_and_retries(ebay, api, sleeps):
    token(api)
    get(api, ITEMS, load("error_too_many_requests.json"), status=429, headers={"Retry-After": "12"})
    get(api, ITEMS, items_page([]))
    read(ebay(), "inventory")
    assert len(calls(api, ITEMS)) == 2
    assert sleeps == [12.0]


def test_a_429_without_retry_after_backs_off_and_retries(ebay, api, sleeps):
    token(api)
    get(api, ITEMS, load("error_too_many_requests.json"), status=429)
    get(api, ITEMS, items_page([]))
    read(ebay(), "inventory")
    assert len(calls(api, ITEMS)) == 2
    assert len(sleeps) == 1 and 0 <= sleeps[0] <= 0.5


def test_a_429_that_outlasts_the_retries_is_rate_limited(ebay, api):
    token(api)
    get(api, ITEMS, load("error_too_many_requests.json"), status=429)
    with pytest.raises(RateLimited):
        read(ebay(), "inventory")
    assert len(calls(api, ITEMS)) == 5


def test_a_5xx_is_retried(ebay, api, sleeps):
    token(api)
    get(api, ORDERS, load("error_system.json"), status=500)
    api.add(responses.GET, API + ORDERS, json=orders_page())
    pages = read(ebay(), cursor=recent())
    assert len(calls(api, ORDERS)) == 2 and len(sleeps) == 1
    assert sum(len(p.records) for p in pages) == 2


def test_a_5xx_that_outlasts_the_retries_is_unavailable(ebay, api):
    token(api)
    get(api, ORDERS, load("error_system.json"), status=503)
    with pytest.raises(Unavailable):
        read(ebay(), cursor=recent())
    assert len(calls(api, ORDERS)) == 5


def test_malformed_json_is_a_bad_response(ebay, api):
    token(api)
    api.add(responses.GET, API + ORDERS, body='{"orders": [{"orderId": "12-', status=200)
    with pytest.raises(BadResponse, match="malformed JSON"):
        read(ebay(), cursor=recent())


def test_an_answer_without_a_list_of_orders_is_a_bad_response(ebay, api):
    token(api)
    get(api, ORDERS, {"total": 1, "orders": {"orderId": "12-34567-89012"}})
    with pytest.raises(BadResponse, match="no list of orders"):
        read(ebay(), cursor=recent())


def test_a_refused_request_carries_ebays_words(ebay, api):
    token(api)
    get(api, ORDERS, load("error_invalid_filter.json"), status=400)
    with pytest.raises(BadResponse) as caught:
        read(ebay(), cursor=recent())
    assert "30850: Start and end dates can't be in the future" in caught.value.message
    assert len(calls(api, ORDERS)) == 1


# --- Orders: windows, offsets and the watermark ------------------------------------------------------------


def test_a_first_read_sweeps_two_years_in_30_day_windows_up_to_two_minutes_ago(ebay, api):
    token(api)
    get(api, ORDERS, no_orders())
    pages = read(ebay())
    filters = [query(c)["filter"] for c in calls(api, ORDERS)]
    start = END - LOOKBACK
    assert filters[0] == window(start, start + WINDOW)
    assert filters[-1].endswith(f"..{stamp(END)}]")
    bounds = [f.removeprefix("lastmodifieddate:[").removesuffix("]").split("..") for f in filters]
    assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))
    assert len(filters) == 25
    assert {(q["limit"], q["offset"]) for q in map(query, calls(api, ORDERS))} == {("200", "0")}
    # The brackets and colons go percent-encoded, as eBay asks.
    assert "filter=lastmodifieddate%3A%5B" in calls(api, ORDERS)[0].request.url
    assert pages[-1].cursor == {"watermark": stamp(END)}


def test_pages_follow_the_offset_while_ebay_gives_a_next_link(ebay, api):
    token(api)
    api.add(responses.GET, API + ORDERS, json=orders_page(total=6, next_offset=2))
    api.add(responses.GET, API + ORDERS, json=orders_page(total=6, next_offset=4))
    api.add(responses.GET, API + ORDERS, json=orders_page(total=6))
    pages = read(ebay(), cursor=recent())
    assert [query(c)["offset"] for c in calls(api, ORDERS)] == ["0", "2", "4"]
    assert len({query(c)["filter"] for c in calls(api, ORDERS)}) == 1
    # While a window pages, the cursor marks it with the next page's offset; the watermark stays.
    after = NOW - timedelta(hours=1, minutes=5)
    assert pages[0].cursor == {
        "watermark": stamp(NOW - timedelta(hours=1)),
        "sweep": {"after": stamp(after), "before": stamp(END), "offset": 2, "total": 6},
    }
    assert pages[-1].cursor == {"watermark": stamp(END)}
    assert [len(p.records) for p in pages] == [2, 2, 2]


def test_an_incremental_read_starts_at_the_watermark_less_five_minutes(ebay, api):
    token(api)
    get(api, ORDERS, no_orders())
    read(ebay(), cursor=recent())
    assert query(calls(api, ORDERS)[0])["filter"] == window(NOW - timedelta(hours=1, minutes=5), END)


def test_windows_follow_each_other_to_two_minutes_ago_and_the_watermark_moves_with_each(ebay, api):
    token(api)
    get(api, ORDERS, no_orders())
    pages = read(ebay(), cursor={"watermark": stamp(NOW - timedelta(days=45))})
    first, second = (query(c)["filter"] for c in calls(api, ORDERS))
    middle = NOW - timedelta(days=45, minutes=5) + WINDOW
    assert (first, second) == (window(NOW - timedelta(days=45, minutes=5), middle), window(middle, END))
    assert [p.cursor["watermark"] for p in pages] == [stamp(middle), stamp(END)]


def test_an_interrupted_window_goes_on_from_its_offset(ebay, api):
    token(api)
    api.add(responses.GET, API + ORDERS, json=orders_page(total=6))
    get(api, ORDERS, no_orders())
    after, before = NOW - timedelta(days=3), NOW - timedelta(days=2)
    cursor = recent(sweep={"after": stamp(after), "before": stamp(before), "offset": 4, "total": 6})
    pages = read(ebay(), cursor=cursor)
    resumed, following = map(query, calls(api, ORDERS))
    assert (resumed["filter"], resumed["offset"]) == (window(after, before), "4")
    # Then the windows go on from the interrupted one's end, not from the older watermark.
    assert following["filter"] == window(before, END)
    assert pages[0].cursor == {"watermark": stamp(before)}


def test_an_order_that_left_the_window_between_pages_steps_the_next_offset_back(ebay, api):
    token(api)
    api.add(responses.GET, API + ORDERS, json=orders_page(total=6, next_offset=2))
    api.add(responses.GET, API + ORDERS, json=orders_page(total=5, next_offset=4))
    api.add(responses.GET, API + ORDERS, json=orders_page(total=5, next_offset=3))
    api.add(responses.GET, API + ORDERS, json=orders_page(orders_page()["orders"][:1], total=5))
    read(ebay(), cursor=recent())
    assert [query(c)["offset"] for c in calls(api, ORDERS)] == ["0", "2", "1", "3"]


def test_a_cursor_mark_that_is_not_whole_is_ignored(ebay, api):
    token(api)
    get(api, ORDERS, no_orders())
    read(ebay(), cursor=recent(sweep={"after": "garbage", "offset": 3}))
    assert query(calls(api, ORDERS)[0])["offset"] == "0"
    assert query(calls(api, ORDERS)[0])["filter"] == window(NOW - timedelta(hours=1, minutes=5), END)


def test_a_full_read_ignores_the_cursor(ebay, api):
    token(api)
    get(api, ORDERS, no_orders())
    read(ebay(), cursor=recent(), full=True)
    start = END - LOOKBACK
    assert query(calls(api, ORDERS)[0])["filter"] == window(start, start + WINDOW)


def test_orders_map_to_records_and_a_malformed_one_is_quarantined(ebay, api):
    token(api)
    broken = copy.deepcopy(load("get_orders.json")["orders"][0])
    broken["orderId"], broken["creationDate"] = "99-99999-99999", "not a time"
    get(api, ORDERS, orders_page([broken, *load("get_orders.json")["orders"]]))
    failed, first, second = [r for page in read(ebay(), cursor=recent()) for r in page.records]
    assert isinstance(failed, Failed) and failed.external_id == "99-99999-99999" and "ValueError" in failed.error
    assert isinstance(first, OrderRecord) and len(first.lines) == 2
    assert [r.amount for r in second.refunds] == [5]


def test_an_unknown_stream_is_a_configuration_error(ebay):
    with pytest.raises(ConfigurationError, match="no “customers” stream"):
        read(ebay(), "customers")


# --- Inventory items and products --------------------------------------------------------------------------


@pytest.mark.parametrize(("first_next", "second_offset"), [("offset=1", "1"), ("offset=100", "100")])
def test_inventory_follows_the_offset_of_ebays_next_link(ebay, api, first_next, second_offset):
    token(api)
    api.add(responses.GET, API + ITEMS, json=items_page(next_link=f"{API}{ITEMS}?limit=100&{first_next}"))
    api.add(responses.GET, API + ITEMS, json=items_page([]))
    pages = read(ebay(), "inventory")
    assert [(query(c)["limit"], query(c)["offset"]) for c in calls(api, ITEMS)] == [
        ("100", "0"),
        ("100", second_offset),
    ]
    records = [r for page in pages for r in page.records]
    assert [type(r) for r in records] == [InventoryRecord] * 3
    assert [r.available for r in records] == [42, 5, 0]
    assert pages[0].cursor == {"offset": int(second_offset)} and pages[0].total == 3
    assert pages[-1].cursor == {"swept_at": stamp(NOW)}


def test_an_interrupted_inventory_sweep_goes_on_from_its_offset_and_a_finished_one_starts_again(ebay, api):
    token(api)
    get(api, ITEMS, items_page([]))
    read(ebay(), "inventory", cursor={"offset": 7})
    read(ebay(), "inventory", cursor={"swept_at": stamp(NOW - timedelta(hours=1))})
    assert [query(c)["offset"] for c in calls(api, ITEMS)] == ["7", "0"]


def test_a_next_link_without_an_offset_ends_the_sweep(ebay, api):
    token(api)
    get(api, ITEMS, items_page(next_link="https://api.ebay.com/sell/inventory/v1/inventory_item?limit=100"))
    pages = read(ebay(), "inventory")
    assert len(calls(api, ITEMS)) == 1 and pages[-1].cursor == {"swept_at": stamp(NOW)}


def test_products_are_a_product_per_lone_sku_and_per_item_group(ebay, api):
    token(api)
    get(api, ITEMS, items_page())
    records = [r for page in read(ebay(), "products") for r in page.records]
    assert [type(r) for r in records] == [ProductRecord, ProductRecord]
    assert [[v.sku for v in r.variants] for r in records] == [["MUG-BLUE"], ["TSHIRT-RED-M", "TSHIRT-RED-L"]]


def test_an_item_without_a_sku_is_quarantined(ebay, api):
    token(api)
    get(api, ITEMS, items_page([{"product": {"title": "no sku"}}, *load("get_inventory_items.json")["inventoryItems"]]))
    records = [r for page in read(ebay(), "inventory") for r in page.records]
    assert [type(r) for r in records] == [Failed, InventoryRecord, InventoryRecord, InventoryRecord]


# --- The connection test -----------------------------------------------------------------------------------


def check_answers(api, *, orders_status=200, items_status=200):
    token(api)
    scope_refused = load("error_insufficient_scope.json")
    get(api, ORDERS, orders_page(total=37) if orders_status == 200 else scope_refused, status=orders_status)
    get(api, ITEMS, items_page() if items_status == 200 else scope_refused, status=items_status)


def test_check_reports_samples_scopes_and_latency(ebay, api):
    check_answers(api)
    result = ebay().check()
    assert result.ok, result.message
    assert result.message == "Connected to eBay (production)."
    assert result.samples == {"orders": 37, "inventory": 3}
    assert result.granted == ["orders", "inventory"] and result.missing == []
    assert result.details["endpoint"] == API and result.details["environment"] == "production"
    assert result.latency_ms is not None and not result.warnings
    probe = query(calls(api, ORDERS)[0])
    assert probe["filter"] == window(END - timedelta(days=30), END) and probe["limit"] == "1"


def test_check_lists_a_scope_the_seller_did_not_grant(ebay, api):
    check_answers(api, items_status=403)
    result = ebay().check()
    assert result.ok and result.missing == ["inventory"] and result.granted == ["orders"]
    assert any("sell.inventory" in w for w in result.warnings)


@pytest.mark.parametrize(
    ("expires", "expected"),
    [
        ("2025-02-04T12:00:00Z", "expires on 2025-02-04 (in 20 days)"),
        ("2025-01-14T08:00:00Z", "expired on 2025-01-14"),
        ("soon", "is not a time"),
    ],
)
def test_check_warns_before_the_refresh_token_expires(ebay, api, expires, expected):
    check_answers(api)
    result = ebay(refresh_token_expires_at=expires).check()
    assert any(expected in w for w in result.warnings), result.warnings


def test_a_refresh_token_expiry_far_off_is_shown_without_a_warning(ebay, api):
    check_answers(api)
    result = ebay(refresh_token_expires_at="2025-06-30T00:00:00Z").check()
    assert result.details["refresh_token_expires_at"] == "2025-06-30T00:00:00+00:00"
    assert not result.warnings


def test_check_names_the_lapsed_refresh_token_when_ebay_refuses_it(ebay, api):
    token(api, status=400, body=load("identity_invalid_grant.json"))
    result = ebay(refresh_token_expires_at="2025-01-01T00:00:00Z").check()
    assert not result.ok and result.error_code == "auth"
    assert "The refresh token expired on 2025-01-01" in result.hint


def test_check_with_wrong_keys_says_to_check_them(ebay, api):
    token(api, status=401, body=load("identity_invalid_client.json"))
    result = ebay().check()
    assert not result.ok and result.error_code == "auth"
    assert "refused the app's keys" in result.message and "Application Keys" in result.hint


def test_check_warns_that_connecting_again_needs_the_runame(ebay, api):
    check_answers(api)
    result = ebay(ru_name="").check()
    assert result.ok and any("RuName" in w for w in result.warnings)


def test_check_never_retries(ebay, api):
    token(api)
    get(api, ORDERS, load("error_too_many_requests.json"), status=429, headers={"Retry-After": "30"})
    get(api, ITEMS, load("error_system.json"), status=503)
    result = ebay().check()
    assert not result.ok and result.error_code == "unavailable"
    assert len(calls(api, ORDERS)) == 1 and len(calls(api, ITEMS)) == 1


def test_check_reports_a_spent_call_limit_as_a_warning(ebay, api):
    token(api)
    get(api, ORDERS, load("error_too_many_requests.json"), status=429)
    get(api, ITEMS, items_page())
    result = ebay().check()
    assert result.ok and result.granted == ["inventory"] and "orders" not in result.samples
    assert any("call limit" in w for w in result.warnings)
    assert len(calls(api, ORDERS)) == 1


def test_a_token_endpoint_that_fails_fails_the_check_at_once(ebay, api):
    token(api, status=503, body={"error": "temporarily_unavailable"})
    result = ebay().check()
    assert not result.ok and result.error_code == "unavailable"
    assert len(calls(api, "/identity/v1/oauth2/token")) == 1
