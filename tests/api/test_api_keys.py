"""A client's API keys: created (shown once), listed (prefix only) and revoked, through the API and
the client dashboard, by owners and admins only, audited."""

from __future__ import annotations

import pytest

from tenants import usage
from tenants.models import ApiKey, AuditLog, Role

from .conftest import assert_error_shape, bearer

pytestmark = pytest.mark.django_db

MANAGER_SCOPES = ["keys:read", "keys:write", "orders:read"]


@pytest.fixture
def manager(make_key):
    """(ApiKey, raw) of tenant A, allowed to manage keys."""
    return make_key(MANAGER_SCOPES, name="manager")


# --- API ------------------------------------------------------------------------------------------


def test_the_list_shows_prefixes_never_hashes_or_secrets(api_client, manager, api_key):
    key, raw = manager
    response = api_client.get("/api/v1/api-keys", **bearer(raw))
    assert response.status_code == 200
    listed = {row["prefix"]: row for row in response.json()["results"]}
    assert set(listed) == {key.prefix, api_key[0].prefix}
    content = response.content.decode()
    assert key.key_hash not in content
    assert raw not in content
    assert "key_hash" not in content
    assert listed[key.prefix]["state"] == "active"
    assert listed[key.prefix]["usage_30_days"] == {"requests": 0, "errors": 0, "error_rate": None}


def test_the_list_leaves_out_other_tenants_keys(api_client, manager, make_key, tenant_b):
    other, _ = make_key(tenant=tenant_b, name="theirs")
    response = api_client.get("/api/v1/api-keys", **bearer(manager[1]))
    assert other.prefix not in response.content.decode()


def test_a_created_key_is_shown_once_and_works(api_client, manager, tenant_a):
    response = api_client.post(
        "/api/v1/api-keys", {"name": "Zapier", "scopes": ["orders:read"]}, format="json", **bearer(manager[1])
    )
    assert response.status_code == 201
    body = response.json()
    new = ApiKey.objects.get(pk=body["id"])
    assert body["key"].startswith(new.prefix + "_")
    assert new.matches(body["key"])
    assert new.tenant == tenant_a
    assert body["scopes"] == ["orders:read"]
    assert body["tier"] == "default"
    assert api_client.get("/api/v1/orders", **bearer(body["key"])).status_code == 200
    # Never again: neither the list nor the key's own page repeats it.
    again = api_client.get(f"/api/v1/api-keys/{new.pk}", **bearer(manager[1])).json()
    assert "key" not in again
    assert body["key"] not in api_client.get("/api/v1/api-keys", **bearer(manager[1])).content.decode()


def test_a_key_without_scopes_asked_for_gets_the_defaults(api_client, manager):
    body = api_client.post("/api/v1/api-keys", {"name": "reader"}, format="json", **bearer(manager[1])).json()
    assert "keys:read" not in body["scopes"]
    assert "orders:read" in body["scopes"]


def test_a_key_cannot_grant_scopes_it_lacks(api_client, manager):
    response = api_client.post(
        "/api/v1/api-keys", {"name": "sneaky", "scopes": ["integrations:write"]}, format="json", **bearer(manager[1])
    )
    assert response.status_code == 400
    assert_error_shape(response.json(), "invalid")
    assert "integrations:write" in str(response.json()["error"]["details"]["scopes"])
    assert not ApiKey.objects.filter(name="sneaky").exists()


def test_an_unknown_scope_is_refused(api_client, manager):
    response = api_client.post(
        "/api/v1/api-keys", {"name": "bad", "scopes": ["orders:delete"]}, format="json", **bearer(manager[1])
    )
    assert response.status_code == 400


def test_a_client_cannot_choose_its_own_tier(api_client, manager):
    body = api_client.post(
        "/api/v1/api-keys", {"name": "fast", "tier": "premium"}, format="json", **bearer(manager[1])
    ).json()
    assert body["tier"] == "default"


def test_creating_and_revoking_are_audited(api_client, manager, tenant_a):
    created = api_client.post("/api/v1/api-keys", {"name": "temp"}, format="json", **bearer(manager[1])).json()
    api_client.post(f"/api/v1/api-keys/{created['id']}/revoke", **bearer(manager[1]))
    entries = AuditLog.objects.for_tenant(tenant_a).filter(action__startswith="api_key.")
    assert sorted(entries.values_list("action", flat=True)) == ["api_key.created", "api_key.revoked"]
    assert all(manager[0].prefix in entry.actor_label for entry in entries)
    assert created["key"] not in str(list(entries.values()))


def test_revoking_by_post_stops_the_key(api_client, manager, api_key):
    key, raw = api_key
    response = api_client.post(f"/api/v1/api-keys/{key.pk}/revoke", **bearer(manager[1]))
    assert response.status_code == 200
    assert response.json()["state"] == "revoked"
    assert response.json()["revoked_at"]
    revoked = api_client.get("/api/v1/me", **bearer(raw))
    assert revoked.status_code == 401
    assert_error_shape(revoked.json(), "authentication_failed")


def test_revoking_by_delete_keeps_the_row(api_client, manager, api_key):
    key, _ = api_key
    response = api_client.delete(f"/api/v1/api-keys/{key.pk}", **bearer(manager[1]))
    assert response.status_code == 204
    key.refresh_from_db()
    assert key.is_revoked


def test_revoking_twice_keeps_the_first_time_and_one_audit_entry(api_client, manager, api_key):
    key, _ = api_key
    api_client.post(f"/api/v1/api-keys/{key.pk}/revoke", **bearer(manager[1]))
    first = ApiKey.objects.get(pk=key.pk).revoked_at
    api_client.post(f"/api/v1/api-keys/{key.pk}/revoke", **bearer(manager[1]))
    assert ApiKey.objects.get(pk=key.pk).revoked_at == first
    assert AuditLog.objects.filter(action="api_key.revoked").count() == 1


def test_another_tenants_key_cannot_be_revoked(api_client, manager, make_key, tenant_b):
    other, _ = make_key(tenant=tenant_b)
    response = api_client.post(f"/api/v1/api-keys/{other.pk}/revoke", **bearer(manager[1]))
    assert response.status_code == 404
    assert_error_shape(response.json(), "not_found")
    other.refresh_from_db()
    assert not other.is_revoked


def test_the_list_filters_by_state_and_orders_by_name(api_client, manager, make_key):
    old, _ = make_key(name="aaa old")
    old.revoke()
    make_key(name="bbb")
    active = api_client.get("/api/v1/api-keys", {"status": "active"}, **bearer(manager[1])).json()["results"]
    assert old.prefix not in {row["prefix"] for row in active}
    revoked = api_client.get("/api/v1/api-keys", {"status": "revoked"}, **bearer(manager[1])).json()["results"]
    assert [row["prefix"] for row in revoked] == [old.prefix]
    by_name = api_client.get("/api/v1/api-keys", {"ordering": "name"}, **bearer(manager[1])).json()["results"]
    assert [row["name"] for row in by_name] == ["aaa old", "bbb", "manager"]


def test_an_owner_signed_in_manages_keys_through_the_api(api_client, make_member, tenant_a):
    owner = make_member(tenant_a, Role.OWNER)
    api_client.force_login(owner)
    response = api_client.post("/api/v1/api-keys", {"name": "from session", "scopes": ["keys:write"]}, format="json")
    assert response.status_code == 201
    assert ApiKey.objects.get(pk=response.json()["id"]).created_by == owner


def test_the_list_shows_each_keys_usage(api_client, manager):
    key, raw = manager
    api_client.get("/api/v1/orders", **bearer(raw))
    api_client.get("/api/v1/orders/987654", **bearer(raw))
    usage.drain(everything=True)
    row = next(r for r in api_client.get("/api/v1/api-keys", **bearer(raw)).json()["results"] if r["id"] == key.pk)
    assert row["usage_30_days"] == {"requests": 2, "errors": 1, "error_rate": 50.0}


# --- Client dashboard -----------------------------------------------------------------------------


@pytest.fixture
def owner_client(client, make_member, tenant_a):
    client.force_login(make_member(tenant_a, Role.OWNER))
    return client


def test_the_dashboard_lists_keys_by_prefix(owner_client, api_key):
    key, raw = api_key
    response = owner_client.get("/dashboard/api-keys/")
    assert response.status_code == 200
    content = response.content.decode()
    assert key.prefix in content
    assert key.key_hash not in content
    assert raw not in content


def test_the_nav_links_owners_and_admins_to_the_keys(owner_client, client, make_member, tenant_a):
    assert 'href="/dashboard/api-keys/"' in owner_client.get("/dashboard/stock/").content.decode()
    client.force_login(make_member(tenant_a, Role.VIEWER, username="viewer@example.com"))
    assert 'href="/dashboard/api-keys/"' not in client.get("/dashboard/stock/").content.decode()


def test_creating_a_key_in_the_dashboard_shows_it_once(owner_client, tenant_a):
    response = owner_client.post("/dashboard/api-keys/", {"name": "Warehouse", "scopes": ["orders:read"]})
    assert response.status_code == 200
    key = ApiKey.objects.for_tenant(tenant_a).get(name="Warehouse")
    raw = response.context["raw_key"]
    assert key.matches(raw)
    assert raw in response.content.decode()
    assert response["Cache-Control"] == "no-store"
    assert raw not in owner_client.get("/dashboard/api-keys/").content.decode()
    assert AuditLog.objects.filter(action="api_key.created", tenant=tenant_a).exists()


def test_a_key_needs_a_name_in_the_dashboard(owner_client, tenant_a):
    response = owner_client.post("/dashboard/api-keys/", {"name": "", "scopes": ["orders:read"]})
    assert response.status_code == 400
    assert not ApiKey.objects.for_tenant(tenant_a).exists()


def test_revoking_in_the_dashboard(owner_client, api_key, tenant_a):
    key, _ = api_key
    response = owner_client.post(f"/dashboard/api-keys/{key.pk}/revoke/")
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.is_revoked
    assert AuditLog.objects.filter(action="api_key.revoked", tenant=tenant_a).exists()


def test_revoking_needs_a_post(owner_client, api_key):
    key, _ = api_key
    assert owner_client.get(f"/dashboard/api-keys/{key.pk}/revoke/").status_code == 405


def test_the_dashboard_shows_a_keys_usage(owner_client, api_key):
    key, raw = api_key
    from rest_framework.test import APIClient

    APIClient().get("/api/v1/orders", **bearer(raw))
    usage.drain(everything=True)
    response = owner_client.get(f"/dashboard/api-keys/{key.pk}/")
    assert response.status_code == 200
    assert response.context["usage"]["requests"] == 1
    content = response.content.decode()
    assert "/api/v1/orders" in content
    assert 'id="usage-per-day"' in content


@pytest.mark.parametrize("role", [Role.VIEWER, Role.EDITOR])
def test_members_below_admin_cannot_manage_keys_in_the_dashboard(client, make_member, tenant_a, api_key, role):
    key, _ = api_key
    client.force_login(make_member(tenant_a, role))
    assert client.get("/dashboard/api-keys/").status_code == 403
    assert client.post("/dashboard/api-keys/", {"name": "x", "scopes": ["orders:read"]}).status_code == 403
    assert client.post(f"/dashboard/api-keys/{key.pk}/revoke/").status_code == 403
    key.refresh_from_db()
    assert not key.is_revoked


def test_an_admin_member_manages_keys(client, make_member, tenant_a):
    client.force_login(make_member(tenant_a, Role.ADMIN))
    assert client.get("/dashboard/api-keys/").status_code == 200


def test_another_tenants_key_is_404_in_the_dashboard(owner_client, make_key, tenant_b):
    other, _ = make_key(tenant=tenant_b)
    assert owner_client.get(f"/dashboard/api-keys/{other.pk}/").status_code == 404
    assert owner_client.post(f"/dashboard/api-keys/{other.pk}/revoke/").status_code == 404
    other.refresh_from_db()
    assert not other.is_revoked
