"""The messaging API: send an SMS or an email, list and read messages; scopes, errors and tenant
isolation."""

from __future__ import annotations

import pytest

from campaigns import messaging
from campaigns.models import Message, MessageStatus
from tenants.models import ApiKey
from tests.api.conftest import assert_error_shape, bearer

pytestmark = pytest.mark.django_db


@pytest.fixture
def key_a(tenant_a) -> str:
    return ApiKey.generate(tenant_a, "messages", scopes=["campaigns:read", "campaigns:write"])[1]


@pytest.fixture
def key_b(tenant_b) -> str:
    return ApiKey.generate(tenant_b, "messages", scopes=["campaigns:read", "campaigns:write"])[1]


def test_sending_an_sms_answers_201_with_the_providers_id_and_status(api_client, key_a, twilio_a, office):
    response = api_client.post(
        "/api/v1/sms/send",
        {"to": "+14155552671", "body": "Shipped!", "priority": "high"},
        format="json",
        **bearer(key_a),
    )
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "queued"
    assert body["provider_id"].startswith("SM")
    assert (body["channel"], body["provider"], body["connection"], body["priority"]) == (
        "sms",
        "twilio",
        twilio_a.pk,
        "high",
    )
    assert "body" not in body
    assert office.sms[0].body == "Shipped!"


def test_an_sms_to_a_number_not_in_e164_is_a_400_naming_the_field(api_client, key_a, twilio_a, office):
    response = api_client.post("/api/v1/sms/send", {"to": "4155552671", "body": "Hi"}, format="json", **bearer(key_a))
    assert response.status_code == 400
    assert_error_shape(response.json(), "invalid")
    assert "E.164" in str(response.json()["error"]["details"]["to"])
    assert not Message.objects.exists()


def test_sending_an_email_answers_201_and_derives_the_text_part(api_client, key_a, sendgrid_a, office):
    response = api_client.post(
        "/api/v1/email/send",
        {"to": "c@example.com", "subject": "Sale", "html": '<p>See <a href="https://s.example.com">it</a></p>'},
        format="json",
        **bearer(key_a),
    )
    assert response.status_code == 201
    assert response.json()["subject"] == "Sale"
    assert office.emails[0].text == "See it (https://s.example.com)"


def test_an_email_to_a_bad_address_is_a_400(api_client, key_a, sendgrid_a, office):
    response = api_client.post(
        "/api/v1/email/send", {"to": "nobody", "subject": "Sale", "text": "Hi"}, format="json", **bearer(key_a)
    )
    assert response.status_code == 400
    assert "valid email address" in str(response.json()["error"]["details"]["to"])


def test_a_provider_refusal_is_a_201_with_the_failed_message(api_client, key_a, twilio_a, office):
    from campaigns.providers.base import SendResult

    office.answer_next(SendResult(status="failed", failure_code="21211", failure_message="Invalid 'To' number."))
    response = api_client.post("/api/v1/sms/send", {"to": "+14155552671", "body": "Hi"}, format="json", **bearer(key_a))
    assert response.status_code == 201
    assert (response.json()["status"], response.json()["failure_code"]) == ("failed", "21211")


def test_without_a_connection_of_the_channel_sending_is_a_400(api_client, key_a, twilio_a, office):
    response = api_client.post(
        "/api/v1/email/send", {"to": "c@example.com", "subject": "Sale", "text": "Hi"}, format="json", **bearer(key_a)
    )
    assert response.status_code == 400
    assert "no enabled Email connection" in str(response.json()["error"]["details"]["connection"])


def test_another_tenants_connection_cannot_be_named(api_client, key_a, twilio_a, twilio_b, office):
    response = api_client.post(
        "/api/v1/sms/send",
        {"to": "+14155552671", "body": "Hi", "connection": twilio_b.pk},
        format="json",
        **bearer(key_a),
    )
    assert response.status_code == 400
    assert office.sms == []


def test_sending_needs_the_campaigns_write_scope(api_client, tenant_a, twilio_a, office):
    reader = ApiKey.generate(tenant_a, "reader", scopes=["campaigns:read"])[1]
    response = api_client.post(
        "/api/v1/sms/send", {"to": "+14155552671", "body": "Hi"}, format="json", **bearer(reader)
    )
    assert response.status_code == 403
    assert office.sms == []


def test_messages_are_listed_with_filters_and_another_tenants_is_a_404(
    api_client, key_a, key_b, tenant_a, twilio_a, sendgrid_a, office
):
    sms = messaging.send_sms(tenant_a, twilio_a, "+14155552671", "Hi")
    email = messaging.send_email(tenant_a, sendgrid_a, "c@example.com", "Sale", text="Hi")
    Message.objects.filter(pk=email.pk).update(status=MessageStatus.DELIVERED)

    listed = api_client.get("/api/v1/messages", **bearer(key_a)).json()
    assert {m["id"] for m in listed["results"]} == {sms.pk, email.pk}
    only_sms = api_client.get("/api/v1/messages?channel=sms", **bearer(key_a)).json()
    assert [m["id"] for m in only_sms["results"]] == [sms.pk]
    delivered = api_client.get("/api/v1/messages?status=delivered", **bearer(key_a)).json()
    assert [m["id"] for m in delivered["results"]] == [email.pk]
    by_connection = api_client.get(f"/api/v1/messages?connection={twilio_a.pk}", **bearer(key_a)).json()
    assert [m["id"] for m in by_connection["results"]] == [sms.pk]

    assert api_client.get(f"/api/v1/messages/{sms.pk}", **bearer(key_a)).json()["provider_id"] == sms.provider_id
    assert api_client.get(f"/api/v1/messages/{sms.pk}", **bearer(key_b)).status_code == 404
    assert api_client.get("/api/v1/messages", **bearer(key_b)).json()["results"] == []


def test_an_unknown_status_filter_is_a_400(api_client, key_a):
    response = api_client.get("/api/v1/messages?status=lost", **bearer(key_a))
    assert response.status_code == 400
