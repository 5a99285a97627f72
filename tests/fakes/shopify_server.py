"""A fake Shopify Admin GraphQL API on 127.0.0.1, for connector and end-to-end sync tests.

It serves generated orders, products (with variants and stock at each location), customers and
inventory items with real cursor pagination (sorted by updatedAt when asked, filtered by
`updated_at:>'…'` or `>=`), a cost bucket reported in `extensions.cost.throttleStatus` with THROTTLED
answers when it runs dry, the check's shop/scopes/counts (ACCESS_DENIED for scopes not granted),
client-credentials tokens, and bulk exports whose JSONL result it serves at `/bulk/<n>.jsonl`.
It does not parse GraphQL: it finds the root field in the query text and returns whole nodes.

    clock = FakeClock().install(monkeypatch)          # no test sleeps for real
    settings.INTEGRATIONS_ALLOW_PRIVATE_URLS = True   # before the connector is made
    with FakeShopify(orders=30, clock=clock).running() as shop:
        connection = make_connection(tenant, base_url=shop.url,
                                     credentials={"shop_domain": "fake-shop.myshopify.com",
                                                  "access_token": "shpat_fake_token"})
        shop.fail_page(2, status=503)                 # page 2 answers 503 once, then succeeds

Pages are counted per stream from 1 over the server's life, counting only pages served.
Knobs (each acts on the next matching request):
- `storm(k, retry_after=2)`: the next k GraphQL requests answer 429 with that Retry-After.
- `fail_page(p, status=503, times=1, stream=None)`: page p answers `status`, `times` times.
- `slow_page(p, delay=0.5, times=1, stream=None)`: page p answers after `delay` real seconds
  (set the connector's `client.timeout` read timeout below it to cause a read timeout).
- `revoke_after_page(p, stream=None)`: every token stops working (401) once page p is served;
  `revoke()` at once.
- `malformed_json(page=None, times=1, stream=None)`: truncated JSON at page p, or the next request.
- `drain(available=0)`: empty the cost bucket now (`bucket_size`, `restore_rate`, `node_cost`
  are constructor arguments; a page asking `first: n` costs 2 + n * node_cost).
- `bulk_polls` (RUNNING answers before COMPLETED), `bulk_fails` (FAILED), `bulk_busy` (userErrors).
- `scopes`, `client_id`/`client_secret`, `token_lifetime`; `touch(stream, i)` updates a record.
- `protected_data_approved=False`: webhook subscriptions to order and customer topics are refused
  with Shopify's userError about protected customer data.
Webhook subscriptions (`webhookSubscriptions`, `webhookSubscriptionCreate`,
`webhookSubscriptionDelete`) live in `webhook_subscriptions`, by gid; creating one needs the
topic's read scope (ACCESS_DENIED otherwise) and a topic+address not yet taken. `node(id:)` answers
an Order or InventoryItem gid with the whole node (the webhook handlers' follow-up reads).
What happened: `requests` (every request: method, path, headers, query, variables, operation),
`graphql_requests(operation)`, `pages_served`, `throttled`, `issued_tokens`, `bulk_operations`.
`FakeClock` is time that passes only when slept: give it to the server and install it for the
client, and the bucket restores in step with the client's sleeps.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

BASE_TIME = datetime(2025, 1, 1, tzinfo=UTC)
ROOTS = ("orders", "products", "customers", "inventoryItems")
STREAM_OF = {"orders": "orders", "products": "products", "customers": "customers", "inventoryItems": "inventory"}
SCOPE_FOR = {
    "orders": "read_orders",
    "ordersCount": "read_orders",
    "products": "read_products",
    "productsCount": "read_products",
    "productVariantsCount": "read_products",
    "customers": "read_customers",
    "customersCount": "read_customers",
    "inventoryItems": "read_inventory",
}
ALL_SCOPES = ("read_orders", "read_all_orders", "read_products", "read_customers", "read_inventory")
# Webhook topics the fake accepts, with the scope each needs (none for APP_UNINSTALLED).
WEBHOOK_TOPICS = {
    **dict.fromkeys(
        [
            "ORDERS_CREATE",
            "ORDERS_UPDATED",
            "ORDERS_CANCELLED",
            "ORDERS_FULFILLED",
            "ORDERS_PARTIALLY_FULFILLED",
            "ORDERS_PAID",
            "REFUNDS_CREATE",
        ],
        "read_orders",
    ),
    "PRODUCTS_CREATE": "read_products",
    "PRODUCTS_UPDATE": "read_products",
    "INVENTORY_LEVELS_UPDATE": "read_inventory",
    "CUSTOMERS_CREATE": "read_customers",
    "CUSTOMERS_UPDATE": "read_customers",
    "APP_UNINSTALLED": "",
}
INVALID_TOKEN = {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}


def iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def money(amount: str, currency: str = "USD", presentment: str | None = None) -> dict[str, Any]:
    return {
        "shopMoney": {"amount": amount, "currencyCode": currency},
        "presentmentMoney": {"amount": amount, "currencyCode": presentment or currency},
    }


class FakeClock:
    """Time that moves only when someone sleeps; `sleeps` records every sleep."""

    def __init__(self, start: float = 1_750_000_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    monotonic = time

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)

    def install(self, monkeypatch: Any) -> FakeClock:
        """Let the HTTP client's rate budget and the Shopify connector's throttle and sleeps run
        on this clock (a connector made without `sleep=` then sleeps on it too)."""
        import integrations.connectors.shopify as connector
        import integrations.connectors.shopify_client as client
        import integrations.http as http

        for module in (http, connector, client):
            monkeypatch.setattr(module, "time", self)
        return self


class FakeShopify:
    def __init__(
        self,
        *,
        orders: int = 0,
        products: int = 0,
        customers: int = 0,
        variants_per_product: int = 2,
        locations: int = 2,
        token: str = "shpat_fake_token",
        client_id: str = "fake-client-id",
        client_secret: str = "fake-client-secret",
        token_lifetime: int = 86399,
        scopes: tuple[str, ...] = ALL_SCOPES,
        bucket_size: float = 1000.0,
        restore_rate: float = 100.0,
        node_cost: int = 1,
        clock: Callable[[], float] | FakeClock | None = None,
    ) -> None:
        self.clock: Callable[[], float] = clock.time if isinstance(clock, FakeClock) else clock or time.monotonic
        self.lock = threading.RLock()
        self.tokens = {token}
        self.client_id, self.client_secret, self.token_lifetime = client_id, client_secret, token_lifetime
        self.issued_tokens: list[str] = []
        self.scopes = list(scopes)
        self.bucket_size, self.restore_rate, self.node_cost = bucket_size, restore_rate, node_cost
        self.available, self.bucket_at = bucket_size, self.clock()
        self.locations = [
            {"id": f"gid://shopify/Location/{i + 1}", "name": f"Warehouse {i + 1}"} for i in range(locations)
        ]
        self.orders = [self._order(i, orders) for i in range(orders)]
        self.products = [self._product(i, products, variants_per_product) for i in range(products)]
        self.customers = [self._customer(i, customers) for i in range(customers)]
        self.requests: list[dict[str, Any]] = []
        self.pages_served: dict[str, int] = dict.fromkeys(STREAM_OF.values(), 0)
        self.throttled = 0
        self.faults: list[dict[str, Any]] = []
        self.storm_left, self.storm_retry_after = 0, "2"
        self.revoke_after: tuple[int, str | None] | None = None
        self.bulk_polls, self.bulk_fails, self.bulk_busy = 1, False, False
        self.bulk_operations: dict[str, dict[str, Any]] = {}
        self.webhook_subscriptions: dict[str, dict[str, Any]] = {}
        self.protected_data_approved = True
        self._next_subscription = 1
        self.server: ThreadingHTTPServer | None = None

    # --- Data ----------------------------------------------------------------------------------------

    def _order(self, i: int, n: int) -> dict[str, Any]:
        number = 1001 + i
        price = f"{10 + i}.00"
        total = f"{10 + i + 5}.00"
        customer = self._customer(i % 5, 5)
        return {
            "id": f"gid://shopify/Order/{number}",
            "name": f"#{number}",
            "email": customer["defaultEmailAddress"]["emailAddress"],
            "createdAt": iso(BASE_TIME + timedelta(hours=i)),
            "processedAt": iso(BASE_TIME + timedelta(hours=i)),
            # Later orders were updated earlier, so sorting by updatedAt is not sorting by id.
            "updatedAt": iso(BASE_TIME + timedelta(days=30, minutes=n - i)),
            "cancelledAt": None,
            "cancelReason": None,
            "closedAt": None,
            "displayFinancialStatus": "PAID",
            "displayFulfillmentStatus": "FULFILLED" if i % 2 else "UNFULFILLED",
            "currencyCode": "USD",
            "presentmentCurrencyCode": "USD",
            "subtotalPriceSet": money(price),
            "totalDiscountsSet": money("0.00"),
            "totalShippingPriceSet": money("5.00"),
            "totalTaxSet": money("0.00"),
            "totalPriceSet": money(total),
            "customer": customer,
            "billingAddress": None,
            "shippingAddress": None,
            "refunds": [],
            "lineItems": {
                "nodes": [
                    {
                        "id": f"gid://shopify/LineItem/{number}01",
                        "title": "Fake widget",
                        "quantity": 1,
                        "sku": f"SKU-{i % 7}",
                        "variant": {"id": f"gid://shopify/ProductVariant/{(i % 7) + 1}"},
                        "originalUnitPriceSet": money(price),
                        "discountedTotalSet": money(price),
                    }
                ],
                "pageInfo": {"hasNextPage": False, "endCursor": None},
            },
        }

    def _product(self, i: int, n: int, variants: int) -> dict[str, Any]:
        updated = iso(BASE_TIME + timedelta(days=20, minutes=n - i))
        product_variants = []
        for v in range(variants):
            number = i * variants + v + 1
            levels = [
                {
                    "id": f"gid://shopify/InventoryLevel/{number}{k}?inventory_item_id={number}",
                    "updatedAt": updated,
                    "location": dict(location),
                    "quantities": [{"name": "available", "quantity": number + k}],
                }
                for k, location in enumerate(self.locations)
            ]
            product_variants.append(
                {
                    "id": f"gid://shopify/ProductVariant/{number}",
                    "sku": f"SKU-{number}",
                    "title": f"Size {v + 1}",
                    "price": f"{19 + v}.99",
                    "updatedAt": updated,
                    "inventoryItem": {
                        "id": f"gid://shopify/InventoryItem/{number}",
                        "inventoryLevels": {"nodes": levels, "pageInfo": {"hasNextPage": False, "endCursor": None}},
                    },
                }
            )
        return {
            "id": f"gid://shopify/Product/{i + 1}",
            "title": f"Fake product {i + 1}",
            "vendor": "Fake Vendor",
            "productType": "Widgets",
            "status": "ACTIVE",
            "updatedAt": updated,
            "variants": {"nodes": product_variants, "pageInfo": {"hasNextPage": False, "endCursor": None}},
        }

    def _customer(self, i: int, n: int) -> dict[str, Any]:
        return {
            "id": f"gid://shopify/Customer/{i + 1}",
            "firstName": f"First{i + 1}",
            "lastName": f"Last{i + 1}",
            "tags": ["fake"],
            "createdAt": iso(BASE_TIME + timedelta(hours=i)),
            "updatedAt": iso(BASE_TIME + timedelta(days=10, minutes=n - i)),
            "defaultEmailAddress": {"emailAddress": f"customer{i + 1}@example.com", "marketingState": "SUBSCRIBED"},
            "defaultPhoneNumber": None,
            "defaultAddress": {"countryCodeV2": "US"},
        }

    def inventory_items(self) -> list[dict[str, Any]]:
        """One per variant, derived from the products so changes to them show here too."""
        return [
            {
                "id": variant["inventoryItem"]["id"],
                "sku": variant["sku"],
                "updatedAt": variant["updatedAt"],
                "tracked": True,
                "variant": {"id": variant["id"]},
                "inventoryLevels": variant["inventoryItem"]["inventoryLevels"],
            }
            for product in self.products
            for variant in product["variants"]["nodes"]
        ]

    def items(self, stream: str) -> list[dict[str, Any]]:
        return self.inventory_items() if stream == "inventory" else getattr(self, stream)

    def touch(self, stream: str, index: int) -> str:
        """Mark a record updated after every other one; returns its new updatedAt."""
        latest = max(datetime.fromisoformat(node["updatedAt"]) for node in self.items(stream))
        updated = iso(latest + timedelta(minutes=1))
        node = self.items(stream)[index]
        node["updatedAt"] = updated
        for variant in (node.get("variants") or {}).get("nodes", []):
            variant["updatedAt"] = updated
        return updated

    # --- Knobs ---------------------------------------------------------------------------------------

    def storm(self, k: int, retry_after: float | str = 2) -> None:
        self.storm_left, self.storm_retry_after = k, str(retry_after)

    def fail_page(self, page: int, status: int = 503, times: int = 1, stream: str | None = None) -> None:
        self.faults.append({"kind": "status", "page": page, "status": status, "times": times, "stream": stream})

    def slow_page(self, page: int, delay: float = 0.5, times: int = 1, stream: str | None = None) -> None:
        self.faults.append({"kind": "slow", "page": page, "delay": delay, "times": times, "stream": stream})

    def malformed_json(self, page: int | None = None, times: int = 1, stream: str | None = None) -> None:
        self.faults.append({"kind": "malformed", "page": page, "times": times, "stream": stream})

    def revoke_after_page(self, page: int, stream: str | None = None) -> None:
        self.revoke_after = (page, stream)

    def revoke(self) -> None:
        self.tokens.clear()

    def drain(self, available: float = 0.0) -> None:
        self.available, self.bucket_at = available, self.clock()

    def graphql_requests(self, operation: str | None = None) -> list[dict[str, Any]]:
        return [
            r
            for r in self.requests
            if r["path"].endswith("/graphql.json") and (operation is None or r["operation"] == operation)
        ]

    # --- Serving -------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self.server is not None, "the server is not running"
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeShopify:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                fake._serve(self)

            do_POST = do_GET

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    @contextmanager
    def running(self) -> Iterator[FakeShopify]:
        self.start()
        try:
            yield self
        finally:
            self.stop()

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        raw = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        with self.lock:
            status, headers, body, delay = self._route(handler.command, handler.path, handler.headers, raw)
        if delay:
            threading.Event().wait(delay)  # not time.sleep, which a test may have replaced
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        try:
            handler.send_response(status)
            for name, value in {"Content-Type": "application/json", **headers}.items():
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (a slow page)

    def _route(self, method: str, target: str, headers: Any, raw: bytes) -> tuple[int, dict, Any, float]:
        path = urlsplit(target).path
        record: dict[str, Any] = {"method": method, "path": path, "headers": dict(headers.items()), "raw": raw}
        self.requests.append(record)
        if path == "/admin/oauth/access_token":
            return self._issue_token(raw, headers.get("Content-Type", ""))
        if path.startswith("/bulk/"):
            return self._bulk_file(path)
        if not re.fullmatch(r"/admin/api/[^/]+/graphql\.json", path):
            return 404, {}, {"errors": "Not Found"}, 0
        if self.storm_left:
            self.storm_left -= 1
            return 429, {"Retry-After": self.storm_retry_after}, {"errors": "Exceeded 2 calls per second."}, 0
        if headers.get("X-Shopify-Access-Token") not in self.tokens:
            return 401, {}, INVALID_TOKEN, 0
        try:
            body = json.loads(raw)
        except ValueError:
            return 400, {}, {"errors": "Invalid JSON"}, 0
        record.update(query=body.get("query") or "", variables=body.get("variables") or {})
        record["operation"] = body.get("operationName")
        return self._graphql(record["query"], record["variables"])

    def _issue_token(self, raw: bytes, content_type: str) -> tuple[int, dict, Any, float]:
        if "json" in content_type:
            form = json.loads(raw or b"{}")
        else:
            form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        if form.get("grant_type") != "client_credentials":
            return 400, {}, {"error": "unsupported_grant_type"}, 0
        if (form.get("client_id"), form.get("client_secret")) != (self.client_id, self.client_secret):
            return 400, {}, {"error": "invalid_client", "error_description": "Client authentication failed"}, 0
        token = f"shpat_issued_{len(self.issued_tokens) + 1}"
        self.issued_tokens.append(token)
        self.tokens.add(token)
        body = {"access_token": token, "scope": ",".join(self.scopes), "expires_in": self.token_lifetime}
        return 200, {}, body, 0

    def _fault(self, stream: str | None, page: int | None) -> dict[str, Any] | None:
        for fault in self.faults:
            if fault["times"] <= 0 or (fault["stream"] and fault["stream"] != stream):
                continue
            if fault["page"] is None or fault["page"] == page:
                fault["times"] -= 1
                return fault
        return None

    def _graphql(self, query: str, variables: dict[str, Any]) -> tuple[int, dict, Any, float]:
        root = next((r for r in ROOTS if re.search(rf"\b{r}\s*\(", query)), None)
        stream = STREAM_OF.get(root) if root else None
        page = self.pages_served[stream] + 1 if stream else None
        fault = self._fault(stream, page)
        delay = 0.0
        if fault and fault["kind"] == "status":
            return fault["status"], {}, {"errors": "Internal Server Error"}, 0
        if fault and fault["kind"] == "malformed":
            return 200, {}, b'{"data": {"orders": {"nodes": [{"id": "gid://shop', 0
        if fault and fault["kind"] == "slow":
            delay = fault["delay"]
        first = int(variables.get("first") or 50)
        requested = 2 + first * self.node_cost if root else 10 if "bulkOperationRunQuery" in query else 1
        self.available = min(self.bucket_size, self.available + (self.clock() - self.bucket_at) * self.restore_rate)
        self.bucket_at = self.clock()
        if requested > self.available:
            self.throttled += 1
            errors = [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}]
            return 200, {}, {"errors": errors, "extensions": self._cost(requested, None)}, delay
        data, errors, actual = self._answer(query, variables, root, stream)
        self.available -= actual
        body: dict[str, Any] = {"data": data, "extensions": self._cost(requested, actual)}
        if errors:
            body["errors"] = errors
        if stream and data.get(root) is not None:
            self.pages_served[stream] += 1
            if self.revoke_after and (self.revoke_after[1] in (None, stream)):
                served = self.pages_served[stream] if self.revoke_after[1] else sum(self.pages_served.values())
                if served >= self.revoke_after[0]:
                    self.tokens.clear()
                    self.revoke_after = None
        return 200, {}, body, delay

    def _cost(self, requested: int, actual: int | None) -> dict[str, Any]:
        status = {
            "maximumAvailable": self.bucket_size,
            "currentlyAvailable": self.available,
            "restoreRate": self.restore_rate,
        }
        return {"cost": {"requestedQueryCost": requested, "actualQueryCost": actual, "throttleStatus": status}}

    def _denied(self, field: str) -> dict[str, Any]:
        scope = SCOPE_FOR[field]
        return {
            "message": f"Access denied for {field} field. Required access: `{scope}` access scope.",
            "path": [field],
            "extensions": {"code": "ACCESS_DENIED", "requiredAccess": f"`{scope}` access scope."},
        }

    def _answer(self, query: str, variables: dict[str, Any], root: str | None, stream: str | None):
        data: dict[str, Any] = {}
        errors: list[dict[str, Any]] = []
        if "bulkOperationRunQuery" in query:
            return {"bulkOperationRunQuery": self._run_bulk(variables.get("query") or "")}, [], 10
        if "webhookSubscriptionCreate" in query:
            return self._create_subscription(variables)
        if "webhookSubscriptionDelete" in query:
            return self._delete_subscription(variables)
        if re.search(r"\bwebhookSubscriptions\s*\(", query):
            return {"webhookSubscriptions": self._subscriptions_page(variables)}, [], 2
        if re.search(r"\bnode\s*\(", query) and "$after" not in query and "BulkOperation" not in query:
            return {"node": self._node(variables.get("id"))}, [], 1
        if "BulkOperation" in query and re.search(r"\bnode\s*\(", query):
            return {"node": self._poll_bulk(variables.get("id"))}, [], 1
        if root and stream:
            if SCOPE_FOR[root] not in self.scopes:
                return {root: None}, [self._denied(root)], 1
            data[root] = self._page(stream, query, variables)
            return data, errors, 2 + len(data[root]["nodes"]) * self.node_cost
        if re.search(r"\bshop\s*\{", query):
            data["shop"] = {"name": "Fake Shop", "myshopifyDomain": "fake-shop.myshopify.com", "currencyCode": "USD"}
        if "currentAppInstallation" in query:
            scopes = [{"handle": s} for s in self.scopes]
            data["currentAppInstallation"] = {"accessScopes": scopes}
        counts = {
            "ordersCount": len(self.orders),
            "productsCount": len(self.products),
            "customersCount": len(self.customers),
            "productVariantsCount": len(self.inventory_items()),
        }
        for field, count in counts.items():
            if re.search(rf"\b{field}\b", query):
                if SCOPE_FOR[field] in self.scopes:
                    data[field] = {"count": count, "precision": "EXACT"}
                else:
                    data[field] = None
                    errors.append(self._denied(field))
        return data, errors, 1

    def _page(self, stream: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        by_update = bool(re.search(r"sortKey:\s*UPDATED_AT", query))

        def key(node: dict[str, Any]) -> list:
            number = int(node["id"].rsplit("/", 1)[-1])
            return [node["updatedAt"], number] if by_update else [number]

        nodes = sorted(self.items(stream), key=key)
        search = re.search(r"updated_at:(>=?)'([^']+)'", variables.get("query") or "")
        if search:
            since, inclusive = datetime.fromisoformat(search.group(2)), search.group(1) == ">="
            nodes = [
                n
                for n in nodes
                if datetime.fromisoformat(n["updatedAt"]) > since
                or (inclusive and datetime.fromisoformat(n["updatedAt"]) == since)
            ]
        if variables.get("after"):
            after = json.loads(base64.b64decode(variables["after"]))
            nodes = [n for n in nodes if key(n) > after]
        first = int(variables.get("first") or 50)
        chosen = nodes[:first]
        end = base64.b64encode(json.dumps(key(chosen[-1])).encode()).decode() if chosen else None
        return {"nodes": copy.deepcopy(chosen), "pageInfo": {"hasNextPage": len(nodes) > first, "endCursor": end}}

    # --- Webhook subscriptions and single nodes --------------------------------------------------------

    def _node(self, gid: Any) -> dict[str, Any] | None:
        for node in [*self.orders, *self.inventory_items()]:
            if node["id"] == gid:
                return copy.deepcopy(node)
        return None

    def _subscriptions_page(self, variables: dict[str, Any]) -> dict[str, Any]:
        nodes = list(self.webhook_subscriptions.values())
        start = int(base64.b64decode(variables["after"])) if variables.get("after") else 0
        first = int(variables.get("first") or 50)
        chosen = nodes[start : start + first]
        end = base64.b64encode(str(start + len(chosen)).encode()).decode() if chosen else None
        more = start + first < len(nodes)
        return {"nodes": copy.deepcopy(chosen), "pageInfo": {"hasNextPage": more, "endCursor": end}}

    def _create_subscription(self, variables: dict[str, Any]):
        topic = str(variables.get("topic") or "")
        if topic not in WEBHOOK_TOPICS:
            message = f"Variable $topic of type WebhookSubscriptionTopic! was provided invalid value: {topic}"
            return {}, [{"message": message, "extensions": {"code": "INVALID_VARIABLE"}}], 1
        scope = WEBHOOK_TOPICS[topic]
        if scope and scope not in self.scopes:
            message = f"Access denied for webhookSubscriptionCreate field. Required access: `{scope}` access scope."
            error = {"message": message, "path": ["webhookSubscriptionCreate"], "extensions": {"code": "ACCESS_DENIED"}}
            return {"webhookSubscriptionCreate": None}, [error], 1
        given = variables.get("webhookSubscription") or {}
        uri = given.get("uri") or given.get("callbackUrl") or ""
        errors = []
        if scope in ("read_orders", "read_customers") and not self.protected_data_approved:
            message = (
                f"You do not have permission to create or update webhooks with {topic} topic. "
                "This topic contains protected customer data."
            )
            errors.append({"field": ["webhookSubscription"], "message": message})
        if any(s["topic"] == topic and s["uri"] == uri for s in self.webhook_subscriptions.values()):
            errors.append(
                {"field": ["webhookSubscription", "uri"], "message": "Address for this topic has already been taken"}
            )
        if not uri.startswith(("https://", "http://")):
            errors.append({"field": ["webhookSubscription", "uri"], "message": "Address is invalid"})
        if errors:
            return {"webhookSubscriptionCreate": {"webhookSubscription": None, "userErrors": errors}}, [], 10
        gid = f"gid://shopify/WebhookSubscription/{self._next_subscription}"
        self._next_subscription += 1
        now = iso(BASE_TIME)
        node = {
            "id": gid,
            "topic": topic,
            "uri": uri,
            "format": given.get("format") or "JSON",
            "endpoint": {"__typename": "WebhookHttpEndpoint", "callbackUrl": uri},
            "createdAt": now,
            "updatedAt": now,
        }
        self.webhook_subscriptions[gid] = node
        return {"webhookSubscriptionCreate": {"webhookSubscription": copy.deepcopy(node), "userErrors": []}}, [], 10

    def _delete_subscription(self, variables: dict[str, Any]):
        gid = str(variables.get("id") or "")
        if self.webhook_subscriptions.pop(gid, None) is None:
            errors = [{"field": ["id"], "message": "Webhook subscription does not exist"}]
            return {"webhookSubscriptionDelete": {"deletedWebhookSubscriptionId": None, "userErrors": errors}}, [], 10
        return {"webhookSubscriptionDelete": {"deletedWebhookSubscriptionId": gid, "userErrors": []}}, [], 10

    # --- Bulk ----------------------------------------------------------------------------------------

    def _run_bulk(self, bulk_query: str) -> dict[str, Any]:
        if self.bulk_busy:
            message = "A bulk query operation for this app and shop is already in progress."
            return {"bulkOperation": None, "userErrors": [{"field": None, "message": message}]}
        root = re.search(r"\b(orders|products|customers|inventoryItems)\b", bulk_query)
        gid = f"gid://shopify/BulkOperation/{len(self.bulk_operations) + 1}"
        self.bulk_operations[gid] = {"stream": STREAM_OF[root.group(1)] if root else None, "polls": 0}
        return {"bulkOperation": {"id": gid, "status": "CREATED"}, "userErrors": []}

    def _poll_bulk(self, gid: str | None) -> dict[str, Any] | None:
        operation = self.bulk_operations.get(gid or "")
        if operation is None:
            return None
        operation["polls"] += 1
        node = {"id": gid, "errorCode": None, "objectCount": "0", "rootObjectCount": "0", "url": None}
        if operation["polls"] <= self.bulk_polls:
            return {**node, "status": "RUNNING"}
        if self.bulk_fails:
            return {**node, "status": "FAILED", "errorCode": "INTERNAL_SERVER_ERROR"}
        lines = self.bulk_lines(operation["stream"])
        url = f"{self.url}/bulk/{gid.rsplit('/', 1)[-1]}.jsonl" if lines else None
        count = str(len(lines))
        return {**node, "status": "COMPLETED", "objectCount": count, "url": url}

    def bulk_lines(self, stream: str) -> list[dict[str, Any]]:
        """The JSONL lines Shopify would write: each nested connection's nodes on their own lines
        right after their parent, pointing at it by __parentId."""
        lines: list[dict[str, Any]] = []
        for node in copy.deepcopy(self.items(stream)):
            if stream == "orders":
                children = node.pop("lineItems")["nodes"]
                lines.append(node)
                lines.extend({**child, "__parentId": node["id"]} for child in children)
            elif stream == "products":
                variants = node.pop("variants")["nodes"]
                lines.append(node)
                for variant in variants:
                    levels = variant["inventoryItem"].pop("inventoryLevels")["nodes"]
                    lines.append({**variant, "__parentId": node["id"]})
                    lines.extend({**level, "__parentId": variant["id"]} for level in levels)
            elif stream == "inventory":
                levels = node.pop("inventoryLevels")["nodes"]
                lines.append(node)
                lines.extend({**level, "__parentId": node["id"]} for level in levels)
            else:
                lines.append(node)
        return lines

    def _bulk_file(self, path: str) -> tuple[int, dict, Any, float]:
        gid = f"gid://shopify/BulkOperation/{path.rsplit('/', 1)[-1].removesuffix('.jsonl')}"
        operation = self.bulk_operations.get(gid)
        if operation is None:
            return 404, {}, b"", 0
        body = "".join(json.dumps(line) + "\n" for line in self.bulk_lines(operation["stream"])).encode()
        return 200, {"Content-Type": "application/jsonl"}, body, 0
