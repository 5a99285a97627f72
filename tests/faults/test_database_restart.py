"""The database connection lost in the middle of a sync, as a PostgreSQL restart or failover looks
to a client: the sync worker's backend is terminated (`pg_terminate_backend`) from another
connection while it writes. The run fails cleanly (failed, saying so, lease released), the pages
committed before stay whole, nothing of the page in flight is kept, and the next run goes on from
the cursor to exactly every order once.

And once with the server itself restarted, where FAULTS_POSTGRES_RESTART names the command that
restarts it (.ci/run sets it to `pg_ctlcluster … restart -m fast` on its own machine; nowhere else
would a test suite restart a developer's database server)."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
from django.db import connection as db

from commerce.models import Order, OrderLine
from integrations.models import Connection, ConnectionStatus, SyncRun, SyncStatus
from integrations.sync import create_run

from .workers import admin_connection, restart_server, server_started_at, start_sync, terminate_backends, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ORDERS = 1000
RESTART = os.environ.get("FAULTS_POSTGRES_RESTART", "")


def when_committed(connection_id: int, page: int, action: Callable[[], None]) -> Callable[[], None]:
    """`action`, once the connection's cursor says the pages before `page` are committed."""

    def wait_then_act() -> None:
        with admin_connection(db.settings_dict) as admin:
            query = f"SELECT cursors FROM {Connection._meta.db_table} WHERE id = %s"
            wait_for(
                lambda: (admin.execute(query, [connection_id]).fetchone()[0].get("orders") or {}).get("page") == page
            )
        action()

    return wait_then_act


@pytest.mark.parametrize("moment", ["while it writes", "while it waits for the platform", "after its last page"])
def test_a_sync_whose_database_connection_dies_fails_cleanly_and_the_next_run_completes(
    shared_db, woo, platform, logs, moment
):
    run = create_run(woo, ["orders"])
    terminated: list[int] = []
    kill = lambda: terminated.append(terminate_backends(db.settings_dict, "worker-1"))  # noqa: E731
    pause = {}
    if moment == "while it writes":
        # The worker reads ahead: when it asks for page 6 it is writing page 4 or 5 (or between them).
        platform.on_page(6, kill)
    elif moment == "while it waits for the platform":
        # Page 6 is answered only after pages 1-5 are committed and the connection is gone: it
        # dies while the worker waits, and the worker learns of it in its next transaction.
        platform.on_page(6, when_committed(woo.pk, 6, kill))
    else:
        # The worker holds still after its tenth and last page has committed; the connection goes
        # then, and the worker learns of it outside any transaction (recording its progress).
        pause = {"FAULTS_PAUSE_AFTER_PAGES": 10, "FAULTS_PAUSE_SECONDS": 2}
    worker = start_sync("worker-1", shared_db, logs, run_id=run.pk, **pause)
    if pause:
        wait_for(lambda: "page" not in Connection.objects.get(pk=woo.pk).cursors.get("orders", {"page": 1}))
        kill()
    assert worker.wait() == 0, worker.output()
    assert terminated == [1]

    run.refresh_from_db()
    assert (run.status, run.error_code) == (SyncStatus.FAILED, "database"), run.error
    assert run.error.startswith("The database connection was lost during the sync.")
    woo.refresh_from_db()
    assert (woo.sync_lease_owner, woo.sync_lease_until) == ("", None)
    # The platform is not to blame: the connection keeps its status.
    assert woo.status == ConnectionStatus.CONNECTED
    committed = Order.objects.filter(connection=woo).count()
    expected = {"while it writes": (300, 400, 500), "while it waits for the platform": (500,)}
    assert committed in expected.get(moment, (ORDERS,)), committed
    assert woo.cursors["orders"].get("page") == (committed // 100 + 1 if committed < ORDERS else None)
    assert run.counts["orders"]["created"] == committed
    assert OrderLine.objects.filter(order__connection=woo).count() == 2 * committed

    retry = start_sync("worker-2", shared_db, logs, connection_id=woo.pk)
    assert retry.wait() == 0, retry.output()
    assert "succeeded" in retry.output(), retry.output()
    orders = Order.objects.filter(connection=woo)
    assert orders.count() == ORDERS
    assert orders.values("external_id").distinct().count() == ORDERS
    assert OrderLine.objects.filter(order__connection=woo).count() == 2 * ORDERS
    second = SyncRun.objects.exclude(pk=run.pk).get(connection=woo)
    assert second.status == SyncStatus.SUCCEEDED
    assert second.counts["orders"]["created"] == ORDERS - committed


@pytest.mark.skipif(not RESTART, reason="FAULTS_POSTGRES_RESTART is not set (.ci/run sets it on its own machine)")
def test_a_sync_across_a_restart_of_the_server_fails_cleanly_and_the_next_run_completes(shared_db, woo, platform, logs):
    """The server restarts (fast shutdown: every session is ended) while the worker waits for page 6,
    with pages 1-5 committed. When the page comes the worker's connection is gone; it fails the run
    as `database` on a new connection to the restarted server, and the next run completes."""
    before = server_started_at(db.settings_dict)
    run = create_run(woo, ["orders"])
    restarted: list[float] = []
    restart = lambda: restarted.append(restart_server(db.settings_dict, RESTART))  # noqa: E731
    platform.on_page(6, when_committed(woo.pk, 6, restart))
    worker = start_sync("worker-1", shared_db, logs, run_id=run.pk)
    try:
        assert worker.wait() == 0, worker.output()
    finally:
        db.close()  # this process's own session ended with the server's restart too
    assert len(restarted) == 1 and server_started_at(db.settings_dict) > before

    run.refresh_from_db()
    assert (run.status, run.error_code) == (SyncStatus.FAILED, "database"), run.error
    woo.refresh_from_db()
    assert (woo.sync_lease_owner, woo.sync_lease_until, woo.status) == ("", None, ConnectionStatus.CONNECTED)
    assert Order.objects.filter(connection=woo).count() == 500
    assert woo.cursors["orders"].get("page") == 6

    retry = start_sync("worker-2", shared_db, logs, connection_id=woo.pk)
    assert retry.wait() == 0, retry.output()
    orders = Order.objects.filter(connection=woo)
    assert orders.count() == orders.values("external_id").distinct().count() == ORDERS
    assert OrderLine.objects.filter(order__connection=woo).count() == 2 * ORDERS
    assert SyncRun.objects.exclude(pk=run.pk).get(connection=woo).counts["orders"]["created"] == ORDERS - 500
