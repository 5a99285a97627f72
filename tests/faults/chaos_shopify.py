"""A Shopify that misbehaves, for the chaos run: tests/fakes/shopify_server.py's GraphQL Admin API
(cursor pages sorted by updatedAt, `updated_at:>=` filters, the cost bucket, client-credentials
tokens), with the faults of tests/faults/fake_platform.py and order webhooks as Shopify sends them.

    with ChaosShopify(orders=1000, seed=7) as shop:
        connection = make_connection(tenant, "shopify", base_url=shop.url, credentials=shop.credentials())
        shop.chaos(seed=7, rate_limit=0.10, server_error=0.02, timeout=0.01, stall_seconds=2)
        shop.on_page(6, kill_the_worker)          # runs when page 6 of the orders list is asked for
        shop.expire_tokens_at(9)                  # from page 9 on, the issued token is refused
        payload = shop.update(order_id, "paid")   # a new version, and its orders/updated payload

Pages. Shopify's pages have no number, only cursors, so the fake numbers them as the sweep meets
them: the first page of a search (`after` null) is page 1, and the page after one answered with
`endCursor` e is the page asked for with `after: e`. A run that resumes from a stored cursor, or
asks a page again after a fault, asks the same page number, as WooCommerce's `page` parameter
would; a new sweep (another `updated_at:>=` search) starts at page 1 again. Since the list is sorted
by updatedAt, an order that changes after the sweep read it moves behind the cursor's end and is
read again later in the same sweep: a sweep has more pages than the shop has orders / 25.

Faults, as fake_platform.py draws and answers them (`chaos(seed, rate_limit, server_error,
timeout, retry_after, stall_seconds)`, one seeded draw per GraphQL request that carries a valid
token): 429 with `Retry-After` as an HTTP status (Shopify's REST-style limit, which its GraphQL
endpoint also answers), 500/502/503, and a timeout mid-page: the headers and a third of the body,
then either nothing for `stall_seconds` (past the client's read timeout) or the connection closed
at once. `injected` counts them by kind. The token endpoint (`/admin/oauth/access_token`) never
fails: a token issued in an answer the client never read would make the count of issued tokens
depend on timing. `on_page(n, action)` runs `action` in the server's thread when page n of the
orders list is asked for, before the request is answered (once, unless `once=False`).
`expire_tokens_at(n)` makes page n the moment the issued tokens lapse: that request and every
later one with them is answered 401 (`tokens_expired` counts lapses), as Shopify answers a
client-credentials token past its expiry, and only a new token from the client-credentials grant
is honoured; `issued_tokens` lists every token issued.

Orders. Every order starts open, PENDING and UNFULFILLED, with two lines, bought by one of
CUSTOMERS customers, last updated at a shuffled time (sorting by updatedAt is not sorting by id).
`update(order_id, state)` moves it to one of STATES, updated now, and returns the REST-shaped
payload Shopify's orders/updated webhook carries for the new version: the fields
integrations/connectors/shopify_rest_mapping.py reads, every amount with its `shop_money`, so the
hub needs no follow-up read. `final()` is each order's last version, by gid. The list is served
from the orders kept in (updatedAt, id) order as they change, not sorted for every page.

Times. Shopify shows updatedAt in whole seconds; this shop gives milliseconds. Two versions of an
order a few hundred milliseconds apart (the chaos run's are) must still be dated one after the
other, and in whole seconds only a date in the future would do that: the sweep could then read a
version dated ahead of the clock, and a change made after it would sort before the sweep's cursor
and under its watermark. Whether the hub meets changes made in the same second as its last read
(Shopify does not document how its search and cursors compare within a second) is not what the
chaos run is about.
`delivery(topic, payload)` signs a payload as Shopify does (`X-Shopify-Hmac-Sha256`, the base64
HMAC-SHA256 of the body with the app's client secret) with the headers Shopify sends;
`webhook_key` and `webhook_id` name a version's delivery for fake_platform.WebhookSender.
"""

from __future__ import annotations

import base64
import bisect
import copy
import json
import math
import random
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from tests.fakes.shopify_server import BASE_TIME, FakeShopify, money
from webhooks.receivers.base import hmac_base64

from .fake_platform import Chaos, Fault, Hook

CLIENT_ID = "chaos-client-id"
CLIENT_SECRET = "chaos-client-secret"
SHOP_DOMAIN = "chaos-shop.myshopify.com"
API_VERSION = "2025-10"
# The shop's time zone, in which Shopify's REST payloads give their times.
SHOP_OFFSET = timezone(timedelta(hours=-5))
ORDERS_LIST = "orders"
# The shop's customers: most of them bought two or three times.
CUSTOMERS = 4_000
# What each state sets on an order; the fields an earlier state set stay.
STATES: dict[str, dict[str, Any]] = {
    "authorized": {"financial": "AUTHORIZED"},
    "paid": {"financial": "PAID"},
    "fulfilled": {"fulfillment": "FULFILLED", "closed": True},
    "voided": {"financial": "VOIDED", "cancelled": "customer"},
    "refunded": {"financial": "REFUNDED", "cancelled": "customer", "refund": "total"},
    "partially_refunded": {"financial": "PARTIALLY_REFUNDED", "refund": "first_line"},
}
REST_FULFILLMENT = {"UNFULFILLED": None, "FULFILLED": "fulfilled", "PARTIALLY_FULFILLED": "partial"}


class Version(NamedTuple):
    """An order as the platform holds it, in Shopify's terms."""

    cancelled: bool
    closed: bool
    financial: str  # displayFinancialStatus
    fulfillment: str  # displayFulfillmentStatus
    refunds: int
    updated_at: str  # updatedAt, UTC, with milliseconds


@dataclass
class Call:
    """A GraphQL request, and what it was answered."""

    page: int | None  # the orders list's page; None for any other query
    operation: str
    answer: str  # "ok", the fault's kind, or "unauthorized"
    status: int
    at: float = field(default_factory=time.monotonic)


def iso(value: datetime) -> str:
    """A time as this shop gives updatedAt: UTC, with milliseconds (see the module's docstring)."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def local(value: str | None) -> str | None:
    """A GraphQL UTC time as REST gives it, in the shop's time zone."""
    if not value:
        return None
    return datetime.fromisoformat(value).astimezone(SHOP_OFFSET).isoformat()


def rest_money(bag: dict[str, Any]) -> dict[str, Any]:
    return {
        "shop_money": {"amount": bag["shopMoney"]["amount"], "currency_code": bag["shopMoney"]["currencyCode"]},
        "presentment_money": {
            "amount": bag["presentmentMoney"]["amount"],
            "currency_code": bag["presentmentMoney"]["currencyCode"],
        },
    }


def number_of(gid: str) -> int:
    return int(gid.rsplit("/", 1)[1])


class ChaosShopify(FakeShopify):
    def __init__(self, *, orders: int = 0, seed: int = 11, **kwargs: Any) -> None:
        kwargs.setdefault("client_id", CLIENT_ID)
        kwargs.setdefault("client_secret", CLIENT_SECRET)
        super().__init__(orders=orders, **kwargs)
        self.calls: list[Call] = []
        self.injected: Counter[str] = Counter()
        self.tokens_expired = 0
        self.unknown_cursors = 0
        self._hooks: list[Hook] = []
        self._chaos: Chaos | None = None
        self._pages: dict[tuple[str | None, str | None], int] = {}
        self._rng = random.Random(seed)
        ranks = list(range(orders))
        self._rng.shuffle(ranks)
        self.by_id: dict[str, dict[str, Any]] = {}
        for order, rank in zip(self.orders, ranks, strict=True):
            self._reset(order, BASE_TIME + timedelta(days=30, seconds=rank))
            self.by_id[order["id"]] = order
        # The orders by (updatedAt, number), as the list sorted by UPDATED_AT pages through them:
        # kept in order as they change, rather than sorted for every page.
        self._by_update = sorted((order["updatedAt"], number_of(order["id"])) for order in self.orders)

    def _reset(self, order: dict[str, Any], updated: datetime) -> None:
        """The order as just placed: open, pending, unfulfilled, with two lines, bought by one of
        CUSTOMERS customers."""
        number = number_of(order["id"])
        first, second = f"{10 + number % 90}.00", f"{5 + number % 7}.50"
        subtotal = f"{float(first) + float(second):.2f}"
        total = f"{float(subtotal) + 5:.2f}"
        customer = self._customer(number % CUSTOMERS, CUSTOMERS)
        order.update(
            customer=customer,
            email=customer["defaultEmailAddress"]["emailAddress"],
            updatedAt=iso(updated),
            displayFinancialStatus="PENDING",
            displayFulfillmentStatus="UNFULFILLED",
            subtotalPriceSet=money(subtotal),
            totalPriceSet=money(total),
        )
        line = order["lineItems"]["nodes"][0]
        line.update(originalUnitPriceSet=money(first), discountedTotalSet=money(first))
        extra = copy.deepcopy(line)
        extra.update(
            id=f"gid://shopify/LineItem/{number}02",
            title="Fake gadget",
            sku=f"GADGET-{number % 3}",
            variant={"id": f"gid://shopify/ProductVariant/{100 + number % 3}"},
            originalUnitPriceSet=money(second),
            discountedTotalSet=money(second),
        )
        order["lineItems"]["nodes"].append(extra)

    # --- Faults --------------------------------------------------------------------------------------

    def credentials(self, **extra: Any) -> dict[str, Any]:
        """A custom app's client ID and secret, and no token: the connector fetches its own."""
        return {"shop_domain": SHOP_DOMAIN, "client_id": self.client_id, "client_secret": self.client_secret, **extra}

    def chaos(self, *, seed: int, **rates: Any) -> None:
        """Random faults from now on, drawn from `seed` (`rates`: Chaos's fields)."""
        with self.lock:
            self._chaos = Chaos.seeded(seed, **rates)

    def on_page(self, page: int, action: Callable[[], None], *, once: bool = True) -> None:
        """Run `action` when page `page` of the orders list is asked for, before it is answered."""
        with self.lock:
            self._hooks.append(Hook(page, action, once))

    def expire_tokens_at(self, page: int) -> None:
        """Every token issued so far lapses when page `page` of the orders list is asked for."""
        self.on_page(page, self.expire_tokens)

    def expire_tokens(self) -> None:
        with self.lock:
            self.tokens.clear()
            self.tokens_expired += 1

    def _fault_for(self) -> Fault | None:
        with self.lock:
            return self._chaos.draw() if self._chaos is not None else None

    def _hooks_for(self, page: int) -> list[Callable[[], None]]:
        with self.lock:
            due = [hook for hook in self._hooks if hook.page == page]
            self._hooks = [hook for hook in self._hooks if not (hook.page == page and hook.once)]
        return [hook.action for hook in due]

    def pages_answered(self) -> list[int]:
        with self.lock:
            return [c.page for c in self.calls if c.page is not None and c.answer == "ok"]

    # --- Orders --------------------------------------------------------------------------------------

    def update(self, order_id: str, state: str) -> dict[str, Any]:
        """The order moves to `state` (STATES): a new version, updated now (and after its last
        version); returns the version's orders/updated payload."""
        change = STATES[state]
        with self.lock:
            order = self.by_id[order_id]
            now = datetime.now(UTC)
            updated = iso(max(now, datetime.fromisoformat(order["updatedAt"]) + timedelta(milliseconds=1)))
            del self._by_update[bisect.bisect_left(self._by_update, (order["updatedAt"], number_of(order_id)))]
            bisect.insort(self._by_update, (updated, number_of(order_id)))
            order["updatedAt"] = updated
            if "financial" in change:
                order["displayFinancialStatus"] = change["financial"]
            if "fulfillment" in change:
                order["displayFulfillmentStatus"] = change["fulfillment"]
            if change.get("closed"):
                order["closedAt"] = updated
            if change.get("cancelled"):
                order["cancelledAt"], order["cancelReason"] = updated, change["cancelled"].upper()
            if change.get("refund"):
                lines = order["lineItems"]["nodes"]
                bag = order["totalPriceSet"] if change["refund"] == "total" else lines[0]["discountedTotalSet"]
                order["refunds"].append(
                    {
                        "id": f"gid://shopify/Refund/{number_of(order_id)}{len(order['refunds']) + 1:02d}",
                        "createdAt": updated,
                        "note": "Returned" if change["refund"] == "first_line" else "Cancelled by the customer",
                        "totalRefundedSet": copy.deepcopy(bag),
                    }
                )
            return self.rest_order(order)

    def final(self) -> dict[str, Version]:
        """Every order's last version, by gid (the hub's external id)."""
        with self.lock:
            return {
                gid: Version(
                    bool(o["cancelledAt"]),
                    bool(o["closedAt"]),
                    o["displayFinancialStatus"],
                    o["displayFulfillmentStatus"],
                    len(o["refunds"]),
                    o["updatedAt"],
                )
                for gid, o in self.by_id.items()
            }

    def rest_order(self, node: dict[str, Any]) -> dict[str, Any]:
        """The order as Shopify's REST-shaped webhook payloads give it."""
        number = number_of(node["id"])
        customer = node["customer"]
        lines = node["lineItems"]["nodes"]
        fulfillment = REST_FULFILLMENT[node["displayFulfillmentStatus"]]
        return {
            "id": number,
            "admin_graphql_api_id": node["id"],
            "name": node["name"],
            "order_number": number,
            "number": number - 1000,
            "email": node["email"],
            "contact_email": node["email"],
            "created_at": local(node["createdAt"]),
            "processed_at": local(node["processedAt"]),
            "updated_at": local(node["updatedAt"]),
            "cancelled_at": local(node["cancelledAt"]),
            "cancel_reason": (node["cancelReason"] or "").lower() or None,
            "closed_at": local(node["closedAt"]),
            "confirmed": True,
            "test": False,
            "financial_status": node["displayFinancialStatus"].lower(),
            "fulfillment_status": fulfillment,
            "currency": node["currencyCode"],
            "presentment_currency": node["presentmentCurrencyCode"],
            "subtotal_price": node["subtotalPriceSet"]["shopMoney"]["amount"],
            "subtotal_price_set": rest_money(node["subtotalPriceSet"]),
            "total_discounts": node["totalDiscountsSet"]["shopMoney"]["amount"],
            "total_discounts_set": rest_money(node["totalDiscountsSet"]),
            "total_shipping_price_set": rest_money(node["totalShippingPriceSet"]),
            "total_tax": node["totalTaxSet"]["shopMoney"]["amount"],
            "total_tax_set": rest_money(node["totalTaxSet"]),
            "total_price": node["totalPriceSet"]["shopMoney"]["amount"],
            "total_price_set": rest_money(node["totalPriceSet"]),
            "tags": "",
            "customer": {
                "id": number_of(customer["id"]),
                "admin_graphql_api_id": customer["id"],
                "email": customer["defaultEmailAddress"]["emailAddress"],
                "first_name": customer["firstName"],
                "last_name": customer["lastName"],
                "phone": None,
                "tags": ", ".join(customer["tags"]),
                "created_at": local(customer["createdAt"]),
                "updated_at": local(customer["updatedAt"]),
                "email_marketing_consent": {"state": customer["defaultEmailAddress"]["marketingState"].lower()},
                "default_address": {"country_code": customer["defaultAddress"]["countryCodeV2"]},
            },
            "billing_address": None,
            "shipping_address": None,
            "discount_applications": [],
            "line_items": [
                {
                    "id": number_of(line["id"]),
                    "admin_graphql_api_id": line["id"],
                    "title": line["title"],
                    "name": line["title"],
                    "quantity": line["quantity"],
                    "sku": line["sku"],
                    "variant_id": number_of(line["variant"]["id"]),
                    "price": line["originalUnitPriceSet"]["shopMoney"]["amount"],
                    "price_set": rest_money(line["originalUnitPriceSet"]),
                    "total_discount": "0.00",
                    "total_discount_set": rest_money(money("0.00")),
                    "discount_allocations": [],
                    "fulfillment_status": fulfillment,
                }
                for line in lines
            ],
            "refunds": [
                {
                    "id": number_of(refund["id"]),
                    "admin_graphql_api_id": refund["id"],
                    "order_id": number,
                    "created_at": local(refund["createdAt"]),
                    "processed_at": local(refund["createdAt"]),
                    "note": refund["note"],
                    "transactions": [
                        {
                            "id": number_of(refund["id"]) * 10,
                            "kind": "refund",
                            "status": "success",
                            "amount": refund["totalRefundedSet"]["shopMoney"]["amount"],
                            "currency": refund["totalRefundedSet"]["shopMoney"]["currencyCode"],
                        }
                    ],
                }
                for refund in node["refunds"]
            ],
        }

    def _page(self, stream: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        """The base's page, from the kept order instead of a sort of every order."""
        if stream != "orders" or not re.search(r"sortKey:\s*UPDATED_AT", query):
            return super()._page(stream, query, variables)
        start = 0
        search = re.search(r"updated_at:(>=?)'([^']+)'", variables.get("query") or "")
        if search:
            since = iso(datetime.fromisoformat(search.group(2)))
            if search.group(1) == ">=":
                start = bisect.bisect_left(self._by_update, (since, -math.inf))
            else:
                start = bisect.bisect_right(self._by_update, (since, math.inf))
        if variables.get("after"):
            updated, number = json.loads(base64.b64decode(variables["after"]))
            start = max(start, bisect.bisect_right(self._by_update, (updated, number)))
        first = int(variables.get("first") or 50)
        chosen = self._by_update[start : start + first]
        end = base64.b64encode(json.dumps(list(chosen[-1])).encode()).decode() if chosen else None
        nodes = [copy.deepcopy(self.by_id[f"gid://shopify/Order/{number}"]) for _, number in chosen]
        more = len(self._by_update) - start > first
        return {"nodes": nodes, "pageInfo": {"hasNextPage": more, "endCursor": end}}

    # --- Webhooks ------------------------------------------------------------------------------------

    @staticmethod
    def webhook_key(topic: str, payload: dict[str, Any]) -> tuple[str, str, str]:
        """What names one version's delivery: its topic, the order's gid, and its updatedAt (UTC)."""
        return topic, payload["admin_graphql_api_id"], iso(datetime.fromisoformat(payload["updated_at"]))

    @staticmethod
    def webhook_id(key: tuple[str, str, str]) -> str:
        """The delivery's X-Shopify-Webhook-Id: one per version and topic, the same on every retry."""
        return str(uuid.uuid5(uuid.NAMESPACE_URL, ":".join(key)))

    def delivery(self, topic: str, payload: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
        """A webhook delivery of `payload` as Shopify signs it: the body and its headers."""
        body = json.dumps(payload).encode()
        key = self.webhook_key(topic, payload)
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": topic,
            "X-Shopify-Hmac-Sha256": hmac_base64(self.client_secret, body),
            "X-Shopify-Shop-Domain": SHOP_DOMAIN,
            "X-Shopify-API-Version": API_VERSION,
            "X-Shopify-Webhook-Id": self.webhook_id(key),
            "X-Shopify-Event-Id": str(uuid.uuid5(uuid.NAMESPACE_OID, ":".join(key[1:]))),
            "X-Shopify-Triggered-At": datetime.now(UTC).isoformat(),
        }
        return body, headers

    # --- Serving -------------------------------------------------------------------------------------

    def start(self) -> ChaosShopify:
        super().start()
        # A client that went away (a killed worker, a timeout) is expected, not news.
        self.server.handle_error = lambda request, client_address: None
        return self

    def __enter__(self) -> ChaosShopify:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _orders_page(self, path: str, raw: bytes) -> tuple[int | None, str | None, str]:
        """Which page of the orders list a request asks for (None for any other request), the
        search it pages through, and the operation's name."""
        if not path.endswith("/graphql.json"):
            return None, None, ""
        try:
            body = json.loads(raw)
        except ValueError:
            return None, None, ""
        query, variables = body.get("query") or "", body.get("variables") or {}
        operation = body.get("operationName") or ""
        if not re.search(rf"\b{ORDERS_LIST}\s*\(", query):
            return None, None, operation
        search = variables.get("query")
        with self.lock:
            if not variables.get("after"):
                return self._pages.setdefault((search, None), 1), search, operation
            page = self._pages.get((search, variables["after"]))
            if page is None:
                self.unknown_cursors += 1  # not a cursor this fake gave: the test fails on it
        return page, search, operation

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        raw = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        path = urlsplit(handler.path).path
        page, search, operation = self._orders_page(path, raw)
        for action in self._hooks_for(page) if page is not None else ():
            action()
        graphql = path.endswith("/graphql.json")
        fault = None
        if graphql and handler.headers.get("X-Shopify-Access-Token") in self.tokens:
            fault = self._fault_for()
        if fault is not None and fault.kind in ("rate_limit", "server_error"):
            if fault.kind == "rate_limit":
                message = (
                    "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service."
                )
                self._write(handler, 429, {"Retry-After": fault.retry_after}, {"errors": message})
                return self._record(page, operation, fault.kind, 429)
            self._write(handler, fault.status, {}, {"errors": "Internal Server Error"})
            return self._record(page, operation, fault.kind, fault.status)
        with self.lock:
            status, headers, body, delay = self._route(handler.command, handler.path, handler.headers, raw)
            if page is not None and status == 200 and isinstance(body, dict):
                end = (((body.get("data") or {}).get(ORDERS_LIST) or {}).get("pageInfo") or {}).get("endCursor")
                if end:
                    self._pages.setdefault((search, end), page + 1)
        if delay:
            threading.Event().wait(delay)
        if graphql:
            answer = "ok" if status == 200 else "unauthorized" if status == 401 else str(status)
            if fault is not None and status == 200:
                answer = fault.kind
            self._record(page, operation, answer, status)
        if fault is not None and status == 200:
            return self._write_partly(
                handler, status, headers, body, stall=fault.seconds if fault.kind == "stall" else 0
            )
        self._write(handler, status, headers, body)

    def _record(self, page: int | None, operation: str, answer: str, status: int) -> None:
        with self.lock:
            self.calls.append(Call(page, operation, answer, status))
            if answer in ("rate_limit", "server_error", "stall", "reset"):
                self.injected[answer] += 1

    @staticmethod
    def _encode(body: Any) -> bytes:
        return body if isinstance(body, bytes) else json.dumps(body).encode()

    @staticmethod
    def _head(handler: BaseHTTPRequestHandler, status: int, headers: dict, length: int) -> None:
        handler.send_response(status)
        for name, value in {"Content-Type": "application/json", **headers}.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(length))
        handler.end_headers()

    def _write(self, handler: BaseHTTPRequestHandler, status: int, headers: dict, body: Any) -> None:
        payload = self._encode(body)
        try:
            self._head(handler, status, headers, len(payload))
            handler.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a killed worker, a timeout)

    def _write_partly(
        self, handler: BaseHTTPRequestHandler, status: int, headers: dict, body: Any, *, stall: float
    ) -> None:
        """The headers and a third of the body; then, after `stall` seconds, the connection closes."""
        payload = self._encode(body)
        try:
            self._head(handler, status, headers, len(payload))
            handler.wfile.write(payload[: max(1, len(payload) // 3)])
            handler.wfile.flush()
            if stall:
                threading.Event().wait(stall)
        except (BrokenPipeError, ConnectionResetError):
            pass
        handler.close_connection = True
