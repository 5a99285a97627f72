"""The SuperAdmin overview on the admin index: tenants, connections, sync health, work in progress
and recent activity across every tenant, from a fixed number of queries."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from config.overview import overview_context
from integrations.models import ConnectionStatus, QuarantinedRecord, SyncRun, SyncStatus, SyncTrigger
from tenants.models import ApiKey, AuditLog, TenantStatus

pytestmark = pytest.mark.django_db

# The overview's own queries: tenants, connections, sync figures, failing connections, runs in
# progress, open quarantine, audit entries, API keys used in 24 h and the most recent keys.
OVERVIEW_QUERIES = 9


@pytest.fixture
def admin_client(client, superadmin):
    client.force_login(superadmin)
    return client


@pytest.fixture
def now():
    return timezone.now()


@pytest.fixture
def connection(make_tenant, make_connection):
    return make_connection(make_tenant("Alpha Goods"), name="Alpha Shopify")


def make_run(connection, status: str, finished_at=None, **kwargs) -> SyncRun:
    return SyncRun.objects.create(
        tenant=connection.tenant, connection=connection, status=status, finished_at=finished_at, **kwargs
    )


def overview_html(admin_client) -> str:
    content = admin_client.get("/admin/").content.decode()
    start = content.index('<div id="overview">')
    return content[start : content.index('<div id="content-main">', start)]


def section(html: str, name: str) -> str:
    """One module of the overview, by its id (`overview-<name>`)."""
    start = html.index(f'id="overview-{name}"')
    end = html.find('id="overview-', start + 1)
    return html[start : end if end != -1 else None]


# --- Tenants --------------------------------------------------------------------------------------


@pytest.fixture
def tenants(make_tenant):
    make_tenant("Alpha Goods")
    make_tenant("Beta Wares", is_demo=True)
    make_tenant("Gamma Supplies", status=TenantStatus.SUSPENDED)
    make_tenant("Delta Demo", status=TenantStatus.SUSPENDED, is_demo=True)


def test_the_overview_counts_tenants_by_status_and_demo(tenants):
    figures = overview_context()["tenants"]
    assert (figures["total"], figures["active"], figures["suspended"], figures["demo"]) == (4, 2, 2, 2)


def test_the_tenant_figures_link_to_the_filtered_tenant_list(admin_client, tenants):
    html = section(overview_html(admin_client), "tenants")
    assert re.search(r'<a href="/admin/tenants/tenant/\?status__exact=suspended">Suspended</a></th><td[^>]*>2<', html)
    assert re.search(r'<a href="/admin/tenants/tenant/\?is_demo__exact=1">Demo</a></th><td[^>]*>2<', html)
    assert re.search(r'<a href="/admin/tenants/tenant/">Total</a></th><td[^>]*>4<', html)


def test_the_tenant_figures_link_to_the_tenant_list_and_add_client(admin_client):
    html = section(overview_html(admin_client), "tenants")
    assert re.search(r'<a href="/admin/tenants/tenant/"[^>]*>Tenant list</a>', html)
    assert re.search(r'<a href="/admin/tenants/tenant/add/"[^>]*>Add client</a>', html)


# --- Connections by status ------------------------------------------------------------------------


@pytest.fixture
def connections_by_status(make_tenant, make_connection):
    tenant = make_tenant("Alpha Goods")
    statuses = {
        ConnectionStatus.CONNECTED: 3,
        ConnectionStatus.FAILING: 2,
        ConnectionStatus.NEEDS_REAUTH: 1,
        ConnectionStatus.UNTESTED: 1,
    }
    for status, count in statuses.items():
        for n in range(count):
            make_connection(tenant, name=f"{status} {n}", status=status)


def test_the_overview_counts_connections_by_status(connections_by_status):
    figures = overview_context()["connections"]
    assert {row["status"]: row["count"] for row in figures["by_status"]} == {
        "connected": 3,
        "failing": 2,
        "needs_reauth": 1,
        "untested": 1,
        "disabled": 0,
    }
    assert figures["total"] == 7


@pytest.mark.parametrize(
    ("status", "label", "count"),
    [
        ("connected", "Connected", 3),
        ("failing", "Failing", 2),
        ("needs_reauth", "Needs reauthorisation", 1),
        ("untested", "Untested", 1),
        ("disabled", "Disabled", 0),
    ],
)
def test_each_connection_status_links_to_the_connection_list_filtered_by_it(
    admin_client, connections_by_status, status, label, count
):
    html = section(overview_html(admin_client), "connections")
    url = re.escape(f"/admin/integrations/connection/?status__exact={status}")
    assert re.search(rf'<a href="{url}"><strong[^>]*>{label}</strong></a>', html)
    assert re.search(rf'<a href="{url}">{count}</a>', html)


# --- Sync success rate ----------------------------------------------------------------------------


@pytest.fixture
def finished_runs(connection, now):
    for hours in (1, 5, 23):
        make_run(connection, SyncStatus.SUCCEEDED, now - timedelta(hours=hours))
    make_run(connection, SyncStatus.FAILED, now - timedelta(hours=2))
    # In the last 7 days, not the last 24 hours.
    make_run(connection, SyncStatus.SUCCEEDED, now - timedelta(hours=25))
    for days in (2, 4, 6):
        make_run(connection, SyncStatus.FAILED, now - timedelta(days=days))
    # Older than 7 days, and runs that did not finish or were skipped: in neither rate.
    make_run(connection, SyncStatus.SUCCEEDED, now - timedelta(days=8))
    make_run(connection, SyncStatus.FAILED, now - timedelta(days=30))
    make_run(connection, SyncStatus.SKIPPED, now - timedelta(hours=1))
    make_run(connection, SyncStatus.RUNNING)


def test_the_success_rate_over_24_hours_counts_runs_finished_in_that_window(finished_runs, now):
    day = overview_context(now)["sync"]["day"]
    assert (day["succeeded"], day["failed"], day["finished"], day["rate"]) == (3, 1, 4, 75.0)


def test_the_success_rate_over_7_days_counts_runs_finished_in_that_window(finished_runs, now):
    week = overview_context(now)["sync"]["week"]
    assert (week["succeeded"], week["failed"], week["finished"], week["rate"]) == (4, 4, 8, 50.0)


def test_the_page_shows_both_success_rates_with_their_run_counts(admin_client, finished_runs):
    html = section(overview_html(admin_client), "sync")
    assert "75.0%" in html
    assert "3 of 4 runs" in html
    assert "50.0%" in html
    assert "4 of 8 runs" in html
    assert '<a href="/admin/integrations/syncrun/?status__exact=failed">4 failed</a>' in html


def test_without_finished_runs_the_success_rate_is_a_dash(admin_client, connection):
    make_run(connection, SyncStatus.RUNNING)
    assert overview_context()["sync"]["day"]["rate"] is None
    html = section(overview_html(admin_client), "sync")
    assert '<span class="figure">—</span>' in html
    assert "0 of 0 runs" in html


# --- Failing connections --------------------------------------------------------------------------


def test_failing_connections_are_listed_newest_failure_first(make_tenant, make_connection, now):
    tenant = make_tenant("Alpha Goods")
    tested = make_connection(
        tenant, name="Tested", status=ConnectionStatus.FAILING, last_tested_at=now - timedelta(hours=3)
    )
    synced = make_connection(tenant, name="Synced", status=ConnectionStatus.NEEDS_REAUTH)
    make_run(synced, SyncStatus.FAILED, now - timedelta(hours=1))
    make_run(synced, SyncStatus.FAILED, now - timedelta(hours=9))
    make_connection(tenant, name="Never failed yet", status=ConnectionStatus.FAILING)
    make_connection(tenant, name="Healthy", status=ConnectionStatus.CONNECTED, last_tested_at=now)

    rows = overview_context(now)["failing_connections"]

    assert [row["name"] for row in rows] == ["Synced", "Tested", "Never failed yet"]
    assert rows[0]["failed_at"] == now - timedelta(hours=1)
    assert rows[1]["failed_at"] == tested.last_tested_at
    assert rows[2]["failed_at"] is None


def test_a_later_failed_sync_beats_an_earlier_test_as_the_last_failure(connection, now):
    connection.status = ConnectionStatus.FAILING
    connection.last_tested_at = now - timedelta(days=2)
    connection.save()
    make_run(connection, SyncStatus.FAILED, now - timedelta(minutes=10))
    assert overview_context(now)["failing_connections"][0]["failed_at"] == now - timedelta(minutes=10)


def test_a_failing_connection_shows_its_tenant_platform_and_last_error(admin_client, make_tenant, make_connection):
    make_connection(
        make_tenant("Alpha Goods"),
        platform="shopify",
        name="Main store",
        status=ConnectionStatus.FAILING,
        last_error="Shopify answered 503 Service Unavailable.",
        last_tested_at=timezone.now(),
    )
    html = section(overview_html(admin_client), "failing")
    assert "Main store" in html
    assert "Alpha Goods" in html
    assert "Shopify" in html
    assert "Shopify answered 503 Service Unavailable." in html


def test_a_failing_connection_links_to_its_change_page(admin_client, connection):
    connection.status = ConnectionStatus.NEEDS_REAUTH
    connection.save()
    html = section(overview_html(admin_client), "failing")
    assert f'<a href="/admin/integrations/connection/{connection.pk}/change/">Alpha Shopify</a>' in html


def test_a_long_last_error_is_truncated(admin_client, connection):
    connection.status = ConnectionStatus.FAILING
    connection.last_error = "The platform said no. " * 40
    connection.save()
    row = overview_context()["failing_connections"][0]
    assert len(row["error"]) <= 140
    assert row["error"].endswith("…")
    assert row["full_error"] == connection.last_error


def test_at_most_ten_failing_connections_are_listed(make_tenant, make_connection, now):
    tenant = make_tenant("Alpha Goods")
    for n in range(12):
        make_connection(
            tenant, name=f"Store {n:02}", status=ConnectionStatus.FAILING, last_tested_at=now - timedelta(minutes=n)
        )
    rows = overview_context(now)["failing_connections"]
    assert [row["name"] for row in rows] == [f"Store {n:02}" for n in range(10)]


def test_no_failing_connections_says_so(admin_client, connection):
    assert "No failing connections." in section(overview_html(admin_client), "failing")


# --- Sync runs in progress ------------------------------------------------------------------------


def test_running_and_queued_runs_are_listed_but_finished_ones_are_not(connection, now):
    running = make_run(connection, SyncStatus.RUNNING, started_at=now)
    queued = make_run(connection, SyncStatus.QUEUED)
    make_run(connection, SyncStatus.SUCCEEDED, now)
    make_run(connection, SyncStatus.FAILED, now)
    figures = overview_context(now)
    assert {row["pk"] for row in figures["in_progress"]} == {running.pk, queued.pk}
    assert (figures["sync"]["running"], figures["sync"]["queued"]) == (1, 1)


def test_a_running_run_shows_its_progress_bar_and_links_to_the_run(admin_client, connection):
    run = make_run(
        connection,
        SyncStatus.RUNNING,
        trigger=SyncTrigger.SCHEDULE,
        streams=["orders"],
        started_at=timezone.now(),
        progress={"orders": {"seen": 50, "total": 200, "done": False}},
    )
    html = section(overview_html(admin_client), "in-progress")
    assert '<progress max="100" value="25" title="25%"></progress> 25% · 50 records' in html
    assert f'<a href="/admin/integrations/syncrun/{run.pk}/change/">#{run.pk}</a>' in html
    assert "Alpha Shopify" in html
    assert "Alpha Goods" in html
    assert "Schedule" in html
    assert "started " in html


def test_a_queued_run_shows_when_it_was_queued(admin_client, connection):
    queued_at = timezone.now() - timedelta(minutes=5)
    make_run(connection, SyncStatus.QUEUED, queued_at=queued_at, trigger=SyncTrigger.MANUAL)
    html = section(overview_html(admin_client), "in-progress")
    assert re.search(rf"queued <time [^>]*>{queued_at:%Y-%m-%d %H:%M}</time>", html)
    assert "Manual" in html


def test_running_runs_come_before_queued_ones_oldest_first(connection, now):
    queued = make_run(connection, SyncStatus.QUEUED, queued_at=now - timedelta(hours=2))
    newer = make_run(connection, SyncStatus.RUNNING, queued_at=now - timedelta(minutes=1))
    older = make_run(connection, SyncStatus.RUNNING, queued_at=now - timedelta(minutes=30))
    assert [row["pk"] for row in overview_context(now)["in_progress"]] == [older.pk, newer.pk, queued.pk]


def test_at_most_twenty_runs_in_progress_are_listed_and_the_heading_says_so(admin_client, connection):
    for _ in range(22):
        make_run(connection, SyncStatus.QUEUED)
    assert len(overview_context()["in_progress"]) == 20
    html = section(overview_html(admin_client), "in-progress")
    assert "(0 running, 22 queued; the first 20 shown)" in html
    assert html.count("/admin/integrations/syncrun/") == 21  # the heading and 20 rows


def test_no_run_in_progress_says_so(admin_client, connection):
    make_run(connection, SyncStatus.SUCCEEDED, timezone.now())
    assert "No sync is running or queued." in section(overview_html(admin_client), "in-progress")


# --- Quarantine -----------------------------------------------------------------------------------


def test_the_overview_counts_open_quarantined_records_and_links_to_them(admin_client, connection):
    for n in range(3):
        QuarantinedRecord.objects.create(
            tenant=connection.tenant, connection=connection, stream="orders", external_id=str(n), error="bad"
        )
    QuarantinedRecord.objects.create(
        tenant=connection.tenant, connection=connection, stream="orders", error="fixed", resolved_at=timezone.now()
    )
    assert overview_context()["quarantine"]["open"] == 3
    html = section(overview_html(admin_client), "attention")
    assert '<a href="/admin/integrations/quarantinedrecord/?open=1">3</a>' in html


# --- Recent activity ------------------------------------------------------------------------------


def test_the_last_fifteen_audit_entries_are_shown_newest_first(tenant_a, now):
    for n in range(20):
        AuditLog.objects.create(
            tenant=tenant_a, action=f"thing.{n:02}", actor_label="root", created_at=now - timedelta(minutes=n)
        )
    entries = overview_context(now)["audit"]["entries"]
    assert [entry["action"] for entry in entries] == [f"thing.{n:02}" for n in range(15)]


def test_an_audit_entry_shows_time_actor_tenant_action_and_target_and_links_to_the_log(admin_client, tenant_a):
    entry = AuditLog.objects.create(
        tenant=tenant_a,
        action="connection.tested",
        actor_label="ops@example.com",
        target="Main store (Shopify)",
        created_at=timezone.now().replace(year=2030, month=3, day=4, hour=5, minute=6),
    )
    html = section(overview_html(admin_client), "audit")
    assert f'<a href="/admin/tenants/auditlog/{entry.pk}/change/">' in html
    assert "2030-03-04 05:06" in html
    assert "ops@example.com" in html
    assert "Alpha Goods" in html
    assert "<code>connection.tested</code>" in html
    assert "Main store (Shopify)" in html
    assert re.search(r'<a href="/admin/tenants/auditlog/"[^>]*>Full audit log</a>', html)


def test_an_audit_entry_without_an_actor_is_from_the_system(db):
    AuditLog.objects.create(tenant=None, action="sync.scheduled")
    entry = overview_context()["audit"]["entries"][0]
    assert (entry["actor"], entry["tenant"]) == ("system", "")


# --- API activity ---------------------------------------------------------------------------------


def test_the_overview_counts_api_keys_used_in_the_last_24_hours(tenant_a, now):
    for name, hours in [("one", 1), ("two", 23), ("old", 30), ("never", None)]:
        key, _ = ApiKey.generate(tenant=tenant_a, name=name)
        if hours is not None:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now - timedelta(hours=hours))
    assert overview_context(now)["api"]["used_24h"] == 2


def test_the_five_most_recently_used_keys_are_listed_with_prefix_tenant_and_time(admin_client, tenant_a, tenant_b):
    now = timezone.now()
    keys = []
    for n in range(7):
        key, _ = ApiKey.generate(tenant=tenant_a if n % 2 else tenant_b, name=f"key {n}")
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now - timedelta(hours=n))
        keys.append(key)
    listed = overview_context()["api"]["recent_keys"]
    assert [row["prefix"] for row in listed] == [key.prefix for key in keys[:5]]
    html = section(overview_html(admin_client), "api")
    assert (
        f'<a href="/admin/tenants/apikey/{keys[0].pk}/change/" title="key 0"><code>{keys[0].prefix}</code></a>' in html
    )
    assert keys[5].prefix not in html
    assert "Beta Wares" in html


def test_webhook_activity_has_a_place_but_shows_nothing_yet(admin_client):
    assert overview_context()["webhook_activity"] is None
    assert "Webhook activity" not in overview_html(admin_client)


# --- Queries, access, empty -----------------------------------------------------------------------


def populate(make_tenant, make_connection, count: int) -> None:
    now = timezone.now()
    for n in range(count):
        tenant = make_tenant(f"Client {n}", is_demo=n % 2 == 0)
        connection = make_connection(
            tenant,
            name=f"Store {n}",
            status=ConnectionStatus.FAILING if n % 3 == 0 else ConnectionStatus.CONNECTED,
            last_error="Timed out.",
            last_tested_at=now - timedelta(minutes=n),
        )
        make_run(connection, SyncStatus.SUCCEEDED, now - timedelta(hours=n))
        make_run(connection, SyncStatus.FAILED, now - timedelta(days=n % 9))
        make_run(connection, SyncStatus.RUNNING, started_at=now, progress={"orders": {"seen": n, "total": 100}})
        make_run(connection, SyncStatus.QUEUED)
        QuarantinedRecord.objects.create(tenant=tenant, connection=connection, stream="orders", error="bad")
        AuditLog.objects.create(tenant=tenant, action="connection.tested", actor_label="root", target=str(connection))
        key, _ = ApiKey.generate(tenant=tenant, name=f"key {n}")
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now - timedelta(hours=n))


def test_the_overview_context_takes_a_fixed_number_of_queries(make_tenant, make_connection, django_assert_num_queries):
    populate(make_tenant, make_connection, 12)
    with django_assert_num_queries(OVERVIEW_QUERIES):
        overview_context()


def test_the_page_takes_as_many_queries_for_30_connections_as_for_3(admin_client, make_tenant, make_connection):
    def page_queries() -> int:
        with CaptureQueriesContext(db_connection) as queries:
            response = admin_client.get("/admin/")
        assert response.status_code == 200
        return len(queries)

    populate(make_tenant, make_connection, 3)
    few = page_queries()
    populate(make_tenant, make_connection, 27)
    assert page_queries() == few


def test_a_client_user_does_not_see_the_overview(client, make_member, tenant_a, connection):
    client.force_login(make_member(tenant_a))
    response = client.get("/admin/", follow=True)
    assert 'id="overview"' not in response.content.decode()
    assert response.redirect_chain[0][0].startswith("/admin/login/")


def test_an_active_non_staff_user_is_sent_to_the_login(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("someone", "someone@example.com", "pw-for-tests-1"))
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_the_overview_renders_with_no_data_at_all(admin_client):
    AuditLog.objects.all().delete()  # Signing in may have been recorded.
    response = admin_client.get("/admin/")
    assert response.status_code == 200
    html = overview_html(admin_client)
    assert "No failing connections." in html
    assert "No sync is running or queued." in html
    assert "No API key has been used yet." in html
    assert "Nothing recorded yet." in html
    assert '<span class="figure">—</span>' in section(html, "sync")


def test_the_overview_sits_above_the_app_list(admin_client):
    content = admin_client.get("/admin/").content.decode()
    assert content.index('id="overview"') < content.index('id="content-main"') < content.index("app-tenants")
