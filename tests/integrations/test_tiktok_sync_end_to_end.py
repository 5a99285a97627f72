"""Syncs from a local fake TikTok Shop through the real connector, engine and ingest: pagination,
a 429 storm, an access token that expires mid-sync (refreshed once, the new tokens saved
encrypted), a revoked authorisation, two workers refreshing at once, and a sync resumed a day
later from where it got (never from a page token), each checked by what lands in the database."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection as db
from django.db import connections

from commerce.models import InventoryLevel, Order, OrderLine, Product, ProductVariant
from integrations.connectors import tiktok_client
from integrations.connectors.tiktok import TikTokConnector
from integrations.http import HttpClient, RateBudget
from integrations.models import Connection, ConnectionStatus, SyncStatus
from integrations.sync import run_sync
from tests.fakes.tiktok_server import FakeTikTok

pytestmark = pytest.mark.django_db

ORDERS = 250  # three pages of 100
PRODUCTS = 6  # two SKUs each
NOW = datetime(2025, 3, 3, 12, 0, tzinfo=UTC)
ORDERS_PATH = "/order/202309/orders/search"


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def tiktok(settings, monkeypatch):
    settings.INTEGRATIONS_ALLOW_PRIVATE_URLS = True
    with FakeTikTok(orders=ORDERS, products=PRODUCTS, now=NOW) as tiktok:
        monkeypatch.setattr(tiktok_client, "now", lambda: tiktok.now)  # the connector's clock is TikTok's
        yield tiktok


@pytest.fixture
def shop(tenant_a, make_connection, tiktok):
    return make_connection(tenant_a, "tiktok", credentials=tiktok.credentials(), base_url=tiktok.url)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def sync(connection, sleeps, streams=("products", "orders"), **kwargs):
    client = HttpClient(sleep=sleeps, allow_private=True, timeout=(2.0, 5.0))
    connector = TikTokConnector(connection, client=client)
    # A budget roomy enough never to wait: the sleeps of these tests do not move the clock.
    connector.budget = RateBudget(f"connection:{connection.pk}", 1000.0, 1000, sleep=sleeps)
    return run_sync(connection, list(streams), connector=connector, **kwargs)


def stored_column(pk: int) -> bytes:
    with db.cursor() as cursor:
        cursor.execute("SELECT credentials FROM integrations_connection WHERE id = %s", [pk])
        return bytes(cursor.fetchone()[0])


def test_a_full_sync_stores_orders_lines_products_variants_and_stock(shop, tiktok, sleeps):
    run = sync(shop, sleeps)
    assert run.status == SyncStatus.SUCCEEDED, run.error
    tenant = shop.tenant
    assert Order.objects.for_tenant(tenant).count() == ORDERS
    assert OrderLine.objects.for_tenant(tenant).count() == 2 * ORDERS
    assert OrderLine.objects.for_tenant(tenant).filter(variant__isnull=False).count() == 2 * ORDERS
    assert Product.objects.for_tenant(tenant).count() == PRODUCTS
    assert ProductVariant.objects.for_tenant(tenant).count() == 2 * PRODUCTS
    assert InventoryLevel.objects.for_tenant(tenant).count() == 2 * PRODUCTS
    searches = tiktok.seen(ORDERS_PATH)
    assert [bool(s.query.get("page_token")) for s in searches] == [False, True, True]
    assert all(s.query["sort_field"] == "update_time" and s.query["sort_order"] == "ASC" for s in searches)
    assert "update_time_ge" not in searches[0].body  # a first sync reads every order
    shop.refresh_from_db()
    assert shop.status == ConnectionStatus.CONNECTED
    assert shop.cursors["orders"] == {"watermark": "2025-03-03T11:58:00Z"}
    assert shop.cursors["products"] == {"watermark": "2025-03-03T11:58:00Z"}


def test_a_rerun_an_hour_later_reads_only_the_overlap_and_changes_nothing(shop, tiktok, sleeps):
    sync(shop, sleeps)
    tiktok.advance(timedelta(hours=1))
    run = sync(shop, sleeps, streams=("orders",))
    assert run.status == SyncStatus.SUCCEEDED, run.error
    latest = tiktok.seen(ORDERS_PATH)[-1].body
    window = (latest["update_time_ge"], latest["update_time_lt"])
    assert window == (int((NOW - timedelta(minutes=7)).timestamp()), int((NOW + timedelta(minutes=58)).timestamp()))
    assert Order.objects.count() == ORDERS
    assert run.counts["orders"]["created"] == 0


def test_an_order_shipped_since_the_last_sync_is_updated(shop, tiktok, sleeps):
    sync(shop, sleeps)
    changed = next(o for o in tiktok.orders.values() if o["status"] == "AWAITING_SHIPMENT")
    tiktok.advance(timedelta(hours=1))
    tiktok.touch(changed["id"], tiktok.now - timedelta(minutes=30), status="IN_TRANSIT")
    run = sync(shop, sleeps, streams=("orders",))
    assert (run.counts["orders"]["updated"], run.counts["orders"]["created"]) == (1, 0)
    assert Order.objects.get(external_id=changed["id"]).fulfillment_status == "fulfilled"


@pytest.mark.parametrize("status", [429, 200])
def test_a_rate_limit_storm_is_waited_out(shop, tiktok, sleeps, status):
    tiktok.rate_limit(3, status=status)
    run = sync(shop, sleeps, streams=("orders",))
    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert Order.objects.count() == ORDERS
    assert sleeps  # the connection's budget was paused and waited out
    assert len(tiktok.seen(ORDERS_PATH)) == 3 + 3


def test_an_access_token_that_expires_mid_sync_is_refreshed_once_and_saved_encrypted(shop, tiktok, sleeps):
    old_refresh = shop.credentials["refresh_token"]
    tiktok.expire_tokens(after=1)  # the first page goes through, the second is refused
    run = sync(shop, sleeps, streams=("orders",))
    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert Order.objects.count() == ORDERS
    assert tiktok.refreshes == 1
    stored = Connection.objects.get(pk=shop.pk).credentials
    assert stored["refresh_token"] == "ROW_fake-refresh-2" != old_refresh
    assert stored["access_token"] == "ROW_fake-access-2"
    assert stored["access_token_expires_at"] == "2025-03-10T12:00:00Z"
    assert stored["app_secret"] == shop.credentials["app_secret"]  # the rest of the credentials kept
    raw = stored_column(shop.pk)
    assert b"ROW_fake-refresh-2" not in raw and b"refresh_token" not in raw
    tokens = [s.headers.get("x-tts-access-token") for s in tiktok.seen(ORDERS_PATH)]
    assert tokens == ["ROW_fake-access-1", "ROW_fake-access-1", "ROW_fake-access-2", "ROW_fake-access-2"]


def test_the_next_sync_uses_the_saved_tokens_without_refreshing_again(shop, tiktok, sleeps):
    tiktok.expire_tokens(after=1)
    sync(shop, sleeps, streams=("orders",))
    later = Connection.objects.get(pk=shop.pk)
    run = sync(later, sleeps, streams=("products",))
    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert tiktok.refreshes == 1
    assert tiktok.seen("/product/202309/products/search")[-1].headers["x-tts-access-token"] == "ROW_fake-access-2"


def test_a_revoked_authorisation_fails_the_run_and_asks_to_reconnect(shop, tiktok, sleeps):
    tiktok.revoke()
    run = sync(shop, sleeps, streams=("orders",))
    assert run.status == SyncStatus.FAILED and run.error_code == "auth"
    assert "reconnect TikTok Shop" in run.error
    assert tiktok.refreshes == 0
    shop.refresh_from_db()
    assert shop.status == ConnectionStatus.NEEDS_REAUTH


def test_a_sync_interrupted_mid_sweep_resumes_a_day_later_from_where_it_got(shop, tiktok, sleeps):
    sync(shop, sleeps, streams=("orders",))
    tiktok.advance(timedelta(hours=1))
    for n, order in enumerate(list(tiktok.orders.values())[:150]):
        tiktok.touch(order["id"], tiktok.now - timedelta(minutes=50) + timedelta(seconds=n))
    # The second run stops after its first page: TikTok fails for longer than the retries last.
    tiktok.fail(5, after=1)
    run = sync(shop, sleeps, streams=("orders",))
    assert run.status == SyncStatus.FAILED and run.error_code == "unavailable"
    shop.refresh_from_db()
    assert shop.cursors["orders"]["watermark"] == "2025-03-03T11:58:00Z"
    reached = shop.cursors["orders"]["sweep"]["reached"]
    assert reached == "2025-03-03T12:11:39Z"  # the 100th order touched, the last of the committed page
    stale = {s.query["page_token"] for s in tiktok.seen(ORDERS_PATH) if s.query.get("page_token")}
    assert stale

    # A day later (the page tokens of then have expired).
    tiktok.advance(timedelta(hours=25))
    before = len(tiktok.seen(ORDERS_PATH))
    run = sync(shop, sleeps, streams=("orders",))
    assert run.status == SyncStatus.SUCCEEDED, run.error
    resumed = tiktok.seen(ORDERS_PATH)[before:]
    assert resumed[0].body["update_time_ge"] == int(datetime(2025, 3, 3, 12, 6, 39, tzinfo=UTC).timestamp())
    assert not {s.query.get("page_token") for s in resumed} & stale
    assert Order.objects.count() == ORDERS
    shop.refresh_from_db()
    assert "sweep" not in shop.cursors["orders"]


@pytest.mark.django_db(transaction=True)
def test_two_workers_needing_a_refresh_at_once_refresh_once(tenant_a, make_connection, tiktok):
    # The access token is within the refresh margin of its expiry: both workers want a new one.
    credentials = tiktok.credentials(access_token_expires_at=(NOW + timedelta(minutes=10)).isoformat())
    shop = make_connection(tenant_a, "tiktok", credentials=credentials, base_url=tiktok.url)
    tiktok.refresh_delay = 0.3  # the first refresh is still under way when the second worker asks
    start = threading.Barrier(2)
    results: list[object] = []

    def worker() -> None:
        try:
            connector = TikTokConnector(Connection.objects.get(pk=shop.pk), client=HttpClient(allow_private=True))
            start.wait()
            results.append(len(connector.shops()))
        except Exception as error:  # reported by the assertion below
            results.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert results == [1, 1]
    assert tiktok.refreshes == 1
    assert Connection.objects.get(pk=shop.pk).credentials["access_token"] == "ROW_fake-access-2"
    shop_calls = tiktok.seen("/authorization/202309/shops")
    assert [s.headers["x-tts-access-token"] for s in shop_calls] == ["ROW_fake-access-2"] * 2
