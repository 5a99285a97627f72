"""Sending campaigns (campaigns.sending) through the fake post office: who gets what, exactly once,
whatever stops the send; pause, resume, cancel; consent; A/B subjects; figures; the cron command
and the campaign.sent hook."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from campaigns import consent, sending
from campaigns.models import (
    Campaign,
    CampaignStatus,
    Message,
    MessageStatus,
    Recipient,
    RecipientState,
    Segment,
    Suppression,
    SuppressionReason,
)
from commerce.models import Customer
from integrations.errors import AuthError, Unavailable
from webhooks.models import HookDelivery, HookSubscription

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def public_address(settings):
    settings.PUBLIC_BASE_URL = "https://hub.example.com"


@pytest.fixture(autouse=True)
def queue(monkeypatch):
    """Campaigns queued for sending, instead of the task cluster."""
    queued: list[int] = []
    monkeypatch.setattr(sending, "_enqueue", queued.append)
    return queued


@pytest.fixture
def shop(tenant_a, make_connection):
    return make_connection(tenant_a, "shopify")


def customers(shop, n, *, start=0, phone=False):
    Customer.objects.bulk_create(
        [
            Customer(
                tenant=shop.tenant,
                connection=shop,
                external_id=f"c{i}",
                email=f"person{i}@example.com",
                phone=f"+1555{i:07d}" if phone else "",
                first_name=f"P{i}",
            )
            for i in range(start, start + n)
        ]
    )


def campaign(tenant, connection, **kwargs):
    segment = kwargs.pop("segment", None) or Segment.objects.create(
        tenant=tenant, name=f"All {Segment.objects.count()}"
    )
    defaults = {
        "name": "Spring sale",
        "channel": "sms" if connection.platform == "twilio" else "email",
        "subject": "Hello {{ first_name }}",
        "html": "<p>Hi {{ first_name }}, use {{ discount_code }}</p>",
        "body": "Hi {{ first_name }}, use {{ discount_code }}",
        "discount_code": "SPRING10",
    }
    defaults.update(kwargs)
    return Campaign.objects.create(tenant=tenant, connection=connection, segment=segment, **defaults)


def send_now(item):
    sending.schedule(item)
    return sending.run(item.pk)


def test_an_email_campaign_goes_once_to_each_person_with_merge_fields_and_unsubscribe(
    tenant_a, shop, make_connection, sendgrid_a, office
):
    customers(shop, 4)
    woo = make_connection(tenant_a, "woocommerce")
    Customer.objects.create(tenant=tenant_a, connection=woo, external_id="w1", email="PERSON1@example.com")
    consent.suppress(tenant_a.pk, "email", "person3@example.com", SuppressionReason.UNSUBSCRIBED)
    item = campaign(tenant_a, sendgrid_a)

    assert send_now(item) == "sent"

    item.refresh_from_db()
    assert item.status == CampaignStatus.SENT and item.finished_at
    assert sorted(m.to for m in office.emails) == ["person0@example.com", "person1@example.com", "person2@example.com"]
    first = next(m for m in office.emails if m.to == "person0@example.com")
    assert first.subject == "Hello P0"
    assert "Hi P0, use SPRING10" in first.html and "Unsubscribe" in first.html
    recipient = Recipient.objects.get(campaign=item, address="person0@example.com")
    assert consent.unsubscribe_url(recipient) in first.html and consent.unsubscribe_url(recipient) in first.text
    assert first.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert consent.unsubscribe_url(recipient) in first.headers["List-Unsubscribe"]
    figures = sending.stats(item)
    assert figures["recipients"] == 4 and figures["sent"] == 3 and figures["suppressed"] == 1
    assert Recipient.objects.get(campaign=item, address="person3@example.com").state == RecipientState.SUPPRESSED
    assert Message.objects.filter(purpose__startswith=f"campaign:{item.pk}:").count() == 3


def test_an_sms_campaign_ends_with_the_opt_out_line(tenant_a, shop, twilio_a, office):
    customers(shop, 2, phone=True)
    item = campaign(tenant_a, twilio_a, body="{{ first_name }}: 20% off today")

    send_now(item)

    assert sorted(m.body for m in office.sms) == [
        f"P0: 20% off today\n{consent.SMS_OPT_OUT_FOOTER}",
        f"P1: 20% off today\n{consent.SMS_OPT_OUT_FOOTER}",
    ]


def test_ten_thousand_recipients_interrupted_and_resumed_get_exactly_one_message_each(
    tenant_a, shop, twilio_a, office, settings, monkeypatch
):
    settings.CAMPAIGN_BATCH_SIZE = 500
    customers(shop, 10_000, phone=True)
    item = campaign(tenant_a, twilio_a, body="Hi {{ first_name }}")
    sending.schedule(item)

    # The worker dies while the provider holds the 4,321st message: taken, but its answer never recorded.
    from tests.campaigns import fake_provider

    taken = fake_provider.FakeSmsProvider.send_sms

    class WorkerKilled(BaseException):
        pass

    def send_then_die(provider, message):
        result = taken(provider, message)
        if len(office.sms) == 4321:
            raise WorkerKilled
        return result

    monkeypatch.setattr(fake_provider.FakeSmsProvider, "send_sms", send_then_die)
    with pytest.raises(WorkerKilled):
        sending.run(item.pk)
    monkeypatch.setattr(fake_provider.FakeSmsProvider, "send_sms", taken)
    # A killed worker runs no `finally`: its lease stays until it runs out.
    Campaign.objects.filter(pk=item.pk).update(
        lease_owner="dead-worker", lease_until=timezone.now() - timedelta(seconds=1)
    )
    assert sending.send_due() == [item.pk]

    assert sending.run(item.pk) == "sent"

    sends = Counter(m.to for m in office.sms)
    assert len(sends) == 10_000 and set(sends.values()) == {1}
    states = Counter(Recipient.objects.filter(campaign=item).values_list("state", flat=True))
    assert states == {RecipientState.SENT: 9_999, RecipientState.FAILED: 1}
    unconfirmed = Recipient.objects.get(campaign=item, state=RecipientState.FAILED)
    assert unconfirmed.message.failure_code == "unconfirmed" and "may have gone out" in unconfirmed.error


def test_pause_stops_between_batches_and_resume_goes_on(tenant_a, shop, sendgrid_a, office, settings, monkeypatch):
    settings.CAMPAIGN_BATCH_SIZE = 2
    customers(shop, 5)
    item = campaign(tenant_a, sendgrid_a)
    sending.schedule(item)
    batches = []
    send_batch = sending._send_batch

    def pause_after_first(campaign, batch, provider):
        send_batch(campaign, batch, provider)
        batches.append(len(batch))
        if len(batches) == 1:
            sending.pause(campaign)

    monkeypatch.setattr(sending, "_send_batch", pause_after_first)
    assert sending.run(item.pk) == "stopped: paused"
    assert len(office.emails) == 2
    assert sending.stats(item)["pending"] == 3

    sending.resume(Campaign.objects.get(pk=item.pk))
    assert sending.run(item.pk) == "sent"
    assert len(office.emails) == 5 and len({m.to for m in office.emails}) == 5


def test_cancel_mid_send_never_sends_the_rest(tenant_a, shop, sendgrid_a, office, settings, monkeypatch):
    settings.CAMPAIGN_BATCH_SIZE = 2
    customers(shop, 5)
    item = campaign(tenant_a, sendgrid_a)
    sending.schedule(item)
    send_batch = sending._send_batch

    def cancel_after_first(campaign, batch, provider):
        send_batch(campaign, batch, provider)
        sending.cancel(campaign)

    monkeypatch.setattr(sending, "_send_batch", cancel_after_first)
    assert sending.run(item.pk) == "stopped: cancelled"
    assert len(office.emails) == 2
    assert sending.stats(item)["cancelled"] == 3
    assert sending.run(item.pk) == "busy or not due"
    with pytest.raises(sending.CampaignError):
        sending.resume(Campaign.objects.get(pk=item.pk))


def test_refused_credentials_pause_the_campaign_and_lose_nobody(tenant_a, shop, sendgrid_a, office):
    customers(shop, 3)
    item = campaign(tenant_a, sendgrid_a)
    office.refuse_next(AuthError("The API key was refused."))

    assert send_now(item).startswith("paused")

    item.refresh_from_db()
    assert item.status == CampaignStatus.PAUSED and "refused" in item.last_error
    assert sending.stats(item)["pending"] == 3 and not Message.objects.exists()
    sending.resume(item)
    assert sending.run(item.pk) == "sent"
    assert len(office.emails) == 3


def test_a_provider_that_stops_answering_pauses_after_three_sends(tenant_a, shop, sendgrid_a, office):
    customers(shop, 6)
    item = campaign(tenant_a, sendgrid_a)
    for _ in range(3):
        office.refuse_next(Unavailable("SendGrid answered 503."))

    assert send_now(item).startswith("paused")

    figures = sending.stats(Campaign.objects.get(pk=item.pk))
    assert figures["failed"] == 3 and figures["pending"] == 3 and figures["sent"] == 0


def test_a_suppression_added_after_the_recipients_froze_is_honoured(
    tenant_a, shop, sendgrid_a, office, settings, monkeypatch
):
    settings.CAMPAIGN_BATCH_SIZE = 1
    customers(shop, 3)
    item = campaign(tenant_a, sendgrid_a)
    sending.schedule(item)
    send_batch = sending._send_batch

    def unsubscribe_during(campaign, batch, provider):
        send_batch(campaign, batch, provider)
        consent.suppress(tenant_a.pk, "email", "person2@example.com", SuppressionReason.UNSUBSCRIBED)

    monkeypatch.setattr(sending, "_send_batch", unsubscribe_during)
    sending.run(item.pk)

    assert sorted(m.to for m in office.emails) == ["person0@example.com", "person1@example.com"]


def test_suppression_is_per_tenant(tenant_a, tenant_b, shop, make_connection, sendgrid_a, office):
    customers(shop, 1)
    Suppression.objects.create(tenant=tenant_b, channel="email", address="person0@example.com", reason="manual")

    send_now(campaign(tenant_a, sendgrid_a))

    assert [m.to for m in office.emails] == ["person0@example.com"]


def test_ab_test_sends_the_winning_subject_to_the_rest(tenant_a, shop, sendgrid_a, office, settings):
    customers(shop, 200)
    item = campaign(tenant_a, sendgrid_a, subject="Subject A", subject_b="Subject B", ab_share=40, ab_wait_minutes=60)

    assert send_now(item) == "waiting for the A/B test"

    tested = Recipient.objects.filter(campaign=item).exclude(variant="")
    assert len(office.emails) == tested.count() and 50 < tested.count() < 110
    assert {m.subject for m in office.emails} == {"Subject A", "Subject B"}
    Message.objects.filter(recipient__variant="b").update(opened_at=timezone.now())
    assert sending.send_due() == []  # still waiting
    Campaign.objects.filter(pk=item.pk).update(ab_sent_at=timezone.now() - timedelta(minutes=61), lease_until=None)

    assert sending.run(item.pk) == "sent"

    item.refresh_from_db()
    assert item.ab_winner == "b"
    rest = [m for m in office.emails if m.to not in set(tested.values_list("address", flat=True))]
    assert len(rest) == 200 - tested.count() and {m.subject for m in rest} == {"Subject B"}


def test_a_template_reaching_for_settings_cannot_be_scheduled(tenant_a, shop, sendgrid_a):
    for html in ("{% debug %}", "{% load static %}{% static 'x' %}", "{% include 'admin/base.html' %}"):
        item = campaign(tenant_a, sendgrid_a, html=html)
        with pytest.raises(sending.CampaignError):
            sending.schedule(item)
        assert Campaign.objects.get(pk=item.pk).status == CampaignStatus.DRAFT


def test_a_campaign_must_use_its_own_tenants_connection_and_the_right_channel(
    tenant_a, tenant_b, make_connection, sendgrid_a, twilio_a, office
):
    other = make_connection(tenant_b, "sendgrid", credentials={"api_key": "SG.b", "from_email": "b@example.com"})
    with pytest.raises(sending.CampaignError, match="connection"):
        sending.check(campaign(tenant_a, other))
    with pytest.raises(sending.CampaignError, match="does not send"):
        sending.check(campaign(tenant_a, twilio_a, channel="email"))


def test_scheduled_campaigns_wait_for_their_time_and_the_command_sends_due_ones(
    tenant_a, shop, sendgrid_a, office, queue
):
    customers(shop, 2)
    later = campaign(tenant_a, sendgrid_a, name="Later")
    sending.schedule(later, timezone.now() + timedelta(hours=2))
    due = campaign(tenant_a, sendgrid_a, name="Due")
    sending.schedule(due, timezone.now() - timedelta(minutes=1))
    assert queue == [due.pk]  # queued at once; here the command sends it instead
    out = StringIO()

    call_command("send_due_campaigns", stdout=out)

    assert "Due" in out.getvalue() and "2 sent" in out.getvalue() and "Later" not in out.getvalue()
    assert Campaign.objects.get(pk=due.pk).status == CampaignStatus.SENT
    assert Campaign.objects.get(pk=later.pk).status == CampaignStatus.SCHEDULED
    assert len(office.emails) == 2


def test_figures_follow_delivery_events(tenant_a, shop, sendgrid_a, office):
    customers(shop, 4)
    item = campaign(tenant_a, sendgrid_a)
    send_now(item)
    messages = list(Message.objects.filter(recipient__campaign=item).order_by("pk"))
    now = timezone.now()
    Message.objects.filter(pk__in=[m.pk for m in messages[:3]]).update(status=MessageStatus.DELIVERED)
    Message.objects.filter(pk=messages[0].pk).update(status=MessageStatus.CLICKED, opened_at=now, clicked_at=now)
    Message.objects.filter(pk=messages[3].pk).update(status=MessageStatus.BOUNCED)
    consent.suppress(tenant_a.pk, "email", messages[1].to, SuppressionReason.UNSUBSCRIBED, campaign=item)

    figures = sending.stats(item)

    assert (figures["sent"], figures["delivered"], figures["opened"], figures["clicked"]) == (4, 3, 1, 1)
    assert (figures["bounced"], figures["unsubscribed"]) == (1, 1)
    assert figures["delivered_rate"] == 0.75 and figures["opened_rate"] == 0.25


def test_campaign_sent_hook_is_published_once_the_send_commits(
    tenant_a, shop, sendgrid_a, office, django_capture_on_commit_callbacks
):
    customers(shop, 2)
    HookSubscription.objects.create(
        tenant=tenant_a, event="campaign.sent", target_url="https://hooks.example.com/x", secret="whsec_x"
    )
    item = campaign(tenant_a, sendgrid_a)

    with django_capture_on_commit_callbacks(execute=True):
        send_now(item)

    [delivery] = HookDelivery.objects.filter(event="campaign.sent")
    data = delivery.payload["data"]
    assert data["id"] == item.pk and data["status"] == "sent" and data["stats"]["sent"] == 2


def test_a_mailchimp_campaign_is_one_campaign_to_exactly_the_unsuppressed_recipients(
    tenant_a, shop, make_connection, settings
):
    from campaigns.providers.mailchimp import subscriber_hash
    from tests.campaigns.fake_mailchimp import API_KEY, AUDIENCE, FakeMailchimp

    settings.INTEGRATIONS_ALLOW_PRIVATE_URLS = True
    customers(shop, 3)
    consent.suppress(tenant_a.pk, "email", "person1@example.com", SuppressionReason.BOUNCED)
    fake = FakeMailchimp()
    with fake.running() as url:
        mailchimp = make_connection(
            tenant_a, "mailchimp", credentials={"api_key": API_KEY, "audience_id": AUDIENCE}, base_url=url
        )
        item = campaign(tenant_a, mailchimp, subject="News for you", html="<p>Hello from {{ company }}</p>")
        # Unsubscribed in Mailchimp itself: suppressed in the hub before the send.
        fake.lists[AUDIENCE]["members"][subscriber_hash("person2@example.com")] = {
            "email_address": "person2@example.com",
            "status": "unsubscribed",
            "last_changed": "2026-11-01T10:00:00+00:00",
        }

        assert send_now(item) == "sent"
        assert sending.run(item.pk) == "busy or not due"  # sent once, never again

    item.refresh_from_db()
    assert item.status == CampaignStatus.SENT and item.provider_campaign_id
    assert fake.sent[item.provider_campaign_id] == ["person0@example.com"]
    assert subscriber_hash("person1@example.com") not in fake.lists[AUDIENCE]["members"]
    assert sending.stats(item)["sent"] == 1 and sending.stats(item)["suppressed"] == 2
    assert consent.is_suppressed(tenant_a.pk, "email", "person2@example.com")
    assert not Message.objects.exists()  # Mailchimp sent it: no per-person messages in the hub


def test_a_mailchimp_connection_sends_no_one_off_email(tenant_a, make_connection, sendgrid_a):
    from campaigns import messaging

    make_connection(tenant_a, "mailchimp", credentials={"api_key": "x-us1"})
    assert messaging.pick_connection(tenant_a, "email") == sendgrid_a


def test_an_sms_campaign_needs_no_public_address(tenant_a, shop, twilio_a, office, settings):
    settings.PUBLIC_BASE_URL = ""
    customers(shop, 1, phone=True)

    assert send_now(campaign(tenant_a, twilio_a, body="Hi")) == "sent"
    assert len(office.sms) == 1


def test_a_number_that_replied_stop_is_suppressed_when_twilio_refuses_it(tenant_a, shop, twilio_a, office):
    from campaigns.providers.base import SendResult

    customers(shop, 2, phone=True)
    office.answer_next(SendResult(status=MessageStatus.FAILED, failure_code="21610", failure_message="Unsubscribed"))

    send_now(campaign(tenant_a, twilio_a, body="Hi"))

    assert Suppression.objects.filter(tenant=tenant_a, channel="sms", reason=SuppressionReason.STOP).count() == 1


def test_zapier_samples_for_campaign_sent_are_the_tenants_sent_campaigns(tenant_a, tenant_b, shop, sendgrid_a, office):
    from webhooks.outbound import events

    customers(shop, 1)
    item = campaign(tenant_a, sendgrid_a, name="Sent one")
    send_now(item)
    campaign(tenant_a, sendgrid_a, name="Still a draft")

    [sample] = events.samples("campaign.sent", tenant_a)

    assert sample["data"]["name"] == "Sent one" and sample["data"]["stats"]["sent"] == 1
    assert events.samples("campaign.sent", tenant_b) == []


def test_a_mailchimp_sync_pushes_marketable_customers_to_the_audience(tenant_a, shop, make_connection, settings):
    from campaigns.providers.mailchimp import subscriber_hash
    from integrations.models import SyncStatus
    from integrations.sync import run_sync
    from tests.campaigns.fake_mailchimp import API_KEY, AUDIENCE, FakeMailchimp

    settings.INTEGRATIONS_ALLOW_PRIVATE_URLS = True
    customers(shop, 4)
    Customer.objects.filter(email__in=["person0@example.com", "person1@example.com", "person2@example.com"]).update(
        accepts_marketing=True
    )
    consent.suppress(tenant_a.pk, "email", "person1@example.com", SuppressionReason.BOUNCED)
    fake = FakeMailchimp()
    fake.lists[AUDIENCE]["members"][subscriber_hash("person2@example.com")] = {
        "email_address": "person2@example.com",
        "status": "unsubscribed",
        "last_changed": "2026-11-01T10:00:00+00:00",
    }
    with fake.running() as url:
        mailchimp = make_connection(
            tenant_a, "mailchimp", credentials={"api_key": API_KEY, "audience_id": AUDIENCE}, base_url=url
        )
        run = run_sync(mailchimp)

    assert run.status == SyncStatus.SUCCEEDED, run.error
    members = fake.lists[AUDIENCE]["members"]
    assert members[subscriber_hash("person0@example.com")]["status"] == "subscribed"
    assert subscriber_hash("person1@example.com") not in members  # suppressed in the hub
    assert subscriber_hash("person3@example.com") not in members  # does not accept marketing
    assert members[subscriber_hash("person2@example.com")]["status"] == "unsubscribed"  # never re-subscribed
    assert consent.is_suppressed(tenant_a.pk, "email", "person2@example.com")
    assert run.counts["audience"]["created"] == 1
