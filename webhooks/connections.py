"""The connection a delivery is addressed to, looked up at most once every
WEBHOOK_CONNECTION_CACHE_SECONDS per process: a busy store sends many deliveries a second to one
address, and the lookup (a query and decrypting the credentials) costs more than the rest of the
acknowledgement together.

A cached connection can be out of date in two ways, and neither loses a delivery: its secret was
rotated in another process (a delivery that fails verification is verified again against a fresh
copy before it is refused, see `views`), or it was deleted or disabled (the event is then not
stored, or stored and ignored when processed, as for any delivery that arrives just after). Saving
or deleting a connection drops it from this process's cache at once (webhooks.signals).
"""

from __future__ import annotations

import time

from django.conf import settings

from integrations.models import Connection

_cache: dict[str, tuple[float, Connection]] = {}
# Bounded: unknown addresses are never cached, so only real connections fill it.
MAX_ENTRIES = 10_000


def lookup(connection_uuid, *, fresh: bool = False) -> tuple[Connection | None, bool]:
    """The connection, and whether it came from the cache."""
    key = str(connection_uuid)
    ttl = settings.WEBHOOK_CONNECTION_CACHE_SECONDS
    now = time.monotonic()
    if ttl > 0 and not fresh:
        hit = _cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1], True
    # `get`, not `first()`: no ORDER BY (the model orders by tenant name) and no join; receipt only
    # needs the connection's own columns.
    try:
        connection = Connection.objects.get(uuid=connection_uuid)
    except Connection.DoesNotExist:
        forget(key)
        return None, False
    if ttl > 0:
        if len(_cache) >= MAX_ENTRIES:
            _cache.clear()
        _cache[key] = (now + ttl, connection)
    return connection, False


def forget(connection_uuid) -> None:
    _cache.pop(str(connection_uuid), None)


def forget_all() -> None:
    _cache.clear()
