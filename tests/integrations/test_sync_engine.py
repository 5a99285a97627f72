"""The sync engine with an in-memory connector: what lands in the database, and what a person sees."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_q.models import Schedule

from commerce.models import Order
from commerce.records import CustomerRecord, OrderRecord
from integrations import tasks
from integrations.connectors.base import CheckResult, Connector, Page
from integrations.errors import AuthError, Unavailable
from integrations.models import ConnectionStatus, QuarantinedRecord, SyncFrequency, SyncRun, SyncStatus, SyncTrigger
from integrations.services import connection_stats
from integrations.services import test_connection as run_connection_test
from integrations.sync import acquire_lease, retry_quarantined, run_sync

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def order(n: int, *, updated: int = 0, total: str = "10.00") -> OrderRecord:
    return OrderRecord(
        external_id=f"o{n}",
        number=str(1000 + n),
        currency="USD",
        placed_at=T0 + timedelta(hours=n),
        updated_at=T0 + timedelta(hours=n, minutes=updated),
        total=Decimal(total),
        raw={"id": n},
    )


class ListConnector(Connector):
    """Serves `pages` for the orders stream; raises `fail_at` (page index → exception)."""

    streams = ("orders", "customers")

    def __init__(self, connection, pages, fail_at=None):
        super().__init__(connection)
        self.pages = pages
        self.fail_at = fail_at or {}
        self.cursors_seen = []

    def read(self, stream, cursor, *, full=False):
        self.cursors_seen.append((stream, cursor))
        if stream != "orders":
            return
        start = 0 if full or not cursor else cursor["page"]
        for index in range(start, len(self.pages)):
            if index in self.fail_at:
                raise self.fail_at[index]
            yield Page(records=self.parse_all("orders", self.pages[index]), cursor={"page": index + 1}, total=30)

    def parse(self, stream, payload):
        if isinstance(payload, OrderRecord):
            return payload
        if stream == "customers":
            return CustomerRecord(external_id=str(payload["id"]), email=payload["email"])
        return OrderRecord(
            external_id=str(payload["id"]),
            number=payload["name"],
            currency=payload["currency"],
            placed_at=datetime.fromisoformat(payload["created_at"]),
            total=Decimal(payload["total"]),
        )


@pytest.fixture
def shop(tenant_a, make_connection):
    return make_connection(tenant_a, "shopify", credentials={"shop_domain": "a.myshopify.com", "access_token": "x"})


def pages_of(count: int, size: int = 10) -> list[list[OrderRecord]]:
    orders = [order(n) for n in range(count)]
    return [orders[i : i + size] for i in range(0, count, size)]


def test_a_sync_stores_every_order_and_reports_counts(shop):
    run = run_sync(shop, ["orders"], connector=ListConnector(shop, pages_of(30)))
    assert run.status == SyncStatus.SUCCEEDED
    assert Order.objects.for_tenant(shop.tenant).count() == 30
    assert run.counts["orders"] == {"created": 30, "updated": 0, "unchanged": 0, "failed": 0}
    assert run.progress["orders"] == {"seen": 30, "total": 30, "done": True}
    assert run.percent == 100


def test_the_cursor_is_stored_after_each_committed_page(shop):
    run_sync(shop, ["orders"], connector=ListConnector(shop, pages_of(30)))
    shop.refresh_from_db()
    assert shop.cursors["orders"] == {"page": 3}


def test_a_run_that_fails_mid_stream_keeps_committed_pages_and_the_next_run_resumes(shop):
    pages = pages_of(30)
    failing = ListConnector(shop, pages, fail_at={2: Unavailable("The platform answered 503.", status=503)})
    run = run_sync(shop, ["orders"], connector=failing)
    assert run.status == SyncStatus.FAILED
    assert "503" in run.error
    assert Order.objects.count() == 20
    shop.refresh_from_db()
    assert shop.status == ConnectionStatus.FAILING
    assert shop.cursors["orders"] == {"page": 2}

    resumed = ListConnector(shop, pages)
    run = run_sync(shop, ["orders"], connector=resumed)
    assert run.status == SyncStatus.SUCCEEDED
    assert resumed.cursors_seen[0] == ("orders", {"page": 2})
    assert Order.objects.count() == 30
    assert run.counts["orders"]["created"] == 10


def test_a_rerun_creates_no_duplicates(shop):
    run_sync(shop, ["orders"], connector=ListConnector(shop, pages_of(30)))
    run = run_sync(shop, ["orders"], full=True, connector=ListConnector(shop, pages_of(30)))
    assert Order.objects.count() == 30
    assert run.counts["orders"]["unchanged"] == 30


def test_a_revoked_token_fails_the_run_and_asks_for_reauthorisation(shop):
    revoked = AuthError("The platform answered 401.", hint="check the access token", status=401)
    run = run_sync(shop, ["orders"], connector=ListConnector(shop, pages_of(30), fail_at={1: revoked}))
    assert run.status == SyncStatus.FAILED
    assert run.error_code == "auth"
    assert "check the access token" in run.error
    shop.refresh_from_db()
    assert shop.status == ConnectionStatus.NEEDS_REAUTH
    assert Order.objects.count() == 10


def test_a_malformed_record_is_quarantined_and_the_rest_is_stored(shop):
    good = {"id": 1, "name": "1001", "currency": "USD", "created_at": "2026-01-01T00:00:00+00:00", "total": "5"}
    bad = {"id": 2, "name": "1002", "currency": "USD", "created_at": "not a date", "total": "5"}
    run = run_sync(shop, ["orders"], connector=ListConnector(shop, [[good, bad]]))
    assert run.status == SyncStatus.SUCCEEDED
    assert run.counts["orders"]["failed"] == 1
    assert Order.objects.count() == 1
    record = QuarantinedRecord.objects.get()
    assert record.external_id == "2"
    assert record.payload == bad
    assert "not a date" in record.error


def test_retrying_a_fixed_quarantined_record_stores_it(shop, monkeypatch):
    bad = {"id": 2, "name": "1002", "currency": "USD", "created_at": "not a date", "total": "5"}
    run_sync(shop, ["orders"], connector=ListConnector(shop, [[bad]]))
    monkeypatch.setattr("integrations.sync.get_connector", lambda c: ListConnector(c, []))
    record = QuarantinedRecord.objects.get()
    assert retry_quarantined(record) is False  # still malformed: stays quarantined, attempt counted
    record.refresh_from_db()
    assert record.attempts == 2 and record.resolved_at is None

    record.payload = {**bad, "created_at": "2026-01-02T00:00:00+00:00"}
    record.save()
    assert retry_quarantined(record) is True
    record.refresh_from_db()
    assert record.resolved_at is not None
    assert Order.objects.get().external_id == "2"


def test_a_second_run_while_one_holds_the_lease_is_skipped(shop):
    assert acquire_lease(shop, "someone-else")
    run = run_sync(shop, ["orders"], connector=ListConnector(shop, pages_of(10)))
    assert run.status == SyncStatus.SKIPPED
    assert "Another sync" in run.error
    assert Order.objects.count() == 0


def test_an_expired_lease_of_a_dead_worker_is_taken_over(shop):
    assert acquire_lease(shop, "dead-worker")
    type(shop).objects.filter(pk=shop.pk).update(sync_lease_until=timezone.now() - timedelta(seconds=1))
    run = run_sync(shop, ["orders"], connector=ListConnector(shop, pages_of(10)))
    assert run.status == SyncStatus.SUCCEEDED


def test_a_run_that_loses_its_lease_keeps_no_page_after_losing_it(shop):
    class Stealing(ListConnector):
        def read(self, stream, cursor, *, full=False):
            for index, page in enumerate(super().read(stream, cursor, full=full)):
                if index == 1:  # another run took over (e.g. this worker stalled past the lease)
                    type(shop).objects.filter(pk=shop.pk).update(sync_lease_owner="another-run")
                yield page

    run = run_sync(shop, ["orders"], connector=Stealing(shop, pages_of(30)))
    assert run.status == SyncStatus.FAILED
    assert "lost the connection's sync lease" in run.error
    assert Order.objects.count() == 10
    shop.refresh_from_db()
    assert shop.cursors["orders"] == {"page": 1}


def test_a_run_starts_from_the_stored_cursor_not_a_stale_copy(shop):
    stale = type(shop).objects.get(pk=shop.pk)
    run_sync(shop, ["orders"], connector=ListConnector(shop, pages_of(20)))
    reader = ListConnector(stale, pages_of(20))
    run_sync(stale, ["orders"], connector=reader)
    assert reader.cursors_seen[0] == ("orders", {"page": 2})


def test_the_lease_is_released_after_a_run(shop):
    run_sync(shop, ["orders"], connector=ListConnector(shop, pages_of(10)))
    shop.refresh_from_db()
    assert shop.sync_lease_until is None and shop.sync_lease_owner == ""


def test_an_unknown_stream_fails_the_run_with_a_clear_error(shop):
    run = run_sync(shop, ["refunds"], connector=ListConnector(shop, []))
    assert run.status == SyncStatus.FAILED
    assert "refunds" in run.error


def test_an_internal_error_fails_the_run_without_leaking_details(shop):
    run = run_sync(shop, ["orders"], connector=ListConnector(shop, pages_of(10), fail_at={0: KeyError("secret")}))
    assert run.status == SyncStatus.FAILED
    assert run.error_code == "internal"
    assert "secret" not in run.error


def test_a_successful_sync_marks_a_failing_connection_connected(shop):
    shop.status, shop.last_error = ConnectionStatus.FAILING, "old error"
    shop.save()
    run_sync(shop, ["orders"], connector=ListConnector(shop, pages_of(10)))
    shop.refresh_from_db()
    assert shop.status == ConnectionStatus.CONNECTED and shop.last_error == ""


def test_the_queued_task_runs_a_queued_run_once(shop, monkeypatch):
    monkeypatch.setattr("integrations.sync.get_connector", lambda c: ListConnector(c, pages_of(10)))
    run = SyncRun.objects.create(tenant=shop.tenant, connection=shop, streams=["orders"])
    assert tasks.sync_run(run.pk) == SyncStatus.SUCCEEDED
    # Delivered again (at-least-once): a finished run is left alone.
    assert tasks.sync_run(run.pk) == "nothing to do"
    assert Order.objects.count() == 10


def test_a_redelivered_task_resumes_its_own_interrupted_run(shop, monkeypatch):
    monkeypatch.setattr("integrations.sync.get_connector", lambda c: ListConnector(c, pages_of(30)))
    run = SyncRun.objects.create(tenant=shop.tenant, connection=shop, streams=["orders"], status=SyncStatus.RUNNING)
    # The dead worker still holds the lease under the run's own name.
    assert acquire_lease(shop, f"run-{run.pk}")
    assert tasks.sync_run(run.pk) == SyncStatus.SUCCEEDED


def test_enabling_a_connection_with_a_frequency_creates_its_schedule(shop, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        shop.status = ConnectionStatus.CONNECTED
        shop.sync_frequency = SyncFrequency.EVERY_6_HOURS
        shop.save()
    schedule = Schedule.objects.get(name=f"sync-connection-{shop.pk}")
    assert schedule.func == "integrations.tasks.scheduled_sync"
    assert schedule.minutes == 360


def test_disabling_a_connection_removes_its_schedule(shop, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        shop.status = ConnectionStatus.CONNECTED
        shop.save()
    assert Schedule.objects.filter(name=f"sync-connection-{shop.pk}").exists()
    with django_capture_on_commit_callbacks(execute=True):
        shop.enabled = False
        shop.save()
    assert not Schedule.objects.filter(name=f"sync-connection-{shop.pk}").exists()


def test_an_untested_connection_waits_for_a_successful_test_before_it_is_scheduled(
    shop, monkeypatch, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        shop.save()
    assert not Schedule.objects.filter(name=f"sync-connection-{shop.pk}").exists()

    class Passing(ListConnector):
        def _check(self):
            return CheckResult(ok=True)

    monkeypatch.setattr("integrations.services.get_connector", lambda c: Passing(c, []))
    with django_capture_on_commit_callbacks(execute=True):
        run_connection_test(shop)
    assert Schedule.objects.filter(name=f"sync-connection-{shop.pk}").exists()


def test_a_first_successful_sync_schedules_an_untested_connection(shop):
    run_sync(shop, ["orders"], connector=ListConnector(shop, pages_of(10)))
    assert Schedule.objects.filter(name=f"sync-connection-{shop.pk}").exists()


def test_a_connection_that_needs_reauthorisation_is_unscheduled(shop, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        shop.status = ConnectionStatus.CONNECTED
        shop.save()
    with django_capture_on_commit_callbacks(execute=True):
        shop.status = ConnectionStatus.NEEDS_REAUTH
        shop.save(update_fields=["status"])
    assert not Schedule.objects.filter(name=f"sync-connection-{shop.pk}").exists()


def test_a_manual_frequency_has_no_schedule(shop, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        shop.sync_frequency = SyncFrequency.MANUAL
        shop.save()
    assert not Schedule.objects.filter(name=f"sync-connection-{shop.pk}").exists()


def test_connection_stats_sum_up_the_history(shop):
    now = timezone.now()
    for status, seconds in [(SyncStatus.SUCCEEDED, 10), (SyncStatus.SUCCEEDED, 20), (SyncStatus.FAILED, 5)]:
        SyncRun.objects.create(
            tenant=shop.tenant,
            connection=shop,
            status=status,
            started_at=now - timedelta(seconds=seconds),
            finished_at=now,
            trigger=SyncTrigger.SCHEDULE,
        )
    SyncRun.objects.create(tenant=shop.tenant, connection=shop, status=SyncStatus.RUNNING, started_at=now)
    stats = connection_stats([shop])[shop.pk]
    assert stats["total"] == 3
    assert stats["successful"] == 2
    assert stats["failed"] == 1
    assert stats["running"] == 1
    assert stats["success_rate"] == pytest.approx(66.7)
    assert stats["average_duration"] == pytest.approx(15.0, abs=0.1)


def test_the_sync_command_prints_progress_and_fails_on_a_failed_sync(shop, monkeypatch, capsys):
    broken = {1: Unavailable("The platform answered 502.", status=502)}
    monkeypatch.setattr("integrations.sync.get_connector", lambda c: ListConnector(c, pages_of(30), fail_at=broken))
    with pytest.raises(Exception, match="1 sync"):
        call_command("sync", "--connection", str(shop.pk), "--stream", "orders")
    out = capsys.readouterr().out
    assert "orders 10/30" in out
    assert "Failed" in out and "502" in out


def test_the_sync_command_succeeds_and_reports_counts(shop, monkeypatch, capsys):
    monkeypatch.setattr("integrations.sync.get_connector", lambda c: ListConnector(c, pages_of(20)))
    call_command("sync", "--tenant", shop.tenant.slug, "--stream", "orders")
    assert "20 created" in capsys.readouterr().out
