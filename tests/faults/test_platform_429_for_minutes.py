"""A platform that answers nothing but 429 with `Retry-After: 60` for five minutes, in the middle of
a sync. The HTTP client pauses the connection's rate budget for the minute it is told and tries
again, four times (`HttpClient.max_retries`); then the run fails with the platform's RateLimited
error recorded on it, keeping the pages it committed. The next run, started while the platform
still refuses, waits out the rest and completes: every order once.

Time is a fake clock (no test sleeps for real): the client's and the budget's sleeps move it, and
the platform's five minutes are measured on it."""

from __future__ import annotations

import pytest

from commerce.models import Order
from integrations.connectors import get_connector
from integrations.models import ConnectionStatus, SyncRun, SyncStatus
from integrations.sync import run_sync
from tests.fakes.shopify_server import FakeClock

pytestmark = pytest.mark.django_db

ORDERS = 1000
STORM_SECONDS = 5 * 60


def connector_on(clock: FakeClock, connection):
    """The connection's own connector (its rate budget included), sleeping on the fake clock."""
    connector = get_connector(connection)
    connector.client.sleep = connector.budget.sleep = clock.sleep
    return connector


def test_a_platform_answering_429_for_minutes_is_waited_out_as_told_and_nothing_is_lost(woo, platform, monkeypatch):
    clock = FakeClock().install(monkeypatch)
    storm = {}

    def raging() -> bool:
        # From the third page on, for five minutes of the clock.
        if len(platform.pages_answered()) < 2:
            return False
        storm.setdefault("until", clock.now + STORM_SECONDS)
        return clock.now < storm["until"]

    platform.inject("rate_limit", times=None, active=raging, retry_after="60")

    first = run_sync(woo, ["orders"], connector=connector_on(clock, woo))

    # Five requests for page 3, a minute apart as the platform said, then the run gives up.
    assert clock.sleeps == [60.0, 60.0, 60.0, 60.0]
    assert [r.status for r in platform.requests if r.page == 3] == [429] * 5
    assert (first.status, first.error_code) == (SyncStatus.FAILED, "rate_limited")
    assert first.error.startswith("The platform answered 429")
    assert "limiting requests" in first.error
    assert first.counts["orders"]["created"] == 200
    woo.refresh_from_db()
    assert woo.status == ConnectionStatus.FAILING
    assert woo.last_error == first.error
    assert woo.cursors["orders"]["page"] == 3
    assert Order.objects.filter(connection=woo).count() == 200

    # A run started at once: the platform refuses one more minute, which it waits out.
    second = run_sync(woo, ["orders"], connector=connector_on(clock, woo))

    assert clock.sleeps == [60.0] * 5
    assert second.status == SyncStatus.SUCCEEDED, second.error
    assert second.counts["orders"] == {"created": ORDERS - 200, "updated": 0, "unchanged": 0, "failed": 0}
    orders = Order.objects.filter(connection=woo)
    assert orders.count() == ORDERS
    assert orders.values("external_id").distinct().count() == ORDERS
    assert [r.page for r in platform.requests if r.answer == "ok"] == list(range(1, 11))
    assert platform.injected == {"rate_limit": 6}
    woo.refresh_from_db()
    assert (woo.status, woo.last_error) == (ConnectionStatus.CONNECTED, "")
    assert SyncRun.objects.filter(connection=woo).count() == 2
