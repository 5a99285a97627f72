"""Alerts: each condition opens one incident and sends one email however often the check runs,
resolves when it clears, and opens a new one when it returns; SMS and webhook notices."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.utils import timezone

from campaigns.models import Message
from campaigns.providers import PROVIDERS
from integrations import alerts
from integrations.models import ConnectionStatus, Incident, IncidentKind, SyncFrequency, SyncRun, SyncStatus
from tests.campaigns import fake_provider
from tests.fakes.hook_receiver import HookReceiver, fake_dns
from webhooks.models import EventStatus, WebhookEvent

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def quiet_channels(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.ALERT_SMS_CONNECTION_ID = None
    settings.ALERT_SMS_TO = []
    settings.ALERT_WEBHOOK_URL = ""
    settings.PUBLIC_BASE_URL = "https://hub.example.com"


@pytest.fixture
def admins(db):
    users = get_user_model().objects
    users.create_superuser("root", "root@example.com", "pw-for-tests-1")
    users.create_superuser("ops", "ops@example.com", "pw-for-tests-1")
    users.create_superuser("gone", "gone@example.com", "pw-for-tests-1", is_active=False)
    users.create_superuser("nomail", "", "pw-for-tests-1")
    users.create_user("staff", "staff@example.com", "pw-for-tests-1", is_staff=True)


@pytest.fixture
def shop(tenant_a, make_connection):
    return make_connection(tenant_a, "shopify", name="Alpha Shopify", status=ConnectionStatus.CONNECTED)


def incidents(kind=None):
    rows = Incident.objects.all() if kind is None else Incident.objects.filter(kind=kind)
    return list(rows.order_by("opened_at", "pk"))


def fail(connection, times: int) -> None:
    connection.consecutive_failures = times
    connection.failing_since = timezone.now() - timedelta(minutes=40) if times else None
    connection.last_error = "The platform answered 503." if times else ""
    connection.save()


# --- (a) a connection failing N times in a row ------------------------------------------------------


def test_a_connection_failing_three_times_in_a_row_opens_one_incident_and_sends_one_email(admins, shop, tenant_a):
    fail(shop, 3)
    for _ in range(4):
        alerts.check()
    [incident] = incidents(IncidentKind.CONNECTION_FAILING)
    assert incident.is_open and incident.subject == f"connection:{shop.pk}" and incident.notified_at
    assert incident.tenant == tenant_a and incident.connection == shop
    [email] = mail.outbox
    assert sorted(email.to) == ["ops@example.com", "root@example.com"]
    assert email.subject == "[Hub alert] Alpha Shopify (Alpha Goods) failed 3 times in a row"
    assert "Client: Alpha Goods" in email.body
    assert f"Connection: Alpha Shopify (#{shop.pk}, Shopify)" in email.body
    assert f"Since: {shop.failing_since:%Y-%m-%d %H:%M} UTC" in email.body
    assert "The platform answered 503." in email.body
    assert f"https://hub.example.com/admin/integrations/incident/{incident.pk}/change/" in email.body


def test_two_failures_in_a_row_are_not_yet_an_incident(admins, shop):
    fail(shop, 2)
    alerts.check()
    assert not incidents() and not mail.outbox


def test_the_incident_resolves_when_the_connection_works_again_and_reopens_when_it_fails_again(admins, shop):
    fail(shop, 3)
    alerts.check()
    fail(shop, 0)
    alerts.check()
    alerts.check()
    [resolved] = incidents()
    assert resolved.resolved_at is not None
    assert [m.subject.split("]")[0] for m in mail.outbox] == ["[Hub alert", "[Hub resolved"]
    assert "Resolved:" in mail.outbox[1].body
    fail(shop, 4)
    alerts.check()
    alerts.check()
    first, second = incidents()
    assert first.pk == resolved.pk and second.is_open and second.pk != first.pk
    assert len(mail.outbox) == 3 and mail.outbox[2].subject.startswith("[Hub alert]")


def test_a_disabled_connection_is_no_incident(admins, shop):
    fail(shop, 5)
    shop.enabled = False
    shop.save()
    alerts.check()
    assert not incidents()


# --- (b) a sync overdue -----------------------------------------------------------------------------


def finished_run(connection, hours_ago: float, status=SyncStatus.SUCCEEDED) -> SyncRun:
    at = timezone.now() - timedelta(hours=hours_ago)
    return SyncRun.objects.create(
        tenant=connection.tenant, connection=connection, status=status, queued_at=at, started_at=at, finished_at=at
    )


def test_a_connection_without_a_success_for_twice_its_period_is_overdue_once(admins, shop):
    shop.sync_frequency = SyncFrequency.HOURLY
    shop.save()
    finished_run(shop, 3)
    finished_run(shop, 1, SyncStatus.FAILED)
    alerts.check()
    alerts.check()
    [incident] = incidents(IncidentKind.SYNC_OVERDUE)
    assert incident.title == "Alpha Shopify (Alpha Goods) has not synced for 3 h"
    assert "Sync frequency: hourly" in incident.details
    assert len(mail.outbox) == 1
    finished_run(shop, 0)
    alerts.check()
    assert incidents(IncidentKind.SYNC_OVERDUE)[0].resolved_at is not None
    assert len(mail.outbox) == 2


def test_a_connection_within_twice_its_period_is_not_overdue(admins, shop):
    finished_run(shop, 1.5)
    alerts.check()
    assert not incidents()


@pytest.mark.parametrize(
    "change",
    [
        {"sync_frequency": SyncFrequency.MANUAL},
        {"enabled": False},
        {"is_demo": True},
        {"status": ConnectionStatus.UNTESTED},
    ],
)
def test_only_scheduled_enabled_real_connections_can_be_overdue(admins, shop, change):
    for name, value in change.items():
        setattr(shop, name, value)
    shop.save()
    finished_run(shop, 48)
    alerts.check()
    assert not incidents(IncidentKind.SYNC_OVERDUE)


def test_a_demo_clients_connection_is_never_overdue(admins, shop, tenant_a):
    tenant_a.is_demo = True
    tenant_a.save()
    finished_run(shop, 48)
    alerts.check()
    assert not incidents()


# --- (c) webhook backlog ----------------------------------------------------------------------------


def event(connection, **fields) -> WebhookEvent:
    fields.setdefault("event_id", f"e-{WebhookEvent.objects.count()}")
    return WebhookEvent.objects.create(
        tenant=connection.tenant, connection=connection, provider="shopify", topic="orders/updated", **fields
    )


def test_events_waiting_longer_than_the_limit_are_a_backlog_incident(admins, shop, settings):
    settings.WEBHOOK_BACKLOG_ALERT_MINUTES = 15
    waiting = event(shop, received_at=timezone.now() - timedelta(minutes=20))
    event(shop)
    alerts.check()
    alerts.check()
    [incident] = incidents(IncidentKind.WEBHOOK_BACKLOG)
    assert incident.subject == "webhooks" and incident.tenant is None
    assert incident.title == "Webhook backlog: 2 events waiting, 0 retries overdue"
    assert "Alpha Shopify (Alpha Goods): 2" in incident.details
    assert len(mail.outbox) == 1 and "Client:" not in mail.outbox[0].body
    WebhookEvent.objects.filter(pk=waiting.pk).update(status=EventStatus.PROCESSED)
    alerts.check()
    assert incidents(IncidentKind.WEBHOOK_BACKLOG)[0].resolved_at is not None
    assert len(mail.outbox) == 2


def test_too_many_waiting_events_are_a_backlog_even_when_fresh(admins, shop, settings):
    settings.WEBHOOK_BACKLOG_ALERT_COUNT = 2
    for _ in range(3):
        event(shop)
    alerts.check()
    assert len(incidents(IncidentKind.WEBHOOK_BACKLOG)) == 1


def test_retries_long_overdue_are_a_backlog(admins, shop):
    event(shop, status=EventStatus.RETRYING, next_attempt_at=timezone.now() - timedelta(hours=1))
    alerts.check()
    assert incidents(IncidentKind.WEBHOOK_BACKLOG)[0].title.endswith("1 retries overdue")


def test_a_few_fresh_events_are_no_backlog(admins, shop):
    event(shop)
    event(shop, status=EventStatus.RETRYING, next_attempt_at=timezone.now() + timedelta(minutes=1))
    alerts.check()
    assert not incidents()


# --- (d) parked events ------------------------------------------------------------------------------


def test_parked_events_are_one_incident_per_connection(admins, shop, tenant_b, make_connection):
    other = make_connection(tenant_b, "shopify", name="Beta Shopify")
    event(shop, status=EventStatus.PARKED)
    event(shop, status=EventStatus.PARKED)
    parked_b = event(other, status=EventStatus.PARKED)
    alerts.check()
    alerts.check()
    found = {i.connection_id: i for i in incidents(IncidentKind.WEBHOOK_PARKED)}
    assert set(found) == {shop.pk, other.pk}
    assert found[shop.pk].title == "2 parked webhook events of Alpha Shopify (Alpha Goods)"
    assert len(mail.outbox) == 2
    WebhookEvent.objects.filter(pk=parked_b.pk).update(status=EventStatus.PROCESSED)
    alerts.check()
    assert Incident.objects.get(connection=other).resolved_at is not None
    assert Incident.objects.get(connection=shop).is_open
    assert len(mail.outbox) == 3


# --- Notices ----------------------------------------------------------------------------------------


def test_an_email_that_could_not_be_sent_is_tried_again_by_the_next_check(admins, shop, monkeypatch):
    fail(shop, 3)

    def broken(*args, **kwargs):
        raise OSError("mail server down")

    monkeypatch.setattr(alerts, "send_mail", broken)
    alerts.check()
    [incident] = incidents()
    assert incident.notified_at is None and "mail server down" in incident.notify_error
    monkeypatch.undo()
    alerts.check()
    alerts.check()
    incident.refresh_from_db()
    assert incident.notified_at is not None and incident.notify_error == ""
    assert len(mail.outbox) == 1


@pytest.fixture
def office(monkeypatch) -> fake_provider.PostOffice:
    post = fake_provider.PostOffice()
    monkeypatch.setattr(fake_provider, "OFFICE", post)
    monkeypatch.setitem(PROVIDERS, "twilio", "tests.campaigns.fake_provider.FakeSmsProvider")
    return post


def test_an_incident_goes_by_sms_through_the_configured_twilio_connection(
    admins, shop, settings, office, make_tenant, make_connection
):
    operator = make_tenant("Hub operator")
    twilio = make_connection(operator, "twilio", name="Ops SMS", credentials={"account_sid": "AC1", "auth_token": "t"})
    settings.ALERT_SMS_CONNECTION_ID = twilio.pk
    settings.ALERT_SMS_TO = ["+14155552671", "+442079460958"]
    fail(shop, 3)
    alerts.check()
    alerts.check()
    assert sorted(sms.to for sms in office.sms) == ["+14155552671", "+442079460958"]
    assert office.sms[0].body == "[Hub alert] Alpha Shopify (Alpha Goods) failed 3 times in a row"
    assert Message.objects.for_tenant(operator).count() == 2
    assert Incident.objects.get().notify_error == ""
    fail(shop, 0)
    alerts.check()
    assert len(office.sms) == 4 and office.sms[-1].body.startswith("[Hub resolved]")


def test_an_sms_that_fails_is_noted_on_the_incident_and_the_email_still_goes(admins, shop, settings):
    settings.ALERT_SMS_CONNECTION_ID = 999_999
    settings.ALERT_SMS_TO = ["+14155552671"]
    fail(shop, 3)
    alerts.check()
    incident = Incident.objects.get()
    assert "999999 is no connection" in incident.notify_error
    assert incident.notified_at is not None and len(mail.outbox) == 1


def test_an_incident_is_posted_to_the_alert_webhook(admins, shop, settings):
    settings.INTEGRATIONS_ALLOW_PRIVATE_URLS = True
    with HookReceiver().running() as receiver:
        settings.ALERT_WEBHOOK_URL = receiver.url
        fail(shop, 3)
        alerts.check()
        alerts.check()
        fail(shop, 0)
        alerts.check()
    assert len(receiver.requests) == 2
    opened, resolved = (json.loads(r.body) for r in receiver.requests)
    assert opened["event"] == "incident.opened" and resolved["event"] == "incident.resolved"
    assert opened["kind"] == "connection_failing" and opened["connection"] == shop.pk
    assert opened["tenant"] == shop.tenant.slug and opened["url"].startswith("https://hub.example.com/admin/")


def test_the_alert_webhook_refuses_a_private_address_unless_allowed(admins, shop, settings):
    settings.INTEGRATIONS_ALLOW_PRIVATE_URLS = False
    with HookReceiver().running() as receiver:
        settings.ALERT_WEBHOOK_URL = receiver.url
        fail(shop, 3)
        alerts.check()
    assert receiver.requests == []
    incident = Incident.objects.get()
    assert incident.notify_error.startswith("webhook: ")
    assert len(mail.outbox) == 1  # the email went, so the opening counts as announced
    assert incident.notified_at is not None


def test_a_name_that_resolves_to_loopback_is_refused_on_the_connected_address(admins, shop, settings, monkeypatch):
    fake_dns(monkeypatch, {"alerts.example.test": "127.0.0.1"})
    settings.INTEGRATIONS_ALLOW_PRIVATE_URLS = False
    with HookReceiver().running() as receiver:
        settings.ALERT_WEBHOOK_URL = f"https://alerts.example.test:{receiver.port}/alerts"
        fail(shop, 3)
        alerts.check()
    assert receiver.requests == []
    assert "127.0.0.1, a private or loopback address" in Incident.objects.get().notify_error


# --- Admin ------------------------------------------------------------------------------------------


def test_the_admin_lists_incidents_with_state_and_kind_filters(client, superadmin, shop):
    fail(shop, 3)
    alerts.check()
    fail(shop, 0)
    alerts.check()
    fail(shop, 3)
    alerts.check()
    client.force_login(superadmin)

    def rows(**params) -> list[str]:
        content = client.get("/admin/integrations/incident/", params).content.decode()
        return [cell.split("</td>")[0] for cell in content.split('<td class="field-state">')[1:]]

    assert rows() == ['<strong style="color:#b42318">open</strong>', "resolved"]
    assert rows(open="1") == ['<strong style="color:#b42318">open</strong>']
    assert rows(open="0") == ["resolved"]
    assert rows(kind__exact="webhook_parked") == []


def test_the_connection_page_shows_its_incidents(client, superadmin, shop):
    fail(shop, 3)
    alerts.check()
    client.force_login(superadmin)
    content = client.get(f"/admin/integrations/connection/{shop.pk}/change/").content.decode()
    assert "Alpha Shopify (Alpha Goods) failed 3 times in a row" in content
    assert "Connection failing repeatedly" in content
