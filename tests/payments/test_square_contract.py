"""The Square gateway against a Prism mock of Square's own description of its Payments, Refunds and
Locations APIs (tests/contracts/square/, copied from shared/specs/square/): a request the
description refuses (a required field missing, a wrong type, a key too long, no bearer token)
is answered 4xx and fails the test.

Prism runs without `--errors`: the description's own CreatePayment example breaks its schema
(its `risk_evaluation` has no `status`), and with `--errors` Prism would answer every accepted
create with a 500. Request validation does not depend on the flag: a request off the schema is
still answered 422. Every request and Prism's verdict are recorded on the client's session.

Prism answers with the documented examples, so capturing in part is judged with the payment
read as APPROVED (the GetPayment example is COMPLETED, which needs no UpdatePayment). The
description leaves objects open, so a misspelt field would pass Prism: the bodies sent are also
checked against the schemas closed (`strict`), where a field the description does not have fails.
"""

from __future__ import annotations

import copy
import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from integrations.errors import AuthError, BadResponse
from integrations.http import HttpClient
from payments.gateways.base import ChargeRequest, PaymentStatus, RefundRequest, RefundStatus
from payments.gateways.square import SquareGateway
from tests.conftest import PRISM, _unavailable

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
DESCRIPTION = ROOT / "tests" / "contracts" / "square" / "square_payments_refunds.subset.json"
FIXTURES = ROOT / "tests" / "fixtures" / "square"
STARTUP = 60.0
LOCATION = "18YC4JDH91E1H"  # the first location of the ListLocations example
CREDENTIALS = {"access_token": "EAAAl-contract-token", "location_id": LOCATION, "environment": "production"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def prism_square():
    if not PRISM.exists():
        _unavailable(f"Prism is not installed at {PRISM} (npm ci)")
    if not DESCRIPTION.exists():
        _unavailable(f"Square's description is not at {DESCRIPTION}")
    port = free_port()
    command = [str(PRISM), "mock", str(DESCRIPTION), "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + STARTUP
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"Prism exited with {process.returncode}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except urllib.error.HTTPError:
                break  # it answers (404 for a path the description does not have)
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"Prism did not answer on port {port} within {STARTUP:.0f} s") from None
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


class Recorded(list):
    """(method, path, status, Prism's violations, body sent) of every request."""

    def refused(self) -> list[tuple[str, str, int, str]]:
        return [(m, p, status, said) for m, p, status, said, _ in self if status >= 400]

    def bodies(self, method: str, path: str) -> list[Any]:
        return [json.loads(body) for m, p, _, _, body in self if m == method and p == path]


@pytest.fixture
def recorded() -> Recorded:
    return Recorded()


@pytest.fixture
def connect(prism_square, recorded, make_connection, tenant_a, settings):
    settings.INTEGRATIONS_ALLOW_PRIVATE_URLS = True

    def connect(**credentials: str) -> SquareGateway:
        connection = make_connection(
            tenant_a, "square", credentials={**CREDENTIALS, **credentials}, base_url=prism_square
        )
        client = HttpClient(allow_private=True, timeout=(2.0, 10.0), sleep=lambda s: None)
        send = client.session.send

        def recording(request, **kwargs):
            response = send(request, **kwargs)
            said = response.headers.get("sl-violations", "") if response.status_code < 400 else response.text
            recorded.append((request.method, request.path_url, response.status_code, said, request.body or b"{}"))
            return response

        client.session.send = recording
        return SquareGateway(connection, client=client)

    return connect


@pytest.fixture
def gateway(connect) -> SquareGateway:
    return connect()


def strict_validator(schema: str) -> jsonschema.Draft4Validator:
    """The description's schema with its objects closed: a field it does not describe fails."""
    spec = json.loads(DESCRIPTION.read_text())

    def close(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node:
                node.setdefault("additionalProperties", False)
            for value in node.values():
                close(value)
        elif isinstance(node, list):
            for value in node:
                close(value)

    close(spec["components"]["schemas"])
    return jsonschema.Draft4Validator({"$ref": f"#/components/schemas/{schema}", "components": spec["components"]})


def violations(schema: str, data: Any) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in strict_validator(schema).iter_errors(data)]


def charge(**kwargs: Any) -> ChargeRequest:
    defaults: dict[str, Any] = {
        "idempotency_key": "payment-41-charge",
        "amount": Decimal("10.00"),
        "currency": "USD",
        "payment_method": "cnon:card-nonce-ok",
        "customer": "W92WH6P11H4Z77CTET0RNTGFW8",
        "description": "Order #1042",
        "metadata": {"order_id": "1042"},
    }
    return ChargeRequest(**{**defaults, **kwargs})


@pytest.mark.prism
def test_a_charge_sends_a_request_the_description_accepts(gateway, recorded):
    payment = gateway.charge(charge())
    assert not recorded.refused(), recorded.refused()
    [sent] = recorded.bodies("POST", "/v2/payments")
    assert not violations("CreatePaymentRequest", sent)
    # The documented example answer, in the hub's terms.
    assert (payment.status, payment.gateway_id) == (PaymentStatus.SUCCEEDED, "R2B3Z8WMVt3EAmzYWLZvz7Y69EbZY")
    assert (payment.amount, payment.currency, payment.amount_captured) == (Decimal("10.00"), "USD", Decimal("10.00"))


@pytest.mark.prism
def test_an_authorisation_with_an_email_and_a_long_key_is_accepted(gateway, recorded):
    gateway.charge(charge(capture=False, customer="ada@example.com", idempotency_key="k" * 80))
    assert not recorded.refused(), recorded.refused()
    [sent] = recorded.bodies("POST", "/v2/payments")
    assert (sent["autocomplete"], sent["buyer_email_address"], len(sent["idempotency_key"])) == (
        False,
        "ada@example.com",
        45,
    )
    assert not violations("CreatePaymentRequest", sent)


@pytest.mark.prism
def test_capturing_in_part_sends_requests_the_description_accepts(gateway, recorded, monkeypatch):
    approved = copy.deepcopy(json.loads((FIXTURES / "create_payment_completed.json").read_text())["payment"])
    approved["status"] = "APPROVED"
    monkeypatch.setattr(gateway, "_payment_at", lambda path: approved)
    payment = gateway.capture("R2B3Z8WMVt3EAmzYWLZvz7Y69EbZY", Decimal("6.00"), "payment-41-capture")
    assert not recorded.refused(), recorded.refused()
    path = "/v2/payments/R2B3Z8WMVt3EAmzYWLZvz7Y69EbZY"
    [update] = recorded.bodies("PUT", path)
    assert update == {
        "idempotency_key": "payment-41-capture",
        "payment": {"amount_money": {"amount": 600, "currency": "USD"}},
    }
    assert not violations("UpdatePaymentRequest", update)
    [complete] = recorded.bodies("POST", f"{path}/complete")
    assert not violations("CompletePaymentRequest", complete)
    assert payment.status == PaymentStatus.SUCCEEDED  # CompletePayment's example


@pytest.mark.prism
def test_a_refund_sends_a_request_the_description_accepts(gateway, recorded):
    request = RefundRequest("refund-1", "R2B3Z8WMVt3EAmzYWLZvz7Y69EbZY", Decimal("10.00"), "USD", reason="Returned")
    refund = gateway.refund(request)
    assert not recorded.refused(), recorded.refused()
    [sent] = recorded.bodies("POST", "/v2/refunds")
    assert not violations("RefundPaymentRequest", sent)
    assert (refund.status, refund.amount) == (RefundStatus.PENDING, Decimal("10.00"))  # the example is PENDING
    assert refund.gateway_id.startswith("R2B3Z8WMVt3EAmzYWLZvz7Y69EbZY_")


@pytest.mark.prism
def test_retrieving_reads_the_documented_payment(gateway, recorded):
    payment = gateway.retrieve("bP9mAsEMYPUGjjGNaNO5ZDVyLhSZY")
    assert not recorded.refused(), recorded.refused()
    assert (payment.status, payment.amount, payment.gateway_id) == (
        PaymentStatus.SUCCEEDED,
        Decimal("5.55"),
        "bP9mAsEMYPUGjjGNaNO5ZDVyLhSZY",
    )


@pytest.mark.prism
def test_the_connection_test_reads_the_documented_locations(connect, recorded):
    result = connect().check()
    assert result.ok, result.message
    assert result.message == "Connected to Square (production): location “Grant Park”."
    unknown = connect(location_id="LWRONG").check()
    assert (unknown.ok, unknown.error_code) == (False, "configuration")
    assert "3Z4V4WHQK64X9 (Midtown)" in unknown.hint
    assert not recorded.refused(), recorded.refused()


@pytest.mark.prism
def test_a_request_without_the_bearer_token_is_refused(gateway, recorded, monkeypatch):
    monkeypatch.setattr(gateway, "credential", lambda name: "" if name == "access_token" else LOCATION)
    with pytest.raises(AuthError):
        gateway.retrieve("bP9mAsEMYPUGjjGNaNO5ZDVyLhSZY")
    assert [(m, p, status) for m, p, status, _ in recorded.refused()] == [
        ("GET", "/v2/payments/bP9mAsEMYPUGjjGNaNO5ZDVyLhSZY", 401)
    ]


@pytest.mark.prism
def test_a_request_the_description_refuses_fails(gateway, recorded):
    with pytest.raises(BadResponse, match="422"):
        gateway._call("POST", "/v2/payments", {"idempotency_key": "k", "amount_money": {"amount": "10.00"}})
    [(method, path, status, said)] = recorded.refused()
    assert (method, path, status) == ("POST", "/v2/payments", 422)
    assert "source_id" in said and "amount_money.amount must be integer" in said, said


def test_a_field_the_description_does_not_have_fails_the_strict_check():
    body = {"source_id": "cnon:x", "idempotency_key": "k", "amount_money": {"amount": 1, "currency": "USD"}}
    assert not violations("CreatePaymentRequest", body)
    assert violations("CreatePaymentRequest", {**body, "customer_email": "ada@example.com"})


@pytest.mark.parametrize(
    ("fixture", "schema"),
    [
        ("create_payment_declined.json", "CreatePaymentResponse"),
        ("error_unauthorized.json", "CreatePaymentResponse"),
        ("refund_payment_pending.json", "RefundPaymentResponse"),
        ("list_locations.json", "ListLocationsResponse"),
    ],
)
def test_the_fixtures_have_the_shape_of_the_description(fixture, schema):
    assert not violations(schema, json.loads((FIXTURES / fixture).read_text()))
