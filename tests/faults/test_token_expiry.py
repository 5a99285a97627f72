"""An access token that expires in the middle of a sync, across worker processes. eBay's user
access token (like Amazon's LWA token) is minted once and shared by every worker through the cache
(`integrations.tokens.SharedToken`). A worker that minted it is SIGKILLed; the platform then stops
honouring the token; the task, delivered again to a new process, takes the shared token, is
refused once (401), mints one new token and goes on: the orders end in the hub exactly once, with
two tokens minted in all.

WooCommerce, the platform of the other fault tests, signs with keys that do not expire (a 401 there
is a revoked key: the run fails and the connection needs reauthorisation; see
tests/integrations/test_sync_woocommerce_end_to_end.py), so this one runs the eBay connector against
tests/fakes/ebay_server.py; Shopify's client-credentials token, kept on the connection rather than
in the cache, expires in test_chaos.py. It needs Redis: without a shared cache each process keeps
its own token."""

from __future__ import annotations

import signal

import pytest

from commerce.models import Order
from integrations.models import SyncRun, SyncStatus
from integrations.sync import create_run
from tests.fakes.ebay_server import FakeEbay

from .workers import start_sync

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

ORDERS = 450  # one 30-day window of three pages: 200, 200 and 50
ORDERS_PATH = "/sell/fulfillment/v1/order"


def test_a_shared_token_that_expires_while_workers_come_and_go_is_renewed_once(
    shared_db, settings, tenant_a, make_connection, logs
):
    settings.INTEGRATIONS_ALLOW_PRIVATE_URLS = True
    with FakeEbay(orders=ORDERS) as ebay:
        shop = make_connection(tenant_a, "ebay", credentials=ebay.credentials(), base_url=ebay.url, status="connected")
        run = create_run(shop, ["orders"])
        first = start_sync("worker-1", shared_db, logs, run_id=run.pk)
        # The worker dies as the first page of orders is answered; then the token it minted lapses.
        ebay.schedule(first.kill, when=lambda query, answer: bool(answer and answer.get("total")))
        assert first.wait() == -signal.SIGKILL, first.output()
        assert ebay.exchanges == 1
        ebay.expire_tokens(after=0)
        asked_before = len(ebay.seen(ORDERS_PATH))

        again = start_sync("worker-2", shared_db, logs, run_id=run.pk)
        assert again.wait() == 0, again.output()

        run.refresh_from_db()
        assert run.status == SyncStatus.SUCCEEDED, run.error
        orders = Order.objects.filter(connection=shop)
        assert orders.count() == ORDERS
        assert orders.values("external_id").distinct().count() == ORDERS
        assert run.counts["orders"]["created"] == ORDERS
        assert SyncRun.objects.filter(connection=shop).count() == 1
        # The new process took the shared token (no mint of its own), was refused once, and minted one.
        assert ebay.exchanges == 2
        tokens = [seen.headers["Authorization"] for seen in ebay.seen(ORDERS_PATH)[asked_before:]]
        assert tokens[0] == "Bearer v^1.1#i^1#fake-access-1"
        assert set(tokens[1:]) == {"Bearer v^1.1#i^1#fake-access-2"}
        assert [seen.query["offset"] for seen in ebay.seen(ORDERS_PATH)[asked_before + 1 :]] == ["0", "200", "400"]
