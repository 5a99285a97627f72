"""Processing stored events: once each, retried with backoff, parked, replayed, swept."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from django.db import connection as db_connection
from django.test import Client
from django.utils import timezone

from integrations.models import HUB_WEBHOOK_SECRET, SyncRun, SyncTrigger
from webhooks import processing, tasks
from webhooks.errors import Unprocessable
from webhooks.models import EventStatus, WebhookEvent

from .conftest import HUB_SECRET, make_event, shopify_signature, signed_generic


def test_a_processed_event_runs_its_handler_once(shop, handled):
    calls = handled(lambda event: "order stored")
    event = make_event(shop)
    assert processing.process(event.pk).startswith("processed")
    assert processing.process(event.pk) == "already taken or done"
    event.refresh_from_db()
    assert event.status == EventStatus.PROCESSED and event.outcome == "order stored"
    assert event.attempts == 1 and event.processed_at is not None and event.locked_until is None
    assert len(calls) == 1


def test_an_unknown_topic_is_ignored_with_its_name(shop, handled):
    handled(lambda event: "x")
    event = make_event(shop, topic="carts/update")
    processing.process(event.pk)
    event.refresh_from_db()
    assert event.status == EventStatus.IGNORED
    assert "carts/update" in event.outcome


def test_a_disabled_connection_s_events_are_ignored(shop, handled):
    calls = handled(lambda event: "x")
    shop.enabled = False
    shop.save()
    event = make_event(shop)
    processing.process(event.pk)
    event.refresh_from_db()
    assert event.status == EventStatus.IGNORED and not calls


def test_a_failing_handler_is_retried_with_backoff_then_parked(shop, handled, settings):
    settings.WEBHOOK_MAX_ATTEMPTS = 3

    def crash(event):
        raise ConnectionError("database hiccup")

    calls = handled(crash)
    event = make_event(shop)
    processing.process(event.pk)
    event.refresh_from_db()
    assert event.status == EventStatus.RETRYING
    assert "database hiccup" in event.error
    first_wait = event.next_attempt_at - timezone.now()
    assert timedelta(seconds=25) < first_wait <= timedelta(seconds=37)
    # Not due yet: the sweep leaves it.
    assert event.pk not in processing.due()
    # Due later: the sweep takes it, it fails again and waits longer.
    later = timezone.now() + timedelta(minutes=5)
    assert event.pk in processing.due(now=later)
    processing.process(event.pk)
    event.refresh_from_db()
    assert event.status == EventStatus.RETRYING
    assert event.next_attempt_at - timezone.now() > timedelta(seconds=55)
    processing.process(event.pk)
    event.refresh_from_db()
    assert event.status == EventStatus.PARKED
    assert "Gave up after 3 attempts" in event.error
    assert len(calls) == 3
    assert event.pk not in processing.due(now=later + timedelta(days=1))


def test_an_unprocessable_event_is_parked_at_once(shop, handled):
    def refuse(event):
        raise Unprocessable("the order has no line items")

    handled(refuse)
    event = make_event(shop)
    processing.process(event.pk)
    event.refresh_from_db()
    assert event.status == EventStatus.PARKED and event.attempts == 1
    assert event.error == "the order has no line items"


def test_a_failed_handler_leaves_nothing_half_written(shop, handled, make_order):
    def half(event):
        make_order(shop, external_id="written-then-failed")
        raise RuntimeError("boom after writing")

    handled(half)
    event = make_event(shop)
    processing.process(event.pk)
    from commerce.models import Order

    assert not Order.objects.filter(external_id="written-then-failed").exists()


def test_replay_puts_a_parked_event_back_and_it_is_processed(shop, handled, django_capture_on_commit_callbacks):
    outcomes = iter([Unprocessable("bad"), "fixed"])

    def flaky(event):
        result = next(outcomes)
        if isinstance(result, Exception):
            raise result
        return result

    handled(flaky)
    event = make_event(shop)
    processing.process(event.pk)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert processing.replay(WebhookEvent.objects.filter(pk=event.pk)) == 1
    assert len(callbacks) == 1
    event.refresh_from_db()
    assert event.status == EventStatus.RECEIVED and event.attempts == 0 and not event.error
    processing.process(event.pk)
    event.refresh_from_db()
    assert event.status == EventStatus.PROCESSED and event.outcome == "fixed"


def test_rejected_events_are_never_replayed(shop):
    event = make_event(shop, status=EventStatus.REJECTED, signature_valid=False, event_id="")
    assert processing.replay(WebhookEvent.objects.filter(pk=event.pk)) == 0
    assert processing.process(event.pk) == "already taken or done"


def test_the_sweep_reclaims_events_of_a_dead_worker_and_lost_deliveries(shop, handled):
    handled(lambda event: "done")
    past = timezone.now() - timedelta(minutes=30)
    held = make_event(shop, event_id="held", status=EventStatus.PROCESSING, locked_until=past, attempts=1)
    make_event(shop, event_id="lost", received_at=past)
    fresh = make_event(shop, event_id="fresh")
    assert tasks.sweep() == "2 events processed"
    statuses = dict(WebhookEvent.objects.values_list("event_id", "status"))
    assert statuses == {"held": "processed", "lost": "processed", "fresh": "received"}
    assert WebhookEvent.objects.get(pk=held.pk).attempts == 2
    assert fresh.pk


def test_the_generic_endpoint_can_ask_for_a_sync(
    tenant_a, make_connection, settings, django_capture_on_commit_callbacks
):
    shop = make_connection(
        tenant_a,
        "shopify",
        credentials={"shop_domain": "a.myshopify.com", "access_token": "x", HUB_WEBHOOK_SECRET: HUB_SECRET},
    )
    response = signed_generic(Client(), shop, {"id": "n-1", "event": "sync.requested", "streams": ["orders"]})
    assert response.status_code == 200
    event = WebhookEvent.objects.get()
    processing.handlers.cache_clear()
    processing.process(event.pk)
    event.refresh_from_db()
    assert event.status == EventStatus.PROCESSED, event.error
    run = SyncRun.objects.get()
    assert run.trigger == SyncTrigger.WEBHOOK and run.streams == ["orders"] and run.connection_id == shop.pk


def test_the_generic_sync_request_refuses_unknown_streams(tenant_a, make_connection):
    shop = make_connection(tenant_a, "shopify", credentials={HUB_WEBHOOK_SECRET: HUB_SECRET})
    event = make_event(shop, topic="sync.requested", provider="third-party", body=json.dumps({"streams": ["nope"]}))
    processing.handlers.cache_clear()
    processing.process(event.pk)
    event.refresh_from_db()
    assert event.status == EventStatus.PARKED and "streams" in event.error


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_deliveries_of_one_event_both_get_200_and_store_one(tenant_a, make_connection):
    from .conftest import SHOPIFY_SECRET

    shop = make_connection(
        tenant_a, "shopify", credentials={"shop_domain": "a.myshopify.com", "client_secret": SHOPIFY_SECRET}
    )
    body = json.dumps({"id": 5, "updated_at": "2026-11-20T10:00:00Z"}).encode()
    barrier = threading.Barrier(8)
    statuses: list[int] = []

    def post() -> None:
        try:
            barrier.wait()
            response = Client().post(
                f"/webhooks/shopify/{shop.uuid}/",
                body,
                content_type="application/json",
                HTTP_X_SHOPIFY_TOPIC="orders/updated",
                HTTP_X_SHOPIFY_HMAC_SHA256=shopify_signature(body),
                HTTP_X_SHOPIFY_WEBHOOK_ID="raced",
            )
            statuses.append(response.status_code)
        finally:
            db_connection.close()

    threads = [threading.Thread(target=post) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 8
    event = WebhookEvent.objects.get(event_id="raced")
    assert event.duplicates == 7
