"""Shared fixtures. Tests run on SQLite by default and on DATABASE_URL when it is set.

Tests marked `postgres` or `redis` need that service, tests marked `browser` need Playwright and
Chromium at /usr/bin/chromium, and tests marked `prism` need Prism in node_modules (`npm ci`):
without it they are skipped, unless REQUIRE_SERVICES=1 (as in CI), where a missing service fails
them instead.
"""

from __future__ import annotations

import importlib.util
import os
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from commerce.models import Order
from integrations.models import Connection
from tenants.models import ApiKey, Membership, Role, Tenant

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"
CHROMIUM = "/usr/bin/chromium"
PRISM = Path(__file__).resolve().parents[1] / "node_modules" / ".bin" / "prism"


def _unavailable(reason: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"REQUIRE_SERVICES=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _service_markers(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("postgres") and connection.vendor != "postgresql":
        _unavailable("PostgreSQL is not configured (set DATABASE_URL=postgres://…)")
    if request.node.get_closest_marker("redis") and not settings.REDIS_URL:
        _unavailable("Redis is not configured (set REDIS_URL=redis://…)")
    if request.node.get_closest_marker("browser"):
        if not os.path.exists(CHROMIUM):
            _unavailable(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
        if importlib.util.find_spec("playwright") is None:
            _unavailable("Playwright is not installed (pip install -r requirements-dev.txt)")
    if request.node.get_closest_marker("prism") and not PRISM.exists():
        _unavailable(f"Prism is not installed at {PRISM} (npm ci)")


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Each test starts with an empty cache. On Redis only this project's keys are deleted
    (`cache.clear()` would flush the whole Redis database, shared or not)."""
    from django.core.cache import cache

    if settings.REDIS_URL:
        client = cache._cache.get_client(write=True)
        keys = list(client.scan_iter(match=f"{cache.key_prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
    else:
        cache.clear()
    # And the per-process cache of webhook receipt's connection lookups (rolled-back rows vanish
    # without the signals that would drop them).
    from webhooks import connections, queue

    connections.forget_all()
    # And what this process remembers of the drain flag the cache just lost.
    queue._flag_seen_at = float("-inf")
    yield


@pytest.fixture(autouse=True, scope="session")
def _no_ring_memo():
    """Receipt remembers a queued drain for a second and a drain waits that long before its last
    look (webhooks.queue). Tests that run drains in this process would each wait a second for no
    reader; tests/webhooks/test_queue.py turns the memo back on where it is the subject. Worker
    processes (tests/faults) keep the configured second."""
    settings.WEBHOOK_RING_MEMO_SECONDS = 0


@pytest.fixture
def make_tenant(db):
    counter = iter(range(1, 10_000))

    def make(name: str | None = None, **kwargs) -> Tenant:
        n = next(counter)
        name = name or f"Client {n}"
        kwargs.setdefault("slug", f"client-{n}-{name.lower().replace(' ', '-')}"[:60])
        kwargs.setdefault("contact_email", f"contact{n}@example.com")
        return Tenant.objects.create(name=name, **kwargs)

    return make


@pytest.fixture
def make_member(db):
    def make(tenant: Tenant, role: str = Role.OWNER, username: str | None = None, password: str = "pw-for-tests-1"):
        username = username or f"user-{tenant.slug}-{role}"
        user = get_user_model().objects.create_user(username=username, email=username, password=password)
        Membership.objects.create(tenant=tenant, user=user, role=role)
        return user

    return make


@pytest.fixture
def make_connection(db):
    def make(tenant: Tenant, platform: str = "shopify", name: str | None = None, **kwargs) -> Connection:
        return Connection.objects.create(tenant=tenant, platform=platform, name=name or f"{platform} store", **kwargs)

    return make


@pytest.fixture
def make_order(db):
    counter = iter(range(1, 100_000))

    def make(connection: Connection, **kwargs) -> Order:
        n = next(counter)
        defaults = {
            "external_id": f"ext-{n}",
            "number": str(1000 + n),
            "channel": connection.platform,
            "currency": "USD",
            "total": Decimal("10.00"),
            "placed_at": timezone.now() - timedelta(days=1),
        }
        defaults.update(kwargs)
        return Order.objects.create(tenant=connection.tenant, connection=connection, **defaults)

    return make


@pytest.fixture
def tenant_a(make_tenant) -> Tenant:
    return make_tenant("Alpha Goods")


@pytest.fixture
def tenant_b(make_tenant) -> Tenant:
    return make_tenant("Beta Wares")


@pytest.fixture
def api_key(tenant_a):
    """(ApiKey, raw key) for tenant A with every read scope."""
    return ApiKey.generate(tenant=tenant_a, name="test key")


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def superadmin(db):
    return get_user_model().objects.create_superuser("root", "root@example.com", "pw-for-tests-1")
