"""A local eBay for tests: the identity token endpoint and the two Sell API calls the connector
uses, on a threaded http.server on 127.0.0.1 (the connection's base URL serves both).

Routes: POST /identity/v1/oauth2/token (refresh-token and authorisation-code grants, Basic auth with
the app's keys); GET /sell/fulfillment/v1/order (getOrders) and /sell/inventory/v1/inventory_item
(getInventoryItems), over records made from tests/fixtures/ebay/. Like eBay it checks what its
documentation says a request must be: the `lastmodifieddate:[from..to]` filter with UTC
timestamps, a start before the end and neither in the future, `limit` 1 to 200 (inventory 1 to 100), a
non-negative `offset`, and a bearer token it issued and still honours (401 errorId 1001 otherwise).
getOrders pages by item offset, newest order first; getInventoryItems by page number, as its
description says, with `next` links either way. It keeps its own clock (`now`, `advance`).

    with FakeEbay(orders=450, skus=12, refunds=4, now=NOW) as ebay:
        connection.credentials = ebay.credentials()
        ebay.rate_limit(3, retry_after=2)   # the next 3 API requests answer 429 (with Retry-After)
        ebay.fail(2)                        # the next 2 API requests answer 500
        ebay.malformed(1)                   # the next API request answers 200 with a broken body
        ebay.expire_tokens(after=2)         # access tokens stop working after 2 more API requests
        ebay.revoke(after=1)                # after one more API request the seller revokes the app
        ebay.fail(1, when=lambda q: q.get("offset") == "200")  # a fault for a request of that query
        ebay.schedule(action, when=...)     # runs once a request the predicate accepts is answered
"""

from __future__ import annotations

import base64
import copy
import json
import random
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ebay"
CLIENT_ID = "HubTests-Hub-PRD-0123456789-abcdef01"
CLIENT_SECRET = "PRD-0123456789ab-cdef-0123-4567-89ab"
RU_NAME = "Hub_Tests-HubTests-Hub-PR-abcdefghi"
REFRESH_TOKEN = "v^1.1#i^1#r^1#fake-refresh-token"
SCOPES = {
    "https://api.ebay.com/oauth/api_scope",
    "https://api.ebay.com/oauth/api_scope/sell.fulfillment",
    "https://api.ebay.com/oauth/api_scope/sell.inventory",
}
Match = Callable[[dict[str, str]], bool]  # which requests a fault answers, by their query
Watch = Callable[[dict[str, str], "dict[str, Any] | None"], bool]  # by query and answer
FILTER = re.compile(r"lastmodifieddate:\[(?P<after>[^\]]*)\.\.(?P<before>[^\]]*)\]")
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
PAYMENT = ("PAID", "PAID", "PENDING", "PAID", "FAILED")
FULFILLMENT = ("FULFILLED", "NOT_STARTED", "NOT_STARTED", "IN_PROGRESS", "NOT_STARTED")


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def errors(error_id: int, message: str) -> dict[str, Any]:
    return {"errors": [{"errorId": error_id, "domain": "API", "category": "REQUEST", "message": message}]}


class Invalid(Exception):
    """A request eBay answers 400, with its errorId."""

    def __init__(self, error_id: int, message: str) -> None:
        super().__init__(message)
        self.error_id = error_id


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""


class FakeEbay:
    def __init__(self, *, orders: int = 0, skus: int = 0, refunds: int = 0, now: datetime | None = None, seed: int = 7):
        self.now = now or datetime.now(UTC).replace(microsecond=0)
        self.requests: list[Seen] = []
        self.exchanges = 0
        self.lock = threading.RLock()
        self._rng = random.Random(seed)
        self._tokens: dict[str, bool] = {}  # access token → still honoured
        self._codes: dict[str, bool] = {}  # authorisation code → not used yet
        self._revoked = False
        # Answers for the next API requests (those whose query `when` accepts).
        self._faults: list[tuple[Match | None, int, dict[str, str], bytes]] = []
        self._expire_after: int | None = None
        self._revoke_after: int | None = None
        self._scheduled: list[tuple[Watch | None, Callable[[], None]]] = []
        self.orders: dict[str, dict[str, Any]] = {}
        self.items: list[dict[str, Any]] = []
        self._generate(orders, skus, refunds)
        self._server: ThreadingHTTPServer | None = None

    # --- Life ---

    def __enter__(self) -> FakeEbay:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.ebay = self
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None, "start the fake first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def credentials(self, **extra: Any) -> dict[str, Any]:
        return {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "ru_name": RU_NAME,
            "environment": "production",
            "refresh_token": REFRESH_TOKEN,
            "refresh_token_expires_at": iso(self.now + timedelta(days=500)),
            **extra,
        }

    def issue_code(self) -> str:
        """An authorisation code, as eBay's consent page hands the redirect."""
        with self.lock:
            code = f"v^1.1#i^1#f^0#code-{len(self._codes) + 1}"
            self._codes[code] = True
            return code

    # --- Faults and time ---

    def advance(self, delta: timedelta) -> None:
        with self.lock:
            self.now += delta

    def rate_limit(self, count: int, *, retry_after: int | None = None, when: Match | None = None) -> None:
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        body = json.dumps(fixture("error_too_many_requests.json")).encode()
        with self.lock:
            self._faults += [(when, 429, headers, body)] * count

    def fail(self, count: int, *, status: int = 500, when: Match | None = None) -> None:
        body = json.dumps(fixture("error_system.json")).encode()
        with self.lock:
            self._faults += [(when, status, {}, body)] * count

    def malformed(self, count: int = 1, *, when: Match | None = None) -> None:
        with self.lock:
            self._faults += [(when, 200, {}, b'{"orders": [{"orderId": "12-')] * count

    def expire_tokens(self, *, after: int = 0) -> None:
        """Every access token issued so far stops working after `after` more API requests."""
        with self.lock:
            self._expire_after = after

    def revoke(self, *, after: int = 0) -> None:
        """The seller revokes the app after `after` more API requests: tokens refused, and the
        refresh token answered with invalid_grant."""
        with self.lock:
            self._revoke_after = after
            if after == 0:
                self._revoke()

    def _revoke(self) -> None:
        self._revoked, self._revoke_after = True, None
        self._tokens = dict.fromkeys(self._tokens, False)

    def restore(self) -> None:
        with self.lock:
            self._revoked, self._faults, self._expire_after, self._revoke_after = False, [], None, None

    def schedule(self, action: Callable[[], None], *, when: Watch | None = None) -> None:
        """Run `action` once, after the answer to the next API request `when` accepts (its query
        and answer) is made and before it is sent."""
        with self.lock:
            self._scheduled.append((when, action))

    def seen(self, path: str | None = None) -> list[Seen]:
        with self.lock:
            return [r for r in self.requests if path is None or r.path == path]

    def touch(self, order_id: str, when: datetime, **changes: Any) -> dict[str, Any]:
        with self.lock:
            order = self.orders[order_id]
            order["lastModifiedDate"] = iso(when)
            order.update(changes)
            return order

    # --- Data ---

    def _generate(self, orders: int, skus: int, refunds: int) -> None:
        template = fixture("get_orders.json")["orders"][0]
        lone, grouped = fixture("get_inventory_items.json")["inventoryItems"][:2]
        catalogue = [f"SKU-{k:04d}" for k in range(max(skus, 1))]
        for k in range(skus):
            # Every third SKU stands alone; the others go in pairs, as the variations of a listing.
            item = copy.deepcopy(lone if k % 3 == 0 else grouped)
            item["sku"] = catalogue[k]
            item["product"]["title"] = f"Product {k // 3}" + ("" if k % 3 == 0 else " (variation)")
            if k % 3:
                item["groupIds"] = item["inventoryItemGroupKeys"] = [f"GROUP-{k // 3}"]
            item["availability"] = {"shipToLocationAvailability": {"quantity": 3 * k}}
            self.items.append(item)
        ranks = list(range(orders))
        self._rng.shuffle(ranks)
        for n, rank in enumerate(ranks):
            order = copy.deepcopy(template)
            order_id = f"{10 + n % 89:02d}-{n:05d}-{rank:05d}"
            order["orderId"] = order_id
            order["creationDate"] = iso(self.now - timedelta(days=3) + timedelta(minutes=n))
            # Modified in an order unrelated to creation, so pages by creation are not pages by time.
            order["lastModifiedDate"] = iso(self.now - timedelta(days=2) + timedelta(minutes=rank))
            order["orderPaymentStatus"] = PAYMENT[n % len(PAYMENT)]
            order["orderFulfillmentStatus"] = FULFILLMENT[n % len(FULFILLMENT)]
            for k, line in enumerate(order["lineItems"]):
                line["lineItemId"] = f"{n:07d}{k:03d}"
                line["sku"] = catalogue[(n + k) % len(catalogue)]
            self.orders[order_id] = order
        for n, order in enumerate(list(self.orders.values())[:refunds]):
            order["orderPaymentStatus"] = "PARTIALLY_REFUNDED"
            order["paymentSummary"]["refunds"] = [
                {
                    "refundReferenceId": f"REFUND-{n:05d}",
                    "refundDate": iso(parse_time(order["lastModifiedDate"]) - timedelta(minutes=1)),
                    "amount": {"value": "5.00", "currency": "USD"},
                    "refundStatus": "REFUNDED",
                }
            ]

    # --- Serving ---

    def handle(self, handler: _Handler) -> None:
        parts = urlsplit(handler.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0)).decode()
        with self.lock:
            self.requests.append(Seen(handler.command, parts.path, query, dict(handler.headers.items()), body))
        if parts.path == "/identity/v1/oauth2/token" and handler.command == "POST":
            return self._token(handler, dict(parse_qsl(body)))
        routes = {"/sell/fulfillment/v1/order": self._get_orders, "/sell/inventory/v1/inventory_item": self._get_items}
        serve = routes.get(parts.path)
        if handler.command != "GET" or serve is None:
            return handler.json(errors(2002, "Resource not found"), status=404)
        with self.lock:
            fault = next((f for f in self._faults if f[0] is None or f[0](query)), None)
            if fault is not None:
                self._faults.remove(fault)
            honoured = self._honours(handler.headers.get("Authorization", ""))
        # The answer is made before the scheduled actions run and sent after, so an action (an
        # order modified) lands between this page and the next.
        answer: dict[str, Any] | None = None
        if fault is not None:
            _, status, headers, content = fault
        elif not honoured:
            status, headers, content = 401, {}, json.dumps(fixture("error_invalid_token.json")).encode()
        else:
            try:
                answer = serve(query, parts.path)
                status, headers, content = 200, {}, json.dumps(answer).encode()
            except Invalid as error:
                status, headers, content = 400, {}, json.dumps(errors(error.error_id, str(error))).encode()
        for action in self._due(query, answer):
            action()
        handler.raw(status, content, headers)

    def _due(self, query: dict[str, str], answer: dict[str, Any] | None) -> list[Callable[[], None]]:
        with self.lock:
            due = [entry for entry in self._scheduled if entry[0] is None or entry[0](query, answer)]
            self._scheduled = [entry for entry in self._scheduled if entry not in due]
        return [action for _, action in due]

    def _honours(self, authorization: str) -> bool:
        if self._revoke_after is not None:
            if self._revoke_after <= 0:
                self._revoke()
            else:
                self._revoke_after -= 1
        token = authorization.removeprefix("Bearer ")
        if not authorization.startswith("Bearer ") or not self._tokens.get(token):
            return False
        if self._expire_after is not None:
            if self._expire_after <= 0:
                self._tokens = dict.fromkeys(self._tokens, False)
                self._expire_after = None
                return False
            self._expire_after -= 1
        return True

    def _token(self, handler: _Handler, form: dict[str, str]) -> None:
        expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if handler.headers.get("Authorization") != f"Basic {expected}":
            return handler.json(fixture("identity_invalid_client.json"), status=401)
        if handler.headers.get("Content-Type") != "application/x-www-form-urlencoded":
            return handler.json({"error": "invalid_request", "error_description": "unsupported content type"}, 400)
        refused = {"error": "invalid_grant", "error_description": "the provided authorization grant is invalid"}
        with self.lock:
            if form.get("grant_type") == "refresh_token":
                if self._revoked or form.get("refresh_token") != REFRESH_TOKEN:
                    return handler.json(refused, status=400)
                if not set(form.get("scope", "").split()) <= SCOPES:
                    return handler.json({"error": "invalid_scope", "error_description": "scope"}, status=400)
                answer: dict[str, Any] = {}
            elif form.get("grant_type") == "authorization_code":
                if form.get("redirect_uri") != RU_NAME or not self._codes.get(form.get("code", "")):
                    return handler.json(refused, status=400)
                self._codes[form["code"]] = False
                answer = {"refresh_token": REFRESH_TOKEN, "refresh_token_expires_in": 47304000}
            else:
                return handler.json({"error": "unsupported_grant_type"}, status=400)
            self.exchanges += 1
            access = f"v^1.1#i^1#fake-access-{self.exchanges}"
            self._tokens[access] = True
        handler.json({"access_token": access, "expires_in": 7200, "token_type": "User Access Token", **answer})

    def _page(self, query: dict[str, str], maximum: int, default: int) -> tuple[int, int]:
        try:
            limit, offset = int(query.get("limit", default)), int(query.get("offset", "0"))
        except ValueError:
            raise Invalid(31100, "Invalid limit or offset") from None
        if not 1 <= limit <= maximum:
            raise Invalid(31100, f"Invalid limit: {limit}")
        if offset < 0:
            raise Invalid(31000, f"Invalid offset: {offset}")
        return limit, offset

    def _get_orders(self, query: dict[str, str], path: str) -> dict[str, Any]:
        found = FILTER.fullmatch(query.get("filter", ""))
        if found is None or not TIMESTAMP.fullmatch(found["after"]) or not TIMESTAMP.fullmatch(found["before"]):
            raise Invalid(30810, "Invalid date format")
        after, before = parse_time(found["after"]), parse_time(found["before"])
        if before > self.now or after > self.now:
            raise Invalid(30850, "Start and end dates can't be in the future")
        if after >= before:
            raise Invalid(30840, "Start date should be before end date")
        if before - after > timedelta(days=2 * 365):
            raise Invalid(30830, "Time range between start date and end date must be within '2' years.")
        limit, offset = self._page(query, 200, 50)
        with self.lock:
            matching = [o for o in self.orders.values() if after <= parse_time(o["lastModifiedDate"]) <= before]
            matching.sort(key=lambda o: (o["creationDate"], o["orderId"]), reverse=True)
            page = copy.deepcopy(matching[offset : offset + limit])
        body: dict[str, Any] = {
            "href": self._link(path, query, offset),
            "total": len(matching),
            "limit": limit,
            "offset": offset,
            "orders": page,
        }
        if offset + limit < len(matching):
            body["next"] = self._link(path, query, offset + limit)
        if offset:
            body["prev"] = self._link(path, query, max(0, offset - limit))
        return body

    def _get_items(self, query: dict[str, str], path: str) -> dict[str, Any]:
        limit, number = self._page(query, 100, 100)  # `offset` is a page number here
        pages = (len(self.items) + limit - 1) // limit
        body: dict[str, Any] = {
            "href": self._link(path, query, number),
            "total": len(self.items),
            "size": pages,
            "limit": limit,
            "inventoryItems": copy.deepcopy(self.items[number * limit : (number + 1) * limit]),
        }
        if number + 1 < pages:
            body["next"] = self._link(path, query, number + 1)
        return body

    def _link(self, path: str, query: dict[str, str], offset: int) -> str:
        return f"https://api.ebay.com{path}?{urlencode({**query, 'offset': offset})}"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    ebay: FakeEbay

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self.server.ebay.handle(self)

    do_POST = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def json(self, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self.raw(status, json.dumps(data).encode(), headers)

    def raw(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass
