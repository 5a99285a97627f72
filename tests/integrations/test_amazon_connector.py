"""The Amazon SP-API connector against `responses`: configuration, LWA tokens and their cache,
refresh once then fail, per-operation rate limits, pagination and the watermark rule, inventory,
refunds, and the connection test."""

from __future__ import annotations

import copy
import itertools
import json
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from django.core.cache import cache

from commerce.records import InventoryRecord, OrderRecord, ProductRecord
from integrations.connectors import amazon_config, get_connector
from integrations.connectors.amazon import AmazonConnector
from integrations.connectors.amazon_client import OPERATIONS, Operation
from integrations.connectors.amazon_streams import LOOKBACK
from integrations.connectors.base import Failed
from integrations.errors import AuthError, PermissionDenied, RateLimited
from integrations.http import HttpClient
from integrations.platforms import spec_for
from integrations.tokens import LOCK_POLLS

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "amazon"
NA = "https://sellingpartnerapi-na.amazon.com"
LWA = "https://api.amazon.com/auth/o2/token"
US, CA, UK = "ATVPDKIKX0DER", "A2EUQ1WTGCTBG2", "A1F83G8C2ARO7P"
SEARCH = "/orders/2026-01-01/orders"
SUMMARIES = "/fba/inventory/v1/summaries"
EVENTS = "/finances/v0/financialEvents"
PARTICIPATIONS = "/sellers/v1/marketplaceParticipations"
NOW = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
CREDENTIALS = {
    "lwa_client_id": "amzn1.application-oa2-client.0123456789abcdef",
    "lwa_client_secret": "amzn1.oa2-cs.v1.secret",
    "refresh_token": "Atzr|refresh-token",
    "seller_id": "A3TH9S8BH6GOGM",
    "region": "NA",
    "marketplace_ids": US,
}


def load(name: str):
    return json.loads((FIXTURES / name).read_text())


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture(autouse=True)
def clock(monkeypatch):
    monkeypatch.setattr(amazon_config, "now", lambda: NOW)


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
        return make_connection(tenant_a, "amazon", credentials={**CREDENTIALS, **credentials}, base_url=base_url)

    return make


@pytest.fixture
def amazon(connection, sleeps):
    """An Amazon connector for these credentials, on a client that records its sleeps."""

    def make(base_url: str = "", *, on=None, operations=None, **credentials) -> AmazonConnector:
        connector = on or connection(base_url, **credentials)
        return AmazonConnector(connector, client=HttpClient(sleep=sleeps), operations=operations)

    return make


# Plans roomy enough that no budget waits: the fake clock of these tests never moves.
ROOMY = {name: Operation(name, op.path, 1000.0, 1000) for name, op in OPERATIONS.items()}


def token(api, access: str = "Atza|first", expires_in: int = 3600, *, url: str = LWA, status: int = 200, body=None):
    body = body if body is not None else {"access_token": access, "token_type": "bearer", "expires_in": expires_in}
    api.add(responses.POST, url, json=body, status=status)


def get(api, path: str, body=None, *, status: int = 200, headers=None, base: str = NA):
    api.add(responses.GET, base + path, json=body if body is not None else {}, status=status, headers=headers)


def calls(api, path: str):
    return [c for c in api.calls if urlsplit(c.request.url).path == path]


def query(call) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(call.request.url).query).items()}


def orders_page(orders=None, next_token: str | None = None) -> dict:
    body = {"orders": load("search_orders.json")["orders"] if orders is None else orders}
    if next_token:
        body["pagination"] = {"nextToken": next_token}
    return body


def no_refunds(api):
    get(api, EVENTS, {"payload": {"FinancialEvents": {}}})


def read(connector, stream="orders", cursor=None, full=False):
    return list(connector.read(stream, cursor, full=full))


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- Registry, catalogue and configuration ----------------------------------------------------------


def test_connector_is_registered_for_amazon_connections(connection):
    assert isinstance(get_connector(connection()), AmazonConnector)


def test_the_catalogue_says_aws_credentials_are_not_used_and_the_streams_match_the_connector():
    spec = spec_for("amazon")
    fields = {f.name: f for f in spec.credentials}
    for name in ("role_arn", "aws_access_key_id", "aws_secret_access_key"):
        assert not fields[name].required
        assert "no longer signs" in fields[name].help_text
    assert not fields["sandbox"].required and not fields["lwa_client_secret_expires_at"].required
    assert tuple(spec.streams) == AmazonConnector.streams


def test_an_unknown_marketplace_id_is_a_configuration_error_before_anything_is_sent(amazon, api):
    result = amazon(marketplace_ids=f"{US},NOTAMARKET").check()
    assert not result.ok and result.error_code == "configuration"
    assert "NOTAMARKET" in result.message and US in result.hint
    assert not api.calls


def test_a_marketplace_of_another_region_is_a_configuration_error(amazon, api):
    result = amazon(marketplace_ids=UK).check()
    assert not result.ok and result.error_code == "configuration"
    assert "EU region" in result.message and "Set the region to EU" in result.hint


def test_marketplace_ids_are_comma_separated_and_deduplicated(amazon):
    connector = amazon(marketplace_ids=f" {US}, {CA};{US} ")
    assert [m.id for m in connector.config.marketplaces] == [US, CA]


@pytest.mark.parametrize(
    ("region", "sandbox", "expected"),
    [
        ("NA", "", "https://sellingpartnerapi-na.amazon.com"),
        ("EU", "", "https://sellingpartnerapi-eu.amazon.com"),
        ("FE", "true", "https://sandbox.sellingpartnerapi-fe.amazon.com"),
    ],
)
def test_the_region_and_the_sandbox_switch_choose_the_endpoint(amazon, region, sandbox, expected):
    marketplace = {"NA": US, "EU": UK, "FE": "A1VC38T7YXB528"}[region]
    assert amazon(region=region, marketplace_ids=marketplace, sandbox=sandbox).api.base_url == expected


def test_the_base_url_override_serves_sp_api_and_the_token_endpoint(amazon, api):
    token(api, url="https://proxy.example.com/auth/o2/token")
    get(api, SUMMARIES, load("inventory_summaries.json") | {"pagination": {}}, base="https://proxy.example.com")
    records = [r for page in read(amazon("https://proxy.example.com/"), "inventory") for r in page.records]
    assert len(records) == 2


# --- LWA tokens ----------------------------------------------------------------------------------------


def test_the_refresh_token_buys_an_access_token_sent_as_x_amz_access_token(amazon, api):
    token(api, "Atza|abc")
    get(api, SUMMARIES, {"payload": {"inventorySummaries": []}})
    read(amazon(), "inventory")
    exchange = calls(api, "/auth/o2/token")[0].request
    assert parse_qs(exchange.body) == {
        "grant_type": ["refresh_token"],
        "refresh_token": [CREDENTIALS["refresh_token"]],
        "client_id": [CREDENTIALS["lwa_client_id"]],
        "client_secret": [CREDENTIALS["lwa_client_secret"]],
    }
    request = calls(api, SUMMARIES)[0].request
    assert request.headers["x-amz-access-token"] == "Atza|abc"
    assert "Authorization" not in request.headers


def test_the_access_token_is_cached_and_shared_by_every_worker_of_the_connection(amazon, connection, api):
    token(api)
    get(api, SUMMARIES, {"payload": {"inventorySummaries": []}})
    shop = connection()
    read(amazon(on=shop), "inventory")
    read(amazon(on=shop), "inventory")
    assert len(calls(api, "/auth/o2/token")) == 1
    assert len(calls(api, SUMMARIES)) == 2


def test_a_token_within_a_minute_of_its_expiry_is_not_kept(amazon, connection, api):
    token(api, expires_in=60)
    get(api, SUMMARIES, {"payload": {"inventorySummaries": []}})
    shop = connection()
    read(amazon(on=shop), "inventory")
    read(amazon(on=shop), "inventory")
    assert len(calls(api, "/auth/o2/token")) == 2


def test_a_new_refresh_token_never_uses_the_old_ones_cached_token(amazon, connection, api):
    token(api)
    get(api, SUMMARIES, {"payload": {"inventorySummaries": []}})
    shop = connection()
    read(amazon(on=shop), "inventory")
    shop.credentials = {**shop.credentials, "refresh_token": "Atzr|reauthorised"}
    read(amazon(on=shop), "inventory")
    assert len(calls(api, "/auth/o2/token")) == 2


def test_a_worker_waits_for_the_token_another_worker_is_fetching(amazon, api, sleeps):
    connector = amazon()
    tokens = connector.api.tokens
    cache.add(tokens.lock_key, "another-worker", timeout=60)

    def other_worker_finishes(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 3:
            cache.set(tokens.key, "Atza|from-the-other-worker", timeout=600)

    connector.client.sleep = other_worker_finishes
    get(api, SUMMARIES, {"payload": {"inventorySummaries": []}})
    read(connector, "inventory")
    assert not calls(api, "/auth/o2/token")
    assert calls(api, SUMMARIES)[0].request.headers["x-amz-access-token"] == "Atza|from-the-other-worker"


def test_a_lock_that_stays_taken_is_not_waited_on_for_ever(amazon, api, sleeps):
    connector = amazon()
    cache.add(connector.api.tokens.lock_key, "a-dead-worker", timeout=600)
    token(api)
    get(api, SUMMARIES, {"payload": {"inventorySummaries": []}})
    read(connector, "inventory")
    assert len(calls(api, "/auth/o2/token")) == 1
    assert len(sleeps) == LOCK_POLLS


def test_a_401_renews_the_token_once_and_the_request_goes_through(amazon, api):
    token(api, "Atza|old")
    token(api, "Atza|new")
    get(api, SUMMARIES, load("error_unauthorized.json"), status=401)
    get(api, SUMMARIES, {"payload": {"inventorySummaries": []}})
    read(amazon(), "inventory")
    assert [c.request.headers["x-amz-access-token"] for c in calls(api, SUMMARIES)] == ["Atza|old", "Atza|new"]


def test_a_second_401_after_renewing_says_to_reauthorise_in_seller_central(amazon, api):
    token(api, "Atza|old")
    token(api, "Atza|new")
    get(api, SUMMARIES, load("error_unauthorized.json"), status=401)
    with pytest.raises(AuthError) as caught:
        read(amazon(), "inventory")
    assert "refresh token expired or revoked: re-authorise the app in seller central" in caught.value.message.lower()
    assert len(calls(api, "/auth/o2/token")) == 2
    assert len(calls(api, SUMMARIES)) == 2


def test_a_revoked_refresh_token_is_refused_by_lwa_with_the_same_advice(amazon, api):
    token(api, status=400, body=load("lwa_invalid_grant.json"))
    with pytest.raises(AuthError, match="re-authorise the app in Seller Central"):
        read(amazon(), "inventory")
    assert not calls(api, SUMMARIES)


def test_a_403_after_renewing_is_a_missing_role(amazon, api):
    token(api)
    get(api, SUMMARIES, load("error_unauthorized.json"), status=403)
    with pytest.raises(PermissionDenied) as caught:
        read(amazon(), "inventory")
    assert "Amazon Fulfillment" in caught.value.hint
    assert "Unauthorized" in caught.value.message  # Amazon's own words come along
    assert len(calls(api, "/auth/o2/token")) == 2


def test_a_token_that_expires_in_the_middle_of_a_sync_is_renewed_and_the_sync_goes_on(amazon, api):
    token(api, "Atza|first")
    token(api, "Atza|second")
    first = {**orders_page(next_token="page-2")}
    api.add(responses.GET, NA + SEARCH, json=first)
    api.add(responses.GET, NA + SEARCH, json=load("error_unauthorized.json"), status=403)
    api.add(responses.GET, NA + SEARCH, json=orders_page([]))
    no_refunds(api)
    pages = read(amazon())
    assert [c.request.headers["x-amz-access-token"] for c in calls(api, SEARCH)] == [
        "Atza|first",
        "Atza|first",
        "Atza|second",
    ]
    assert query(calls(api, SEARCH)[2])["paginationToken"] == "page-2"
    assert sum(len(p.records) for p in pages) == 1


def test_a_token_dropped_from_the_cache_between_pages_is_fetched_again(amazon, api):
    token(api, "Atza|first")
    token(api, "Atza|second")
    connector = amazon()
    api.add(responses.GET, NA + SEARCH, json=orders_page(next_token="page-2"))
    api.add(responses.GET, NA + SEARCH, json=orders_page([]))
    no_refunds(api)
    pages = connector.read("orders", None)
    next(pages)
    cache.delete(connector.api.tokens.key)  # expired
    list(pages)
    assert [c.request.headers["x-amz-access-token"] for c in calls(api, SEARCH)] == ["Atza|first", "Atza|second"]


# --- Rate limits ----------------------------------------------------------------------------------------


def test_each_operation_has_the_budget_of_its_usage_plan(amazon):
    connector = amazon()
    inventory = connector.api.budget("getInventorySummaries")
    orders = connector.api.budget("searchOrders")
    assert (inventory.burst, inventory.window) == (2, 1.0)
    assert (orders.burst, round(orders.window)) == (20, round(20 / 0.0056))
    assert inventory.key != orders.key
    assert OPERATIONS["getOrder"].rate == 0.5 and OPERATIONS["getOrder"].burst == 30


def test_the_rate_limit_header_moves_the_operations_budget_for_every_worker(amazon, connection, api):
    token(api)
    get(api, SEARCH, orders_page([]), headers={"x-amzn-RateLimit-Limit": "0.0167"})
    no_refunds(api)
    shop = connection()
    connector = amazon(on=shop)
    read(connector)
    budget = connector.api.budget("searchOrders")
    assert budget.rate == 0.0167 and round(budget.window) == round(20 / 0.0167)
    assert amazon(on=shop).api.budget("searchOrders").rate == 0.0167
    assert amazon(on=shop).api.budget("getOrder").rate == 0.5


def test_a_rate_limit_header_that_is_no_number_is_ignored(amazon, api):
    token(api)
    get(api, SEARCH, orders_page([]), headers={"x-amzn-RateLimit-Limit": "string"})
    no_refunds(api)
    connector = amazon()
    read(connector)
    assert connector.api.budget("searchOrders").rate == 0.0056


def test_a_429_without_rate_headers_waits_with_backoff_and_retries(amazon, api, sleeps):
    token(api)
    get(api, SUMMARIES, load("error_quota_exceeded.json"), status=429)
    get(api, SUMMARIES, {"payload": {"inventorySummaries": []}})
    connector = amazon()
    read(connector, "inventory")
    assert len(calls(api, SUMMARIES)) == 2
    assert sleeps  # the budget's pause was waited out
    assert connector.api.budget("getInventorySummaries").rate == 2.0


def test_a_429_with_a_rate_header_slows_that_operation_down(amazon, api):
    token(api)
    get(api, SUMMARIES, load("error_quota_exceeded.json"), status=429, headers={"x-amzn-RateLimit-Limit": "0.5"})
    get(api, SUMMARIES, {"payload": {"inventorySummaries": []}})
    connector = amazon()
    read(connector, "inventory")
    budget = connector.api.budget("getInventorySummaries")
    assert (budget.rate, budget.window) == (0.5, 4.0)
    assert connector.api.budget("searchOrders").rate == 0.0056


def test_a_429_that_outlasts_the_retries_is_rate_limited(amazon, api):
    token(api)
    get(api, SUMMARIES, load("error_quota_exceeded.json"), status=429)
    with pytest.raises(RateLimited):
        read(amazon(operations=ROOMY), "inventory")
    assert len(calls(api, SUMMARIES)) == 5


def test_a_spent_search_orders_allowance_ends_the_stream_where_it_is(amazon, api, monkeypatch):
    token(api)
    no_refunds(api)
    connector = amazon()
    budget = connector.api.budget("searchOrders")
    # The middle of a budget window, held there: the allowance cannot renew during the test.
    middle = (int(time.time() // budget.window) + 0.5) * budget.window
    monkeypatch.setattr(time, "time", lambda: middle)
    for _ in range(budget.burst):
        budget.acquire()
    cursor = {"orders": {US: iso(NOW - timedelta(days=1))}}
    pages = read(connector, cursor=cursor)
    assert not calls(api, SEARCH)
    assert pages[0].records == [] and pages[0].cursor["orders"] == cursor["orders"]
    assert calls(api, EVENTS)  # refunds have an allowance of their own


# --- Orders: pagination, windows and the watermark ------------------------------------------------------


def test_a_first_read_sweeps_the_last_two_years_with_items_and_buyer_details(amazon, api):
    token(api)
    get(api, SEARCH, orders_page())
    no_refunds(api)
    pages = read(amazon())
    params = query(calls(api, SEARCH)[0])
    end = NOW - timedelta(minutes=3)
    assert params == {
        "lastUpdatedAfter": iso(end - LOOKBACK),
        "lastUpdatedBefore": iso(end),
        "marketplaceIds": US,
        "maxResultsPerPage": "100",
        "includedData": "BUYER,RECIPIENT,PROCEEDS,FULFILLMENT,CANCELLATION",
    }
    (order,) = [r for page in pages for r in page.records]
    assert isinstance(order, OrderRecord) and len(order.lines) == 2
    assert pages[-1].cursor["orders"] == {US: iso(end)}
    assert "sweep" not in pages[-1].cursor


def test_pages_follow_next_token_within_the_same_window(amazon, api):
    token(api)
    api.add(responses.GET, NA + SEARCH, json=orders_page(next_token="token-2"))
    api.add(responses.GET, NA + SEARCH, json=orders_page([], next_token="token-3"))
    api.add(responses.GET, NA + SEARCH, json=orders_page([]))
    no_refunds(api)
    pages = read(amazon())
    first, second, third = (query(c) for c in calls(api, SEARCH))
    assert "paginationToken" not in first
    assert (second["paginationToken"], third["paginationToken"]) == ("token-2", "token-3")
    assert {k: v for k, v in second.items() if k != "paginationToken"} == first
    # While a window pages, the cursor marks it and holds no page token.
    assert pages[0].cursor["sweep"]["marketplace"] == US
    assert "token-2" not in json.dumps(pages[0].cursor)
    assert pages[0].cursor.get("orders", {}) == {}


def test_an_interrupted_window_restarts_from_the_watermark_less_the_overlap_never_from_a_token(amazon, api):
    token(api)
    get(api, SEARCH, orders_page([]))
    no_refunds(api)
    watermark = NOW - timedelta(days=10)
    cursor = {
        "orders": {US: iso(watermark)},
        "spans": {US: timedelta(days=8).total_seconds()},
        "sweep": {"marketplace": US, "after": iso(watermark), "before": iso(watermark + timedelta(days=8))},
        "token": "stale-token-from-yesterday",
    }
    read(amazon(), cursor=cursor)
    first = query(calls(api, SEARCH)[0])
    assert "paginationToken" not in first
    assert first["lastUpdatedAfter"] == iso(watermark - timedelta(minutes=5))
    # The window that did not fit in a run is halved.
    assert first["lastUpdatedBefore"] == iso(watermark - timedelta(minutes=5) + timedelta(days=4))


def test_windows_follow_each_other_to_now_and_the_watermark_moves_with_each(amazon, api):
    token(api)
    get(api, SEARCH, orders_page([]))
    no_refunds(api)
    watermark = NOW - timedelta(days=3)
    cursor = {"orders": {US: iso(watermark)}, "spans": {US: timedelta(days=1).total_seconds()}}
    pages = read(amazon(), cursor=cursor)
    windows = [(q["lastUpdatedAfter"], q["lastUpdatedBefore"]) for q in map(query, calls(api, SEARCH))]
    assert windows[0][0] == iso(watermark - timedelta(minutes=5))
    assert all(a[1] == b[0] for a, b in itertools.pairwise(windows))
    assert windows[-1][1] == iso(NOW - timedelta(minutes=3))
    order_pages = [p for p in pages if "orders" in p.cursor and p.cursor["orders"].get(US)]
    assert [p.cursor["orders"][US] for p in order_pages][:2] == [windows[0][1], windows[1][1]]


def test_a_full_read_ignores_the_cursor(amazon, api):
    token(api)
    get(api, SEARCH, orders_page([]))
    no_refunds(api)
    read(amazon(), cursor={"orders": {US: iso(NOW - timedelta(days=1))}}, full=True)
    assert query(calls(api, SEARCH)[0])["lastUpdatedAfter"] == iso(NOW - timedelta(minutes=3) - LOOKBACK)


def test_each_marketplace_is_swept_with_its_own_watermark(amazon, api):
    token(api)
    get(api, SEARCH, orders_page([]))
    no_refunds(api)
    pages = read(amazon(marketplace_ids=f"{US},{CA}"), cursor={"orders": {CA: iso(NOW - timedelta(days=2))}})
    assert [query(c)["marketplaceIds"] for c in calls(api, SEARCH)] == [US, CA]
    assert set(pages[-1].cursor["orders"]) == {US, CA}


def test_the_marketplace_furthest_behind_goes_first(amazon, api):
    token(api)
    get(api, SEARCH, orders_page([]))
    no_refunds(api)
    cursor = {"orders": {US: iso(NOW - timedelta(hours=1)), CA: iso(NOW - timedelta(days=3))}}
    read(amazon(marketplace_ids=f"{US},{CA}"), cursor=cursor)
    assert [query(c)["marketplaceIds"] for c in calls(api, SEARCH)] == [CA, US]


def test_orders_are_read_without_buyer_details_when_amazon_refuses_them(amazon, api):
    token(api)
    api.add(responses.GET, NA + SEARCH, json=load("error_unauthorized.json"), status=403)
    api.add(responses.GET, NA + SEARCH, json=load("error_unauthorized.json"), status=403)
    api.add(responses.GET, NA + SEARCH, json=orders_page())
    no_refunds(api)
    pages = read(amazon())
    assert query(calls(api, SEARCH)[-1])["includedData"] == "PROCEEDS,FULFILLMENT,CANCELLATION"
    assert sum(len(p.records) for p in pages) == 1


def test_a_malformed_order_is_quarantined_and_the_page_goes_on(amazon, api):
    token(api)
    broken = copy.deepcopy(load("search_orders.json")["orders"][0])
    broken["orderId"], broken["createdTime"] = "999-0000000-0000000", "not a time"
    get(api, SEARCH, orders_page([broken, *load("search_orders.json")["orders"]]))
    no_refunds(api)
    (failed, order) = [r for page in read(amazon()) for r in page.records]
    assert isinstance(failed, Failed) and failed.external_id == "999-0000000-0000000"
    assert isinstance(order, OrderRecord)


# --- Refunds -----------------------------------------------------------------------------------------------


def test_refunds_come_with_their_order_fetched_again(amazon, api):
    token(api)
    get(api, SEARCH, orders_page([]))
    get(api, EVENTS, load("refund_events.json"))
    order = load("search_orders.json")["orders"][0]
    get(api, f"{SEARCH}/123-4567890-1234567", {"order": order})
    pages = read(
        amazon(), cursor={"orders": {US: iso(NOW - timedelta(hours=1))}, "refunds": iso(NOW - timedelta(days=2))}
    )
    params = query(calls(api, EVENTS)[0])
    assert params["PostedAfter"] == iso(NOW - timedelta(days=3))
    assert params["PostedBefore"] == iso(NOW - timedelta(minutes=3))
    (record,) = [r for page in pages for r in page.records]
    assert record.external_id == "123-4567890-1234567"
    assert [(r.amount, r.currency) for r in record.refunds] == [(Decimal("45.00"), "USD")]
    assert pages[-1].cursor["refunds"] == iso(NOW - timedelta(minutes=3))


def test_an_order_refunded_on_two_pages_is_sent_again_newer_with_both_refunds(amazon, api):
    token(api)
    get(api, SEARCH, orders_page([]))
    later = load("refund_events.json")["payload"]["FinancialEvents"]["RefundEventList"][0]
    earlier = {**later, "PostedDate": "2025-01-09T08:00:00Z"}
    api.add(
        responses.GET,
        NA + EVENTS,
        json={"payload": {"NextToken": "n2", "FinancialEvents": {"RefundEventList": [later]}}},
    )
    api.add(responses.GET, NA + EVENTS, json={"payload": {"FinancialEvents": {"RefundEventList": [earlier]}}})
    get(api, f"{SEARCH}/123-4567890-1234567", {"order": load("search_orders.json")["orders"][0]})
    cursor = {"orders": {US: iso(NOW)}, "refunds": iso(NOW - timedelta(hours=1))}
    first, second = [r for page in read(amazon(), cursor=cursor) for r in page.records]
    assert len(first.refunds) == 1 and len(second.refunds) == 2
    assert second.updated_at > first.updated_at


def test_a_refund_of_an_order_amazon_no_longer_shows_is_quarantined(amazon, api):
    token(api)
    get(api, SEARCH, orders_page([]))
    get(api, EVENTS, load("refund_events.json"))
    get(api, f"{SEARCH}/123-4567890-1234567", {"errors": [{"code": "NotFound", "message": "x"}]}, status=404)
    cursor = {"orders": {US: iso(NOW)}, "refunds": iso(NOW - timedelta(hours=1))}
    records = [r for page in read(amazon(), cursor=cursor) for r in page.records]
    assert [type(r) for r in records] == [Failed]
    assert "no longer shows" in records[0].error


def test_refunds_are_read_in_windows_of_at_most_180_days(amazon, api):
    token(api)
    get(api, SEARCH, orders_page([]))
    no_refunds(api)
    read(amazon())
    windows = [
        (datetime.fromisoformat(q["PostedAfter"]), datetime.fromisoformat(q["PostedBefore"]))
        for q in map(query, calls(api, EVENTS))
    ]
    assert len(windows) == 5
    assert all(before - after <= timedelta(days=180) for after, before in windows)


def test_without_the_finance_role_orders_still_sync(amazon, api):
    token(api)
    get(api, SEARCH, orders_page())
    get(api, EVENTS, load("error_unauthorized.json"), status=403)
    pages = read(amazon())
    assert sum(len(p.records) for p in pages) == 1
    assert "refunds" not in pages[-1].cursor


# --- Inventory and products ------------------------------------------------------------------------------


def test_inventory_reads_summaries_with_details_page_by_page(amazon, api):
    token(api)
    api.add(responses.GET, NA + SUMMARIES, json=load("inventory_summaries.json"))
    api.add(responses.GET, NA + SUMMARIES, json={"payload": {"inventorySummaries": []}})
    pages = read(amazon(), "inventory")
    first, second = (query(c) for c in calls(api, SUMMARIES))
    assert first == {"details": "true", "granularityType": "Marketplace", "granularityId": US, "marketplaceIds": US}
    assert second["nextToken"] == "seed-token-ATVPDKIKX0DER-2"
    records = [r for page in pages for r in page.records]
    assert [type(r) for r in records] == [InventoryRecord, InventoryRecord]
    assert [r.available for r in records] == [42, 0]
    assert pages[0].cursor == {"marketplaces": {}}
    assert pages[-1].cursor == {"marketplaces": {US: iso(NOW)}}


def test_an_incremental_inventory_read_asks_for_what_changed_since_the_last_sweep(amazon, api):
    token(api)
    get(api, SUMMARIES, {"payload": {"inventorySummaries": []}})
    read(amazon(), "inventory", cursor={"marketplaces": {US: iso(NOW - timedelta(hours=6))}})
    read(amazon(), "inventory", cursor={"marketplaces": {US: iso(NOW - timedelta(days=600))}})
    recent, ancient = (query(c) for c in calls(api, SUMMARIES))
    assert recent["startDateTime"] == iso(NOW - timedelta(hours=6, minutes=5))
    assert "startDateTime" not in ancient  # beyond FBA's 18 months: everything


def test_products_come_from_the_same_summaries(amazon, api):
    token(api)
    get(api, SUMMARIES, load("inventory_summaries.json") | {"pagination": {}})
    records = [r for page in read(amazon(), "products") for r in page.records]
    assert [type(r) for r in records] == [ProductRecord, ProductRecord]
    assert [r.variants[0].sku for r in records] == ["ECHO-DOT-4-CHARCOAL", "FIRE-TV-4K-2021"]


# --- The connection test -----------------------------------------------------------------------------------


def check_answers(api, participations=None, *, inventory_status=200):
    token(api)
    get(api, PARTICIPATIONS, participations or load("marketplace_participations.json"))
    get(api, SEARCH, orders_page())
    get(
        api,
        SUMMARIES,
        load("inventory_summaries.json") if inventory_status == 200 else load("error_unauthorized.json"),
        status=inventory_status,
    )
    no_refunds(api)


def test_check_reports_marketplaces_samples_roles_and_latency(amazon, api):
    check_answers(api)
    result = amazon(marketplace_ids=f"{US},{CA}").check()
    assert result.ok, result.message
    assert "US, CA" in result.message
    assert result.samples == {"orders": 1, "inventory": 2}
    assert result.granted == ["orders", "inventory", "finances"] and result.missing == []
    assert result.details["marketplaces"] == [US, CA] and result.details["endpoint"] == NA
    assert result.latency_ms is not None


def test_check_fails_for_a_marketplace_the_seller_is_not_registered_in(amazon, api):
    participations = load("marketplace_participations.json")
    participations["payload"][1]["participation"]["isParticipating"] = False
    check_answers(api, participations)
    result = amazon(marketplace_ids=f"{US},{CA}").check()
    assert not result.ok and result.error_code == "configuration"
    assert result.message == f"The seller is not registered in CA ({CA})."
    assert "Remove it from the Marketplace IDs" in result.hint and f"US ({US})" in result.hint


def test_check_lists_a_role_the_app_lacks(amazon, api):
    check_answers(api, inventory_status=403)
    result = amazon().check()
    assert result.ok
    assert result.missing == ["inventory"]
    assert any("Amazon Fulfillment" in w for w in result.warnings)


def test_check_explains_a_revoked_authorisation(amazon, api):
    token(api, status=400, body=load("lwa_invalid_grant.json"))
    result = amazon().check()
    assert not result.ok and result.error_code == "auth"
    assert "re-authorise the app in Seller Central" in result.message


@pytest.mark.parametrize(
    ("expires", "expected"),
    [
        (NOW.date() + timedelta(days=20), "expires on 2025-02-04 (in 20 days)"),
        (NOW.date() - timedelta(days=1), "expired on 2025-01-14"),
        ("soon", "is not a date"),
    ],
)
def test_check_warns_about_the_client_secrets_rotation_deadline(amazon, api, expires, expected):
    check_answers(api)
    result = amazon(lwa_client_secret_expires_at=str(expires)).check()
    assert any(expected in w for w in result.warnings), result.warnings


def test_a_secret_rotation_deadline_far_off_is_shown_without_a_warning(amazon, api):
    check_answers(api)
    result = amazon(lwa_client_secret_expires_at="2025-06-30").check()
    assert result.details["lwa_client_secret_expires_at"] == "2025-06-30"
    assert not any("secret" in w for w in result.warnings)


def test_a_lapsed_secret_that_lwa_refuses_is_named_in_the_hint(amazon, api):
    token(api, status=401, body={"error": "invalid_client"})
    result = amazon(lwa_client_secret_expires_at="2025-01-01").check()
    assert not result.ok and "expired on 2025-01-01" in result.hint


def test_check_warns_that_aws_credentials_are_not_used(amazon, api):
    check_answers(api)
    result = amazon(aws_access_key_id="AKIAEXAMPLE").check()
    assert result.ok
    assert any("no longer signs" in w for w in result.warnings)


def test_check_never_retries(amazon, api, sleeps):
    token(api)
    get(api, PARTICIPATIONS, load("error_quota_exceeded.json"), status=429)
    result = amazon().check()
    assert not result.ok and result.error_code == "rate_limited"
    assert len(calls(api, PARTICIPATIONS)) == 1
