"""A worker process SIGKILLed in the middle of a sync, after some pages were committed: what it
committed stays whole (each page with its cursor), and the next process goes on from there, so
the store's orders end in the hub exactly once. A queued run delivered again (django-q2 does
that for a task whose worker died) takes its own lease back at once; another run waits until the
dead run's lease lapses, takes over, and marks the dead run failed.

The platform also answers 429, 5xx, a stalled and a broken-off page along the way: each is
retried within the run. On SQLite the workers share a file copy of the test database."""

from __future__ import annotations

import signal

import pytest
from django.db.models import Count
from django.utils import timezone

from commerce.models import Order, OrderLine
from integrations.models import Connection, SyncRun, SyncStatus, SyncTrigger
from integrations.sync import create_run

from .workers import start_sync, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

ORDERS = 1000  # ten pages of 100
LEASE_SECONDS = 6
READ_TIMEOUT = 0.5


def troubled(platform) -> None:
    """Faults a run meets on its way and retries through."""
    platform.inject("rate_limit", page=2, retry_after="1")
    platform.inject("server_error", page=3, status=502)
    platform.inject("stall", page=3, seconds=READ_TIMEOUT * 3)
    platform.inject("reset", page=4)
    platform.inject("server_error", page=8, status=500)
    platform.inject("server_error", page=9, status=503)


def killed_at_page(platform, shared_db, logs, run, page: int):
    """A worker syncing `run` is SIGKILLed when it asks for `page` (while it writes the page before)."""
    worker = start_sync(
        "worker-1", shared_db, logs, run_id=run.pk, lease_seconds=LEASE_SECONDS, read_timeout=READ_TIMEOUT
    )
    platform.on_page(page, worker.kill)
    assert worker.wait() == -signal.SIGKILL, worker.output()
    return worker


def assert_whole_pages_committed(connection: Connection, killed_at: int) -> int:
    """What the dead worker left: whole pages, each with its lines, and the cursor just after them.
    The worker reads a page ahead, so when it asks for page p it is writing page p - 2 or p - 1."""
    connection.refresh_from_db()
    committed = Order.objects.filter(connection=connection).count()
    assert committed in (100 * (killed_at - 3), 100 * (killed_at - 2), 100 * (killed_at - 1)), committed
    assert connection.cursors["orders"]["page"] == committed // 100 + 1
    assert OrderLine.objects.filter(order__connection=connection).count() == 2 * committed
    return committed


def runs_of(connection: Connection) -> list[tuple]:
    """The connection's runs as a failure message shows them."""
    return list(SyncRun.objects.filter(connection=connection).order_by("pk").values_list("pk", "status", "error"))


def assert_every_order_once(connection: Connection) -> None:
    orders = Order.objects.filter(connection=connection)
    assert orders.count() == ORDERS
    assert orders.values("external_id").distinct().count() == ORDERS
    assert not orders.values("external_id").annotate(n=Count("id")).filter(n__gt=1).exists()
    assert OrderLine.objects.filter(order__connection=connection).count() == 2 * ORDERS


def test_a_run_after_the_dead_runs_lease_lapses_resumes_from_its_cursor(shared_db, woo, platform, logs):
    troubled(platform)
    dead = create_run(woo, ["orders"])
    killed_at_page(platform, shared_db, logs, dead, page=6)
    committed = assert_whole_pages_committed(woo, killed_at=6)
    dead.refresh_from_db()
    assert dead.status == SyncStatus.RUNNING  # nothing told it that its worker died…
    assert woo.sync_lease_owner == f"run-{dead.pk}"  # …and its lease holds the connection a while

    # The connection's schedule fires while the lease still holds: that run stands aside.
    skipped = start_sync("worker-2", shared_db, logs, connection_id=woo.pk, lease_seconds=LEASE_SECONDS)
    assert skipped.wait() == 0, skipped.output()
    assert "skipped" in skipped.output()

    # Once the lease has lapsed, the next scheduled run takes over.
    wait_for(lambda: Connection.objects.get(pk=woo.pk).sync_lease_until < timezone.now(), timeout=LEASE_SECONDS + 5)
    asked_before = len(platform.requests)
    worker = start_sync(
        "worker-3", shared_db, logs, connection_id=woo.pk, lease_seconds=LEASE_SECONDS, read_timeout=READ_TIMEOUT
    )
    assert worker.wait() == 0, worker.output()
    assert "succeeded" in worker.output(), runs_of(woo)

    assert_every_order_once(woo)
    resumed = [r.page for r in platform.requests[asked_before:] if r.answer == "ok"]
    assert resumed == list(range(committed // 100 + 1, 11))
    runs = {run.pk: run for run in SyncRun.objects.filter(connection=woo)}
    assert len(runs) == 3
    dead, skipped_run, taker = runs[dead.pk], *sorted((r for r in runs.values() if r.pk != dead.pk), key=lambda r: r.pk)
    assert (dead.status, dead.error_code) == (SyncStatus.FAILED, "abandoned")
    assert f"run #{taker.pk}" in dead.error
    assert dead.finished_at is not None
    assert (skipped_run.status, skipped_run.error_code) == (SyncStatus.SKIPPED, "busy")
    assert (taker.status, taker.trigger) == (SyncStatus.SUCCEEDED, SyncTrigger.SCHEDULE)
    assert taker.counts["orders"] == {"created": ORDERS - committed, "updated": 0, "unchanged": 0, "failed": 0}
    woo.refresh_from_db()
    assert (woo.sync_lease_owner, woo.sync_lease_until) == ("", None)
    assert woo.cursors["orders"] == {"since": woo.cursors["orders"]["since"]}
    assert platform.injected == {"rate_limit": 1, "server_error": 3, "stall": 1, "reset": 1}


def test_the_killed_run_delivered_again_takes_its_lease_back_at_once(shared_db, woo, platform, logs):
    troubled(platform)
    run = create_run(woo, ["orders"])
    killed_at_page(platform, shared_db, logs, run, page=5)
    committed = assert_whole_pages_committed(woo, killed_at=5)

    asked_before = len(platform.requests)
    # As django-q2 delivers the task again: the same run, whose own lease has not lapsed.
    again = start_sync("worker-2", shared_db, logs, run_id=run.pk, lease_seconds=LEASE_SECONDS)
    assert again.wait() == 0, again.output()

    assert_every_order_once(woo)
    resumed = [r.page for r in platform.requests[asked_before:] if r.answer == "ok"]
    assert resumed == list(range(committed // 100 + 1, 11))
    run.refresh_from_db()
    assert run.status == SyncStatus.SUCCEEDED
    # The counts went on from what the dead worker had committed.
    assert run.counts["orders"] == {"created": ORDERS, "updated": 0, "unchanged": 0, "failed": 0}
    assert run.progress["orders"]["seen"] == ORDERS
    assert SyncRun.objects.filter(connection=woo).count() == 1
