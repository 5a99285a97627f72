"""The doorbell between receipt and processing (webhooks.queue): deliveries ring for a drain task,
rings close together share one, and no event is left waiting when the bell is re-armed."""

from __future__ import annotations

import json

import pytest
from django.core.cache import cache
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django_q.models import OrmQ

from webhooks import processing, queue, tasks
from webhooks.models import EventStatus, WebhookEvent

from .conftest import make_event

ORDER = {"id": 1, "admin_graphql_api_id": "gid://shopify/Order/1", "updated_at": "2026-11-20T10:00:00-05:00"}


def queued() -> list[str]:
    return [q.task["func"] for q in OrmQ.objects.order_by("id")]


@pytest.fixture
def counted(handled):
    return handled(lambda event: "done")


def test_deliveries_close_together_share_one_drain(shop, deliver, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(5):
            assert deliver(shop, {**ORDER, "id": n}, webhook_id=f"w-{n}").status_code == 200
    assert queued() == ["webhooks.tasks.drain"]


def test_a_drain_processes_every_waiting_event_then_rearms_the_bell(
    shop, deliver, counted, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(3):
            deliver(shop, {**ORDER, "id": n}, webhook_id=f"w-{n}")
    assert tasks.drain() == "3 events processed"
    assert len(counted) == 3
    assert set(WebhookEvent.objects.values_list("status", flat=True)) == {EventStatus.PROCESSED}
    assert cache.get(queue.DRAIN_FLAG) is None
    # The next delivery rings again: a new drain is queued.
    with django_capture_on_commit_callbacks(execute=True):
        deliver(shop, {**ORDER, "id": 9}, webhook_id="w-9")
    assert queued() == ["webhooks.tasks.drain", "webhooks.tasks.drain"]


def test_an_event_stored_while_the_drain_finishes_is_not_left_waiting(shop, counted, monkeypatch):
    """The delivery lands after the drain found nothing and before it re-armed the bell: its ring
    was absorbed (the flag was still set), so the drain's last look must take it."""
    queue.wake()  # the drain this test runs
    real_rearm = queue.rearm
    late: list[WebhookEvent] = []

    def rearm_after_a_late_delivery():
        if not late:
            late.append(make_event(shop, event_id="late"))
            queue.wake()  # absorbed: the flag is still set
        real_rearm()

    monkeypatch.setattr(queue, "rearm", rearm_after_a_late_delivery)
    done, more = processing.drain(seconds=60)
    assert (done, more) == (1, False)
    assert [event.pk for event in counted] == [late[0].pk]
    assert queued() == ["webhooks.tasks.drain"]  # only the first ring queued a task


# --- The ring memo: a process that saw the flag set does not ask the cache for a while -------------


@pytest.fixture
def memo(settings, monkeypatch):
    """The memo on, with a clock the test moves; returns the list of cache.add calls."""
    settings.WEBHOOK_RING_MEMO_SECONDS = 1.0
    now = [1000.0]
    monkeypatch.setattr(queue.time, "monotonic", lambda: now[0])
    calls: list[str] = []
    real_add = cache.add

    def add(key, *args, **kwargs):
        calls.append(key)
        return real_add(key, *args, **kwargs)

    monkeypatch.setattr(cache, "add", add)
    return now, calls


def test_rings_within_the_memo_do_not_ask_the_cache(shop, deliver, memo, django_capture_on_commit_callbacks):
    now, calls = memo
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(5):
            assert deliver(shop, {**ORDER, "id": n}, webhook_id=f"w-{n}").status_code == 200
            now[0] += 0.1
    assert calls == [queue.DRAIN_FLAG]  # the first ring set the flag; the next four remembered it
    assert queued() == ["webhooks.tasks.drain"]
    # A second later the process asks again: the flag is still set (no drain cleared it), so no task.
    now[0] += 1.0
    queue.wake()
    assert calls == [queue.DRAIN_FLAG, queue.DRAIN_FLAG]
    assert queued() == ["webhooks.tasks.drain"]


def test_an_event_whose_ring_the_memo_swallowed_is_taken_by_the_drains_last_look(shop, counted, memo, monkeypatch):
    """The drain clears the flag; a delivery in this process rings within the memo, so it neither
    asks the cache nor queues a drain. The drain waits out the memo before its last look, and that
    look takes the event."""
    now, calls = memo
    queue.wake()  # the drain this test runs; this process now remembers the flag
    late: list[WebhookEvent] = []
    waited: list[float] = []

    def a_delivery_while_the_drain_settles(seconds: float) -> None:
        waited.append(seconds)
        if not late:
            late.append(make_event(shop, event_id="late"))
            now[0] += 0.5
            queue.wake()  # swallowed by the memo
        now[0] += seconds

    monkeypatch.setattr(queue.time, "sleep", a_delivery_while_the_drain_settles)
    assert processing.drain(seconds=60) == (1, False)
    assert [event.pk for event in counted] == [late[0].pk]
    assert waited == [1.0, 1.0]  # the settle before each last look: one found the late event
    assert calls == [queue.DRAIN_FLAG]  # the late ring never reached the cache
    assert queued() == ["webhooks.tasks.drain"]


def test_a_ring_after_the_memo_lapses_queues_a_drain_once_the_flag_is_cleared(shop, memo):
    now, calls = memo
    queue.wake()
    queue.rearm()  # a drain finished
    queue.wake()  # within the memo: remembered, not asked
    assert queued() == ["webhooks.tasks.drain"]
    now[0] += 1.0
    queue.wake()
    assert queued() == ["webhooks.tasks.drain", "webhooks.tasks.drain"]
    assert calls == [queue.DRAIN_FLAG, queue.DRAIN_FLAG]


def test_a_long_drain_hands_over_to_a_new_task(shop, counted, monkeypatch):
    for n in range(3):
        make_event(shop, event_id=f"e-{n}")
    monkeypatch.setattr(tasks, "DRAIN_SECONDS", 0)
    assert tasks.drain() == "1 events processed, more waiting: another drain queued"
    assert queued() == ["webhooks.tasks.drain"]
    assert WebhookEvent.objects.filter(status=EventStatus.RECEIVED).count() == 2


def test_without_the_cache_every_delivery_still_queues_a_drain(
    shop, deliver, counted, monkeypatch, caplog, django_capture_on_commit_callbacks
):
    def down(*args, **kwargs):
        raise ConnectionError("cache unreachable")

    monkeypatch.setattr(cache, "add", down)
    monkeypatch.setattr(cache, "delete", down)
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(2):
            assert deliver(shop, {**ORDER, "id": n}, webhook_id=f"w-{n}").status_code == 200
    assert queued() == ["webhooks.tasks.drain", "webhooks.tasks.drain"]
    assert "without coalescing" in caplog.text
    # And a drain still finishes: re-arming tolerates the cache being down (the flag lapses by itself).
    assert processing.drain(seconds=60) == (2, False)
    assert len(counted) == 2


def test_a_drain_skips_events_another_worker_holds(shop, counted):
    mine = make_event(shop, event_id="mine")
    taken = make_event(shop, event_id="taken", status=EventStatus.PROCESSING)
    assert processing.drain(seconds=60) == (1, False)
    assert [event.pk for event in counted] == [mine.pk]
    taken.refresh_from_db()
    assert taken.status == EventStatus.PROCESSING


@pytest.mark.django_db(transaction=True)
def test_receipt_in_autocommit_is_one_insert_without_a_transaction(shop, deliver, monkeypatch):
    """Outside a transaction the store is a single INSERT: no BEGIN/COMMIT (or savepoint) round trips."""
    transactions: list[str] = []
    real_set_autocommit = db_connection.set_autocommit

    def set_autocommit(autocommit, **kwargs):
        if not autocommit:
            transactions.append("BEGIN")
        return real_set_autocommit(autocommit, **kwargs)

    monkeypatch.setattr(db_connection, "set_autocommit", set_autocommit)
    with CaptureQueriesContext(db_connection) as queries:
        assert deliver(shop, ORDER, webhook_id="w-1").status_code == 200
    statements = [q["sql"].split()[0].upper() for q in queries.captured_queries]
    assert statements.count("INSERT") == 2  # the event, and the drain task in the queue
    assert not transactions and "SAVEPOINT" not in statements, (transactions, statements)
    duplicate = deliver(shop, ORDER, webhook_id="w-1")
    assert duplicate.json()["status"] == "duplicate"
    assert WebhookEvent.objects.get().duplicates == 1
    assert json.loads(WebhookEvent.objects.get().body) == ORDER


# --- The connection lookup cache (webhooks.connections) -------------------------------------------


def test_deliveries_to_one_address_look_the_connection_up_once(shop, deliver):
    deliver(shop, ORDER, webhook_id="w-1")
    with CaptureQueriesContext(db_connection) as queries:
        deliver(shop, ORDER, webhook_id="w-2")
    assert not [q for q in queries.captured_queries if "integrations_connection" in q["sql"].split("FROM")[-1]]


def test_a_secret_rotated_in_another_process_is_picked_up_before_refusing(shop, deliver):
    from integrations.models import Connection

    from .conftest import shopify_signature

    assert deliver(shop, ORDER, webhook_id="w-1").status_code == 200  # now cached with the old secret
    # Another process rotates the secret: no signal reaches this process's cache.
    rotated = Connection.objects.get(pk=shop.pk)
    rotated.credentials = {**rotated.credentials, "client_secret": "shpss_new_secret"}
    Connection.objects.filter(pk=shop.pk).update(credentials=rotated.credentials)
    body = json.dumps(ORDER).encode()
    response = deliver(shop, ORDER, webhook_id="w-2", signature=shopify_signature(body, "shpss_new_secret"))
    assert response.status_code == 200
    assert WebhookEvent.objects.filter(signature_valid=True).count() == 2


def test_a_deleted_connection_is_forgotten_at_once(shop, deliver):
    uuid = shop.uuid
    assert deliver(shop, ORDER, webhook_id="w-1").status_code == 200
    shop.delete()
    shop.uuid = uuid
    assert deliver(shop, ORDER, webhook_id="w-2").status_code == 404


def test_the_cache_can_be_turned_off(shop, deliver, settings):
    settings.WEBHOOK_CONNECTION_CACHE_SECONDS = 0
    deliver(shop, ORDER, webhook_id="w-1")
    with CaptureQueriesContext(db_connection) as queries:
        deliver(shop, ORDER, webhook_id="w-2")
    assert [q for q in queries.captured_queries if "integrations_connection" in q["sql"].split("FROM")[-1]]
