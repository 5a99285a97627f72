"""Lists: `ordering` among each endpoint's whitelist, kept by the cursor links; the filters of the
integrations list and sync history."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from integrations.models import ConnectionStatus, SyncRun, SyncStatus

from .conftest import assert_error_shape, bearer

pytestmark = pytest.mark.django_db


@pytest.fixture
def orders(make_connection, make_order, tenant_a):
    connection = make_connection(tenant_a)
    now = timezone.now()
    return [
        make_order(connection, number=str(n), total=Decimal(total), placed_at=now - timedelta(days=n))
        for n, total in enumerate(["30.00", "10.00", "50.00", "20.00", "40.00"], start=1)
    ]


def numbers(response) -> list[str]:
    return [row["number"] for row in response.json()["results"]]


def test_orders_come_newest_first_by_default(api_client, api_key, orders):
    assert numbers(api_client.get("/api/v1/orders", **bearer(api_key[1]))) == ["1", "2", "3", "4", "5"]


@pytest.mark.parametrize(
    ("ordering", "expected"),
    [
        ("total", ["2", "4", "1", "5", "3"]),
        ("-total", ["3", "5", "1", "4", "2"]),
        ("placed_at", ["5", "4", "3", "2", "1"]),
    ],
)
def test_orders_can_be_ordered_by_a_whitelisted_field(api_client, api_key, orders, ordering, expected):
    response = api_client.get("/api/v1/orders", {"ordering": ordering}, **bearer(api_key[1]))
    assert numbers(response) == expected


def test_the_cursor_links_keep_the_ordering(api_client, api_key, orders):
    seen = []
    url = "/api/v1/orders?ordering=-total&page_size=2"
    while url:
        body = api_client.get(url, **bearer(api_key[1])).json()
        seen += [row["number"] for row in body["results"]]
        url = body["next"]
        if url:
            assert "ordering=-total" in url
    assert seen == ["3", "5", "1", "4", "2"]


def test_an_ordering_off_the_whitelist_is_400_listing_the_choices(api_client, api_key, orders):
    response = api_client.get("/api/v1/orders", {"ordering": "email"}, **bearer(api_key[1]))
    assert response.status_code == 400
    assert_error_shape(response.json(), "invalid")
    message = response.json()["error"]["details"]["ordering"]
    assert "-placed_at" in message
    assert "total" in message


def test_a_related_field_cannot_be_ordered_by(api_client, api_key, orders):
    response = api_client.get("/api/v1/orders", {"ordering": "tenant__name"}, **bearer(api_key[1]))
    assert response.status_code == 400


def test_a_page_size_is_capped(api_client, api_key, orders):
    response = api_client.get("/api/v1/orders", {"page_size": 2}, **bearer(api_key[1]))
    assert len(response.json()["results"]) == 2


@pytest.fixture
def connections(make_connection, tenant_a, tenant_b):
    return {
        "shop": make_connection(tenant_a, "shopify", "Shop", status=ConnectionStatus.CONNECTED),
        "woo": make_connection(tenant_a, "woocommerce", "Woo", status=ConnectionStatus.FAILING, enabled=False),
        "theirs": make_connection(tenant_b, "shopify", "Theirs", status=ConnectionStatus.CONNECTED),
    }


def names(response) -> list[str]:
    return [row["name"] for row in response.json()["results"]]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, ["Shop", "Woo"]),
        ({"platform": "woocommerce"}, ["Woo"]),
        ({"status": "connected"}, ["Shop"]),
        ({"enabled": "false"}, ["Woo"]),
        ({"ordering": "-name"}, ["Woo", "Shop"]),
    ],
)
def test_the_integrations_list_filters_and_orders(api_client, api_key, connections, params, expected):
    assert names(api_client.get("/api/v1/integrations", params, **bearer(api_key[1]))) == expected


def test_the_integrations_list_filters_by_updated_since(api_client, api_key, connections):
    later = (timezone.now() + timedelta(minutes=5)).isoformat()
    assert names(api_client.get("/api/v1/integrations", {"updated_since": later}, **bearer(api_key[1]))) == []


@pytest.mark.parametrize(("param", "value"), [("platform", "myspace"), ("status", "happy"), ("enabled", "maybe")])
def test_an_unknown_filter_value_is_400(api_client, api_key, connections, param, value):
    response = api_client.get("/api/v1/integrations", {param: value}, **bearer(api_key[1]))
    assert response.status_code == 400
    assert param in response.json()["error"]["details"]


def test_the_sync_history_filters_by_status(api_client, api_key, connections):
    shop = connections["shop"]
    SyncRun.objects.create(tenant=shop.tenant, connection=shop, status=SyncStatus.FAILED)
    ok = SyncRun.objects.create(tenant=shop.tenant, connection=shop, status=SyncStatus.SUCCEEDED)
    response = api_client.get(
        f"/api/v1/integrations/{shop.pk}/sync-runs", {"status": "succeeded"}, **bearer(api_key[1])
    )
    assert [row["id"] for row in response.json()["results"]] == [ok.pk]
