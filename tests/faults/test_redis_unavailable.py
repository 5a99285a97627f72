"""Redis unreachable: the cache points at an address where nothing listens (a Redis that is down
or restarting). The hub keeps serving, degraded as documented:

- `/health/` answers 503 and names the cache (README, *Quick start*).
- API keys are looked up in the database (docs/security.md, `tenants/key_cache.py`: "If the cache
  fails, the database answers").
- The API is not rate-limited while its counters are out of reach: requests are answered, without
  `X-RateLimit-*` headers (docs/operations.md, *Fault tolerance*); usage counting is skipped (it
  "never fails the response it counts", and a Redis restart loses the last minutes' counts).
- Webhook deliveries are stored and answered 200; the doorbell rings a drain for each one
  instead of coalescing (docs/webhooks.md, `webhooks/queue.py`).
- The dashboard computes its figures from the database, uncached; sign-in works, without the
  failed-attempt lockout.
- A sync cannot run without its shared rate budget: it fails, recorded on its run, and the next
  one after Redis is back completes.

It needs no Redis server (only the client), so it runs on SQLite too."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django_q.models import OrmQ

from commerce.models import Order
from integrations.models import ConnectionStatus, SyncStatus
from integrations.sync import run_sync
from tenants.forms import MAX_FAILED_LOGINS
from tests.prism import free_port
from webhooks import processing
from webhooks.models import EventStatus, WebhookEvent

pytestmark = pytest.mark.django_db

PASSWORD = "pw-for-tests-1"


@pytest.fixture
def redis_down(settings):
    """CACHES on Redis at a port nobody listens on, as production configures it. Calling it
    brings the test's own cache back, as when Redis is up again."""
    saved = {name: getattr(settings, name) for name in ("REDIS_URL", "API_KEY_CACHE_SECONDS", "CACHES")}
    url = f"redis://127.0.0.1:{free_port()}/0"
    settings.REDIS_URL = url
    settings.API_KEY_CACHE_SECONDS = 300
    settings.CACHES = {
        "default": {
            "BACKEND": "config.cache.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": "faults",
            "TIMEOUT": 300,
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }
    with pytest.raises(Exception, match=r"(?i)connect"):
        cache.get("anything")

    def back() -> None:
        for name, value in saved.items():
            setattr(settings, name, value)

    return back


def test_health_reports_the_cache_down(client, redis_down):
    response = client.get("/health/")
    assert response.status_code == 503
    assert response.json()["checks"]["cache"] == {"ok": False, "error": "ConnectionError"}
    assert response.json()["checks"]["database"]["ok"] is True


def test_an_api_key_still_authenticates_and_is_not_throttled(api_client, api_key, woo, make_order, redis_down):
    key, raw = api_key
    make_order(woo)
    for _ in range(3):
        response = api_client.get("/api/v1/orders", HTTP_AUTHORIZATION=f"Bearer {raw}")
        assert response.status_code == 200, response.content
        assert response.json()["results"][0]["id"]
        assert "X-RateLimit-Limit" not in response
    assert api_client.get("/api/v1/orders", HTTP_AUTHORIZATION="Bearer hub_000000000000_nope").status_code == 401
    key.refresh_from_db()
    assert key.last_used_at is not None


def test_webhook_deliveries_are_stored_answered_and_processed(
    client, woo, platform, redis_down, django_capture_on_commit_callbacks
):
    drains = OrmQ.objects.count()
    for status in ("processing", "completed"):
        body, headers = platform.delivery("order.updated", platform.update(1000, status))
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                f"/webhooks/woocommerce/{woo.uuid}/", data=body, content_type="application/json", headers=headers
            )
        assert response.status_code == 200, response.content
        assert response.json() == {"status": "received", "events": 1}
    assert WebhookEvent.objects.filter(connection=woo, status=EventStatus.RECEIVED).count() == 2
    # Without the cache's flag to coalesce them, each delivery queued a drain of its own.
    assert OrmQ.objects.count() == drains + 2

    assert processing.drain(30) == (2, False)
    assert WebhookEvent.objects.filter(connection=woo, status=EventStatus.PROCESSED).count() == 2
    [order] = Order.objects.filter(connection=woo)
    assert (order.external_id, order.raw["status"]) == ("1000", "completed")


def test_sign_in_and_the_dashboards_still_work(client, tenant_a, make_member, superadmin, woo, make_order, redis_down):
    user = make_member(tenant_a)
    make_order(woo, total="12.50")
    response = client.post("/accounts/login/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302, response.content
    response = client.get("/dashboard/")
    assert response.status_code == 200
    assert response.context["order_count"] == 1
    assert client.get("/dashboard/orders/").status_code == 200
    client.force_login(superadmin)
    assert client.get("/admin/").status_code == 200


def test_wrong_passwords_are_refused_without_the_lockout(client, tenant_a, make_member, redis_down):
    user = make_member(tenant_a)
    for _ in range(MAX_FAILED_LOGINS + 1):
        response = client.post("/accounts/login/", {"username": user.username, "password": "wrong"})
        assert response.status_code == 200
        assert "Please enter a correct" in response.content.decode()
    # The failures could not be counted, so the right password still gets in.
    response = client.post("/accounts/login/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302


def test_a_sync_fails_cleanly_without_its_rate_budget_and_the_next_one_completes(woo, platform, redis_down):
    """Not degraded: a sync's requests go through the connection's rate budget, shared in the cache,
    so a sync started while it is unreachable fails, recorded on the run (the traceback in the log),
    writes nothing, and leaves the connection to the next run."""
    failed = run_sync(woo, ["orders"])

    assert (failed.status, failed.error_code) == (SyncStatus.FAILED, "internal")
    assert Order.objects.filter(connection=woo).count() == 0
    woo.refresh_from_db()
    assert (woo.status, woo.sync_lease_owner) == (ConnectionStatus.CONNECTED, "")

    redis_down()  # Redis is back
    run = run_sync(woo, ["orders"])
    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert Order.objects.filter(connection=woo).count() == 1000
