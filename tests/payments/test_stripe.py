"""The Stripe gateway over `responses`, on Stripe's documented JSON (tests/fixtures/stripe/): a
confirmed payment, a decline, 3-D Secure, a timeout retried with the same Idempotency-Key,
refunds, zero-decimal amounts, captures, the connection check and Stripe's refusals."""

from __future__ import annotations

import json
import logging
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
import stripe._http_client

from integrations.errors import AuthError, BadResponse, ConfigurationError, NotFound, RateLimited, Unavailable
from integrations.http import HttpClient
from payments.gateways import get_gateway
from payments.gateways.base import ChargeRequest, PaymentStatus, RefundRequest, RefundStatus
from payments.gateways.stripe import MAX_NETWORK_RETRIES, StripeGateway

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "stripe"
API = "https://api.stripe.com/v1"
KEY = "sk_test_51M2JTkLkdIwHu7ixAbCdEfGhIjKlMnOpQrStUvWxYz"
INTENTS = f"{API}/payment_intents"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


SUCCEEDED = fixture("payment_intent_succeeded")
REQUIRES_ACTION = fixture("payment_intent_requires_action")
REQUIRES_CAPTURE = fixture("payment_intent_requires_capture")


@pytest.fixture
def api():
    with responses.RequestsMock() as mock:
        yield mock


@pytest.fixture
def stripe_sleeps(monkeypatch):
    """The package's own pauses between retries of a POST, recorded instead of slept."""
    sleeps: list[float] = []
    monkeypatch.setattr(stripe._http_client.time, "sleep", sleeps.append)
    return sleeps


@pytest.fixture
def http_sleeps() -> list[float]:
    return []


@pytest.fixture
def gateway_for(make_connection, tenant_a, http_sleeps):
    def make(key: str = KEY, **kwargs) -> StripeGateway:
        connection = make_connection(tenant_a, "stripe", credentials={"secret_key": key}, **kwargs)
        return get_gateway(connection, client=HttpClient(sleep=http_sleeps.append))

    return make


@pytest.fixture
def gateway(gateway_for) -> StripeGateway:
    return gateway_for()


def form(call) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(call.request.body).items()}


def charge(**kwargs) -> ChargeRequest:
    defaults = {
        "idempotency_key": "payment-7f3a9c",
        "amount": Decimal("10.50"),
        "currency": "USD",
        "payment_method": "pm_1MtwBvLkdIwHu7ixBf5hUuHM",
    }
    return ChargeRequest(**{**defaults, **kwargs})


def test_the_registry_builds_the_stripe_gateway(gateway):
    assert isinstance(gateway, StripeGateway)


def test_a_charge_is_a_confirmed_payment_intent_sent_with_the_idempotency_key(api, gateway):
    api.post(INTENTS, json=SUCCEEDED)
    payment = gateway.charge(
        charge(customer="cus_NffrFeUfNV2Hib", description="Order #1001", metadata={"order": "1001"})
    )
    [call] = api.calls
    assert call.request.headers["Idempotency-Key"] == "payment-7f3a9c"
    assert call.request.headers["Authorization"] == f"Bearer {KEY}"
    assert call.request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert form(call) == {
        "amount": "1050",
        "currency": "usd",
        "payment_method": "pm_1MtwBvLkdIwHu7ixBf5hUuHM",
        "confirm": "true",
        "automatic_payment_methods[enabled]": "false",
        "customer": "cus_NffrFeUfNV2Hib",
        "description": "Order #1001",
        "metadata[order]": "1001",
    }
    assert payment.status == PaymentStatus.SUCCEEDED
    assert payment.gateway_id == "pi_3MtwBwLkdIwHu7ix28a3tqPa"
    assert (payment.amount, payment.currency, payment.amount_captured) == (Decimal("10.50"), "USD", Decimal("10.50"))
    assert payment.client_secret == ""
    assert payment.extra == {"latest_charge": "ch_3MtwBwLkdIwHu7ix2bXWk7Xj"}
    assert payment.raw["id"] == payment.gateway_id
    assert "client_secret" not in payment.raw and "payment_method" not in payment.raw


def test_an_email_as_customer_becomes_the_receipt_email(api, gateway):
    api.post(INTENTS, json=SUCCEEDED)
    gateway.charge(charge(customer="ada@example.com"))
    sent = form(api.calls[0])
    assert sent["receipt_email"] == "ada@example.com" and "customer" not in sent


def test_without_a_payment_method_the_intent_waits_for_the_customers_browser(api, gateway):
    waiting = {**SUCCEEDED, "status": "requires_payment_method", "amount_received": 0, "latest_charge": None}
    api.post(INTENTS, json=waiting)
    payment = gateway.charge(charge(payment_method="", return_url="https://shop.example.com/back"))
    assert form(api.calls[0]) == {"amount": "1050", "currency": "usd"}
    assert payment.status == PaymentStatus.REQUIRES_ACTION
    assert payment.client_secret == SUCCEEDED["client_secret"]


def test_a_declined_card_is_a_failed_payment_with_the_decline_code_not_an_error(api, gateway):
    api.post(INTENTS, json=fixture("card_declined"), status=402)
    payment = gateway.charge(charge())
    assert payment.status == PaymentStatus.FAILED
    assert payment.gateway_id == "pi_3MtwGBLkdIwHu7ix0pVsWrkB"
    assert payment.failure_code == "insufficient_funds"
    assert payment.failure_message == "Your card has insufficient funds."
    assert payment.client_secret == ""
    assert payment.raw["last_payment_error"]["code"] == "card_declined"
    stored = json.dumps(payment.raw)
    assert "9995" not in stored and "pm_1MtwGALkdIwHu7ixJqGL3Nu0" not in stored and "_secret_" not in stored


def test_a_decline_read_later_is_a_failed_payment_too(api, gateway):
    declined = fixture("card_declined")["error"]["payment_intent"]
    api.get(f"{INTENTS}/{declined['id']}", json=declined)
    payment = gateway.retrieve(declined["id"])
    assert (payment.status, payment.failure_code) == (PaymentStatus.FAILED, "insufficient_funds")


def test_a_card_that_needs_3d_secure_requires_action_with_its_client_secret(api, gateway):
    api.post(INTENTS, json=REQUIRES_ACTION)
    payment = gateway.charge(
        charge(payment_method="pm_card_authenticationRequired", return_url="https://shop.example.com/checkout/return")
    )
    assert form(api.calls[0])["return_url"] == "https://shop.example.com/checkout/return"
    assert payment.status == PaymentStatus.REQUIRES_ACTION
    assert payment.client_secret == "pi_3MtwEzLkdIwHu7ix0bR5WJ0z_secret_Tb8Sy0xUIYzbvFAe8cBb1Ez6B"
    assert payment.approval_url.startswith("https://hooks.stripe.com/3d_secure_2/hosted?")
    assert "_secret_" not in json.dumps(payment.raw)


def test_a_timeout_is_retried_with_the_same_idempotency_key_and_makes_one_payment_intent(
    api, gateway, stripe_sleeps, http_sleeps
):
    api.post(INTENTS, body=requests.exceptions.ReadTimeout("read timed out"))
    api.post(INTENTS, json=SUCCEEDED)
    payment = gateway.charge(charge())
    assert [call.request.headers["Idempotency-Key"] for call in api.calls] == ["payment-7f3a9c", "payment-7f3a9c"]
    assert api.calls[0].request.body == api.calls[1].request.body
    assert len(stripe_sleeps) == 1 and not http_sleeps  # retried by the package, not by HttpClient too
    assert (payment.status, payment.gateway_id) == (PaymentStatus.SUCCEEDED, "pi_3MtwBwLkdIwHu7ix28a3tqPa")


def test_a_create_that_keeps_failing_is_retried_by_the_package_alone_then_unavailable(api, gateway, stripe_sleeps):
    api.post(INTENTS, json={"error": {"message": "An unknown error occurred", "type": "api_error"}}, status=500)
    with pytest.raises(Unavailable, match="An unknown error occurred"):
        gateway.charge(charge())
    assert len(api.calls) == 1 + MAX_NETWORK_RETRIES
    assert {call.request.headers["Idempotency-Key"] for call in api.calls} == {"payment-7f3a9c"}


def test_a_timeout_on_every_attempt_is_unavailable_with_the_reason(api, gateway, stripe_sleeps):
    api.post(INTENTS, body=requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(Unavailable) as raised:
        gateway.charge(charge())
    assert raised.value.hint == "Stripe did not answer in time."
    assert len(api.calls) == 1 + MAX_NETWORK_RETRIES


def test_a_yen_amount_is_sent_as_500_not_50000(api, gateway):
    api.post(INTENTS, json={**SUCCEEDED, "amount": 500, "amount_received": 500, "currency": "jpy"})
    payment = gateway.charge(charge(amount=Decimal("500"), currency="JPY"))
    assert form(api.calls[0])["amount"] == "500"
    assert form(api.calls[0])["currency"] == "jpy"
    assert (payment.amount, payment.currency) == (Decimal("500"), "JPY")


def test_an_authorisation_is_captured_in_part_in_the_intents_currency(api, gateway):
    api.post(INTENTS, json=REQUIRES_CAPTURE)
    authorised = gateway.charge(charge(capture=False))
    assert form(api.calls[0])["capture_method"] == "manual"
    assert authorised.status == PaymentStatus.AUTHORIZED
    assert authorised.amount == Decimal("10.50") and authorised.amount_captured == Decimal("0")

    intent = REQUIRES_CAPTURE["id"]
    api.get(f"{INTENTS}/{intent}", json=REQUIRES_CAPTURE)
    captured = {**REQUIRES_CAPTURE, "status": "succeeded", "amount_capturable": 0, "amount_received": 700}
    api.post(f"{INTENTS}/{intent}/capture", json=captured)
    payment = gateway.capture(intent, Decimal("7.00"), "capture-7f3a9c")
    capture = api.calls[2]
    assert form(capture) == {"amount_to_capture": "700"}
    assert capture.request.headers["Idempotency-Key"] == "capture-7f3a9c"
    assert payment.status == PaymentStatus.SUCCEEDED
    assert payment.amount_captured == Decimal("7.00")


def test_a_full_capture_sends_no_amount(api, gateway):
    intent = REQUIRES_CAPTURE["id"]
    api.post(f"{INTENTS}/{intent}/capture", json={**REQUIRES_CAPTURE, "status": "succeeded", "amount_received": 1050})
    payment = gateway.capture(intent, None, "capture-7f3a9c")
    [call] = api.calls
    assert call.request.body in (None, "")
    assert call.request.headers["Idempotency-Key"] == "capture-7f3a9c"
    assert payment.amount_captured == Decimal("10.50")


def test_a_partial_then_a_full_refund(api, gateway):
    intent = SUCCEEDED["id"]
    refund = fixture("refund_succeeded")
    api.post(f"{API}/refunds", json=refund)
    api.post(f"{API}/refunds", json={**refund, "id": "re_3MtwBwLkdIwHu7ix0Q9cPwZr", "amount": 750})
    first = gateway.refund(RefundRequest("refund-1", intent, Decimal("3.00"), "USD", reason="requested_by_customer"))
    rest = gateway.refund(RefundRequest("refund-2", intent, Decimal("7.50"), "USD"))
    assert form(api.calls[0]) == {"payment_intent": intent, "amount": "300", "reason": "requested_by_customer"}
    assert form(api.calls[1]) == {"payment_intent": intent, "amount": "750"}
    assert [call.request.headers["Idempotency-Key"] for call in api.calls] == ["refund-1", "refund-2"]
    assert (first.status, first.gateway_id, first.amount) == (RefundStatus.SUCCEEDED, refund["id"], Decimal("3.00"))
    assert (rest.status, rest.amount) == (RefundStatus.SUCCEEDED, Decimal("7.50"))


def test_a_refund_beyond_what_is_left_is_stripes_refusal(api, gateway):
    message = "Refund amount ($11.00) is greater than unrefunded amount on charge ($7.50)"
    api.post(f"{API}/refunds", json={"error": {"message": message, "type": "invalid_request_error"}}, status=400)
    with pytest.raises(BadResponse, match=r"greater than unrefunded amount on charge \(\$7\.50\)"):
        gateway.refund(RefundRequest("refund-3", SUCCEEDED["id"], Decimal("11.00"), "USD"))


@pytest.mark.parametrize(
    ("reason", "sent"),
    [
        ("fraud", {"reason": "fraudulent"}),
        ("Duplicate", {"reason": "duplicate"}),
        ("customer request", {"reason": "requested_by_customer"}),
        ("Damaged in transit", {"metadata[reason]": "Damaged in transit"}),
    ],
)
def test_a_refund_reason_is_stripes_enum_or_else_metadata(api, gateway, reason, sent):
    api.post(f"{API}/refunds", json=fixture("refund_succeeded"))
    gateway.refund(RefundRequest("refund-4", SUCCEEDED["id"], Decimal("3.00"), "USD", reason=reason))
    assert form(api.calls[0]) == {"payment_intent": SUCCEEDED["id"], "amount": "300", **sent}


def test_a_failed_refund_says_why(api, gateway):
    api.post(
        f"{API}/refunds",
        json={**fixture("refund_succeeded"), "status": "failed", "failure_reason": "lost_or_stolen_card"},
    )
    refund = gateway.refund(RefundRequest("refund-5", SUCCEEDED["id"], Decimal("3.00"), "USD"))
    assert (refund.status, refund.failure_code) == (RefundStatus.FAILED, "lost_or_stolen_card")
    assert refund.failure_message == "Stripe did not refund: lost or stolen card."


@pytest.mark.parametrize(
    ("charge_update", "status", "refunded"),
    [
        ({}, PaymentStatus.PARTIALLY_REFUNDED, Decimal("3.00")),
        ({"amount_refunded": 1050, "refunded": True}, PaymentStatus.REFUNDED, Decimal("10.50")),
        ({"amount_refunded": 0, "disputed": True}, PaymentStatus.DISPUTED, Decimal("0")),
        ({"amount_refunded": 0}, PaymentStatus.SUCCEEDED, Decimal("0")),
    ],
)
def test_retrieving_reads_refunds_and_disputes_from_the_latest_charge(api, gateway, charge_update, status, refunded):
    latest = {**fixture("charge_partially_refunded"), **charge_update}
    api.get(f"{INTENTS}/{SUCCEEDED['id']}", json={**SUCCEEDED, "latest_charge": latest})
    payment = gateway.retrieve(SUCCEEDED["id"])
    assert parse_qs(urlsplit(api.calls[0].request.url).query) == {"expand[0]": ["latest_charge"]}
    assert (payment.status, payment.amount_refunded) == (status, refunded)
    assert payment.extra == {"latest_charge": "ch_3MtwBwLkdIwHu7ix2bXWk7Xj"}
    assert "4242" not in json.dumps(payment.raw)


@pytest.mark.parametrize(
    ("stripe_status", "status"),
    [
        ("processing", PaymentStatus.PROCESSING),
        ("requires_capture", PaymentStatus.AUTHORIZED),
        ("requires_confirmation", PaymentStatus.REQUIRES_ACTION),
        ("canceled", PaymentStatus.CANCELED),
    ],
)
def test_retrieving_maps_each_payment_intent_status(api, gateway, stripe_status, status):
    api.get(f"{INTENTS}/{SUCCEEDED['id']}", json={**SUCCEEDED, "status": stripe_status})
    assert gateway.retrieve(SUCCEEDED["id"]).status == status


def test_a_read_is_retried_by_http_client_alone(api, gateway, http_sleeps, stripe_sleeps):
    api.get(f"{INTENTS}/pi_x", json={"error": {"message": "Service unavailable", "type": "api_error"}}, status=503)
    with pytest.raises(Unavailable):
        gateway.retrieve("pi_x")
    assert len(api.calls) == 5  # HttpClient's first attempt and 4 retries; the package adds none
    assert len(http_sleeps) == 4 and not stripe_sleeps


def test_an_unknown_payment_intent_is_not_found(api, gateway):
    missing = {"error": {"code": "resource_missing", "message": "No such payment_intent: 'pi_x'", "param": "intent"}}
    api.get(f"{INTENTS}/pi_x", json={"error": {**missing["error"], "type": "invalid_request_error"}}, status=404)
    with pytest.raises(NotFound, match="No such payment_intent"):
        gateway.retrieve("pi_x")


def test_an_invalid_request_is_a_bad_response_with_stripes_message(api, gateway):
    api.post(INTENTS, json=fixture("amount_too_small"), status=400)
    with pytest.raises(BadResponse) as raised:
        gateway.charge(charge(amount=Decimal("0.10")))
    assert raised.value.message == "Stripe refused the request (amount): Amount must be at least $0.50 usd"
    assert raised.value.status == 400


def test_prisms_422_for_an_invalid_request_is_a_bad_response_too(api, gateway):
    api.post(INTENTS, json={"error": {"message": "Request body property amount must be integer"}}, status=422)
    with pytest.raises(BadResponse, match="must be integer") as raised:
        gateway.charge(charge())
    assert raised.value.status == 422
    assert len(api.calls) == 1


def test_a_rate_limit_is_rate_limited(api, gateway, stripe_sleeps):
    api.post(INTENTS, json=fixture("rate_limit"), status=429)
    with pytest.raises(RateLimited, match="Too many requests"):
        gateway.charge(charge())
    assert len(api.calls) == 1  # Stripe says when a 429 is worth retrying (Stripe-Should-Retry)


def test_a_wrong_key_is_an_auth_error_that_never_shows_the_key(api, gateway_for):
    gateway = gateway_for("sk_test_51M2JTkLkdIwHu7ixWrongKeyWrongKeyWrongwxyz")
    api.post(INTENTS, json=fixture("invalid_api_key"), status=401)
    with pytest.raises(AuthError) as raised:
        gateway.charge(charge())
    assert "Invalid API Key provided" in raised.value.message
    assert "WrongKey" not in str(raised.value)


def test_a_key_stripe_quotes_whole_is_cut_to_its_last_four_characters(api, gateway_for):
    key = "sk_test_51M2JTkLkdIwHu7ixWrongKeyWrongKeyWrongwxyz"
    api.post(INTENTS, json={"error": {"message": f"Invalid API Key provided: {key}", "type": "x"}}, status=401)
    with pytest.raises(AuthError) as raised:
        gateway_for(key).charge(charge())
    assert raised.value.message == "Stripe refused the key: Invalid API Key provided: sk_test_…wxyz"


def test_the_check_reads_the_balance_and_says_test_mode(api, gateway):
    api.get(f"{API}/balance", json=fixture("balance"))
    result = gateway.check()
    assert result.ok
    assert result.message == "Connected to Stripe in test mode."
    assert result.details == {"mode": "test", "key": "secret"}
    assert not result.warnings
    assert result.latency_ms is not None


def test_the_check_says_live_mode_and_warns_about_a_restricted_keys_permissions(api, gateway_for):
    api.get(f"{API}/balance", json={**fixture("balance"), "livemode": True})
    result = gateway_for("rk_live_51M2JTkLkdIwHu7ixRestricted").check()
    assert result.ok and result.details == {"mode": "live", "key": "restricted"}
    assert result.warnings == ["A restricted key needs write access to PaymentIntents and Refunds (not checked here)."]


def test_the_check_fails_on_a_wrong_key(api, gateway):
    api.get(f"{API}/balance", json=fixture("invalid_api_key"), status=401)
    result = gateway.check()
    assert not result.ok
    assert result.error_code == "auth"
    assert result.hint.startswith("Check the secret key")


def test_the_check_never_retries(api, gateway, http_sleeps):
    api.get(f"{API}/balance", json={"error": {"message": "Service unavailable", "type": "api_error"}}, status=503)
    result = gateway.check()
    assert (result.ok, result.error_code) == (False, "unavailable")
    assert len(api.calls) == 1 and not http_sleeps


def test_a_publishable_key_is_refused_before_anything_is_sent(api, gateway_for):
    gateway = gateway_for("pk_test_51M2JTkLkdIwHu7ix")
    with pytest.raises(ConfigurationError, match="publishable key"):
        gateway.charge(charge())
    assert gateway.check().error_code == "configuration"
    assert not api.calls


def test_a_missing_key_is_a_configuration_error(api, gateway_for):
    assert gateway_for("").check().error_code == "configuration"


def test_the_connections_base_url_points_the_package_elsewhere(api, gateway_for):
    api.post("https://stripe-mock.example.com/v1/payment_intents", json=SUCCEEDED)
    gateway_for(base_url="https://stripe-mock.example.com/").charge(charge())
    assert len(api.calls) == 1


def test_no_secret_key_client_secret_or_payment_method_id_is_logged(api, gateway, caplog, stripe_sleeps):
    caplog.set_level(logging.DEBUG)
    api.post(INTENTS, body=requests.exceptions.ReadTimeout("read timed out"))
    api.post(INTENTS, json=REQUIRES_ACTION)
    api.get(f"{INTENTS}/{REQUIRES_ACTION['id']}", json=REQUIRES_ACTION)
    gateway.charge(charge(payment_method="pm_card_authenticationRequired"))
    gateway.retrieve(REQUIRES_ACTION["id"])
    assert caplog.records  # the package does log these requests
    logged = caplog.text
    for secret in (KEY, "_secret_", "pm_card_authenticationRequired"):
        assert secret not in logged


def test_a_payment_method_id_stripe_quotes_is_kept_out_of_the_error_and_the_log(api, gateway, caplog):
    caplog.set_level(logging.DEBUG)
    pm = "pm_1MtwGALkdIwHu7ixJqGL3Nu0"
    missing = {"code": "resource_missing", "message": f"No such PaymentMethod: '{pm}'", "param": "payment_method"}
    api.post(INTENTS, json={"error": {**missing, "type": "invalid_request_error"}}, status=400)
    with pytest.raises(BadResponse) as raised:
        gateway.charge(charge(payment_method=pm))
    assert raised.value.message == "Stripe refused the request (payment_method): No such PaymentMethod: 'pm_…'"
    assert "No such PaymentMethod" in caplog.text  # the package logged Stripe's message, scrubbed
    assert pm not in caplog.text


def test_the_same_key_still_in_flight_is_retried_then_unavailable_not_refused(api, gateway, stripe_sleeps):
    in_flight = "There is currently another in-progress request using this Idempotent Key (that probably means you "
    in_flight += "submitted twice, and the other request is still going through): payment-7f3a9c."
    api.post(INTENTS, json={"error": {"message": in_flight, "type": "idempotency_error"}}, status=409)
    with pytest.raises(Unavailable, match="another in-progress request") as raised:
        gateway.charge(charge())
    assert not raised.value.permanent
    assert len(api.calls) == 1 + MAX_NETWORK_RETRIES
