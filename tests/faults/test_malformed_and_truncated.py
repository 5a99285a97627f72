"""Pages the platform gets wrong. A page of malformed JSON fails the run with a BadResponse that
says so (it is not retried: a plugin printing PHP warnings into the answer prints them again), the
pages before it kept; the next run reads it again from its cursor. A truncated page — fewer orders
than a page holds, with an X-WP-TotalPages that makes it the last, or not — and a total that
does not add up leave the sweep's watermark where it was, so the next run reads again what the
platform left out: every order once, none lost."""

from __future__ import annotations

import pytest

from commerce.models import Order
from integrations.models import ConnectionStatus, SyncStatus
from integrations.sync import run_sync

pytestmark = pytest.mark.django_db

ORDERS = 1000


def orders_of(connection) -> int:
    orders = Order.objects.filter(connection=connection)
    assert orders.values("external_id").distinct().count() == orders.count()
    return orders.count()


def test_a_malformed_page_fails_the_run_clearly_and_the_next_run_reads_it_again(woo, platform):
    platform.inject("malformed", page=4)

    first = run_sync(woo, ["orders"])

    assert (first.status, first.error_code) == (SyncStatus.FAILED, "bad_response")
    assert first.error.startswith("The platform answered with malformed JSON.")
    assert "display_errors" in first.error  # the hint: what to turn off on the site
    assert orders_of(woo) == 300
    woo.refresh_from_db()
    assert woo.status == ConnectionStatus.FAILING
    assert woo.cursors["orders"]["page"] == 4
    assert [r.status for r in platform.requests if r.page == 4] == [200]  # answered once, not retried

    second = run_sync(woo, ["orders"])

    assert second.status == SyncStatus.SUCCEEDED, second.error
    assert second.counts["orders"]["created"] == ORDERS - 300
    assert orders_of(woo) == ORDERS
    assert [r.page for r in platform.requests if r.answer == "ok"] == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]


@pytest.mark.parametrize(
    "pages",
    [
        pytest.param(None, id="a short page that claims to be the last"),
        pytest.param(10, id="a short page in the middle"),
    ],
)
def test_a_truncated_page_loses_nothing_by_the_next_run(woo, platform, pages):
    platform.inject("truncated", page=3, keep=40, pages=pages)

    first = run_sync(woo, ["orders"])

    # The platform served 40 of page 3's hundred orders: the run cannot know which it missed.
    assert first.status == SyncStatus.SUCCEEDED, first.error
    read = 240 if pages is None else ORDERS - 60
    assert orders_of(woo) == read
    woo.refresh_from_db()
    # The sweep came short of X-WP-Total, so its watermark did not move: the next run reads again.
    assert woo.cursors["orders"] == {"since": None}

    second = run_sync(woo, ["orders"])

    assert second.status == SyncStatus.SUCCEEDED, second.error
    assert second.counts["orders"]["created"] == ORDERS - read
    assert second.counts["orders"]["unchanged"] == read
    assert orders_of(woo) == ORDERS
    woo.refresh_from_db()
    assert woo.cursors["orders"]["since"] is not None

    # Complete now: the run after reads only what changed since.
    third = run_sync(woo, ["orders"])
    assert third.counts["orders"] == {"created": 0, "updated": 0, "unchanged": 0, "failed": 0}
    assert orders_of(woo) == ORDERS


def test_a_total_that_does_not_add_up_keeps_the_watermark(woo, platform):
    """X-WP-TotalPages says 5 where there are 10 (a cache serving an old header): the sweep stops
    after page 5 with 500 of X-WP-Total's 1000 read, and the next run reads again."""
    platform.inject("truncated", page=5, keep=100, pages=5)

    first = run_sync(woo, ["orders"])

    assert first.status == SyncStatus.SUCCEEDED, first.error
    assert orders_of(woo) == 500
    assert first.progress["orders"] == {"seen": 500, "total": ORDERS, "done": True}
    woo.refresh_from_db()
    assert woo.cursors["orders"] == {"since": None}

    second = run_sync(woo, ["orders"])

    assert second.counts["orders"]["created"] == ORDERS - 500
    assert orders_of(woo) == ORDERS
