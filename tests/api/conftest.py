"""Helpers for the API tests: keys with chosen scopes, and the error-body check."""

from __future__ import annotations

import pytest

from tenants.models import ApiKey


def bearer(raw_key: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {raw_key}"}


def assert_error_shape(body: dict, code: str) -> None:
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def make_key(tenant_a):
    """make_key(scopes, tenant=tenant_a, **kwargs) → (ApiKey, raw key)."""

    def make(scopes: list[str] | None = None, tenant=None, **kwargs) -> tuple[ApiKey, str]:
        return ApiKey.generate(tenant=tenant or tenant_a, name=kwargs.pop("name", "test key"), scopes=scopes, **kwargs)

    return make
