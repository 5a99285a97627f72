"""Full syncs from a local fake WooCommerce store through the real connector, engine and ingest:
pagination, a 429 storm, a 5xx and a timeout mid-pagination, a key revoked mid-sync, a resumed
sync and a re-run, each checked by what lands in the database."""

from __future__ import annotations

import pytest

from commerce.models import Customer, Order, OrderLine, Product, ProductVariant, Refund
from integrations.connectors.woocommerce import WooCommerceConnector
from integrations.http import HttpClient
from integrations.models import ConnectionStatus, SyncStatus
from integrations.sync import run_sync
from tests.fakes.woocommerce_server import FakeWooCommerce

pytestmark = pytest.mark.django_db

ORDERS = 250  # three pages of 100


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def store(settings):
    settings.INTEGRATIONS_ALLOW_PRIVATE_URLS = True
    with FakeWooCommerce(orders=ORDERS, products=12, customers=30) as store:
        yield store


@pytest.fixture
def woo(tenant_a, make_connection, store):
    return make_connection(tenant_a, "woocommerce", credentials=store.credentials())


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def connector(connection, sleeps, timeout=(2.0, 5.0)) -> WooCommerceConnector:
    # No shared budget here: the engine's rate budget really waits, and these tests must not.
    return WooCommerceConnector(connection, client=HttpClient(sleep=sleeps, allow_private=True, timeout=timeout))


def sync(connection, sleeps, streams=("orders",), **kwargs):
    return run_sync(connection, list(streams), connector=connector(connection, sleeps), **kwargs)


def test_a_full_sync_stores_every_record_of_the_store(woo, store, sleeps):
    run = sync(woo, sleeps, streams=("products", "customers", "orders"))
    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert Order.objects.for_tenant(woo.tenant).count() == ORDERS
    assert OrderLine.objects.for_tenant(woo.tenant).count() == sum(len(o["line_items"]) for o in store.orders.values())
    assert Refund.objects.for_tenant(woo.tenant).count() == sum(len(r) for r in store.refunds.values())
    assert Product.objects.for_tenant(woo.tenant).count() == 12
    assert Customer.objects.for_tenant(woo.tenant).count() >= 30
    assert ProductVariant.objects.for_tenant(woo.tenant).exists()
    assert run.counts["orders"]["created"] == ORDERS
    assert run.progress["orders"]["total"] == ORDERS
    woo.refresh_from_db()
    assert woo.status == ConnectionStatus.CONNECTED
    assert "page" not in woo.cursors["orders"]


def test_a_rerun_creates_no_duplicates_and_changes_nothing(woo, sleeps):
    sync(woo, sleeps)
    run = sync(woo, sleeps, full=True)
    assert Order.objects.count() == ORDERS
    assert run.counts["orders"]["unchanged"] == ORDERS
    assert run.counts["orders"]["created"] == 0


def test_an_incremental_sync_picks_up_only_what_changed(woo, store, sleeps):
    sync(woo, sleeps)
    changed = store.touch("orders", next(iter(store.orders)))
    store.patch("orders", changed["id"], status="completed")
    run = sync(woo, sleeps)
    assert run.counts["orders"]["created"] == 0
    assert run.counts["orders"]["updated"] == 1
    assert Order.objects.get(external_id=str(changed["id"])).status == "completed"


def test_a_429_storm_with_retry_after_is_waited_out(woo, store, sleeps):
    store.rate_limit(3, retry_after=4)
    run = sync(woo, sleeps)
    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert Order.objects.count() == ORDERS
    assert sleeps.count(4.0) == 3


def test_a_5xx_in_the_middle_of_pagination_is_retried(woo, store, sleeps):
    store.fail(page=2, status=503, endpoint="orders")
    run = sync(woo, sleeps)
    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert Order.objects.count() == ORDERS


def test_a_timeout_in_the_middle_of_pagination_is_retried(woo, store, sleeps):
    store.slow(page=2, seconds=1.5, endpoint="orders")
    run = run_sync(woo, ["orders"], connector=connector(woo, sleeps, timeout=(2.0, 0.5)))
    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert Order.objects.count() == ORDERS


def test_a_key_revoked_mid_sync_fails_clearly_with_nothing_half_written(woo, store, sleeps):
    store.revoke_after(2, endpoint="orders")
    run = sync(woo, sleeps)
    assert run.status == SyncStatus.FAILED
    assert run.error_code == "auth"
    assert "consumer key" in run.error.lower()
    woo.refresh_from_db()
    assert woo.status == ConnectionStatus.NEEDS_REAUTH
    # The first page is committed whole, with its lines; nothing of the second is.
    assert Order.objects.count() == 100
    for order in Order.objects.all():
        assert order.lines.count() == len(store.orders[int(order.external_id)]["line_items"])
    assert woo.cursors["orders"]["page"] == 2


def test_a_failed_sync_resumes_from_its_cursor_once_the_store_is_back(woo, store, sleeps):
    store.revoke_after(2, endpoint="orders")
    sync(woo, sleeps)
    store.restore()
    before = len(store.seen("orders"))
    run = sync(woo, sleeps)
    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert Order.objects.count() == ORDERS
    assert run.counts["orders"]["created"] == ORDERS - 100
    resumed_pages = [r.query.get("page") for r in store.seen("orders")[before:]]
    assert resumed_pages == ["2", "3"]
