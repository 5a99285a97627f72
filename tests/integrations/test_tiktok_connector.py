"""The TikTok Shop connector against `responses`: catalogue and registry, TikTok's error codes,
retries, pagination and the watermark rule, token refresh (before expiry, on refusal, once, under
a lock, saved to the encrypted credentials), and the connection test."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from django.core.cache import cache

from commerce.records import OrderRecord, ProductRecord
from integrations.connectors import get_connector, tiktok_client
from integrations.connectors.base import Failed
from integrations.connectors.tiktok import TikTokConnector
from integrations.connectors.tiktok_tokens import LOCK_POLLS
from integrations.errors import AuthError, BadResponse, PermissionDenied, Unavailable
from integrations.http import HttpClient
from integrations.models import Connection
from integrations.platforms import spec_for

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "tiktok"
API = "https://open-api.tiktokglobalshop.com"
AUTH = "https://auth.tiktok-shops.com"
ORDERS = "/order/202309/orders/search"
PRODUCTS = "/product/202309/products/search"
SHOPS = "/authorization/202309/shops"
REFRESH = "/api/v2/token/refresh"
NOW = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
END = NOW - timedelta(minutes=2)
CIPHER = "GCP_XF90igAAAABh00qsWgtvOiGFNqyubMt3"
CREDENTIALS = {
    "app_key": "6a1bcdkq4ubc2",
    "app_secret": "app-secret-for-tests",
    "service_id": "7123456789012345678",
    "access_token": "ROW_access-1",
    "access_token_expires_at": "2025-01-20T12:00:00Z",
    "refresh_token": "ROW_refresh-1",
    "refresh_token_expires_at": "2026-01-15T12:00:00Z",
    "shop_cipher": CIPHER,
    "shop_id": "7000714532876273420",
}


def load(name: str):
    return json.loads((FIXTURES / name).read_text())


def unix(moment: datetime) -> int:
    return int(moment.timestamp())


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture(autouse=True)
def clock(monkeypatch):
    monkeypatch.setattr(tiktok_client, "now", lambda: NOW)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def api():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def connection(make_connection, tenant_a):
    def make(**credentials):
        return make_connection(tenant_a, "tiktok", credentials={**CREDENTIALS, **credentials})

    return make


@pytest.fixture
def tiktok(connection, sleeps):
    """A TikTok connector for these credentials, on a client that records its sleeps."""

    def make(*, on=None, **credentials) -> TikTokConnector:
        return TikTokConnector(on or connection(**credentials), client=HttpClient(sleep=sleeps))

    return make


def ok(data) -> dict:
    return {"code": 0, "message": "Success", "request_id": "202501151200000101", "data": data}


def post(api, path: str, body=None, *, status: int = 200, **kwargs):
    api.add(responses.POST, API + path, json=body if body is not None else ok({}), status=status, **kwargs)


def orders_page(orders=None, token: str = "") -> dict:
    data = copy.deepcopy(load("search_orders.json")["data"])
    if orders is not None:
        data["orders"] = orders
    data["next_page_token"] = token
    return ok(data)


def products_page(token: str = "") -> dict:
    return ok({**load("search_products.json")["data"], "next_page_token": token})


def refreshed(access: str = "ROW_access-2", refresh: str = "ROW_refresh-2") -> dict:
    body = load("token_refresh.json")
    body["data"].update(access_token=access, refresh_token=refresh)
    body["data"].update(access_token_expire_in=unix(NOW + timedelta(days=7)))
    return body


def calls(api, path: str):
    return [c for c in api.calls if urlsplit(c.request.url).path == path]


def query(call) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(call.request.url).query).items()}


def body(call) -> dict:
    return json.loads(call.request.body)


def read(connector, stream="orders", cursor=None, full=False):
    return list(connector.read(stream, cursor, full=full))


# --- Catalogue and registry ------------------------------------------------------------------------


def test_connector_is_registered_for_tiktok_connections(connection):
    assert isinstance(get_connector(connection()), TikTokConnector)


def test_the_catalogue_has_the_credentials_connect_sets_and_the_connectors_streams():
    spec = spec_for("tiktok")
    fields = {f.name: f for f in spec.credentials}
    assert set(CREDENTIALS) | {"shop_name", "region"} <= set(fields)
    assert spec.secret_fields() == {"app_secret", "access_token", "refresh_token"}
    assert [name for name, f in fields.items() if f.required] == ["app_key", "app_secret"]
    assert tuple(spec.streams) == TikTokConnector.streams
    assert spec.oauth


def test_a_missing_app_secret_is_a_configuration_error_before_anything_is_sent(tiktok, api):
    result = tiktok(app_secret="").check()
    assert not result.ok and result.error_code == "configuration"
    assert "App secret" in result.message
    assert not api.calls


def test_a_connection_never_authorised_is_told_to_use_connect(tiktok, api):
    result = tiktok(access_token="", refresh_token="").check()
    assert not result.ok and result.error_code == "auth"
    assert "Connect" in result.hint
    assert not api.calls


# --- Orders: pages, windows and the watermark ------------------------------------------------------


def test_a_first_read_asks_for_every_order_sorted_by_update_time_and_maps_them(tiktok, api):
    post(api, ORDERS, orders_page())
    pages = read(tiktok())
    request = calls(api, ORDERS)[0]
    params = query(request)
    assert {k: params[k] for k in ("page_size", "sort_field", "sort_order", "shop_cipher", "app_key")} == {
        "page_size": "100",
        "sort_field": "update_time",
        "sort_order": "ASC",
        "shop_cipher": CIPHER,
        "app_key": CREDENTIALS["app_key"],
    }
    assert params["timestamp"] == str(unix(NOW)) and len(params["sign"]) == 64
    assert request.request.headers["x-tts-access-token"] == "ROW_access-1"
    assert body(request) == {"update_time_lt": unix(END)}
    (order,) = [r for page in pages for r in page.records]
    assert isinstance(order, OrderRecord) and order.total == Decimal("57.22") and len(order.lines) == 2
    assert pages[-1].cursor == {"watermark": "2025-01-15T11:58:00Z"}
    assert pages[-1].total == 1


def test_pages_follow_the_next_page_token_with_the_same_search(tiktok, api):
    post(api, ORDERS, orders_page(token="token-2"))
    post(api, ORDERS, orders_page([], token="token-3"))
    post(api, ORDERS, orders_page([]))
    pages = read(tiktok())
    first, second, third = calls(api, ORDERS)
    assert "page_token" not in query(first)
    assert (query(second)["page_token"], query(third)["page_token"]) == ("token-2", "token-3")
    assert body(first) == body(second) == body(third)
    # While a sweep pages, the cursor says how far it got and holds no page token.
    assert pages[0].cursor == {"sweep": {"before": "2025-01-15T11:58:00Z", "reached": "2023-09-10T04:13:28Z"}}
    assert "token-2" not in json.dumps([p.cursor for p in pages])
    assert pages[-1].cursor == {"watermark": "2025-01-15T11:58:00Z"}


def test_an_incremental_read_starts_at_the_watermark_less_five_minutes(tiktok, api):
    post(api, ORDERS, orders_page([]))
    read(tiktok(), cursor={"watermark": "2025-01-15T10:00:00Z"})
    assert body(calls(api, ORDERS)[0]) == {
        "update_time_ge": unix(datetime(2025, 1, 15, 9, 55, tzinfo=UTC)),
        "update_time_lt": unix(END),
    }


def test_an_interrupted_sweep_resumes_from_how_far_it_got_never_from_a_page_token(tiktok, api):
    post(api, ORDERS, orders_page([]))
    cursor = {
        "watermark": "2025-01-10T00:00:00Z",
        "sweep": {"before": "2025-01-14T00:00:00Z", "reached": "2025-01-12T06:00:00Z"},
        "page_token": "stale-token-from-yesterday",
    }
    pages = read(tiktok(), cursor=cursor)
    request = calls(api, ORDERS)[0]
    assert "page_token" not in query(request)
    assert body(request)["update_time_ge"] == unix(datetime(2025, 1, 12, 5, 55, tzinfo=UTC))
    assert pages[-1].cursor["watermark"] == "2025-01-15T11:58:00Z" and "sweep" not in pages[-1].cursor


def test_a_full_read_ignores_the_cursor(tiktok, api):
    post(api, ORDERS, orders_page([]))
    read(tiktok(), cursor={"watermark": "2025-01-15T10:00:00Z"}, full=True)
    assert "update_time_ge" not in body(calls(api, ORDERS)[0])


def test_a_malformed_order_is_quarantined_and_the_page_goes_on(tiktok, api):
    good = load("search_orders.json")["data"]["orders"][0]
    broken = {**good, "id": "999", "create_time": "not a time"}
    post(api, ORDERS, orders_page([broken, good]))
    failed, order = [r for page in read(tiktok()) for r in page.records]
    assert isinstance(failed, Failed) and failed.external_id == "999"
    assert isinstance(order, OrderRecord)


def test_a_page_token_answered_twice_is_a_bad_response_not_a_loop(tiktok, api):
    post(api, ORDERS, orders_page([], token="same"))
    with pytest.raises(BadResponse, match="same page token twice"):
        read(tiktok())
    assert len(calls(api, ORDERS)) == 2


# --- Products ----------------------------------------------------------------------------------------


def test_products_are_read_by_update_time_with_their_skus_and_stock(tiktok, api):
    post(api, PRODUCTS, products_page(token="p2"))
    post(api, PRODUCTS, ok({"products": [], "next_page_token": "", "total_count": 2}))
    pages = read(tiktok(), "products", cursor={"watermark": "2025-01-15T10:00:00Z"})
    first, second = calls(api, PRODUCTS)
    assert body(first) == {
        "update_time_ge": unix(datetime(2025, 1, 15, 9, 55, tzinfo=UTC)),
        "update_time_le": unix(END),
    }
    assert query(first)["page_size"] == "100" and query(second)["page_token"] == "p2"
    records = [r for page in pages for r in page.records]
    assert [type(r) for r in records] == [ProductRecord, ProductRecord]
    assert sum(len(v.inventory) for r in records for v in r.variants) == 4
    assert pages[0].cursor == {"watermark": "2025-01-15T10:00:00Z", "sweep": {"before": "2025-01-15T11:58:00Z"}}
    assert pages[-1].cursor == {"watermark": "2025-01-15T11:58:00Z"}


def test_a_first_products_read_has_no_lower_bound(tiktok, api):
    post(api, PRODUCTS, products_page())
    read(tiktok(), "products")
    assert body(calls(api, PRODUCTS)[0]) == {"update_time_le": unix(END)}


# --- TikTok's errors -----------------------------------------------------------------------------------


def test_too_many_requests_answered_with_http_200_is_retried_with_backoff(tiktok, api, sleeps):
    post(api, ORDERS, load("error_too_many_requests.json"))
    post(api, ORDERS, orders_page())
    connector = tiktok()
    pages = read(connector)
    assert len(calls(api, ORDERS)) == 2
    assert sum(len(p.records) for p in pages) == 1
    assert sleeps  # the connection's budget was paused for every worker and waited out


def test_an_http_429_is_retried_by_the_client(tiktok, api, sleeps):
    post(api, ORDERS, load("error_too_many_requests.json"), status=429, headers={"Retry-After": "2"})
    post(api, ORDERS, orders_page())
    read(tiktok())
    assert len(calls(api, ORDERS)) == 2
    assert sleeps and sleeps[0] == pytest.approx(2.0, abs=0.1)  # Retry-After, waited out by the budget


def test_a_rate_limit_that_outlasts_the_retries_is_rate_limited(tiktok, api):
    post(api, ORDERS, load("error_too_many_requests.json"))
    with pytest.raises(tiktok_client.RateLimited, match="36009002"):
        read(tiktok())
    assert len(calls(api, ORDERS)) == 5  # the first try and four retries


def test_a_5xx_is_retried_and_then_goes_through(tiktok, api):
    post(api, ORDERS, {"code": 36009003, "message": "Internal error."}, status=503)
    post(api, ORDERS, orders_page())
    assert sum(len(p.records) for p in read(tiktok())) == 1


def test_a_5xx_that_lasts_is_unavailable(tiktok, api):
    api.add(responses.POST, API + ORDERS, body="<html>Bad gateway</html>", status=502)
    with pytest.raises(Unavailable):
        read(tiktok())
    assert len(calls(api, ORDERS)) == 5


def test_malformed_json_is_a_bad_response(tiktok, api):
    api.add(responses.POST, API + ORDERS, body="{not json", status=200)
    with pytest.raises(BadResponse, match="malformed JSON"):
        read(tiktok())


def test_an_unknown_code_is_a_bad_response_in_tiktoks_words_with_its_request_id(tiktok, api):
    post(api, ORDERS, {"code": 36009004, "message": "Invalid page_size.", "request_id": "REQ-42", "data": {}})
    with pytest.raises(BadResponse) as caught:
        read(tiktok())
    assert "36009004: Invalid page_size." in caught.value.message and "REQ-42" in caught.value.message
    assert len(calls(api, ORDERS)) == 1  # a refused request is not retried


def test_a_missing_scope_is_a_permission_error(tiktok, api):
    post(api, ORDERS, load("error_no_scope.json"))
    with pytest.raises(PermissionDenied, match="access scope"):
        read(tiktok())


@pytest.mark.parametrize(
    ("answer", "status"),
    [("error_invalid_signature.json", 200), ("error_invalid_app_key.json", 400)],
    ids=["a wrong app secret", "a wrong app key"],
)
def test_wrong_app_credentials_fail_without_refreshing_the_token(tiktok, api, answer, status):
    api.add(responses.GET, API + SHOPS, json=load(answer), status=status)
    result = tiktok().check()
    assert not result.ok and result.error_code == "auth"
    assert "app key and app secret" in result.hint
    assert not calls(api, REFRESH)


# --- Tokens --------------------------------------------------------------------------------------------


def test_a_token_that_expires_mid_sync_is_refreshed_once_saved_and_the_sync_goes_on(tiktok, connection, api):
    shop = connection()
    post(api, ORDERS, orders_page(token="page-2"))
    post(api, ORDERS, load("error_access_token_expired.json"))
    post(api, ORDERS, orders_page([]))
    api.add(responses.GET, AUTH + REFRESH, json=refreshed())
    pages = read(tiktok(on=shop))
    tokens = [c.request.headers["x-tts-access-token"] for c in calls(api, ORDERS)]
    assert tokens == ["ROW_access-1", "ROW_access-1", "ROW_access-2"]
    assert query(calls(api, ORDERS)[2])["page_token"] == "page-2"
    assert query(calls(api, REFRESH)[0]) == {
        "app_key": CREDENTIALS["app_key"],
        "app_secret": CREDENTIALS["app_secret"],
        "refresh_token": "ROW_refresh-1",
        "grant_type": "refresh_token",
    }
    stored = Connection.objects.get(pk=shop.pk).credentials
    assert (stored["access_token"], stored["refresh_token"]) == ("ROW_access-2", "ROW_refresh-2")
    assert stored["access_token_expires_at"] == "2025-01-22T12:00:00Z"
    assert stored["shop_cipher"] == CIPHER
    assert sum(len(p.records) for p in pages) == 1


def test_a_token_refused_again_after_refreshing_asks_to_reconnect(tiktok, api):
    post(api, ORDERS, load("error_access_token_expired.json"))
    api.add(responses.GET, AUTH + REFRESH, json=refreshed())
    with pytest.raises(AuthError, match="reconnect TikTok Shop"):
        read(tiktok())
    assert len(calls(api, REFRESH)) == 1
    assert len(calls(api, ORDERS)) == 2


def test_an_http_401_without_tiktoks_code_refreshes_the_token_once(tiktok, api):
    api.add(responses.POST, API + ORDERS, body="Unauthorized", status=401)
    post(api, ORDERS, orders_page([]))
    api.add(responses.GET, AUTH + REFRESH, json=refreshed())
    read(tiktok())
    assert [c.request.headers["x-tts-access-token"] for c in calls(api, ORDERS)] == ["ROW_access-1", "ROW_access-2"]


@pytest.mark.parametrize(
    ("answer", "status"),
    [(load("token_invalid_refresh.json"), 200), ({"code": 36004004, "message": "unauthorized"}, 401)],
    ids=["a tiktok error code", "an http 401"],
)
def test_a_refused_refresh_asks_to_reconnect_tiktok_shop(tiktok, connection, api, answer, status):
    shop = connection()
    post(api, ORDERS, load("error_access_token_expired.json"))
    api.add(responses.GET, AUTH + REFRESH, json=answer, status=status)
    with pytest.raises(AuthError) as caught:
        read(tiktok(on=shop))
    assert "reconnect TikTok Shop" in caught.value.message
    if status == 200:
        assert "refresh_token is invalid or expired" in caught.value.message
    assert Connection.objects.get(pk=shop.pk).credentials["refresh_token"] == "ROW_refresh-1"


def test_a_token_about_to_expire_is_refreshed_before_it_is_used(tiktok, api):
    post(api, ORDERS, orders_page([]))
    api.add(responses.GET, AUTH + REFRESH, json=refreshed())
    read(tiktok(access_token_expires_at=(NOW + timedelta(minutes=20)).isoformat()))
    assert [c.request.headers["x-tts-access-token"] for c in calls(api, ORDERS)] == ["ROW_access-2"]


def test_a_token_further_from_expiry_is_used_as_it_is(tiktok, api):
    post(api, ORDERS, orders_page([]))
    read(tiktok(access_token_expires_at=(NOW + timedelta(minutes=45)).isoformat()))
    assert not calls(api, REFRESH)


def test_an_expired_refresh_token_asks_to_reconnect_without_calling_tiktok(tiktok, api):
    with pytest.raises(AuthError, match="refresh token expired on 2025-01-01: reconnect TikTok Shop"):
        read(tiktok(access_token_expires_at="2025-01-14T00:00:00Z", refresh_token_expires_at="2025-01-01T00:00:00Z"))
    assert not api.calls


def test_a_worker_waits_for_the_refresh_another_worker_is_doing_and_uses_its_token(tiktok, connection, api, sleeps):
    shop = connection(access_token_expires_at=(NOW + timedelta(minutes=5)).isoformat())
    connector = tiktok(on=shop)
    cache.add(connector.tokens.lock_key, "another-worker", timeout=60)

    def other_worker_finishes(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 3:
            stored = Connection.objects.get(pk=shop.pk)
            stored.credentials = {**stored.credentials, "access_token": "ROW_from-the-other-worker"}
            stored.credentials["access_token_expires_at"] = "2025-01-22T12:00:00Z"
            stored.save(update_fields=["credentials"])

    connector.client.sleep = other_worker_finishes
    post(api, ORDERS, orders_page([]))
    read(connector)
    assert not calls(api, REFRESH)
    assert calls(api, ORDERS)[0].request.headers["x-tts-access-token"] == "ROW_from-the-other-worker"


def test_a_worker_holding_an_old_token_takes_the_one_another_worker_saved(tiktok, connection, api):
    shop = connection()
    first, second = tiktok(on=Connection.objects.get(pk=shop.pk)), tiktok(on=Connection.objects.get(pk=shop.pk))
    post(api, ORDERS, load("error_access_token_expired.json"))
    post(api, ORDERS, orders_page([]))
    post(api, ORDERS, load("error_access_token_expired.json"))
    post(api, ORDERS, orders_page([]))
    api.add(responses.GET, AUTH + REFRESH, json=refreshed())
    read(first)
    # The second worker still holds the old token; TikTok refuses it, and the refreshed one is in the database.
    read(second)
    assert len(calls(api, REFRESH)) == 1
    assert [c.request.headers["x-tts-access-token"] for c in calls(api, ORDERS)] == [
        "ROW_access-1",
        "ROW_access-2",
        "ROW_access-1",
        "ROW_access-2",
    ]


def test_a_lock_that_stays_taken_gives_up_without_refreshing(tiktok, api, sleeps):
    connector = tiktok(access_token_expires_at=(NOW + timedelta(minutes=5)).isoformat())
    cache.add(connector.tokens.lock_key, "a-stuck-worker", timeout=600)
    with pytest.raises(Unavailable, match="kept refreshing"):
        read(connector)
    assert not api.calls
    assert len(sleeps) == LOCK_POLLS


def test_an_unsaved_connection_refreshes_in_memory(make_connection, tenant_a, api, sleeps):
    unsaved = Connection(tenant=tenant_a, platform="tiktok", name="draft", credentials=dict(CREDENTIALS))
    post(api, ORDERS, load("error_access_token_expired.json"))
    post(api, ORDERS, orders_page([]))
    api.add(responses.GET, AUTH + REFRESH, json=refreshed())
    connector = TikTokConnector(unsaved, client=HttpClient(sleep=sleeps))
    read(connector)
    assert unsaved.credentials["refresh_token"] == "ROW_refresh-2"
    assert connector.credentials["access_token"] == "ROW_access-2"
    assert not Connection.objects.exists()


# --- The shop ------------------------------------------------------------------------------------------


def test_a_connection_without_a_cipher_looks_its_shop_up_and_saves_it(tiktok, connection, api):
    shop = connection(shop_cipher="", shop_id="")
    api.add(responses.GET, API + SHOPS, json=load("authorized_shops.json"))
    post(api, ORDERS, orders_page([]))
    read(tiktok(on=shop))
    assert "shop_cipher" not in query(calls(api, SHOPS)[0])
    assert query(calls(api, ORDERS)[0])["shop_cipher"] == CIPHER
    stored = Connection.objects.get(pk=shop.pk).credentials
    assert (stored["shop_cipher"], stored["shop_id"], stored["shop_name"], stored["region"]) == (
        CIPHER,
        "7000714532876273420",
        "Maomao beauty shop",
        "GB",
    )


# --- The connection test -------------------------------------------------------------------------------


def check_answers(api, *, products_status=200, shops=None):
    api.add(responses.GET, API + SHOPS, json=shops or load("authorized_shops.json"))
    post(api, ORDERS, orders_page())
    post(api, PRODUCTS, products_page() if products_status == 200 else load("error_no_scope.json"))


def test_check_reports_the_shop_samples_and_latency(tiktok, api):
    check_answers(api)
    result = tiktok().check()
    assert result.ok, result.message
    assert result.message == "Connected to the TikTok Shop “Maomao beauty shop” (GB)."
    assert result.samples == {"orders": 1, "products": 2}
    assert result.granted == ["orders", "products"] and result.missing == []
    assert result.details["shop_id"] == "7000714532876273420" and result.details["endpoint"] == API
    assert result.latency_ms is not None
    assert body(calls(api, ORDERS)[0]) == {} and query(calls(api, ORDERS)[0])["page_size"] == "1"


def test_check_names_a_stream_the_app_may_not_read(tiktok, api):
    check_answers(api, products_status=403)
    result = tiktok().check()
    assert result.ok
    assert result.missing == ["products"]
    assert any("access scope" in w for w in result.warnings)


def test_check_fails_when_the_shop_no_longer_authorises_the_app(tiktok, api):
    check_answers(api)
    result = tiktok(shop_cipher="GCP_some-other-shop").check()
    assert not result.ok and result.error_code == "auth"
    assert "Maomao beauty shop (7000714532876273420)" in result.hint


def test_check_warns_about_a_refresh_token_that_expires_soon(tiktok, api):
    check_answers(api)
    result = tiktok(refresh_token_expires_at="2025-01-20T00:00:00Z").check()
    assert any("expires on 2025-01-20" in w for w in result.warnings)


def test_check_never_retries(tiktok, api):
    api.add(responses.GET, API + SHOPS, json=load("error_too_many_requests.json"), status=429)
    result = tiktok().check()
    assert not result.ok and result.error_code == "rate_limited"
    assert len(calls(api, SHOPS)) == 1


def test_check_never_retries_a_rate_limit_answered_with_http_200(tiktok, api):
    api.add(responses.GET, API + SHOPS, json=load("error_too_many_requests.json"))
    result = tiktok().check()
    assert not result.ok and result.error_code == "rate_limited"
    assert len(calls(api, SHOPS)) == 1
