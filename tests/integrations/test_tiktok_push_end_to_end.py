"""Pushes to a local fake TikTok Shop through commerce's pusher and the real connector, signed as
TikTok checks them: a synced order's package shipped once however often it is pushed, and then
synced back as fulfilled; stock set by the synced ids and by seller SKU, in the default sales
warehouse or a given one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from commerce import pushes
from commerce.models import FulfillmentStatus, Order, OrderLine, ProductVariant
from commerce.pushes import FulfilmentPush, StockPush
from integrations.connectors import tiktok_client
from integrations.connectors.tiktok import TikTokConnector
from integrations.http import HttpClient
from integrations.models import SyncStatus
from integrations.sync import run_sync
from tests.fakes.tiktok_server import FakeTikTok

pytestmark = pytest.mark.django_db

NOW = datetime(2025, 3, 3, 12, 0, tzinfo=UTC)
SHIP = "/fulfillment/202309/packages/{}/ship"
USPS = "6617675021119438849"
DEFAULT_WAREHOUSE, OTHER_WAREHOUSE = "7068517275539719942", "7068517275539719961"


@pytest.fixture
def tiktok(settings, monkeypatch):
    settings.INTEGRATIONS_ALLOW_PRIVATE_URLS = True
    with FakeTikTok(orders=3, products=2, now=NOW) as tiktok:
        monkeypatch.setattr(tiktok_client, "now", lambda: tiktok.now)  # the connector's clock is TikTok's
        yield tiktok


@pytest.fixture
def shop(tenant_a, make_connection, tiktok):
    return make_connection(tenant_a, "tiktok", credentials=tiktok.credentials(), base_url=tiktok.url)


def sync(shop, streams, **kwargs):
    connector = TikTokConnector(shop, client=HttpClient(sleep=lambda s: None, allow_private=True, timeout=(2.0, 5.0)))
    run = run_sync(shop, streams, connector=connector, **kwargs)
    assert run.status == SyncStatus.SUCCEEDED, run.error
    return run


def seller_shipped_order(tiktok) -> dict:
    order = next(o for o in tiktok.orders.values() if o["status"] == "AWAITING_SHIPMENT")
    order["shipping_type"] = "SELLER"
    return order


def test_a_synced_order_ships_once_however_often_it_is_pushed_and_syncs_back_fulfilled(shop, tiktok):
    order = seller_shipped_order(tiktok)
    sync(shop, ["orders"])
    synced = Order.objects.for_tenant(shop.tenant).get(external_id=order["id"])
    assert synced.fulfillment_status == FulfillmentStatus.UNFULFILLED
    lines = tuple((line.external_id, line.quantity) for line in OrderLine.objects.filter(order=synced))
    push = FulfilmentPush(
        tenant_id=shop.tenant_id,
        connection_id=shop.pk,
        order_external_id=synced.external_id,
        tracking_number="9400111899223197428490",
        carrier="usps",
        lines=lines,
    )

    first, again = pushes.pusher().fulfil(push), pushes.pusher().fulfil(push)

    package = order["packages"][0]["id"]
    assert (first.ok, first.remote_id) == (True, package), first.message
    assert (again.ok, again.remote_id) == (True, package), again.message
    assert tiktok.shipments == [
        {"package_id": package, "tracking_number": "9400111899223197428490", "provider_id": USPS}
    ]
    assert len(tiktok.seen(SHIP.format(package))) == 1
    tiktok.advance(timedelta(minutes=5))
    sync(shop, ["orders"])
    synced.refresh_from_db()
    assert synced.fulfillment_status == FulfillmentStatus.FULFILLED


def test_a_carrier_the_order_cannot_ship_with_is_refused_with_tiktoks_list(shop, tiktok):
    order = seller_shipped_order(tiktok)
    result = pushes.pusher().fulfil(
        FulfilmentPush(
            tenant_id=shop.tenant_id,
            connection_id=shop.pk,
            order_external_id=order["id"],
            tracking_number="RM123456785GB",
            carrier="royal_mail",
        )
    )
    assert (result.ok, result.retryable) == (False, False)
    assert "does not offer Royal Mail" in result.message
    assert "USPS, UPS, FedEx, Amazon Shipping, Other" in result.message
    assert tiktok.shipments == []


def test_stock_lands_in_tiktoks_warehouses_by_synced_ids_and_by_seller_sku(shop, tiktok):
    sync(shop, ["products"])
    variant = ProductVariant.objects.for_tenant(shop.tenant).select_related("product").get(sku="SKU-0-1")
    by_ids = StockPush(
        tenant_id=shop.tenant_id,
        connection_id=shop.pk,
        sku=variant.sku,
        quantity=42,
        product_external_id=variant.product.external_id,
        variant_external_id=variant.external_id,
    )
    by_sku = StockPush(
        tenant_id=shop.tenant_id, connection_id=shop.pk, sku="SKU-1-0", quantity=5, location_id=OTHER_WAREHOUSE
    )

    first, second = pushes.pusher().set_stock(by_ids), pushes.pusher().set_stock(by_sku)

    assert (first.ok, first.remote_id) == (True, variant.external_id), first.message
    assert second.ok, second.message
    levels = {
        (sku["seller_sku"], level["warehouse_id"]): level["quantity"]
        for product in tiktok.products.values()
        for sku in product["skus"]
        for level in sku["inventory"]
    }
    assert levels[("SKU-0-1", DEFAULT_WAREHOUSE)] == 42
    assert levels[("SKU-1-0", OTHER_WAREHOUSE)] == 5
    assert second.remote_id == next(
        sku["id"] for product in tiktok.products.values() for sku in product["skus"] if sku["seller_sku"] == "SKU-1-0"
    )
