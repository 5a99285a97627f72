"""The audit log records sign-ins, API key changes and client changes: who, what, for which tenant, from where."""

from __future__ import annotations

import pytest

from tenants.models import ApiKey, AuditLog, Tenant, TenantStatus

pytestmark = pytest.mark.django_db

PASSWORD = "pw-for-tests-1"
WRONG_PASSWORD = "not-my-password-Xy93"
NEW_OWNER_PASSWORD = "quiet-harbour-lantern-58"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def member_a(make_member, tenant_a):
    return make_member(tenant_a, username="ana@alpha.example", password=PASSWORD)


@pytest.fixture
def admin_client(client, superadmin):
    client.force_login(superadmin)
    return client


def only_entry(action: str) -> AuditLog:
    return AuditLog.objects.get(action=action)


# --- Sign-in --------------------------------------------------------------------------------------


def test_a_login_is_recorded_with_actor_tenant_and_ip(client, member_a, tenant_a):
    response = client.post(
        "/accounts/login/", {"username": "ana@alpha.example", "password": PASSWORD}, REMOTE_ADDR="203.0.113.7"
    )
    assert response.status_code == 302
    entry = only_entry("auth.login")
    assert entry.actor == member_a
    assert entry.actor_label == "ana@alpha.example"
    assert entry.tenant == tenant_a
    assert entry.ip_address == "203.0.113.7"


def test_a_failed_login_is_recorded_with_the_username_and_ip(client, member_a):
    response = client.post(
        "/accounts/login/", {"username": "ana@alpha.example", "password": WRONG_PASSWORD}, REMOTE_ADDR="203.0.113.8"
    )
    assert response.status_code == 200
    entry = only_entry("auth.login_failed")
    assert entry.target == "ana@alpha.example"
    assert entry.ip_address == "203.0.113.8"
    assert entry.actor is None
    assert not AuditLog.objects.filter(action="auth.login").exists()


def test_a_failed_login_never_stores_the_password(client, member_a):
    client.post("/accounts/login/", {"username": "ana@alpha.example", "password": WRONG_PASSWORD})
    row = AuditLog.objects.filter(action="auth.login_failed").values().get()
    assert WRONG_PASSWORD not in str(row)
    assert "password" not in row["details"]


def test_a_failed_login_for_an_unknown_user_is_recorded_too(client):
    client.post("/accounts/login/", {"username": "nobody@example.com", "password": WRONG_PASSWORD})
    assert only_entry("auth.login_failed").target == "nobody@example.com"


# --- API keys -------------------------------------------------------------------------------------


def test_creating_an_api_key_in_the_admin_is_recorded(admin_client, superadmin, tenant_a):
    admin_client.post(
        "/admin/tenants/apikey/add/",
        {"tenant": tenant_a.pk, "name": "Zapier", "scopes": ["orders:read"]},
        REMOTE_ADDR="198.51.100.4",
    )
    key = ApiKey.objects.get()
    entry = only_entry("api_key.created")
    assert entry.actor == superadmin
    assert entry.tenant == tenant_a
    assert entry.target == str(key)
    assert entry.ip_address == "198.51.100.4"
    assert entry.details == {"scopes": ["orders:read"]}


def test_the_api_key_creation_entry_holds_no_secret(admin_client, tenant_a):
    admin_client.post("/admin/tenants/apikey/add/", {"tenant": tenant_a.pk, "name": "Zapier", "scopes": []})
    key = ApiKey.objects.get()
    row = str(AuditLog.objects.filter(action="api_key.created").values().get())
    assert key.key_hash not in row


def test_revoking_an_api_key_in_the_admin_is_recorded(admin_client, superadmin, api_key, tenant_a):
    key, _ = api_key
    admin_client.post("/admin/tenants/apikey/", {"action": "revoke", "_selected_action": [key.pk]})
    entry = only_entry("api_key.revoked")
    assert entry.actor == superadmin
    assert entry.tenant == tenant_a
    assert entry.target == str(key)


def test_revoking_an_already_revoked_key_records_nothing(admin_client, api_key):
    key, _ = api_key
    key.revoke()
    admin_client.post("/admin/tenants/apikey/", {"action": "revoke", "_selected_action": [key.pk]})
    assert not AuditLog.objects.filter(action="api_key.revoked").exists()


# --- Clients --------------------------------------------------------------------------------------


def add_client(admin_client, **overrides):
    data = {
        "name": "Gamma Supplies",
        "slug": "gamma-supplies",
        "contact_email": "ops@gamma.example",
        "base_currency": "EUR",
        "time_zone": "Europe/Berlin",
        "status": TenantStatus.ACTIVE,
        "owner_email": "owner@gamma.example",
        "owner_password1": NEW_OWNER_PASSWORD,
        "owner_password2": NEW_OWNER_PASSWORD,
    }
    data.update(overrides)
    return admin_client.post("/admin/tenants/tenant/add/", data)


def test_adding_a_client_is_recorded_with_its_owner(admin_client, superadmin):
    add_client(admin_client)
    tenant = Tenant.objects.get(slug="gamma-supplies")
    entry = only_entry("tenant.created")
    assert entry.actor == superadmin
    assert entry.tenant == tenant
    assert entry.target == "Gamma Supplies"
    assert entry.details == {"owner": "owner@gamma.example"}


def test_a_refused_add_client_records_nothing(admin_client):
    add_client(admin_client, owner_password2="something-else-entirely-7")
    assert not AuditLog.objects.filter(action="tenant.created").exists()


def test_the_add_client_entry_never_stores_the_owners_password(admin_client):
    add_client(admin_client)
    assert NEW_OWNER_PASSWORD not in str(AuditLog.objects.filter(action="tenant.created").values().get())


def test_suspending_a_client_with_the_admin_action_is_recorded(admin_client, superadmin, tenant_a, tenant_b):
    admin_client.post("/admin/tenants/tenant/", {"action": "suspend", "_selected_action": [tenant_a.pk]})
    entry = only_entry("tenant.suspended")
    assert entry.actor == superadmin
    assert entry.tenant == tenant_a
    assert entry.target == tenant_a.name
    tenant_a.refresh_from_db()
    assert tenant_a.status == TenantStatus.SUSPENDED


def test_suspending_records_one_entry_per_client(admin_client, tenant_a, tenant_b):
    admin_client.post("/admin/tenants/tenant/", {"action": "suspend", "_selected_action": [tenant_a.pk, tenant_b.pk]})
    assert set(AuditLog.objects.filter(action="tenant.suspended").values_list("tenant__name", flat=True)) == {
        tenant_a.name,
        tenant_b.name,
    }


def test_suspending_an_already_suspended_client_records_nothing(admin_client, tenant_a):
    tenant_a.status = TenantStatus.SUSPENDED
    tenant_a.save()
    admin_client.post("/admin/tenants/tenant/", {"action": "suspend", "_selected_action": [tenant_a.pk]})
    assert not AuditLog.objects.filter(action="tenant.suspended").exists()


def test_reactivating_a_client_is_recorded(admin_client, tenant_a):
    tenant_a.status = TenantStatus.SUSPENDED
    tenant_a.save()
    admin_client.post("/admin/tenants/tenant/", {"action": "reactivate", "_selected_action": [tenant_a.pk]})
    assert only_entry("tenant.active").tenant == tenant_a


def test_suspending_a_client_on_its_change_page_is_recorded(admin_client, tenant_a):
    admin_client.post(
        f"/admin/tenants/tenant/{tenant_a.pk}/change/",
        {
            "name": tenant_a.name,
            "slug": tenant_a.slug,
            "contact_email": tenant_a.contact_email,
            "status": TenantStatus.SUSPENDED,
            "base_currency": tenant_a.base_currency,
            "time_zone": tenant_a.time_zone,
            "default_reorder_point": "5",
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
        },
    )
    assert only_entry("tenant.suspended").tenant == tenant_a
