"""Tenant API keys looked up through the shared cache, so authenticating a request costs one cache
read instead of a database query (bench/api.py measures both).

Only with a cache every process shares (Redis, `API_KEY_CACHE_SECONDS` > 0, its default when
REDIS_URL is set): a change made in one process must reach all of them. Every change to a key
(revoked, scopes or tier edited, deleted) and to its tenant (suspended, deleted) deletes the entry
at once (`tenants.signals`), so a revoked key or a suspended tenant is refused on the next request,
whichever process serves it. The entry holds the key's own columns and its tenant's;
the tenant's `data_version`, which changes by UPDATE without a signal, is left out and loaded from
the database only if a request reads it (Django's deferred fields), so it never goes stale.

If the cache fails, the database answers, as it does with the cache switched off.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS

from .models import ApiKey, Tenant

logger = logging.getLogger(__name__)

# Changed by queryset UPDATE (no signal to forget the entry): never cached, read when needed.
UNCACHED_TENANT_FIELDS = {"data_version"}


def _entry_key(prefix: str) -> str:
    return f"api-key:{prefix}"


def _fields() -> list[str]:
    return [f.attname for f in ApiKey._meta.concrete_fields]


def _tenant_fields() -> list[str]:
    return [f.attname for f in Tenant._meta.concrete_fields if f.attname not in UNCACHED_TENANT_FIELDS]


def enabled() -> bool:
    return settings.API_KEY_CACHE_SECONDS > 0


def lookup(prefix: str) -> ApiKey | None:
    """The key with this prefix, with its tenant; None when there is none."""
    if not enabled():
        return _from_database(prefix)
    try:
        entry = cache.get(_entry_key(prefix))
    except Exception:
        logger.warning("Cache unavailable; API key looked up in the database", exc_info=True)
        return _from_database(prefix)
    if entry is not None:
        return _build(entry)
    key = _from_database(prefix)
    if key is not None:
        remember(key)
    return key


def remember(key: ApiKey) -> None:
    if not enabled():
        return
    entry = {
        "key": [getattr(key, name) for name in _fields()],
        "tenant": [getattr(key.tenant, name) for name in _tenant_fields()],
    }
    try:
        cache.set(_entry_key(key.prefix), entry, timeout=settings.API_KEY_CACHE_SECONDS)
    except Exception:
        logger.warning("Cache unavailable; API key not cached", exc_info=True)


def forget(*prefixes: str) -> None:
    if not prefixes:
        return
    try:
        cache.delete_many([_entry_key(p) for p in prefixes])
    except Exception:
        # Entries lapse after API_KEY_CACHE_SECONDS; until then a change may not be seen everywhere.
        logger.error("Cache unavailable; API key changes reach other processes when entries lapse", exc_info=True)


def _from_database(prefix: str) -> ApiKey | None:
    # `get()`, not `first()`: no ORDER BY to build and run.
    try:
        return ApiKey.objects.select_related("tenant").get(prefix=prefix)
    except ApiKey.DoesNotExist:
        return None


def _build(entry: dict) -> ApiKey:
    key = ApiKey.from_db(DEFAULT_DB_ALIAS, _fields(), entry["key"])
    key.tenant = Tenant.from_db(DEFAULT_DB_ALIAS, _tenant_fields(), entry["tenant"])
    return key
