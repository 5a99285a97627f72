"""A local WooCommerce store for tests: its REST API (wc/v3) on a threaded http.server on 127.0.0.1.

Routes (under <url>/wp-json/wc/v3/): orders, orders/<id>/refunds, products,
products/<id>/variations, customers and data/currencies/current, over records generated from the
documented examples in tests/fixtures/woocommerce/. Like WooCommerce it pages (`per_page` ≤ 100,
`page`, `X-WP-Total`, `X-WP-TotalPages`, `Link`), orders (`orderby`, `order`), filters by
`modified_after`/`modified_before` (site time, or GMT with `dates_are_gmt=true`; customers cannot
be filtered so), and authenticates as WooCommerce does: over https by basic auth (or
consumer_key/consumer_secret in the query), over plain http by OAuth 1.0a one-legged only, with
the signature checked. A write (any POST) needs a read/write key and then finds no route, except
webhooks: GET/POST webhooks and GET/PUT/DELETE webhooks/<id> (force=true, as WooCommerce requires)
over `webhooks`, by id. `manage_webhooks=False` makes the key's user one who may not manage them
(403, as WooCommerce answers a logged-in user without the capability).

    with FakeWooCommerce(orders=250, products=30, customers=40) as store:
        connection.credentials = store.credentials()
        store.rate_limit(3, retry_after=2)       # the next 3 requests answer 429
        store.fail(page=2, status=503)           # page 2 of any list answers 503, once
        ...

Faults (each takes `endpoint="orders"` to aim at one route, and `times` — None for ever — where
it makes sense): `rate_limit`, `fail`, `slow`, `malformed_json`, `revoke_after`, `revoke`, and
`serve_html` (every API request answers the site's home page, as with "Plain" permalinks). Any
path outside /wp-json/ answers a 404 web page, as a wrong site path does.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import ipaddress
import json
import random
import re
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "woocommerce"
BASE_TIME = datetime(2024, 1, 1, tzinfo=UTC)
# The documented examples' site runs three hours behind GMT.
SITE_OFFSET = timedelta(hours=-3)
ORDER_STATUSES = ("processing", "completed", "on-hold", "pending", "cancelled", "refunded", "failed")
CONSUMER_KEY = "ck_0123456789abcdef0123456789abcdef01234567"
CONSUMER_SECRET = "cs_0123456789abcdef0123456789abcdef01234567"
GMT_FORMAT = "%Y-%m-%dT%H:%M:%S"
HOME_PAGE = b"<!DOCTYPE html><html><head><title>My Store</title></head><body><h1>My Store</h1></body></html>"
NOT_FOUND_PAGE = b"<!DOCTYPE html><html><head><title>Page not found</title></head><body>Oops!</body></html>"
ORDERBY = {
    "orders": {"date", "id", "include", "title", "slug", "modified"},
    "products": {"date", "id", "include", "title", "slug", "modified", "price", "popularity", "rating"},
    "variations": {"date", "id", "include", "title", "slug", "modified"},
    "refunds": {"date", "id", "include", "title", "slug", "modified"},
    "customers": {"id", "include", "name", "registered_date"},
}


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def gmt_string(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(GMT_FORMAT)


def site_string(moment: datetime) -> str:
    return (moment.astimezone(UTC) + SITE_OFFSET).strftime(GMT_FORMAT)


def set_dates(record: dict[str, Any], *, created: datetime | None = None, modified: datetime | None = None) -> None:
    if created is not None:
        record["date_created"], record["date_created_gmt"] = site_string(created), gmt_string(created)
    if modified is not None:
        record["date_modified"], record["date_modified_gmt"] = site_string(modified), gmt_string(modified)


def rawurlencode(value: str) -> str:
    return quote(value, safe="~")


@dataclass
class Fault:
    kind: str  # "fail", "slow", "malformed_json"
    page: int
    endpoint: str | None
    times: int | None
    status: int = 503
    seconds: float = 0.0


@dataclass
class Seen:
    """A request the store received."""

    method: str
    route: str  # after /wp-json/wc/v3/, e.g. "orders" or "products/2010/variations"
    query: dict[str, str]
    auth: str  # "basic", "query", "oauth1" or ""
    headers: dict[str, str] = field(default_factory=dict)


class FakeWooCommerce:
    def __init__(
        self,
        *,
        orders: int = 0,
        products: int = 0,
        customers: int = 0,
        variations: int = 2,
        tls: bool = False,
        key_permissions: str = "read",
        currency: str = "USD",
        seed: int = 7,
    ) -> None:
        self.tls = tls
        self.consumer_key = CONSUMER_KEY
        self.consumer_secret = CONSUMER_SECRET
        self.key_permissions = key_permissions
        self.currency = currency
        self.serve_html = False
        self.revoked = False
        self.requests: list[Seen] = []
        self.lock = threading.RLock()
        self._rate_limited = 0
        self._retry_after = "1"
        self._faults: list[Fault] = []
        self._revoke_after: tuple[int, str | None] | None = None
        self._nonces: set[str] = set()
        self._rng = random.Random(seed)
        self.orders: dict[int, dict[str, Any]] = {}
        self.refunds: dict[int, list[dict[str, Any]]] = {}
        self.products: dict[int, dict[str, Any]] = {}
        self.variations: dict[int, list[dict[str, Any]]] = {}
        self.customers: dict[int, dict[str, Any]] = {}
        self.webhooks: dict[int, dict[str, Any]] = {}
        self.manage_webhooks = True
        self._next_webhook = 1
        self._generate(orders, products, customers, variations)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._tmp: tempfile.TemporaryDirectory | None = None
        self.ca_path = ""

    # --- Life ---

    def start(self) -> FakeWooCommerce:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.store = self
        if self.tls:
            self._tmp = tempfile.TemporaryDirectory()
            cert, key = _self_signed_certificate(Path(self._tmp.name))
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            self.ca_path = str(cert)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> FakeWooCommerce:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start the store first"
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self._server.server_address[1]}"

    def credentials(self, **extra: Any) -> dict[str, Any]:
        """A WooCommerce connection's credentials for this store (plain http needs the flag)."""
        return {
            "site_url": self.url,
            "consumer_key": self.consumer_key,
            "consumer_secret": self.consumer_secret,
            "allow_insecure_http": not self.tls,
            **extra,
        }

    # --- Faults ---

    def rate_limit(self, count: int, *, retry_after: str | int = 1) -> None:
        """The next `count` requests answer 429 with this Retry-After."""
        with self.lock:
            self._rate_limited, self._retry_after = count, str(retry_after)

    def fail(self, *, page: int, status: int = 503, times: int | None = 1, endpoint: str | None = None) -> None:
        """Requests for this page of a list answer `status` (`times` times; None: for ever)."""
        self._add(Fault("fail", page, endpoint, times, status=status))

    def slow(self, *, page: int, seconds: float, times: int | None = 1, endpoint: str | None = None) -> None:
        """Requests for this page wait `seconds` before answering: a client with a shorter read
        timeout gives up."""
        self._add(Fault("slow", page, endpoint, times, seconds=seconds))

    def malformed_json(self, *, page: int, times: int | None = 1, endpoint: str | None = None) -> None:
        self._add(Fault("malformed_json", page, endpoint, times))

    def revoke_after(self, page: int, *, endpoint: str | None = None) -> None:
        """Once this page has been served, the key is revoked: every later request answers 401,
        including the requests a connector makes for that page's items (refunds, variations)."""
        with self.lock:
            self._revoke_after = (page, endpoint)

    def revoke(self) -> None:
        with self.lock:
            self.revoked = True

    def restore(self) -> None:
        """Undo every fault."""
        with self.lock:
            self._faults, self._rate_limited, self._revoke_after = [], 0, None
            self.revoked = self.serve_html = False

    def _add(self, fault: Fault) -> None:
        with self.lock:
            self._faults.append(fault)

    # --- Data ---

    def touch(self, stream: str, record_id: int, when: datetime | None = None) -> dict[str, Any]:
        """Mark a record modified (now, by default), as an edit in the shop would."""
        record = self._collection(stream)[record_id]
        with self.lock:
            set_dates(record, modified=when or datetime.now(UTC).replace(microsecond=0))
        return record

    def patch(self, stream: str, record_id: int, **fields: Any) -> dict[str, Any]:
        record = self._collection(stream)[record_id]
        with self.lock:
            record.update(fields)
        return record

    def seen(self, route: str | None = None) -> list[Seen]:
        with self.lock:
            return [r for r in self.requests if route is None or r.route == route]

    def _collection(self, stream: str) -> dict[int, dict[str, Any]]:
        return {"orders": self.orders, "products": self.products, "customers": self.customers}[stream]

    def _generate(self, orders: int, products: int, customers: int, variations: int) -> None:
        order_templates = fixture("orders_list.json")
        refund_template = fixture("order_refunds_list.json")[0]
        product_templates = fixture("products_list.json")
        variation_template = fixture("product_variations_list.json")[0]
        customer_templates = fixture("customers_list.json")

        # Modified times are a shuffle of the ids' order, so that ordering by id and by modified
        # time differ.
        def ranks(count: int) -> list[int]:
            values = list(range(count))
            self._rng.shuffle(values)
            return values

        for n, rank in enumerate(ranks(customers)):
            customer = copy.deepcopy(customer_templates[n % 2])
            customer_id = 100 + n
            customer.update(id=customer_id, email=f"customer{n}@example.com", username=f"customer{n}")
            customer["billing"]["email"] = customer["email"]
            set_dates(
                customer,
                created=BASE_TIME - timedelta(days=60, minutes=-n),
                modified=BASE_TIME + timedelta(minutes=rank),
            )
            self.customers[customer_id] = customer

        for n, rank in enumerate(ranks(orders)):
            order = copy.deepcopy(order_templates[n % 2])
            order_id = 1000 + n
            status = ORDER_STATUSES[n % len(ORDER_STATUSES)]
            order.update(id=order_id, number=str(order_id), status=status, refunds=[])
            order["customer_id"] = 100 + n % customers if customers and n % 3 else 0
            for k, item in enumerate(order["line_items"]):
                item["id"] = 100_000 + n * 10 + k
            set_dates(
                order, created=BASE_TIME - timedelta(days=30, minutes=-n), modified=BASE_TIME + timedelta(minutes=rank)
            )
            if status == "refunded" or (status == "completed" and n % 4 == 1):
                refund = copy.deepcopy(refund_template)
                amount = order["total"] if status == "refunded" else "5.00"
                refund.update(id=900_000 + n, amount=amount, reason="Customer return", line_items=[])
                set_dates(refund, created=BASE_TIME + timedelta(minutes=rank))
                order["refunds"] = [{"id": refund["id"], "reason": refund["reason"], "total": f"-{amount}"}]
                self.refunds[order_id] = [refund]
            self.orders[order_id] = order

        for n, rank in enumerate(ranks(products)):
            variable = n % 2 == 1
            product = copy.deepcopy(product_templates[0 if variable else 1])
            product_id = 2000 + n * 10
            product.update(id=product_id, name=f"{product['name']} {n}", slug=f"product-{n}", sku=f"SKU-{n}")
            set_dates(
                product,
                created=BASE_TIME - timedelta(days=90, minutes=-n),
                modified=BASE_TIME + timedelta(minutes=rank),
            )
            if variable:
                children = []
                for k in range(1, variations + 1):
                    variation = copy.deepcopy(variation_template)
                    variation.update(id=product_id + k, sku=f"SKU-{n}-{k}", manage_stock=True, stock_quantity=10 * k)
                    variation["attributes"] = [{"id": 6, "name": "Color", "option": f"Colour {k}"}]
                    set_dates(
                        variation, created=BASE_TIME - timedelta(days=90), modified=BASE_TIME + timedelta(minutes=rank)
                    )
                    children.append(variation)
                product["variations"] = [child["id"] for child in children]
                self.variations[product_id] = children
            elif n % 6 != 4:  # now and then a product whose stock nobody counts
                product.update(manage_stock=True, stock_quantity=n % 50 + 1)
            self.products[product_id] = product

    # --- Serving ---

    def handle(self, handler: _Handler) -> None:
        parts = urlsplit(handler.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        prefix = "/wp-json/wc/v3/"
        route = parts.path[len(prefix) :].strip("/") if parts.path.startswith(prefix) else parts.path
        auth = self._auth_kind(handler, query)
        with self.lock:
            self.requests.append(Seen(handler.command, route, query, auth, dict(handler.headers.items())))
        if not parts.path.startswith("/wp-json/"):
            return handler.reply(404, NOT_FOUND_PAGE, content_type="text/html; charset=UTF-8")
        if self.serve_html:
            return handler.reply(200, HOME_PAGE, content_type="text/html; charset=UTF-8")
        with self.lock:
            if self._rate_limited > 0:
                self._rate_limited -= 1
                return handler.error(
                    429, "woocommerce_rest_too_many_requests", "Too many requests.", {"Retry-After": self._retry_after}
                )
        denied = self._authenticate(handler, parts.path, query)
        if denied is not None:
            return handler.error(401, *denied)
        if parts.path.startswith(prefix) and re.fullmatch(r"webhooks(/\d+)?", route):
            return self._serve_webhooks(handler, route, query)
        if not parts.path.startswith(prefix) or handler.command != "GET":
            return handler.error(404, "rest_no_route", "No route was found matching the URL and request method.")
        self._serve(handler, route, query)

    def _serve(self, handler: _Handler, route: str, query: dict[str, str]) -> None:
        if route == "data/currencies/current":
            return handler.json({"code": self.currency, "name": self.currency, "symbol": "&#36;"})
        lists: dict[str, tuple[str, list[dict[str, Any]]]] = {
            "orders": ("orders", list(self.orders.values())),
            "products": ("products", list(self.products.values())),
            "customers": ("customers", list(self.customers.values())),
        }
        match = re.fullmatch(r"(orders|products)/(\d+)/(refunds|variations)", route)
        if match and match[1] == "orders" and match[3] == "refunds" and int(match[2]) in self.orders:
            lists[route] = ("refunds", self.refunds.get(int(match[2]), []))
        elif match and match[1] == "products" and match[3] == "variations" and int(match[2]) in self.products:
            lists[route] = ("variations", self.variations.get(int(match[2]), []))
        if route not in lists:
            if match:
                return handler.error(404, "woocommerce_rest_invalid_id", "Invalid ID.")
            return handler.error(404, "rest_no_route", "No route was found matching the URL and request method.")
        kind, records = lists[route]
        try:
            page = int(query.get("page", "1"))
            per_page = int(query.get("per_page", "10"))
        except ValueError:
            return handler.error(400, "rest_invalid_param", "Invalid parameter(s): page, per_page")
        if page < 1 or not 1 <= per_page <= 100:
            return handler.error(400, "rest_invalid_param", "Invalid parameter(s): per_page")
        if kind != "customers":  # customers have no date filters
            records = self._filtered(records, query)
        records = self._sorted(kind, records, query)
        if records is None:
            return handler.error(400, "rest_invalid_param", "Invalid parameter(s): orderby")
        fault = self._fault_for(route, page)
        if fault is not None and fault.kind == "fail":
            return handler.error(
                fault.status, "internal_server_error", "There has been a critical error on this website."
            )
        if fault is not None and fault.kind == "slow":
            time.sleep(fault.seconds)
        total = len(records)
        pages = (total + per_page - 1) // per_page
        body = records[(page - 1) * per_page : page * per_page]
        headers = {"X-WP-Total": str(total), "X-WP-TotalPages": str(pages)}
        links = []
        if page > 1:
            links.append(f'<{self.url}/wp-json/wc/v3/{route}?{urlencode({**query, "page": page - 1})}>; rel="prev"')
        if page < pages:
            links.append(f'<{self.url}/wp-json/wc/v3/{route}?{urlencode({**query, "page": page + 1})}>; rel="next"')
        if links:
            headers["Link"] = ", ".join(links)
        if fault is not None and fault.kind == "malformed_json":
            handler.reply(200, b'[{"id": 1, "status": "proc', headers=headers)
        else:
            handler.json(body, headers=headers)
        with self.lock:
            if (
                self._revoke_after is not None
                and self._revoke_after[0] == page
                and self._revoke_after[1] in (None, route)
            ):
                self.revoked, self._revoke_after = True, None

    def _serve_webhooks(self, handler: _Handler, route: str, query: dict[str, str]) -> None:
        """WooCommerce's webhooks controller: the secret only in the edit context (the answers to
        writes), topics checked as wc_is_webhook_valid_topic does, no trashing."""
        verb = {"GET": "view", "POST": "create", "PUT": "edit", "DELETE": "delete"}.get(handler.command, "view")
        if not self.manage_webhooks:
            message = (
                "Sorry, you cannot list resources." if verb == "view" else f"Sorry, you are not allowed to {verb}."
            )
            return handler.error(403, f"woocommerce_rest_cannot_{verb}", message)
        length = int(handler.headers.get("Content-Length") or 0)
        try:
            body = json.loads(handler.rfile.read(length) or b"{}") if length else {}
        except ValueError:
            return handler.error(400, "rest_invalid_json", "Invalid JSON body passed.")
        if route == "webhooks" and handler.command == "GET":
            hooks = sorted(self.webhooks.values(), key=lambda hook: hook["id"])
            if query.get("status", "all") != "all":
                hooks = [hook for hook in hooks if hook["status"] == query["status"]]
            per_page, page = int(query.get("per_page", "10")), int(query.get("page", "1"))
            pages = (len(hooks) + per_page - 1) // per_page
            chosen = [_viewed(hook) for hook in hooks[(page - 1) * per_page : page * per_page]]
            return handler.json(chosen, headers={"X-WP-Total": str(len(hooks)), "X-WP-TotalPages": str(pages)})
        if route == "webhooks" and handler.command == "POST":
            return self._create_webhook(handler, body)
        hook = self.webhooks.get(int(route.split("/")[1])) if "/" in route else None
        if route == "webhooks" or handler.command not in ("GET", "PUT", "DELETE"):
            return handler.error(404, "rest_no_route", "No route was found matching the URL and request method.")
        if handler.command == "DELETE" and query.get("force") not in ("true", "1"):
            return handler.error(501, "woocommerce_rest_trash_not_supported", "Webhooks do not support trashing.")
        if hook is None:
            return handler.error(404, "woocommerce_rest_shop_webhook_invalid_id", "Invalid ID.")
        if handler.command == "GET":
            return handler.json(_viewed(hook))
        if handler.command == "DELETE":
            del self.webhooks[hook["id"]]
            return handler.json(hook)
        if body.get("topic") and not _valid_topic(body["topic"]):
            return handler.error(400, "woocommerce_rest_shop_webhook_invalid_topic", "Webhook topic must be valid.")
        for name in ("name", "status", "delivery_url", "secret"):
            if body.get(name):
                hook[name] = body[name]
        if body.get("topic"):
            hook.update(_topic_fields(body["topic"]))
        return handler.json(hook)

    def _create_webhook(self, handler: _Handler, body: dict[str, Any]) -> None:
        if not _valid_topic(str(body.get("topic") or "")):
            message = "Webhook topic is required and must be valid."
            return handler.error(400, "woocommerce_rest_shop_webhook_invalid_topic", message)
        if not re.match(r"https?://", str(body.get("delivery_url") or "")):
            message = "Webhook delivery URL must be a valid URL starting with http:// or https://."
            return handler.error(400, "woocommerce_rest_shop_webhook_invalid_delivery_url", message)
        with self.lock:
            webhook_id = self._next_webhook
            self._next_webhook += 1
        now = datetime.now(UTC).replace(microsecond=0)
        hook = {
            "id": webhook_id,
            "name": body.get("name") or f"Webhook created on {now:%b %d, %Y @ %I:%M %p}",
            "status": body.get("status") or "active",
            **_topic_fields(body["topic"]),
            "delivery_url": body["delivery_url"],
            "secret": body.get("secret") or f"generated-{webhook_id}",
            "date_created": site_string(now),
            "date_created_gmt": gmt_string(now),
            "date_modified": site_string(now),
            "date_modified_gmt": gmt_string(now),
        }
        self.webhooks[webhook_id] = hook
        handler.json(hook, status=201)

    def _filtered(self, records: list[dict[str, Any]], query: dict[str, str]) -> list[dict[str, Any]]:
        suffix = "_gmt" if query.get("dates_are_gmt") in ("true", "1") else ""
        bounds = [
            (f"date_modified{suffix}", query.get("modified_after"), 1),
            (f"date_modified{suffix}", query.get("modified_before"), -1),
            (f"date_created{suffix}", query.get("after"), 1),
            (f"date_created{suffix}", query.get("before"), -1),
        ]
        for key, value, direction in bounds:
            if value:
                limit = datetime.fromisoformat(value.replace("Z", "")).replace(tzinfo=None)
                records = [
                    r
                    for r in records
                    if r.get(key) and (datetime.fromisoformat(r[key]) - limit).total_seconds() * direction > 0
                ]
        return records

    def _sorted(self, kind: str, records: list[dict[str, Any]], query: dict[str, str]) -> list[dict[str, Any]] | None:
        default = "name" if kind == "customers" else "date"
        orderby = query.get("orderby", default)
        if orderby not in ORDERBY[kind]:
            return None
        keys = {
            "id": lambda r: r["id"],
            "date": lambda r: (r.get("date_created_gmt") or "", r["id"]),
            "registered_date": lambda r: (r.get("date_created_gmt") or "", r["id"]),
            "modified": lambda r: (r.get("date_modified_gmt") or "", r["id"]),
            "name": lambda r: (r.get("first_name", "") + r.get("last_name", ""), r["id"]),
            "title": lambda r: (r.get("name", ""), r["id"]),
        }
        descending = query.get("order", "asc" if kind == "customers" else "desc") == "desc"
        return sorted(records, key=keys.get(orderby, keys["id"]), reverse=descending)

    def _fault_for(self, route: str, page: int) -> Fault | None:
        with self.lock:
            for fault in self._faults:
                if fault.page == page and fault.endpoint in (None, route):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self._faults.remove(fault)
                    return fault
        return None

    # --- Authentication, as WooCommerce's WC_REST_Authentication does it ---

    def _auth_kind(self, handler: _Handler, query: dict[str, str]) -> str:
        if handler.headers.get("Authorization", "").startswith("Basic "):
            return "basic"
        if "oauth_signature" in query:
            return "oauth1"
        if "consumer_key" in query:
            return "query"
        return ""

    def _authenticate(self, handler: _Handler, path: str, query: dict[str, str]) -> tuple[str, str] | None:
        """None when the request may go on, else (code, message) of a 401."""
        user = None
        if self.tls:
            header = handler.headers.get("Authorization", "")
            if header.startswith("Basic "):
                key, _, secret = base64.b64decode(header[6:]).decode().partition(":")
                user = self._check_key(key, secret)
            elif query.get("consumer_key") and query.get("consumer_secret"):
                user = self._check_key(query["consumer_key"], query["consumer_secret"])
        if user is None and any(name.startswith("oauth_") for name in query):
            user = self._check_oauth(handler, path, query)
        if user is None:
            return "woocommerce_rest_cannot_view", "Sorry, you cannot list resources."
        if user is not True:
            return user
        write = handler.command in ("POST", "PUT", "PATCH", "DELETE")
        if write and self.key_permissions not in ("write", "read_write"):
            return "woocommerce_rest_authentication_error", "The API key provided does not have write permissions."
        if not write and self.key_permissions not in ("read", "read_write"):
            return "woocommerce_rest_authentication_error", "The API key provided does not have read permissions."
        return None

    def _check_key(self, key: str, secret: str) -> tuple[str, str] | bool:
        if self.revoked or not hmac.compare_digest(key, self.consumer_key):
            return "woocommerce_rest_authentication_error", "Consumer key is invalid."
        if not hmac.compare_digest(secret, self.consumer_secret):
            return "woocommerce_rest_authentication_error", "Consumer secret is invalid."
        return True

    def _check_oauth(self, handler: _Handler, path: str, query: dict[str, str]) -> tuple[str, str] | bool:
        required = ("oauth_consumer_key", "oauth_timestamp", "oauth_nonce", "oauth_signature", "oauth_signature_method")
        missing = [name for name in required if not query.get(name)]
        if missing:
            return "woocommerce_rest_authentication_missing_parameter", f"Missing OAuth parameters {', '.join(missing)}"
        if self.revoked or not hmac.compare_digest(query["oauth_consumer_key"], self.consumer_key):
            return "woocommerce_rest_authentication_error", "Consumer key is invalid."
        params = {k: v for k, v in query.items() if k != "oauth_signature"}
        method = params["oauth_signature_method"]
        if method not in ("HMAC-SHA1", "HMAC-SHA256"):
            return "woocommerce_rest_authentication_error", "Invalid signature - signature method is invalid."
        base_uri = rawurlencode(f"http://{handler.headers.get('Host', '')}{path}")
        pairs = [f"{rawurlencode(k)}={rawurlencode(v)}" for k, v in sorted(params.items())]
        string_to_sign = f"{handler.command}&{base_uri}&{'%26'.join(rawurlencode(p) for p in pairs)}"
        digest = hashlib.sha256 if method == "HMAC-SHA256" else hashlib.sha1
        expected = hmac.new(f"{self.consumer_secret}&".encode(), string_to_sign.encode(), digest).digest()
        if not hmac.compare_digest(base64.b64encode(expected).decode(), query["oauth_signature"]):
            return "woocommerce_rest_authentication_error", "Invalid signature - provided signature does not match."
        if abs(time.time() - int(query["oauth_timestamp"])) > 15 * 60:
            return "woocommerce_rest_authentication_error", "Invalid timestamp."
        with self.lock:
            if query["oauth_nonce"] in self._nonces:
                return "woocommerce_rest_authentication_error", "Invalid nonce - nonce has already been used."
            self._nonces.add(query["oauth_nonce"])
        return True


WEBHOOK_RESOURCES = {
    "coupon": ("created", "updated", "deleted", "restored"),
    "customer": ("created", "updated", "deleted"),
    "order": ("created", "updated", "deleted", "restored"),
    "product": ("created", "updated", "deleted", "restored"),
}


def _valid_topic(topic: str) -> bool:
    resource, _, event = topic.partition(".")
    return (resource == "action" and bool(event)) or event in WEBHOOK_RESOURCES.get(resource, ())


def _topic_fields(topic: str) -> dict[str, Any]:
    resource, _, event = topic.partition(".")
    hooks = [f"woocommerce_{event}_{resource}"] if resource != "action" else [event]
    return {"topic": topic, "resource": resource, "event": event, "hooks": hooks}


def _viewed(hook: dict[str, Any]) -> dict[str, Any]:
    """A webhook in the view context: everything but its secret."""
    return {key: value for key, value in hook.items() if key != "secret"}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    store: FakeWooCommerce

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up (a timeout test) is expected, not news


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self.server.store.handle(self)

    do_POST = do_PUT = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def reply(
        self,
        status: int,
        body: bytes,
        *,
        content_type: str = "application/json; charset=UTF-8",
        headers: dict | None = None,
    ) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def json(self, data: Any, *, status: int = 200, headers: dict | None = None) -> None:
        self.reply(status, json.dumps(data).encode(), headers=headers)

    def error(self, status: int, code: str, message: str, headers: dict | None = None) -> None:
        self.json({"code": code, "message": message, "data": {"status": status}}, status=status, headers=headers)


def _self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "store.pem", directory / "store.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path
