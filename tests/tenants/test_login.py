from __future__ import annotations

import pytest
from django.core.management import call_command

from tenants.forms import MAX_FAILED_LOGINS
from tenants.models import AuditLog, Membership, Role, TenantStatus

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def sign_in(client, username: str, password: str, url: str = "/accounts/login/"):
    return client.post(url, {"username": username, "password": password})


def test_a_client_signs_in_whatever_the_case_of_their_email(client, make_member, tenant_a):
    make_member(tenant_a, username="owner@alpha.example")
    response = sign_in(client, "Owner@Alpha.Example", "pw-for-tests-1")
    assert response.status_code == 302
    assert response["Location"] == "/dashboard/"


def test_sign_in_is_refused_after_too_many_failures_even_with_the_right_password(client, make_member, tenant_a):
    make_member(tenant_a, username="owner@alpha.example")
    for _ in range(MAX_FAILED_LOGINS):
        assert sign_in(client, "owner@alpha.example", "wrong-password").status_code == 200
    response = sign_in(client, "owner@alpha.example", "pw-for-tests-1")
    assert response.status_code == 200
    assert "Too many failed sign-in attempts" in response.content.decode()


def test_failures_for_one_username_do_not_lock_out_another(client, make_member, tenant_a):
    make_member(tenant_a, username="owner@alpha.example")
    for _ in range(MAX_FAILED_LOGINS):
        sign_in(client, "someone-else@alpha.example", "wrong-password")
    assert sign_in(client, "owner@alpha.example", "pw-for-tests-1").status_code == 302


def test_the_admin_sign_in_is_throttled_too(client, superadmin):
    for _ in range(MAX_FAILED_LOGINS):
        sign_in(client, "root", "wrong-password", url="/admin/login/")
    response = sign_in(client, "root", "pw-for-tests-1", url="/admin/login/")
    assert response.status_code == 200
    assert "Too many failed sign-in attempts" in response.content.decode()


def test_a_suspended_member_calling_the_api_gets_a_json_403(client, make_member, tenant_a):
    user = make_member(tenant_a)
    client.force_login(user)
    tenant_a.status = TenantStatus.SUSPENDED
    tenant_a.save()
    response = client.get("/api/v1/orders")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "account_suspended"


def test_a_member_of_two_clients_sees_a_switch_button_for_the_other(client, make_member, tenant_a, tenant_b):
    user = make_member(tenant_a)
    Membership.objects.create(tenant=tenant_b, user=user, role=Role.VIEWER)
    client.force_login(user)
    page = client.get("/dashboard/").content.decode()
    assert f"Switch to {tenant_b.name}" in page
    assert f"Switch to {tenant_a.name}" not in page


def test_the_login_audit_names_the_tenant_the_user_lands_in(client, make_member, make_tenant, tenant_b):
    suspended = make_tenant("Aardvark Ltd", status=TenantStatus.SUSPENDED)
    user = make_member(suspended, username="both@example.com")
    Membership.objects.create(tenant=tenant_b, user=user, role=Role.VIEWER)
    sign_in(client, "both@example.com", "pw-for-tests-1")
    assert AuditLog.objects.get(action="auth.login").tenant == tenant_b


def test_ensure_superadmin_never_prints_an_environment_password_in_production(db, settings, monkeypatch, capsys):
    monkeypatch.setenv("SUPERADMIN_PASSWORD", "env-secret-password-123")
    call_command("ensure_superadmin")
    settings.DEBUG = False
    call_command("ensure_superadmin")
    out = capsys.readouterr().out.splitlines()
    assert "env-secret-password-123" in out[0]
    assert "env-secret-password-123" not in out[1]
