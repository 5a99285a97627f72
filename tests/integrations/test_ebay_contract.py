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
"""

from __future__ import annotations

import itertools
import json
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import jsonschema
import pytest

from commerce.records import InventoryRecord, OrderRecord, ProductRecord
from integrations.connectors.base import Failed
from integrations.connectors.ebay import EbayConnector
from integrations.connectors.ebay_oauth import EbayOAuth
from integrations.connectors.ebay_streams import param_time
from integrations.errors import AuthError
from integrations.http import HttpClient
from tests.conftest import PRISM, _unavailable

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
TOKEN_EXAMPLE = "v^1.1#i^1#p^3#r^1#I^3#f^0#t^Example"  # the token description's example answer
STARTUP = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Router:
    ports: dict[str, int]
    url: str = ""
    fixtures: bool = True  # answer accepted requests with the fixtures, not Prism's placeholders
    refused: list[tuple[str, int, str]] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)

    def route(self, handler: BaseHTTPRequestHandler) -> None:
        path = handler.path.split("?", 1)[0]
        self.seen.append(handler.path)
        body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
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
        self.answer(handler, path, status, answer, content)

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


def _wait_until_answering(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + STARTUP
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Prism exited with {process.returncode}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
            return
        except urllib.error.HTTPError:
            return  # it answers (404 for a path no description has)
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"Prism did not answer on port {port} within {STARTUP:.0f} s")


@pytest.fixture(scope="session")
def prism_router():
    if not PRISM.exists():
        _unavailable(f"Prism is not installed at {PRISM} (npm ci)")
    missing = [name for name in MODELS.values() if not (SPECS / name).exists()]
    if missing:
        _unavailable(f"The eBay descriptions are not in {SPECS}: {', '.join(missing)}")
    processes: list[subprocess.Popen] = []
    ports = {prefix: free_port() for prefix in MODELS}
    try:
        for prefix, model in MODELS.items():
            command = [str(PRISM), "mock", str(SPECS / model), "--port", str(ports[prefix]), "--errors"]
            processes.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for process, port in zip(processes, ports.values(), strict=True):
            _wait_until_answering(port, process)
        router = Router(ports)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                router.route(self)

            do_POST = do_GET

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        router.url = f"http://127.0.0.1:{server.server_address[1]}"
        yield router
        server.shutdown()
        server.server_close()
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


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


# --- The fixtures have the shape of eBay's descriptions (no Prism needed) -----------------------------------


@pytest.mark.parametrize(
    ("description", "schema", "fixture", "inside"),
    [
        ("sell_fulfillment_v1.prefixed.json", "OrderSearchPagedCollection", "get_orders.json", ()),
        ("sell_fulfillment_v1.prefixed.json", "Order", "get_order_cancelled.json", ()),
        ("sell_fulfillment_v1.prefixed.json", "Error", "error_invalid_token.json", ("errors", 0)),
        ("sell_fulfillment_v1.prefixed.json", "Error", "error_invalid_filter.json", ("errors", 0)),
        ("sell_inventory_v1.prefixed.json", "InventoryItems", "get_inventory_items.json", ()),
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
