"""The circuit breaker: a connection that keeps failing stops being synced on its schedule for a
while (15 min, doubling, at most a day); manual syncs still run; a success closes it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.models import Schedule

from integrations import tasks
from integrations.connectors.base import CheckResult, Connector, Page
from integrations.errors import Unavailable
from integrations.models import Connection, ConnectionStatus, SyncFrequency, SyncRun, SyncStatus, SyncTrigger
from integrations.services import request_sync
from integrations.services import test_connection as run_connection_test
from integrations.sync import run_sync
from tenants.models import Activity, ActivityKind

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


class Scripted(Connector):
    """Fails every read and check while `failing` is true; otherwise reads one empty page."""

    streams = ("orders",)
    failing = True
    reads = 0

    def read(self, stream, cursor, *, full=False):
        type(self).reads += 1
        if type(self).failing:
            raise Unavailable("The platform answered 503.")
        yield Page(records=[], cursor={"page": 1})

    def _check(self):
        if type(self).failing:
            raise Unavailable("The platform answered 503.")
        return CheckResult(ok=True, message="Connected.")


@pytest.fixture
def scripted(monkeypatch):
    Scripted.failing, Scripted.reads = True, 0
    monkeypatch.setattr("integrations.sync.get_connector", lambda connection: Scripted(connection))
    monkeypatch.setattr("integrations.services.get_connector", lambda connection: Scripted(connection))
    return Scripted


@pytest.fixture
def shop(tenant_a, make_connection, settings):
    settings.CIRCUIT_BREAKER_FAILURES = 5
    settings.ALERT_FAILURES_IN_A_ROW = 3
    return make_connection(
        tenant_a,
        "shopify",
        name="Alpha Shopify",
        status=ConnectionStatus.CONNECTED,
        sync_frequency=SyncFrequency.EVERY_15_MIN,
        credentials={"shop_domain": "a.myshopify.com", "access_token": "x"},
    )


def failed_syncs(connection: Connection, times: int) -> None:
    for _ in range(times):
        run_sync(connection, trigger=SyncTrigger.SCHEDULE)


def fresh(connection: Connection) -> Connection:
    return Connection.objects.get(pk=connection.pk)


def about(moment, expected: timedelta) -> bool:
    return abs(moment - (timezone.now() + expected)) < timedelta(seconds=30)


def test_four_failures_leave_the_breaker_closed(shop, scripted):
    failed_syncs(shop, 4)
    shop = fresh(shop)
    assert shop.consecutive_failures == 4 and shop.paused_until is None and not shop.is_paused


def test_the_fifth_failure_in_a_row_pauses_scheduled_syncs_for_15_minutes(shop, scripted):
    failed_syncs(shop, 5)
    shop = fresh(shop)
    assert shop.is_paused and about(shop.paused_until, timedelta(minutes=15))
    assert shop.pause_reason == "5 syncs or tests failed in a row; the last: The platform answered 503."
    assert shop.failing_since is not None


def test_each_further_failure_doubles_the_pause_up_to_a_day(shop, scripted):
    failed_syncs(shop, 6)
    assert about(fresh(shop).paused_until, timedelta(minutes=30))
    failed_syncs(shop, 1)
    assert about(fresh(shop).paused_until, timedelta(minutes=60))
    assert tasks.pause_for(5) == timedelta(minutes=15)
    assert tasks.pause_for(11) == timedelta(hours=16)
    assert tasks.pause_for(12) == tasks.pause_for(500) == timedelta(hours=24)


def test_failing_tests_count_like_failed_syncs(shop, scripted):
    failed_syncs(shop, 3)
    run_connection_test(shop)
    run_connection_test(shop)
    assert fresh(shop).consecutive_failures == 5 and fresh(shop).is_paused


def test_a_scheduled_sync_is_skipped_while_paused_with_the_reason_on_its_run(shop, scripted):
    failed_syncs(shop, 5)
    reads = scripted.reads
    result = tasks.scheduled_sync(shop.pk)
    assert scripted.reads == reads  # the platform was not asked
    skipped = SyncRun.objects.filter(connection=shop).latest("queued_at")
    assert skipped.status == SyncStatus.SKIPPED and skipped.error_code == "paused"
    assert skipped.error == result
    assert result.startswith("Scheduled sync skipped: paused until ")
    assert result.endswith("because 5 syncs or tests failed in a row; the last: The platform answered 503.")


def test_the_schedule_waits_for_the_end_of_the_pause_and_comes_back_after(shop, scripted):
    tasks.update_schedule(shop)
    failed_syncs(shop, 6)
    schedule = Schedule.objects.get(name=tasks.schedule_name(shop))
    assert schedule.next_run == fresh(shop).paused_until
    scripted.failing = False
    run_sync(fresh(shop), trigger=SyncTrigger.MANUAL)
    schedule.refresh_from_db()
    assert schedule.next_run <= timezone.now() + timedelta(minutes=15)


def test_a_scheduled_sync_runs_again_once_the_pause_is_over(shop, scripted):
    failed_syncs(shop, 5)
    Connection.objects.filter(pk=shop.pk).update(paused_until=timezone.now() - timedelta(seconds=1))
    scripted.failing = False
    assert tasks.scheduled_sync(shop.pk) == SyncStatus.SUCCEEDED
    shop = fresh(shop)
    assert shop.consecutive_failures == 0 and shop.paused_until is None and shop.pause_reason == ""


def test_a_manual_sync_still_runs_while_paused_and_closes_the_breaker(
    shop, scripted, django_capture_on_commit_callbacks
):
    failed_syncs(shop, 5)
    scripted.failing = False
    with django_capture_on_commit_callbacks(execute=False):
        run = request_sync(fresh(shop), trigger=SyncTrigger.MANUAL)
    assert tasks.sync_run(run.pk) == SyncStatus.SUCCEEDED
    shop = fresh(shop)
    assert not shop.is_paused and shop.consecutive_failures == 0 and shop.failing_since is None


def test_a_successful_test_closes_the_breaker(shop, scripted, django_capture_on_commit_callbacks):
    failed_syncs(shop, 7)
    scripted.failing = False
    with django_capture_on_commit_callbacks(execute=True):
        assert run_connection_test(fresh(shop)).ok
    shop = fresh(shop)
    assert shop.consecutive_failures == 0 and shop.paused_until is None
    recovered = Activity.objects.for_tenant(shop.tenant).get(kind=ActivityKind.CONNECTION_RECOVERED)
    assert recovered.message == "“Alpha Shopify” works again after 7 failures in a row."


def test_a_run_another_run_held_off_is_no_failure_of_the_connection(shop, scripted):
    Connection.objects.filter(pk=shop.pk).update(
        sync_lease_owner="someone-else", sync_lease_until=timezone.now() + timedelta(minutes=5)
    )
    for _ in range(6):
        run_sync(fresh(shop), trigger=SyncTrigger.SCHEDULE)
    assert fresh(shop).consecutive_failures == 0


def test_the_failure_streak_and_the_pause_are_in_the_activity_stream(
    shop, scripted, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        failed_syncs(shop, 6)
    kinds = list(Activity.objects.for_tenant(shop.tenant).order_by("id").values_list("kind", flat=True))
    assert kinds.count(ActivityKind.SYNC_FAILED) == 6
    assert kinds.count(ActivityKind.CONNECTION_FAILING) == 1  # at the third failure only
    assert kinds.count(ActivityKind.CONNECTION_PAUSED) == 2  # opened at five, held longer at six


def test_the_admin_page_and_the_clients_integrations_page_say_why_syncs_are_paused(
    shop, scripted, client, superadmin, make_member
):
    failed_syncs(shop, 5)
    client.force_login(superadmin)
    admin_page = client.get(f"/admin/integrations/connection/{shop.pk}/change/").content.decode()
    assert "Paused until " in admin_page
    assert "because 5 syncs or tests failed in a row; the last: The platform answered 503." in admin_page
    listing = client.get("/admin/integrations/connection/").content.decode()
    assert "· paused" in listing
    client.force_login(make_member(shop.tenant))
    page = client.get("/dashboard/integrations/").content.decode()
    assert "Paused until " in page and "because 5 syncs or tests failed in a row" in page
    overview = client.get("/dashboard/").content.decode()
    assert "Scheduled syncs paused until " in overview
