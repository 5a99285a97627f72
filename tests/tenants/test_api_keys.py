"""API keys: how they are issued, stored, used and revoked."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tenants.models import ApiKey

pytestmark = pytest.mark.django_db


def stored_row(key: ApiKey) -> dict:
    """The key's row as the database holds it, every column."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {ApiKey._meta.db_table} WHERE id = %s", [key.pk])
        columns = [col[0] for col in cursor.description]
        return dict(zip(columns, cursor.fetchone(), strict=True))


def use(api_client, raw_key: str) -> int:
    return api_client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {raw_key}").status_code


# --- Issuing --------------------------------------------------------------------------------------


def test_a_generated_key_has_the_form_hub_lookup_secret(tenant_a):
    _, raw = ApiKey.generate(tenant=tenant_a, name="shop sync")
    assert re.fullmatch(r"hub_[0-9a-f]{12}_[A-Za-z0-9_-]{40,}", raw)


def test_the_stored_prefix_is_the_start_of_the_key(tenant_a):
    key, raw = ApiKey.generate(tenant=tenant_a, name="shop sync")
    assert re.fullmatch(r"hub_[0-9a-f]{12}", key.prefix)
    assert raw.startswith(f"{key.prefix}_")


def test_only_the_sha256_of_the_key_is_stored(tenant_a):
    key, raw = ApiKey.generate(tenant=tenant_a, name="shop sync")
    assert stored_row(key)["key_hash"] == hashlib.sha256(raw.encode()).hexdigest()


def test_the_raw_key_appears_in_no_column_of_its_row(tenant_a):
    key, raw = ApiKey.generate(tenant=tenant_a, name="shop sync")
    secret = raw.removeprefix(f"{key.prefix}_")
    for column, value in stored_row(key).items():
        assert raw not in str(value), column
        assert secret not in str(value), column


def test_two_keys_never_share_a_prefix_or_a_secret(tenant_a):
    first, first_raw = ApiKey.generate(tenant=tenant_a, name="one")
    second, second_raw = ApiKey.generate(tenant=tenant_a, name="two")
    assert first.prefix != second.prefix
    assert first_raw != second_raw


def test_a_key_gets_every_read_scope_by_default(tenant_a):
    key, _ = ApiKey.generate(tenant=tenant_a, name="reader")
    assert "orders:read" in key.scopes
    assert all(scope.endswith(":read") for scope in key.scopes)


def test_a_key_keeps_the_scopes_it_was_given(tenant_a):
    key, _ = ApiKey.generate(tenant=tenant_a, name="writer", scopes=["orders:read", "orders:write"])
    key.refresh_from_db()
    assert key.scopes == ["orders:read", "orders:write"]


def test_an_unknown_scope_is_refused(tenant_a):
    with pytest.raises(ValidationError) as refused:
        ApiKey.generate(tenant=tenant_a, name="bad", scopes=["orders:read", "orders:delete"])
    assert "orders:delete" in str(refused.value.message_dict["scopes"])


def test_a_refused_key_is_not_saved(tenant_a):
    with pytest.raises(ValidationError):
        ApiKey.generate(tenant=tenant_a, name="bad", scopes=["everything"])
    assert not ApiKey.objects.exists()


def test_a_key_matches_its_own_secret_only(tenant_a):
    key, raw = ApiKey.generate(tenant=tenant_a, name="shop sync")
    assert key.matches(raw)
    assert not key.matches(raw + "x")


# --- Using ----------------------------------------------------------------------------------------


def test_a_new_key_has_never_been_used(api_key):
    key, _ = api_key
    assert key.last_used_at is None


def test_using_a_key_records_when_it_was_used(api_client, api_key):
    key, raw = api_key
    before = timezone.now()
    assert use(api_client, raw) == 200
    key.refresh_from_db()
    assert key.last_used_at is not None
    assert key.last_used_at >= before


def test_last_used_is_not_rewritten_within_a_minute(api_client, api_key):
    key, raw = api_key
    recently = timezone.now() - timedelta(seconds=30)
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=recently)
    assert use(api_client, raw) == 200
    key.refresh_from_db()
    assert key.last_used_at == recently


def test_a_second_request_within_a_minute_writes_nothing_to_the_key(api_client, api_key):
    _, raw = api_key
    use(api_client, raw)
    with CaptureQueriesContext(connection) as queries:
        assert use(api_client, raw) == 200
    table = ApiKey._meta.db_table
    assert not [q["sql"] for q in queries if q["sql"].startswith("UPDATE") and table in q["sql"]]


def test_last_used_is_rewritten_after_a_minute(api_client, api_key):
    key, raw = api_key
    long_ago = timezone.now() - timedelta(minutes=2)
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=long_ago)
    use(api_client, raw)
    key.refresh_from_db()
    assert key.last_used_at > long_ago + timedelta(minutes=1)


def test_a_refused_key_does_not_record_a_use(api_client, api_key):
    key, raw = api_key
    assert use(api_client, raw[:-2] + "zz") == 401
    key.refresh_from_db()
    assert key.last_used_at is None


# --- Revoking -------------------------------------------------------------------------------------


def test_revoke_sets_revoked_at(api_key):
    key, _ = api_key
    key.revoke()
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert key.is_revoked


def test_revoking_twice_keeps_the_first_time(api_key):
    key, _ = api_key
    key.revoke()
    first = ApiKey.objects.get(pk=key.pk).revoked_at
    ApiKey.objects.get(pk=key.pk).revoke()
    key.refresh_from_db()
    assert key.revoked_at == first


def test_a_revoked_key_is_no_longer_active(api_key, tenant_a):
    key, _ = api_key
    key.revoke()
    assert not ApiKey.objects.for_tenant(tenant_a).active().exists()


def test_a_revoked_key_is_refused_by_the_api(api_client, api_key):
    key, raw = api_key
    key.revoke()
    assert use(api_client, raw) == 401
