"""The Square gateway over Square's REST API (`responses`): charges, declines as answers, authorise
then capture (in part too), retries with the same idempotency key, refunds in part and in full,
zero-decimal currencies, Square's own words in errors, and the connection test.

`Square` below keeps payments the way Square's documentation says it does: a create is kept with
its idempotency key, so the same request again answers the same payment and the key with another
request is refused (IDEMPOTENCY_KEY_REUSED); a completed payment cannot be completed again; refunds
add up to at most the payment. Its answers are shaped by tests/fixtures/square/ (the documented
examples of the description in tests/contracts/square/)."""

from __future__ import annotations

import copy
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
import responses

from integrations.errors import AuthError, BadResponse, NotFound
from integrations.http import HttpClient
from payments.gateways import get_gateway
from payments.gateways.base import ChargeRequest, PaymentStatus, RefundRequest, RefundStatus
from payments.gateways.square import SQUARE_VERSION, SquareGateway

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "square"
API = "https://connect.squareup.com"
TOKEN = "EAAAl-test-access-token"
LOCATION = "18YC4JDH91E1H"  # the first of the documented ListLocations example
CREDENTIALS = {"access_token": TOKEN, "location_id": LOCATION, "environment": "production"}


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def errors(category: str, code: str, detail: str, field: str = "") -> dict[str, Any]:
    error = {"category": category, "code": code, "detail": detail}
    return {"errors": [{**error, "field": field} if field else error]}


class Square:
    """One Square account behind `responses` callbacks (see the module's docstring)."""

    DECLINES = {  # the sandbox's test card tokens that are declined, and how
        "cnon:card-nonce-declined": "CARD_DECLINED",
        "cnon:card-nonce-rejected-cvv": "CVV_FAILURE",
        "cnon:card-nonce-rejected-postalcode": "VERIFY_AVS_FAILURE",
    }

    def __init__(self, mock: responses.RequestsMock, base: str = API) -> None:
        self.payments: dict[str, dict[str, Any]] = {}
        self.refunds: list[dict[str, Any]] = []
        self.kept: dict[tuple[str, str], tuple[dict[str, Any], tuple[int, dict, str]]] = {}
        self.lost = 0  # answers to creates lost after Square made the payment (a timeout)
        self.decline_status = 402
        self.decline_with_payment = True
        self.bodies: list[tuple[str, str, dict[str, Any]]] = []
        payment = re.compile(re.escape(base) + r"/v2/payments/([^/]+)$")
        mock.add_callback("POST", f"{base}/v2/payments", self._guarded(self.create))
        mock.add_callback("GET", payment, self._guarded(self.get))
        mock.add_callback("PUT", payment, self._guarded(self.update))
        mock.add_callback(
            "POST", re.compile(re.escape(base) + r"/v2/payments/([^/]+)/complete$"), self._guarded(self.complete)
        )
        mock.add_callback("POST", f"{base}/v2/refunds", self._guarded(self.refund))
        mock.add_callback("GET", f"{base}/v2/locations", self._guarded(self.locations))

    def _guarded(self, serve):
        def handle(request):
            if request.headers.get("Authorization") != f"Bearer {TOKEN}":
                return 401, {}, json.dumps(fixture("error_unauthorized.json"))
            assert request.headers.get("Square-Version") == SQUARE_VERSION
            body = json.loads(request.body) if request.body else {}
            self.bodies.append((request.method, request.path_url, body))
            return serve(request, body)

        return handle

    def _keyed(self, endpoint: str, body: dict[str, Any], make) -> tuple[int, dict, str]:
        key = (endpoint, body["idempotency_key"])
        if key in self.kept:
            sent, answer = self.kept[key]
            if sent != body:
                return 400, {}, json.dumps(errors("INVALID_REQUEST_ERROR", "IDEMPOTENCY_KEY_REUSED", "Key reused."))
            return answer
        answer = make()
        self.kept[key] = (body, answer)
        return answer

    def create(self, request, body: dict[str, Any]):
        def make():
            payment = copy.deepcopy(fixture("create_payment_completed.json")["payment"])
            payment.update(
                id=f"pay{len(self.payments) + 1:03d}",
                amount_money=body["amount_money"],
                total_money=body["amount_money"],
                approved_money=body["amount_money"],
                location_id=body["location_id"],
                status="COMPLETED" if body.get("autocomplete", True) else "APPROVED",
            )
            code = self.DECLINES.get(body["source_id"])
            if code:
                payment["status"] = "FAILED"
                said = errors("PAYMENT_METHOD_ERROR", code, f"Authorization error: '{code}'")
                self.payments[payment["id"]] = payment
                answer = {**said, "payment": payment} if self.decline_with_payment else said
                return self.decline_status, {}, json.dumps(answer)
            self.payments[payment["id"]] = payment
            return 200, {}, json.dumps({"payment": payment})

        answer = self._keyed("payments", body, make)
        if self.lost:
            self.lost -= 1
            return requests.exceptions.ReadTimeout("Square did not answer in time")
        return answer

    def _found(self, request) -> dict[str, Any] | None:
        return self.payments.get(request.path_url.split("/")[3])

    def get(self, request, body: dict[str, Any]):
        payment = self._found(request)
        if payment is None:
            return 404, {}, json.dumps(errors("INVALID_REQUEST_ERROR", "NOT_FOUND", "Could not find payment."))
        return 200, {}, json.dumps({"payment": payment})

    def update(self, request, body: dict[str, Any]):
        payment = self._found(request)

        def make():
            if payment["status"] != "APPROVED":
                return 400, {}, json.dumps(errors("INVALID_REQUEST_ERROR", "BAD_REQUEST", "Payment is not APPROVED."))
            payment["amount_money"] = payment["total_money"] = body["payment"]["amount_money"]
            return 200, {}, json.dumps({"payment": payment})

        return self._keyed("update", body, make)

    def complete(self, request, body: dict[str, Any]):
        payment = self._found(request)
        if payment["status"] != "APPROVED":
            detail = f"Payment {payment['id']} is in {payment['status']} state."
            return 400, {}, json.dumps(errors("INVALID_REQUEST_ERROR", "BAD_REQUEST", detail))
        payment["status"] = "COMPLETED"
        return 200, {}, json.dumps({"payment": payment})

    def refund(self, request, body: dict[str, Any]):
        payment = self.payments[body["payment_id"]]

        def make():
            refunded = (payment.get("refunded_money") or {}).get("amount", 0)
            amount = body["amount_money"]["amount"]
            if refunded + amount > payment["amount_money"]["amount"]:
                detail = "The requested refund amount exceeds the amount available to refund."
                return 400, {}, json.dumps(errors("REFUND_ERROR", "REFUND_AMOUNT_INVALID", detail, "amount_money"))
            if body.get("reason") == "declined by the issuer":
                return 400, {}, json.dumps(errors("REFUND_ERROR", "REFUND_DECLINED", "The refund was declined."))
            payment["refunded_money"] = {"amount": refunded + amount, "currency": body["amount_money"]["currency"]}
            refund = {
                **fixture("refund_payment_pending.json")["refund"],
                "id": f"{payment['id']}_refund{len(self.refunds) + 1}",
                "amount_money": body["amount_money"],
                "payment_id": payment["id"],
                "reason": body.get("reason", ""),
            }
            self.refunds.append(refund)
            return 200, {}, json.dumps({"refund": refund})

        return self._keyed("refunds", body, make)

    def locations(self, request, body: dict[str, Any]):
        return 200, {}, json.dumps(fixture("list_locations.json"))

    def sent(self, method: str, path: str) -> list[dict[str, Any]]:
        return [body for m, p, body in self.bodies if m == method and p == path]


@pytest.fixture
def api():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def square(api) -> Square:
    return Square(api)


@pytest.fixture
def connect(make_connection, tenant_a):
    def connect(base_url: str = "", **credentials: str) -> SquareGateway:
        connection = make_connection(tenant_a, "square", credentials={**CREDENTIALS, **credentials}, base_url=base_url)
        return get_gateway(connection, client=HttpClient(sleep=lambda s: None))

    return connect


@pytest.fixture
def gateway(connect) -> SquareGateway:
    return connect()


def charge(**kwargs: Any) -> ChargeRequest:
    defaults: dict[str, Any] = {
        "idempotency_key": "payment-41-charge",
        "amount": Decimal("10.50"),
        "currency": "USD",
        "payment_method": "cnon:card-nonce-ok",
    }
    return ChargeRequest(**{**defaults, **kwargs})


def test_a_charge_sends_the_card_token_the_amount_in_cents_and_the_key(gateway, square):
    request = charge(customer="W92WH6P11H4Z77CTET0RNTGFW8", description="Order #1042", metadata={"order_id": "1042"})
    payment = gateway.charge(request)

    assert square.sent("POST", "/v2/payments") == [
        {
            "source_id": "cnon:card-nonce-ok",
            "idempotency_key": "payment-41-charge",
            "amount_money": {"amount": 1050, "currency": "USD"},
            "autocomplete": True,
            "location_id": LOCATION,
            "customer_id": "W92WH6P11H4Z77CTET0RNTGFW8",
            "reference_id": "1042",
            "note": "Order #1042",
        }
    ]
    assert (payment.status, payment.gateway_id) == (PaymentStatus.SUCCEEDED, "pay001")
    assert (payment.amount, payment.currency, payment.amount_captured) == (Decimal("10.50"), "USD", Decimal("10.50"))
    assert payment.extra["receipt_url"].startswith("https://squareup.com/receipt/")


def test_the_hubs_payment_id_is_the_reference_square_echoes_in_its_webhooks(gateway, square):
    hub_id = "3f1c2d4e-5b6a-4c7d-8e9f-0a1b2c3d4e5f"
    gateway.charge(charge(metadata={"hub_payment_id": hub_id, "order_id": "1042"}))
    assert square.sent("POST", "/v2/payments")[0]["reference_id"] == hub_id


def test_the_answer_kept_holds_no_card_number_expiry_or_fingerprint(gateway, square):
    payment = gateway.charge(charge())
    assert payment.raw["card_details"]["card"] == {
        "card_brand": "VISA",
        "card_type": "DEBIT",
        "last_4": "1111",
        "prepaid_type": "NOT_PREPAID",
    }
    assert "411111" not in json.dumps(payment.raw)


def test_a_customer_email_is_sent_as_the_buyers_email(gateway, square):
    gateway.charge(charge(customer="ada@example.com"))
    [sent] = square.sent("POST", "/v2/payments")
    assert sent["buyer_email_address"] == "ada@example.com"
    assert "customer_id" not in sent


@pytest.mark.parametrize(
    ("token", "code", "message"),
    [
        ("cnon:card-nonce-declined", "CARD_DECLINED", "The card was declined."),
        ("cnon:card-nonce-rejected-cvv", "CVV_FAILURE", "The card's security code (CVV) did not match."),
        ("cnon:card-nonce-rejected-postalcode", "VERIFY_AVS_FAILURE", "The postal code did not match the card's."),
    ],
)
@pytest.mark.parametrize(("status", "with_payment"), [(402, True), (400, True), (400, False)])
def test_a_declined_card_is_a_failed_payment_not_an_error(gateway, square, token, code, message, status, with_payment):
    square.decline_status, square.decline_with_payment = status, with_payment
    payment = gateway.charge(charge(payment_method=token))
    assert (payment.status, payment.failure_code, payment.failure_message) == (PaymentStatus.FAILED, code, message)
    assert payment.gateway_id == ("pay001" if with_payment else "")


def test_authorising_leaves_the_payment_open_until_it_is_captured(gateway, square):
    authorised = gateway.charge(charge(capture=False))
    assert square.sent("POST", "/v2/payments")[0]["autocomplete"] is False
    assert (authorised.status, authorised.amount_captured) == (PaymentStatus.AUTHORIZED, None)

    captured = gateway.capture(authorised.gateway_id, None, "payment-41-capture")
    assert (captured.status, captured.amount_captured) == (PaymentStatus.SUCCEEDED, Decimal("10.50"))
    assert square.sent("POST", "/v2/payments/pay001/complete") == [{}]
    assert not square.sent("PUT", "/v2/payments/pay001")


def test_capturing_in_part_lowers_the_amount_before_completing(gateway, square):
    authorised = gateway.charge(charge(capture=False))
    captured = gateway.capture(authorised.gateway_id, Decimal("6.00"), "payment-41-capture")
    assert square.sent("PUT", "/v2/payments/pay001") == [
        {"idempotency_key": "payment-41-capture", "payment": {"amount_money": {"amount": 600, "currency": "USD"}}}
    ]
    assert (captured.status, captured.amount_captured) == (PaymentStatus.SUCCEEDED, Decimal("6.00"))


def test_capturing_again_after_a_lost_answer_returns_the_captured_payment(gateway, square):
    authorised = gateway.charge(charge(capture=False))
    gateway.capture(authorised.gateway_id, None, "payment-41-capture")
    again = gateway.capture(authorised.gateway_id, None, "payment-41-capture")
    assert again.status == PaymentStatus.SUCCEEDED
    assert len(square.sent("POST", "/v2/payments/pay001/complete")) == 2  # Square refused the second


def test_capturing_a_cancelled_payment_is_an_error_with_squares_words(gateway, square):
    authorised = gateway.charge(charge(capture=False))
    square.payments[authorised.gateway_id]["status"] = "CANCELED"
    with pytest.raises(BadResponse, match="BAD_REQUEST: Payment pay001 is in CANCELED state"):
        gateway.capture(authorised.gateway_id, None, "payment-41-capture")


def test_a_timeout_is_retried_with_the_same_key_and_makes_one_payment(gateway, square):
    square.lost = 1
    payment = gateway.charge(charge())
    sent = square.sent("POST", "/v2/payments")
    assert len(sent) == 2 and sent[0] == sent[1]  # the same idempotency key, the same request
    assert (payment.status, payment.gateway_id) == (PaymentStatus.SUCCEEDED, "pay001")
    assert list(square.payments) == ["pay001"]


def test_charging_again_with_the_same_key_later_returns_the_same_payment(gateway, square):
    first = gateway.charge(charge())
    second = gateway.charge(charge())
    assert first.gateway_id == second.gateway_id == "pay001"
    assert list(square.payments) == ["pay001"]


def test_a_key_longer_than_square_takes_is_shortened_the_same_way_every_time(gateway, square):
    key = "payment:7f1c9e0a-3b2d-4c5e-8f6a-1b2c3d4e5f60:charge"
    assert len(key) > 45
    gateway.charge(charge(idempotency_key=key))
    gateway.charge(charge(idempotency_key=key))
    first, second = square.sent("POST", "/v2/payments")
    assert len(first["idempotency_key"]) == 45 and first["idempotency_key"] == second["idempotency_key"]
    assert list(square.payments) == ["pay001"]


def test_the_same_key_for_another_charge_is_refused(gateway, square):
    gateway.charge(charge())
    with pytest.raises(BadResponse, match="IDEMPOTENCY_KEY_REUSED"):
        gateway.charge(charge(amount=Decimal("99.00")))


def refund(amount: str, key: str, **kwargs: Any) -> RefundRequest:
    return RefundRequest(
        idempotency_key=key, gateway_payment_id="pay001", amount=Decimal(amount), currency="USD", **kwargs
    )


def test_a_partial_then_a_full_refund(gateway, square):
    gateway.charge(charge())
    first = gateway.refund(refund("4.00", "refund-1", reason="Damaged in transit"))
    assert square.sent("POST", "/v2/refunds")[0] == {
        "idempotency_key": "refund-1",
        "amount_money": {"amount": 400, "currency": "USD"},
        "payment_id": "pay001",
        "reason": "Damaged in transit",
    }
    assert (first.status, first.amount, first.gateway_id) == (RefundStatus.PENDING, Decimal("4.00"), "pay001_refund1")
    partly = gateway.retrieve("pay001")
    assert (partly.status, partly.amount_refunded) == (PaymentStatus.PARTIALLY_REFUNDED, Decimal("4.00"))

    rest = gateway.refund(refund("6.50", "refund-2"))
    assert (rest.status, rest.amount) == (RefundStatus.PENDING, Decimal("6.50"))
    fully = gateway.retrieve("pay001")
    assert (fully.status, fully.amount_refunded) == (PaymentStatus.REFUNDED, Decimal("10.50"))


def test_a_refund_retried_with_its_key_refunds_once(gateway, square):
    gateway.charge(charge())
    first = gateway.refund(refund("4.00", "refund-1"))
    again = gateway.refund(refund("4.00", "refund-1"))
    assert first.gateway_id == again.gateway_id and len(square.refunds) == 1


def test_a_refund_square_declines_is_a_failed_refund(gateway, square):
    gateway.charge(charge())
    result = gateway.refund(refund("4.00", "refund-1", reason="declined by the issuer"))
    assert (result.status, result.failure_code, result.gateway_id) == (RefundStatus.FAILED, "REFUND_DECLINED", "")
    assert result.failure_message == "The refund was declined."


def test_refunding_more_than_is_left_is_refused_with_squares_reason(gateway, square):
    gateway.charge(charge())
    gateway.refund(refund("10.00", "refund-1"))
    result = gateway.refund(refund("1.00", "refund-2"))
    assert (result.status, result.failure_code) == (RefundStatus.FAILED, "REFUND_AMOUNT_INVALID")
    assert "exceeds the amount available" in result.failure_message


def test_yen_are_sent_in_whole_units(gateway, square):
    payment = gateway.charge(charge(amount=Decimal("500"), currency="JPY"))
    assert square.sent("POST", "/v2/payments")[0]["amount_money"] == {"amount": 500, "currency": "JPY"}
    assert (payment.amount, payment.currency) == (Decimal("500"), "JPY")
    gateway.refund(RefundRequest("refund-1", "pay001", Decimal("200"), "JPY"))
    assert square.sent("POST", "/v2/refunds")[0]["amount_money"] == {"amount": 200, "currency": "JPY"}


def test_a_wrong_token_is_an_auth_error_in_squares_words(connect, square):
    gateway = connect(access_token="EAAAl-revoked")
    with pytest.raises(AuthError) as caught:
        gateway.charge(charge())
    assert "UNAUTHORIZED: This request could not be authorized." in caught.value.message
    assert "Developer Console" in caught.value.hint
    assert not square.payments


def test_an_unknown_payment_is_not_found(gateway, square):
    with pytest.raises(NotFound, match="NOT_FOUND: Could not find payment"):
        gateway.retrieve("nope")


def test_a_request_square_calls_invalid_carries_its_code_detail_and_field(gateway, api):
    said = errors("INVALID_REQUEST_ERROR", "INVALID_VALUE", "Invalid source_id.", "source_id")
    api.post(f"{API}/v2/payments", json=said, status=400)
    with pytest.raises(BadResponse, match=r"INVALID_VALUE: Invalid source_id\. \(source_id\)"):
        gateway.charge(charge(payment_method="not-a-token"))


def test_the_connection_test_finds_the_location(gateway, square):
    result = gateway.check()
    assert result.ok, result.message
    assert result.message == "Connected to Square (production): location “Grant Park”."
    assert result.details["live"] is True and result.details["location"]["currency"] == "USD"


def test_the_connection_test_names_the_accounts_locations_when_the_location_is_unknown(connect, square):
    result = connect(location_id="LWRONG").check()
    assert (result.ok, result.error_code) == (False, "configuration")
    assert result.message == "This Square account (production) has no location “LWRONG”."
    assert "18YC4JDH91E1H (Grant Park), 3Z4V4WHQK64X9 (Midtown)" in result.hint


def test_the_connection_test_with_a_wrong_token_asks_for_new_credentials(connect, square):
    result = connect(access_token="EAAAl-wrong").check()
    assert (result.ok, result.error_code) == (False, "auth")
    assert "UNAUTHORIZED" in result.message


def test_the_connection_test_never_retries(gateway, api):
    api.get(f"{API}/v2/locations", status=503, json=errors("API_ERROR", "SERVICE_UNAVAILABLE", "Try later."))
    result = gateway.check()
    assert (result.ok, result.error_code) == (False, "unavailable")
    assert len(api.calls) == 1


def test_the_sandbox_has_its_own_host_and_a_base_url_overrides_both(connect, api):
    Square(api, base="https://connect.squareupsandbox.com")
    Square(api, base="https://square.test.example")
    assert connect(environment="sandbox").check().details["environment"] == "sandbox"
    assert connect(base_url="https://square.test.example").check().ok
    assert [call.request.url.split("/v2")[0] for call in api.calls] == [
        "https://connect.squareupsandbox.com",
        "https://square.test.example",
    ]
