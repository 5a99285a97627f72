"""Usage analytics per key: counted in the cache per request, drained into ApiUsage rows per day,
endpoint (the route, not the path), method and status."""

from __future__ import annotations

import datetime

import pytest
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext

from tenants import usage
from tenants.models import ApiUsage

from .conftest import bearer

pytestmark = pytest.mark.django_db

# Noon UTC on 1 March 2027, a minute boundary.
NOON = datetime.datetime(2027, 3, 1, 12, 0, tzinfo=datetime.UTC).timestamp()


def rows(api_key) -> dict[tuple[str, str, int], int]:
    return {(row.method, row.endpoint, row.status_code): row.count for row in ApiUsage.objects.filter(api_key=api_key)}


@pytest.fixture
def order(make_connection, make_order, tenant_a):
    return make_order(make_connection(tenant_a))


def test_requests_are_counted_per_route_method_and_status(api_client, api_key, order):
    key, raw = api_key
    for _ in range(3):
        api_client.get("/api/v1/orders", **bearer(raw))
    api_client.get(f"/api/v1/orders/{order.pk}", **bearer(raw))
    api_client.get("/api/v1/orders/987654", **bearer(raw))
    api_client.get("/api/v1/integrations/", **bearer(raw))

    usage.drain(everything=True)

    assert rows(key) == {
        ("GET", "/api/v1/orders", 200): 3,
        ("GET", "/api/v1/orders/{pk}", 200): 1,
        ("GET", "/api/v1/orders/{pk}", 404): 1,
        ("GET", "/api/v1/integrations", 200): 1,
    }
    assert set(ApiUsage.objects.values_list("tenant", flat=True)) == {key.tenant_id}


def test_refused_requests_are_counted_with_their_status(api_client, make_key):
    key, raw = make_key(["products:read"])
    api_client.get("/api/v1/orders", **bearer(raw))
    usage.drain(everything=True)
    assert rows(key) == {("GET", "/api/v1/orders", 403): 1}


def test_requests_that_fail_authentication_or_are_signed_in_are_not_counted(api_client, api_key, make_member, tenant_a):
    key, raw = api_key
    key.revoke()
    api_client.get("/api/v1/orders", **bearer(raw))
    api_client.force_login(make_member(tenant_a))
    api_client.get("/api/v1/orders")
    usage.drain(everything=True)
    assert not ApiUsage.objects.exists()


def test_a_request_writes_nothing_to_the_database_for_usage(api_client, api_key):
    _, raw = api_key
    api_client.get("/api/v1/me", **bearer(raw))
    with CaptureQueriesContext(db_connection) as queries:
        api_client.get("/api/v1/me", **bearer(raw))
    assert not [q["sql"] for q in queries if ApiUsage._meta.db_table in q["sql"]]


def test_draining_adds_to_the_rows_it_finds(api_key):
    key, _ = api_key
    usage.record(key, "/api/v1/orders", "GET", 200, now=NOON)
    usage.drain(everything=True)
    usage.record(key, "/api/v1/orders", "GET", 200, now=NOON + 1)
    usage.record(key, "/api/v1/orders", "GET", 200, now=NOON + 2)
    usage.drain(everything=True)
    assert rows(key) == {("GET", "/api/v1/orders", 200): 3}
    assert usage.drain(everything=True) == 0
    assert rows(key) == {("GET", "/api/v1/orders", 200): 3}


def test_a_minute_is_drained_only_once_it_has_settled(api_key):
    key, _ = api_key
    usage.record(key, "/api/v1/orders", "GET", 200, now=NOON + 10)
    assert usage.drain(now=NOON + 90) == 0
    assert not ApiUsage.objects.exists()
    assert usage.drain(now=NOON + 121) == 1
    assert rows(key) == {("GET", "/api/v1/orders", 200): 1}


def test_draining_stops_at_the_first_unsettled_minute(api_key):
    key, _ = api_key
    usage.record(key, "/api/v1/orders", "GET", 200, now=NOON)
    usage.record(key, "/api/v1/customers", "GET", 200, now=NOON + 300)
    usage.drain(now=NOON + 130)
    assert rows(key) == {("GET", "/api/v1/orders", 200): 1}
    usage.drain(now=NOON + 430)
    assert rows(key) == {("GET", "/api/v1/orders", 200): 1, ("GET", "/api/v1/customers", 200): 1}


def test_counts_are_filed_under_their_utc_day(api_key):
    key, _ = api_key
    usage.record(key, "/api/v1/orders", "GET", 200, now=NOON - 12 * 3600 - 30)  # 23:59:30 the day before
    usage.record(key, "/api/v1/orders", "GET", 200, now=NOON)
    usage.drain(everything=True)
    days = dict(ApiUsage.objects.values_list("day", "count"))
    assert days == {datetime.date(2027, 2, 28): 1, datetime.date(2027, 3, 1): 1}


def test_two_drains_at_once_do_not_count_twice(api_key):
    from django.core.cache import cache

    key, _ = api_key
    usage.record(key, "/api/v1/orders", "GET", 200, now=NOON)
    cache.add("apiusage:lock", 1, 300)  # another process is draining
    assert usage.drain(everything=True) == 0
    cache.delete("apiusage:lock")
    usage.drain(everything=True)
    assert rows(key) == {("GET", "/api/v1/orders", 200): 1}


@pytest.mark.parametrize(
    ("route", "label"),
    [
        ("api/v1/^orders/?$", "/api/v1/orders"),
        ("api/v1/^orders/(?P<pk>[0-9]+)/?$", "/api/v1/orders/{pk}"),
        ("api/v1/^integrations/(?P<pk>[0-9]+)/sync-runs/?$", "/api/v1/integrations/{pk}/sync-runs"),
        ("api/v1/me", "/api/v1/me"),
        ("dashboard/api-keys/<int:pk>/", "/dashboard/api-keys/{pk}"),
    ],
)
def test_an_endpoint_is_named_by_its_route(route, label):
    assert usage.route_label(route) == label


def test_the_summary_has_every_day_each_endpoint_and_the_error_rate(api_key):
    key, _ = api_key
    today = datetime.date(2027, 3, 1)
    ApiUsage.objects.create(
        tenant=key.tenant, api_key=key, day=today, endpoint="/api/v1/orders", method="GET", status_code=200, count=8
    )
    ApiUsage.objects.create(
        tenant=key.tenant, api_key=key, day=today, endpoint="/api/v1/orders", method="GET", status_code=429, count=2
    )
    ApiUsage.objects.create(
        tenant=key.tenant,
        api_key=key,
        day=today - datetime.timedelta(days=3),
        endpoint="/api/v1/me",
        method="GET",
        status_code=200,
        count=5,
    )
    ApiUsage.objects.create(  # 31 days ago: outside the window
        tenant=key.tenant,
        api_key=key,
        day=today - datetime.timedelta(days=30),
        endpoint="/api/v1/me",
        method="GET",
        status_code=200,
        count=99,
    )

    summary = usage.key_summary(key, today=today)

    assert len(summary["days"]) == 30
    assert summary["days"][-1] == {"day": today, "requests": 10, "errors": 2, "error_rate": 20.0, "share": 100}
    assert summary["days"][-4]["requests"] == 5
    assert summary["requests"] == 15
    assert summary["errors"] == 2
    assert summary["error_rate"] == 13.3
    assert summary["endpoints"] == [
        {"method": "GET", "endpoint": "/api/v1/orders", "requests": 10, "errors": 2, "error_rate": 20.0},
        {"method": "GET", "endpoint": "/api/v1/me", "requests": 5, "errors": 0, "error_rate": 0.0},
    ]


def test_the_usage_endpoint_shows_the_keys_figures(api_client, make_key, order):
    key, raw = make_key(["orders:read", "keys:read"])
    api_client.get("/api/v1/orders", **bearer(raw))
    api_client.get("/api/v1/orders/987654", **bearer(raw))
    usage.drain(everything=True)

    response = api_client.get(f"/api/v1/api-keys/{key.pk}/usage", **bearer(raw))

    assert response.status_code == 200
    body = response.json()
    assert body["requests"] == 2
    assert body["errors"] == 1
    assert body["error_rate"] == 50.0
    assert len(body["days"]) == 30
    assert {(e["endpoint"], e["requests"]) for e in body["endpoints"]} == {
        ("/api/v1/orders", 1),
        ("/api/v1/orders/{pk}", 1),
    }


def test_another_tenants_key_usage_is_404(api_client, make_key, tenant_b):
    _, raw = make_key(["keys:read"])
    other, _ = make_key(tenant=tenant_b)
    assert api_client.get(f"/api/v1/api-keys/{other.pk}/usage", **bearer(raw)).status_code == 404
