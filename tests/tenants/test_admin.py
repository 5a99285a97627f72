"""The SuperAdmin dashboard: who may open it, "Add client", API keys and the read-only audit log."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model

from tenants.models import ApiKey, AuditLog, Membership, Role, Tenant, TenantStatus, hash_api_key

pytestmark = pytest.mark.django_db

User = get_user_model()

RAW_KEY = re.compile(r"hub_[0-9a-f]{12}_[A-Za-z0-9_-]+")
STRONG_PASSWORD = "quiet-harbour-lantern-58"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def admin_client(client, superadmin):
    client.force_login(superadmin)
    return client


def add_client_form(**overrides) -> dict:
    data = {
        "name": "Gamma Supplies",
        "slug": "gamma-supplies",
        "contact_email": "ops@gamma.example",
        "base_currency": "EUR",
        "time_zone": "Europe/Berlin",
        "status": TenantStatus.ACTIVE,
        "owner_email": "owner@gamma.example",
        "owner_password1": STRONG_PASSWORD,
        "owner_password2": STRONG_PASSWORD,
    }
    data.update(overrides)
    return data


def add_api_key(admin_client, tenant: Tenant, name: str = "Zapier", scopes: tuple[str, ...] = ("orders:read",)):
    return admin_client.post("/admin/tenants/apikey/add/", {"tenant": tenant.pk, "name": name, "scopes": scopes})


# --- Who may open it ------------------------------------------------------------------------------


def test_the_admin_index_is_the_superadmin_dashboard(admin_client):
    response = admin_client.get("/admin/")
    assert response.status_code == 200
    assert "SuperAdmin dashboard" in response.content.decode()


@pytest.mark.parametrize(
    "url",
    ["/admin/tenants/tenant/", "/admin/tenants/membership/", "/admin/tenants/apikey/", "/admin/tenants/auditlog/"],
)
def test_the_admin_index_links_to_each_access_page(admin_client, url):
    assert f'href="{url}"' in admin_client.get("/admin/").content.decode()


def test_a_client_user_cannot_open_the_admin(client, make_member, tenant_a):
    client.force_login(make_member(tenant_a))
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_a_client_user_cannot_open_an_admin_changelist(client, make_member, tenant_a):
    client.force_login(make_member(tenant_a))
    response = client.get("/admin/tenants/apikey/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_an_anonymous_visitor_cannot_open_the_admin(client):
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


# --- Add client -----------------------------------------------------------------------------------


def test_the_tenant_changelist_has_an_add_client_button(admin_client):
    content = admin_client.get("/admin/tenants/tenant/").content.decode()
    assert re.search(r'<a href="/admin/tenants/tenant/add/"[^>]*>Add client</a>', content)


def test_the_add_client_page_asks_for_the_owner_login(admin_client):
    content = admin_client.get("/admin/tenants/tenant/add/").content.decode()
    assert 'name="owner_email"' in content
    assert 'name="owner_password1"' in content
    assert 'name="owner_password2"' in content


def test_add_client_creates_the_tenant(admin_client):
    response = admin_client.post("/admin/tenants/tenant/add/", add_client_form())
    assert response.status_code == 302
    tenant = Tenant.objects.get(slug="gamma-supplies")
    assert tenant.name == "Gamma Supplies"
    assert tenant.base_currency == "EUR"
    assert tenant.time_zone == "Europe/Berlin"


def test_add_client_creates_an_owner_user_named_by_email_with_the_given_password(admin_client):
    admin_client.post("/admin/tenants/tenant/add/", add_client_form())
    owner = User.objects.get(username="owner@gamma.example")
    assert owner.email == "owner@gamma.example"
    assert owner.check_password(STRONG_PASSWORD)
    assert not owner.is_staff


def test_add_client_makes_the_owner_an_owner_member_of_the_tenant(admin_client):
    admin_client.post("/admin/tenants/tenant/add/", add_client_form())
    membership = Membership.objects.get(user__username="owner@gamma.example")
    assert membership.tenant.slug == "gamma-supplies"
    assert membership.role == Role.OWNER


def test_the_new_owner_can_sign_in_to_their_dashboard(admin_client):
    admin_client.post("/admin/tenants/tenant/add/", add_client_form())
    admin_client.logout()
    admin_client.post("/accounts/login/", {"username": "owner@gamma.example", "password": STRONG_PASSWORD})
    response = admin_client.get("/dashboard/")
    assert response.status_code == 200
    assert "Gamma Supplies" in response.content.decode()


def test_add_client_stores_the_owner_email_in_lower_case(admin_client):
    admin_client.post("/admin/tenants/tenant/add/", add_client_form(owner_email="Owner@Gamma.Example"))
    assert User.objects.filter(username="owner@gamma.example").exists()


def assert_nothing_created() -> None:
    assert not Tenant.objects.exists()
    assert not User.objects.exclude(is_superuser=True).exists()
    assert not Membership.objects.exists()


def test_mismatched_passwords_are_an_inline_error(admin_client):
    response = admin_client.post(
        "/admin/tenants/tenant/add/", add_client_form(owner_password2="quiet-harbour-lantern-59")
    )
    assert response.status_code == 200
    assert "The two passwords do not match." in response.content.decode()
    assert_nothing_created()


def test_a_too_short_password_is_an_inline_error(admin_client):
    response = admin_client.post(
        "/admin/tenants/tenant/add/", add_client_form(owner_password1="Zq8#w", owner_password2="Zq8#w")
    )
    assert response.status_code == 200
    assert "This password is too short." in response.content.decode()
    assert_nothing_created()


def test_a_too_common_password_is_an_inline_error(admin_client):
    response = admin_client.post(
        "/admin/tenants/tenant/add/", add_client_form(owner_password1="password123", owner_password2="password123")
    )
    assert response.status_code == 200
    assert "This password is too common." in response.content.decode()
    assert_nothing_created()


def test_a_password_like_the_owner_email_is_an_inline_error(admin_client):
    response = admin_client.post(
        "/admin/tenants/tenant/add/",
        add_client_form(owner_password1="owner@gamma.example", owner_password2="owner@gamma.example"),
    )
    assert response.status_code == 200
    assert "too similar" in response.content.decode()
    assert_nothing_created()


def test_an_owner_email_already_in_use_is_an_inline_error(admin_client):
    User.objects.create_user("someone", "owner@gamma.example", "pw-for-tests-1")
    response = admin_client.post("/admin/tenants/tenant/add/", add_client_form())
    assert response.status_code == 200
    assert "A user with this email already exists." in response.content.decode()
    assert not Tenant.objects.exists()
    assert not Membership.objects.exists()
    assert User.objects.filter(email__iexact="owner@gamma.example").count() == 1


def test_an_owner_email_already_used_as_a_username_in_another_case_is_an_inline_error(admin_client):
    User.objects.create_user("OWNER@gamma.example", "", "pw-for-tests-1")
    response = admin_client.post("/admin/tenants/tenant/add/", add_client_form())
    assert "A user with this email already exists." in response.content.decode()
    assert not Tenant.objects.exists()


def test_a_duplicate_slug_is_an_inline_error(admin_client, make_tenant):
    make_tenant("Gamma Original", slug="gamma-supplies")
    response = admin_client.post("/admin/tenants/tenant/add/", add_client_form())
    assert response.status_code == 200
    assert "Tenant with this Slug already exists." in response.content.decode()
    assert list(Tenant.objects.values_list("name", flat=True)) == ["Gamma Original"]
    assert not User.objects.filter(username="owner@gamma.example").exists()
    assert not Membership.objects.exists()


# --- API keys -------------------------------------------------------------------------------------


def test_creating_an_api_key_shows_the_full_key_once(admin_client, tenant_a):
    response = add_api_key(admin_client, tenant_a)
    assert response.status_code == 200
    content = response.content.decode()
    assert "Copy it now" in content
    raw = RAW_KEY.search(content).group()
    assert ApiKey.objects.get().matches(raw)


def test_creating_an_api_key_stores_only_its_hash_and_prefix(admin_client, tenant_a):
    raw = RAW_KEY.search(add_api_key(admin_client, tenant_a).content.decode()).group()
    key = ApiKey.objects.get()
    assert key.key_hash == hash_api_key(raw)
    assert raw.startswith(f"{key.prefix}_")
    assert raw not in str(ApiKey.objects.values().get())


def test_an_api_key_created_in_the_admin_has_the_chosen_tenant_scopes_and_creator(admin_client, tenant_a, superadmin):
    add_api_key(admin_client, tenant_a, name="Zapier", scopes=("orders:read", "orders:write"))
    key = ApiKey.objects.get()
    assert (key.tenant, key.name, key.created_by) == (tenant_a, "Zapier", superadmin)
    assert sorted(key.scopes) == ["orders:read", "orders:write"]


def test_an_api_key_created_in_the_admin_works_against_the_api(admin_client, api_client, tenant_a):
    raw = RAW_KEY.search(add_api_key(admin_client, tenant_a).content.decode()).group()
    response = api_client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.json()["tenant"]["slug"] == tenant_a.slug


def test_the_api_key_change_page_never_shows_the_raw_key(admin_client, tenant_a):
    raw = RAW_KEY.search(add_api_key(admin_client, tenant_a).content.decode()).group()
    key = ApiKey.objects.get()
    content = admin_client.get(f"/admin/tenants/apikey/{key.pk}/change/").content.decode()
    assert key.prefix in content
    assert raw not in content
    assert key.key_hash not in content


def test_the_raw_key_is_not_shown_again_in_the_changelist(admin_client, tenant_a):
    raw = RAW_KEY.search(add_api_key(admin_client, tenant_a).content.decode()).group()
    assert raw not in admin_client.get("/admin/tenants/apikey/").content.decode()


def test_the_raw_key_is_not_kept_in_the_session(admin_client, tenant_a):
    raw = RAW_KEY.search(add_api_key(admin_client, tenant_a).content.decode()).group()
    assert raw not in str(dict(admin_client.session.items()))


def test_an_api_key_with_an_unknown_scope_is_refused_in_the_admin(admin_client, tenant_a):
    response = add_api_key(admin_client, tenant_a, scopes=("orders:delete",))
    assert response.status_code == 200
    assert "orders:delete is not one of the available choices" in response.content.decode()
    assert not ApiKey.objects.exists()


def test_the_revoke_action_revokes_the_selected_keys(admin_client, tenant_a):
    first, _ = ApiKey.generate(tenant=tenant_a, name="first")
    second, _ = ApiKey.generate(tenant=tenant_a, name="second")
    kept, _ = ApiKey.generate(tenant=tenant_a, name="kept")
    response = admin_client.post(
        "/admin/tenants/apikey/", {"action": "revoke", "_selected_action": [first.pk, second.pk]}, follow=True
    )
    assert "2 key(s) revoked." in response.content.decode()
    assert set(ApiKey.objects.filter(revoked_at__isnull=False).values_list("name", flat=True)) == {"first", "second"}
    kept.refresh_from_db()
    assert kept.revoked_at is None


def test_the_revoke_action_leaves_an_already_revoked_key_alone(admin_client, tenant_a):
    key, _ = ApiKey.generate(tenant=tenant_a, name="old")
    key.revoke()
    first_revoked_at = key.revoked_at
    admin_client.post("/admin/tenants/apikey/", {"action": "revoke", "_selected_action": [key.pk]})
    key.refresh_from_db()
    assert key.revoked_at == first_revoked_at


# --- Audit log ------------------------------------------------------------------------------------


@pytest.fixture
def audit_entry(tenant_a):
    return AuditLog.objects.create(tenant=tenant_a, action="tenant.suspended", actor_label="root")


def test_the_audit_log_can_be_read(admin_client, audit_entry):
    content = admin_client.get("/admin/tenants/auditlog/").content.decode()
    assert "tenant.suspended" in content


def test_the_audit_log_has_no_add_page(admin_client):
    assert admin_client.get("/admin/tenants/auditlog/add/").status_code == 403


def test_the_audit_log_changelist_offers_no_add_button(admin_client, audit_entry):
    assert "/admin/tenants/auditlog/add/" not in admin_client.get("/admin/tenants/auditlog/").content.decode()


def test_an_audit_entry_page_has_no_save_button(admin_client, audit_entry):
    response = admin_client.get(f"/admin/tenants/auditlog/{audit_entry.pk}/change/")
    assert response.status_code == 200
    assert 'name="_save"' not in response.content.decode()


def test_an_audit_entry_cannot_be_changed_by_post(admin_client, audit_entry):
    response = admin_client.post(
        f"/admin/tenants/auditlog/{audit_entry.pk}/change/", {"action": "nothing.happened", "actor_label": "x"}
    )
    assert response.status_code == 403
    audit_entry.refresh_from_db()
    assert audit_entry.action == "tenant.suspended"


def test_an_audit_entry_cannot_be_deleted(admin_client, audit_entry):
    response = admin_client.post(f"/admin/tenants/auditlog/{audit_entry.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    assert AuditLog.objects.filter(pk=audit_entry.pk).exists()
