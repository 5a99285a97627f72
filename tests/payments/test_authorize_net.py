"""The Authorize.Net gateway against the local fake Authorize.Net (tests/fakes/authorize_net_server.py):
Accept.js tokens only, approvals, declines and reviews as answers, authorise then capture, the
duplicate window that makes a retry after a timeout one transaction, refunds in part and in full
(and the void before settlement), wrong keys, and the connection test."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import requests

from integrations.errors import AuthError, BadResponse, ConfigurationError, NotFound
from integrations.http import HttpClient
from payments.gateways import get_gateway
from payments.gateways.authorize_net import AuthorizeNetGateway
from payments.gateways.authorize_net_api import short_ref
from payments.gateways.base import ChargeRequest, PaymentStatus, RefundRequest, RefundStatus
from tests.fakes.authorize_net_server import LOGIN_ID, PATH, TEST_CARD, TRANSACTION_KEY, FakeAuthorizeNet

pytestmark = pytest.mark.django_db

KEY = "payment-41-charge"


@pytest.fixture
def anet():
    with FakeAuthorizeNet() as fake:
        yield fake


@pytest.fixture
def connect(anet, make_connection, tenant_a):
    def connect(*, timeout: tuple[float, float] = (2.0, 10.0), **credentials: str) -> AuthorizeNetGateway:
        connection = make_connection(
            tenant_a, "authorize_net", credentials=anet.credentials(**credentials), base_url=anet.url
        )
        return get_gateway(connection, client=HttpClient(allow_private=True, timeout=timeout, sleep=lambda s: None))

    return connect


@pytest.fixture
def gateway(connect) -> AuthorizeNetGateway:
    return connect()


def charge(anet: FakeAuthorizeNet, amount: str = "10.50", *, card: str = "4111111111111111", **kwargs: Any):
    defaults: dict[str, Any] = {
        "idempotency_key": KEY,
        "amount": Decimal(amount),
        "currency": "USD",
        "payment_method": anet.nonce(card),
    }
    return ChargeRequest(**{**defaults, **kwargs})


def sent(anet: FakeAuthorizeNet, name: str = "createTransactionRequest") -> list[dict[str, Any]]:
    return [body[name] for body in anet.requests if name in body]


def test_a_charge_sends_the_accept_token_in_the_schemas_order_and_succeeds(gateway, anet):
    request = charge(anet, customer="CUST-1042", description="Order #1042")
    payment = gateway.charge(request)

    [body] = sent(anet)
    assert list(body) == ["merchantAuthentication", "refId", "transactionRequest"]
    assert body["merchantAuthentication"] == {"name": LOGIN_ID, "transactionKey": TRANSACTION_KEY}
    ref = short_ref(KEY)
    assert body["refId"] == ref and len(ref) == 20
    assert body["transactionRequest"] == {
        "transactionType": "authCaptureTransaction",
        "amount": "10.50",
        "currencyCode": "USD",
        "payment": {
            "opaqueData": {"dataDescriptor": "COMMON.ACCEPT.INAPP.PAYMENT", "dataValue": request.payment_method}
        },
        "order": {"invoiceNumber": ref, "description": "Order #1042"},
        "customer": {"id": "CUST-1042"},
        "transactionSettings": {"setting": {"settingName": "duplicateWindow", "settingValue": "28800"}},
    }
    [made] = anet.made()
    assert (payment.status, payment.gateway_id) == (PaymentStatus.SUCCEEDED, made.trans_id)
    assert (payment.amount, payment.currency, payment.amount_captured) == (Decimal("10.50"), "USD", Decimal("10.50"))
    assert payment.extra == {"account_number": "XXXX1111"}  # the masked number only


def test_an_email_goes_to_the_customer_email_and_a_long_customer_id_is_left_out(gateway, anet):
    gateway.charge(charge(anet, customer="ada@example.com"))
    gateway.charge(charge(anet, idempotency_key="payment-42-charge", customer="cus_" + "x" * 30))
    first, second = sent(anet)
    assert first["transactionRequest"]["customer"] == {"email": "ada@example.com"}
    assert "customer" not in second["transactionRequest"]


def test_a_card_number_is_refused_before_anything_is_sent(gateway, anet):
    with pytest.raises(ConfigurationError, match="looks like a card number"):
        gateway.charge(charge(anet, payment_method="4111 1111 1111 1111"))
    assert not anet.requests


def test_a_declined_card_is_a_failed_payment_not_an_error(gateway, anet):
    payment = gateway.charge(charge(anet, "2.00", card=TEST_CARD))
    assert (payment.status, payment.failure_code) == (PaymentStatus.FAILED, "2")
    assert payment.failure_message == "This transaction has been declined."
    assert payment.gateway_id == anet.made()[0].trans_id  # Authorize.Net keeps declined transactions
    assert gateway.retrieve(payment.gateway_id).status == PaymentStatus.FAILED


def test_an_expired_card_is_a_failed_payment_too(gateway, anet):
    payment = gateway.charge(charge(anet, "8.00", card=TEST_CARD))
    assert (payment.status, payment.failure_code, payment.failure_message) == (
        PaymentStatus.FAILED,
        "8",
        "The credit card has expired.",
    )


def test_a_payment_held_for_review_is_processing(gateway, anet):
    payment = gateway.charge(charge(anet, "252.00", card=TEST_CARD))
    assert (payment.status, payment.amount_captured) == (PaymentStatus.PROCESSING, None)
    assert gateway.retrieve(payment.gateway_id).status == PaymentStatus.PROCESSING


def test_authorising_then_capturing(gateway, anet):
    authorised = gateway.charge(charge(anet, capture=False))
    assert sent(anet)[0]["transactionRequest"]["transactionType"] == "authOnlyTransaction"
    assert (authorised.status, authorised.amount_captured) == (PaymentStatus.AUTHORIZED, None)

    captured = gateway.capture(authorised.gateway_id, None, "payment-41-capture")
    assert sent(anet)[1]["transactionRequest"] == {
        "transactionType": "priorAuthCaptureTransaction",
        "refTransId": authorised.gateway_id,
    }
    assert (captured.status, captured.amount_captured) == (PaymentStatus.SUCCEEDED, Decimal("10.50"))
    assert captured.extra == {"account_number": "XXXX1111"}


def test_capturing_in_part(gateway, anet):
    authorised = gateway.charge(charge(anet, capture=False))
    captured = gateway.capture(authorised.gateway_id, Decimal("6"), "payment-41-capture")
    assert sent(anet)[1]["transactionRequest"]["amount"] == "6.00"
    assert (captured.status, captured.amount, captured.amount_captured) == (
        PaymentStatus.SUCCEEDED,
        Decimal("10.50"),
        Decimal("6.00"),
    )


def test_capturing_again_after_a_lost_answer_returns_the_captured_payment(gateway, anet):
    authorised = gateway.charge(charge(anet, capture=False))
    gateway.capture(authorised.gateway_id, None, "payment-41-capture")
    again = gateway.capture(authorised.gateway_id, None, "payment-41-capture")
    assert again.status == PaymentStatus.SUCCEEDED
    assert len(anet.made()) == 1


def test_capturing_more_than_was_authorised_is_refused_with_the_reason(gateway, anet):
    authorised = gateway.charge(charge(anet, capture=False))
    with pytest.raises(BadResponse, match="47: The amount requested for settlement cannot be greater"):
        gateway.capture(authorised.gateway_id, Decimal("10.51"), "payment-41-capture")
    assert gateway.retrieve(authorised.gateway_id).status == PaymentStatus.AUTHORIZED


def test_a_retry_after_a_timeout_within_the_duplicate_window_is_one_transaction(connect, anet):
    gateway = connect(timeout=(2.0, 0.5))
    anet.stall(1, seconds=1.5)  # carried out, then answered after the client gave up
    payment = gateway.charge(charge(anet))

    first, second = sent(anet)
    assert first == second  # the same request again, the same refId and invoice number
    [made] = anet.made()
    assert (payment.status, payment.gateway_id, payment.currency, payment.amount_captured) == (
        PaymentStatus.SUCCEEDED,
        made.trans_id,
        "USD",
        Decimal("10.50"),
    )
    assert payment.extra == {"account_number": "XXXX1111"}


def test_the_same_charge_asked_again_later_is_the_same_payment(gateway, anet):
    request = charge(anet)
    anet.advance(seconds=3600)
    first = gateway.charge(request)
    anet.advance(seconds=3600)  # within the 8 hours the hub asks for
    second = gateway.charge(request)
    assert first.gateway_id == second.gateway_id and len(anet.made()) == 1
    assert second.status == PaymentStatus.SUCCEEDED


def test_after_the_duplicate_window_a_retry_is_refused_never_charged_twice(gateway, anet):
    request = charge(anet)
    gateway.charge(request)
    anet.advance(seconds=28800)
    with pytest.raises(BadResponse, match="E00114: Invalid OTS Token"):  # the nonce was used
        gateway.charge(request)
    assert len(anet.made()) == 1


def test_another_payment_of_the_same_amount_on_the_same_card_is_not_a_duplicate(gateway, anet):
    first = gateway.charge(charge(anet))
    second = gateway.charge(charge(anet, idempotency_key="payment-42-charge"))
    assert first.gateway_id != second.gateway_id and len(anet.made()) == 2


def refund(payment, amount: str, key: str, **kwargs: Any) -> RefundRequest:
    return RefundRequest(
        idempotency_key=key,
        gateway_payment_id=payment.gateway_id,
        amount=Decimal(amount),
        currency="USD",
        payment_extra=payment.extra,
        **kwargs,
    )


def test_a_partial_then_a_full_refund_of_a_settled_payment(gateway, anet):
    payment = gateway.charge(charge(anet))
    anet.settle()

    first = gateway.refund(refund(payment, "4.00", "refund-1", reason="Damaged in transit"))
    assert sent(anet)[-1]["transactionRequest"] == {
        "transactionType": "refundTransaction",
        "amount": "4.00",
        "currencyCode": "USD",
        "payment": {"creditCard": {"cardNumber": "XXXX1111", "expirationDate": "XXXX"}},
        "refTransId": payment.gateway_id,
        "order": {"invoiceNumber": short_ref("refund-1"), "description": "Damaged in transit"},
        "transactionSettings": {"setting": {"settingName": "duplicateWindow", "settingValue": "28800"}},
    }
    rest = gateway.refund(refund(payment, "6.50", "refund-2"))
    refunds = anet.made("refundTransaction")
    assert [(r.gateway_id, r.status, r.amount) for r in (first, rest)] == [
        (refunds[0].trans_id, RefundStatus.SUCCEEDED, Decimal("4.00")),
        (refunds[1].trans_id, RefundStatus.SUCCEEDED, Decimal("6.50")),
    ]
    with pytest.raises(BadResponse, match="55: The sum of credits"):
        gateway.refund(refund(payment, "0.01", "refund-3"))


def test_a_refund_retried_after_a_timeout_refunds_once(connect, anet):
    gateway = connect(timeout=(2.0, 0.5))
    payment = gateway.charge(charge(anet))
    anet.settle()
    anet.stall(1, seconds=1.5)
    result = gateway.refund(refund(payment, "4.00", "refund-1"))
    [made] = anet.made("refundTransaction")
    assert (result.status, result.gateway_id, result.amount) == (RefundStatus.SUCCEEDED, made.trans_id, Decimal("4.00"))


def test_refunding_the_whole_payment_before_it_settles_voids_it(gateway, anet):
    payment = gateway.charge(charge(anet))
    result = gateway.refund(refund(payment, "10.50", "refund-1"))
    assert (result.status, result.gateway_id, result.amount) == (
        RefundStatus.SUCCEEDED,
        payment.gateway_id,
        Decimal("10.50"),
    )
    assert result.raw["voided"] is True
    assert gateway.retrieve(payment.gateway_id).status == PaymentStatus.CANCELED
    assert not anet.made("refundTransaction")
    again = gateway.refund(refund(payment, "10.50", "refund-1"))  # a retry: voided once, answered again
    assert again.status == RefundStatus.SUCCEEDED


def test_refunding_part_of_a_payment_before_it_settles_is_refused_with_what_to_do(gateway, anet):
    payment = gateway.charge(charge(anet))
    with pytest.raises(BadResponse, match="once it has settled") as caught:
        gateway.refund(refund(payment, "4.00", "refund-1"))
    assert "once the payment has settled" in caught.value.hint
    assert gateway.retrieve(payment.gateway_id).status == PaymentStatus.SUCCEEDED


def test_a_refund_without_the_kept_card_digits_reads_them_from_the_transaction(gateway, anet):
    payment = gateway.charge(charge(anet))
    anet.settle()
    payment.extra = {}
    result = gateway.refund(refund(payment, "4.00", "refund-1"))
    assert result.status == RefundStatus.SUCCEEDED
    assert sent(anet)[-1]["transactionRequest"]["payment"]["creditCard"]["cardNumber"] == "XXXX1111"


def test_retrieving_reads_the_transaction_details(gateway, anet):
    payment = gateway.charge(charge(anet, capture=False))
    found = gateway.retrieve(payment.gateway_id)
    assert sent(anet, "getTransactionDetailsRequest")[-1] == {
        "merchantAuthentication": {"name": LOGIN_ID, "transactionKey": TRANSACTION_KEY},
        "transId": payment.gateway_id,
    }
    assert (found.status, found.amount, found.extra) == (
        PaymentStatus.AUTHORIZED,
        Decimal("10.50"),
        {"account_number": "XXXX1111"},
    )


def test_an_unknown_transaction_is_not_found(gateway, anet):
    with pytest.raises(NotFound, match="E00040"):
        gateway.retrieve("99999999")


def test_wrong_keys_are_an_auth_error(connect, anet):
    gateway = connect(transaction_key="0000000000000000")
    with pytest.raises(AuthError, match="E00007: User authentication failed") as caught:
        gateway.charge(charge(anet))
    assert "API Credentials & Keys" in caught.value.hint
    result = gateway.check()
    assert (result.ok, result.error_code) == (False, "auth")
    assert not anet.made()


def test_the_connection_test_authenticates_once_and_says_which_environment(gateway, anet):
    result = gateway.check()
    assert result.ok, result.message
    assert result.message == "Authorize.Net (sandbox) accepted the API login ID and transaction key."
    assert (result.details, result.warnings) == ({"environment": "sandbox", "live": False}, [])
    assert sent(anet, "authenticateTestRequest") == [
        {"merchantAuthentication": {"name": LOGIN_ID, "transactionKey": TRANSACTION_KEY}}
    ]


def test_the_connection_test_warns_when_webhooks_cannot_be_verified(connect):
    result = connect(signature_key="").check()
    assert result.ok and "signature key" in result.warnings[0]


def test_each_environment_has_its_host_and_a_base_url_overrides_them(make_connection, tenant_a):
    def url(environment: str, base_url: str = "") -> str:
        credentials = {"api_login_id": LOGIN_ID, "transaction_key": TRANSACTION_KEY, "environment": environment}
        connection = make_connection(tenant_a, "authorize_net", credentials=credentials, base_url=base_url)
        return AuthorizeNetGateway(connection, client=HttpClient()).api.url

    assert url("production") == "https://api.authorize.net/xml/v1/request.api"
    assert url("sandbox") == "https://apitest.authorize.net/xml/v1/request.api"
    assert url("sandbox", "https://anet.test.example/") == "https://anet.test.example/xml/v1/request.api"


def test_the_fake_answers_as_authorize_net_does_with_a_byte_order_mark(anet):
    answer = requests.post(anet.url + PATH, json={"authenticateTestRequest": {}}, timeout=5)
    assert answer.status_code == 200 and answer.content.startswith(b"\xef\xbb\xbf")


def test_elements_out_of_the_schemas_order_are_refused(gateway, anet):
    body = {"transactionRequest": {"amount": "1.00", "transactionType": "authCaptureTransaction"}}
    with pytest.raises(BadResponse, match="E00003"):
        gateway.api.call("createTransactionRequest", body)
