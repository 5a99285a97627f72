"""Django's Redis cache, with one redis-py client per connection pool instead of one per call.

`django.core.cache.backends.redis.RedisCacheClient.get_client` builds a new `redis.Redis` for every
cache operation. The pool (and so the socket) is shared, but redis-py 5+ fills a table of some 170
response callbacks in each client's constructor: about 80 µs per call here, more than the Redis
round trip it wraps. A client holds no connection of its own (it takes one from the pool per
command), so one per pool serves every call. Django keeps a cache backend per thread, so clients
are not shared between threads; after a fork the pool notices the new process id and reconnects,
as it does for Django's own clients.

    CACHES = {"default": {"BACKEND": "config.cache.RedisCache", "LOCATION": "redis://…"}}

Everything else (serialisation, timeouts, several servers) is Django's.
"""

from __future__ import annotations

from typing import Any

from django.core.cache.backends import redis


class RedisCacheClient(redis.RedisCacheClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            if index not in self._pools:  # as Django's _get_connection_pool, for this index
                self._pools[index] = self._pool_class.from_url(self._servers[index], **self._pool_options)
            client = self._clients[index] = self._client(connection_pool=self._pools[index])
        return client


class RedisCache(redis.RedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = RedisCacheClient
