"""Counters in the cache, for what runs on every API request (rate limits, usage counting).

On Redis an increment is one round trip: SET NX (with its expiry) and INCR in one pipeline, on the
cache's own client (`config.cache` keeps one per pool). Django's own `cache.incr` takes two
(EXISTS, then INCR). Other caches (the local-memory one) go through Django's API.
"""

from __future__ import annotations

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache


def increment(key: str, timeout: int | None) -> tuple[int, bool]:
    """Add one to the counter `key`, created at zero to live `timeout` seconds (None: for ever) when
    it is missing. Returns the new value and whether this call created the counter."""
    cache = caches["default"]
    if isinstance(cache, RedisCache):
        pipe = cache._cache.get_client(write=True).pipeline(transaction=False)
        full_key = cache.make_and_validate_key(key)
        pipe.set(full_key, 0, ex=timeout, nx=True)
        pipe.incr(full_key)
        created, value = pipe.execute()
        return int(value), bool(created)
    try:
        return cache.incr(key), False
    except ValueError:
        created = cache.add(key, 0, timeout)
        return cache.incr(key), created
