"""The Stripe gateway against a Prism mock of Stripe's own description of its core API
(tests/contracts/stripe/stripe_core.prism.json, copied from shared/specs/stripe/: charges,
PaymentIntents, refunds, customers, events; API version 2023-08-16). Prism runs with `--errors`,
so a request the description refuses (an unknown path or method, no credentials, a parameter of
the wrong type or outside its enum in the form-encoded body) answers 422 and fails the test.

The connection's base URL points at a small router in front of Prism. It records each request
(the Idempotency-Key with it), requires the test key on every request (the description declares
the key only as present) and answers a wrong one as Stripe does, with 401. It answers GET
/v1/balance itself, with Stripe's documented Balance object (`tests/fixtures/stripe/balance.json`):
the core description does not have the balance, and the whole API's (`stripe.prism.json`) takes
Prism half a minute and 600 MB to load.

Prism does not refuse a form field the description lacks, although Stripe's schemas are closed:
the bodies and query strings sent are also checked here against the operation's schema
(`unknown_fields`), so a misspelt parameter fails. Prism answers with the description's examples
(a PaymentIntent `pi_1PgafyB7WZ01zgkWSjxsAJo3` in status requires_payment_method whatever was
sent), so these tests judge the requests and that the answers map; test_stripe.py judges the
mapping of each status.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import stripe

from integrations.errors import AuthError, BadResponse
from integrations.http import HttpClient
from payments.gateways.base import ChargeRequest, PaymentStatus, RefundRequest, RefundStatus
from payments.gateways.stripe import StripeGateway, stripe_error
from tests.prism import port_of, prism_mocks, serve

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "tests" / "contracts" / "stripe" / "stripe_core.prism.json"  # a copy of shared/specs (see its README)
FIXTURES = ROOT / "tests" / "fixtures" / "stripe"
KEY = "sk_test_51M2JTkLkdIwHu7ixContractContract"
EXAMPLE_INTENT = "pi_1PgafyB7WZ01zgkWSjxsAJo3"  # the description's example PaymentIntent


@dataclass
class Seen:
    method: str
    path: str
    query: str
    body: str
    idempotency_key: str | None


@dataclass
class Router:
    port: int
    url: str = ""
    refused: list[tuple[str, int, str]] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)

    def route(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        self.seen.append(
            Seen(handler.command, parts.path, parts.query, body.decode(), handler.headers.get("Idempotency-Key"))
        )
        if handler.headers.get("Authorization") != f"Bearer {KEY}":
            return self.answer(handler, parts.path, 401, {}, (FIXTURES / "invalid_api_key.json").read_bytes())
        if (handler.command, parts.path) == ("GET", "/v1/balance"):
            return self.answer(handler, parts.path, 200, {}, (FIXTURES / "balance.json").read_bytes())
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in {"host", "connection"}}
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{handler.path}", data=body or None, headers=headers
        )
        request.method = handler.command
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                status, answer, content = response.status, dict(response.headers.items()), response.read()
        except urllib.error.HTTPError as error:
            status, answer, content = error.code, dict(error.headers.items()), error.read()
        self.answer(handler, parts.path, status, answer, content)

    def answer(self, handler, path: str, status: int, headers: dict[str, str], content: bytes) -> None:
        if status >= 400:
            self.refused.append((path, status, headers.get("sl-violations", content.decode(errors="replace")[:300])))
        handler.send_response(status)
        for name, value in headers.items():
            if name.lower() not in {"content-length", "connection", "keep-alive", "transfer-encoding"}:
                handler.send_header(name, value)
        if not any(name.lower() == "content-type" for name in headers):
            handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(content)))
        handler.end_headers()
        handler.wfile.write(content)


@pytest.fixture(scope="session")
def prism_router():
    with prism_mocks(SPEC) as (url,):
        router = Router(port_of(url))
        with serve(router.route) as router.url:
            yield router


@pytest.fixture
def gateway_for(prism_router, tenant_a, make_connection, settings):
    settings.INTEGRATIONS_ALLOW_PRIVATE_URLS = True
    prism_router.refused.clear()
    prism_router.seen.clear()

    def make(key: str = KEY) -> StripeGateway:
        connection = make_connection(tenant_a, "stripe", credentials={"secret_key": key}, base_url=prism_router.url)
        return StripeGateway(connection, client=HttpClient(allow_private=True, timeout=(2.0, 10.0)))

    return make


@pytest.fixture
def gateway(gateway_for) -> StripeGateway:
    return gateway_for()


# --- What Prism lets through: fields the description does not have ----------------------------------

DESCRIPTION: dict[str, Any] = {}
TEMPLATES = {
    "/v1/payment_intents": re.compile(r"/v1/payment_intents"),
    "/v1/payment_intents/{intent}": re.compile(r"/v1/payment_intents/[^/]+"),
    "/v1/payment_intents/{intent}/capture": re.compile(r"/v1/payment_intents/[^/]+/capture"),
    "/v1/refunds": re.compile(r"/v1/refunds"),
}


def description() -> dict[str, Any]:
    if not DESCRIPTION:
        DESCRIPTION.update(json.loads(SPEC.read_text()))
    return DESCRIPTION


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = description()["components"]["schemas"][name]
    return schema


def _has(schema: dict[str, Any], segments: list[str]) -> bool:
    """Whether the closed schema has the field named by the bracketed segments (metadata, order)."""
    schema = _resolve(schema)
    if not segments:
        return True
    branches = schema.get("anyOf") or schema.get("oneOf")
    if branches:
        return any(_has(branch, segments) for branch in branches)
    head, rest = segments[0], segments[1:]
    if schema.get("type") == "array" and head.isdigit():
        return _has(schema.get("items") or {}, rest)
    if head in (schema.get("properties") or {}):
        return _has(schema["properties"][head], rest)
    extra = schema.get("additionalProperties")
    return isinstance(extra, dict) and _has(extra, rest)


def unknown_fields(method: str, path: str, query: str, body: str) -> list[str]:
    template = next(t for t, pattern in TEMPLATES.items() if pattern.fullmatch(path))
    operation = description()["paths"][template][method.lower()]
    names = [name for name, _ in parse_qsl(body, keep_blank_values=True)]
    schema: dict[str, Any] = {}
    if names:
        schema = operation["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    declared = {p["name"]: p.get("schema") or {} for p in operation.get("parameters", []) if p["in"] == "query"}
    query_schema = {"type": "object", "properties": declared, "additionalProperties": False}
    unknown = [n for n in names if not _has(schema, re.findall(r"[^\[\]]+", n))]
    unknown += [n for n, _ in parse_qsl(query) if not _has(query_schema, re.findall(r"[^\[\]]+", n))]
    return unknown


def judged(router: Router) -> None:
    """Prism accepted every request, and none carried a field the description does not have."""
    assert not router.refused, router.refused
    for seen in router.seen:
        if seen.path != "/v1/balance":
            assert not unknown_fields(seen.method, seen.path, seen.query, seen.body), seen


def charge(**kwargs) -> ChargeRequest:
    defaults = {
        "idempotency_key": "payment-contract-1",
        "amount": Decimal("10.50"),
        "currency": "USD",
        "payment_method": "pm_card_visa",
        "customer": "cus_NffrFeUfNV2Hib",
        "description": "Order #1001",
        "metadata": {"order": "1001", "tenant": "alpha-goods"},
        "return_url": "https://shop.example.com/checkout/return",
    }
    return ChargeRequest(**{**defaults, **kwargs})


# --- The gateway's requests --------------------------------------------------------------------------


@pytest.mark.prism
def test_a_charge_sends_a_payment_intent_the_description_accepts(gateway, prism_router):
    payment = gateway.charge(charge())
    judged(prism_router)
    [create] = prism_router.seen
    assert (create.method, create.path, create.idempotency_key) == ("POST", "/v1/payment_intents", "payment-contract-1")
    assert dict(parse_qsl(create.body))["automatic_payment_methods[enabled]"] == "false"
    assert payment.gateway_id == EXAMPLE_INTENT
    assert payment.currency == "USD" and payment.amount == Decimal("10.99")  # the example's amount


@pytest.mark.prism
def test_an_authorisation_an_email_receipt_and_a_yen_amount_are_accepted(gateway, prism_router):
    gateway.charge(charge(capture=False, customer="ada@example.com", amount=Decimal("500"), currency="JPY"))
    judged(prism_router)
    sent = dict(parse_qsl(prism_router.seen[0].body))
    assert (sent["capture_method"], sent["receipt_email"], sent["amount"], sent["currency"]) == (
        "manual",
        "ada@example.com",
        "500",
        "jpy",
    )


@pytest.mark.prism
def test_a_payment_for_the_customers_browser_is_accepted(gateway, prism_router):
    payment = gateway.charge(charge(payment_method="", customer="", metadata={}, return_url=""))
    judged(prism_router)
    assert payment.gateway_id == EXAMPLE_INTENT


@pytest.mark.prism
def test_a_partial_capture_is_accepted(gateway, prism_router):
    payment = gateway.capture(EXAMPLE_INTENT, Decimal("5.00"), "capture-contract-1")
    judged(prism_router)
    read, capture = prism_router.seen
    assert (read.method, read.path) == ("GET", f"/v1/payment_intents/{EXAMPLE_INTENT}")
    assert (capture.path, capture.body, capture.idempotency_key) == (
        f"/v1/payment_intents/{EXAMPLE_INTENT}/capture",
        "amount_to_capture=500",
        "capture-contract-1",
    )
    assert payment.gateway_id == EXAMPLE_INTENT


@pytest.mark.prism
def test_a_full_capture_is_accepted(gateway, prism_router):
    gateway.capture(EXAMPLE_INTENT, None, "capture-contract-2")
    judged(prism_router)
    assert [s.method for s in prism_router.seen] == ["POST"]


@pytest.mark.prism
@pytest.mark.parametrize("reason", ["requested_by_customer", "Damaged in transit", ""])
def test_refunds_are_accepted(gateway, prism_router, reason):
    refund = gateway.refund(RefundRequest("refund-contract-1", EXAMPLE_INTENT, Decimal("3.00"), "USD", reason=reason))
    judged(prism_router)
    [sent] = prism_router.seen
    assert (sent.path, sent.idempotency_key) == ("/v1/refunds", "refund-contract-1")
    assert refund.status == RefundStatus.SUCCEEDED  # the description's example refund
    assert refund.gateway_id.startswith("re_")


@pytest.mark.prism
def test_retrieving_with_the_latest_charge_expanded_is_accepted(gateway, prism_router):
    payment = gateway.retrieve(EXAMPLE_INTENT)
    judged(prism_router)
    [read] = prism_router.seen
    assert (read.method, parse_qsl(read.query)) == ("GET", [("expand[0]", "latest_charge")])
    assert payment.gateway_id == EXAMPLE_INTENT
    assert payment.status in set(PaymentStatus)


@pytest.mark.prism
def test_the_check_passes_with_the_key(gateway, prism_router):
    result = gateway.check()
    assert result.ok, (result.message, prism_router.refused)
    assert result.details["mode"] == "test"


@pytest.mark.prism
def test_a_wrong_key_fails_the_check_and_every_operation(gateway_for, prism_router):
    gateway = gateway_for("sk_test_51M2JTkLkdIwHu7ixNotTheKeyAtAllwxyz")
    result = gateway.check()
    assert (result.ok, result.error_code) == (False, "auth")
    with pytest.raises(AuthError):
        gateway.charge(charge())
    assert len(prism_router.seen) == 2  # neither is retried


# --- The mock judges -----------------------------------------------------------------------------------


@pytest.mark.prism
def test_a_request_the_description_refuses_is_a_bad_response(gateway, prism_router):
    with pytest.raises(stripe.StripeError) as raised:
        gateway.api().v1.refunds.create({"payment_intent": EXAMPLE_INTENT, "reason": "damaged"})
    error = stripe_error(raised.value)
    assert isinstance(error, BadResponse)
    assert error.status == 422  # Prism's answer where Stripe answers 400
    [(path, status, violation)] = prism_router.refused
    assert (path, status) == ("/v1/refunds", 422)
    assert "reason" in violation


def test_a_field_the_description_does_not_have_is_caught():
    body = "amount=1050&currency=usd&metadata[order]=1001&automatic_payment_methods[enabled]=false"
    assert not unknown_fields("POST", "/v1/payment_intents", "", body)
    assert unknown_fields("POST", "/v1/payment_intents", "", f"{body}&captur_method=manual") == ["captur_method"]
    assert unknown_fields("POST", "/v1/payment_intents", "", "automatic_payment_methods[enable]=false")
    assert not unknown_fields("GET", f"/v1/payment_intents/{EXAMPLE_INTENT}", "expand[0]=latest_charge", "")
    assert unknown_fields("GET", f"/v1/payment_intents/{EXAMPLE_INTENT}", "expnd[0]=latest_charge", "")
