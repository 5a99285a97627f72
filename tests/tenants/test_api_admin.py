"""The admin's side of the API product: key tiers, each key's usage, the usage list, and superadmins'
admin API keys."""

from __future__ import annotations

import datetime
import re

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from tenants.models import AdminApiKey, ApiKey, ApiUsage, AuditLog, Role

pytestmark = pytest.mark.django_db

User = get_user_model()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def admin_client(client, superadmin):
    client.force_login(superadmin)
    return client


@pytest.fixture
def used_key(api_key):
    key, _ = api_key
    today = timezone.now().astimezone(datetime.UTC).date()
    for status_code, count in [(200, 7), (404, 3)]:
        ApiUsage.objects.create(
            tenant=key.tenant,
            api_key=key,
            day=today,
            endpoint="/api/v1/orders/{pk}",
            method="GET",
            status_code=status_code,
            count=count,
        )
    return key


def test_a_key_is_on_the_default_tier_unless_made_premium(tenant_a):
    key, _ = ApiKey.generate(tenant_a, "plain")
    assert key.tier == "default"
    premium, _ = ApiKey.generate(tenant_a, "fast", tier="premium")
    premium.refresh_from_db()
    assert premium.tier == "premium"


def test_an_unknown_tier_is_refused(tenant_a):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        ApiKey.generate(tenant_a, "odd", tier="platinum")


def test_a_superadmin_issues_a_premium_key_in_the_admin(admin_client, tenant_a):
    response = admin_client.post(
        "/admin/tenants/apikey/add/",
        {"tenant": tenant_a.pk, "name": "Big integrator", "scopes": ["orders:read"], "tier": "premium"},
    )
    assert response.status_code == 200
    assert ApiKey.objects.get(name="Big integrator").tier == "premium"


def test_the_key_list_shows_30_day_requests_and_errors(admin_client, used_key):
    content = admin_client.get("/admin/tenants/apikey/").content.decode()
    assert ">10<" in content
    assert "3 (30.0%)" in content


def test_a_keys_page_shows_its_usage_per_day_and_endpoint(admin_client, used_key):
    content = admin_client.get(f"/admin/tenants/apikey/{used_key.pk}/change/").content.decode()
    assert 'id="api-key-usage"' in content
    assert "/api/v1/orders/{pk}" in content
    assert "30.0%" in content


def test_the_usage_list_is_read_only(admin_client, used_key):
    response = admin_client.get("/admin/tenants/apiusage/")
    assert response.status_code == 200
    assert "/api/v1/orders/{pk}" in response.content.decode()
    assert admin_client.get("/admin/tenants/apiusage/add/").status_code == 403


# --- Admin API keys -------------------------------------------------------------------------------


def test_an_admin_api_key_is_shown_once_when_issued(admin_client, superadmin):
    response = admin_client.post("/admin/tenants/adminapikey/add/", {"user": superadmin.pk, "name": "ops"})
    assert response.status_code == 200
    raw = re.search(r"hubadm_[0-9a-f]{12}_[A-Za-z0-9_-]+", response.content.decode()).group(0)
    key = AdminApiKey.objects.get()
    assert key.matches(raw)
    assert raw not in admin_client.get(f"/admin/tenants/adminapikey/{key.pk}/change/").content.decode()
    assert AuditLog.objects.filter(action="admin_api_key.created").exists()


def test_an_admin_api_key_is_only_for_a_superuser(admin_client, make_member, tenant_a):
    member = make_member(tenant_a, Role.OWNER)
    response = admin_client.post("/admin/tenants/adminapikey/add/", {"user": member.pk, "name": "sneaky"})
    assert response.status_code == 200
    assert not AdminApiKey.objects.exists()


def test_staff_who_are_not_superusers_do_not_see_admin_api_keys(client):
    staff = User.objects.create_user("helper", "helper@example.com", "pw-for-tests-1", is_staff=True)
    client.force_login(staff)
    assert client.get("/admin/tenants/adminapikey/").status_code == 403


def test_revoking_an_admin_api_key_in_the_admin(admin_client, superadmin):
    key, _ = AdminApiKey.generate(superadmin, "ops")
    admin_client.post("/admin/tenants/adminapikey/", {"action": "revoke", "_selected_action": [key.pk]})
    key.refresh_from_db()
    assert key.is_revoked
    assert AuditLog.objects.filter(action="admin_api_key.revoked").exists()


def test_a_member_carries_their_role_on_the_request(client, make_member, tenant_a):
    client.force_login(make_member(tenant_a, Role.ADMIN))
    response = client.get("/dashboard/stock/")
    assert response.wsgi_request.tenant.member_role == Role.ADMIN
