"""Receipt's insert (webhooks.inbox): one `INSERT … ON CONFLICT DO NOTHING RETURNING id` per event,
on PostgreSQL and SQLite alike. A duplicate is "no row returned", so it needs no savepoint and
leaves a surrounding transaction usable; what lands in the table is what the ORM would store."""

from __future__ import annotations

import json
import select
import time
from datetime import UTC, datetime

import psycopg
import pytest
from django.db import connection, transaction
from django.db.models.signals import pre_save
from django.test.utils import CaptureQueriesContext

from webhooks import inbox
from webhooks.models import EventStatus, WebhookEvent
from webhooks.receivers import RECEIVERS
from webhooks.receivers.base import Delivery, Incoming

ORDER = {"id": 1, "admin_graphql_api_id": "gid://shopify/Order/1", "updated_at": "2026-11-20T10:00:00-05:00"}


def delivery_to(connection_, body: bytes, **headers: str) -> Delivery:
    return Delivery(
        connection=connection_,
        method="POST",
        url=f"https://hub.example.com/webhooks/shopify/{connection_.uuid}/",
        headers={"content-type": "application/json", "x-shopify-topic": "orders/updated", **headers},
        body=body,
        content_type="application/json",
    )


def store(connection_, *incoming: Incoming, body: bytes = b'{"id": 1}', receiver: str = "shopify", **headers: str):
    return inbox.store(RECEIVERS[receiver], delivery_to(connection_, body, **headers), list(incoming))


def statements(queries: CaptureQueriesContext) -> list[str]:
    return [query["sql"].split()[0].upper() for query in queries.captured_queries]


def test_a_new_event_is_stored_with_its_columns_and_rings_once_committed(shop, django_capture_on_commit_callbacks):
    updated = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
    with django_capture_on_commit_callbacks() as callbacks:
        [(event_id, created)] = store(
            shop,
            Incoming(
                topic="orders/updated", event_id="w-1", resource_id="gid://shopify/Order/1", resource_updated_at=updated
            ),
            body=json.dumps(ORDER).encode(),
            authorization="Bearer secret-token",
        )
    assert created and event_id is not None
    assert len(callbacks) == 1  # the doorbell, once the insert commits
    stored = WebhookEvent.objects.get()
    assert stored.pk == event_id
    assert (stored.tenant_id, stored.connection_id, stored.provider) == (shop.tenant_id, shop.pk, "shopify")
    assert (stored.event_id, stored.topic, stored.resource_id) == ("w-1", "orders/updated", "gid://shopify/Order/1")
    assert stored.resource_updated_at == updated
    assert stored.status == EventStatus.RECEIVED and stored.signature_valid
    assert stored.attempts == 0 and stored.duplicates == 0 and stored.last_duplicate_at is None
    assert stored.headers["authorization"] == inbox.REDACTED
    assert json.loads(stored.body) == ORDER and stored.payload is None


def test_a_duplicate_inside_a_transaction_is_counted_without_a_savepoint_or_spoiling_it(
    shop, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        [(first_id, created)] = store(shop, Incoming(topic="orders/updated", event_id="w-1"))
        with CaptureQueriesContext(connection) as queries:
            [(again_id, created_again)] = store(shop, Incoming(topic="orders/updated", event_id="w-1"))
        # The transaction is still usable after the duplicate: no error, nothing to roll back.
        assert WebhookEvent.objects.count() == 1
    assert created and not created_again
    assert again_id == first_id  # the duplicate answers with the copy stored first
    assert "SAVEPOINT" not in statements(queries) and "ROLLBACK" not in statements(queries)
    assert len(callbacks) == 1  # only the new event rings
    stored = WebhookEvent.objects.get()
    assert stored.duplicates == 1 and stored.last_duplicate_at is not None


@pytest.mark.django_db(transaction=True)
def test_a_duplicate_in_autocommit_is_counted_on_the_first_copy_without_a_transaction(shop, monkeypatch):
    store(shop, Incoming(topic="orders/updated", event_id="w-1"))
    transactions: list[str] = []
    real_set_autocommit, real_commit = connection.set_autocommit, connection.commit

    def set_autocommit(autocommit, **kwargs):
        transactions.append("BEGIN" if not autocommit else "autocommit")
        return real_set_autocommit(autocommit, **kwargs)

    def commit():
        transactions.append("COMMIT")
        return real_commit()

    monkeypatch.setattr(connection, "set_autocommit", set_autocommit)
    monkeypatch.setattr(connection, "commit", commit)
    with CaptureQueriesContext(connection) as queries:
        [(event_id, created)] = store(shop, Incoming(topic="orders/updated", event_id="w-1"))
        store(shop, Incoming(topic="orders/updated", event_id="w-1"))
    assert not created
    assert not transactions and not {"SAVEPOINT", "RELEASE", "ROLLBACK"} & set(statements(queries))
    stored = WebhookEvent.objects.get()
    assert stored.pk == event_id and stored.duplicates == 2 and stored.last_duplicate_at is not None


def test_a_batch_stores_each_event_with_its_own_part_and_no_copy_of_the_body(shop):
    events = [{"sg_event_id": "a", "event": "delivered"}, {"sg_event_id": "b", "event": "open"}]
    stored = store(
        shop,
        *(Incoming(topic=e["event"], event_id=e["sg_event_id"], payload=e) for e in events),
        body=json.dumps(events).encode(),
        receiver="sendgrid",
    )
    assert [created for _, created in stored] == [True, True]
    rows = list(WebhookEvent.objects.order_by("event_id").values_list("event_id", "topic", "body", "payload"))
    assert rows == [("a", "delivered", "", events[0]), ("b", "open", "", events[1])]


def test_a_batch_that_repeats_an_event_stores_it_once(shop):
    event = {"sg_event_id": "a", "event": "delivered"}
    stored = store(
        shop, *(Incoming(topic="delivered", event_id="a", payload=event) for _ in range(2)), receiver="sendgrid"
    )
    assert [created for _, created in stored] == [True, False]
    assert WebhookEvent.objects.get().duplicates == 1


def test_events_without_an_id_are_never_taken_for_duplicates(shop):
    # The unique constraint (and so the conflict target) only covers verified events with an id.
    store(shop, Incoming(topic="orders/updated"))
    store(shop, Incoming(topic="orders/updated"))
    assert WebhookEvent.objects.count() == 2


def test_json_and_text_with_unicode_are_stored_exactly(shop):
    note = "Zoë\u2019s 🎁 — «à la porte» — 東京 — שלום — \u2028 end"
    events = [{"sg_event_id": "ü-1", "event": "delivered", "note": note, "nested": {"ключ": [note]}}, {"x": 1}]
    body = json.dumps({"note": note}, ensure_ascii=False).encode()
    store(
        shop,
        Incoming(topic="delivered", event_id="ü-1", payload=events[0]),
        Incoming(topic="other", event_id="ü-2", payload=events[1]),
        receiver="sendgrid",
        x_note=note,
    )
    store(shop, Incoming(topic="orders/updated", event_id="ü-3"), body=body, x_note=note)
    first, _, single = WebhookEvent.objects.order_by("event_id")
    assert first.payload == events[0] and first.headers["x_note"] == note
    assert json.loads(single.body)["note"] == note and single.headers["x_note"] == note


def test_nul_characters_are_stored_as_the_replacement_character(shop):
    events = [{"sg_event_id": "n\x00-1", "event": "open\x00ed", "note": "a\x00b", "k\x00": ["\x00"]}, {"x": 1}]
    store(
        shop,
        Incoming(topic="open\x00ed", event_id="n\x00-1", resource_id="m\x00", payload=events[0]),
        Incoming(topic="other", event_id="n-2", payload=events[1]),
        receiver="sendgrid",
        x_odd="v\x00",
    )
    store(shop, Incoming(topic="orders/updated", event_id="n-3"), body=b'{"note": "a\x00b"}')
    batch = WebhookEvent.objects.get(event_id="n\ufffd-1")
    assert (batch.topic, batch.resource_id) == ("open\ufffded", "m\ufffd")
    assert batch.payload == {
        "sg_event_id": "n\ufffd-1",
        "event": "open\ufffded",
        "note": "a\ufffdb",
        "k\ufffd": ["\ufffd"],
    }
    assert batch.headers["x_odd"] == "v\ufffd"
    assert WebhookEvent.objects.get(event_id="n-3").body == '{"note": "a\ufffdb"}'
    # The same id with NUL is the same event when it comes again.
    [(_, created)] = store(shop, Incoming(topic="open", event_id="n\x00-1"), receiver="sendgrid")
    assert not created


def test_a_refused_delivery_is_stored_apart_from_the_verified_events(shop):
    [(event_id, _)] = store(shop, Incoming(topic="orders/updated", event_id="w-1"))
    refused = inbox.store_rejected(RECEIVERS["shopify"], delivery_to(shop, b'{"id": 1}'), "The signature is wrong.")
    assert refused.pk != event_id and not refused.signature_valid and refused.status == EventStatus.REJECTED
    assert WebhookEvent.objects.count() == 2


def test_the_insert_leaves_out_nothing_that_save_would_do():
    """The insert converts values as save() does but skips its `pre_save` hooks and signals: right
    only while nothing changes a WebhookEvent as it is saved."""
    assert not pre_save.has_listeners(WebhookEvent)
    computed = [f.name for f in WebhookEvent._meta.concrete_fields if getattr(f, "auto_now", False)]
    computed += [f.name for f in WebhookEvent._meta.concrete_fields if getattr(f, "auto_now_add", False)]
    assert not computed


# --- PostgreSQL: the prepared statement and the health check ---------------------------------------


def prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.postgres
def test_the_insert_is_prepared_once_it_repeats_on_a_connection_and_nothing_else_is(shop, settings):
    threshold = settings.WEBHOOK_PREPARE_THRESHOLD
    assert threshold is not None, "DATABASE_PREPARE_THRESHOLD is off"
    for n in range(threshold + 2):
        store(shop, Incoming(topic="orders/updated", event_id=f"w-{n}"))
        list(WebhookEvent.objects.filter(event_id=f"w-{n}"))  # the ORM's statements, as often
    assert [s for s in prepared_statements() if s.startswith('INSERT INTO "webhooks_webhookevent"')]
    assert [s for s in prepared_statements() if not s.startswith("INSERT")] == []
    # The connection itself keeps Django's setting: no other statement is counted or remembered.
    assert connection.connection.prepare_threshold is None
    assert WebhookEvent.objects.count() == threshold + 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_receipt_skips_the_select_1_health_check_on_a_quiet_connection(shop, deliver, monkeypatch):
    # The first delivery also queues the drain (django-q's broker runs Django's checks itself).
    assert deliver(shop, ORDER, webhook_id="w-1").status_code == 200
    checks: list[bool] = []
    real_is_usable = connection.is_usable

    def is_usable():
        checks.append(True)
        return real_is_usable()

    monkeypatch.setattr(connection, "is_usable", is_usable)
    assert connection.health_check_enabled
    connection.health_check_done = False  # a new request (the test client skips close_old_connections)
    assert deliver(shop, ORDER, webhook_id="w-2").status_code == 200
    assert not checks
    assert WebhookEvent.objects.count() == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_connection_the_server_closed_is_replaced_before_the_insert(shop, deliver):
    assert deliver(shop, ORDER, webhook_id="w-1").status_code == 200
    backend = connection.connection.info.backend_pid
    terminate(backend)
    connection.health_check_done = False  # a new request (the test client skips close_old_connections)
    assert deliver(shop, ORDER, webhook_id="w-2").status_code == 200
    assert connection.connection.info.backend_pid != backend
    assert WebhookEvent.objects.count() == 2


def terminate(backend_pid: int) -> None:
    """End a server process from another session, as a restart or an idle timeout would, and wait
    until its goodbye has reached this connection's socket."""
    params = connection.get_connection_params()
    with psycopg.connect(
        dbname=connection.settings_dict["NAME"],
        **{k: v for k, v in params.items() if k in ("user", "password", "host", "port")},
        autocommit=True,
    ) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [backend_pid])
    poller = select.poll()
    poller.register(connection.connection.fileno(), select.POLLIN)
    deadline = time.monotonic() + 5
    while not poller.poll(50) and time.monotonic() < deadline:
        pass


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_insert_goes_to_psycopg_on_one_cursor_per_connection_unless_queries_are_logged(shop, monkeypatch):
    store(shop, Incoming(topic="orders/updated", event_id="w-0"))  # rings: queues the drain in the ORM broker
    made: list[object] = []
    real_create_cursor = connection.create_cursor
    monkeypatch.setattr(connection, "create_cursor", lambda name=None: made.append(name) or real_create_cursor(name))
    for n in (1, 2):
        store(shop, Incoming(topic="orders/updated", event_id=f"w-{n}"))
    assert made == []  # no Django cursor for a new event
    kept = connection._webhook_insert_cursor
    assert kept.connection is connection.connection

    connection.close()  # a new connection (CONN_MAX_AGE, an error) gets a new cursor
    store(shop, Incoming(topic="orders/updated", event_id="w-3"))
    assert connection._webhook_insert_cursor is not kept
    assert connection._webhook_insert_cursor.connection is connection.connection

    with CaptureQueriesContext(connection) as queries:  # DEBUG, or a test counting queries
        store(shop, Incoming(topic="orders/updated", event_id="w-4"))
    assert [q["sql"] for q in queries.captured_queries if q["sql"].startswith("INSERT")]
    assert sorted(WebhookEvent.objects.values_list("event_id", flat=True)) == [f"w-{n}" for n in range(5)]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_connection_lost_during_the_insert_is_answered_503_and_the_next_delivery_reconnects(shop, deliver):
    assert deliver(shop, ORDER, webhook_id="w-1").status_code == 200
    terminate(connection.connection.info.backend_pid)
    connection.health_check_done = True  # as if the peer had vanished without a word: no check catches it

    response = deliver(shop, ORDER, webhook_id="w-2")
    assert response.status_code == 503 and response["Retry-After"] == "30"  # psycopg's error, as Django's

    connection.close_if_unusable_or_obsolete()  # what the next request does first
    assert deliver(shop, ORDER, webhook_id="w-2").status_code == 200
    assert sorted(WebhookEvent.objects.values_list("event_id", flat=True)) == ["w-1", "w-2"]


@pytest.mark.postgres
def test_a_body_large_enough_to_compress_is_compressed_with_lz4_where_the_server_has_it(shop):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'")
        if not cursor.fetchone()[0]:
            pytest.skip("this PostgreSQL server is built without lz4")
    order = {**ORDER, "line_items": [{"id": n, "title": f"Line {n}", "quantity": 1} for n in range(80)]}
    body = json.dumps(order).encode()
    assert len(body) > 3000  # over the size at which PostgreSQL compresses a row
    [(event_id, _)] = store(shop, Incoming(topic="orders/updated", event_id="w-1"), body=body)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_column_compression(body), body FROM webhooks_webhookevent WHERE id = %s", [event_id])
        method, stored = cursor.fetchone()
    assert method == "lz4"
    assert json.loads(stored) == order


def test_receipt_writes_no_index_another_index_already_leads_with(db):
    """Every index of the table is written by every insert: one whose columns begin another's is
    pure cost (Django's own index on each foreign key was, beside the tenant and connection ones)."""
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, WebhookEvent._meta.db_table)
    indexes = {name: tuple(c["columns"]) for name, c in constraints.items() if c["index"] and not c["primary_key"]}
    assert len(indexes) == 4, indexes  # the once-per-connection constraint and the model's three
    redundant = [
        (name, other)
        for name, columns in indexes.items()
        for other, longer in indexes.items()
        if other != name and longer[: len(columns)] == columns
    ]
    assert not redundant, redundant


@pytest.mark.parametrize("where", ["the insert", "the connection lookup"])
def test_a_delivery_that_meets_the_database_down_is_answered_503_to_be_sent_again(
    shop, deliver, monkeypatch, caplog, where
):
    from django.db import OperationalError

    from webhooks import connections

    def down(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(*((inbox, "_insert_once") if where == "the insert" else (connections, "lookup")), down)
    response = deliver(shop, ORDER, webhook_id="w-1")

    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert response.json()["error"]["code"] == "unavailable"
    assert not WebhookEvent.objects.exists()
    assert "the database is unavailable" in caplog.text
