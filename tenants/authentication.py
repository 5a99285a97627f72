"""API key authentication for the public API.

Keys arrive as `Authorization: Bearer <key>` or `X-Api-Key: <key>`. The visible prefix finds the
row through a unique index; the SHA-256 of the whole key is then compared in constant time.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from . import key_cache
from .models import AdminApiKey, ApiKey, TenantStatus, admin_key_word

# last_used_at is written at most this often per key, so authentication is not a write per request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class ApiKeyUser:
    """`request.user` for a request made with an API key: authenticated, never staff, one tenant."""

    is_authenticated = True
    is_anonymous = False
    is_staff = False
    is_superuser = False
    is_active = True
    pk = None

    def __init__(self, api_key: ApiKey) -> None:
        self.api_key = api_key
        self.tenant = api_key.tenant

    def __str__(self) -> str:
        return f"API key {self.api_key.prefix}"


def key_from_request(request: Request) -> str | None:
    header = authentication.get_authorization_header(request).decode("latin-1")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return None
    value = request.META.get("HTTP_X_API_KEY", "").strip()
    return value or None


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[ApiKeyUser, ApiKey] | None:
        raw_key = key_from_request(request)
        if raw_key is None:
            return None
        # <prefix>_<lookup>_<secret>; the secret itself may contain underscores.
        parts = raw_key.split("_", 2)
        if len(parts) != 3 or parts[0] != settings.API_KEY_PREFIX:
            raise exceptions.AuthenticationFailed("Invalid API key.")
        key = key_cache.lookup(f"{parts[0]}_{parts[1]}")
        if key is None or not key.matches(raw_key):
            raise exceptions.AuthenticationFailed("Invalid API key.")
        if key.is_revoked:
            raise exceptions.AuthenticationFailed("This API key has been revoked.")
        if key.tenant.status != TenantStatus.ACTIVE:
            raise exceptions.AuthenticationFailed("This account is suspended.")
        touch(key)
        return ApiKeyUser(key), key

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


def find_key(keys: QuerySet, prefix: str) -> ApiKey | AdminApiKey | None:
    """The key with this (unique) prefix. `get()`, not `first()`: no ORDER BY to build and run, which
    was a third of the cost of authenticating a request."""
    try:
        return keys.get(prefix=prefix)
    except keys.model.DoesNotExist:
        return None


def touch(key: ApiKey | AdminApiKey) -> None:
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        type(key).objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
        if isinstance(key, ApiKey):
            key_cache.remember(key)  # or every request would write again once the minute is up


class AdminApiKeyAuthentication(authentication.BaseAuthentication):
    """A superadmin's key for the admin API, sent like a tenant's key. It authenticates as its user,
    who must be an active superuser now. Any other key is left to the next authenticator."""

    keyword = "Bearer"

    def authenticate(self, request: Request):
        raw_key = key_from_request(request)
        if raw_key is None:
            return None
        parts = raw_key.split("_", 2)
        if len(parts) != 3 or parts[0] != admin_key_word():
            return None
        key = find_key(AdminApiKey.objects.select_related("user"), f"{parts[0]}_{parts[1]}")
        if key is None or not key.matches(raw_key):
            raise exceptions.AuthenticationFailed("Invalid API key.")
        if key.is_revoked:
            raise exceptions.AuthenticationFailed("This API key has been revoked.")
        if not (key.user.is_active and key.user.is_superuser):
            raise exceptions.AuthenticationFailed("This key's user is no longer a superadmin.")
        touch(key)
        return key.user, key

    def authenticate_header(self, request: Request) -> str:
        return self.keyword
