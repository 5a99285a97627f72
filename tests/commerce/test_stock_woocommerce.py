"""End to end through the real pusher (integrations.pushes) and the WooCommerce connector, with
WooCommerce's REST API played by `responses`: a SKU set through the API lands on the synced
variation, and WooCommerce's own reason for refusing shows on the listing."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import responses
from django.utils import timezone
from responses import matchers

from commerce.ingest import ingest_products
from commerce.models import PushStatus, StockListing
from commerce.records import InventoryRecord, ProductRecord, VariantRecord
from tenants.models import ApiKey, ApiKeyScope
from tests.api.conftest import bearer
from tests.fakes.hook_receiver import run_queued_tasks

from .stock_world import commit_fixture, source_of  # noqa: F401  (the fixtures)

pytestmark = pytest.mark.django_db

SITE = "https://shop.example.com"
API = f"{SITE}/wp-json/wc/v3"


@pytest.fixture
def woo(make_connection, tenant_a):
    return make_connection(
        tenant_a,
        "woocommerce",
        name="Alpha Woo",
        credentials={"site_url": SITE, "consumer_key": "ck_x", "consumer_secret": "cs_x"},
    )


@pytest.fixture
def tote(commit, woo):
    """A variable WooCommerce product (44) whose variation 45 is TOTE-NAT, 7 in stock."""
    at = timezone.now() - timedelta(hours=1)
    level = InventoryRecord("45@default", "45", 7, location_id="default", location_name="Default", updated_at=at)
    variation = VariantRecord(
        "45", sku="TOTE-NAT", price=Decimal("12"), currency="USD", updated_at=at, inventory=[level]
    )
    with commit():
        ingest_products(source_of(woo), [ProductRecord("44", "Canvas Tote", updated_at=at, variants=[variation])])
    return StockListing.objects.get(connection=woo)


@pytest.fixture
def api():
    with responses.RequestsMock() as mock:
        yield mock


def put_stock(api_client, tenant, commit, quantity: int):
    _, raw = ApiKey.generate(tenant, "stock key", scopes=[ApiKeyScope.PRODUCTS_READ, ApiKeyScope.PRODUCTS_WRITE])
    with commit():
        response = api_client.put("/api/v1/inventory/TOTE-NAT", {"quantity": quantity}, format="json", **bearer(raw))
    assert response.status_code == 200
    run_queued_tasks()
    return api_client.get("/api/v1/inventory/TOTE-NAT", **bearer(raw)).json()


def test_stock_set_through_the_api_lands_on_the_woocommerce_variation(api, api_client, tenant_a, commit, tote):
    api.put(
        f"{API}/products/44/variations/45",
        json={"id": 45, "stock_quantity": 3},
        match=[matchers.json_params_matcher({"manage_stock": True, "stock_quantity": 3})],
    )

    body = put_stock(api_client, tenant_a, commit, 3)

    [listing] = body["listings"]
    assert listing["push"]["status"] == "pushed"
    assert (listing["push"]["quantity"], listing["push"]["remote_id"]) == (3, "45")
    assert len(api.calls) == 1


def test_woocommerces_reason_for_refusing_shows_on_the_listing(api, api_client, tenant_a, commit, tote):
    api.put(
        f"{API}/products/44/variations/45",
        status=400,
        json={"code": "woocommerce_rest_product_invalid_id", "message": "Invalid ID.", "data": {"status": 400}},
    )

    body = put_stock(api_client, tenant_a, commit, 3)

    [listing] = body["listings"]
    assert listing["push"]["status"] == "failed"
    assert "Invalid ID." in listing["push"]["message"]
    assert StockListing.objects.get(pk=tote.pk).push_status == PushStatus.FAILED
    assert body["on_hand"] == 3  # the hub's figure stands; the listing waits for a person
