"""The sync engine reading a page ahead, in a background thread, for connectors whose `read` touches
only the network: what lands in the database, how an error of the read reaches the run, and how
far ahead the reading gets."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from commerce.models import Order
from commerce.records import OrderRecord
from integrations.connectors.base import Connector, Page
from integrations.errors import AuthError
from integrations.models import ConnectionStatus, SyncStatus
from integrations.sync import PrefetchedPages, run_sync

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 1, 1, tzinfo=UTC)
PAGE = 10


def order(n: int) -> OrderRecord:
    return OrderRecord(
        external_id=f"o{n}",
        number=str(1000 + n),
        currency="USD",
        placed_at=T0 + timedelta(hours=n),
        updated_at=T0,
        total=Decimal("10.00"),
        raw={"id": n},
    )


class NetworkOnlyConnector(Connector):
    """Serves `pages` pages of orders, read a page ahead; raises `fail_at` (page index → error)
    when that page is read, and records what it read and in which thread."""

    streams = ("orders",)
    reads_in_background = True

    def __init__(self, connection, pages: int, *, fail_at: dict[int, Exception] | None = None) -> None:
        super().__init__(connection)
        self.pages = pages
        self.fail_at = fail_at or {}
        self.read_pages = 0
        self.closed = False
        self.threads: set[str] = set()

    def read(self, stream, cursor, *, full=False):
        start = 0 if full or not cursor else cursor["page"]
        try:
            for index in range(start, self.pages):
                self.threads.add(threading.current_thread().name)
                if index in self.fail_at:
                    raise self.fail_at[index]
                self.read_pages += 1
                yield Page([order(index * PAGE + n) for n in range(PAGE)], {"page": index + 1}, self.pages * PAGE)
        finally:
            self.closed = True


class DatabaseReadingConnector(NetworkOnlyConnector):
    reads_in_background = False


@pytest.fixture
def shop(tenant_a, make_connection):
    return make_connection(tenant_a, "woocommerce")


def read_ahead_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith("sync-run-")]


def test_a_sync_read_ahead_stores_every_page_and_counts_it(shop):
    connector = NetworkOnlyConnector(shop, pages=8)

    run = run_sync(shop, ["orders"], connector=connector)

    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert Order.objects.for_tenant(shop.tenant).count() == 80
    assert run.counts["orders"] == {"created": 80, "updated": 0, "unchanged": 0, "failed": 0}
    shop.refresh_from_db()
    assert shop.cursors["orders"] == {"page": 8}
    assert connector.threads == {f"sync-run-{run.pk}-orders"}
    assert connector.closed and not read_ahead_threads()


def test_a_connector_that_may_read_the_database_is_read_in_the_engines_thread(shop):
    connector = DatabaseReadingConnector(shop, pages=2)

    run_sync(shop, ["orders"], connector=connector)

    assert connector.threads == {threading.current_thread().name}


def test_an_error_of_the_read_fails_the_run_after_the_pages_read_before_it(shop):
    revoked = AuthError("The platform answered 401.", status=401)
    connector = NetworkOnlyConnector(shop, pages=8, fail_at={3: revoked})

    run = run_sync(shop, ["orders"], connector=connector)

    assert run.status == SyncStatus.FAILED
    assert run.error_code == "auth"
    assert Order.objects.for_tenant(shop.tenant).count() == 30
    shop.refresh_from_db()
    assert shop.status == ConnectionStatus.NEEDS_REAUTH
    assert shop.cursors["orders"] == {"page": 3}
    assert not read_ahead_threads()


def test_the_read_stays_at_most_two_pages_ahead_of_the_committed_ones(shop):
    connector = NetworkOnlyConnector(shop, pages=12)
    ahead: list[int] = []

    def committed(run) -> None:
        # Writing is slower than reading here, so the reading gets as far ahead as it may.
        time.sleep(0.02)
        ahead.append(connector.read_pages - run.progress["orders"]["seen"] // PAGE)

    run_sync(shop, ["orders"], connector=connector, on_progress=committed)

    # One page waits for the engine and one more has been read; the reading waits for room.
    assert max(ahead) == 2
    assert min(ahead) >= 0


def test_a_failed_write_stops_the_reading_and_closes_the_read(shop, monkeypatch):
    connector = NetworkOnlyConnector(shop, pages=50)
    written = []

    def ingest(stream, source, records):
        written.append(records)
        if len(written) == 3:
            raise RuntimeError("the database went away")
        return real_ingest(stream, source, records)

    from integrations import sync

    real_ingest = sync.ingest
    monkeypatch.setattr(sync, "ingest", ingest)

    run = run_sync(shop, ["orders"], connector=connector)

    assert run.status == SyncStatus.FAILED
    assert run.error_code == "internal"
    assert Order.objects.for_tenant(shop.tenant).count() == 20
    assert connector.closed and not read_ahead_threads()
    assert connector.read_pages <= 3 + 2


def test_prefetched_pages_raise_the_reads_own_error_in_the_callers_thread():
    class Broken(Exception):
        pass

    error = Broken("page 2 is gone")

    def pages():
        yield Page([], {"page": 1})
        raise error

    received = []
    with pytest.raises(Broken) as raised, PrefetchedPages(pages()) as prefetched:
        for page in prefetched:
            received.append(page.cursor)

    assert raised.value is error
    assert received == [{"page": 1}]


def test_prefetched_pages_left_early_stop_the_thread_and_close_the_read():
    closed = threading.Event()

    def pages():
        try:
            for n in range(1000):
                yield Page([], {"page": n})
        finally:
            closed.set()

    with PrefetchedPages(pages(), name="sync-run-left-early") as prefetched:
        for page in prefetched:
            if page.cursor["page"] == 2:
                break

    assert closed.is_set()
    assert not read_ahead_threads()
