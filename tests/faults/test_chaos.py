"""The chaos run: 10,000 orders from a WooCommerce-shaped platform into the hub while everything
that can go wrong does, and afterwards every order is in the hub once, in its final state.

- The platform answers a seeded 10 % of its list requests with 429 (`Retry-After: 1`), 2 % with
  500/502/503 and 1 % with a timeout mid-page (stalled past the client's read timeout, or the
  connection closed after the headers).
- Sync workers are real processes: the first is SIGKILLed at page 20; django-q2 delivers its task
  again, and that worker is SIGKILLed at page 40; once the lease lapses the connection's schedule
  starts a new run, SIGKILLed at page 60. The next scheduled run loses its database connection at
  page 75 (`pg_terminate_backend`), the one after meets a 401 at page 85, as an expired token is
  answered (WooCommerce's keys do not expire and the hub does not refresh them: the run fails and
  the connection needs reauthorisation, so a person's "Sync now" is what continues; the shared
  token refresh of the OAuth platforms is test_token_expiry.py's). That run completes the sweep;
  a scheduled run after the platform stops changing reconciles what changed meanwhile.
- Meanwhile every order moves through two or three statuses, each change sent as a signed
  `order.updated` webhook to the hub's real endpoint (gunicorn), 5 % dropped, 5 % duplicated and
  10 % reordered; two webhook worker processes drain and process them as the task worker does.

The platform knows each order's final version. Once the webhooks are processed, every order whose
last change was delivered must be in that version; the reconciling sync must bring exactly the
others; and then the hub must hold exactly the final version of each of the 10,000 orders. A
summary of faults, retries, kills and time is printed. Needs PostgreSQL (the worker processes
share the test database, and one has its backend terminated) and Redis (the workers share the rate
budget, as on production). About three minutes on two cores."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from datetime import UTC

import pytest
from django.db import connection as db
from django.utils import timezone

from commerce.models import Order, OrderLine
from integrations.models import Connection, ConnectionStatus, SyncRun, SyncStatus, SyncTrigger
from integrations.sync import create_run
from tests.prism import free_port
from webhooks.models import EventStatus, WebhookEvent

from .fake_platform import GMT_FORMAT, FakePlatform, WebhookSender
from .workers import start_drainer, start_sync, start_web, terminate_backends, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

ORDERS = 10_000
SEED = 20261122
LEASE_SECONDS = 4
READ_TIMEOUT = 1.0
# Each order's statuses after "pending", the last one final, and how often each path is taken.
PATHS = [
    (("processing", "completed"), 60),
    (("on-hold", "cancelled"), 15),
    (("processing", "refunded"), 10),
    (("failed", "processing", "completed"), 15),
]
WEBHOOK_WORKERS = 2


def change_every_order(platform: FakePlatform, sender: WebhookSender, seed: int) -> None:
    """Move every order along its path in batches of 50 (the batch's first changes, then its
    second, …), each change firing its webhook: an order's versions go out close together, so
    reordered deliveries overtake each other."""
    rng = random.Random(seed)
    order_ids = sorted(platform.orders)
    rng.shuffle(order_ids)
    paths, weights = zip(*PATHS, strict=True)
    for start in range(0, len(order_ids), 50):
        batch = [(order_id, rng.choices(paths, weights)[0]) for order_id in order_ids[start : start + 50]]
        for step in range(max(len(path) for _, path in batch)):
            for order_id, path in batch:
                if step < len(path):
                    sender.send("order.updated", platform.update(order_id, path[step]))


def stored_versions(connection: Connection) -> dict[str, tuple[str, str]]:
    """Each stored order's WooCommerce status and modified time, as `FakePlatform.final` gives them."""
    rows = Order.objects.filter(connection=connection).values_list("external_id", "raw__status", "platform_updated_at")
    return {order_id: (status, updated.astimezone(UTC).strftime(GMT_FORMAT)) for order_id, status, updated in rows}


def lease_lapsed(connection: Connection) -> bool:
    lease = Connection.objects.values_list("sync_lease_until", flat=True).get(pk=connection.pk)
    return lease is None or lease < timezone.now()


def test_ten_thousand_orders_through_kills_faults_and_lossy_webhooks_end_exactly_once_in_their_final_state(
    shared_db, settings, tenant_a, make_connection, logs, capsys
):
    started = time.monotonic()
    settings.INTEGRATIONS_ALLOW_PRIVATE_URLS = True
    platform = FakePlatform(orders=ORDERS, seed=SEED).start()
    woo = make_connection(tenant_a, "woocommerce", credentials=platform.credentials(), status="connected")
    port = free_port()
    web = start_web("web", shared_db, logs, port, workers=2)
    drainers = [
        start_drainer(f"webhooks-{n}", shared_db, logs, WEBHOOK_RETRY_BASE_SECONDS=1) for n in range(WEBHOOK_WORKERS)
    ]
    workers = []
    sender = None
    try:
        wait_for(lambda: _answers(port), timeout=30, what="the hub's web server")
        platform.chaos(
            seed=SEED, rate_limit=0.10, server_error=0.02, timeout=0.01, retry_after="1", stall_seconds=READ_TIMEOUT + 1
        )
        sender = WebhookSender(
            platform,
            f"http://127.0.0.1:{port}/webhooks/woocommerce/{woo.uuid}/",
            seed=SEED,
            drop=0.05,
            duplicate=0.05,
            reorder=0.10,
        )
        changes = threading.Thread(target=change_every_order, args=(platform, sender, SEED), daemon=True)
        changes.start()

        def sync(name: str, **kwargs):
            worker = start_sync(name, shared_db, logs, lease_seconds=LEASE_SECONDS, read_timeout=READ_TIMEOUT, **kwargs)
            workers.append(worker)
            return worker

        # "Sync now": a queued run; its worker dies at page 20, and so does the one its task is
        # delivered to again, at page 40.
        first = create_run(woo)
        worker = sync("sync-1", run_id=first.pk)
        platform.on_page(20, worker.kill)
        assert worker.wait(180) < 0, worker.output()
        worker = sync("sync-2", run_id=first.pk)
        platform.on_page(40, worker.kill)
        assert worker.wait(180) < 0, worker.output()
        # The schedule's runs, each once the dead one's lease has lapsed.
        wait_for(lambda: lease_lapsed(woo), timeout=LEASE_SECONDS + 10)
        worker = sync("sync-3", connection_id=woo.pk)
        platform.on_page(60, worker.kill)
        assert worker.wait(180) < 0, worker.output()
        wait_for(lambda: lease_lapsed(woo), timeout=LEASE_SECONDS + 10)
        terminated = []
        platform.on_page(75, lambda: terminated.append(terminate_backends(db.settings_dict, "sync-4")))
        worker = sync("sync-4", connection_id=woo.pk)
        assert worker.wait(180) == 0, worker.output()
        assert terminated == [1]
        platform.inject("unauthorized", page=85)
        worker = sync("sync-5", connection_id=woo.pk)
        assert worker.wait(180) == 0, worker.output()
        # Reauthorised, a person syncs now: that run completes the sweep.
        manual = create_run(woo)
        worker = sync("sync-6", run_id=manual.pk)
        assert worker.wait(180) == 0, worker.output()
        sweep_done = time.monotonic()

        # The platform stops changing and its last webhooks go out; the webhook workers catch up.
        changes.join(timeout=240)
        assert not changes.is_alive(), "the platform's changes did not finish in time"
        sender.close()
        changes_done = time.monotonic()
        waiting = WebhookEvent.objects.filter(
            connection=woo, status__in=[EventStatus.RECEIVED, EventStatus.PROCESSING, EventStatus.RETRYING]
        )
        wait_for(lambda: not waiting.exists(), timeout=240, interval=0.5, what="the webhook backlog")
        backlog_done = time.monotonic()

        # What the webhooks brought: every order whose last change was delivered is in its final
        # version, however late, twice or out of order the deliveries came. The others wait for
        # the schedule's reconciliation.
        final = platform.final()
        last_delivered = {o.key[1] for o in sender.outcomes if o.delivered and o.key[2] == final[o.key[1]][1]}
        behind = {order_id for order_id, version in stored_versions(woo).items() if version != final[order_id]}
        assert not behind & last_delivered, sorted(behind & last_delivered)[:5]

        worker = sync("sync-7", connection_id=woo.pk)
        assert worker.wait(180) == 0, worker.output()
    finally:
        if sender is not None and any(thread.is_alive() for thread in sender._threads):
            sender.close()
        for process in (*workers, *drainers, web):
            process.stop()
        platform.stop()
    finished = time.monotonic()

    # Every order once, each in the version the platform holds last.
    assert Order.objects.filter(connection=woo).count() == ORDERS
    stored = stored_versions(woo)
    assert len(stored) == ORDERS
    wrong = {order_id: (stored.get(order_id), want) for order_id, want in final.items() if stored.get(order_id) != want}
    assert not wrong, f"{len(wrong)} orders not in their final state, e.g. {list(wrong.items())[:5]}"
    assert OrderLine.objects.filter(order__connection=woo).count() == 2 * ORDERS

    # The runs: two dead ones taken over, one that lost its database, one refused, two complete.
    runs = list(SyncRun.objects.filter(connection=woo).order_by("pk"))
    assert [(r.status, r.error_code, r.trigger) for r in runs] == [
        (SyncStatus.FAILED, "abandoned", SyncTrigger.MANUAL),
        (SyncStatus.FAILED, "abandoned", SyncTrigger.SCHEDULE),
        (SyncStatus.FAILED, "database", SyncTrigger.SCHEDULE),
        (SyncStatus.FAILED, "auth", SyncTrigger.SCHEDULE),
        (SyncStatus.SUCCEEDED, "", SyncTrigger.MANUAL),
        (SyncStatus.SUCCEEDED, "", SyncTrigger.SCHEDULE),
    ]
    sweep = sum(run.counts.get("orders", {}).get("created", 0) for run in runs[:5])
    # The reconciliation brought exactly the orders the webhooks had left behind.
    assert runs[-1].counts["orders"]["created"] == 0
    assert runs[-1].counts["orders"]["updated"] == len(behind)
    woo.refresh_from_db()
    assert (woo.status, woo.sync_lease_owner) == (ConnectionStatus.CONNECTED, "")

    # Every webhook that arrived is one event, processed; copies counted on it, none refused.
    events = WebhookEvent.objects.filter(connection=woo)
    arrived = [o for o in sender.outcomes if o.delivered]
    assert events.count() == len(arrived)
    assert set(events.values_list("event_id", flat=True)) == {":".join(o.key) for o in arrived}
    assert events.filter(status=EventStatus.PROCESSED).count() == len(arrived)
    assert sum(events.values_list("duplicates", flat=True)) == sum(o.delivered - 1 for o in arrived)
    assert sender.answers.keys() <= {200}, sender.answers

    requests = Counter(r.answer for r in platform.requests)
    summary = [
        f"chaos run: {ORDERS:,} orders, {len(sender.outcomes):,} webhooks in {finished - started:.0f} s "
        f"(sweep done at {sweep_done - started:.0f} s, the platform's changes at {changes_done - started:.0f} s, "
        f"the webhook backlog at {backlog_done - started:.0f} s)",
        f"  platform: {len(platform.requests):,} list requests, faults injected "
        + ", ".join(f"{kind} {n}" for kind, n in sorted(platform.injected.items())),
        f"  sync: 3 workers SIGKILLed, 1 database connection terminated, 1 refused key; {len(runs)} runs "
        f"({sweep:,} orders created by the sync, the rest by webhooks first); retried requests "
        f"{sum(n for kind, n in requests.items() if kind != 'ok'):,}",
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
