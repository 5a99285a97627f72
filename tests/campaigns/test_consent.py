"""Consent for campaigns: the suppression list, the unsubscribe link and its page, and the
providers' opt-outs (Twilio STOP/START replies and error 21610, SendGrid unsubscribes, spam reports,
bounces and drops) delivered through the real, signed webhook endpoints."""

from __future__ import annotations

import base64
import itertools
import json
import time
from urllib.parse import urlencode

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.core import signing
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.http import QueryDict
from django.test import Client
from twilio.request_validator import RequestValidator

from campaigns import consent
from campaigns.models import (
    Campaign,
    Message,
    MessageStatus,
    Recipient,
    Suppression,
    SuppressionReason,
)
from tenants.models import AuditLog
from webhooks import processing
from webhooks.models import EventStatus, WebhookEvent

from .conftest import TWILIO_TOKEN

pytestmark = pytest.mark.django_db

BASE = "https://hub.example.com"
NUMBER = "+14155552671"
EMAIL = "jane.doe@example.com"
SIDS = (f"SM{n:032x}" for n in itertools.count(1))


@pytest.fixture(autouse=True)
def _public_base_url(settings):
    settings.PUBLIC_BASE_URL = BASE


def campaign_for(connection, channel: str, name: str = "Spring sale") -> Campaign:
    return Campaign.objects.create(tenant=connection.tenant, name=name, channel=channel, connection=connection)


def sent_to(campaign: Campaign, address: str, provider_id: str = "") -> Recipient:
    """A recipient the campaign's message went to."""
    message = Message.objects.create(
        tenant=campaign.tenant,
        connection=campaign.connection,
        channel=campaign.channel,
        to=address,
        status=MessageStatus.DELIVERED,
        provider_id=provider_id or next(SIDS),
    )
    return Recipient.objects.create(tenant=campaign.tenant, campaign=campaign, address=address, message=message)


def suppression(tenant, channel: str, address: str) -> Suppression | None:
    return Suppression.objects.for_tenant(tenant).filter(channel=channel, address=address).first()


def process_waiting(connection) -> list[WebhookEvent]:
    waiting = WebhookEvent.objects.filter(connection=connection, status=EventStatus.RECEIVED).order_by("pk")
    pks = list(waiting.values_list("pk", flat=True))
    for pk in pks:
        processing.process(pk)
    return list(WebhookEvent.objects.filter(pk__in=pks).order_by("pk"))


# --- The suppression list ----------------------------------------------------------------------------


def test_normalise_lower_cases_and_strips_email_and_keeps_a_phone_number_in_e164():
    assert consent.normalise("email", "  Jane.Doe@Example.COM ") == EMAIL
    assert consent.normalise("sms", "+1 415-555 2671") == NUMBER


def test_suppress_is_idempotent_and_says_whether_the_address_was_new(tenant_a):
    assert consent.suppress(tenant_a.pk, "email", "Jane.Doe@Example.com", SuppressionReason.BOUNCED, detail="550")
    assert not consent.suppress(tenant_a.pk, "email", EMAIL, SuppressionReason.UNSUBSCRIBED)
    [row] = Suppression.objects.for_tenant(tenant_a)
    assert (row.address, row.reason, row.detail) == (EMAIL, SuppressionReason.BOUNCED, "550")
    [entry] = AuditLog.objects.for_tenant(tenant_a).filter(action="suppression.added")
    assert EMAIL not in entry.target and entry.details["reason"] == "bounced"


def test_an_insert_that_loses_the_race_returns_false_and_leaves_the_callers_transaction_usable(tenant_a, monkeypatch):
    consent.suppress(tenant_a.pk, "sms", NUMBER, SuppressionReason.STOP)
    # Another request's insert lands between this one's look and its insert.
    monkeypatch.setattr(consent, "_held", lambda *args: False)
    with transaction.atomic():
        assert consent.suppress(tenant_a.pk, "sms", NUMBER, SuppressionReason.STOP) is False
        assert Suppression.objects.for_tenant(tenant_a).count() == 1  # the transaction still works
    assert AuditLog.objects.for_tenant(tenant_a).filter(action="suppression.added").count() == 1


def test_suppressed_answers_for_a_whole_batch_in_one_query(tenant_a, django_assert_num_queries):
    consent.suppress(tenant_a.pk, "email", "a@example.com", SuppressionReason.UNSUBSCRIBED)
    consent.suppress(tenant_a.pk, "email", "c@example.com", SuppressionReason.BOUNCED)
    batch = ["a@example.com", "b@example.com", "C@Example.com", *(f"x{n}@example.com" for n in range(200))]
    with django_assert_num_queries(1):
        found = consent.suppressed(tenant_a.pk, "email", batch)
    assert found == {"a@example.com", "C@Example.com"}


def test_a_suppression_in_one_tenant_never_suppresses_the_same_address_in_another(tenant_a, tenant_b):
    consent.suppress(tenant_a.pk, "sms", NUMBER, SuppressionReason.STOP)
    assert consent.is_suppressed(tenant_a.pk, "sms", NUMBER)
    assert not consent.is_suppressed(tenant_b.pk, "sms", NUMBER)
    assert consent.suppressed(tenant_b.pk, "sms", [NUMBER]) == set()
    assert not consent.unsuppress(tenant_b.pk, "sms", NUMBER)
    assert consent.is_suppressed(tenant_a.pk, "sms", NUMBER)


def test_an_address_is_suppressed_per_channel(tenant_a):
    consent.suppress(tenant_a.pk, "email", EMAIL, SuppressionReason.UNSUBSCRIBED)
    assert not consent.is_suppressed(tenant_a.pk, "sms", EMAIL)


def test_unsuppress_takes_the_address_off_once(tenant_a):
    consent.suppress(tenant_a.pk, "sms", NUMBER, SuppressionReason.STOP)
    assert consent.unsuppress(tenant_a.pk, "sms", "+1 415 555 2671")
    assert not consent.unsuppress(tenant_a.pk, "sms", NUMBER)
    assert not consent.is_suppressed(tenant_a.pk, "sms", NUMBER)
    assert AuditLog.objects.for_tenant(tenant_a).filter(action="suppression.removed").count() == 1


def test_a_campaign_of_another_tenant_is_refused(tenant_b, sendgrid_a):
    campaign = campaign_for(sendgrid_a, "email")
    with pytest.raises(ValueError, match="another tenant"):
        consent.suppress(tenant_b.pk, "email", EMAIL, SuppressionReason.UNSUBSCRIBED, campaign=campaign)


def test_the_sms_footer_tells_people_how_to_opt_out():
    assert consent.SMS_OPT_OUT_FOOTER == "Reply STOP to opt out."


# --- The unsubscribe link ----------------------------------------------------------------------------


@pytest.fixture
def recipient(sendgrid_a) -> Recipient:
    return sent_to(campaign_for(sendgrid_a, "email"), EMAIL, provider_id="14c5d75ce93dfd64b469")


def path_of(recipient: Recipient) -> str:
    return consent.unsubscribe_url(recipient).removeprefix(BASE)


def test_the_token_carries_the_recipient_and_never_the_address(recipient):
    token = consent.unsubscribe_token(recipient)
    assert consent.recipient_for_token(token) == recipient
    assert EMAIL not in token and "jane" not in signing.b64_decode(token.split(":")[0].encode()).decode()


def test_the_unsubscribe_url_is_absolute_on_the_public_address(recipient):
    url = consent.unsubscribe_url(recipient)
    assert url == f"{BASE}/u/{consent.unsubscribe_token(recipient)}/"


def test_without_a_public_address_there_is_no_unsubscribe_url(recipient, settings):
    settings.PUBLIC_BASE_URL = ""
    with pytest.raises(ImproperlyConfigured):
        consent.unsubscribe_url(recipient)


def test_the_headers_are_rfc_8058_one_click_unsubscribe(recipient):
    token = consent.unsubscribe_token(recipient)
    assert consent.list_unsubscribe_headers(recipient) == {
        "List-Unsubscribe": f"<https://hub.example.com/u/{token}/>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def test_the_page_names_the_company_and_the_masked_address_and_get_unsubscribes_nobody(client, recipient):
    response = client.get(path_of(recipient))
    page = response.content.decode()
    assert response.status_code == 200
    assert "Alpha Goods" in page and "j•••@example.com" in page
    assert EMAIL not in page
    assert '<form method="post">' in page and "Unsubscribe</button>" in page
    assert response["Referrer-Policy"] == "no-referrer"
    assert client.head(path_of(recipient)).status_code == 200
    assert not Suppression.objects.exists()


def test_the_button_unsubscribes_and_counts_against_the_campaign(client, recipient):
    response = client.post(path_of(recipient))
    assert response.status_code == 200
    assert "You are unsubscribed" in response.content.decode()
    row = suppression(recipient.tenant, "email", EMAIL)
    assert (row.reason, row.detail, row.campaign) == (SuppressionReason.UNSUBSCRIBED, "link", recipient.campaign)
    recipient.message.refresh_from_db()
    assert recipient.message.status == MessageStatus.UNSUBSCRIBED


def test_a_mail_clients_one_click_post_without_a_csrf_token_unsubscribes(recipient):
    mail_client = Client(enforce_csrf_checks=True)
    response = mail_client.post(
        path_of(recipient), data="List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 200
    row = suppression(recipient.tenant, "email", EMAIL)
    assert (row.reason, row.detail) == (SuppressionReason.UNSUBSCRIBED, "one-click")


def test_unsubscribing_twice_answers_the_same_and_changes_nothing(client, recipient):
    assert client.post(path_of(recipient)).status_code == 200
    assert client.post(path_of(recipient)).status_code == 200
    assert Suppression.objects.count() == 1
    assert AuditLog.objects.filter(action="suppression.added").count() == 1


@pytest.mark.parametrize(
    "tamper",
    [
        lambda token: token[:-1] + ("A" if token[-1] != "A" else "B"),  # the signature altered
        lambda token: "WzEsOTk5XQ" + token[token.index(":") :],  # another payload, the old signature
        lambda token: "not-a-token",
        lambda token: signing.Signer(salt="another.salt").sign_object([1, 1]),
        lambda token: "%00%ff",
    ],
)
@pytest.mark.parametrize("method", ["get", "post"])
def test_a_tampered_token_is_a_404_page_and_unsubscribes_nobody(client, recipient, tamper, method):
    response = getattr(client, method)(f"/u/{tamper(consent.unsubscribe_token(recipient))}/")
    assert response.status_code == 404
    assert "This link is not valid" in response.content.decode()
    assert not Suppression.objects.exists()


def test_the_link_of_a_deleted_recipient_is_a_404(client, recipient):
    path = path_of(recipient)
    recipient.delete()
    assert client.get(path).status_code == 404


# --- Twilio, through the signed endpoint ----------------------------------------------------------------


def post_twilio(client, connection, params: dict, *, token: str = TWILIO_TOKEN):
    body = urlencode(params).encode()
    path = f"/webhooks/twilio/{connection.uuid}/"
    signature = RequestValidator(token).compute_signature(BASE + path, QueryDict(body))
    response = client.post(
        path, data=body, content_type="application/x-www-form-urlencoded", HTTP_X_TWILIO_SIGNATURE=signature
    )
    return response, process_waiting(connection)


def text(client, connection, body: str, sender: str = NUMBER, **extra):
    sid = next(SIDS)
    params = {
        "AccountSid": "AC01",
        "MessageSid": sid,
        "SmsSid": sid,
        "SmsMessageSid": sid,
        "SmsStatus": "received",
        "From": sender,
        "To": "+15005550006",
        "Body": body,
        "NumMedia": "0",
        **extra,
    }
    response, events = post_twilio(client, connection, params)
    assert response.status_code == 200
    [event] = events
    assert event.status == EventStatus.PROCESSED, event.error
    return event


@pytest.mark.parametrize("body", ["STOP", " stop ", "Stop", "STOPALL", "unsubscribe", "Cancel", "END", "quit"])
def test_an_opt_out_reply_suppresses_the_number(client, twilio_a, body):
    text(client, twilio_a, body)
    row = suppression(twilio_a.tenant, "sms", NUMBER)
    assert row.reason == SuppressionReason.STOP
    assert row.detail == f"replied {body.strip().upper()}"


@pytest.mark.parametrize("body", ["START", "yes", "Unstop"])
def test_an_opt_in_reply_lifts_the_suppression(client, twilio_a, body):
    text(client, twilio_a, "STOP")
    event = text(client, twilio_a, body)
    assert suppression(twilio_a.tenant, "sms", NUMBER) is None
    assert "may receive campaigns again" in event.outcome


@pytest.mark.parametrize("body", ["HELP", "info", "STOP please", "Thanks!"])
def test_help_and_other_texts_are_recorded_and_suppress_nothing(client, twilio_a, body):
    event = text(client, twilio_a, body)
    assert event.outcome
    assert not Suppression.objects.exists()


def test_advanced_opt_outs_type_names_a_custom_keyword(client, twilio_a):
    text(client, twilio_a, "BASTA", OptOutType="STOP")
    assert suppression(twilio_a.tenant, "sms", NUMBER).reason == SuppressionReason.STOP


def test_a_stop_counts_against_the_campaign_last_sent_to_the_number(client, twilio_a):
    older = campaign_for(twilio_a, "sms", "Winter")
    sent_to(older, NUMBER)
    latest = campaign_for(twilio_a, "sms", "Spring")
    sent_to(latest, NUMBER)
    text(client, twilio_a, "STOP")
    assert suppression(twilio_a.tenant, "sms", NUMBER).campaign == latest


def test_a_repeated_stop_changes_nothing(client, twilio_a):
    text(client, twilio_a, "STOP")
    event = text(client, twilio_a, "STOP")
    assert "already suppressed" in event.outcome
    assert Suppression.objects.count() == 1


def test_a_stop_processed_after_a_later_start_changes_nothing(client, twilio_a):
    sid_stop, sid_start = next(SIDS), next(SIDS)
    for sid, body in ((sid_stop, "STOP"), (sid_start, "START")):
        params = {"AccountSid": "AC01", "MessageSid": sid, "SmsStatus": "received", "From": NUMBER, "Body": body}
        body_bytes = urlencode(params).encode()
        path = f"/webhooks/twilio/{twilio_a.uuid}/"
        signature = RequestValidator(TWILIO_TOKEN).compute_signature(BASE + path, QueryDict(body_bytes))
        client.post(
            path, data=body_bytes, content_type="application/x-www-form-urlencoded", HTTP_X_TWILIO_SIGNATURE=signature
        )
    stop, start = WebhookEvent.objects.filter(connection=twilio_a).order_by("pk")
    processing.process(start.pk)  # the worker takes them out of order
    processing.process(stop.pk)
    stop.refresh_from_db()
    assert "a later opt-out or opt-in from the number decides" in stop.outcome
    assert suppression(twilio_a.tenant, "sms", NUMBER) is None


def test_start_never_lifts_a_suppression_a_person_added(client, twilio_a):
    consent.suppress(twilio_a.tenant_id, "sms", NUMBER, SuppressionReason.MANUAL)
    event = text(client, twilio_a, "START")
    assert "suppressed by hand" in event.outcome
    assert suppression(twilio_a.tenant, "sms", NUMBER).reason == SuppressionReason.MANUAL


def test_a_stop_to_another_tenants_number_suppresses_only_for_that_tenant(client, twilio_a, twilio_b):
    text(client, twilio_b, "STOP")
    assert consent.is_suppressed(twilio_b.tenant_id, "sms", NUMBER)
    assert not consent.is_suppressed(twilio_a.tenant_id, "sms", NUMBER)


def test_a_status_callback_with_error_21610_suppresses_the_number(client, twilio_a):
    recipient = sent_to(campaign_for(twilio_a, "sms"), NUMBER)
    sid = recipient.message.provider_id
    params = {"AccountSid": "AC01", "MessageSid": sid, "MessageStatus": "failed", "ErrorCode": "21610", "To": NUMBER}
    response, [event] = post_twilio(client, twilio_a, params)
    assert response.status_code == 200 and event.status == EventStatus.PROCESSED
    row = suppression(twilio_a.tenant, "sms", NUMBER)
    assert (row.reason, row.detail, row.campaign) == (SuppressionReason.STOP, "twilio error 21610", recipient.campaign)


def test_a_status_callback_with_another_error_suppresses_nothing(client, twilio_a):
    recipient = sent_to(campaign_for(twilio_a, "sms"), NUMBER)
    params = {"MessageSid": recipient.message.provider_id, "MessageStatus": "undelivered", "ErrorCode": "30006"}
    post_twilio(client, twilio_a, params)
    assert not Suppression.objects.exists()


def test_a_stop_with_a_bad_signature_is_refused_and_suppresses_nothing(client, twilio_a):
    params = {"AccountSid": "AC01", "MessageSid": next(SIDS), "SmsStatus": "received", "From": NUMBER, "Body": "STOP"}
    response, events = post_twilio(client, twilio_a, params, token="not-the-auth-token")
    assert response.status_code == 401
    assert events == []
    assert WebhookEvent.objects.get(connection=twilio_a).status == EventStatus.REJECTED
    assert not Suppression.objects.exists()


# --- SendGrid, through the signed endpoint --------------------------------------------------------------

SG_MESSAGE = "14c5d75ce93dfd64b469"
EVENT_IDS = (f"sg-event-{n}" for n in itertools.count(1))


@pytest.fixture
def signing_key():
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def sendgrid(tenant_a, make_connection, office, signing_key):
    public = base64.b64encode(
        signing_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    ).decode()
    return make_connection(
        tenant_a, "sendgrid", "Alpha email", credentials={"api_key": "SG.fake", "webhook_public_key": public}
    )


def sg_event(event: str, email: str = EMAIL, sg_message_id: str = f"{SG_MESSAGE}.filter0001.1", **extra) -> dict:
    return {
        "email": email,
        "event": event,
        "timestamp": int(time.time()),
        "sg_event_id": next(EVENT_IDS),
        "sg_message_id": sg_message_id,
        **extra,
    }


def post_sendgrid(client, connection, key, events: list[dict]):
    batch = json.dumps(events).encode()
    stamp = str(int(time.time()))
    signature = base64.b64encode(key.sign(stamp.encode() + batch, ec.ECDSA(hashes.SHA256()))).decode()
    response = client.post(
        f"/webhooks/sendgrid/{connection.uuid}/",
        data=batch,
        content_type="application/json",
        HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_SIGNATURE=signature,
        HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_TIMESTAMP=stamp,
    )
    events = process_waiting(connection)
    assert all(event.status == EventStatus.PROCESSED for event in events), [event.error for event in events]
    return response, events


@pytest.mark.parametrize(
    ("event", "extra", "reason"),
    [
        ("unsubscribe", {}, SuppressionReason.UNSUBSCRIBED),
        ("group_unsubscribe", {"asm_group_id": 42}, SuppressionReason.UNSUBSCRIBED),
        ("spamreport", {}, SuppressionReason.SPAM_REPORT),
        ("bounce", {"type": "bounce", "status": "5.1.1", "reason": "550 unknown user"}, SuppressionReason.BOUNCED),
    ],
)
def test_a_sendgrid_opt_out_or_hard_bounce_suppresses_the_address_for_the_campaign(
    client, sendgrid, signing_key, event, extra, reason
):
    recipient = sent_to(campaign_for(sendgrid, "email"), EMAIL, provider_id=SG_MESSAGE)
    response, _ = post_sendgrid(client, sendgrid, signing_key, [sg_event(event, email="Jane.Doe@example.com", **extra)])
    assert response.status_code == 200
    row = suppression(sendgrid.tenant, "email", EMAIL)
    assert (row.reason, row.campaign) == (reason, recipient.campaign)


def test_an_opt_out_about_a_message_not_sent_through_the_hub_still_suppresses_the_address(
    client, sendgrid, signing_key
):
    post_sendgrid(client, sendgrid, signing_key, [sg_event("spamreport", sg_message_id="unknown.filter1")])
    row = suppression(sendgrid.tenant, "email", EMAIL)
    assert (row.reason, row.campaign) == (SuppressionReason.SPAM_REPORT, None)


def test_the_third_soft_bounce_suppresses_the_address(client, sendgrid, signing_key):
    blocked = [sg_event("bounce", sg_message_id=f"msg{n}.f1", type="blocked") for n in range(3)]
    post_sendgrid(client, sendgrid, signing_key, blocked[:2])
    post_sendgrid(client, sendgrid, signing_key, blocked[:2])  # the same events again: duplicates
    assert not Suppression.objects.exists()
    _, [event] = post_sendgrid(client, sendgrid, signing_key, blocked[2:])
    assert "address suppressed (bounced)" in event.outcome
    row = suppression(sendgrid.tenant, "email", EMAIL)
    assert (row.reason, row.detail) == (SuppressionReason.BOUNCED, "sendgrid: 3 soft bounces")


def test_a_delivery_between_soft_bounces_starts_the_count_again(client, sendgrid, signing_key):
    for n in range(2):
        post_sendgrid(client, sendgrid, signing_key, [sg_event("bounce", sg_message_id=f"a{n}.f", type="blocked")])
    post_sendgrid(client, sendgrid, signing_key, [sg_event("delivered", sg_message_id="b.f")])
    _, [event] = post_sendgrid(client, sendgrid, signing_key, [sg_event("bounce", sg_message_id="c.f", type="blocked")])
    assert "soft bounce 1 of 3" in event.outcome
    assert not Suppression.objects.exists()


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("Bounced Address", SuppressionReason.BOUNCED),
        ("Unsubscribed Address", SuppressionReason.UNSUBSCRIBED),
        ("Spam Reporting Address", SuppressionReason.SPAM_REPORT),
    ],
)
def test_a_drop_for_a_known_bad_address_suppresses_it(client, sendgrid, signing_key, reason, expected):
    post_sendgrid(client, sendgrid, signing_key, [sg_event("dropped", reason=reason)])
    row = suppression(sendgrid.tenant, "email", EMAIL)
    assert (row.reason, row.detail) == (expected, f"sendgrid dropped: {reason}")


def test_a_drop_for_another_reason_suppresses_nothing(client, sendgrid, signing_key):
    post_sendgrid(client, sendgrid, signing_key, [sg_event("dropped", reason="Invalid SMTPAPI header")])
    assert not Suppression.objects.exists()


def test_a_sendgrid_batch_with_a_bad_signature_is_refused_and_suppresses_nothing(client, sendgrid):
    forger = ec.generate_private_key(ec.SECP256R1())
    batch = json.dumps([sg_event("unsubscribe"), sg_event("spamreport")]).encode()
    stamp = str(int(time.time()))
    signature = base64.b64encode(forger.sign(stamp.encode() + batch, ec.ECDSA(hashes.SHA256()))).decode()
    response = client.post(
        f"/webhooks/sendgrid/{sendgrid.uuid}/",
        data=batch,
        content_type="application/json",
        HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_SIGNATURE=signature,
        HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_TIMESTAMP=stamp,
    )
    assert response.status_code == 401
    assert process_waiting(sendgrid) == []
    assert not Suppression.objects.exists()
