"""Every error the API answers has the one body: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

import pytest

from commerce.api import OrderViewSet
from tenants.models import ApiKey

from .conftest import assert_error_shape, bearer

pytestmark = pytest.mark.django_db


@pytest.fixture
def order_b(make_connection, make_order, tenant_b):
    return make_order(make_connection(tenant_b), number="B-1")


def test_no_credentials_is_401(api_client):
    response = api_client.get("/api/v1/orders")
    assert response.status_code == 401
    assert_error_shape(response.json(), "not_authenticated")


def test_a_wrong_key_is_401(api_client):
    response = api_client.get("/api/v1/orders", **bearer("hub_0123456789ab_not-a-real-key-at-all-000000000"))
    assert response.status_code == 401
    assert_error_shape(response.json(), "authentication_failed")


def test_a_revoked_key_is_401(api_client, api_key):
    key, raw = api_key
    key.revoke()
    response = api_client.get("/api/v1/orders", **bearer(raw))
    assert response.status_code == 401
    assert_error_shape(response.json(), "authentication_failed")
    assert response.json()["error"]["message"] == "This API key has been revoked."


def test_a_missing_scope_is_403_naming_the_scope(api_client, make_key):
    _, raw = make_key(["products:read"])
    response = api_client.get("/api/v1/orders", **bearer(raw))
    assert response.status_code == 403
    assert_error_shape(response.json(), "permission_denied")
    assert "`orders:read`" in response.json()["error"]["message"]
    assert response.json()["error"]["details"] == {"required_scope": "orders:read"}


def test_another_tenants_object_is_404_not_403(api_client, api_key, order_b):
    response = api_client.get(f"/api/v1/orders/{order_b.pk}", **bearer(api_key[1]))
    assert response.status_code == 404
    assert_error_shape(response.json(), "not_found")
    assert "B-1" not in response.content.decode()


def test_an_unknown_api_address_is_a_json_404(api_client, api_key):
    response = api_client.get("/api/v1/no-such-thing", **bearer(api_key[1]))
    assert response.status_code == 404
    assert_error_shape(response.json(), "not_found")


def test_a_method_the_endpoint_lacks_is_405(api_client, api_key, make_connection, make_order, tenant_a):
    order = make_order(make_connection(tenant_a))
    response = api_client.delete(f"/api/v1/orders/{order.pk}", **bearer(api_key[1]))
    assert response.status_code == 405
    assert_error_shape(response.json(), "method_not_allowed")
    assert "GET" in response["Allow"]


def test_405_comes_before_the_scope_check(api_client, make_key, make_connection, tenant_a):
    """A PUT (not offered: PATCH only) is 405 even for a key without the write scope."""
    connection = make_connection(tenant_a)
    _, raw = make_key(["integrations:read"])
    response = api_client.put(f"/api/v1/integrations/{connection.pk}", {}, format="json", **bearer(raw))
    assert response.status_code == 405
    assert_error_shape(response.json(), "method_not_allowed")


def test_a_body_that_is_not_json_is_415(api_client, make_key):
    _, raw = make_key(["integrations:read", "integrations:write"])
    response = api_client.generic(
        "POST", "/api/v1/integrations", "platform: shopify", content_type="text/plain", **bearer(raw)
    )
    assert response.status_code == 415
    assert_error_shape(response.json(), "unsupported_media_type")


def test_malformed_json_is_400(api_client, make_key):
    _, raw = make_key(["integrations:read", "integrations:write"])
    response = api_client.generic(
        "POST", "/api/v1/integrations", "{not json", content_type="application/json", **bearer(raw)
    )
    assert response.status_code == 400
    assert_error_shape(response.json(), "parse_error")


def test_invalid_fields_are_400_with_each_fields_message(api_client, make_key):
    _, raw = make_key(["integrations:read", "integrations:write"])
    response = api_client.post("/api/v1/integrations", {"platform": "nowhere"}, format="json", **bearer(raw))
    assert response.status_code == 400
    body = response.json()
    assert_error_shape(body, "invalid")
    assert "platform" in body["error"]["details"]
    assert "name" in body["error"]["details"]


def test_an_invalid_query_parameter_is_400(api_client, api_key):
    response = api_client.get("/api/v1/orders", {"updated_since": "yesterday"}, **bearer(api_key[1]))
    assert response.status_code == 400
    assert_error_shape(response.json(), "invalid")
    assert "updated_since" in response.json()["error"]["details"]


def test_over_the_rate_is_429(api_client, api_key, settings):
    settings.API_RATE_DEFAULT = 1
    api_client.get("/api/v1/me", **bearer(api_key[1]))
    response = api_client.get("/api/v1/me", **bearer(api_key[1]))
    assert response.status_code == 429
    assert_error_shape(response.json(), "throttled")
    assert response.json()["error"]["details"]["retry_after"] == int(response["Retry-After"])


def test_a_view_that_raises_is_a_json_500(api_client, api_key, monkeypatch, caplog):
    def boom(self, request, *args, **kwargs):
        raise RuntimeError("the database is on fire")

    monkeypatch.setattr(OrderViewSet, "list", boom)
    response = api_client.get("/api/v1/orders", **bearer(api_key[1]))
    assert response.status_code == 500
    assert_error_shape(response.json(), "server_error")
    assert "fire" not in response.content.decode()
    assert "Unhandled API error" in caplog.text


def test_a_session_post_without_csrf_is_a_json_403(make_member, tenant_a):
    from rest_framework.test import APIClient

    client = APIClient(enforce_csrf_checks=True)
    client.force_login(make_member(tenant_a))
    response = client.post("/api/v1/api-keys", {"name": "x"}, format="json")
    assert response.status_code == 403
    assert_error_shape(response.json(), "permission_denied")
    assert "CSRF" in response.json()["error"]["message"]


def test_a_key_used_on_the_admin_api_is_403(api_client, api_key):
    response = api_client.get("/api/v1/admin/overview", **bearer(api_key[1]))
    assert response.status_code == 403
    assert_error_shape(response.json(), "permission_denied")
    assert not ApiKey.objects.filter(revoked_at__isnull=False).exists()
