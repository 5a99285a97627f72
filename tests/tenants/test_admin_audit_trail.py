"""Changes to who can reach a tenant's data are all in the audit log."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from tenants.models import ApiKey, AuditLog, Membership, Role, Tenant

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, superadmin):
    client.force_login(superadmin)
    return client


def test_adding_a_membership_is_audited_with_its_role(admin_client, tenant_a):
    user = get_user_model().objects.create_user("new@example.com", "new@example.com", "pw-for-tests-1")
    response = admin_client.post(
        "/admin/tenants/membership/add/", {"user": user.pk, "tenant": tenant_a.pk, "role": Role.EDITOR}
    )
    assert response.status_code == 302
    entry = AuditLog.objects.get(action="membership.added")
    assert entry.tenant == tenant_a
    assert entry.details["role"] == Role.EDITOR


def test_removing_a_membership_is_audited(admin_client, tenant_a, make_member):
    user = make_member(tenant_a)
    membership = Membership.objects.get(user=user)
    admin_client.post(f"/admin/tenants/membership/{membership.pk}/delete/", {"post": "yes"})
    assert not Membership.objects.filter(pk=membership.pk).exists()
    assert AuditLog.objects.filter(action="membership.removed", tenant=tenant_a).count() == 1


def test_changing_a_keys_scopes_is_audited(admin_client, api_key):
    key, _ = api_key
    response = admin_client.post(
        f"/admin/tenants/apikey/{key.pk}/change/", {"name": key.name, "scopes": ["orders:read", "products:read"]}
    )
    assert response.status_code == 302
    entry = AuditLog.objects.get(action="api_key.changed")
    assert entry.details["scopes"] == ["orders:read", "products:read"]


def test_api_keys_cannot_be_deleted_only_revoked(admin_client, api_key):
    key, _ = api_key
    response = admin_client.post(f"/admin/tenants/apikey/{key.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    assert ApiKey.objects.filter(pk=key.pk).exists()


def test_deleting_a_tenant_is_audited(admin_client, make_tenant):
    doomed = make_tenant("Doomed Co")
    admin_client.post(f"/admin/tenants/tenant/{doomed.pk}/delete/", {"post": "yes"})
    assert not Tenant.objects.filter(pk=doomed.pk).exists()
    assert AuditLog.objects.get(action="tenant.deleted").details["slug"] == doomed.slug
