"""Keeping a connection's subscriptions on its platform in step (against an in-memory registrar;
the real registrars are tested against the fake platforms in tests/integrations)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.utils import timezone
from django_q.models import OrmQ

from integrations.connectors.base import CheckResult
from integrations.errors import AuthError
from integrations.models import Connection, SyncRun, SyncStatus, SyncTrigger
from integrations.services import connection_tested
from webhooks import registration
from webhooks.health import delivery_health
from webhooks.models import WebhookEvent, WebhookSubscription

ADDRESS_BASE = "https://hub.example.com"


@dataclass
class Hook:
    remote_id: str
    topic: str
    address: str
    active: bool = True


class FakePlatform:
    """What a platform remembers of its webhook subscriptions."""

    def __init__(self):
        self.hooks: dict[str, Hook] = {}
        self.next_id = 1
        self.fail: Exception | None = None

    def add(self, topic, address):
        hook = Hook(str(self.next_id), topic, address)
        self.hooks[hook.remote_id] = hook
        self.next_id += 1
        return hook


@pytest.fixture
def platform(monkeypatch, settings):
    settings.PUBLIC_BASE_URL = ADDRESS_BASE
    remote = FakePlatform()

    class Registrar:
        topics = ("orders/create", "orders/updated", "app/uninstalled")

        def __init__(self, connector):
            self.connector = connector

        def _check(self):
            if remote.fail:
                raise remote.fail

        def list(self):
            self._check()
            return list(remote.hooks.values())

        def create(self, topic, address):
            self._check()
            return remote.add(topic, address)

        def delete(self, remote_id):
            self._check()
            remote.hooks.pop(remote_id, None)

    monkeypatch.setattr(registration, "registrars", lambda: {"shopify": Registrar})
    return remote


def test_register_creates_the_topics_and_records_them(shop, platform):
    outcome = registration.register(shop)
    address = f"{ADDRESS_BASE}/webhooks/shopify/{shop.uuid}/"
    assert outcome.summary == "3 topics registered (3 new, 0 removed)"
    assert sorted(h.topic for h in platform.hooks.values()) == ["app/uninstalled", "orders/create", "orders/updated"]
    assert {h.address for h in platform.hooks.values()} == {address}
    rows = WebhookSubscription.objects.filter(connection=shop)
    assert sorted(rows.values_list("topic", flat=True)) == ["app/uninstalled", "orders/create", "orders/updated"]
    assert all(r.tenant_id == shop.tenant_id and r.address == address for r in rows)


def test_register_is_idempotent_and_tidies_up(shop, platform):
    registration.register(shop)
    address = f"{ADDRESS_BASE}/webhooks/shopify/{shop.uuid}/"
    platform.add("orders/create", address)  # a copy of a topic
    platform.add("carts/update", address)  # a topic the hub no longer wants
    other = platform.add("orders/create", "https://someone-else.example.com/hook")  # not ours: left alone
    again = registration.register(shop)
    assert again.created == [] and sorted(again.removed) == ["carts/update", "orders/create"]
    assert len(platform.hooks) == 4 and other.remote_id in platform.hooks
    third = registration.register(shop)
    assert (third.created, third.removed) == ([], [])
    assert WebhookSubscription.objects.filter(connection=shop).count() == 3


def test_a_hook_the_platform_disabled_is_replaced(shop, platform):
    registration.register(shop)
    disabled = next(h for h in platform.hooks.values() if h.topic == "orders/updated")
    disabled.active = False  # WooCommerce disables a webhook after repeated failed deliveries
    outcome = registration.register(shop)
    assert outcome.created == ["orders/updated"] and outcome.removed == ["orders/updated"]
    assert disabled.remote_id not in platform.hooks
    replacement = WebhookSubscription.objects.get(connection=shop, topic="orders/updated")
    assert replacement.remote_id != disabled.remote_id and platform.hooks[replacement.remote_id].active


def test_register_without_a_public_address_does_nothing(shop, platform, settings):
    settings.PUBLIC_BASE_URL = ""
    outcome = registration.register(shop)
    assert "PUBLIC_BASE_URL" in outcome.summary
    assert not platform.hooks and not WebhookSubscription.objects.exists()


def test_a_platform_error_is_reported_not_raised(shop, platform):
    platform.fail = AuthError("Shopify refused the access token.")
    outcome = registration.register(shop)
    assert outcome.summary == "failed: Shopify refused the access token."
    assert not WebhookSubscription.objects.exists()


def test_woocommerce_gets_a_generated_secret_before_registering(woo, monkeypatch, settings):
    settings.PUBLIC_BASE_URL = ADDRESS_BASE
    seen = {}

    class Registrar:
        topics = ("order.updated",)

        def __init__(self, connector):
            seen["secret"] = connector.credentials.get("webhook_secret")

        def list(self):
            return []

        def create(self, topic, address):
            return Hook("9", topic, address)

    monkeypatch.setattr(registration, "registrars", lambda: {"woocommerce": Registrar})
    woo.credentials = {k: v for k, v in woo.credentials.items() if k != "webhook_secret"}
    woo.save()
    registration.register(woo)
    stored = Connection.objects.get(pk=woo.pk).credentials["webhook_secret"]
    assert len(stored) >= 40 and seen["secret"] == stored


def test_a_successful_test_queues_registration(shop, platform, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        connection_tested.send(sender=Connection, connection=shop, result=CheckResult(ok=True))
        connection_tested.send(sender=Connection, connection=shop, result=CheckResult(ok=False))
    assert [task.task["func"] for task in OrmQ.objects.all()] == ["webhooks.tasks.register_webhooks"]


def test_deleting_a_connection_deletes_its_hooks_on_the_platform(shop, platform, django_capture_on_commit_callbacks):
    registration.register(shop)
    assert len(platform.hooks) == 3
    with django_capture_on_commit_callbacks(execute=True):
        shop.delete()
    assert platform.hooks == {}


def test_unregister_forgets_the_subscriptions(shop, platform):
    registration.register(shop)
    outcome = registration.unregister(shop)
    assert sorted(outcome.removed) == ["app/uninstalled", "orders/create", "orders/updated"]
    assert platform.hooks == {} and not WebhookSubscription.objects.exists()


def _finished_run(connection, trigger, created, updated):
    now = timezone.now()
    run = SyncRun.objects.create(
        tenant=connection.tenant,
        connection=connection,
        trigger=trigger,
        status=SyncStatus.RUNNING,
        counts={"orders": {"created": created, "updated": updated, "unchanged": 50, "failed": 0}},
        started_at=now,
    )
    run.status, run.finished_at = SyncStatus.SUCCEEDED, now
    run.save()
    run.refresh_from_db()
    return run


def test_reconciliation_counts_what_webhooks_missed(shop, platform):
    before = _finished_run(shop, SyncTrigger.SCHEDULE, 3, 4)
    assert before.missed_by_webhooks is None  # no webhooks registered: nothing to have missed
    registration.register(shop)
    scheduled = _finished_run(shop, SyncTrigger.SCHEDULE, 2, 5)
    manual = _finished_run(shop, SyncTrigger.MANUAL, 9, 9)
    assert scheduled.missed_by_webhooks == 7
    assert manual.missed_by_webhooks is None
    row = next(r for r in delivery_health() if r["connection"] == shop)
    assert row["missed_by_webhooks"] == 7
    assert row["topics"] == ["app/uninstalled", "orders/create", "orders/updated"]


def test_delivery_health_counts_by_status(shop, woo):
    for status, n in [("processed", 3), ("rejected", 2), ("parked", 1)]:
        for i in range(n):
            WebhookEvent.objects.create(
                tenant=shop.tenant,
                connection=shop,
                provider="shopify",
                topic="orders/updated",
                event_id="" if status == "rejected" else f"{status}-{i}",
                status=status,
                signature_valid=status != "rejected",
                duplicates=1,
            )
    (row,) = delivery_health([shop.pk, woo.pk])
    assert (row["received"], row["processed"], row["rejected"], row["parked"]) == (4, 3, 2, 1)
    assert row["duplicates"] == 6 and row["last_received"] is not None
