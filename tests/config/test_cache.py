"""config.cache: Django's Redis cache, with one redis-py client per pool instead of one per call."""

from __future__ import annotations

import uuid

import pytest
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache

from config.cache import RedisCache


def test_one_client_per_pool_and_each_server_its_own():
    cache = RedisCache("redis://127.0.0.1:6379/14,redis://127.0.0.1:6379/15", {})
    assert isinstance(cache, DjangoRedisCache)  # tenants.counters and health checks still know it
    writer = cache._cache.get_client(write=True)
    assert cache._cache.get_client(write=True) is writer
    assert writer.connection_pool.connection_kwargs["db"] == 14
    # With two servers, reads go to the second (Django's rule), on a client of their own.
    reader = cache._cache.get_client()
    assert reader is not writer and cache._cache.get_client() is reader
    assert reader.connection_pool.connection_kwargs["db"] == 15


@pytest.mark.redis
def test_the_configured_cache_round_trips_on_a_kept_client():
    from django.core.cache import cache

    key = f"test:{uuid.uuid4().hex}"
    assert cache.add(key, {"n": 1}, 30)
    assert not cache.add(key, {"n": 2}, 30)
    assert cache.get(key) == {"n": 1}
    assert cache._cache.get_client(write=True) is cache._cache.get_client(key, write=True)
    cache.delete(key)
    assert cache.get(key) is None
