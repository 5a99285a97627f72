"""The Amazon connector against Prism mocks of Amazon's own models (shared/specs/amazon-sp-api/):
Orders v2026-01-01 and v0, FBA inventory v1, Finances v0 (financial events and event groups) and
the LWA token description. Prism runs with `--errors`, so a request the real API would refuse (a
parameter missing, malformed or out of range, a list sent the wrong way, a body off its schema)
answers 4xx and fails the test.

The connection's base URL points at a small router that sends each path to the mock of its model
and answers the Sellers API itself (its model is not among the shared specs). The router also
requires the access token the LWA mock issues in `x-amz-access-token` on every SP-API request
(the models do not declare that header), and it drops the page token of a second page, because
a mock answers every page with a next token and a read would never end.

Shipment pushes are judged the same way: getOrder by the v2026-01-01 model and confirmShipment by
v0's, which Prism checks for its path, method and body. Prism answers getOrder with the model's
example, a shipped order; once it has accepted the request for the model's documented unshipped
order, the router answers with that example instead (`get_order_unshipped.json`), so a
confirmation follows. The model leaves objects open, so a misspelt field would pass Prism: the
body sent is also checked against the schema closed (`strict`). Stock pushes (Listings Items API
getListingsItem and patchListingsItem) are not judged here: the Listings Items model is not among
the shared specs. test_amazon_push.py covers them against the shapes of Amazon's documentation.
"""

from __future__ import annotations

import copy
import itertools
import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from commerce.pushes import FulfilmentPush
from commerce.records import FeeRecord, InventoryRecord, OrderRecord, ProductRecord, SettlementRecord
from integrations.connectors.amazon import AmazonConnector
from integrations.connectors.base import Failed
from integrations.errors import BadResponse
from integrations.http import HttpClient
from tests.prism import port_of, prism_mocks, serve

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "tests" / "contracts" / "amazon-sp-api"  # copies of shared/specs (see its README)
FIXTURES = ROOT / "tests" / "fixtures" / "amazon"
MODELS = {
    "/auth/o2/token": "lwa_token.openapi.json",
    "/orders/v0/": "ordersV0.json",  # before "/orders/": the first prefix that fits routes
    "/orders/": "orders_2026-01-01.json",
    "/fba/": "fbaInventory.json",
    "/finances/": "financesV0.json",
}
LWA_EXAMPLE_TOKEN = "Atza|IwEBIExample"  # the LWA description's example answer
PAGE_TOKENS = {"paginationToken", "nextToken", "NextToken"}
UNSHIPPED = "114-9876543-1234567"  # getOrder's documented unshipped, seller-fulfilled order
ANSWERS = {f"/orders/2026-01-01/orders/{UNSHIPPED}": "get_order_unshipped.json"}
CONFIRM = f"/orders/v0/orders/{UNSHIPPED}/shipmentConfirmation"


@dataclass
class Router:
    ports: dict[str, int]
    refused: list[tuple[str, int, str]] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)
    bodies: list[tuple[str, str, bytes]] = field(default_factory=list)  # (method, path, body) of writes

    def route(self, handler: BaseHTTPRequestHandler) -> None:
        path = handler.path.split("?", 1)[0]
        self.seen.append(handler.path)
        body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        if handler.command != "GET" and path != "/auth/o2/token":
            self.bodies.append((handler.command, path, body))
        if path != "/auth/o2/token" and handler.headers.get("x-amz-access-token") != LWA_EXAMPLE_TOKEN:
            return self.answer(handler, path, 403, {}, b'{"errors": [{"code": "Unauthorized", "message": "no token"}]}')
        if path == "/sellers/v1/marketplaceParticipations":
            return self.answer(handler, path, 200, {}, (FIXTURES / "marketplace_participations.json").read_bytes())
        prefix = next((p for p in MODELS if path.startswith(p)), None)
        if prefix is None:
            return self.answer(handler, path, 404, {}, b'{"errors": [{"code": "NotFound", "message": "no model"}]}')
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
        if status == 200 and PAGE_TOKENS & set(_query(handler.path)):
            content = _without_page_token(content)
        if status == 200 and path in ANSWERS:
            content = (FIXTURES / ANSWERS[path]).read_bytes()
        self.answer(handler, path, status, answer, content)

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


def _query(path: str) -> dict[str, str]:
    from urllib.parse import parse_qsl, urlsplit

    return dict(parse_qsl(urlsplit(path).query))


def _without_page_token(content: bytes) -> bytes:
    data = json.loads(content)
    for holder in (data, data.get("payload") or {}):
        holder.pop("NextToken", None)
        if isinstance(holder.get("pagination"), dict):
            holder["pagination"].pop("nextToken", None)
    return json.dumps(data).encode()


@pytest.fixture(scope="session")
def prism_router():
    with prism_mocks(*(SPECS / model for model in MODELS.values())) as urls:
        router = Router({prefix: port_of(url) for prefix, url in zip(MODELS, urls, strict=True)})
        with serve(router.route) as router.url:
            yield router


@pytest.fixture
def amazon(prism_router, tenant_a, make_connection, settings):
    settings.INTEGRATIONS_ALLOW_PRIVATE_URLS = True
    prism_router.refused.clear()
    prism_router.seen.clear()
    prism_router.bodies.clear()
    credentials = {
        "lwa_client_id": "amzn1.application-oa2-client.contract",
        "lwa_client_secret": "amzn1.oa2-cs.v1.contract",
        "refresh_token": "Atzr|contract",
        "seller_id": "A3TH9S8BH6GOGM",
        "region": "NA",
        "marketplace_ids": "ATVPDKIKX0DER",
    }
    connection = make_connection(tenant_a, "amazon", credentials=credentials, base_url=prism_router.url)
    # Real sleeps: the operations' budgets (inventory: 2 requests a second) really wait.
    return AmazonConnector(connection, client=HttpClient(allow_private=True, timeout=(2.0, 10.0)))


def records(pages) -> list:
    return [record for page in pages for record in page.records]


@pytest.mark.prism
def test_check_passes_against_the_models(amazon, prism_router):
    result = amazon.check()
    assert result.ok, (result.message, prism_router.refused)
    assert result.granted == ["orders", "inventory", "finances"]
    assert result.samples["orders"] == 1
    assert not prism_router.refused


@pytest.mark.prism
def test_reading_orders_and_refunds_sends_only_requests_the_models_accept(amazon, prism_router):
    read = records(amazon.read("orders", None))
    assert not prism_router.refused, prism_router.refused
    orders = [r for r in read if isinstance(r, OrderRecord)]
    assert orders and not [r for r in read if isinstance(r, Failed)]
    searches = [p for p in prism_router.seen if p.startswith("/orders/2026-01-01/orders?")]
    assert any("paginationToken=" in p for p in searches)
    assert any(p.startswith("/finances/v0/financialEvents?") for p in prism_router.seen)
    assert any(p.startswith("/orders/2026-01-01/orders/") for p in prism_router.seen)  # getOrder of a refund


@pytest.mark.prism
def test_an_incremental_read_of_orders_is_accepted_too(amazon, prism_router):
    cursor = {"orders": {"ATVPDKIKX0DER": "2025-01-01T00:00:00Z"}, "refunds": "2025-01-01T00:00:00Z"}
    list(itertools.islice(amazon.read("orders", cursor), 4))
    assert not prism_router.refused, prism_router.refused


@pytest.mark.prism
def test_reading_finances_sends_only_requests_the_model_accepts(amazon, prism_router):
    read = records(amazon.read("finances", None))
    read += records(amazon.read("finances", {"settlements": "2025-01-01T00:00:00Z", "events": "2025-01-01T00:00:00Z"}))
    assert not prism_router.refused, prism_router.refused
    groups = [p for p in prism_router.seen if p.startswith("/finances/v0/financialEventGroups?")]
    events = [p for p in prism_router.seen if p.startswith("/finances/v0/financialEvents?")]
    assert any("NextToken=" in p for p in groups) and any("NextToken=" in p for p in events)
    assert not [r for r in read if isinstance(r, Failed)]
    assert any(isinstance(r, SettlementRecord) for r in read)
    assert all(isinstance(r, (SettlementRecord, FeeRecord)) for r in read)


@pytest.mark.prism
@pytest.mark.parametrize(("stream", "kind"), [("inventory", InventoryRecord), ("products", ProductRecord)])
def test_reading_fba_summaries_sends_only_requests_the_model_accepts(amazon, prism_router, stream, kind):
    read = records(amazon.read(stream, None))
    read += records(amazon.read(stream, {"marketplaces": {"ATVPDKIKX0DER": "2025-01-01T00:00:00Z"}}))
    assert not prism_router.refused, prism_router.refused
    assert read and all(isinstance(r, kind) for r in read)


# --- Pushes ---------------------------------------------------------------------------------------------


def strict(definitions: dict[str, Any]) -> dict[str, Any]:
    """A model's definitions with their objects closed: a field the model does not have fails."""
    definitions = copy.deepcopy(definitions)

    def close(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node:
                node.setdefault("additionalProperties", False)
            for value in node.values():
                close(value)
        elif isinstance(node, list):
            for value in node:
                close(value)

    close(definitions)
    return definitions


def violations(model: str, definition: str, data: Any) -> list[str]:
    definitions = strict(json.loads((SPECS / model).read_text())["definitions"])
    validator = jsonschema.Draft4Validator({"$ref": f"#/definitions/{definition}", "definitions": definitions})
    return [f"{list(e.absolute_path)}: {e.message}" for e in sorted(validator.iter_errors(data), key=str)]


def shipment(order_id: str, tracking: str, carrier: str) -> FulfilmentPush:
    return FulfilmentPush(
        tenant_id=1, connection_id=1, order_external_id=order_id, tracking_number=tracking, carrier=carrier
    )


@pytest.mark.prism
def test_a_shipment_confirmation_sends_only_requests_the_models_accept(amazon, prism_router):
    assert amazon.fulfil(shipment(UNSHIPPED, "1Z999AA10123456784", "ups")) == f"{UNSHIPPED}:1"
    assert not prism_router.refused, prism_router.refused
    assert [p.split("?")[0] for p in prism_router.seen if not p.startswith("/auth/")] == [
        f"/orders/2026-01-01/orders/{UNSHIPPED}",
        CONFIRM,
    ]
    [(method, path, body)] = prism_router.bodies
    sent = json.loads(body)
    assert (method, path) == ("POST", CONFIRM)
    assert sent["packageDetail"]["orderItems"] == [{"orderItemId": "11498765431234", "quantity": 1}]
    assert not violations("ordersV0.json", "ConfirmShipmentRequest", sent)


@pytest.mark.prism
def test_a_shipment_that_landed_is_found_in_the_answer_the_model_gives(amazon, prism_router):
    # The model's getOrder example is a UK order shipped with Royal Mail as RR123456789GB.
    landed = shipment("202-1234567-8901234", "RR123456789GB", "royal_mail")
    assert amazon.fulfil(landed) == "202-1234567-8901234:UK-PKG-2024-001"
    assert not prism_router.refused, prism_router.refused
    assert not prism_router.bodies


@pytest.mark.prism
def test_a_confirmation_the_model_refuses_fails(amazon, prism_router):
    package = {"packageReferenceId": "1", "carrierCode": "UPS", "trackingNumber": "1Z", "shipDate": "2025-01-15"}
    body = {"marketplaceId": "ATVPDKIKX0DER", "packageDetail": {**package, "orderItems": [{"orderItemId": "1"}]}}
    with pytest.raises(BadResponse):
        amazon.api.call("confirmShipment", path={"orderId": UNSHIPPED}, body=body, retry=False)
    [(path, status, violation)] = prism_router.refused
    assert (path, status) == (CONFIRM, 400)  # the model's answer to a request it refuses
    assert "quantity" in violation and "shipDate" in violation, violation


def test_a_field_the_model_does_not_have_fails_the_strict_check():
    package = {"packageReferenceId": "1", "carrierCode": "UPS", "trackingNumber": "1Z", "orderItems": []}
    sent = {"marketplaceId": "ATVPDKIKX0DER", "packageDetail": {**package, "shipDate": "2025-01-15T12:00:00Z"}}
    assert not violations("ordersV0.json", "ConfirmShipmentRequest", sent)
    sent["packageDetail"]["carrier"] = "UPS"
    assert violations("ordersV0.json", "ConfirmShipmentRequest", sent)


def test_the_unshipped_order_answered_for_the_model_has_the_models_shape():
    answer = json.loads((FIXTURES / ANSWERS[f"/orders/2026-01-01/orders/{UNSHIPPED}"]).read_text())
    assert not violations("orders_2026-01-01.json", "GetOrderResponse", answer)
    assert answer["order"]["orderId"] == UNSHIPPED
    assert answer["order"]["fulfillment"] == {
        "fulfillmentStatus": "UNSHIPPED",
        "fulfilledBy": "MERCHANT",
        "fulfillmentServiceLevel": "STANDARD",
    }
