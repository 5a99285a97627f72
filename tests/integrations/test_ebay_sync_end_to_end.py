"""Syncs from a local fake eBay through the real connector, engine and ingest: offset pages, 429s
with and without Retry-After, 5xx, an access token that expires mid-sync, a revoked consent, a
malformed answer, an order that leaves the window while it pages, and a sync resumed from its
cursor, each checked by what lands in the database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from commerce.models import InventoryLevel, Order, OrderLine, Product, ProductVariant, Refund
from integrations import services
from integrations.connectors import ebay_client
from integrations.connectors.ebay import EbayConnector
from integrations.http import HttpClient, RateBudget
from integrations.models import ConnectionStatus, SyncStatus
from integrations.sync import run_sync
from tests.fakes.ebay_server import FakeEbay

pytestmark = pytest.mark.django_db

ORDERS = 450  # pages of 200, 200 and 50
SKUS = 120  # pages of 100 and 20
REFUNDS = 4
NOW = datetime(2025, 3, 3, 12, 0, tzinfo=UTC)
ORDERS_PATH = "/sell/fulfillment/v1/order"
ITEMS_PATH = "/sell/inventory/v1/inventory_item"


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def ebay(settings, monkeypatch):
    settings.INTEGRATIONS_ALLOW_PRIVATE_URLS = True
    with FakeEbay(orders=ORDERS, skus=SKUS, refunds=REFUNDS, now=NOW) as ebay:
        monkeypatch.setattr(ebay_client, "now", lambda: ebay.now)  # the connector's clock is eBay's
        yield ebay


@pytest.fixture
def shop(tenant_a, make_connection, ebay):
    return make_connection(tenant_a, "ebay", credentials=ebay.credentials(), base_url=ebay.url)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def connector(connection, sleeps) -> EbayConnector:
    # The connection's budget, roomy enough that only a 429's pause makes it wait: these sleeps
    # do not move the clock.
    budget = RateBudget(f"connection:{connection.pk}", 1000.0, 1000, sleep=sleeps)
    client = HttpClient(budget=budget, sleep=sleeps, allow_private=True, timeout=(2.0, 5.0))
    return EbayConnector(connection, client=client)


def sync(connection, sleeps, streams=("products", "orders", "inventory"), **kwargs):
    return run_sync(connection, list(streams), connector=connector(connection, sleeps), **kwargs)


def last_window(ebay) -> list[str]:
    """The offsets asked for in the last window of orders read."""
    searches = ebay.seen(ORDERS_PATH)
    last = searches[-1].query["filter"]
    return [s.query["offset"] for s in searches if s.query["filter"] == last]


def test_a_full_sync_stores_orders_lines_refunds_products_and_stock(shop, ebay, sleeps):
    run = sync(shop, sleeps)
    assert run.status == SyncStatus.SUCCEEDED, run.error
    tenant = shop.tenant
    assert Order.objects.for_tenant(tenant).count() == ORDERS
    assert OrderLine.objects.for_tenant(tenant).count() == 2 * ORDERS
    assert OrderLine.objects.for_tenant(tenant).filter(variant__isnull=False).count() == 2 * ORDERS
    assert Refund.objects.for_tenant(tenant).count() == REFUNDS
    assert Product.objects.for_tenant(tenant).count() == SKUS // 3 * 2  # lone SKUs, and groups of two
    assert ProductVariant.objects.for_tenant(tenant).count() == SKUS
    assert InventoryLevel.objects.for_tenant(tenant).count() == SKUS
    assert run.counts["inventory"]["failed"] == 0
    assert last_window(ebay) == ["0", "200", "400"]
    # eBay's next link has the page number its description promises, and it is followed.
    assert [s.query["offset"] for s in ebay.seen(ITEMS_PATH)] == ["0", "1", "0", "1"]
    shop.refresh_from_db()
    assert shop.status == ConnectionStatus.CONNECTED
    assert shop.cursors["orders"] == {"watermark": "2025-03-03T11:58:00.000Z"}
    assert shop.cursors["inventory"] == {"swept_at": "2025-03-03T12:00:00.000Z"}
    assert ebay.exchanges == 1


def test_a_rerun_an_hour_later_reads_only_the_overlap_and_changes_nothing(shop, ebay, sleeps):
    sync(shop, sleeps)
    ebay.advance(timedelta(hours=1))
    run = sync(shop, sleeps, streams=("orders",))
    assert run.status == SyncStatus.SUCCEEDED, run.error
    latest = ebay.seen(ORDERS_PATH)[-1].query
    assert latest["filter"] == "lastmodifieddate:[2025-03-03T11:53:00.000Z..2025-03-03T12:58:00.000Z]"
    assert Order.objects.count() == ORDERS
    assert run.counts["orders"]["created"] == 0


def test_an_order_modified_since_the_last_sync_is_updated(shop, ebay, sleeps):
    sync(shop, sleeps)
    changed = next(o for o in ebay.orders.values() if o["orderFulfillmentStatus"] == "NOT_STARTED")
    ebay.advance(timedelta(hours=1))
    ebay.touch(changed["orderId"], ebay.now - timedelta(minutes=30), orderFulfillmentStatus="FULFILLED")
    run = sync(shop, sleeps, streams=("orders",))
    assert (run.counts["orders"]["updated"], run.counts["orders"]["created"]) == (1, 0)
    assert Order.objects.get(external_id=changed["orderId"]).fulfillment_status == "fulfilled"


def test_429s_with_retry_after_are_waited_out_for_as_long_as_ebay_asks(shop, ebay, sleeps):
    ebay.rate_limit(3, retry_after=7)
    run = sync(shop, sleeps, streams=("orders",))
    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert Order.objects.count() == ORDERS
    # Each retry waited out eBay's seven seconds (and, since the clock of these sleeps stands still,
    # so did every request after them while the connection's budget stayed paused).
    assert len(sleeps) >= 3 and all(6 < s <= 7 for s in sleeps[:3])
    assert max(sleeps) <= 7


def test_429s_without_retry_after_back_off_and_retry(shop, ebay, sleeps):
    ebay.rate_limit(3)
    run = sync(shop, sleeps, streams=("orders",))
    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert Order.objects.count() == ORDERS
    assert len(sleeps) >= 3 and not [s for s in sleeps if s > 30]


def test_429s_that_outlast_the_retries_fail_the_run_and_the_connection_is_failing(shop, ebay, sleeps):
    ebay.rate_limit(10)
    run = sync(shop, sleeps, streams=("orders",))
    assert run.status == SyncStatus.FAILED and run.error_code == "rate_limited"
    shop.refresh_from_db()
    assert shop.status == ConnectionStatus.FAILING


def test_server_errors_are_retried(shop, ebay, sleeps):
    ebay.fail(2, status=503)
    run = sync(shop, sleeps, streams=("orders",))
    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert Order.objects.count() == ORDERS


def test_an_access_token_that_expires_mid_sync_is_renewed_once_and_the_sync_goes_on(shop, ebay, sleeps):
    # A first sync reads 24 empty 30-day windows, then the one with the orders: the token stops
    # working after its first page.
    ebay.expire_tokens(after=25)
    run = sync(shop, sleeps, streams=("orders",))
    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert Order.objects.count() == ORDERS
    assert ebay.exchanges == 2
    assert last_window(ebay) == ["0", "200", "200", "400"]
    last = ebay.seen(ORDERS_PATH)[-4:]
    first, refused, renewed, third = (s.headers["Authorization"] for s in last)
    assert first == refused != renewed == third


def test_a_revoked_consent_fails_the_run_and_asks_to_reconnect(shop, ebay, sleeps):
    ebay.revoke()
    run = sync(shop, sleeps, streams=("orders",))
    assert run.status == SyncStatus.FAILED and run.error_code == "auth"
    assert "reconnect with eBay" in run.error
    shop.refresh_from_db()
    assert shop.status == ConnectionStatus.NEEDS_REAUTH


def test_wrong_keys_fail_the_connection_test_with_needs_reauthorisation(shop, ebay):
    shop.credentials = {**shop.credentials, "client_secret": "PRD-wrong"}
    shop.save()
    result = services.test_connection(shop)
    assert not result.ok and result.error_code == "auth"
    assert "refused the app's keys" in result.message and "Application Keys" in result.hint
    shop.refresh_from_db()
    assert shop.status == ConnectionStatus.NEEDS_REAUTH


def test_the_connection_test_counts_recent_orders_and_inventory_items(shop, ebay):
    result = services.test_connection(shop)
    assert result.ok, result.message
    assert result.samples == {"orders": ORDERS, "inventory": SKUS}
    assert result.granted == ["orders", "inventory"] and not result.warnings


def test_a_malformed_answer_fails_the_run_after_the_pages_before_it_are_kept(shop, ebay, sleeps):
    ebay.malformed(1, when=lambda query: query.get("offset") == "200")
    run = sync(shop, sleeps, streams=("orders",))
    assert run.status == SyncStatus.FAILED and run.error_code == "bad_response"
    assert "malformed JSON" in run.error
    assert Order.objects.count() == 200
    shop.refresh_from_db()
    assert shop.status == ConnectionStatus.FAILING
    assert shop.cursors["orders"]["sweep"]["offset"] == 200

    run = sync(shop, sleeps, streams=("orders",))
    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert Order.objects.count() == ORDERS


def test_an_order_modified_while_the_window_pages_does_not_make_the_next_page_skip_one(shop, ebay, sleeps):
    newest = max(ebay.orders.values(), key=lambda o: (o["creationDate"], o["orderId"]))

    def modify_an_order_of_the_first_page() -> None:
        ebay.touch(newest["orderId"], ebay.now - timedelta(minutes=1))  # beyond the window's end

    ebay.schedule(modify_an_order_of_the_first_page, when=lambda query, answer: bool(answer and answer.get("orders")))
    run = sync(shop, sleeps, streams=("orders",))
    assert run.status == SyncStatus.SUCCEEDED, run.error
    # The second page found one order fewer in the window, so the third starts one place earlier.
    assert last_window(ebay) == ["0", "200", "199", "399"]
    assert Order.objects.count() == ORDERS


def test_a_sync_interrupted_mid_window_resumes_a_day_later_from_its_offset(shop, ebay, sleeps):
    sync(shop, sleeps, streams=("orders",))
    ebay.advance(timedelta(hours=1))
    for n, order in enumerate(list(ebay.orders.values())[:300]):
        ebay.touch(order["orderId"], ebay.now - timedelta(minutes=50) + timedelta(seconds=n))
    watermark = shop.cursors["orders"]["watermark"]
    # The second run stops after its first page: the seller revokes the app's consent.
    ebay.revoke(after=1)
    run = sync(shop, sleeps, streams=("orders",))
    assert run.status == SyncStatus.FAILED and run.error_code == "auth"
    shop.refresh_from_db()
    sweep = shop.cursors["orders"]["sweep"]
    assert (sweep["offset"], sweep["total"]) == (200, 300)
    assert shop.cursors["orders"]["watermark"] == watermark

    # A day later, once the seller has connected again.
    ebay.restore()
    ebay.advance(timedelta(hours=25))
    before = len(ebay.seen(ORDERS_PATH))
    run = sync(shop, sleeps, streams=("orders",))
    assert run.status == SyncStatus.SUCCEEDED, run.error
    resumed = ebay.seen(ORDERS_PATH)[before:]
    assert resumed[0].query["offset"] == "200"
    assert (
        resumed[0].query["filter"]
        == (f"lastmodifieddate:[{sweep['after']}..{sweep['before']}]")
        == "lastmodifieddate:[2025-03-03T11:53:00.000Z..2025-03-03T12:58:00.000Z]"
    )
    assert Order.objects.count() == ORDERS
    shop.refresh_from_db()
    assert "sweep" not in shop.cursors["orders"]
    assert shop.cursors["orders"]["watermark"] == "2025-03-04T13:58:00.000Z"
