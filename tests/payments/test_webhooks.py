"""Gateway webhooks update payments through the webhook pipeline: succeeded, failed, requires action,
refunded, disputed; once per refund, never backwards, within the connection's tenant only. Payloads
are in tests/fixtures/<provider>/webhooks/, shaped like each gateway's documented examples."""

from __future__ import annotations

import copy
import json
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import stripe
from django.test import Client
from django.utils import timezone

from payments import service
from payments.gateways.base import PaymentStatus, RefundStatus
from payments.models import Payment, Refund, RefundSource
from webhooks import processing
from webhooks.models import EventStatus, WebhookEvent

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PI = "pi_3PZ8sJ2eZvKYlo2C0k1XyQmB"
CHARGE = "ch_3PZ8sJ2eZvKYlo2C0gQ9c7Hd"
PAYPAL_ORDER, PAYPAL_CAPTURE = "5O190127TN364715T", "42311647XV020574X"
SQUARE_PAYMENT = "hYy9pRFVxpDsO1FB05SunFWUe9JZY"
ANET_TRANSACTION = "60020981676"


def fixture(provider: str, topic: str) -> dict:
    return json.loads((FIXTURES / provider / "webhooks" / f"{topic}.json").read_text())


def deliver(connection, payload: dict, topic: str | None = None, event_id: str | None = None) -> WebhookEvent:
    """Store the event as the receiver would, and process it as the worker does."""
    provider = connection.platform
    topic = topic or payload.get("type") or payload.get("event_type") or payload.get("eventType")
    event_id = event_id or str(payload.get("id") or payload.get("event_id") or payload.get("notificationId"))
    event = WebhookEvent.objects.create(
        tenant=connection.tenant,
        connection=connection,
        provider=provider,
        topic=topic,
        event_id=event_id,
        body=json.dumps(payload),
    )
    processing.process(event.pk)
    event.refresh_from_db()
    return event


def stored(connection, gateway_id: str, status=PaymentStatus.PROCESSING, amount="20.00", **kwargs) -> Payment:
    """A payment as the hub stores it after the gateway's answer (its id known; the payloads' own times
    are in 2024, so the stored state is older than every event unless a test says otherwise)."""
    kwargs.setdefault("status_updated_at", datetime(2024, 1, 1, tzinfo=UTC))
    return Payment.objects.create(
        tenant=connection.tenant,
        connection=connection,
        amount=Decimal(amount),
        currency=kwargs.pop("currency", "USD"),
        status=status,
        gateway_id=gateway_id,
        **kwargs,
    )


@pytest.fixture
def paypal_a(tenant_a, make_connection, fake_bank):
    return make_connection(tenant_a, "paypal", credentials={"client_id": "id", "client_secret": "s", "webhook_id": "w"})


@pytest.fixture
def square_a(tenant_a, make_connection, fake_bank):
    return make_connection(tenant_a, "square", credentials={"access_token": "EAAA", "location_id": "L1"})


@pytest.fixture
def anet_a(tenant_a, make_connection, fake_bank):
    return make_connection(tenant_a, "authorize_net", credentials={"api_login_id": "l", "transaction_key": "k"})


# --- Stripe ----------------------------------------------------------------------------------------------


def test_stripe_payment_intent_succeeded_takes_a_payment_that_required_action(stripe_a):
    payment = stored(stripe_a, PI, PaymentStatus.REQUIRES_ACTION)

    event = deliver(stripe_a, fixture("stripe", "payment_intent.succeeded"))

    payment.refresh_from_db()
    assert event.status == EventStatus.PROCESSED
    assert event.outcome == f"payment {payment.pk}: requires_action → succeeded"
    assert (payment.status, payment.amount_captured, payment.gateway_reference) == (
        PaymentStatus.SUCCEEDED,
        Decimal("20"),
        CHARGE,
    )
    assert payment.status_updated_at.timestamp() == 1720000200


def test_stripe_payment_failed_records_the_decline(stripe_a):
    payment = stored(stripe_a, PI, PaymentStatus.REQUIRES_ACTION)
    deliver(stripe_a, fixture("stripe", "payment_intent.payment_failed"))
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.FAILED
    assert (payment.failure_code, payment.failure_message) == (
        "insufficient_funds",
        "Your card has insufficient funds.",
    )


def test_stripe_requires_action(stripe_a):
    payment = stored(stripe_a, PI)
    deliver(stripe_a, fixture("stripe", "payment_intent.requires_action"))
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.REQUIRES_ACTION


def test_stripe_charge_refunded_in_part_then_in_full(stripe_a):
    payment = stored(stripe_a, PI, PaymentStatus.SUCCEEDED, amount_captured=Decimal("20"))
    partial = fixture("stripe", "charge.refunded")

    deliver(stripe_a, partial)
    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded) == (PaymentStatus.PARTIALLY_REFUNDED, Decimal("5"))

    full = copy.deepcopy(partial)
    full["id"], full["created"] = "evt_second_refund", partial["created"] + 60
    full["data"]["object"].update(amount_refunded=2000, refunded=True)
    deliver(stripe_a, full)
    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded, payment.refundable) == (
        PaymentStatus.REFUNDED,
        Decimal("20"),
        Decimal("0"),
    )


def test_stripe_dispute_marks_the_payment_and_a_later_success_event_does_not_undo_it(stripe_a):
    payment = stored(stripe_a, PI, PaymentStatus.SUCCEEDED, amount_captured=Decimal("20"))
    deliver(stripe_a, fixture("stripe", "charge.dispute.created"))
    late = fixture("stripe", "payment_intent.succeeded")
    late["created"] += 10_000  # even a newer event cannot take it back before the dispute

    event = deliver(stripe_a, late)

    payment.refresh_from_db()
    assert (payment.status, payment.failure_code) == (PaymentStatus.DISPUTED, "fraudulent")
    assert "left disputed" in event.outcome


def test_a_refund_delivered_before_the_success_leaves_the_payment_refunded(stripe_a):
    payment = stored(stripe_a, PI, PaymentStatus.REQUIRES_ACTION)
    refunded = fixture("stripe", "charge.refunded")
    refunded["data"]["object"].update(amount_refunded=2000, refunded=True)

    deliver(stripe_a, refunded)  # sent after the success, delivered first
    event = deliver(stripe_a, fixture("stripe", "payment_intent.succeeded"))

    payment.refresh_from_db()
    assert event.status == EventStatus.PROCESSED
    assert "left refunded" in event.outcome
    assert (payment.status, payment.amount_captured, payment.amount_refunded) == (
        PaymentStatus.REFUNDED,
        Decimal("20"),
        Decimal("20"),
    )


def test_an_older_event_before_the_money_is_taken_loses_to_a_newer_one(stripe_a):
    payment = stored(stripe_a, PI, PaymentStatus.PROCESSING)
    deliver(stripe_a, fixture("stripe", "payment_intent.payment_failed"))  # at 1720000100
    event = deliver(stripe_a, fixture("stripe", "payment_intent.requires_action"))  # at 1720000050, delivered late

    payment.refresh_from_db()
    assert payment.status == PaymentStatus.FAILED
    assert "older" in event.outcome


def test_an_event_can_name_the_payment_by_the_hubs_own_id_before_the_gateway_id_is_stored(stripe_a):
    payment = stored(stripe_a, "", PaymentStatus.PROCESSING)
    succeeded = fixture("stripe", "payment_intent.succeeded")
    succeeded["data"]["object"]["metadata"]["hub_payment_id"] = str(payment.uuid)

    deliver(stripe_a, succeeded)

    payment.refresh_from_db()
    assert (payment.status, payment.gateway_id) == (PaymentStatus.SUCCEEDED, PI)


def test_an_event_about_a_payment_not_made_through_the_hub_is_left_alone(stripe_a):
    event = deliver(stripe_a, fixture("stripe", "payment_intent.succeeded"))
    assert event.status == EventStatus.PROCESSED
    assert event.outcome == f"No payment made through the hub has the id {PI}: left alone."


def test_an_unknown_id_is_retried_while_a_payment_waits_for_its_gateways_answer(stripe_a):
    waiting = stored(stripe_a, "", PaymentStatus.PROCESSING)
    waiting.created_at = timezone.now()
    waiting.save()
    event = deliver(stripe_a, fixture("stripe", "payment_intent.succeeded"))
    assert event.status == EventStatus.RETRYING
    assert "waiting for its gateway's answer" in event.error


def test_another_tenants_event_never_touches_this_tenants_payment(stripe_a, stripe_b):
    mine = stored(stripe_a, PI, PaymentStatus.SUCCEEDED, amount_captured=Decimal("20"))
    refunded = fixture("stripe", "charge.refunded")
    refunded["data"]["object"]["metadata"]["hub_payment_id"] = str(mine.uuid)

    event = deliver(stripe_b, refunded)  # the same ids, on tenant B's connection

    mine.refresh_from_db()
    assert (mine.status, mine.amount_refunded) == (PaymentStatus.SUCCEEDED, Decimal("0"))
    assert "left alone" in event.outcome


def test_a_payload_that_does_not_read_is_parked(stripe_a):
    event = deliver(stripe_a, {"id": "evt_x", "type": "charge.refunded", "data": {"object": {"id": "ch_x"}}})
    assert event.status == EventStatus.PARKED
    assert "does not read" in event.error


def test_a_signed_stripe_delivery_goes_through_the_pipeline(stripe_a, settings):
    settings.WEBHOOK_CONNECTION_CACHE_SECONDS = 0
    payment = stored(stripe_a, PI, PaymentStatus.REQUIRES_ACTION)
    body = json.dumps(fixture("stripe", "payment_intent.succeeded"))
    signature = stripe.WebhookSignature.generate_signature_header(body, "whsec_fake", int(time.time()))

    response = Client().post(
        f"/webhooks/stripe/{stripe_a.uuid}/",
        data=body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=signature,
    )
    assert response.status_code == 200
    processing.process(WebhookEvent.objects.get(connection=stripe_a).pk)

    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED


# --- PayPal ----------------------------------------------------------------------------------------------


def test_paypal_capture_completed_by_order_id_keeps_the_capture_id(paypal_a):
    payment = stored(paypal_a, PAYPAL_ORDER, PaymentStatus.REQUIRES_ACTION, amount="30.00")
    deliver(paypal_a, fixture("paypal", "PAYMENT.CAPTURE.COMPLETED"))
    payment.refresh_from_db()
    assert (payment.status, payment.amount_captured, payment.gateway_reference) == (
        PaymentStatus.SUCCEEDED,
        Decimal("30"),
        PAYPAL_CAPTURE,
    )


def test_paypal_capture_denied(paypal_a):
    payment = stored(paypal_a, PAYPAL_ORDER, PaymentStatus.REQUIRES_ACTION, amount="30.00")
    deliver(paypal_a, fixture("paypal", "PAYMENT.CAPTURE.DENIED"))
    payment.refresh_from_db()
    assert (payment.status, payment.failure_message) == (
        PaymentStatus.FAILED,
        "Payment was denied by the payment processor.",
    )


def test_paypal_refund_found_by_capture_id_is_counted_once(paypal_a):
    payment = stored(
        paypal_a,
        PAYPAL_ORDER,
        PaymentStatus.SUCCEEDED,
        amount="30.00",
        amount_captured=Decimal("30"),
        gateway_reference=PAYPAL_CAPTURE,
    )
    refunded = fixture("paypal", "PAYMENT.CAPTURE.REFUNDED")

    deliver(paypal_a, refunded)
    deliver(paypal_a, refunded, event_id="WH-resent-with-another-id")

    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded) == (PaymentStatus.PARTIALLY_REFUNDED, Decimal("10"))
    (refund,) = Refund.objects.filter(payment=payment)
    assert (refund.gateway_id, refund.source, refund.status) == (
        "1Y107995YT783435V",
        RefundSource.GATEWAY,
        RefundStatus.SUCCEEDED,
    )


def test_paypal_dispute_by_capture_id(paypal_a):
    payment = stored(paypal_a, PAYPAL_ORDER, PaymentStatus.SUCCEEDED, amount="30.00", gateway_reference=PAYPAL_CAPTURE)
    deliver(paypal_a, fixture("paypal", "CUSTOMER.DISPUTE.CREATED"))
    payment.refresh_from_db()
    assert (payment.status, payment.failure_code) == (PaymentStatus.DISPUTED, "merchandise_or_service_not_received")


def test_paypal_approval_captures_a_payment_to_be_taken_at_once(paypal_a, fake_bank):
    payment = service.create_payment(paypal_a.tenant, paypal_a, Decimal("30"), "USD", payment_method="pm_paypal")
    assert payment.status == PaymentStatus.REQUIRES_ACTION
    approved = fixture("paypal", "CHECKOUT.ORDER.APPROVED")
    approved["resource"]["id"] = payment.gateway_id

    event = deliver(paypal_a, approved)

    payment.refresh_from_db()
    assert event.outcome == f"payment {payment.pk} approved and captured: succeeded"
    assert (payment.status, payment.amount_captured) == (PaymentStatus.SUCCEEDED, Decimal("30"))
    assert ("capture", f"cap_{payment.uuid.hex}") in fake_bank.calls


def test_paypal_approval_of_a_payment_only_to_be_authorised_waits_for_the_clients_capture(paypal_a, fake_bank):
    payment = service.create_payment(
        paypal_a.tenant, paypal_a, Decimal("30"), "USD", payment_method="pm_paypal", capture=False
    )
    approved = fixture("paypal", "CHECKOUT.ORDER.APPROVED")
    approved["resource"]["purchase_units"][0]["custom_id"] = str(payment.uuid)  # found by the hub's own id

    event = deliver(paypal_a, approved)

    payment.refresh_from_db()
    assert payment.status == PaymentStatus.REQUIRES_ACTION
    assert "left for the client's capture" in event.outcome
    assert not [call for call in fake_bank.calls if call[0] == "capture"]


# --- Square ----------------------------------------------------------------------------------------------


def test_square_payment_completed_with_a_refund_reported(square_a):
    payment = stored(square_a, SQUARE_PAYMENT, PaymentStatus.PROCESSING, amount="25.00")
    update = fixture("square", "payment.updated")
    update["data"]["object"]["payment"]["refunded_money"] = {"amount": 1000, "currency": "USD"}

    deliver(square_a, update)

    payment.refresh_from_db()
    assert (payment.status, payment.amount_captured, payment.amount_refunded) == (
        PaymentStatus.PARTIALLY_REFUNDED,
        Decimal("25"),
        Decimal("10"),
    )


def test_square_refund_made_by_the_hub_completes_and_a_late_created_event_does_not_undo_it(square_a):
    payment = stored(square_a, SQUARE_PAYMENT, PaymentStatus.SUCCEEDED, amount="25.00", amount_captured=Decimal("25"))
    refund_id = fixture("square", "refund.updated")["data"]["id"]
    mine = Refund.objects.create(
        tenant=payment.tenant, payment=payment, amount=Decimal("10"), currency="USD", gateway_id=refund_id
    )

    deliver(square_a, fixture("square", "refund.updated"))  # COMPLETED, delivered first
    event = deliver(square_a, fixture("square", "refund.created"))  # PENDING, delivered late
    deliver(square_a, fixture("square", "payment.updated") | {"event_id": "e-3"}, event_id="e-3")

    mine.refresh_from_db()
    payment.refresh_from_db()
    assert mine.status == RefundStatus.SUCCEEDED
    assert "already succeeded" in event.outcome
    assert (payment.status, payment.amount_refunded) == (PaymentStatus.PARTIALLY_REFUNDED, Decimal("10"))


# --- Authorize.Net ---------------------------------------------------------------------------------------


def test_authorize_net_authcapture_approved(anet_a):
    payment = stored(anet_a, ANET_TRANSACTION, amount="45.00")
    deliver(anet_a, fixture("authorize_net", "net.authorize.payment.authcapture.created"))
    payment.refresh_from_db()
    assert (payment.status, payment.amount_captured) == (PaymentStatus.SUCCEEDED, Decimal("45"))


def test_authorize_net_authcapture_declined(anet_a):
    payment = stored(anet_a, ANET_TRANSACTION, amount="45.00")
    declined = fixture("authorize_net", "net.authorize.payment.authcapture.created")
    declined["payload"]["responseCode"] = 2
    deliver(anet_a, declined)
    payment.refresh_from_db()
    assert (payment.status, payment.failure_code) == (PaymentStatus.FAILED, "declined")


def test_authorize_net_fraud_declined(anet_a):
    payment = stored(anet_a, ANET_TRANSACTION, amount="45.00")
    deliver(anet_a, fixture("authorize_net", "net.authorize.payment.fraud.declined"))
    payment.refresh_from_db()
    assert (payment.status, payment.failure_code) == (PaymentStatus.FAILED, "fraud_declined")


def test_authorize_net_void_cancels_the_payment(anet_a):
    payment = stored(anet_a, ANET_TRANSACTION, PaymentStatus.SUCCEEDED, amount="45.00")
    deliver(anet_a, fixture("authorize_net", "net.authorize.payment.void.created"))
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.CANCELED


def test_authorize_net_refund_made_by_the_hub_is_known_by_its_own_transaction(anet_a):
    payment = stored(anet_a, ANET_TRANSACTION, PaymentStatus.SUCCEEDED, amount="45.00", amount_captured=Decimal("45"))
    Refund.objects.create(
        tenant=payment.tenant, payment=payment, amount=Decimal("15"), currency="USD", gateway_id="60020981701"
    )
    deliver(anet_a, fixture("authorize_net", "net.authorize.payment.refund.created"))
    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded) == (PaymentStatus.PARTIALLY_REFUNDED, Decimal("15"))


def test_authorize_net_refund_made_elsewhere_cannot_be_placed_and_is_left_alone(anet_a):
    stored(anet_a, ANET_TRANSACTION, PaymentStatus.SUCCEEDED, amount="45.00")
    event = deliver(anet_a, fixture("authorize_net", "net.authorize.payment.refund.created"))
    assert event.status == EventStatus.PROCESSED
    assert event.outcome == "No payment made through the hub has the id 60020981701: left alone."
