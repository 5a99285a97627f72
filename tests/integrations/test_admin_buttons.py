"""The superadmin's buttons on a connection: Test connection, Sync now, and what the page shows."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_q.models import OrmQ

from integrations.connectors.base import CheckResult
from integrations.errors import AuthError
from integrations.models import ConnectionStatus, QuarantinedRecord, SyncRun, SyncStatus
from tenants.models import AuditLog

pytestmark = pytest.mark.django_db


class StubConnector:
    def __init__(self, result: CheckResult) -> None:
        self.result = result

    def check(self) -> CheckResult:
        return self.result


@pytest.fixture
def admin_client(client, superadmin):
    client.force_login(superadmin)
    return client


@pytest.fixture
def shop(tenant_a, make_connection):
    return make_connection(tenant_a, "shopify", credentials={"shop_domain": "a.myshopify.com", "access_token": "x"})


def use_check(monkeypatch, result: CheckResult) -> None:
    monkeypatch.setattr("integrations.services.get_connector", lambda connection: StubConnector(result))


def test_the_change_page_has_test_and_sync_buttons(admin_client, shop):
    page = admin_client.get(f"/admin/integrations/connection/{shop.pk}/change/").content.decode()
    assert "Test connection" in page
    assert "Sync now" in page


def test_test_connection_marks_the_connection_connected_and_shows_the_result(admin_client, shop, monkeypatch):
    use_check(monkeypatch, CheckResult(ok=True, granted=["read_orders"], samples={"orders": 42}))
    response = admin_client.post(f"/admin/integrations/connection/{shop.pk}/test/", follow=True)
    shop.refresh_from_db()
    assert shop.status == ConnectionStatus.CONNECTED
    assert shop.last_tested_at is not None
    page = response.content.decode()
    assert "connected" in page
    assert "orders: 42" in page
    assert AuditLog.objects.filter(action="connection.tested", tenant=shop.tenant).exists()


def test_a_failed_test_shows_the_platform_hint(admin_client, shop, monkeypatch):
    use_check(monkeypatch, CheckResult.failure(AuthError("The platform answered 401.", hint="check the access token")))
    response = admin_client.post(f"/admin/integrations/connection/{shop.pk}/test/", follow=True)
    shop.refresh_from_db()
    assert shop.status == ConnectionStatus.NEEDS_REAUTH
    assert "check the access token" in response.content.decode()


def test_the_buttons_refuse_get(admin_client, shop):
    assert admin_client.get(f"/admin/integrations/connection/{shop.pk}/test/").status_code == 405
    assert admin_client.get(f"/admin/integrations/connection/{shop.pk}/sync/").status_code == 405


def test_a_client_user_cannot_press_the_buttons(client, shop, make_member):
    client.force_login(make_member(shop.tenant))
    response = client.post(f"/admin/integrations/connection/{shop.pk}/sync/")
    assert response.status_code == 302  # to the admin login
    assert not SyncRun.objects.exists()


def test_sync_now_queues_a_run_on_the_task_cluster(admin_client, shop, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(f"/admin/integrations/connection/{shop.pk}/sync/", follow=True)
    run = SyncRun.objects.get()
    assert run.status == SyncStatus.QUEUED and run.trigger == "manual"
    assert OrmQ.objects.count() == 1
    assert f"Sync #{run.pk} queued" in response.content.decode()
    assert AuditLog.objects.filter(action="sync.requested").exists()


def test_sync_now_on_a_disabled_connection_says_so_and_queues_nothing(admin_client, shop):
    shop.enabled = False
    shop.save()
    response = admin_client.post(f"/admin/integrations/connection/{shop.pk}/sync/", follow=True)
    assert "disabled" in response.content.decode()
    assert not SyncRun.objects.exists()


def test_the_bulk_actions_test_and_sync_several_connections(admin_client, shop, make_connection, monkeypatch):
    other = make_connection(shop.tenant, "woocommerce", credentials={"site_url": "https://b.example"})
    use_check(monkeypatch, CheckResult(ok=True))
    admin_client.post(
        "/admin/integrations/connection/", {"action": "test_selected", "_selected_action": [shop.pk, other.pk]}
    )
    assert AuditLog.objects.filter(action="connection.tested").count() == 2
    admin_client.post(
        "/admin/integrations/connection/", {"action": "sync_selected", "_selected_action": [shop.pk, other.pk]}
    )
    assert SyncRun.objects.count() == 2


def test_the_change_page_shows_sync_history_with_progress(admin_client, shop):
    SyncRun.objects.create(
        tenant=shop.tenant,
        connection=shop,
        streams=["orders"],
        status=SyncStatus.RUNNING,
        progress={"orders": {"seen": 50, "total": 200, "done": False}},
        started_at=timezone.now(),
    )
    page = admin_client.get(f"/admin/integrations/connection/{shop.pk}/change/").content.decode()
    assert '<progress max="100" value="25"' in page


def test_the_list_shows_the_success_rate_and_last_sync(admin_client, shop):
    now = timezone.now()
    for status in (SyncStatus.SUCCEEDED, SyncStatus.SUCCEEDED, SyncStatus.SUCCEEDED, SyncStatus.FAILED):
        SyncRun.objects.create(
            tenant=shop.tenant, connection=shop, status=status, started_at=now - timedelta(seconds=3), finished_at=now
        )
    page = admin_client.get("/admin/integrations/connection/").content.decode()
    assert "75.0%" in page


def test_saving_the_form_does_not_overwrite_a_running_syncs_cursor(admin_client, shop):
    page_url = f"/admin/integrations/connection/{shop.pk}/change/"
    admin_client.get(page_url)
    type(shop).objects.filter(pk=shop.pk).update(cursors={"orders": {"since": "2026-05-01T00:00:00Z"}})
    response = admin_client.post(
        page_url,
        {"name": "Renamed", "cred_shop_domain": "a.myshopify.com", "sync_frequency": "1h", "enabled": "on"},
    )
    assert response.status_code == 302
    shop.refresh_from_db()
    assert shop.name == "Renamed"
    assert shop.cursors == {"orders": {"since": "2026-05-01T00:00:00Z"}}


def test_retrying_quarantined_records_from_the_admin(admin_client, shop, monkeypatch):
    record = QuarantinedRecord.objects.create(
        tenant=shop.tenant, connection=shop, stream="orders", external_id="9", payload={"id": 9}, error="bad"
    )
    monkeypatch.setattr("integrations.sync.retry_quarantined", lambda r: False)
    response = admin_client.post(
        "/admin/integrations/quarantinedrecord/", {"action": "retry", "_selected_action": [record.pk]}, follow=True
    )
    assert "still failing" in response.content.decode()


def test_the_test_connections_command_exits_non_zero_on_a_failure(shop, monkeypatch, capsys):
    use_check(monkeypatch, CheckResult.failure(AuthError("The platform answered 401.", hint="check the access token")))
    with pytest.raises(Exception, match="1 connection test"):
        call_command("test_connections")
    assert "check the access token" in capsys.readouterr().out


def test_sync_now_on_a_platform_without_a_connector_says_so(admin_client, tenant_a, make_connection):
    crm = make_connection(tenant_a, "manual")
    response = admin_client.post(f"/admin/integrations/connection/{crm.pk}/sync/", follow=True)
    assert "cannot be synced yet" in response.content.decode()
    assert not SyncRun.objects.exists()


def test_testing_a_platform_without_a_connector_leaves_its_status_alone(admin_client, tenant_a, make_connection):
    crm = make_connection(tenant_a, "manual")
    response = admin_client.post(f"/admin/integrations/connection/{crm.pk}/test/", follow=True)
    crm.refresh_from_db()
    assert crm.status == ConnectionStatus.UNTESTED
    assert "cannot be tested yet" in response.content.decode()
