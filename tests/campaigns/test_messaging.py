"""Sending one-off messages: validation before the provider is asked, the message stored first with
the hub's id as the reference, the provider's answer or error recorded, the text alternative, and
messaging connections tested like any other and never synced."""

from __future__ import annotations

import pytest
from django_q.models import Schedule

from campaigns import messaging
from campaigns.messaging import MessageError, text_alternative
from campaigns.models import Message, MessageStatus
from campaigns.providers.base import SendResult
from integrations import services as integration_services
from integrations.errors import AuthError, Unavailable
from integrations.models import ConnectionStatus

pytestmark = pytest.mark.django_db


# --- Validation ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("number", ["+14155552671", "+44 20 7946 0958", "+33 (1) 23-45-67-89"])
def test_e164_numbers_are_taken_with_spacing_removed(number):
    assert messaging.check_phone(number) == "+" + "".join(c for c in number if c.isdigit())


@pytest.mark.parametrize("number", ["4155552671", "+0123456789", "+141555", "+1234567890123456", "+1415abc2671", ""])
def test_numbers_not_in_e164_are_refused_with_what_to_send(number):
    with pytest.raises(MessageError) as caught:
        messaging.check_phone(number)
    assert caught.value.field == "to"
    assert "E.164" in caught.value.message


def test_an_sms_to_a_bad_number_is_refused_before_anything_is_stored(tenant_a, twilio_a, office):
    with pytest.raises(MessageError):
        messaging.send_sms(tenant_a, twilio_a, "555-1234", "Hi")
    assert not Message.objects.exists()
    assert office.sms == []


@pytest.mark.parametrize("address", ["not-an-email", "a@b", "two@@example.com", ""])
def test_an_email_to_a_bad_address_is_refused(tenant_a, sendgrid_a, office, address):
    with pytest.raises(MessageError) as caught:
        messaging.send_email(tenant_a, sendgrid_a, address, "Hello", html="<p>Hi</p>")
    assert "valid email address" in caught.value.message
    assert not Message.objects.exists()


def test_an_email_needs_a_subject_and_some_content(tenant_a, sendgrid_a, office):
    with pytest.raises(MessageError, match="subject"):
        messaging.send_email(tenant_a, sendgrid_a, "c@example.com", "  ", html="<p>Hi</p>")
    with pytest.raises(MessageError, match="content"):
        messaging.send_email(tenant_a, sendgrid_a, "c@example.com", "Hello")


def test_another_tenants_connection_is_refused(tenant_a, twilio_b, office):
    with pytest.raises(MessageError, match="No SMS connection of yours"):
        messaging.send_sms(tenant_a, twilio_b, "+14155552671", "Hi")
    assert office.sms == []


def test_an_email_connection_cannot_send_an_sms(tenant_a, sendgrid_a, office):
    with pytest.raises(MessageError, match="No SMS connection of yours"):
        messaging.send_sms(tenant_a, sendgrid_a, "+14155552671", "Hi")


def test_a_disabled_connection_is_refused(tenant_a, twilio_a, office):
    twilio_a.enabled = False
    twilio_a.save()
    with pytest.raises(MessageError, match="disabled"):
        messaging.send_sms(tenant_a, twilio_a, "+14155552671", "Hi")


def test_the_only_enabled_connection_is_picked_and_several_need_an_id(tenant_a, twilio_a, make_connection, office):
    assert messaging.pick_connection(tenant_a, "sms") == twilio_a
    make_connection(tenant_a, "twilio", "Second SMS", credentials={"auth_token": "t"})
    with pytest.raises(MessageError, match="several"):
        messaging.pick_connection(tenant_a, "sms")
    assert messaging.pick_connection(tenant_a, "sms", twilio_a.pk) == twilio_a


# --- Sending ------------------------------------------------------------------------------------------


def test_an_sms_is_stored_then_sent_with_its_reference_and_status_callback(tenant_a, twilio_a, office, settings):
    settings.PUBLIC_BASE_URL = "https://hub.example.com"
    message = messaging.send_sms(tenant_a, twilio_a, "+1 415 555 2671", "Your order shipped", "high")
    message.refresh_from_db()
    assert message.status == MessageStatus.QUEUED
    assert message.provider_id.startswith("SM")
    assert (message.to, message.body, message.priority, message.channel) == (
        "+14155552671",
        "Your order shipped",
        "high",
        "sms",
    )
    [sent] = office.sms
    assert sent.reference == str(message.uuid)
    assert sent.status_callback == f"https://hub.example.com/webhooks/twilio/{twilio_a.uuid}/"


def test_without_a_public_address_an_sms_goes_without_a_status_callback(tenant_a, twilio_a, office, settings):
    settings.PUBLIC_BASE_URL = ""
    messaging.send_sms(tenant_a, twilio_a, "+14155552671", "Hi")
    assert office.sms[0].status_callback == ""


def test_a_recipient_the_provider_refuses_is_a_failed_message_not_an_error(tenant_a, twilio_a, office):
    office.answer_next(SendResult(status="failed", failure_code="21610", failure_message="The recipient unsubscribed."))
    message = messaging.send_sms(tenant_a, twilio_a, "+14155552671", "Hi")
    message.refresh_from_db()
    assert (message.status, message.failure_code) == (MessageStatus.FAILED, "21610")
    assert message.failure_message == "The recipient unsubscribed."


def test_bad_credentials_fail_the_message_with_the_providers_reason(tenant_a, sendgrid_a, office):
    office.refuse_next(AuthError("The API key was refused."))
    message = messaging.send_email(tenant_a, sendgrid_a, "c@example.com", "Hello", text="Hi")
    message.refresh_from_db()
    assert (message.status, message.failure_code) == (MessageStatus.FAILED, "auth_error")
    assert message.failure_message == "The API key was refused."


def test_a_provider_that_does_not_answer_leaves_the_message_failed_and_never_resends(tenant_a, twilio_a, office):
    office.refuse_next(Unavailable("Twilio did not answer (timeout)."))
    message = messaging.send_sms(tenant_a, twilio_a, "+14155552671", "Hi")
    message.refresh_from_db()
    assert (message.status, message.failure_code) == (MessageStatus.FAILED, messaging.UNCONFIRMED)
    assert "may have gone out" in message.failure_message
    assert office.sms == []  # asked once (the fake raised before keeping it), never again
    assert Message.objects.count() == 1


# --- The text alternative ------------------------------------------------------------------------------


def test_an_html_email_without_text_gets_a_text_alternative(tenant_a, sendgrid_a, office):
    html = "<html><head><style>p{color:red}</style></head><body><h1>Sale</h1><p>Up to   50% off.</p></body></html>"
    message = messaging.send_email(tenant_a, sendgrid_a, "c@example.com", "Sale", html=html)
    [sent] = office.emails
    assert sent.html == html
    assert sent.text == "Sale\n\nUp to 50% off."
    assert sent.reference == str(message.uuid)
    assert Message.objects.get().body == sent.text


def test_a_given_text_part_is_kept_as_it_is(tenant_a, sendgrid_a, office):
    messaging.send_email(tenant_a, sendgrid_a, "c@example.com", "Sale", html="<p>Sale</p>", text="Plain words")
    assert office.emails[0].text == "Plain words"


def test_the_text_alternative_keeps_link_urls_and_drops_scripts():
    html = (
        '<p>Track your <a href="https://shop.example.com/t/1">parcel</a>.</p>'
        "<script>alert('x')</script>"
        '<p><a href="https://shop.example.com">https://shop.example.com</a> &amp; more</p>'
    )
    assert text_alternative(html) == (
        "Track your parcel (https://shop.example.com/t/1).\n\nhttps://shop.example.com & more"
    )


# --- The connection: tested like any other, never synced --------------------------------------------------


def test_a_messaging_connection_is_tested_through_its_provider_and_never_scheduled(
    twilio_a, office, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        result = integration_services.test_connection(twilio_a)
    twilio_a.refresh_from_db()
    assert result.ok and result.message == "Fake provider, test mode."
    assert twilio_a.status == ConnectionStatus.CONNECTED
    assert not Schedule.objects.filter(name=f"sync-connection-{twilio_a.pk}").exists()


def test_a_messaging_connection_missing_its_key_fails_the_test(tenant_a, make_connection, office):
    connection = make_connection(tenant_a, "sendgrid", credentials={})
    result = integration_services.test_connection(connection)
    connection.refresh_from_db()
    assert not result.ok
    assert "API key" in result.message
    assert connection.status == ConnectionStatus.FAILING


def test_sync_now_on_a_messaging_connection_says_there_is_nothing_to_sync(admin_client, sendgrid_a, office):
    from integrations.models import SyncRun

    response = admin_client.post(f"/admin/integrations/connection/{sendgrid_a.pk}/sync/", follow=True)
    assert "SendGrid connections have nothing to sync" in response.content.decode()
    assert not SyncRun.objects.exists()


def test_the_message_admin_lists_without_bodies(admin_client, tenant_a, sendgrid_a, office):
    messaging.send_email(tenant_a, sendgrid_a, "c@example.com", "Hello", text="A secret discount code ZX81")
    listing = admin_client.get("/admin/campaigns/message/?channel=email").content.decode()
    assert "ZX81" not in listing
    assert "sendgrid" in listing.lower() or "Alpha email" in listing
    page = admin_client.get(f"/admin/campaigns/message/{Message.objects.get().pk}/change/").content.decode()
    assert "ZX81" in page
