"""The eBay connector against Prism mocks of eBay's own descriptions (tests/contracts/ebay/, copied
from shared/specs/ebay/): the Sell Fulfillment API v1 and the Sell Inventory API v1, with the token
endpoint described by the team (eBay publishes no description of it). Prism runs with `--errors`,
so a request the description refuses (an unknown path or method, no bearer token, a token request
without Basic auth, a form field out of its schema) answers 4xx and fails the test.

The connection's base URL points at a small router that sends each path to the mock of its
description. It also requires, on every API request, the access token the token mock issues (the
descriptions declare an OAuth scheme, which Prism checks only for presence). eBay's descriptions
have no examples, so Prism's answers are placeholders ("string" for every date): once Prism has
accepted a request, the router answers with the fixture shaped by the same schemas (their shape is
checked here too), a first page with a `next` link and later pages without one. One test keeps
Prism's own placeholder answers to show they are quarantined, never fatal.

Pushes (createShippingFulfillment, bulkUpdatePriceQuantity) are judged the same way: Prism checks
each request's path, headers and body against the description, and the router answers accepted
ones as eBay documents (the fulfilment's id in the Location header). eBay's schemas leave objects
open, so a misspelt field would pass Prism: the bodies sent are also checked against the schemas
closed (`strict`), where a field the description does not have fails.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import jsonschema
import pytest

from commerce.pushes import FulfilmentPush, StockPush
from commerce.records import InventoryRecord, OrderRecord, ProductRecord
from integrations.connectors.base import Failed
from integrations.connectors.ebay import EbayConnector
from integrations.connectors.ebay_oauth import EbayOAuth
from integrations.connectors.ebay_streams import param_time
from integrations.errors import AuthError, BadResponse
from integrations.http import HttpClient
from tests.prism import port_of, prism_mocks, serve

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "tests" / "contracts" / "ebay"  # copies of shared/specs (see its README)
FIXTURES = ROOT / "tests" / "fixtures" / "ebay"
MODELS = {
    "/identity/": "identity_token.openapi.json",
    "/sell/fulfillment/": "sell_fulfillment_v1.prefixed.json",
    "/sell/inventory/": "sell_inventory_v1.prefixed.json",
}
ANSWERS = {
    "/sell/fulfillment/v1/order": "get_orders.json",
    "/sell/inventory/v1/inventory_item": "get_inventory_items.json",
}
# Answers to accepted push requests: getOrder (an order with one line shipped, one not), its
# fulfilments, and bulkUpdatePriceQuantity; createShippingFulfillment answers 201 with a Location.
ORDER_PATH = re.compile(r"/sell/fulfillment/v1/order/[^/]+")
FULFILMENTS_PATH = re.compile(r"/sell/fulfillment/v1/order/[^/]+/shipping_fulfillment")
BULK_PATH = "/sell/inventory/v1/bulk_update_price_quantity"
TOKEN_EXAMPLE = "v^1.1#i^1#p^3#r^1#I^3#f^0#t^Example"  # the token description's example answer


@dataclass
class Router:
    ports: dict[str, int]
    url: str = ""
    fixtures: bool = True  # answer accepted requests with the fixtures, not Prism's placeholders
    refused: list[tuple[str, int, str]] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)
    bodies: list[tuple[str, str, bytes]] = field(default_factory=list)  # (method, path, body) of writes

    def route(self, handler: BaseHTTPRequestHandler) -> None:
        path = handler.path.split("?", 1)[0]
        self.seen.append(handler.path)
        body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        if handler.command != "GET" and path.startswith("/sell/"):
            self.bodies.append((handler.command, path, body))
        if path.startswith("/sell/") and handler.headers.get("Authorization") != f"Bearer {TOKEN_EXAMPLE}":
            return self.answer(handler, path, 401, {}, (FIXTURES / "error_invalid_token.json").read_bytes())
        prefix = next((p for p in MODELS if path.startswith(p)), None)
        if prefix is None:
            return self.answer(handler, path, 404, {}, b'{"errors": [{"errorId": 2002, "message": "no model"}]}')
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
        if status == 200 and path in ANSWERS:
            content = self._page(path, content)
        elif status < 300 and self.fixtures:
            content, answer = self._push_answer(handler.command, path, body, content, answer)
        self.answer(handler, path, status, answer, content)

    def _push_answer(
        self, method: str, path: str, body: bytes, content: bytes, headers: dict[str, str]
    ) -> tuple[bytes, dict[str, str]]:
        """What eBay answers a push's request once Prism accepted it (Prism's answer otherwise)."""
        if method == "GET" and FULFILMENTS_PATH.fullmatch(path):
            return (FIXTURES / "get_shipping_fulfillments.json").read_bytes(), headers
        if method == "GET" and ORDER_PATH.fullmatch(path):
            return json.dumps(json.loads((FIXTURES / "get_orders.json").read_text())["orders"][1]).encode(), headers
        if method == "POST" and FULFILMENTS_PATH.fullmatch(path):
            location = f"https://api.ebay.com{path}/{json.loads(body)['trackingNumber']}"
            kept = {k: v for k, v in headers.items() if k.lower() != "location"}
            return b"", {**kept, "Location": location}
        if method == "POST" and path == BULK_PATH:
            return (FIXTURES / "bulk_update_price_quantity.json").read_bytes(), headers
        return content, headers

    def _page(self, path: str, content: bytes) -> bytes:
        """The fixture (or Prism's answer) as the first page of two, or as the last page."""
        data = json.loads((FIXTURES / ANSWERS[path]).read_text()) if self.fixtures else json.loads(content)
        query = dict(parse_qsl(urlsplit(self.seen[-1]).query))
        data.pop("next", None)
        if query.get("offset", "0") == "0":
            step = "1" if path.endswith("inventory_item") else query.get("limit", "200")
            data["next"] = f"https://api.ebay.com{path}?limit={query.get('limit', '')}&offset={step}"
        return json.dumps(data).encode()

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


@pytest.fixture(scope="session")
def prism_router():
    with prism_mocks(*(SPECS / model for model in MODELS.values())) as urls:
        router = Router({prefix: port_of(url) for prefix, url in zip(MODELS, urls, strict=True)})
        with serve(router.route) as router.url:
            yield router


CREDENTIALS = {
    "client_id": "HubTests-Hub-PRD-0123456789-abcdef01",
    "client_secret": "PRD-0123456789ab-cdef-0123-4567-89ab",
    "ru_name": "Hub_Tests-HubTests-Hub-PR-abcdefghi",
    "environment": "production",
    "refresh_token": "v^1.1#i^1#r^1#contract",
}


@pytest.fixture
def router(prism_router, settings):
    settings.INTEGRATIONS_ALLOW_PRIVATE_URLS = True
    prism_router.refused.clear()
    prism_router.seen.clear()
    prism_router.bodies.clear()
    prism_router.fixtures = True
    return prism_router


@pytest.fixture
def ebay(router, tenant_a, make_connection):
    connection = make_connection(tenant_a, "ebay", credentials=CREDENTIALS, base_url=router.url)
    return EbayConnector(connection, client=HttpClient(allow_private=True, timeout=(2.0, 10.0)))


def recent() -> dict[str, str]:
    """A cursor whose watermark leaves one window of orders to read."""
    return {"watermark": param_time(datetime.now(UTC) - timedelta(hours=1))}


def records(pages) -> list:
    return [record for page in pages for record in page.records]


@pytest.mark.prism
def test_check_passes_against_the_descriptions(ebay, router):
    result = ebay.check()
    assert result.ok, (result.message, router.refused)
    assert result.granted == ["orders", "inventory"]
    assert not router.refused


@pytest.mark.prism
def test_reading_orders_sends_only_requests_the_description_accepts(ebay, router):
    read = records(ebay.read("orders", recent()))
    assert not router.refused, router.refused
    assert read and all(isinstance(r, OrderRecord) for r in read)
    orders = [p for p in router.seen if p.startswith("/sell/fulfillment/v1/order?")]
    assert [p.rsplit("offset=", 1)[1] for p in orders] == ["0", "2"]  # the fixture's page has two
    assert all("filter=lastmodifieddate%3A%5B" in p for p in orders)


@pytest.mark.prism
def test_a_first_read_of_orders_is_accepted_too(ebay, router):
    list(itertools.islice(ebay.read("orders", None), 4))
    assert not router.refused, router.refused


@pytest.mark.prism
@pytest.mark.parametrize(("stream", "kind"), [("inventory", InventoryRecord), ("products", ProductRecord)])
def test_reading_inventory_items_sends_only_requests_the_description_accepts(ebay, router, stream, kind):
    read = records(ebay.read(stream, None)) + records(ebay.read(stream, {"offset": 3}))
    assert not router.refused, router.refused
    assert read and all(isinstance(r, kind) for r in read)
    assert any("offset=1" in p for p in router.seen if p.startswith("/sell/inventory/v1/inventory_item?"))


@pytest.mark.prism
def test_connecting_trades_a_code_in_a_request_the_token_description_accepts(router):
    oauth = EbayOAuth(client=HttpClient(allow_private=True), base_url=router.url)
    updates = oauth.exchange(credentials=CREDENTIALS, params={"code": "v^1.1#i^1#code"}, redirect_uri="https://x/")
    assert not router.refused, router.refused
    assert updates["refresh_token"] == "v^1.1#i^1#p^3#r^1#I^3#f^0#t^ExampleRefresh"


@pytest.mark.prism
def test_a_request_the_description_refuses_fails(router):
    # eBay wants the RuName as redirect_uri: a URL there is refused by the token description.
    oauth = EbayOAuth(client=HttpClient(allow_private=True), base_url=router.url)
    credentials = {**CREDENTIALS, "ru_name": "https://hub.example.com/oauth/callback/"}
    with pytest.raises(AuthError):
        oauth.exchange(credentials=credentials, params={"code": "c"}, redirect_uri="https://x/")
    assert [(path, status) for path, status, _ in router.refused] == [("/identity/v1/oauth2/token", 400)]


@pytest.mark.prism
def test_the_descriptions_placeholder_answers_are_quarantined_never_fatal(ebay, router):
    router.fixtures = False
    read = records(ebay.read("orders", recent()))
    assert not router.refused, router.refused
    assert read and all(isinstance(r, Failed) for r in read)  # every date is "string"
    assert records(ebay.read("inventory", None))


def strict(spec: dict[str, Any]) -> dict[str, Any]:
    """The description with its objects closed: a field it does not describe fails validation."""
    spec = copy.deepcopy(spec)

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
    return spec


def violations(description: str, schema: str, data: Any) -> list[str]:
    spec = strict(json.loads((SPECS / description).read_text()))
    validator = jsonschema.Draft4Validator({"$ref": f"#/components/schemas/{schema}", **spec})
    return [f"{list(e.absolute_path)}: {e.message}" for e in sorted(validator.iter_errors(data), key=str)]


def written(router: Router, path: str) -> Any:
    [body] = [json.loads(body) for method, seen, body in router.bodies if method == "POST" and seen == path]
    return body


@pytest.mark.prism
def test_a_fulfilment_push_sends_only_requests_the_description_accepts(ebay, router):
    push = FulfilmentPush(
        tenant_id=1,
        connection_id=1,
        order_external_id="23-45678-90123",
        tracking_number="9400 1118 9922 3344 5566 77",
        carrier="usps",
    )
    assert ebay.fulfil(push) == "9400111899223344556677"  # from the Location header
    assert not router.refused, router.refused
    path = "/sell/fulfillment/v1/order/23-45678-90123/shipping_fulfillment"
    assert [p for p in router.seen if p.startswith("/sell/")] == [
        "/sell/fulfillment/v1/order/23-45678-90123",
        path,
        path,
    ]
    sent = written(router, path)
    assert sent["lineItems"] == [{"lineItemId": "10001234567893", "quantity": 3}]
    assert not violations("sell_fulfillment_v1.prefixed.json", "ShippingFulfillmentDetails", sent)


@pytest.mark.prism
def test_a_fulfilment_that_landed_is_found_in_the_answer_the_description_gives(ebay, router):
    push = FulfilmentPush(
        tenant_id=1,
        connection_id=1,
        order_external_id="23-45678-90123",
        tracking_number="1Z4A6V280312345678",
        carrier="ups",
    )
    assert ebay.fulfil(push) == "1Z4A6V280312345678"
    assert not router.refused, router.refused
    assert not router.bodies


@pytest.mark.prism
def test_a_stock_push_sends_only_requests_the_description_accepts(ebay, router):
    assert ebay.set_stock(StockPush(tenant_id=1, connection_id=1, sku="MUG-BLUE", quantity=7)) == "MUG-BLUE"
    assert not router.refused, router.refused
    sent = written(router, BULK_PATH)
    assert sent == {"requests": [{"sku": "MUG-BLUE", "shipToLocationAvailability": {"quantity": 7}}]}
    assert not violations("sell_inventory_v1.prefixed.json", "BulkPriceQuantity", sent)


@pytest.mark.prism
def test_a_push_body_the_description_refuses_fails(ebay, router):
    body = {"requests": [{"sku": "MUG-BLUE", "shipToLocationAvailability": {"quantity": "seven"}}]}
    with pytest.raises(BadResponse):
        ebay.api.send("POST", BULK_PATH, json=body)
    [(path, status, violation)] = router.refused
    assert (path, status) == (BULK_PATH, 400)  # the description's answer to a request it refuses
    assert "quantity" in violation and "integer" in violation, violation


def test_a_field_the_description_does_not_have_fails_the_strict_check():
    sent = {"lineItems": [{"lineItemId": "1", "quantity": 1}], "trackingNumber": "1Z", "carrier": "UPS"}
    assert violations("sell_fulfillment_v1.prefixed.json", "ShippingFulfillmentDetails", sent)


# --- The fixtures have the shape of eBay's descriptions (no Prism needed) -----------------------------------


@pytest.mark.parametrize(
    ("description", "schema", "fixture", "inside"),
    [
        ("sell_fulfillment_v1.prefixed.json", "OrderSearchPagedCollection", "get_orders.json", ()),
        ("sell_fulfillment_v1.prefixed.json", "Order", "get_order_cancelled.json", ()),
        ("sell_fulfillment_v1.prefixed.json", "Error", "error_invalid_token.json", ("errors", 0)),
        ("sell_fulfillment_v1.prefixed.json", "Error", "error_invalid_filter.json", ("errors", 0)),
        ("sell_fulfillment_v1.prefixed.json", "Order", "get_order_awaiting_shipment.json", ()),
        (
            "sell_fulfillment_v1.prefixed.json",
            "ShippingFulfillmentPagedCollection",
            "get_shipping_fulfillments.json",
            (),
        ),
        ("sell_fulfillment_v1.prefixed.json", "Error", "error_invalid_tracking.json", ("errors", 0)),
        ("sell_inventory_v1.prefixed.json", "InventoryItems", "get_inventory_items.json", ()),
        ("sell_inventory_v1.prefixed.json", "BulkPriceQuantityResponse", "bulk_update_price_quantity.json", ()),
        ("sell_inventory_v1.prefixed.json", "BulkPriceQuantityResponse", "bulk_update_price_quantity_refused.json", ()),
    ],
)
def test_the_fixtures_have_the_shape_of_ebays_descriptions(description, schema, fixture, inside):
    spec = json.loads((SPECS / description).read_text())
    data = json.loads((FIXTURES / fixture).read_text())
    for step in inside:
        data = data[step]
    validator = jsonschema.Draft4Validator({"$ref": f"#/components/schemas/{schema}", **spec})
    errors = sorted(validator.iter_errors(data), key=str)
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors]
