"""The PayPal gateway against `responses` answering with PayPal's documented JSON: orders created
for the payer's approval, captures completed and declined, authorisations captured, the same
PayPal-Request-Id after a timeout, refunds in part then in full, amounts in the currency's places,
the app token shared, renewed once and refused, and the connection test."""

from __future__ import annotations

import base64
import copy
import json
import logging
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs

import pytest
import requests
import responses
from django.core.cache import cache
from responses import matchers

from integrations.errors import AuthError, ConfigurationError, RateLimited, Unavailable
from integrations.http import HttpClient
from payments.gateways import get_gateway
from payments.gateways.base import ChargeRequest, PaymentStatus, RefundRequest, RefundStatus
from payments.gateways.paypal import PayPalGateway
from payments.gateways.paypal_client import PayPalError
from payments.money import AmountError

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "paypal"
LIVE = "https://api-m.paypal.com"
SANDBOX = "https://api-m.sandbox.paypal.com"
ORDER = "5O190127TN364715T"
CAPTURE = "3C679366HH908993F"
ORDERS = f"{LIVE}/v2/checkout/orders"
APPROVAL = f"https://www.paypal.com/checkoutnow?token={ORDER}"
CREDENTIALS = {
    "client_id": "AeHubTests-client-id",
    "client_secret": "EHubTests-client-secret-0123456789",
    "environment": "live",
}
HUB_ID = "7f3a9c1e-5b2d-4e8f-9a61-0c4d2b7e8f10"  # the hub's payment id, which the hub's metadata carries
TOKEN_ONE = "A21AAExampleAppToken-one"
TOKEN_TWO = "A21AAExampleAppToken-two"


def load(name: str):
    return json.loads((FIXTURES / name).read_text())


def body(call) -> dict:
    return json.loads(call.request.body)


def paths(api) -> list[str]:
    return [f"{call.request.method} {call.request.path_url}" for call in api.calls]


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def api():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def gateway_for(make_connection, tenant_a, sleeps):
    def make(base_url: str = "", **credentials) -> PayPalGateway:
        connection = make_connection(tenant_a, "paypal", credentials={**CREDENTIALS, **credentials}, base_url=base_url)
        return PayPalGateway(connection, client=HttpClient(sleep=sleeps, allow_private=True))

    return make


@pytest.fixture
def gateway(gateway_for) -> PayPalGateway:
    return gateway_for()


def token(api, host: str = LIVE, access_token: str = TOKEN_ONE) -> None:
    api.add(responses.POST, f"{host}/v1/oauth2/token", json={**load("oauth2_token.json"), "access_token": access_token})


def charge_request(**kwargs) -> ChargeRequest:
    values = {
        "idempotency_key": "pay_7f3a-charge",
        "amount": Decimal("25"),
        "currency": "usd",
        "description": "Order 1042",
        "metadata": {"hub_payment_id": HUB_ID, "invoice_id": "1042", "channel": "shopify"},
        "return_url": "https://shop.example.com/paid",
        "cancel_url": "https://shop.example.com/cart",
    }
    return ChargeRequest(**{**values, **kwargs})


def refund_request(amount: str, key: str, **kwargs) -> RefundRequest:
    values = {"gateway_payment_id": ORDER, "currency": "USD", "payment_extra": {"capture_id": CAPTURE}}
    return RefundRequest(idempotency_key=key, amount=Decimal(amount), **{**values, **kwargs})


def unprocessable(issue: str, description: str) -> dict:
    error = load("error_instrument_declined.json")
    error["details"] = [{"issue": issue, "description": description}]
    return error


def test_the_registry_builds_the_paypal_gateway(make_connection, tenant_a):
    connection = make_connection(tenant_a, "paypal", credentials=CREDENTIALS)
    assert isinstance(get_gateway(connection), PayPalGateway)


# --- Charges -----------------------------------------------------------------------------------------


def test_a_charge_creates_an_order_and_answers_with_the_approval_link(gateway, api):
    token(api)
    api.add(responses.POST, ORDERS, json=load("orders_create.json"), status=201)

    payment = gateway.charge(charge_request())

    assert payment.status == PaymentStatus.REQUIRES_ACTION
    assert payment.approval_url == APPROVAL
    assert (payment.gateway_id, payment.amount, payment.currency) == (ORDER, Decimal("25.00"), "USD")
    minted, created = api.calls
    keys = base64.b64encode(f"{CREDENTIALS['client_id']}:{CREDENTIALS['client_secret']}".encode()).decode()
    assert minted.request.headers["Authorization"] == f"Basic {keys}"
    assert parse_qs(minted.request.body) == {"grant_type": ["client_credentials"]}
    assert created.request.headers["PayPal-Request-Id"] == "pay_7f3a-charge"
    assert created.request.headers["Authorization"] == f"Bearer {TOKEN_ONE}"
    assert created.request.headers["Prefer"] == "return=representation"
    assert body(created) == {
        "intent": "CAPTURE",
        "purchase_units": [
            {
                "amount": {"currency_code": "USD", "value": "25.00"},
                "description": "Order 1042",
                "custom_id": HUB_ID,
                "invoice_id": "1042",
            }
        ],
        "payment_source": {
            "paypal": {
                "experience_context": {
                    "return_url": "https://shop.example.com/paid",
                    "cancel_url": "https://shop.example.com/cart",
                    "user_action": "PAY_NOW",
                }
            }
        },
    }


def test_a_custom_id_in_the_metadata_is_sent_instead_of_the_hubs_payment_id(gateway, api):
    token(api)
    api.add(responses.POST, ORDERS, json=load("orders_create.json"), status=201)

    gateway.charge(charge_request(metadata={"hub_payment_id": HUB_ID, "custom_id": "erp-5512"}))

    assert body(api.calls[-1])["purchase_units"][0]["custom_id"] == "erp-5512"
    assert "invoice_id" not in body(api.calls[-1])["purchase_units"][0]


def test_an_authorise_only_charge_creates_an_order_to_authorize(gateway, api):
    token(api)
    api.add(responses.POST, ORDERS, json={**load("orders_create.json"), "intent": "AUTHORIZE"}, status=201)

    payment = gateway.charge(charge_request(capture=False, metadata={}, description=""))

    assert payment.status == PaymentStatus.REQUIRES_ACTION
    sent = body(api.calls[-1])
    assert sent["intent"] == "AUTHORIZE"
    assert sent["purchase_units"] == [{"amount": {"currency_code": "USD", "value": "25.00"}}]


@pytest.mark.parametrize(
    ("amount", "currency", "value"), [("500", "JPY", "500"), ("10.5", "USD", "10.50"), ("1.234", "KWD", "1.234")]
)
def test_the_amount_is_sent_with_the_places_of_its_currency(gateway, api, amount, currency, value):
    token(api)
    created = load("orders_create.json")
    created["purchase_units"][0]["amount"] = {"currency_code": currency, "value": value}
    api.add(responses.POST, ORDERS, json=created, status=201)

    payment = gateway.charge(charge_request(amount=Decimal(amount), currency=currency))

    assert body(api.calls[-1])["purchase_units"][0]["amount"] == {"currency_code": currency, "value": value}
    assert (payment.amount, payment.currency) == (Decimal(amount), currency)


def test_an_amount_with_more_places_than_its_currency_has_sends_nothing(gateway, api):
    with pytest.raises(AmountError, match="decimal places"):
        gateway.charge(charge_request(amount=Decimal("500.5"), currency="JPY"))
    assert not api.calls


def test_a_charge_that_timed_out_is_sent_again_with_the_same_request_id_and_makes_one_order(gateway, api, sleeps):
    """PayPal made the order, but its answer never came: the retry carries the same
    PayPal-Request-Id, and PayPal answers it with the order it made instead of a second one."""
    token(api)
    orders: dict[str, dict] = {}
    keys: list[str] = []

    def paypal(request):
        key = request.headers["PayPal-Request-Id"]
        keys.append(key)
        first = key not in orders
        if first:
            orders[key] = {**load("orders_create.json"), "id": f"{len(orders) + 1}AB23456CD789012E"}
        if len(keys) == 1:
            raise requests.exceptions.ReadTimeout("The read operation timed out")
        return (201 if first else 200), {}, json.dumps(orders[key])

    api.add_callback(responses.POST, ORDERS, callback=paypal, content_type="application/json")

    payment = gateway.charge(charge_request())
    again = gateway.charge(charge_request())  # the hub's own retry of the whole charge

    assert keys == ["pay_7f3a-charge"] * 3
    assert len(orders) == 1
    assert payment.gateway_id == again.gateway_id == "1AB23456CD789012E"
    assert payment.status == PaymentStatus.REQUIRES_ACTION
    assert len(sleeps) == 1  # one backoff before the retry


def test_a_saved_billing_agreement_is_charged_at_once(gateway, api):
    token(api)
    api.add(responses.POST, ORDERS, json=load("orders_create_without_payment_source.json"), status=201)
    api.add(responses.POST, f"{ORDERS}/{ORDER}/capture", json=load("orders_capture_completed.json"), status=201)

    payment = gateway.charge(charge_request(payment_method="B-5YM98765A4321234X"))

    assert payment.status == PaymentStatus.SUCCEEDED
    assert payment.extra["capture_id"] == CAPTURE
    assert payment.amount_captured == Decimal("25.00")
    _, created, captured = api.calls
    assert "payment_source" not in body(created)
    assert created.request.headers["PayPal-Request-Id"] == "pay_7f3a-charge"
    assert body(captured) == {"payment_source": {"token": {"id": "B-5YM98765A4321234X", "type": "BILLING_AGREEMENT"}}}
    assert captured.request.headers["PayPal-Request-Id"] == "pay_7f3a-charge-capture"


def test_a_saved_billing_agreement_is_only_authorised_when_asked(gateway, api):
    token(api)
    api.add(responses.POST, ORDERS, json=load("orders_create_without_payment_source.json"), status=201)
    api.add(responses.POST, f"{ORDERS}/{ORDER}/authorize", json=load("orders_authorize.json"), status=201)

    payment = gateway.charge(charge_request(payment_method="B-5YM98765A4321234X", capture=False))

    assert payment.status == PaymentStatus.AUTHORIZED
    assert payment.extra == {"authorization_id": "0AW2184448108334S"}
    assert api.calls[-1].request.headers["PayPal-Request-Id"] == "pay_7f3a-charge-authorize"


def test_a_billing_agreement_paypal_declines_is_a_failed_payment(gateway, api):
    token(api)
    api.add(responses.POST, ORDERS, json=load("orders_create_without_payment_source.json"), status=201)
    api.add(responses.POST, f"{ORDERS}/{ORDER}/capture", json=load("error_instrument_declined.json"), status=422)

    payment = gateway.charge(charge_request(payment_method="B-5YM98765A4321234X"))

    assert payment.status == PaymentStatus.FAILED
    assert payment.failure_code == "INSTRUMENT_DECLINED"
    assert payment.gateway_id == ORDER


def test_a_payer_paypal_wants_back_requires_action_with_the_approval_link(gateway, api):
    token(api)
    api.add(responses.POST, ORDERS, json=load("orders_create_without_payment_source.json"), status=201)
    refusal = unprocessable("PAYER_ACTION_REQUIRED", "Transaction cannot complete successfully, instruct the buyer.")
    api.add(responses.POST, f"{ORDERS}/{ORDER}/capture", json=refusal, status=422)

    payment = gateway.charge(charge_request(payment_method="B-5YM98765A4321234X"))

    assert payment.status == PaymentStatus.REQUIRES_ACTION
    assert payment.approval_url == APPROVAL
    assert payment.failure_code == "PAYER_ACTION_REQUIRED"


def test_a_request_paypal_calls_invalid_is_a_bad_response_with_its_words(gateway, api):
    token(api)
    api.add(responses.POST, ORDERS, json=load("error_invalid_request.json"), status=400)

    with pytest.raises(PayPalError) as raised:
        gateway.charge(charge_request(currency="XYZ"))

    error = raised.value
    assert (error.status, error.name, error.issue) == (400, "INVALID_REQUEST", "INVALID_CURRENCY_CODE")
    assert error.description == "Currency code is invalid or is not currently supported."
    assert "INVALID_CURRENCY_CODE: Currency code is invalid" in error.message
    assert "debug id b6b9a374802ea" in error.message
    assert len(api.calls) == 2  # a 400 is never sent again


@pytest.mark.parametrize(("status", "error"), [(429, RateLimited), (503, Unavailable)])
def test_a_rate_limit_or_outage_that_outlasts_the_retries_is_raised(gateway, api, sleeps, status, error):
    token(api)
    answer = load("error_rate_limit_reached.json") if status == 429 else {"name": "SERVICE_UNAVAILABLE"}
    api.add(responses.POST, ORDERS, json=answer, status=status)

    with pytest.raises(error):
        gateway.charge(charge_request())

    creates = [call for call in api.calls if call.request.url == ORDERS]
    assert len(creates) == 5
    assert {call.request.headers["PayPal-Request-Id"] for call in creates} == {"pay_7f3a-charge"}


# --- Captures ----------------------------------------------------------------------------------------


def test_capturing_an_approved_order_takes_the_money_and_keeps_the_capture_id(gateway, api):
    token(api)
    api.add(responses.GET, f"{ORDERS}/{ORDER}", json=load("orders_get_approved.json"))
    api.add(responses.POST, f"{ORDERS}/{ORDER}/capture", json=load("orders_capture_completed.json"), status=201)

    payment = gateway.capture(ORDER, None, "pay_7f3a-capture")

    assert payment.status == PaymentStatus.SUCCEEDED
    assert payment.extra["capture_id"] == CAPTURE
    assert payment.amount_captured == Decimal("25.00")
    captured = api.calls[-1]
    assert captured.request.headers["PayPal-Request-Id"] == "pay_7f3a-capture"
    assert body(captured) == {}


def test_a_capture_the_card_issuer_declines_is_failed_with_the_processor_code(gateway, api):
    token(api)
    api.add(responses.GET, f"{ORDERS}/{ORDER}", json=load("orders_get_approved.json"))
    api.add(responses.POST, f"{ORDERS}/{ORDER}/capture", json=load("orders_capture_declined.json"), status=201)

    payment = gateway.capture(ORDER, None, "pay_7f3a-capture")

    assert payment.status == PaymentStatus.FAILED
    assert payment.failure_code == "5120"
    assert payment.failure_message == "PayPal declined the payment: insufficient funds."
    assert payment.amount_captured is None
    assert payment.raw["payment_source"]["card"] == {"brand": "VISA", "type": "CREDIT", "last_digits": "0004"}


def test_instrument_declined_is_a_failed_payment_not_an_error(gateway, api):
    token(api)
    api.add(responses.GET, f"{ORDERS}/{ORDER}", json=load("orders_get_approved.json"))
    api.add(responses.POST, f"{ORDERS}/{ORDER}/capture", json=load("error_instrument_declined.json"), status=422)

    payment = gateway.capture(ORDER, None, "pay_7f3a-capture")

    assert payment.status == PaymentStatus.FAILED
    assert payment.failure_code == "INSTRUMENT_DECLINED"
    assert payment.failure_message.startswith("The instrument presented was either declined")
    assert (payment.gateway_id, payment.amount) == (ORDER, Decimal("25.00"))


def test_an_order_still_waiting_for_the_payer_is_not_captured(gateway, api):
    token(api)
    api.add(responses.GET, f"{ORDERS}/{ORDER}", json=load("orders_create.json"))

    payment = gateway.capture(ORDER, None, "pay_7f3a-capture")

    assert payment.status == PaymentStatus.REQUIRES_ACTION
    assert payment.approval_url == APPROVAL
    assert paths(api)[1:] == [f"GET /v2/checkout/orders/{ORDER}"]


def test_an_order_captured_before_is_not_captured_again(gateway, api):
    token(api)
    api.add(responses.GET, f"{ORDERS}/{ORDER}", json=load("orders_capture_completed.json"))

    payment = gateway.capture(ORDER, None, "pay_7f3a-capture")

    assert payment.status == PaymentStatus.SUCCEEDED
    assert payment.extra["capture_id"] == CAPTURE
    assert paths(api)[1:] == [f"GET /v2/checkout/orders/{ORDER}"]


def test_part_of_an_order_made_to_be_captured_at_once_cannot_be_captured(gateway, api):
    token(api)
    api.add(responses.GET, f"{ORDERS}/{ORDER}", json=load("orders_get_approved.json"))

    with pytest.raises(ConfigurationError, match="in full"):
        gateway.capture(ORDER, Decimal("10.00"), "pay_7f3a-capture")
    assert paths(api)[1:] == [f"GET /v2/checkout/orders/{ORDER}"]


def test_an_approved_order_to_authorize_is_authorised_then_captured(gateway, api):
    token(api)
    api.add(responses.GET, f"{ORDERS}/{ORDER}", json=load("orders_get_approved_authorize.json"))
    api.add(responses.POST, f"{ORDERS}/{ORDER}/authorize", json=load("orders_authorize.json"), status=201)
    authorization = f"{LIVE}/v2/payments/authorizations/0AW2184448108334S/capture"
    api.add(responses.POST, authorization, json=load("authorizations_capture.json"), status=201)

    payment = gateway.capture(ORDER, Decimal("20"), "pay_7f3a-capture")

    assert payment.status == PaymentStatus.SUCCEEDED
    assert (payment.amount, payment.amount_captured) == (Decimal("25.00"), Decimal("20.00"))
    assert payment.extra == {"authorization_id": "0AW2184448108334S", "capture_id": "2GG279541U471931P"}
    _, _, authorized, captured = api.calls
    assert authorized.request.headers["PayPal-Request-Id"] == "pay_7f3a-capture-authorize"
    assert captured.request.headers["PayPal-Request-Id"] == "pay_7f3a-capture"
    assert body(captured) == {"final_capture": True, "amount": {"currency_code": "USD", "value": "20.00"}}


def test_an_authorisation_made_earlier_is_captured_without_authorising_again(gateway, api):
    token(api)
    api.add(responses.GET, f"{ORDERS}/{ORDER}", json=load("orders_authorize.json"))
    captured = {**load("authorizations_capture.json"), "amount": {"currency_code": "USD", "value": "25.00"}}
    api.add(responses.POST, f"{LIVE}/v2/payments/authorizations/0AW2184448108334S/capture", json=captured, status=201)

    payment = gateway.capture(ORDER, None, "pay_7f3a-capture")

    assert payment.status == PaymentStatus.SUCCEEDED
    assert payment.amount_captured == Decimal("25.00")
    assert paths(api)[1:] == [
        f"GET /v2/checkout/orders/{ORDER}",
        "POST /v2/payments/authorizations/0AW2184448108334S/capture",
    ]
    assert body(api.calls[-1]) == {"final_capture": True}


def test_an_authorisation_paypal_denies_is_a_failed_payment(gateway, api):
    token(api)
    api.add(responses.GET, f"{ORDERS}/{ORDER}", json=load("orders_get_approved_authorize.json"))
    denied = load("orders_authorize.json")
    denied["purchase_units"][0]["payments"]["authorizations"][0]["status"] = "DENIED"
    api.add(responses.POST, f"{ORDERS}/{ORDER}/authorize", json=denied, status=201)

    payment = gateway.capture(ORDER, None, "pay_7f3a-capture")

    assert payment.status == PaymentStatus.FAILED
    assert payment.failure_code == "DENIED"
    assert len(api.calls) == 3  # nothing to capture


# --- Refunds -----------------------------------------------------------------------------------------


def test_a_capture_is_refunded_in_part_then_in_full(gateway, api):
    token(api)
    captured = Decimal("25.00")
    refunds: list[Decimal] = []

    def paypal(request):
        asked = Decimal(json.loads(request.body)["amount"]["value"])
        left = captured - sum(refunds, Decimal(0))
        if left == 0:
            return 422, {}, json.dumps(load("error_capture_fully_refunded.json"))
        refunds.append(asked)
        refund = {**load("captures_refund.json"), "id": f"{len(refunds)}JU08902781691411"}
        refund["amount"] = {"currency_code": "USD", "value": str(asked)}
        return 201, {}, json.dumps(refund)

    api.add_callback(responses.POST, f"{LIVE}/v2/payments/captures/{CAPTURE}/refund", callback=paypal)

    part = gateway.refund(refund_request("10.00", "ref_1", reason="Damaged mug"))
    rest = gateway.refund(refund_request("15.00", "ref_2"))
    with pytest.raises(PayPalError) as raised:
        gateway.refund(refund_request("1.00", "ref_3"))

    assert (part.status, part.gateway_id, part.amount) == (RefundStatus.SUCCEEDED, "1JU08902781691411", Decimal("10"))
    assert (rest.status, rest.amount) == (RefundStatus.SUCCEEDED, Decimal("15.00"))
    assert raised.value.issue == "CAPTURE_FULLY_REFUNDED"
    sent = [call for call in api.calls if "/refund" in call.request.url]
    assert [call.request.headers["PayPal-Request-Id"] for call in sent] == ["ref_1", "ref_2", "ref_3"]
    assert body(sent[0]) == {"amount": {"currency_code": "USD", "value": "10.00"}, "note_to_payer": "Damaged mug"}
    assert body(sent[1]) == {"amount": {"currency_code": "USD", "value": "15.00"}}


def test_a_refund_without_the_capture_id_finds_it_on_the_order(gateway, api):
    token(api)
    api.add(responses.GET, f"{ORDERS}/{ORDER}", json=load("orders_capture_completed.json"))
    api.add(responses.POST, f"{LIVE}/v2/payments/captures/{CAPTURE}/refund", json=load("captures_refund.json"))

    refund = gateway.refund(refund_request("10.00", "ref_1", payment_extra={}))

    assert refund.status == RefundStatus.SUCCEEDED
    assert paths(api)[1:] == [f"GET /v2/checkout/orders/{ORDER}", f"POST /v2/payments/captures/{CAPTURE}/refund"]


def test_a_refund_paypal_will_not_make_is_a_failed_refund(gateway, api):
    token(api)
    refused = load("error_refund_failed_insufficient_funds.json")
    api.add(responses.POST, f"{LIVE}/v2/payments/captures/{CAPTURE}/refund", json=refused, status=422)

    refund = gateway.refund(refund_request("10.00", "ref_1"))

    assert refund.status == RefundStatus.FAILED
    assert refund.failure_code == "REFUND_FAILED_INSUFFICIENT_FUNDS"
    assert refund.failure_message == "Capture could not be refunded due to insufficient funds."


# --- Retrieve ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "status"),
    [
        ("orders_create.json", PaymentStatus.REQUIRES_ACTION),
        ("orders_get_approved.json", PaymentStatus.AUTHORIZED),
        ("orders_authorize.json", PaymentStatus.AUTHORIZED),
        ("orders_capture_completed.json", PaymentStatus.SUCCEEDED),
        ("orders_capture_declined.json", PaymentStatus.FAILED),
        ("orders_get_partially_refunded.json", PaymentStatus.PARTIALLY_REFUNDED),
    ],
)
def test_retrieve_answers_with_the_order_as_paypal_has_it(gateway, api, fixture, status):
    token(api)
    api.add(responses.GET, f"{ORDERS}/{ORDER}", json=load(fixture))

    assert gateway.retrieve(ORDER).status == status


def test_retrieve_counts_what_was_refunded(gateway, api):
    token(api)
    api.add(responses.GET, f"{ORDERS}/{ORDER}", json=load("orders_get_partially_refunded.json"))

    payment = gateway.retrieve(ORDER)

    assert (payment.amount_captured, payment.amount_refunded) == (Decimal("25.00"), Decimal("10.00"))
    assert payment.extra["capture_id"] == CAPTURE


def test_a_voided_order_is_cancelled(gateway, api):
    token(api)
    api.add(responses.GET, f"{ORDERS}/{ORDER}", json={**load("orders_get_approved.json"), "status": "VOIDED"})

    assert gateway.retrieve(ORDER).status == PaymentStatus.CANCELED


# --- The app token -----------------------------------------------------------------------------------


def test_an_expired_token_is_replaced_once_in_the_middle_of_a_call(gateway, api):
    token(api, access_token=TOKEN_ONE)
    token(api, access_token=TOKEN_TWO)
    api.add(responses.POST, ORDERS, json=load("orders_create.json"), status=201)
    expired = matchers.header_matcher({"Authorization": f"Bearer {TOKEN_ONE}"})
    fresh = matchers.header_matcher({"Authorization": f"Bearer {TOKEN_TWO}"})
    api.add(
        responses.GET, f"{ORDERS}/{ORDER}", json=load("error_authentication_failure.json"), status=401, match=[expired]
    )
    api.add(responses.GET, f"{ORDERS}/{ORDER}", json=load("orders_get_approved.json"), match=[fresh])

    gateway.charge(charge_request())  # mints and caches the first token
    payment = gateway.retrieve(ORDER)  # which PayPal now refuses: expired

    assert payment.status == PaymentStatus.AUTHORIZED
    assert paths(api) == [
        "POST /v1/oauth2/token",
        "POST /v2/checkout/orders",
        f"GET /v2/checkout/orders/{ORDER}",
        "POST /v1/oauth2/token",
        f"GET /v2/checkout/orders/{ORDER}",
    ]
    assert cache.get(gateway.api.tokens.key) == TOKEN_TWO


def test_a_token_refused_twice_is_an_auth_error(gateway, api):
    token(api)
    api.add(responses.GET, f"{ORDERS}/{ORDER}", json=load("error_authentication_failure.json"), status=401)

    with pytest.raises(AuthError, match="AUTHENTICATION_FAILURE"):
        gateway.retrieve(ORDER)

    assert paths(api).count("POST /v1/oauth2/token") == 2
    assert paths(api).count(f"GET /v2/checkout/orders/{ORDER}") == 2


def test_the_workers_of_a_connection_share_one_token(gateway, gateway_for, api):
    token(api)
    api.add(responses.GET, f"{ORDERS}/{ORDER}", json=load("orders_get_approved.json"))
    other_worker = PayPalGateway(gateway.connection, client=HttpClient(allow_private=True))

    gateway.retrieve(ORDER)
    other_worker.retrieve(ORDER)

    assert paths(api).count("POST /v1/oauth2/token") == 1
    assert all(call.request.headers["Authorization"] == f"Bearer {TOKEN_ONE}" for call in api.calls[1:])


def test_no_token_or_secret_reaches_the_logs(gateway, api, caplog):
    token(api, access_token=TOKEN_ONE)
    token(api, access_token=TOKEN_TWO)
    api.add(responses.POST, ORDERS, json=load("error_rate_limit_reached.json"), status=429)
    api.add(responses.POST, ORDERS, json=load("orders_create.json"), status=201)
    expired = matchers.header_matcher({"Authorization": f"Bearer {TOKEN_ONE}"})
    api.add(responses.GET, f"{ORDERS}/{ORDER}", json={}, status=401, match=[expired])
    api.add(responses.GET, f"{ORDERS}/{ORDER}", json=load("orders_get_approved.json"))

    with caplog.at_level(logging.DEBUG):
        gateway.charge(charge_request())
        gateway.retrieve(ORDER)

    assert "retry 1" in caplog.text and "minting a new one" in caplog.text  # the calls above did log
    keys = base64.b64encode(f"{CREDENTIALS['client_id']}:{CREDENTIALS['client_secret']}".encode()).decode()
    for secret in (CREDENTIALS["client_secret"], TOKEN_ONE, TOKEN_TWO, keys):
        assert secret not in caplog.text


# --- The connection test -----------------------------------------------------------------------------


@pytest.mark.parametrize(("environment", "host", "said"), [("live", LIVE, "live"), ("sandbox", SANDBOX, "sandbox")])
def test_the_check_mints_a_token_and_says_live_or_sandbox(gateway_for, api, environment, host, said):
    token(api, host=host)

    gateway = gateway_for(environment=environment)
    result = gateway.check()

    assert result.ok, result.message
    assert said in result.message
    assert result.details == {"environment": environment, "app_id": "APP-80W284485P519543T"}
    assert paths(api) == ["POST /v1/oauth2/token"]
    assert cache.get(gateway.api.tokens.key) is None  # a check leaves no token behind


def test_wrong_credentials_fail_the_check_with_paypals_words(gateway, api):
    api.add(responses.POST, f"{LIVE}/v1/oauth2/token", json=load("error_invalid_client.json"), status=401)

    result = gateway.check()

    assert not result.ok
    assert result.error_code == "auth"
    assert result.message == "PayPal refused the client id/secret (401 invalid_client: Client Authentication failed)."
    assert "Apps & Credentials" in result.hint
    with pytest.raises(AuthError, match="PayPal refused the client id/secret"):
        gateway.charge(charge_request())


def test_the_check_never_retries(gateway, api, sleeps):
    api.add(responses.POST, f"{LIVE}/v1/oauth2/token", json={"name": "INTERNAL_SERVER_ERROR"}, status=503)

    result = gateway.check()

    assert (result.ok, result.error_code) == (False, "unavailable")
    assert len(api.calls) == 1
    assert not sleeps


def test_the_base_url_overrides_paypals_host(gateway_for, api):
    token(api, host="https://paypal.test.example")
    api.add(responses.GET, f"https://paypal.test.example/v2/checkout/orders/{ORDER}", json=load("orders_create.json"))

    gateway = gateway_for(base_url="https://paypal.test.example/")

    assert gateway.check().details["base_url"] == "https://paypal.test.example/"
    assert gateway.retrieve(ORDER).gateway_id == ORDER


def test_an_unknown_environment_sends_nothing(gateway_for, api):
    gateway = gateway_for(environment="prod")

    result = gateway.check()

    assert (result.ok, result.error_code) == (False, "configuration")
    with pytest.raises(ConfigurationError, match="not a PayPal environment"):
        gateway.retrieve(ORDER)
    assert not api.calls


def test_a_missing_secret_sends_nothing(gateway_for, api):
    credentials = copy.deepcopy(CREDENTIALS)
    credentials["client_secret"] = ""

    with pytest.raises(ConfigurationError, match="Client secret"):
        gateway_for(**credentials).charge(charge_request())
    assert not api.calls
