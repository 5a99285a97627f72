"""Syncs from a local fake Amazon through the real connector, engine and ingest: pagination, a
429 storm, an access token that expires mid-sync, an allowance that runs out, and a sync resumed
after a day from its watermark (never from a page token), each checked by what lands in the
database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.cache import cache

from commerce.models import InventoryLevel, Order, OrderLine, Product, ProductVariant, Refund
from integrations.connectors import amazon_config
from integrations.connectors.amazon import AmazonConnector
from integrations.connectors.amazon_client import OPERATIONS, Operation
from integrations.http import HttpClient
from integrations.models import ConnectionStatus, SyncStatus
from integrations.sync import run_sync
from tests.fakes.amazon_server import FakeAmazon

pytestmark = pytest.mark.django_db

ORDERS = 250  # three pages of 100
SKUS = 12
REFUNDS = 4
NOW = datetime(2025, 3, 3, 12, 0, tzinfo=UTC)
# Plans roomy enough that no budget makes these tests wait: their sleeps do not move the clock.
ROOMY = {name: Operation(name, op.path, 1000.0, 1000) for name, op in OPERATIONS.items()}


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


class Clock:
    def __init__(self, amazon: FakeAmazon) -> None:
        self.amazon = amazon

    def __call__(self) -> datetime:
        return self.amazon.now


@pytest.fixture
def amazon(settings, monkeypatch):
    settings.INTEGRATIONS_ALLOW_PRIVATE_URLS = True
    with FakeAmazon(orders=ORDERS, skus=SKUS, refunds=REFUNDS, now=NOW) as amazon:
        monkeypatch.setattr(amazon_config, "now", Clock(amazon))  # the connector's clock is Amazon's
        yield amazon


@pytest.fixture
def shop(tenant_a, make_connection, amazon):
    return make_connection(tenant_a, "amazon", credentials=amazon.credentials(), base_url=amazon.url)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def sync(connection, sleeps, streams=("products", "orders", "inventory"), operations=ROOMY, **kwargs):
    client = HttpClient(sleep=sleeps, allow_private=True, timeout=(2.0, 5.0))
    connector = AmazonConnector(connection, client=client, operations=operations)
    return run_sync(connection, list(streams), connector=connector, **kwargs)


def test_a_full_sync_stores_orders_lines_refunds_products_and_stock(shop, amazon, sleeps):
    run = sync(shop, sleeps)
    assert run.status == SyncStatus.SUCCEEDED, run.error
    tenant = shop.tenant
    assert Order.objects.for_tenant(tenant).count() == ORDERS
    assert OrderLine.objects.for_tenant(tenant).count() == 2 * ORDERS
    assert OrderLine.objects.for_tenant(tenant).filter(variant__isnull=False).count() == 2 * ORDERS
    assert Refund.objects.for_tenant(tenant).count() == REFUNDS
    assert Product.objects.for_tenant(tenant).count() == SKUS
    assert ProductVariant.objects.for_tenant(tenant).count() == SKUS
    assert InventoryLevel.objects.for_tenant(tenant).count() == SKUS
    assert run.counts["inventory"]["failed"] == 0
    searches = amazon.seen("/orders/2026-01-01/orders")
    assert len(searches) == 3
    assert [bool(s.query.get("paginationToken")) for s in searches] == [False, True, True]
    shop.refresh_from_db()
    assert shop.status == ConnectionStatus.CONNECTED
    assert "sweep" not in shop.cursors["orders"]
    assert shop.cursors["orders"]["orders"] == {"ATVPDKIKX0DER": "2025-03-03T11:57:00Z"}


def test_a_rerun_an_hour_later_reads_only_the_overlap_and_changes_nothing(shop, amazon, sleeps):
    sync(shop, sleeps)
    amazon.advance(timedelta(hours=1))
    run = sync(shop, sleeps, streams=("orders",))
    assert run.status == SyncStatus.SUCCEEDED, run.error
    latest = amazon.seen("/orders/2026-01-01/orders")[-1].query
    assert (latest["lastUpdatedAfter"], latest["lastUpdatedBefore"]) == ("2025-03-03T11:52:00Z", "2025-03-03T12:57:00Z")
    assert Order.objects.count() == ORDERS
    assert run.counts["orders"]["created"] == 0


def test_an_order_updated_since_the_last_sync_is_updated(shop, amazon, sleeps):
    sync(shop, sleeps)
    refunded = {event["AmazonOrderId"] for event in amazon.refund_events}
    changed = next(
        o
        for o in amazon.orders.values()
        if o["fulfillment"]["fulfillmentStatus"] == "UNSHIPPED" and o["orderId"] not in refunded
    )
    amazon.advance(timedelta(hours=1))
    amazon.touch(changed["orderId"], amazon.now - timedelta(minutes=30), fulfillmentStatus="SHIPPED")
    run = sync(shop, sleeps, streams=("orders",))
    assert (run.counts["orders"]["updated"], run.counts["orders"]["created"]) == (1, 0)
    assert Order.objects.get(external_id=changed["orderId"]).fulfillment_status == "fulfilled"


def test_a_429_storm_is_waited_out(shop, amazon, sleeps):
    amazon.rate_limit(3)
    run = sync(shop, sleeps, streams=("orders",))
    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert Order.objects.count() == ORDERS
    assert len(sleeps) >= 3


def test_a_429_storm_with_rate_headers_slows_the_operation_down(shop, amazon, sleeps):
    amazon.rate_limit(2, rate="0.25")
    run = sync(shop, sleeps, streams=("orders",))
    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert cache.get(f"amazon:rate:{shop.pk}:searchOrders") == 0.25


def test_an_access_token_that_expires_mid_sync_is_renewed(shop, amazon, sleeps):
    amazon.expire_tokens(after=2)
    run = sync(shop, sleeps, streams=("orders",))
    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert Order.objects.count() == ORDERS
    assert amazon.exchanges == 2


def test_a_revoked_authorisation_fails_the_run_and_asks_to_reauthorise(shop, amazon, sleeps):
    amazon.revoke()
    run = sync(shop, sleeps, streams=("orders",))
    assert run.status == SyncStatus.FAILED and run.error_code == "auth"
    assert "re-authorise the app in Seller Central" in run.error
    shop.refresh_from_db()
    assert shop.status == ConnectionStatus.NEEDS_REAUTH


def test_a_sync_interrupted_mid_window_resumes_a_day_later_from_its_watermark(shop, amazon, sleeps):
    sync(shop, sleeps, streams=("orders",))
    amazon.advance(timedelta(hours=1))
    for n, order in enumerate(list(amazon.orders.values())[:150]):
        amazon.touch(order["orderId"], amazon.now - timedelta(minutes=50) + timedelta(seconds=n))
    watermark = shop.cursors["orders"]["orders"]["ATVPDKIKX0DER"]
    # The second run stops after its first page: the seller revokes the app's authorisation.
    amazon.revoke(after=1)
    run = sync(shop, sleeps, streams=("orders",))
    assert run.status == SyncStatus.FAILED and run.error_code == "auth"
    shop.refresh_from_db()
    assert shop.cursors["orders"]["sweep"]["marketplace"] == "ATVPDKIKX0DER"
    assert shop.cursors["orders"]["orders"]["ATVPDKIKX0DER"] == watermark
    searches = amazon.seen("/orders/2026-01-01/orders")
    stale = {s.query["paginationToken"] for s in searches if "paginationToken" in s.query}
    assert stale

    # A day later (the page tokens of then have expired), once the seller has authorised the app again.
    amazon.restore()
    amazon.advance(timedelta(hours=25))
    before = len(amazon.seen("/orders/2026-01-01/orders"))
    run = sync(shop, sleeps, streams=("orders",))
    assert run.status == SyncStatus.SUCCEEDED, run.error
    resumed = amazon.seen("/orders/2026-01-01/orders")[before:]
    assert resumed[0].query["lastUpdatedAfter"] == "2025-03-03T11:52:00Z"  # the watermark less 5 minutes
    assert not {s.query.get("paginationToken") for s in resumed} & stale
    assert Order.objects.count() == ORDERS
    shop.refresh_from_db()
    assert "sweep" not in shop.cursors["orders"]


def test_a_spent_search_orders_allowance_ends_the_run_and_the_next_one_goes_on(shop, amazon, sleeps):
    # Two requests, then one every 23 days: the third would wait far longer than a sync may.
    plan = Operation("searchOrders", OPERATIONS["searchOrders"].path, 1e-6, 2)
    tight = {**ROOMY, "searchOrders": plan}
    run = sync(shop, sleeps, streams=("orders",), operations=tight)
    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert len(amazon.seen("/orders/2026-01-01/orders")) == 2
    assert 200 <= Order.objects.count() < ORDERS
    shop.refresh_from_db()
    assert shop.cursors["orders"]["sweep"]["marketplace"] == "ATVPDKIKX0DER"
    assert "ATVPDKIKX0DER" not in shop.cursors["orders"].get("orders", {})

    # Later, with the allowance back (the plan of the default budget, roomy here).
    run = sync(shop, sleeps, streams=("orders",))
    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert Order.objects.count() == ORDERS
    shop.refresh_from_db()
    assert "sweep" not in shop.cursors["orders"]
    # The window that did not fit in one run was halved: two years, then one.
    halved = amazon.seen("/orders/2026-01-01/orders")[2].query
    span = datetime.fromisoformat(halved["lastUpdatedBefore"]) - datetime.fromisoformat(halved["lastUpdatedAfter"])
    assert span == timedelta(days=729) / 2
