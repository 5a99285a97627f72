from __future__ import annotations

import pytest

from tenants.models import TenantStatus

pytestmark = pytest.mark.django_db


def test_a_valid_key_reaches_its_tenant(api_client, api_key, tenant_a):
    key, raw = api_key
    response = api_client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 200
    assert response.json()["tenant"]["slug"] == tenant_a.slug
    assert response.json()["api_key"]["prefix"] == key.prefix


def test_the_x_api_key_header_is_accepted(api_client, api_key):
    _, raw = api_key
    assert api_client.get("/api/v1/me", HTTP_X_API_KEY=raw).status_code == 200


def test_a_revoked_key_gets_401_with_a_json_error(api_client, api_key):
    key, raw = api_key
    key.revoke()
    response = api_client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "This API key has been revoked."


def test_a_wrong_key_with_a_real_prefix_gets_401(api_client, api_key):
    key, _ = api_key
    response = api_client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {key.prefix}_not-the-secret-at-all-xxxxxxxx")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_a_suspended_tenants_key_gets_401(api_client, api_key, tenant_a):
    _, raw = api_key
    tenant_a.status = TenantStatus.SUSPENDED
    tenant_a.save()
    response = api_client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 401
    assert "suspended" in response.json()["error"]["message"]
