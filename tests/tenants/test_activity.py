"""The activity stream: written after commit only, one tenant's entries never reach another,
polled with `after`, listed by the API, and pruned by `cleanup_activity`."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import transaction
from django.test import Client
from django.utils import timezone

from integrations.connectors.base import Connector, Page
from integrations.errors import Unavailable
from integrations.sync import run_sync
from tenants import activity
from tenants.models import Activity, ActivityKind, ActivityLevel, ApiKey
from webhooks import processing
from webhooks.models import EventStatus, WebhookEvent

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def add(tenant, message="Something happened", kind=ActivityKind.SYNC_COMPLETED, **fields) -> Activity:
    return Activity.objects.create(tenant=tenant, kind=kind, message=message, **fields)


@pytest.fixture
def owner(make_member, tenant_a) -> Client:
    client = Client()
    client.force_login(make_member(tenant_a))
    return client


# --- Recording -------------------------------------------------------------------------------------


def test_an_entry_is_written_once_the_transaction_commits(tenant_a, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        activity.record(tenant_a.pk, ActivityKind.SYNC_COMPLETED, "Sync #1 completed.", connection_id=7)
        assert not Activity.objects.exists()
    entry = Activity.objects.get()
    assert (entry.tenant_id, entry.kind, entry.message, entry.connection_id) == (
        tenant_a.pk,
        "sync.completed",
        "Sync #1 completed.",
        7,
    )


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_change_records_nothing(tenant_a):
    with pytest.raises(RuntimeError), transaction.atomic():
        activity.record(tenant_a.pk, ActivityKind.SYNC_COMPLETED, "never happened")
        raise RuntimeError("rolled back")
    assert not Activity.objects.exists()
    activity.record(tenant_a.pk, ActivityKind.SYNC_COMPLETED, "outside a transaction: at once")
    assert Activity.objects.get().message == "outside a transaction: at once"


def test_a_long_message_is_clipped_rather_than_refused(tenant_a, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        activity.record(tenant_a.pk, ActivityKind.SYNC_FAILED, "x" * 2000, level=ActivityLevel.ERROR)
    assert len(Activity.objects.get().message) == 500


class FailingConnector(Connector):
    streams = ("orders",)

    def read(self, stream, cursor, *, full=False):
        raise Unavailable("The platform answered 503.")
        yield Page(records=[], cursor={})


class EmptyConnector(Connector):
    streams = ("orders",)

    def read(self, stream, cursor, *, full=False):
        yield Page(records=[], cursor={"page": 1})


def test_a_finished_sync_run_is_in_the_activity(tenant_a, make_connection, django_capture_on_commit_callbacks):
    shop = make_connection(tenant_a, name="Alpha Shopify")
    with django_capture_on_commit_callbacks(execute=True):
        ok = run_sync(shop, connector=EmptyConnector(shop))
        failed = run_sync(shop, connector=FailingConnector(shop))
    entries = list(Activity.objects.for_tenant(tenant_a).order_by("id"))
    assert [e.kind for e in entries] == ["sync.completed", "sync.failed"]
    assert entries[0].subject == f"sync_run:{ok.pk}" and entries[0].connection_id == shop.pk
    assert "Alpha Shopify" in entries[1].message and "503" in entries[1].message
    assert entries[1].level == ActivityLevel.ERROR and entries[1].subject == f"sync_run:{failed.pk}"


@pytest.mark.django_db(transaction=True)
def test_a_drain_records_one_entry_per_connection_not_per_event(tenant_a, make_connection, monkeypatch):
    shop = make_connection(tenant_a, name="Alpha Shopify")
    monkeypatch.setattr(processing, "handlers", lambda: {("shopify", "orders/updated"): lambda event: "stored"})
    monkeypatch.setattr("webhooks.queue.rearm", lambda: None)
    for n in range(5):
        WebhookEvent.objects.create(
            tenant=tenant_a, connection=shop, provider="shopify", topic="orders/updated", event_id=f"e{n}", body="{}"
        )
    assert processing.drain(60) == (5, False)
    entry = Activity.objects.get()
    assert entry.kind == ActivityKind.WEBHOOK_PROCESSED and entry.data["count"] == 5
    assert entry.message == "5 webhook events from “Alpha Shopify” processed (orders/updated)."


@pytest.mark.django_db(transaction=True)
def test_each_event_is_an_entry_when_the_setting_asks(tenant_a, make_connection, monkeypatch, settings):
    settings.WEBHOOK_ACTIVITY_PER_EVENT = True
    shop = make_connection(tenant_a)
    monkeypatch.setattr(processing, "handlers", lambda: {("shopify", "orders/updated"): lambda event: "stored"})
    monkeypatch.setattr("webhooks.queue.rearm", lambda: None)
    for n in range(3):
        WebhookEvent.objects.create(
            tenant=tenant_a, connection=shop, provider="shopify", topic="orders/updated", event_id=f"e{n}", body="{}"
        )
    processing.drain(60)
    assert Activity.objects.filter(kind=ActivityKind.WEBHOOK_PROCESSED).count() == 3


def test_a_parked_event_is_an_error_entry(tenant_a, make_connection, monkeypatch, django_capture_on_commit_callbacks):
    from webhooks.errors import Unprocessable

    shop = make_connection(tenant_a, name="Alpha Shopify")

    def refuse(event):
        raise Unprocessable("the order has no line items")

    monkeypatch.setattr(processing, "handlers", lambda: {("shopify", "orders/updated"): refuse})
    event = WebhookEvent.objects.create(
        tenant=tenant_a, connection=shop, provider="shopify", topic="orders/updated", event_id="p1", body="{}"
    )
    with django_capture_on_commit_callbacks(execute=True):
        processing.process(event.pk)
    entry = Activity.objects.get()
    assert entry.kind == ActivityKind.WEBHOOK_PARKED and entry.level == ActivityLevel.ERROR
    assert entry.subject == f"webhook_event:{event.pk}" and "no line items" in entry.message
    assert WebhookEvent.objects.get().status == EventStatus.PARKED


def test_a_payment_outcome_is_recorded_once(tenant_a, make_connection, django_capture_on_commit_callbacks):
    from payments.models import Payment, PaymentStatus

    stripe = make_connection(tenant_a, "stripe", name="Stripe")
    with django_capture_on_commit_callbacks(execute=True):
        payment = Payment.objects.create(tenant=tenant_a, connection=stripe, amount=Decimal("25"), currency="USD")
        payment.status = PaymentStatus.SUCCEEDED
        payment.save()
        payment.description = "saved again, same status"
        payment.save()
    entry = Activity.objects.get()
    assert entry.kind == ActivityKind.PAYMENT_PROCESSED and entry.subject == f"payment:{payment.pk}"
    assert entry.message == f"Payment #{payment.pk} of 25.00 USD: succeeded"


def test_a_sent_campaign_is_recorded(tenant_a, make_connection, django_capture_on_commit_callbacks):
    from campaigns.models import Campaign
    from campaigns.signals import campaign_sent

    sendgrid = make_connection(tenant_a, "sendgrid", name="SendGrid")
    campaign = Campaign.objects.create(tenant=tenant_a, name="Spring sale", channel="email", connection=sendgrid)
    with django_capture_on_commit_callbacks(execute=True):
        campaign_sent.send(sender=Campaign, tenant_id=tenant_a.pk, campaign_id=campaign.pk)
    entry = Activity.objects.get()
    assert entry.kind == ActivityKind.CAMPAIGN_SENT and entry.connection_id == sendgrid.pk
    assert "Spring sale" in entry.message


# --- The dashboard feed ----------------------------------------------------------------------------


def feed(client, **params) -> dict:
    response = client.get("/dashboard/activity/feed", params)
    assert response.status_code == 200
    return json.loads(response.content)


def test_the_feed_shows_only_the_clients_own_entries(owner, tenant_a, tenant_b):
    mine = add(tenant_a, "ours")
    add(tenant_b, "theirs")
    body = feed(owner)
    assert [item["message"] for item in body["items"]] == ["ours"]
    assert body["last_id"] == mine.pk


def test_polling_after_an_id_returns_only_newer_entries(owner, tenant_a, tenant_b):
    first = add(tenant_a, "first")
    add(tenant_b, "another client's, in between")
    second = add(tenant_a, "second")
    third = add(tenant_a, "third")
    body = feed(owner, after=first.pk)
    assert [item["id"] for item in body["items"]] == [third.pk, second.pk]
    assert body["last_id"] == third.pk
    assert feed(owner, after=third.pk) == {"items": [], "last_id": third.pk, "more": False}


def test_a_poll_returns_at_most_fifty_newest_and_says_more_were_left_out(owner, tenant_a):
    Activity.objects.bulk_create(
        [Activity(tenant=tenant_a, kind=ActivityKind.SYNC_COMPLETED, message=f"n{n}") for n in range(60)]
    )
    body = feed(owner, after=0)
    assert len(body["items"]) == 50 and body["more"] is True
    assert body["items"][0]["message"] == "n59"


def test_the_feed_refuses_an_after_that_is_not_an_id(owner):
    assert owner.get("/dashboard/activity/feed", {"after": "abc"}).status_code == 400


def test_the_feed_needs_a_signed_in_member(client):
    assert client.get("/dashboard/activity/feed").status_code == 302


def test_the_overview_shows_the_latest_entries_and_the_polling_widget(owner, tenant_a, tenant_b):
    latest = add(tenant_a, "Sync #4 of “Alpha Shopify” completed: 3 created.")
    add(tenant_b, "Beta's secret")
    content = owner.get("/dashboard/").content.decode()
    assert "Sync #4 of “Alpha Shopify” completed" in content
    assert "Beta's secret" not in content
    assert f'data-after="{latest.pk}"' in content and "tenants/activity_feed.js" in content


# --- The admin ---------------------------------------------------------------------------------------


def test_the_admin_feed_is_for_staff_and_filters_by_client(client, superadmin, make_member, tenant_a, tenant_b):
    add(tenant_a, "alpha")
    add(tenant_b, "beta")
    url = "/admin/tenants/activity/feed/"
    member = Client()
    member.force_login(make_member(tenant_a))
    assert member.get(url).status_code == 302  # to the admin login
    client.force_login(superadmin)
    everything = json.loads(client.get(url).content)
    assert {item["message"] for item in everything["items"]} == {"alpha", "beta"}
    only_b = json.loads(client.get(url, {"tenant": tenant_b.pk}).content)
    assert [(item["message"], item["tenant"]["name"]) for item in only_b["items"]] == [("beta", "Beta Wares")]


def test_the_admin_activity_list_has_the_live_panel(client, superadmin, tenant_a):
    add(tenant_a, "listed here")
    client.force_login(superadmin)
    content = client.get("/admin/tenants/activity/").content.decode()
    assert "listed here" in content and "data-activity-feed" in content


# --- The API -----------------------------------------------------------------------------------------


def api(raw_key: str, path: str = "/api/v1/activity", **params):
    return Client().get(path, params, HTTP_AUTHORIZATION=f"Bearer {raw_key}")


def test_the_api_lists_the_keys_tenant_only_newest_first(tenant_a, tenant_b, api_key):
    older = add(tenant_a, "older", connection_id=3)
    newer = add(tenant_a, "newer")
    theirs = add(tenant_b, "theirs")
    body = api(api_key[1]).json()
    assert [row["id"] for row in body["results"]] == [newer.pk, older.pk]
    assert body["results"][1]["connection"] == 3
    assert api(api_key[1], f"/api/v1/activity/{theirs.pk}").status_code == 404
    assert api(api_key[1], f"/api/v1/activity/{older.pk}").json()["message"] == "older"


def test_the_api_is_cursor_paginated_and_takes_after(tenant_a, api_key):
    entries = [add(tenant_a, f"n{n}") for n in range(5)]
    first = api(api_key[1], page_size=2).json()
    assert [row["message"] for row in first["results"]] == ["n4", "n3"] and "cursor=" in first["next"]
    second = Client().get(first["next"], HTTP_AUTHORIZATION=f"Bearer {api_key[1]}").json()
    assert [row["message"] for row in second["results"]] == ["n2", "n1"]
    assert [row["message"] for row in api(api_key[1], after=entries[2].pk).json()["results"]] == ["n4", "n3"]


def test_the_api_needs_integrations_read(tenant_a):
    _, raw = ApiKey.generate(tenant_a, "orders only", scopes=["orders:read"])
    response = api(raw)
    assert response.status_code == 403
    assert response.json()["error"]["details"] == {"required_scope": "integrations:read"}


def test_a_key_without_payments_read_sees_no_payment_entries(tenant_a):
    add(tenant_a, "sync", kind=ActivityKind.SYNC_COMPLETED)
    payment = add(tenant_a, "Payment #1 of 25.00 USD: succeeded", kind=ActivityKind.PAYMENT_PROCESSED)
    _, raw = ApiKey.generate(tenant_a, "integrations only", scopes=["integrations:read"])
    assert [row["message"] for row in api(raw).json()["results"]] == ["sync"]
    assert api(raw, f"/api/v1/activity/{payment.pk}").status_code == 404


def test_the_api_filters_by_kind_and_refuses_unknown_ones(tenant_a, api_key):
    add(tenant_a, "ok", kind=ActivityKind.SYNC_COMPLETED)
    add(tenant_a, "bad", kind=ActivityKind.SYNC_FAILED, level=ActivityLevel.ERROR)
    assert [row["message"] for row in api(api_key[1], kind="sync.failed").json()["results"]] == ["bad"]
    assert [row["message"] for row in api(api_key[1], level="error").json()["results"]] == ["bad"]
    assert api(api_key[1], kind="nope").status_code == 400


# --- Retention ---------------------------------------------------------------------------------------


def test_cleanup_deletes_only_old_rows_in_batches(tenant_a, make_connection, settings):
    settings.ACTIVITY_RETENTION_DAYS = 90
    settings.WEBHOOK_REJECTED_RETENTION_DAYS = 30
    now = timezone.now()
    old = [add(tenant_a, f"old {n}") for n in range(5)]
    Activity.objects.filter(pk__in=[a.pk for a in old]).update(created_at=now - timedelta(days=91))
    kept = add(tenant_a, "recent")
    Activity.objects.filter(pk=kept.pk).update(created_at=now - timedelta(days=89))
    shop = make_connection(tenant_a)

    def event(status, days, event_id=""):
        return WebhookEvent.objects.create(
            tenant=tenant_a,
            connection=shop,
            provider="shopify",
            status=status,
            signature_valid=status != EventStatus.REJECTED,
            event_id=event_id,
            received_at=now - timedelta(days=days),
        )

    event(EventStatus.REJECTED, 31)
    recent_rejected = event(EventStatus.REJECTED, 29)
    old_processed = event(EventStatus.PROCESSED, 400, event_id="kept")
    out = StringIO()
    call_command("cleanup_activity", "--batch-size", "2", stdout=out)
    assert list(Activity.objects.values_list("pk", flat=True)) == [kept.pk]
    assert set(WebhookEvent.objects.values_list("pk", flat=True)) == {recent_rejected.pk, old_processed.pk}
    assert out.getvalue().strip() == (
        "Deleted 5 activity entries older than 90 days (3 batches) and 1 rejected webhook deliveries older "
        "than 30 days (1 batches)."
    )


def test_cleanup_runs_daily_on_the_task_worker():
    from config.tasks import STANDING

    assert STANDING["activity-cleanup"] == ("config.tasks.cleanup_activity", 24 * 60)
    assert STANDING["alerts-check"] == ("integrations.alerts.check", 1)
