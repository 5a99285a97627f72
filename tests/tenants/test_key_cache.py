"""API keys through the shared cache (tenants.key_cache): a keyed request reads the cache, not the
database; every change to a key or its tenant is seen on the very next request."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tenants import key_cache
from tenants.models import ApiKey, ApiKeyScope, TenantStatus

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def cached(settings):
    settings.API_KEY_CACHE_SECONDS = 300


@pytest.fixture
def key(tenant_a):
    key, raw = ApiKey.generate(tenant=tenant_a, name="zap", scopes=[ApiKeyScope.ORDERS_READ])
    return key, raw


def me(api_client, raw):
    return api_client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {raw}")


def key_queries(queries) -> list[str]:
    return [
        q["sql"] for q in queries.captured_queries if "tenants_apikey" in q["sql"] and q["sql"].startswith("SELECT")
    ]


def test_after_the_first_request_the_key_comes_from_the_cache(api_client, key):
    _, raw = key
    assert me(api_client, raw).status_code == 200
    with CaptureQueriesContext(db_connection) as queries:
        assert me(api_client, raw).status_code == 200
    assert key_queries(queries) == []


def test_without_the_setting_every_request_reads_the_database(api_client, key, settings):
    settings.API_KEY_CACHE_SECONDS = 0
    _, raw = key
    me(api_client, raw)
    with CaptureQueriesContext(db_connection) as queries:
        me(api_client, raw)
    assert len(key_queries(queries)) == 1


def test_a_revoked_key_is_refused_on_the_next_request(api_client, key):
    api_key, raw = key
    assert me(api_client, raw).status_code == 200
    ApiKey.objects.get(pk=api_key.pk).revoke()  # as the dashboard, the API or another process does
    response = me(api_client, raw)
    assert response.status_code == 401 and "revoked" in response.json()["error"]["message"]


def test_a_suspended_tenant_is_refused_on_the_next_request(api_client, key, tenant_a):
    _, raw = key
    assert me(api_client, raw).status_code == 200
    tenant_a.status = TenantStatus.SUSPENDED
    tenant_a.save()
    assert me(api_client, raw).status_code == 401


def test_changed_scopes_apply_on_the_next_request(api_client, key):
    api_key, raw = key
    orders = api_client.get("/api/v1/orders", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert orders.status_code == 200
    api_key.scopes = [ApiKeyScope.PRODUCTS_READ]
    api_key.save()
    assert api_client.get("/api/v1/orders", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 403


def test_a_wrong_secret_with_a_cached_prefix_is_still_refused(api_client, key):
    _, raw = key
    me(api_client, raw)
    assert me(api_client, raw[:-4] + "AAAA").status_code == 401


def test_the_tenant_is_never_stale(key, tenant_a):
    api_key, _ = key
    key_cache.lookup(api_key.prefix)  # cached now
    # data_version changes by UPDATE, without a signal: it is never cached.
    type(tenant_a).objects.filter(pk=tenant_a.pk).update(data_version=41)
    assert key_cache.lookup(api_key.prefix).tenant.data_version == 41
    # Settings change by save(), which drops the entry.
    tenant_a.time_zone = "Europe/Paris"
    tenant_a.save()
    cached_key = key_cache.lookup(api_key.prefix)
    assert cached_key.tenant.time_zone == "Europe/Paris" and cached_key.tenant.status == TenantStatus.ACTIVE


def test_last_used_is_written_once_a_minute_not_on_every_request(api_client, key, monkeypatch):
    api_key, raw = key
    me(api_client, raw)
    later = timezone.now() + timedelta(minutes=5)
    monkeypatch.setattr(timezone, "now", lambda: later)
    writes = []
    for _ in range(3):
        with CaptureQueriesContext(db_connection) as queries:
            me(api_client, raw)
        writes += [
            q for q in queries.captured_queries if q["sql"].startswith("UPDATE") and "tenants_apikey" in q["sql"]
        ]
    assert len(writes) == 1
    assert ApiKey.objects.get(pk=api_key.pk).last_used_at == later


def test_without_the_cache_keys_still_authenticate(api_client, key, monkeypatch):
    _, raw = key

    def down(*args, **kwargs):
        raise ConnectionError("cache unreachable")

    monkeypatch.setattr(cache, "get", down)
    monkeypatch.setattr(cache, "set", down)
    assert me(api_client, raw).status_code == 200
