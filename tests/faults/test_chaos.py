"""The chaos run: 10,000 orders from a Shopify shop into the hub while everything that can go wrong
does, and afterwards every order is in the hub once, in its final state.

The shop is tests/faults/chaos_shopify.py: the GraphQL Admin API of tests/fakes/shopify_server.py,
read by the real Shopify connector with a custom app's client ID and secret and no pasted token,
so its access token is one the connector buys with the client-credentials grant, keeps on the
connection (where every later worker finds it) and replaces when Shopify stops honouring it.
10,000 orders are not more than SHOPIFY_BULK_THRESHOLD (10,000), so the sync pages through them
(25 a page, sorted by updatedAt, with cursors) rather than running a bulk export. An order that
changes after the sweep read it moves behind the sweep's end and is read again, so the sweep has
more pages than 10,000 / 25, and it ends only once it has caught up with the shop. The shop is on
Shopify Plus: its cost bucket restores 1,000 points a second, and the workers' shared request
budget is Plus's 20 a second (the catalogue's Shopify entry has the Basic plan's 2).

- The shop answers a seeded 10 % of its GraphQL requests with 429 (`Retry-After: 1`), 2 % with
  500/502/503 and 1 % with a timeout mid-page (stalled past the client's read timeout, or the
  connection closed after the headers and a third of the body). Its token endpoint never fails,
  so the tokens it issues are exactly the ones the hub asked for.
- Sync workers are real processes. The first (a person's "Sync now") buys the token and is
  SIGKILLed at page 80 (as far into the sweep as page 20 of 100 is into WooCommerce's); django-q2
  delivers its task again, and that worker is SIGKILLed at page 160; once the lease lapses the
  connection's schedule starts a new run, SIGKILLed at page 240. The next scheduled run loses its
  database at page 300: where FAULTS_POSTGRES_RESTART names the command (.ci/run sets it), the
  PostgreSQL server restarts (fast shutdown), which ends every session, the web app's, the webhook
  workers' and the test's own included: deliveries meanwhile are answered 503 and sent again, and
  webhook work in flight is taken again once its hold lapses. Elsewhere only that run's backend
  is terminated (`pg_terminate_backend`). The one after meets the token's
  expiry at page 340: from then on the shop refuses the token the first worker bought and four
  workers used, the run is answered 401 once, buys one new token and goes on, and it completes the
  sweep. The shop issues exactly two tokens; the kills change nothing there, as the first token is
  on the connection before the first page is read.
- Meanwhile the shop changes: every order moves through two or three states (paid, then fulfilled
  and archived; authorized, then voided and cancelled; paid, then refunded and cancelled; paid,
  fulfilled, then partly refunded), each change sent as a signed, REST-shaped `orders/updated`
  webhook to the hub's real endpoint (gunicorn), 5 % dropped, 5 % duplicated and 10 % reordered;
  two webhook worker processes drain and process them as the task worker does. 8,000 orders
  change while the sweep runs; then the shop is quiet until the sweep has caught up with it (which
  it cannot while the shop changes about as fast as it reads), and the last 2,000 change after it,
  so what reaches the hub of those is what their webhooks bring. A scheduled run after the shop
  stops changing reconciles what the dropped webhooks left behind.

The shop knows each order's final version. Once the webhooks are processed, every order whose last
change was delivered must be in that version; the reconciling sync must bring exactly the others;
and then the hub must hold exactly the final version of each of the 10,000 orders (status,
financial and fulfilment status, refunds and the shop's updatedAt), with its two lines. A summary
of faults, retries, kills, tokens and time is printed. Needs PostgreSQL (the worker processes share
the test database, and the server restarts or one has its backend terminated) and Redis (the
workers share the request budget and the cost bucket, as on production). About four minutes on
two cores, most of it the two webhook workers' 20,000 events.

The faults this run has not are the focused tests' in this directory, on a WooCommerce-shaped
platform (fake_platform.py): a page truncated by a proxy, malformed JSON, minutes of 429, a worker
killed between pages, the database cut outside a transaction, skewed clocks, Redis down, two
clusters; and a shared eBay token that expires while workers come and go (test_token_expiry)."""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter

import pytest
from django.db import connection as db
from django.utils import timezone

from commerce.models import Order, OrderLine, Refund
from integrations.models import Connection, ConnectionStatus, SyncRun, SyncStatus, SyncTrigger
from integrations.sync import create_run
from tests.prism import free_port
from webhooks.models import EventStatus, WebhookEvent

from .chaos_shopify import ChaosShopify, Version, iso
from .fake_platform import WebhookSender
from .workers import (
    restart_server,
    server_started_at,
    start_drainer,
    start_sync,
    start_web,
    terminate_backends,
    wait_for,
)

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

ORDERS = 10_000
LINES = 2  # each order's
SEED = 20261122
LEASE_SECONDS = 4
READ_TIMEOUT = 1.0
# The pages of the sweep (25 orders each) where a worker dies, the database goes and the token lapses.
KILLS = (80, 160, 240)
DATABASE_RESTART = 300
RESTART = os.environ.get("FAULTS_POSTGRES_RESTART", "")
TOKEN_EXPIRY = 340
# Plus's 20 requests a second, for the workers' shared request budget (see the docstring).
RATE_LIMIT, RATE_BURST = 20, 40
# Each order's states after "pending" (chaos_shopify.STATES), the last one final, and how often each
# path is taken.
PATHS = [
    (("paid", "fulfilled"), 60),
    (("authorized", "voided"), 15),
    (("paid", "refunded"), 10),
    (("paid", "fulfilled", "partially_refunded"), 15),
]
# The orders that change while the sweep runs; the others change once it is done.
WAVE = 8_000
WEBHOOK_WORKERS = 2
TOPIC = "orders/updated"
# What the hub makes of Shopify's statuses (integrations/connectors/shopify_mapping.py).
FINANCIAL = {
    "PENDING": "pending",
    "AUTHORIZED": "pending",
    "PAID": "paid",
    "PARTIALLY_REFUNDED": "partially_refunded",
    "REFUNDED": "refunded",
    "VOIDED": "voided",
}
FULFILLMENT = {"UNFULFILLED": "unfulfilled", "FULFILLED": "fulfilled"}


class ShopChanges(threading.Thread):
    """The shop's changes: every order moves along its path in batches of 50 (the batch's first
    changes, then its second, …), each change firing its webhook, so an order's versions go out
    close together and reordered deliveries overtake each other. After the first WAVE orders the
    shop goes quiet until `sweep_done` is set, then the rest change."""

    def __init__(self, shop: ChaosShopify, sender: WebhookSender, seed: int) -> None:
        super().__init__(daemon=True)
        self.shop, self.sender, self.rng = shop, sender, random.Random(seed)
        self.sweep_done, self.stopping = threading.Event(), threading.Event()
        self.quiet_at: float | None = None

    def run(self) -> None:
        order_ids = sorted(self.shop.by_id)
        self.rng.shuffle(order_ids)
        paths, weights = zip(*PATHS, strict=True)
        for start in range(0, len(order_ids), 50):
            if start == WAVE:
                self.quiet_at = time.monotonic()
                self.sweep_done.wait()
            if self.stopping.is_set():
                return
            batch = [(order_id, self.rng.choices(paths, weights)[0]) for order_id in order_ids[start : start + 50]]
            for step in range(max(len(path) for _, path in batch)):
                for order_id, path in batch:
                    if step < len(path):
                        self.sender.send(TOPIC, self.shop.update(order_id, path[step]))

    def stop(self) -> None:
        self.stopping.set()
        self.sweep_done.set()


def expected(version: Version) -> tuple[str, str, str, int, str]:
    """What the hub must hold for an order in this version."""
    status = "cancelled" if version.cancelled else "completed" if version.closed else "open"
    return status, FINANCIAL[version.financial], FULFILLMENT[version.fulfillment], version.refunds, version.updated_at


def stored_versions(connection: Connection) -> dict[str, tuple[str, str, str, int, str]]:
    """Each stored order as `expected` describes a version."""
    refunds = Counter(Refund.objects.filter(order__connection=connection).values_list("order__external_id", flat=True))
    rows = Order.objects.filter(connection=connection).values_list(
        "external_id", "status", "financial_status", "fulfillment_status", "platform_updated_at"
    )
    return {
        order_id: (status, financial, fulfillment, refunds[order_id], iso(updated))
        for order_id, status, financial, fulfillment, updated in rows
    }


def lease_lapsed(connection: Connection) -> bool:
    lease = Connection.objects.values_list("sync_lease_until", flat=True).get(pk=connection.pk)
    return lease is None or lease < timezone.now()


def test_ten_thousand_orders_through_kills_faults_an_expired_token_and_lossy_webhooks_end_exactly_once(
    shared_db, settings, tenant_a, make_connection, logs, capsys
):
    started = time.monotonic()
    settings.INTEGRATIONS_ALLOW_PRIVATE_URLS = True
    shop = ChaosShopify(orders=ORDERS, seed=SEED, bucket_size=2_000, restore_rate=1_000).start()
    store = make_connection(tenant_a, "shopify", base_url=shop.url, credentials=shop.credentials(), status="connected")
    port = free_port()
    web = start_web("web", shared_db, logs, port, workers=2)
    drainers = [
        start_drainer(f"webhooks-{n}", shared_db, logs, WEBHOOK_RETRY_BASE_SECONDS=1, FAULTS_WEBHOOK_LOCK_SECONDS=5)
        for n in range(WEBHOOK_WORKERS)
    ]
    workers = []
    sender = None
    changes = None
    try:
        wait_for(lambda: _answers(port), timeout=30, what="the hub's web server")
        shop.chaos(
            seed=SEED, rate_limit=0.10, server_error=0.02, timeout=0.01, retry_after="1", stall_seconds=READ_TIMEOUT + 1
        )
        sender = WebhookSender(
            shop,
            f"http://127.0.0.1:{port}/webhooks/shopify/{store.uuid}/",
            seed=SEED,
            drop=0.05,
            duplicate=0.05,
            reorder=0.10,
        )
        changes = ShopChanges(shop, sender, SEED)
        changes.start()

        def sync(name: str, **kwargs):
            worker = start_sync(
                name,
                shared_db,
                logs,
                lease_seconds=LEASE_SECONDS,
                read_timeout=READ_TIMEOUT,
                FAULTS_RATE_LIMIT=RATE_LIMIT,
                FAULTS_RATE_BURST=RATE_BURST,
                **kwargs,
            )
            workers.append(worker)
            return worker

        # "Sync now": a queued run; its worker dies, and so does the one its task is delivered to again.
        first = create_run(store)
        worker = sync("sync-1", run_id=first.pk)
        shop.on_page(KILLS[0], worker.kill)
        assert worker.wait(180) < 0, worker.output()
        assert shop.issued_tokens == ["shpat_issued_1"]
        worker = sync("sync-2", run_id=first.pk)
        shop.on_page(KILLS[1], worker.kill)
        assert worker.wait(180) < 0, worker.output()
        # The schedule's runs, each once the dead one's lease has lapsed.
        wait_for(lambda: lease_lapsed(store), timeout=LEASE_SECONDS + 10)
        worker = sync("sync-3", connection_id=store.pk)
        shop.on_page(KILLS[2], worker.kill)
        assert worker.wait(180) < 0, worker.output()
        wait_for(lambda: lease_lapsed(store), timeout=LEASE_SECONDS + 10)
        lost: list[object] = []
        if RESTART:
            server_before = server_started_at(db.settings_dict)
            shop.on_page(DATABASE_RESTART, lambda: lost.append(restart_server(db.settings_dict, RESTART)))
        else:
            shop.on_page(DATABASE_RESTART, lambda: lost.append(terminate_backends(db.settings_dict, "sync-4")))
        worker = sync("sync-4", connection_id=store.pk)
        assert worker.wait(180) == 0, worker.output()
        if RESTART:
            # The worker may be done first: the page it waited for was asked for again after its
            # read timed out, while the restart's command was still waiting for the server.
            wait_for(lambda: lost, timeout=90, what="the restart to finish")
            db.close()  # the test's own session ended with the restart
            assert len(lost) == 1 and server_started_at(db.settings_dict) > server_before
        else:
            assert lost == [1]
        # Four workers have used the token the first one bought; now it lapses.
        assert shop.issued_tokens == ["shpat_issued_1"]
        shop.expire_tokens_at(TOKEN_EXPIRY)
        worker = sync("sync-5", connection_id=store.pk)
        assert worker.wait(300) == 0, worker.output()
        sweep_done = time.monotonic()
        changes.sweep_done.set()

        # The rest of the orders change, the shop stops and its last webhooks go out; the webhook
        # workers catch up.
        changes.join(timeout=240)
        assert not changes.is_alive(), "the shop's changes did not finish in time"
        sender.close()
        changes_done = time.monotonic()
        waiting = WebhookEvent.objects.filter(
            connection=store, status__in=[EventStatus.RECEIVED, EventStatus.PROCESSING, EventStatus.RETRYING]
        )
        wait_for(lambda: not waiting.exists(), timeout=240, interval=0.5, what="the webhook backlog")
        backlog_done = time.monotonic()

        # What the webhooks brought: every order whose last change was delivered is in its final
        # version, however late, twice or out of order the deliveries came. The others wait for
        # the schedule's reconciliation.
        final = {order_id: expected(version) for order_id, version in shop.final().items()}
        last_delivered = {o.key[1] for o in sender.outcomes if o.delivered and o.key[2] == final[o.key[1]][-1]}
        behind = {order_id for order_id, version in stored_versions(store).items() if version != final[order_id]}
        assert not behind & last_delivered, sorted(behind & last_delivered)[:5]

        worker = sync("sync-6", connection_id=store.pk)
        assert worker.wait(180) == 0, worker.output()
    finally:
        if changes is not None:
            changes.stop()
        if sender is not None and any(thread.is_alive() for thread in sender._threads):
            sender.close()
        for process in (*workers, *drainers, web):
            process.stop()
        shop.stop()
    finished = time.monotonic()

    # Every order once, each in the version the shop holds last, with its lines and refunds.
    assert Order.objects.filter(connection=store).count() == ORDERS
    stored = stored_versions(store)
    assert len(stored) == ORDERS
    wrong = {order_id: (stored.get(order_id), want) for order_id, want in final.items() if stored.get(order_id) != want}
    assert not wrong, f"{len(wrong)} orders not in their final state, e.g. {list(wrong.items())[:5]}"
    assert OrderLine.objects.filter(order__connection=store).count() == LINES * ORDERS
    assert Refund.objects.filter(order__connection=store).count() == sum(version[3] for version in final.values())

    # The runs: two dead ones taken over, one that lost its database, two complete; the one that
    # met the expired token among them.
    runs = list(SyncRun.objects.filter(connection=store).order_by("pk"))
    assert [(r.status, r.error_code, r.trigger) for r in runs] == [
        (SyncStatus.FAILED, "abandoned", SyncTrigger.MANUAL),
        (SyncStatus.FAILED, "abandoned", SyncTrigger.SCHEDULE),
        (SyncStatus.FAILED, "database", SyncTrigger.SCHEDULE),
        (SyncStatus.SUCCEEDED, "", SyncTrigger.SCHEDULE),
        (SyncStatus.SUCCEEDED, "", SyncTrigger.SCHEDULE),
    ]
    sweep = sum(run.counts.get("orders", {}).get("created", 0) for run in runs[:4])
    # The reconciliation brought exactly the orders the webhooks had left behind.
    assert runs[-1].counts["orders"]["created"] == 0
    assert runs[-1].counts["orders"]["updated"] == len(behind)
    store.refresh_from_db()
    assert (store.status, store.sync_lease_owner) == (ConnectionStatus.CONNECTED, "")

    # Two tokens in all: the first worker's, which every worker used until it lapsed at page 340,
    # and the one the fifth worker bought when the shop answered 401, once, kept on the connection.
    assert shop.issued_tokens == ["shpat_issued_1", "shpat_issued_2"]
    assert shop.tokens_expired == 1
    refused = [c for c in shop.calls if c.status == 401]
    assert [(c.page, c.answer) for c in refused] == [(TOKEN_EXPIRY, "unauthorized")]
    graphql = [r for r in shop.graphql_requests() if r["headers"].get("X-Shopify-Access-Token")]
    presented = [r["headers"]["X-Shopify-Access-Token"] for r in graphql]
    switch = presented.index("shpat_issued_2")
    assert set(presented[:switch]) == {"shpat_issued_1"} and set(presented[switch:]) == {"shpat_issued_2"}
    assert store.credentials["access_token"] == "shpat_issued_2"
    assert shop.unknown_cursors == 0

    # Every webhook that arrived is one event, processed; copies counted on it, none refused.
    events = WebhookEvent.objects.filter(connection=store)
    arrived = [o for o in sender.outcomes if o.delivered]
    assert events.count() == len(arrived)
    assert set(events.values_list("event_id", flat=True)) == {ChaosShopify.webhook_id(o.key) for o in arrived}
    assert events.filter(status=EventStatus.PROCESSED).count() == len(arrived)
    assert sum(events.values_list("duplicates", flat=True)) == sum(o.delivered - 1 for o in arrived)
    # A restart's deliveries were answered 503 (the database was unreachable) and sent again.
    assert sender.answers.keys() <= ({200, 503} if RESTART else {200}), sender.answers

    answers = Counter(c.answer for c in shop.calls)
    pages = shop.pages_answered()
    database_event = "the database server restarted" if RESTART else "1 database connection terminated"
    summary = [
        f"chaos run: {ORDERS:,} Shopify orders, {len(sender.outcomes):,} webhooks in {finished - started:.0f} s "
        f"(the shop quiet at {changes.quiet_at - started:.0f} s, the sweep done at {sweep_done - started:.0f} s, "
        f"the shop's changes at {changes_done - started:.0f} s, "
        f"the webhook backlog at {backlog_done - started:.0f} s)",
        f"  shop: {len(shop.calls):,} GraphQL requests ({len(pages):,} pages of orders answered, the sweep's last "
        f"page {max(pages)}), faults injected " + ", ".join(f"{kind} {n}" for kind, n in sorted(shop.injected.items())),
        f"  sync: 3 workers SIGKILLed, {database_event} ({sender.answers.get(503, 0)} deliveries answered 503 "
        f"meanwhile), 1 token expired; {len(runs)} runs "
        f"({sweep:,} orders created by the sync, the rest by webhooks first); retried requests "
        f"{sum(n for kind, n in answers.items() if kind != 'ok'):,}; tokens issued {len(shop.issued_tokens)}",
        f"  webhooks: {sender.counts['dropped']:,} dropped, {sender.counts['duplicated']:,} duplicated, "
        f"{sender.counts['reordered']:,} reordered; {events.count():,} events, "
        f"{events.filter(outcome__contains='left alone').count():,} left alone as older than the stored order; "
        f"{len(behind):,} orders left behind by dropped webhooks, brought by the reconciliation",
    ]
    with capsys.disabled():
        print("\n" + "\n".join(summary))


def _answers(port: int) -> bool:
    import http.client

    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        connection.request("GET", "/health/")
        connection.getresponse().read()
        connection.close()
        return True
    except OSError:
        return False
