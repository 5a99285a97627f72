"""Each endpoint needs its scope from a key; a missing one is a 403 that names it. Signed-in
members are held to their role instead."""

from __future__ import annotations

import pytest

from tenants.models import ApiKeyScope, Role, default_scopes

from .conftest import assert_error_shape, bearer

pytestmark = pytest.mark.django_db


@pytest.fixture
def ids(make_connection, make_order, tenant_a, make_key):
    connection = make_connection(tenant_a)
    order = make_order(connection)
    key, _ = make_key(["orders:read"], name="other key")
    return {"connection": connection.pk, "order": order.pk, "key": key.pk}


ENDPOINTS = [
    ("get", "/api/v1/orders", "orders:read"),
    ("get", "/api/v1/orders/{order}", "orders:read"),
    ("get", "/api/v1/products", "products:read"),
    ("get", "/api/v1/inventory", "products:read"),
    ("get", "/api/v1/customers", "customers:read"),
    ("get", "/api/v1/integrations", "integrations:read"),
    ("get", "/api/v1/integrations/status", "integrations:read"),
    ("get", "/api/v1/integrations/{connection}/sync-runs", "integrations:read"),
    ("post", "/api/v1/integrations", "integrations:write"),
    ("patch", "/api/v1/integrations/{connection}", "integrations:write"),
    ("post", "/api/v1/integrations/{connection}/test", "integrations:write"),
    ("post", "/api/v1/integrations/{connection}/sync", "integrations:write"),
    ("get", "/api/v1/api-keys", "keys:read"),
    ("get", "/api/v1/api-keys/{key}/usage", "keys:read"),
    ("post", "/api/v1/api-keys", "keys:write"),
    ("post", "/api/v1/api-keys/{key}/revoke", "keys:write"),
    ("delete", "/api/v1/api-keys/{key}", "keys:write"),
]


@pytest.mark.parametrize(("method", "path", "scope"), ENDPOINTS)
def test_a_key_without_the_scope_gets_403_naming_it(api_client, make_key, ids, method, path, scope):
    others = [s for s in ApiKeyScope.values if s != scope]
    _, raw = make_key(others)
    response = getattr(api_client, method)(path.format(**ids), {}, format="json", **bearer(raw))
    assert response.status_code == 403
    assert_error_shape(response.json(), "permission_denied")
    assert f"`{scope}`" in response.json()["error"]["message"]
    assert response.json()["error"]["details"] == {"required_scope": scope}


@pytest.mark.parametrize(("method", "path", "scope"), [e for e in ENDPOINTS if e[0] == "get"])
def test_a_key_with_the_scope_gets_through(api_client, make_key, ids, method, path, scope):
    _, raw = make_key([scope])
    response = api_client.get(path.format(**ids), **bearer(raw))
    assert response.status_code == 200


def test_me_and_the_platforms_need_no_scope(api_client, make_key):
    _, raw = make_key([])
    assert api_client.get("/api/v1/me", **bearer(raw)).status_code == 200
    assert api_client.get("/api/v1/platforms", **bearer(raw)).status_code == 200
    assert api_client.get("/api/v1/platforms/shopify", **bearer(raw)).status_code == 200


def test_key_management_is_not_among_the_default_scopes():
    assert "keys:read" not in default_scopes()
    assert "keys:write" not in default_scopes()
    assert "orders:read" in default_scopes()


@pytest.mark.parametrize("role", [Role.VIEWER, Role.EDITOR])
def test_members_below_admin_cannot_list_keys(api_client, make_member, tenant_a, role):
    api_client.force_login(make_member(tenant_a, role))
    response = api_client.get("/api/v1/api-keys")
    assert response.status_code == 403
    assert_error_shape(response.json(), "permission_denied")
    assert "owners and admins" in response.json()["error"]["message"]


def test_a_viewer_cannot_write_but_reads(api_client, make_member, tenant_a):
    api_client.force_login(make_member(tenant_a, Role.VIEWER))
    assert api_client.get("/api/v1/integrations").status_code == 200
    response = api_client.post("/api/v1/integrations", {}, format="json")
    assert response.status_code == 403
    assert "read-only" in response.json()["error"]["message"]
