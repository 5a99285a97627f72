"""Two channels sell the last unit at the same moment (PostgreSQL, two threads): one sale gets it,
the other is flagged as oversold for a person, and stock never goes below zero."""

from __future__ import annotations

import contextlib
import threading
import time

import pytest
from django.db import connection as db_connection
from django.db import transaction

from commerce.ingest import ingest_orders
from commerce.models import Oversell, StockItem, StockListing

from .stock_world import SKU, order_record, source_of, sync_product


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_channels_selling_the_last_unit_at_once_oversell_one_and_never_go_negative(tenant_a, make_connection):
    shop = make_connection(tenant_a, "shopify", name="Alpha Shopify")
    woo = make_connection(tenant_a, "woocommerce", name="Alpha Woo")
    sync_product(contextlib.nullcontext, shop, available=1)
    sync_product(contextlib.nullcontext, woo, available=1)
    item = StockItem.objects.get(sku=SKU)
    assert item.on_hand == 1
    errors: list[BaseException] = []

    def sell(connection) -> None:
        try:
            ingest_orders(source_of(connection), [order_record(connection, (SKU, 1))])
        except BaseException as error:  # reported by the main thread
            errors.append(error)
        finally:
            db_connection.close()

    threads = [threading.Thread(target=sell, args=(connection,)) for connection in (shop, woo)]
    # Hold the stock row until both sales have committed their orders and wait on it, so their
    # conditional UPDATEs meet at the row together.
    with transaction.atomic():
        StockItem.objects.select_for_update().get(pk=item.pk)
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 20
        while _waiting_on_locks() < 2:
            assert time.monotonic() < deadline, "the two sales never met at the stock row"
            assert not errors, errors
            time.sleep(0.05)
    for thread in threads:
        thread.join(timeout=30)

    assert not errors, errors
    item.refresh_from_db()
    assert item.on_hand == 0
    oversold = Oversell.objects.get()
    assert (oversold.sku, oversold.quantity, oversold.short) == (SKU, 1, 1)
    assert oversold.order.connection_id in (shop.pk, woo.pk)
    # Each sale pushed the new figure to the channel that did not make it.
    assert set(StockListing.objects.values_list("push_status", flat=True)) == {"queued"}


def _waiting_on_locks() -> int:
    with db_connection.cursor() as cursor:
        # Statistics are a snapshot per transaction, and this runs inside one: take a fresh one.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]
