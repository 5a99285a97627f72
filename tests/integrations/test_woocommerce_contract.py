"""WooCommerce pushes against a Prism mock of WooCommerce's REST API v3 description
(tests/contracts/woocommerce/, copied from shared/specs/woocommerce/: orders and products, with
WooCommerce's documented examples). Prism runs with `--errors`, so a request to a path or with a
method the description does not have is answered 4xx and fails the push.

The description covers orders and products but not order notes or product variations: a small
router in front of Prism answers `POST /orders/{id}/notes` itself (as WooCommerce documents it)
and sends everything else to Prism. The description has no request schemas (it is generated from
WooCommerce's examples), so Prism judges paths and methods; the bodies' fields are checked in
tests/integrations/test_woocommerce_push.py.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from commerce.pushes import FulfilmentPush, StockPush
from integrations.connectors.woocommerce import WooCommerceConnector
from integrations.errors import NotFound
from integrations.http import HttpClient
from tests.prism import prism_mocks, serve

pytestmark = [pytest.mark.django_db, pytest.mark.prism]

SPEC = (
    Path(__file__).resolve().parents[2]
    / "tests"
    / "contracts"
    / "woocommerce"
    / ("woocommerce_v3_orders_products.examples.openapi.json")
)


class Router:
    def __init__(self, prism: str) -> None:
        self.prism = prism
        self.seen: list[tuple[str, str, int]] = []  # (method, path, status)

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        path = handler.path.split("?", 1)[0]
        body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        if handler.command == "POST" and path.endswith("/notes"):
            status, content = 201, json.dumps({"id": 281, "note": json.loads(body)["note"]}).encode()
        else:
            request = urllib.request.Request(  # noqa: S310 (the loopback Prism mock)
                self.prism + handler.path, data=body or None, method=handler.command
            )
            request.add_header("Content-Type", handler.headers.get("Content-Type") or "application/json")
            try:
                with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (the loopback Prism mock)
                    status, content = response.status, response.read()
            except urllib.error.HTTPError as error:
                status, content = error.code, error.read()
        self.seen.append((handler.command, path, status))
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(content)))
        handler.end_headers()
        handler.wfile.write(content)


@pytest.fixture(scope="module")
def router():
    with prism_mocks(SPEC) as (prism,):
        routing = Router(prism)
        with serve(routing.handle) as routing.url:
            yield routing


@pytest.fixture
def woo(router, settings, tenant_a, make_connection) -> WooCommerceConnector:
    settings.INTEGRATIONS_ALLOW_PRIVATE_URLS = True
    router.seen.clear()
    connection = make_connection(
        tenant_a,
        platform="woocommerce",
        base_url=router.url,
        credentials={
            "site_url": router.url,
            "consumer_key": "ck_contract",
            "consumer_secret": "cs_contract",
            "allow_insecure_http": "true",
        },
    )
    return WooCommerceConnector(connection, client=HttpClient(sleep=lambda s: None))


def test_a_fulfilment_sends_only_requests_the_description_accepts(woo, router):
    # Order 727 is the description's example: processing, lines 315 (two) and 316 (one).
    push = FulfilmentPush(tenant_id=1, connection_id=1, order_external_id="727", tracking_number="1Z999", carrier="ups")
    assert woo.fulfil(push) == "727:1Z999"
    assert [(m, p) for m, p, _ in router.seen] == [
        ("GET", "/wp-json/wc/v3/orders/727"),
        ("PUT", "/wp-json/wc/v3/orders/727"),
        ("POST", "/wp-json/wc/v3/orders/727/notes"),
    ]
    assert all(status < 300 for _, _, status in router.seen), router.seen


def test_stock_for_a_product_is_accepted(woo, router):
    push = StockPush(tenant_id=1, connection_id=1, sku="WOO-SINGLE", quantity=12, product_external_id="794")
    assert woo.set_stock(push) == "794"
    assert router.seen == [("PUT", "/wp-json/wc/v3/products/794", 200)]


def test_a_request_the_description_does_not_have_is_refused(woo, router):
    """Prism is the judge: a path WooCommerce's description lacks is answered 404, never faked."""
    with pytest.raises(NotFound):
        woo.write("PUT", "orders/727/shipments", {"tracking": "1Z999"})
    assert router.seen[-1][2] == 404
