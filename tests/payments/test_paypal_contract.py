"""The PayPal gateway against Prism mocks of PayPal's own descriptions (tests/contracts/paypal/,
copied from shared/specs/paypal/): Orders v2 and Payments v2, with the OAuth token endpoint
described by the team (PayPal's descriptions leave it out). Prism runs with `--errors`, so a
request the description refuses (a body off its schema, an amount that is not a decimal string, a
PayPal-Request-Id longer than 108 characters, an order id off its pattern, no bearer token, a token
request without Basic auth) answers 4xx and fails the test.

The connection's base URL points at a small router that sends each path to the mock of its
description. It also requires, on every API request, the access token the token mock issues (the
descriptions declare an OAuth scheme, which Prism checks only for presence). PayPal's descriptions
have no examples of their answers, so Prism makes placeholders ("string" for every id and date)
that break the descriptions' own patterns, and with `--errors` it answers 500 for them: a 500 whose
violations are all in the response means Prism accepted the request, and the router then answers
with the fixture the test scripted (`tests/fixtures/paypal/`, whose shapes are checked against
the same descriptions below).

PayPal's schemas leave objects open, so a misspelt field would pass Prism: every body sent is also
checked against its schema closed (`strict`), where a field the description does not have fails.
"""

from __future__ import annotations

import copy
import json
import re
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from integrations.errors import BadResponse
from integrations.http import HttpClient
from payments.gateways.base import ChargeRequest, PaymentStatus, RefundRequest, RefundStatus
from payments.gateways.paypal import PayPalGateway
from tests.prism import port_of, prism_mocks, serve

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "tests" / "contracts" / "paypal"  # copies of shared/specs (see its README)
FIXTURES = ROOT / "tests" / "fixtures" / "paypal"
ORDERS_SPEC = "checkout_orders_v2.sanitized.json"
PAYMENTS_SPEC = "payments_payment_v2.sanitized.json"
MODELS = {
    "/v1/oauth2/token": "oauth2_token.openapi.json",
    "/v2/checkout/": ORDERS_SPEC,
    "/v2/payments/": PAYMENTS_SPEC,
}
TOKEN_EXAMPLE = "A21AAExampleContractToken"  # the token description's example answer
ORDER = "5O190127TN364715T"
CAPTURE = "3C679366HH908993F"
AUTHORIZATION = "0AW2184448108334S"


@dataclass
class Router:
    ports: dict[str, int]
    url: str = ""
    # (method, path pattern) → fixture that answers a request Prism accepted, set by each test.
    answers: dict[tuple[str, str], str] = field(default_factory=dict)
    refused: list[tuple[str, int, str]] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)
    sent: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)

    def route(self, handler: BaseHTTPRequestHandler) -> None:
        path = handler.path.split("?", 1)[0]
        self.seen.append(f"{handler.command} {path}")
        body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        self.sent.append((handler.command, path, dict(handler.headers.items()), body))
        if path.startswith("/v2/") and handler.headers.get("Authorization") != f"Bearer {TOKEN_EXAMPLE}":
            return self.answer(handler, path, 401, {}, (FIXTURES / "error_authentication_failure.json").read_bytes())
        prefix = next((p for p in MODELS if path.startswith(p)), None)
        if prefix is None:
            return self.answer(handler, path, 404, {}, b'{"name": "RESOURCE_NOT_FOUND", "message": "no model"}')
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in {"host", "connection"}}
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.ports[prefix]}{handler.path}", data=body or None, headers=headers
        )
        request.method = handler.command
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                status, answer, content = response.status, dict(response.headers.items()), response.read()
        except urllib.error.HTTPError as error:
            status, answer, content = error.code, dict(error.headers.items()), error.read()
        if status < 300 and path == "/v1/oauth2/token":
            return self.answer(handler, path, status, answer, content)  # the description's example
        if status < 300 or accepted(status, content):
            return self.scripted(handler, path)
        self.answer(handler, path, status, answer, content)

    def scripted(self, handler: BaseHTTPRequestHandler, path: str) -> None:
        """PayPal's answer to a request Prism accepted: the fixture the test chose for it."""
        method = handler.command
        fixture = next((f for (m, p), f in self.answers.items() if m == method and re.fullmatch(p, path)), "")
        if not fixture:
            return self.answer(handler, path, 599, {}, b'{"name": "NO_ANSWER_SCRIPTED"}')
        content = (FIXTURES / fixture).read_bytes()
        self.answer(handler, path, 200 if method == "GET" else 201, {"Content-Type": "application/json"}, content)

    def answer(self, handler, path: str, status: int, headers: dict[str, str], content: bytes) -> None:
        if status >= 400:
            self.refused.append((path, status, headers.get("sl-violations", content.decode(errors="replace"))))
        handler.send_response(status)
        for name, value in headers.items():
            if name.lower() not in {"content-length", "connection", "keep-alive", "transfer-encoding"}:
                handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(content)))
        handler.end_headers()
        handler.wfile.write(content)

    def bodies(self, method: str, pattern: str) -> list[Any]:
        return [
            json.loads(body or b"null") for m, path, _, body in self.sent if m == method and re.fullmatch(pattern, path)
        ]

    def headers(self, method: str, pattern: str, name: str) -> list[str]:
        return [h.get(name, "") for m, path, h, _ in self.sent if m == method and re.fullmatch(pattern, path)]


def accepted(status: int, content: bytes) -> bool:
    """Prism's 500 for a request it accepted: its placeholder answer broke the description, nothing else."""
    if status != 500:
        return False
    try:
        found = json.loads(content).get("validation") or []
    except (ValueError, AttributeError):
        return False
    return bool(found) and all((v.get("location") or [""])[0] == "response" for v in found)


@pytest.fixture(scope="session")
def prism_router():
    with prism_mocks(*(SPECS / model for model in MODELS.values())) as urls:
        router = Router({prefix: port_of(url) for prefix, url in zip(MODELS, urls, strict=True)})
        with serve(router.route) as router.url:
            yield router


CREDENTIALS = {"client_id": "AeHubContract-client-id", "client_secret": "EHubContract-secret", "environment": "live"}


@pytest.fixture
def router(prism_router, settings):
    settings.INTEGRATIONS_ALLOW_PRIVATE_URLS = True
    prism_router.answers = {}
    prism_router.refused.clear()
    prism_router.seen.clear()
    prism_router.sent.clear()
    return prism_router


@pytest.fixture
def paypal(router, tenant_a, make_connection) -> PayPalGateway:
    connection = make_connection(tenant_a, "paypal", credentials=CREDENTIALS, base_url=router.url)
    return PayPalGateway(connection, client=HttpClient(allow_private=True, timeout=(2.0, 10.0), max_retries=0))


def charge(**kwargs) -> ChargeRequest:
    values = {
        "idempotency_key": "7f3a9c1e5b2d4e8f9a610c4d2b7e8f10",
        "amount": Decimal("25.00"),
        "currency": "USD",
        "description": "Order 1042",
        "metadata": {"hub_payment_id": "7f3a9c1e-5b2d-4e8f-9a61-0c4d2b7e8f10", "invoice_id": "1042"},
        "return_url": "https://shop.example.com/paid",
        "cancel_url": "https://shop.example.com/cart",
    }
    return ChargeRequest(**{**values, **kwargs})


ORDERS_PATH = "/v2/checkout/orders"
ORDER_PATH = f"/v2/checkout/orders/{ORDER}"


@pytest.mark.prism
def test_the_check_mints_a_token_the_description_accepts(paypal, router):
    result = paypal.check()
    assert result.ok, (result.message, router.refused)
    assert result.details["app_id"] == "APP-80W284485P519543T"
    assert router.seen == ["POST /v1/oauth2/token"]
    assert not router.refused


@pytest.mark.prism
@pytest.mark.parametrize(
    ("amount", "currency", "capture"), [("25.00", "USD", True), ("500", "JPY", True), ("25.00", "EUR", False)]
)
def test_a_charge_sends_an_order_the_description_accepts(paypal, router, amount, currency, capture):
    router.answers = {("POST", ORDERS_PATH): "orders_create.json"}

    payment = paypal.charge(charge(amount=Decimal(amount), currency=currency, capture=capture))

    assert not router.refused, router.refused
    assert payment.status == PaymentStatus.REQUIRES_ACTION
    assert payment.approval_url.endswith(f"token={ORDER}")
    [sent] = router.bodies("POST", ORDERS_PATH)
    assert sent["purchase_units"][0]["amount"] == {"currency_code": currency, "value": amount}
    assert not violations(ORDERS_SPEC, "order_request", sent)
    assert router.headers("POST", ORDERS_PATH, "PayPal-Request-Id") == ["7f3a9c1e5b2d4e8f9a610c4d2b7e8f10"]


@pytest.mark.prism
def test_a_billing_agreement_charge_sends_requests_the_description_accepts(paypal, router):
    router.answers = {
        ("POST", ORDERS_PATH): "orders_create_without_payment_source.json",
        ("POST", f"{ORDER_PATH}/capture"): "orders_capture_completed.json",
    }

    payment = paypal.charge(charge(payment_method="B-5YM98765A4321234X"))

    assert not router.refused, router.refused
    assert payment.status == PaymentStatus.SUCCEEDED
    [created] = router.bodies("POST", ORDERS_PATH)
    [captured] = router.bodies("POST", f"{ORDER_PATH}/capture")
    assert not violations(ORDERS_SPEC, "order_request", created)
    assert not violations(ORDERS_SPEC, "order_capture_request", captured)


@pytest.mark.prism
def test_capturing_an_approved_order_sends_requests_the_description_accepts(paypal, router):
    router.answers = {
        ("GET", ORDER_PATH): "orders_get_approved.json",
        ("POST", f"{ORDER_PATH}/capture"): "orders_capture_completed.json",
    }

    payment = paypal.capture(ORDER, None, "cap_7f3a9c1e5b2d4e8f9a610c4d2b7e8f10")

    assert not router.refused, router.refused
    assert (payment.status, payment.extra["capture_id"]) == (PaymentStatus.SUCCEEDED, CAPTURE)
    assert router.seen[1:] == [f"GET {ORDER_PATH}", f"POST {ORDER_PATH}/capture"]
    assert not violations(ORDERS_SPEC, "order_capture_request", router.bodies("POST", f"{ORDER_PATH}/capture")[0])


@pytest.mark.prism
def test_authorising_then_capturing_part_sends_requests_the_descriptions_accept(paypal, router):
    capture_path = f"/v2/payments/authorizations/{AUTHORIZATION}/capture"
    router.answers = {
        ("GET", ORDER_PATH): "orders_get_approved_authorize.json",
        ("POST", f"{ORDER_PATH}/authorize"): "orders_authorize.json",
        ("POST", capture_path): "authorizations_capture.json",
    }

    payment = paypal.capture(ORDER, Decimal("20.00"), "cap_7f3a9c1e5b2d4e8f9a610c4d2b7e8f10")

    assert not router.refused, router.refused
    assert (payment.status, payment.amount_captured) == (PaymentStatus.SUCCEEDED, Decimal("20.00"))
    [authorized] = router.bodies("POST", f"{ORDER_PATH}/authorize")
    [captured] = router.bodies("POST", capture_path)
    assert not violations(ORDERS_SPEC, "order_authorize_request", authorized)
    assert not violations(PAYMENTS_SPEC, "capture_request", captured)
    assert captured["amount"] == {"currency_code": "USD", "value": "20.00"}


@pytest.mark.prism
def test_a_refund_sends_a_request_the_description_accepts(paypal, router):
    path = f"/v2/payments/captures/{CAPTURE}/refund"
    router.answers = {("POST", path): "captures_refund.json"}
    ask = RefundRequest(
        idempotency_key="ref_51c0a7d2e4b94f6c8a3e1d7b9f2c4a60",
        gateway_payment_id=ORDER,
        amount=Decimal("10.00"),
        currency="USD",
        reason="Damaged mug",
        payment_extra={"capture_id": CAPTURE},
    )

    refund = paypal.refund(ask)

    assert not router.refused, router.refused
    assert (refund.status, refund.amount) == (RefundStatus.SUCCEEDED, Decimal("10.00"))
    [sent] = router.bodies("POST", path)
    assert not violations(PAYMENTS_SPEC, "refund_request", sent)


@pytest.mark.prism
def test_retrieve_sends_a_request_the_description_accepts(paypal, router):
    router.answers = {("GET", ORDER_PATH): "orders_get_partially_refunded.json"}

    payment = paypal.retrieve(ORDER)

    assert not router.refused, router.refused
    assert payment.status == PaymentStatus.PARTIALLY_REFUNDED


@pytest.mark.prism
def test_a_request_the_description_refuses_fails(paypal, router):
    # PayPal keeps at most 108 characters of a PayPal-Request-Id.
    router.answers = {("POST", ORDERS_PATH): "orders_create.json"}
    with pytest.raises(BadResponse):
        paypal.charge(charge(idempotency_key="k" * 109))
    [(path, status, violation)] = router.refused
    assert (path, status) == (ORDERS_PATH, 422)
    assert "PayPal-Request-Id" in violation or "paypal-request-id" in violation.lower(), violation


# --- The bodies, closed, and the fixtures against the same descriptions (no Prism needed) ---------------


def strict(spec: dict[str, Any]) -> dict[str, Any]:
    """The description with its objects closed: a field it does not describe fails validation.

    PayPal composes schemas with allOf (an amount is money plus a breakdown), so the schemas
    themselves cannot be closed; each place that uses one (a property, an array's items) is
    closed instead with `unevaluatedProperties`, which sees through $ref and allOf."""
    spec = copy.deepcopy(spec)

    def close(node: Any, in_combination: bool = False) -> None:
        if isinstance(node, dict):
            if not in_combination and ("$ref" in node or "properties" in node or "allOf" in node):
                node.setdefault("unevaluatedProperties", False)
            for key, value in node.items():
                if key in {"allOf", "anyOf", "oneOf"}:
                    for member in value:
                        close(member, in_combination=True)
                elif key == "properties":
                    for schema in value.values():
                        close(schema)
                elif key not in {"example", "examples", "enum", "default"}:
                    close(value)
        elif isinstance(node, list):
            for value in node:
                close(value)

    for schema in spec["components"]["schemas"].values():
        # The top of each schema stays open: it may be an allOf member; its users close it.
        for key, value in schema.items():
            if key == "properties":
                for inner in value.values():
                    close(inner)
            elif key in {"allOf", "anyOf", "oneOf"}:
                for member in value:
                    close(member, in_combination=True)
            elif key == "items":
                close(value)
    return spec


def violations(description: str, schema: str, data: Any, *, closed: bool = True) -> list[str]:
    spec = json.loads((SPECS / description).read_text())
    spec = strict(spec) if closed else spec
    root = {"$ref": f"#/components/schemas/{schema}", "components": spec["components"]}
    if closed:
        root["unevaluatedProperties"] = False
    validator = jsonschema.Draft202012Validator(root)
    return [f"{list(e.absolute_path)}: {e.message}" for e in sorted(validator.iter_errors(data), key=str)]


def test_a_field_the_description_does_not_have_fails_the_strict_check():
    sent = {
        "intent": "CAPTURE",
        "purchase_units": [{"amount": {"currency_code": "USD", "value": "1.00", "valeu": "1.00"}, "custom": "x"}],
        "payment_source": {"paypal": {"experience_context": {"return_url": "https://x.example", "retrun": "y"}}},
    }
    found = " ".join(violations(ORDERS_SPEC, "order_request", sent))
    assert "valeu" in found and "custom" in found and "retrun" in found, found
    sent = {"amount": {"currency_code": "USD", "value": "1.00", "breakdown": {}}, "note": "x"}
    found = " ".join(violations(PAYMENTS_SPEC, "refund_request", sent))
    assert "breakdown" in found and "note" in found, found


def test_the_strict_check_passes_what_the_description_has():
    sent = {
        "intent": "CAPTURE",
        "purchase_units": [{"amount": {"currency_code": "USD", "value": "1.00", "breakdown": {}}, "custom_id": "x"}],
    }
    assert not violations(ORDERS_SPEC, "order_request", sent)


@pytest.mark.parametrize(
    ("description", "schema", "fixture"),
    [
        (ORDERS_SPEC, "order", "orders_create.json"),
        (ORDERS_SPEC, "order", "orders_create_without_payment_source.json"),
        (ORDERS_SPEC, "order", "orders_get_approved.json"),
        (ORDERS_SPEC, "order", "orders_get_approved_authorize.json"),
        (ORDERS_SPEC, "order", "orders_capture_completed.json"),
        (ORDERS_SPEC, "order", "orders_capture_declined.json"),
        (ORDERS_SPEC, "order", "orders_get_partially_refunded.json"),
        (ORDERS_SPEC, "order_authorize_response", "orders_authorize.json"),
        (ORDERS_SPEC, "error_422", "error_instrument_declined.json"),
        (ORDERS_SPEC, "error_400", "error_invalid_request.json"),
        (ORDERS_SPEC, "error_401", "error_authentication_failure.json"),
        (PAYMENTS_SPEC, "capture-2", "authorizations_capture.json"),
        (PAYMENTS_SPEC, "refund", "captures_refund.json"),
        (PAYMENTS_SPEC, "error_422", "error_capture_fully_refunded.json"),
        (PAYMENTS_SPEC, "error_422", "error_refund_failed_insufficient_funds.json"),
    ],
)
def test_the_fixtures_have_the_shape_of_paypals_descriptions(description, schema, fixture):
    data = json.loads((FIXTURES / fixture).read_text())
    errors = violations(description, schema, data, closed=False)
    assert not errors, errors
