"""One stock figure per SKU across channels: linked by SKU from synced variants, set by people and
pushed to every listing, taken down by sales and pushed to the other channels, oversells flagged,
pushes retried with backoff or failed with the platform's reason, and platform figures met by each
connection's conflict strategy."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.models import OrmQ

from commerce import stock
from commerce.models import (
    ConflictStatus,
    ConflictStrategy,
    LinkSource,
    Oversell,
    PushStatus,
    StockChannelSettings,
    StockConflict,
    StockItem,
    StockListing,
)
from commerce.pushes import PushResult
from commerce.stock_push import push_listing, sweep

from .stock_world import (  # noqa: F401  (the fixtures)
    SKU,
    ago,
    commit_fixture,
    item,
    listing_on,
    mug_fixture,
    pusher_fixture,
    run_pushes,
    sell,
    shop_fixture,
    sync_level,
    sync_product,
    woo_fixture,
)

pytestmark = pytest.mark.django_db


def time_passes() -> None:
    """Every retry waiting in the future is due now."""
    StockListing.objects.filter(next_push_at__isnull=False).update(next_push_at=timezone.now() - timedelta(seconds=1))


def strategy(connection, value: str) -> None:
    StockChannelSettings.objects.create(tenant=connection.tenant, connection=connection, conflict_strategy=value)


# --- Linking by SKU -------------------------------------------------------------------------------


def test_synced_variants_of_one_sku_share_one_stock_item_with_a_listing_each(mug, shop, woo):
    assert StockItem.objects.count() == 1
    assert (mug.sku, mug.on_hand, mug.title) == (SKU, 10, "Mug – Blue")  # noqa: RUF001 (a dash)
    listings = {listing.connection_id: listing for listing in mug.listings.all()}
    assert set(listings) == {shop.pk, woo.pk}
    assert (listings[woo.pk].product_external_id, listings[woo.pk].variant_external_id) == (
        "woocommerce-P1",
        "woocommerce-V1",
    )
    assert listings[woo.pk].location_id == "woocommerce-loc"
    assert {listing.linked_by for listing in listings.values()} == {LinkSource.AUTO}


def test_a_variant_that_tracks_no_stock_makes_no_item(commit, shop, pusher):
    sync_product(commit, shop, available=None)
    assert not StockItem.objects.exists()


def test_a_variant_without_levels_still_links_to_a_sku_the_hub_keeps(commit, mug, make_connection, tenant_a):
    ebay = make_connection(tenant_a, "ebay")
    sync_product(commit, ebay, available=None)
    assert listing_on(ebay).variant_external_id == "ebay-V1"


def test_a_variant_moved_to_another_sku_on_its_platform_follows_it(commit, mug, shop):
    sync_product(commit, shop, sku="MUG-2", available=3, at=ago(1))
    assert listing_on(shop, "MUG-2").item.on_hand == 3
    assert not StockListing.objects.filter(connection=shop, item=mug).exists()


def test_a_listing_linked_by_hand_stays_where_a_person_put_it(commit, mug, shop):
    other = StockItem.objects.create(tenant=mug.tenant, sku="MUG-GIFT", on_hand=4)
    StockListing.objects.filter(connection=shop).update(item=other, linked_by=LinkSource.MANUAL)
    sync_product(commit, shop, available=10, at=ago(1))
    assert listing_on(shop, "MUG-GIFT").linked_by == LinkSource.MANUAL
    assert not StockListing.objects.filter(connection=shop, item=mug).exists()


# --- Setting stock --------------------------------------------------------------------------------


def test_setting_stock_pushes_the_new_figure_to_every_listing(commit, mug, shop, woo, pusher):
    with commit():
        stock.set_stock(mug, 7, via="test")

    assert item().on_hand == 7
    assert [q.task["func"] for q in OrmQ.objects.all()] == ["commerce.stock_push.push_listing"] * 2
    run_pushes()
    assert (pusher.to(shop), pusher.to(woo)) == ([7], [7])
    push = next(p for p in pusher.pushed if p.connection_id == woo.pk)
    assert (push.tenant_id, push.sku, push.location_id) == (woo.tenant_id, SKU, "woocommerce-loc")
    assert (push.product_external_id, push.variant_external_id) == ("woocommerce-P1", "woocommerce-V1")
    landed = listing_on(woo)
    assert (landed.push_status, landed.pushed_quantity, landed.remote_id) == (
        PushStatus.PUSHED,
        7,
        "remote-woocommerce-V1",
    )
    assert landed.pushed_at is not None


def test_nothing_is_pushed_before_the_change_commits(mug, pusher):
    stock.set_stock(mug, 7, via="test")  # the test's transaction never commits
    assert not OrmQ.objects.exists()


def test_stock_is_never_set_below_zero(mug):
    with pytest.raises(stock.StockError, match="negative"):
        stock.set_stock(mug, -1, via="test")
    assert item().on_hand == 10


def test_another_tenants_sku_cannot_be_set(mug, tenant_b):
    with pytest.raises(stock.StockError, match="No stock item"):
        stock.set_many(tenant_b, {SKU: 1}, via="test")
    assert item().on_hand == 10


def test_a_push_refused_for_a_passing_reason_is_retried_with_backoff(commit, mug, woo, pusher):
    pusher.answers[woo.pk] = [PushResult(ok=False, message="WooCommerce answered 503", retryable=True)]
    with commit():
        stock.set_stock(mug, 6, via="test")
    run_pushes()

    waiting = listing_on(woo)
    assert (waiting.push_status, waiting.push_message, waiting.push_attempts) == (
        PushStatus.RETRYING,
        "WooCommerce answered 503",
        1,
    )
    assert timedelta(seconds=29) < waiting.next_push_at - timezone.now() < timedelta(seconds=37)
    assert push_listing(waiting.pk) == "not due, or taken by another worker"
    assert sweep() == "0 stock pushes queued"
    time_passes()
    assert sweep() == "1 stock pushes queued"
    run_pushes()
    landed = listing_on(woo)
    assert (landed.push_status, landed.pushed_quantity, landed.push_message) == (PushStatus.PUSHED, 6, "")
    assert pusher.to(woo) == [6, 6]


def test_a_push_the_platform_refuses_fails_with_its_reason_and_can_be_pushed_again(commit, mug, woo, pusher):
    pusher.answers[woo.pk] = [PushResult(ok=False, message="WooCommerce has no product with the SKU “MUG-1”.")]
    with commit():
        stock.set_stock(mug, 6, via="test")
    run_pushes()
    failed = listing_on(woo)
    assert (failed.push_status, failed.push_message) == (
        PushStatus.FAILED,
        "WooCommerce has no product with the SKU “MUG-1”.",
    )
    assert sweep(now=timezone.now() + timedelta(hours=2)) == "0 stock pushes queued"

    with commit():
        stock.queue_pushes(StockListing.objects.filter(pk=failed.pk))
    run_pushes()
    assert listing_on(woo).push_status == PushStatus.PUSHED


def test_retries_stop_after_the_last_attempt(commit, mug, woo, pusher, settings):
    settings.STOCK_PUSH_MAX_ATTEMPTS = 2
    pusher.answers[woo.pk] = [PushResult(ok=False, message="busy", retryable=True)] * 2
    with commit():
        stock.set_stock(mug, 6, via="test")
    run_pushes()
    time_passes()
    sweep()
    run_pushes()
    failed = listing_on(woo)
    assert (failed.push_status, failed.push_message) == (PushStatus.FAILED, "Gave up after 2 attempts. busy")


def test_a_figure_that_changes_while_it_is_pushed_is_pushed_again(commit, mug, woo, shop, pusher):
    pusher.side_effect = lambda: StockItem.objects.filter(pk=mug.pk).update(on_hand=3, version=mug.version + 99)
    with commit():
        stock.set_stock(mug, 6, via="test")
    run_pushes()
    assert pusher.to(woo)[-1] == 3 and pusher.to(shop)[-1] == 3
    assert {listing.pushed_quantity for listing in StockListing.objects.all()} == {3}


def test_pushes_the_queue_lost_or_whose_worker_died_are_taken_up_by_the_sweep(commit, mug, shop, woo, pusher):
    with commit():
        stock.set_stock(mug, 6, via="test")
    OrmQ.objects.all().delete()  # lost: one taken by a worker that died mid-push, one never delivered
    StockListing.objects.filter(connection=woo).update(
        push_status=PushStatus.PUSHING, push_locked_until=timezone.now() - timedelta(seconds=1)
    )
    assert sweep() == "1 stock pushes queued"  # the stale push; the queued one may still be delivered
    StockListing.objects.filter(connection=shop).update(next_push_at=timezone.now() - timedelta(minutes=3))
    assert sweep() == "2 stock pushes queued"  # now the queued one is taken as lost too
    run_pushes()
    assert {listing.push_status for listing in StockListing.objects.all()} == {PushStatus.PUSHED}


# --- Sales ----------------------------------------------------------------------------------------


def test_a_sale_takes_stock_down_and_pushes_the_new_figure_to_the_other_channels(commit, mug, shop, woo, pusher):
    sell(commit, shop, (SKU, 2))
    run_pushes()
    assert item().on_hand == 8
    assert (pusher.to(shop), pusher.to(woo)) == ([], [8])


def test_orders_placed_before_the_item_existed_are_history(commit, mug, shop, pusher):
    sell(commit, shop, (SKU, 2), placed_at=mug.counted_at - timedelta(days=3))
    assert item().on_hand == 10 and not OrmQ.objects.exists()


def test_cancelled_orders_and_other_skus_take_nothing(commit, mug, shop):
    sell(commit, shop, (SKU, 2), status="cancelled")
    sell(commit, shop, ("NOT-KEPT", 2))
    assert item().on_hand == 10


def test_an_order_arriving_again_takes_nothing_more(commit, mug, shop):
    from commerce.ingest import ingest_orders

    from .stock_world import order_record, source_of

    record = order_record(shop, (SKU, 2))
    with commit():
        ingest_orders(source_of(shop), [record])
    record.updated_at = timezone.now()
    with commit():
        ingest_orders(source_of(shop), [record])
    assert item().on_hand == 8


def test_selling_more_than_is_left_flags_the_sale_and_stock_stops_at_zero(commit, mug, shop, woo, pusher):
    StockItem.objects.filter(pk=mug.pk).update(on_hand=1)
    sell(commit, woo, (SKU, 3))
    run_pushes()
    assert item().on_hand == 0
    flagged = Oversell.objects.get()
    assert (flagged.sku, flagged.quantity, flagged.short, flagged.order.connection_id) == (SKU, 3, 2, woo.pk)
    assert pusher.to(shop) == [0]


def test_two_sales_of_the_last_unit_in_one_page_give_it_to_the_first(commit, mug, shop):
    from commerce.ingest import ingest_orders

    from .stock_world import order_record, source_of

    StockItem.objects.filter(pk=mug.pk).update(on_hand=1)
    first = order_record(shop, (SKU, 1), placed_at=timezone.now())
    second = order_record(shop, (SKU, 1), placed_at=timezone.now() + timedelta(seconds=1))
    with commit():
        ingest_orders(source_of(shop), [second, first])
    assert item().on_hand == 0
    assert Oversell.objects.get().order.external_id == second.external_id


def test_the_selling_channel_gets_the_figure_when_the_hub_overwrote_its_own_after_the_sale(commit, mug, shop, pusher):
    placed = timezone.now()
    StockListing.objects.filter(connection=shop).update(pushed_at=placed + timedelta(seconds=5))
    sell(commit, shop, (SKU, 1), placed_at=placed)
    run_pushes()
    assert pusher.to(shop) == [9]


def test_a_sale_already_in_a_figure_taken_from_its_channel_is_not_taken_again(commit, mug, shop, woo, pusher):
    # WooCommerce reports the sale (its figure fell) before the order reaches the hub.
    placed = timezone.now() - timedelta(minutes=2)
    sync_level(commit, woo, 9, at=placed + timedelta(seconds=30))
    assert item().on_hand == 9
    sell(commit, woo, (SKU, 1), placed_at=placed)
    assert item().on_hand == 9


# --- Platform figures and conflict strategies ----------------------------------------------------


def test_timestamp_a_newer_platform_figure_becomes_the_hubs_and_goes_to_the_other_channels(
    commit, mug, shop, woo, pusher
):
    sync_level(commit, woo, 4, at=ago(1))
    run_pushes()
    assert item().on_hand == 4
    assert (pusher.to(shop), pusher.to(woo)) == ([4], [])


def test_timestamp_an_older_platform_figure_is_corrected_with_the_hubs(commit, mug, shop, woo, pusher):
    sell(commit, woo, (SKU, 1))  # the hub's figure changes now
    run_pushes()
    pusher.pushed.clear()
    sync_level(commit, woo, 4, at=ago(30))  # newer than the stored level, older than the sale
    run_pushes()
    assert item().on_hand == 9
    assert (pusher.to(shop), pusher.to(woo)) == ([], [9])


def test_platform_priority_takes_even_an_older_platform_figure(commit, mug, shop, woo, pusher):
    strategy(woo, ConflictStrategy.PLATFORM_PRIORITY)
    sell(commit, woo, (SKU, 1))
    run_pushes()
    pusher.pushed.clear()
    sync_level(commit, woo, 4, at=ago(30))
    run_pushes()
    assert item().on_hand == 4
    assert (pusher.to(shop), pusher.to(woo)) == ([4], [])


def test_a_figure_from_before_the_hubs_last_push_landed_is_not_news(commit, mug, shop, woo, pusher):
    strategy(woo, ConflictStrategy.PLATFORM_PRIORITY)
    with commit():
        stock.set_stock(mug, 7, via="test")
    run_pushes()
    pusher.pushed.clear()
    sync_level(commit, woo, 4, at=ago(30))  # the platform's figure before it took the 7
    assert item().on_hand == 7 and pusher.pushed == []
    sync_level(commit, woo, 5, at=timezone.now())  # a person changed it there since
    assert item().on_hand == 5


def test_hub_priority_keeps_the_hubs_figure_against_a_newer_one(commit, mug, shop, woo, pusher):
    strategy(woo, ConflictStrategy.HUB_PRIORITY)
    sync_level(commit, woo, 4, at=ago(1))
    run_pushes()
    assert item().on_hand == 10
    assert (pusher.to(shop), pusher.to(woo)) == ([], [10])


def test_manual_queues_a_conflict_for_a_person_and_changes_nothing(commit, mug, shop, woo, pusher):
    strategy(woo, ConflictStrategy.MANUAL)
    sync_level(commit, woo, 4, at=ago(2))
    sync_level(commit, woo, 3, at=ago(1))
    run_pushes()
    assert item().on_hand == 10 and pusher.pushed == []
    conflict = StockConflict.objects.get()  # one per listing, with the latest figures
    assert (conflict.status, conflict.hub_quantity, conflict.platform_quantity) == (ConflictStatus.OPEN, 10, 3)


def test_manual_accepting_the_platforms_figure_pushes_it_to_the_other_channels(commit, mug, shop, woo, pusher):
    strategy(woo, ConflictStrategy.MANUAL)
    sync_level(commit, woo, 3, at=ago(1))
    with commit():
        assert stock.resolve_conflict(StockConflict.objects.get(), "platform")
    run_pushes()
    assert item().on_hand == 3
    assert (pusher.to(shop), pusher.to(woo)) == ([3], [])
    assert StockConflict.objects.get().status == ConflictStatus.ACCEPTED_PLATFORM
    assert not stock.resolve_conflict(StockConflict.objects.get(), "hub")  # settled once


def test_manual_accepting_the_hubs_figure_pushes_it_to_that_platform(commit, mug, shop, woo, pusher):
    strategy(woo, ConflictStrategy.MANUAL)
    sync_level(commit, woo, 3, at=ago(1))
    with commit():
        stock.resolve_conflict(StockConflict.objects.get(), "hub")
    run_pushes()
    assert item().on_hand == 10
    assert (pusher.to(shop), pusher.to(woo)) == ([], [10])
    assert StockConflict.objects.get().status == ConflictStatus.ACCEPTED_HUB


def test_manual_a_conflict_settles_itself_when_the_figures_agree_again(commit, mug, woo):
    strategy(woo, ConflictStrategy.MANUAL)
    sync_level(commit, woo, 3, at=ago(2))
    sync_level(commit, woo, 10, at=ago(1))
    assert StockConflict.objects.get().status == ConflictStatus.SETTLED


def test_a_platform_figure_is_not_news_while_the_hubs_is_on_its_way_there(commit, mug, woo, pusher):
    with commit():
        stock.set_stock(mug, 7, via="test")  # queued, not pushed yet
    sync_level(commit, woo, 4, at=timezone.now())
    assert item().on_hand == 7


def test_a_negative_platform_figure_counts_as_zero(commit, mug, woo):
    sync_level(commit, woo, -2, at=ago(1))
    assert item().on_hand == 0


def test_variants_stored_before_stock_was_kept_are_linked_by_the_command(shop, woo, tenant_a, capsys):
    from django.core.management import call_command

    from commerce.models import InventoryLevel, Product, ProductVariant

    for connection, available in ((shop, 6), (woo, 6)):
        product = Product.objects.create(tenant=tenant_a, connection=connection, external_id="p", title="Lamp")
        variant = ProductVariant.objects.create(
            tenant=tenant_a, connection=connection, product=product, external_id="v", sku="LAMP-1", currency="USD"
        )
        InventoryLevel.objects.create(
            tenant=tenant_a, connection=connection, variant=variant, external_id="v@l", available=available
        )

    call_command("link_stock", tenant=tenant_a.slug)

    lamp = item("LAMP-1")
    assert lamp.on_hand == 6
    assert sorted(lamp.listings.values_list("connection_id", flat=True)) == sorted([shop.pk, woo.pk])
    assert "1 variant(s) with a SKU reconciled" in capsys.readouterr().out
