"""Full syncs from a local fake Shopify through the real connector, engine and ingest."""

from __future__ import annotations

import pytest

from commerce.models import Customer, InventoryLevel, Order, OrderLine, Product, ProductVariant
from integrations.connectors.shopify import ShopifyConnector
from integrations.models import ConnectionStatus, SyncStatus
from integrations.sync import run_sync
from tests.fakes.shopify_server import FakeClock, FakeShopify

pytestmark = pytest.mark.django_db

ORDERS = 35


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    return FakeClock().install(monkeypatch)


@pytest.fixture
def store(settings, clock):
    settings.INTEGRATIONS_ALLOW_PRIVATE_URLS = True
    server = FakeShopify(orders=ORDERS, products=6, customers=12, clock=clock).start()
    yield server
    server.stop()


@pytest.fixture
def shop(make_connection, tenant_a, store):
    return make_connection(
        tenant_a,
        "shopify",
        base_url=store.url,
        credentials={"shop_domain": "fake-shop.myshopify.com", "access_token": "shpat_fake_token"},
    )


def sync(connection, clock, streams=("orders",), **kwargs):
    connector = ShopifyConnector(connection, sleep=clock.sleep)
    connector.page_sizes = {"orders": 10, "products": 4, "customers": 5, "inventory": 5}
    return run_sync(connection, list(streams), connector=connector, **kwargs)


def test_a_full_sync_stores_orders_products_stock_and_customers(shop, clock):
    run = sync(shop, clock, streams=("products", "customers", "orders"))
    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert Order.objects.for_tenant(shop.tenant).count() == ORDERS
    assert OrderLine.objects.for_tenant(shop.tenant).exists()
    assert Product.objects.for_tenant(shop.tenant).count() == 6
    assert ProductVariant.objects.for_tenant(shop.tenant).count() == 12
    assert InventoryLevel.objects.for_tenant(shop.tenant).count() == 24
    assert Customer.objects.for_tenant(shop.tenant).count() >= 12
    shop.refresh_from_db()
    assert shop.status == ConnectionStatus.CONNECTED
    assert set(shop.cursors["orders"]) == {"since"}


def test_a_rerun_creates_no_duplicates(shop, clock):
    sync(shop, clock)
    run = sync(shop, clock, full=True)
    assert Order.objects.count() == ORDERS
    assert run.counts["orders"]["unchanged"] == ORDERS


def test_a_429_storm_is_waited_out(shop, store, clock):
    store.storm(3, retry_after=5)
    run = sync(shop, clock)
    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert Order.objects.count() == ORDERS


def test_a_5xx_mid_pagination_is_retried(shop, store, clock):
    store.fail_page(2, status=502, stream="orders")
    run = sync(shop, clock)
    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert Order.objects.count() == ORDERS


def test_a_token_revoked_mid_sync_fails_clearly_and_the_next_run_resumes(shop, store, clock):
    store.revoke_after_page(2, stream="orders")
    run = sync(shop, clock)
    assert run.status == SyncStatus.FAILED
    assert run.error_code == "auth"
    assert "access token" in run.error
    shop.refresh_from_db()
    assert shop.status == ConnectionStatus.NEEDS_REAUTH
    assert Order.objects.count() == 20
    assert "after" in shop.cursors["orders"]

    store.tokens.add("shpat_fake_token")  # the merchant reinstalls the app
    run = sync(shop, clock)
    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert Order.objects.count() == ORDERS
    assert run.counts["orders"]["created"] == ORDERS - 20


def test_an_incremental_sync_reads_only_changed_orders(shop, store, clock):
    sync(shop, clock)
    clock.sleep(60)
    store.touch("orders", 3)
    run = sync(shop, clock)
    assert run.status == SyncStatus.SUCCEEDED, run.error
    # The changed order, and the one at the watermark read again (whole-second times, see the connector).
    assert run.progress["orders"]["seen"] == 2
    assert run.counts["orders"]["updated"] == 1
