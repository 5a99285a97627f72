"""GET and PUT /api/v1/inventory/{sku}: a SKU's stock across channels, read with products:read and
set with products:write; the new figure is pushed to every listing and each listing shows how its
push went; another tenant's SKU is a 404 like any unknown one."""

from __future__ import annotations

import pytest

from commerce.models import Oversell, StockItem, StockListing
from commerce.pushes import PushResult
from tenants.models import ApiKeyScope, AuditLog, Role
from tests.commerce.stock_world import (  # noqa: F401  (the fixtures)
    SKU,
    commit_fixture,
    item,
    mug_fixture,
    pusher_fixture,
    run_pushes,
    sell,
    shop_fixture,
    sync_product,
    woo_fixture,
)

from .conftest import assert_error_shape, bearer

pytestmark = pytest.mark.django_db


@pytest.fixture
def reader(make_key) -> str:
    return make_key([ApiKeyScope.PRODUCTS_READ])[1]


@pytest.fixture
def writer(make_key) -> str:
    return make_key([ApiKeyScope.PRODUCTS_READ, ApiKeyScope.PRODUCTS_WRITE])[1]


def test_a_sku_shows_its_figure_listings_levels_and_pushes(api_client, reader, mug, shop, woo):
    response = api_client.get(f"/api/v1/inventory/{SKU}", **bearer(reader))

    assert response.status_code == 200
    body = response.json()
    assert (body["sku"], body["on_hand"], body["reorder_point"], body["low_stock"]) == (SKU, 10, None, False)
    assert body["reorder_point_in_force"] == mug.tenant.default_reorder_point
    listings = {listing["platform"]: listing for listing in body["listings"]}
    assert set(listings) == {"shopify", "woocommerce"}
    assert listings["woocommerce"]["variant_external_id"] == "woocommerce-V1"
    assert listings["woocommerce"]["push"]["status"] == "never"
    assert sorted((level["platform"], level["available"]) for level in body["levels"]) == [
        ("shopify", 10),
        ("woocommerce", 10),
    ]
    assert body["open_conflicts"] == [] and body["oversold"] == []


def test_setting_a_sku_pushes_to_every_listing_and_shows_each_result(
    api_client, writer, mug, shop, woo, pusher, commit
):
    pusher.answers[woo.pk] = [PushResult(ok=False, message="Invalid product ID.")]
    with commit():
        response = api_client.put(f"/api/v1/inventory/{SKU}", {"quantity": 4}, format="json", **bearer(writer))
    assert response.status_code == 200
    assert response.json()["on_hand"] == 4
    assert {listing["push"]["status"] for listing in response.json()["listings"]} == {"queued"}
    run_pushes()

    after = api_client.get(f"/api/v1/inventory/{SKU}", **bearer(writer)).json()
    pushes = {listing["platform"]: listing["push"] for listing in after["listings"]}
    assert (pushes["shopify"]["status"], pushes["shopify"]["quantity"]) == ("pushed", 4)
    assert (pushes["woocommerce"]["status"], pushes["woocommerce"]["message"]) == ("failed", "Invalid product ID.")
    assert AuditLog.objects.filter(action="stock.set", details__via="api").exists()


def test_the_reorder_point_can_be_set_with_the_figure(api_client, writer, mug):
    response = api_client.put(
        f"/api/v1/inventory/{SKU}", {"quantity": 4, "reorder_point": 4}, format="json", **bearer(writer)
    )
    assert (response.json()["reorder_point"], response.json()["low_stock"]) == (4, True)


def test_a_sku_with_a_slash_is_found(api_client, reader, commit, shop, pusher):
    sync_product(commit, shop, sku="TEE/RED", available=2)
    assert api_client.get("/api/v1/inventory/TEE%2FRED", **bearer(reader)).json()["sku"] == "TEE/RED"
    assert api_client.get("/api/v1/inventory/TEE/RED/", **bearer(reader)).json()["sku"] == "TEE/RED"


def test_oversold_sales_are_listed(api_client, reader, mug, shop, commit):
    StockItem.objects.filter(pk=mug.pk).update(on_hand=0)
    sell(commit, shop, (SKU, 2))
    body = api_client.get(f"/api/v1/inventory/{SKU}", **bearer(reader)).json()
    assert [(o["quantity"], o["short"]) for o in body["oversold"]] == [(2, 2)]
    assert Oversell.objects.count() == 1


@pytest.mark.parametrize("body", [{"quantity": -1}, {}, {"quantity": "many"}, {"quantity": 1, "reorder_point": -2}])
def test_a_bad_figure_is_a_400_and_changes_nothing(api_client, writer, mug, body):
    response = api_client.put(f"/api/v1/inventory/{SKU}", body, format="json", **bearer(writer))
    assert response.status_code == 400
    assert_error_shape(response.json(), "invalid")
    assert item().on_hand == 10


def test_setting_needs_products_write(api_client, reader, mug):
    response = api_client.put(f"/api/v1/inventory/{SKU}", {"quantity": 1}, format="json", **bearer(reader))
    assert response.status_code == 403
    assert response.json()["error"]["details"] == {"required_scope": "products:write"}
    assert item().on_hand == 10


def test_reading_needs_products_read(api_client, make_key, mug):
    raw = make_key([ApiKeyScope.ORDERS_READ])[1]
    assert api_client.get(f"/api/v1/inventory/{SKU}", **bearer(raw)).status_code == 403


def test_a_viewer_signed_in_reads_but_cannot_set(client, make_member, tenant_a, mug):
    client.force_login(make_member(tenant_a, Role.VIEWER))
    assert client.get(f"/api/v1/inventory/{SKU}").status_code == 200
    response = client.put(f"/api/v1/inventory/{SKU}", {"quantity": 1}, content_type="application/json")
    assert response.status_code == 403
    assert item().on_hand == 10


def test_an_unknown_sku_is_a_404(api_client, writer, mug):
    response = api_client.put("/api/v1/inventory/NOPE", {"quantity": 1}, format="json", **bearer(writer))
    assert response.status_code == 404
    assert_error_shape(response.json(), "not_found")


def test_another_tenants_sku_is_a_404_and_stays_as_it_was(api_client, make_key, tenant_b, mug, pusher):
    theirs = make_key(ApiKeyScope.values, tenant=tenant_b)[1]
    assert api_client.get(f"/api/v1/inventory/{SKU}", **bearer(theirs)).status_code == 404
    response = api_client.put(f"/api/v1/inventory/{SKU}", {"quantity": 0}, format="json", **bearer(theirs))
    assert response.status_code == 404
    assert "Alpha" not in response.content.decode()
    assert item().on_hand == 10 and not StockListing.objects.exclude(push_status="never").exists()


def test_the_inventory_list_is_still_the_platforms_levels(api_client, reader, mug):
    rows = api_client.get("/api/v1/inventory", **bearer(reader)).json()["results"]
    assert sorted(row["sku"] for row in rows) == [SKU, SKU]
