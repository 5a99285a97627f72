"""Taking, capturing and refunding payments through the fake gateway: answers recorded as statuses,
retries that never charge twice, refunds that never exceed the capture, amounts in each currency's
minor units, nothing secret in the logs."""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from django_q.models import Schedule

from integrations import services as integration_services
from integrations.errors import AuthError, BadResponse, RateLimited
from integrations.models import ConnectionStatus
from payments import service
from payments.gateways.base import PaymentStatus, RefundStatus
from payments.models import Payment, Refund
from tenants.models import AuditLog

from .fake_gateway import CLIENT_SECRET

pytestmark = pytest.mark.django_db


def pay(connection, amount="100.00", currency="USD", **kwargs) -> Payment:
    kwargs.setdefault("payment_method", "pm_card_visa")
    return service.create_payment(connection.tenant, connection, Decimal(amount), currency, **kwargs)


# --- Charging -------------------------------------------------------------------------------------------


def test_a_card_payment_succeeds_and_keeps_the_gateways_ids(stripe_a, fake_bank):
    payment = pay(stripe_a, description="Order #1001", metadata={"order": "1001"})

    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    assert (payment.amount, payment.amount_captured, payment.currency) == (Decimal("100"), Decimal("100"), "USD")
    assert payment.gateway_id == "pi_0001"
    assert payment.gateway_reference == "ch_0001"
    assert payment.extra == {"charge_id": "ch_0001"}
    sent = fake_bank.charges[payment.idempotency_key].request
    assert sent.metadata == {"order": "1001", "hub_payment_id": str(payment.uuid)}
    assert AuditLog.objects.filter(action="payment.created", tenant=stripe_a.tenant).exists()


def test_the_idempotency_key_is_derived_from_the_payments_own_id(stripe_a, fake_bank):
    payment = pay(stripe_a)
    assert payment.idempotency_key == f"pay_{payment.uuid.hex}"
    assert len(payment.idempotency_key) <= 45  # Square's limit, the shortest of the four
    assert fake_bank.calls == [("charge", payment.idempotency_key)]


def test_a_declined_card_is_a_failed_payment_with_the_gateways_reason(stripe_a, fake_bank):
    payment = pay(stripe_a, payment_method="pm_card_chargeDeclined")

    payment.refresh_from_db()
    assert payment.status == PaymentStatus.FAILED
    assert (payment.failure_code, payment.failure_message) == ("card_declined", "Your card was declined.")
    assert payment.amount_captured == 0


def test_a_payment_that_needs_authentication_requires_action_with_a_client_secret(stripe_a, fake_bank):
    payment = pay(stripe_a, payment_method="pm_card_authenticationRequired")

    payment.refresh_from_db()
    assert payment.status == PaymentStatus.REQUIRES_ACTION
    assert payment.client_secret == CLIENT_SECRET


def test_a_timeout_is_retried_with_the_same_idempotency_key_and_charges_once(stripe_a, fake_bank):
    fake_bank.lose_answers(1)  # the gateway charged, and the answer was lost on the way back

    payment = pay(stripe_a)

    assert [call for call, _ in fake_bank.calls] == ["charge", "charge"]
    assert {key for _, key in fake_bank.calls} == {payment.idempotency_key}
    assert len(fake_bank.charges) == 1
    assert Payment.objects.get().status == PaymentStatus.SUCCEEDED


def test_a_rate_limit_is_retried_too(stripe_a, fake_bank):
    fake_bank.refuse_next(RateLimited("The platform answered 429."))
    assert pay(stripe_a).status == PaymentStatus.SUCCEEDED
    assert len(fake_bank.calls) == 2


def test_when_every_attempt_times_out_the_payment_waits_and_asking_again_charges_once(stripe_a, fake_bank):
    fake_bank.lose_answers(3)

    payment = pay(stripe_a)

    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PROCESSING
    assert payment.failure_code == "unavailable"
    assert "may have been taken" in payment.failure_message
    payment = service.resend(payment)
    assert payment.status == PaymentStatus.SUCCEEDED
    assert payment.failure_code == ""
    assert len(fake_bank.charges) == 1
    assert {key for _, key in fake_bank.calls} == {payment.idempotency_key}
    assert len(fake_bank.calls) == 4


def test_a_request_the_gateway_refuses_fails_the_payment_without_retrying(stripe_a, fake_bank):
    fake_bank.refuse_next(AuthError("The platform answered 401.", hint="Check the secret key."))

    payment = pay(stripe_a)

    assert payment.status == PaymentStatus.FAILED
    assert payment.failure_code == "auth"
    assert "Check the secret key" in payment.failure_message
    assert len(fake_bank.calls) == 1


# --- Amounts --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "minor"), [("500", "JPY", 500), ("10.50", "usd", 1050), ("1.234", "KWD", 1234)]
)
def test_amounts_go_to_the_gateway_in_the_currencys_minor_units(stripe_a, fake_bank, amount, currency, minor):
    payment = pay(stripe_a, amount, currency)
    assert payment.currency == currency.upper()
    assert fake_bank.charges[payment.idempotency_key].minor == minor


@pytest.mark.parametrize(("amount", "currency"), [("500.5", "JPY"), ("10.005", "USD")])
def test_more_places_than_the_currency_has_are_refused_before_anything_is_stored(stripe_a, fake_bank, amount, currency):
    with pytest.raises(service.PaymentError, match="decimal places") as refused:
        pay(stripe_a, amount, currency)
    assert refused.value.field == "amount"
    assert not Payment.objects.exists()
    assert not fake_bank.calls


@pytest.mark.parametrize("amount", ["NaN", "Infinity", "1e20", "ten"])
def test_an_amount_that_is_not_a_storable_number_is_refused(stripe_a, fake_bank, amount):
    with pytest.raises(service.PaymentError, match="Give the amount as a number"):
        service.create_payment(stripe_a.tenant, stripe_a, amount, "USD")
    assert not Payment.objects.exists()


def test_a_zero_decimal_refund_is_in_whole_yen(stripe_a, fake_bank):
    payment = pay(stripe_a, "500", "JPY")
    with pytest.raises(service.PaymentError, match="decimal places"):
        service.refund(payment, Decimal("100.5"))
    refund = service.refund(payment, Decimal("120"))
    payment.refresh_from_db()
    assert (refund.amount, payment.amount_refunded, payment.refundable) == (
        Decimal("120"),
        Decimal("120"),
        Decimal("380"),
    )


# --- Refunds --------------------------------------------------------------------------------------------


def test_a_partial_then_a_full_refund(stripe_a, fake_bank):
    payment = pay(stripe_a)

    first = service.refund(payment, Decimal("30.00"), "damaged")
    payment.refresh_from_db()
    assert first.status == RefundStatus.SUCCEEDED
    assert (payment.status, payment.amount_refunded, payment.refundable) == (
        PaymentStatus.PARTIALLY_REFUNDED,
        Decimal("30"),
        Decimal("70"),
    )

    rest = service.refund(payment)  # no amount: all that is left
    payment.refresh_from_db()
    assert rest.amount == Decimal("70")
    assert (payment.status, payment.amount_refunded, payment.refundable) == (
        PaymentStatus.REFUNDED,
        Decimal("100"),
        Decimal("0"),
    )
    keys = [key for call, key in fake_bank.calls if call == "refund"]
    assert keys == [first.idempotency_key, rest.idempotency_key]
    assert len(set(keys)) == 2
    assert first.idempotency_key == f"ref_{first.uuid.hex}"


def test_a_refund_over_what_is_left_is_refused_with_the_figures(stripe_a, fake_bank):
    payment = pay(stripe_a)
    service.refund(payment, Decimal("30"))

    with pytest.raises(service.PaymentError) as refused:
        service.refund(payment, Decimal("70.01"))

    assert refused.value.field == "amount"
    assert refused.value.message == (
        "At most 70.00 USD can be refunded: 100.00 USD captured, 30.00 USD already refunded."
    )
    assert Refund.objects.count() == 1
    assert len([call for call in fake_bank.calls if call[0] == "refund"]) == 1


def test_a_pending_refund_holds_its_amount(stripe_a, fake_bank):
    fake_bank.refund_status = RefundStatus.PENDING
    payment = pay(stripe_a)
    pending = service.refund(payment, Decimal("60"))
    assert pending.status == RefundStatus.PENDING

    with pytest.raises(service.PaymentError, match=r"At most 40.00 USD .* 60.00 USD in pending refunds"):
        service.refund(payment, Decimal("50"))
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    assert payment.amount_refunded == 0


def test_a_refund_timeout_is_retried_with_the_same_key_and_refunds_once(stripe_a, fake_bank):
    payment = pay(stripe_a)
    fake_bank.lose_answers(1)

    refund = service.refund(payment, Decimal("10"))

    assert refund.status == RefundStatus.SUCCEEDED
    assert len(fake_bank.refunds) == 1
    assert [call for call in fake_bank.calls if call[0] == "refund"] == [("refund", refund.idempotency_key)] * 2


def test_a_refund_the_gateway_refuses_is_failed_and_releases_its_amount(stripe_a, fake_bank):
    payment = pay(stripe_a)
    fake_bank.refuse_next(BadResponse("The platform answered 400: charge_disputed."))

    refund = service.refund(payment, Decimal("10"))

    assert refund.status == RefundStatus.FAILED
    assert "charge_disputed" in refund.failure_message
    payment.refresh_from_db()
    assert (payment.status, payment.refundable) == (PaymentStatus.SUCCEEDED, Decimal("100"))


@pytest.mark.parametrize("method", ["pm_card_chargeDeclined", "pm_card_authenticationRequired"])
def test_only_a_payment_that_succeeded_can_be_refunded(stripe_a, fake_bank, method):
    payment = pay(stripe_a, payment_method=method)
    with pytest.raises(service.StateConflict, match="Only a payment that succeeded"):
        service.refund(payment)
    assert not Refund.objects.exists()


# --- Authorise and capture --------------------------------------------------------------------------------


def test_an_authorised_payment_is_captured_in_part(stripe_a, fake_bank):
    payment = pay(stripe_a, capture=False)
    assert payment.status == PaymentStatus.AUTHORIZED
    with pytest.raises(service.StateConflict):
        service.refund(payment)

    payment = service.capture(payment, Decimal("80"))

    assert (payment.status, payment.amount_captured, payment.refundable) == (
        PaymentStatus.SUCCEEDED,
        Decimal("80"),
        Decimal("80"),
    )
    assert ("capture", f"cap_{payment.uuid.hex}") in fake_bank.calls
    with pytest.raises(service.StateConflict, match="Only an authorised payment"):
        service.capture(payment)


def test_more_than_was_authorised_cannot_be_captured(stripe_a, fake_bank):
    payment = pay(stripe_a, capture=False)
    with pytest.raises(service.PaymentError, match=r"At most the authorised 100\.00 USD"):
        service.capture(payment, Decimal("100.01"))


# --- Refusals before the gateway ------------------------------------------------------------------------


@pytest.mark.parametrize("number", ["4242424242424242", "4242 4242 4242 4242", "4000-0025-0000-3155"])
def test_a_card_number_is_refused_and_never_stored(stripe_a, fake_bank, number):
    with pytest.raises(service.PaymentError, match="never takes card data") as refused:
        pay(stripe_a, payment_method=number)
    assert number not in refused.value.message
    assert not Payment.objects.exists()
    assert not fake_bank.calls


def test_another_tenants_connection_is_refused(stripe_a, stripe_b, fake_bank):
    with pytest.raises(service.PaymentError, match="not one of your payment gateways"):
        service.create_payment(stripe_a.tenant, stripe_b, Decimal("10"), "USD")


def test_a_shop_connection_is_not_a_gateway(tenant_a, make_connection, fake_bank):
    shop = make_connection(tenant_a, "shopify")
    with pytest.raises(service.PaymentError, match="not one of your payment gateways"):
        service.create_payment(tenant_a, shop, Decimal("10"), "USD")


def test_a_disabled_connection_takes_no_payments(stripe_a, fake_bank):
    stripe_a.enabled = False
    stripe_a.save()
    with pytest.raises(service.PaymentError, match="disabled"):
        pay(stripe_a)


def test_an_order_of_another_tenant_is_refused(stripe_a, tenant_b, make_connection, make_order, fake_bank):
    order = make_order(make_connection(tenant_b, "shopify"))
    with pytest.raises(service.PaymentError, match="No order of yours"):
        pay(stripe_a, order=order)


# --- Nothing secret in the logs -----------------------------------------------------------------------------


def test_client_secrets_and_payment_method_tokens_are_never_logged(stripe_a, fake_bank, caplog):
    caplog.set_level(logging.DEBUG)
    fake_bank.lose_answers(1)
    pay(stripe_a, payment_method="pm_card_authenticationRequired", customer="cus_secretive_0001")
    fake_bank.lose_answers(3)
    paid = pay(stripe_a, payment_method="pm_card_visa")
    service.resend(paid)
    service.refund(Payment.objects.get(pk=paid.pk), Decimal("5"))

    assert "Payment" in caplog.text and "same idempotency key" in caplog.text  # it does log, and says what
    for secret in (CLIENT_SECRET, "pm_card_authenticationRequired", "pm_card_visa", "cus_secretive_0001"):
        assert secret not in caplog.text


# --- Out of order ---------------------------------------------------------------------------------------------


def test_a_status_never_goes_back_and_the_newer_event_wins_before_the_money_is_taken(stripe_a, fake_bank):
    payment = pay(stripe_a, payment_method="pm_card_authenticationRequired")
    now = timezone.now()
    assert service.move(payment, PaymentStatus.FAILED, now + timedelta(seconds=10))
    assert not service.move(payment, PaymentStatus.REQUIRES_ACTION, now + timedelta(seconds=5))  # older
    assert service.move(payment, PaymentStatus.REFUNDED, now)  # further along, whatever its time
    assert not service.move(payment, PaymentStatus.SUCCEEDED, now + timedelta(hours=1))
    assert service.move(payment, PaymentStatus.DISPUTED, now)
    assert not service.move(payment, PaymentStatus.REFUNDED, now + timedelta(hours=1))
    assert payment.status == PaymentStatus.DISPUTED


# --- The connection: tested like any other, never scheduled ----------------------------------------------------


def test_a_payment_connection_is_tested_through_its_gateway_and_never_scheduled(
    stripe_a, fake_bank, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        result = integration_services.test_connection(stripe_a)
    stripe_a.refresh_from_db()
    assert result.ok and result.message == "Fake gateway, test mode."
    assert stripe_a.status == ConnectionStatus.CONNECTED
    assert stripe_a.sync_frequency != "manual"
    assert not Schedule.objects.filter(name=f"sync-connection-{stripe_a.pk}").exists()


def test_a_payment_connection_missing_its_key_fails_the_test(tenant_a, make_connection, fake_bank):
    connection = make_connection(tenant_a, "stripe", credentials={})
    result = integration_services.test_connection(connection)
    connection.refresh_from_db()
    assert not result.ok
    assert "Secret key" in result.message
    assert connection.status == ConnectionStatus.FAILING
