"""A local TikTok Shop for tests: the auth host's token endpoints and the Open API endpoints the
connector uses, on a threaded http.server on 127.0.0.1 (the connection's base URL serves both).

Routes: GET /api/v2/token/get and /api/v2/token/refresh; GET /authorization/202309/shops;
POST /order/202309/orders/search and /product/202309/products/search (also by `seller_skus`);
and for pushes GET /order/202309/orders (by `ids`), GET /logistics/202309/delivery_options/{id}/
shipping_providers, POST /fulfillment/202309/packages/{id}/ship (`self_shipment` only, for
seller-shipped orders: set `shipping_type` to SELLER on an order first), GET
/logistics/202309/warehouses and POST /product/202309/products/{id}/inventory/update, over records
made from the examples in tests/fixtures/tiktok/ (each order in a package of its own). Like TikTok
it answers errors with a non-zero `code`, and checks what a request must be: its `app_key`, a
`timestamp` within five minutes of its own clock, a `sign` it computes itself (its own
implementation of the documented recipe), an `x-tts-access-token` it issued and still honours, the
shop's `shop_cipher` where one is needed (and none where it is not), and page sizes. Pages are
opaque tokens bound to their search that expire after an hour; a refresh token works once (a
refresh issues a new one). A shipment or stock level it refuses (a package shipped already, a
provider not offered, a SKU of another product) answers `REFUSED`, a code of the fake's own.

    with FakeTikTok(orders=250, products=12, now=NOW) as tiktok:
        connection.credentials = tiktok.credentials()
        tiktok.rate_limit(3)            # the next 3 Open API requests answer 429 / 36009002
        tiktok.expire_tokens(after=2)   # access tokens stop working after 2 more requests
        tiktok.revoke()                 # tokens refused, refreshes refused
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import random
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "tiktok"
APP_KEY = "6a1bcdkq4ubc2"
APP_SECRET = "e59af819cc0f1d2a3b4c5d6e7f80a1b2c3d4e5f6"
SHOP_CIPHER = "GCP_XF90igAAAABh00qsWgtvOiGFNqyubMt3"
SHOP_ID = "7000714532876273420"
AUTH_CODE = "TTP_auth-code-of-the-seller"
STATUSES = ("AWAITING_SHIPMENT", "IN_TRANSIT", "COMPLETED", "UNPAID", "CANCELLED", "DELIVERED")
PAGE_TOKEN_LIFE = timedelta(hours=1)
ACCESS_LIFE = timedelta(days=7)
REFRESH_LIFE = timedelta(days=365)
PAGED_PATHS = {"/order/202309/orders/search", "/product/202309/products/search"}
REFUSED = 21011001  # the fake's code for a shipment or stock level it refuses; the connector needs only non-zero


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def expected_sign(secret: str, path: str, query: dict[str, str], body: bytes) -> str:
    """The documented recipe, written again here so the fake does not trust the connector's."""
    names = sorted(name for name in query if name not in ("sign", "access_token"))
    message = secret + path
    for name in names:
        message += name + query[name]
    message += body.decode() + secret
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None


class FakeTikTok:
    def __init__(self, *, orders: int = 0, products: int = 0, now: datetime | None = None, seed: int = 11) -> None:
        self.now = now or datetime.now(UTC).replace(microsecond=0)
        self.lock = threading.RLock()
        self.requests: list[Seen] = []
        self.refreshes = 0
        self.refresh_delay = 0.0  # seconds a refresh takes, to widen races in tests
        self.shops = [dict(fixture("authorized_shops.json")["data"]["shops"][0], cipher=SHOP_CIPHER, id=SHOP_ID)]
        self._access: dict[str, datetime] = {}  # access token → expiry
        self._refresh: dict[str, datetime] = {}  # refresh tokens not yet used → expiry
        self._issued = 0
        self._rate_limited = 0
        self._rate_limit_status = 429
        self._server_errors = 0
        self._fail_after = 0
        self._malformed = 0
        self._expire_after: int | None = None
        self._revoked = False
        self._pages: dict[str, tuple[str, int, datetime]] = {}
        self._rng = random.Random(seed)
        self.orders: dict[str, dict[str, Any]] = {}
        self.products: dict[str, dict[str, Any]] = {}
        self.shipments: list[dict[str, str]] = []  # packages shipped: package_id, tracking_number, provider id
        self.providers = fixture("shipping_providers.json")["data"]["shipping_providers"]
        self.warehouses = fixture("warehouses.json")["data"]["warehouses"]
        self._generate(orders, products)
        self.access_token, self.refresh_token = self._issue()
        self._server: ThreadingHTTPServer | None = None

    # --- Life ---

    def __enter__(self) -> FakeTikTok:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.tiktok = self
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
            "app_key": APP_KEY,
            "app_secret": APP_SECRET,
            "service_id": "7123456789012345678",
            "access_token": self.access_token,
            "access_token_expires_at": iso(self._access[self.access_token]),
            "refresh_token": self.refresh_token,
            "refresh_token_expires_at": iso(self._refresh[self.refresh_token]),
            "shop_cipher": SHOP_CIPHER,
            "shop_id": SHOP_ID,
            **extra,
        }

    # --- Faults and time ---

    def advance(self, delta: timedelta) -> None:
        with self.lock:
            self.now += delta

    def rate_limit(self, count: int, *, status: int = 429) -> None:
        """The next `count` Open API requests answer code 36009002, with this HTTP status."""
        with self.lock:
            self._rate_limited, self._rate_limit_status = count, status

    def fail(self, count: int, *, after: int = 0) -> None:
        """After `after` more Open API requests, the next `count` answer 503."""
        with self.lock:
            self._server_errors, self._fail_after = count, after

    def malformed(self, count: int) -> None:
        """The next `count` Open API requests answer 200 with a body that is not JSON."""
        with self.lock:
            self._malformed = count

    def expire_tokens(self, *, after: int = 0) -> None:
        """Every access token issued so far expires after `after` more Open API requests."""
        with self.lock:
            self._expire_after = after
            if after == 0:
                self._expire_all()

    def _expire_all(self) -> None:
        self._access = {token: self.now - timedelta(seconds=1) for token in self._access}
        self._expire_after = None

    def revoke(self) -> None:
        """The seller deauthorises the app: access tokens and refresh tokens stop working."""
        with self.lock:
            self._revoked = True

    def seen(self, path: str | None = None) -> list[Seen]:
        with self.lock:
            return [r for r in self.requests if path is None or r.path == path]

    def touch(self, order_id: str, when: datetime, **changes: Any) -> dict[str, Any]:
        with self.lock:
            order = self.orders[order_id]
            order.update(changes, update_time=int(when.timestamp()))
            return order

    # --- Data ---

    def _issue(self) -> tuple[str, str]:
        with self.lock:
            self._issued += 1
            access, refresh = f"ROW_fake-access-{self._issued}", f"ROW_fake-refresh-{self._issued}"
            self._access[access] = self.now + ACCESS_LIFE
            self._refresh[refresh] = self.now + REFRESH_LIFE
            return access, refresh

    def _generate(self, orders: int, products: int) -> None:
        product_template = fixture("search_products.json")["data"]["products"][0]
        skus: list[tuple[str, str, str]] = []  # (product id, sku id, seller sku)
        for k in range(products):
            product = copy.deepcopy(product_template)
            product.update(id=f"17295929697{k:08d}", title=f"Product {k}")
            product["update_time"] = int((self.now - timedelta(hours=2)).timestamp())
            for n, sku in enumerate(product["skus"]):
                sku.update(id=f"18295929697{k:06d}{n:02d}", seller_sku=f"SKU-{k}-{n}")
                sku["inventory"][0]["quantity"] = 3 * k + n
                skus.append((product["id"], sku["id"], sku["seller_sku"]))
            self.products[product["id"]] = product
        template = fixture("search_orders.json")["data"]["orders"][0]
        ranks = list(range(orders))
        self._rng.shuffle(ranks)
        for n, rank in enumerate(ranks):
            order = copy.deepcopy(template)
            order["id"] = f"5764614130{n:08d}"
            order["create_time"] = int((self.now - timedelta(days=2) + timedelta(minutes=n)).timestamp())
            # Updated in an order unrelated to the ids, so pages by id are not pages by time.
            order["update_time"] = int((self.now - timedelta(days=1) + timedelta(minutes=rank)).timestamp())
            order["status"] = STATUSES[n % len(STATUSES)]
            order["packages"] = [{"id": f"11522271939{n:08d}"}]
            for k, item in enumerate(order["line_items"]):
                item["id"] = f"5770865121{n:06d}{k:02d}"
                item["package_id"] = order["packages"][0]["id"]
                if skus:
                    product_id, sku_id, seller_sku = skus[(n + k) % len(skus)]
                    item.update(product_id=product_id, sku_id=sku_id, seller_sku=seller_sku)
            self.orders[order["id"]] = order

    # --- Serving ---

    def handle(self, handler: _Handler) -> None:
        parts = urlsplit(handler.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        raw = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        with self.lock:
            self.requests.append(Seen(handler.command, parts.path, query, dict(handler.headers.items()), body))
        if parts.path == "/api/v2/token/get":
            return handler.json(self._token_get(query))
        if parts.path == "/api/v2/token/refresh":
            return handler.json(self._token_refresh(query))
        routes = [
            ("GET", "/authorization/202309/shops", self._shops),
            ("POST", "/order/202309/orders/search", self._search_orders),
            ("POST", "/product/202309/products/search", self._search_products),
            ("GET", "/order/202309/orders", self._order_detail),
            ("GET", r"/logistics/202309/delivery_options/(\d+)/shipping_providers", self._shipping_providers),
            ("POST", r"/fulfillment/202309/packages/(\d+)/ship", self._ship_package),
            ("GET", "/logistics/202309/warehouses", self._warehouses),
            ("POST", r"/product/202309/products/(\d+)/inventory/update", self._update_inventory),
        ]
        route = next(
            ((m, serve, match) for m, pattern, serve in routes if (match := re.fullmatch(pattern, parts.path))), None
        )
        if route is None or handler.command != route[0]:
            return handler.json(error(36009009, "Invalid path. The path is not found."), status=404)
        _, serve, match = route
        arguments = match.groups()
        with self.lock:
            if self._server_errors > 0 and self._fail_after > 0:
                self._fail_after -= 1
            elif self._server_errors > 0:
                self._server_errors -= 1
                return handler.text("Service Unavailable", status=503)
            if self._rate_limited > 0:
                self._rate_limited -= 1
                return handler.json(error(36009002, "Too many requests."), status=self._rate_limit_status)
            if self._malformed > 0:
                self._malformed -= 1
                return handler.text("<html>upstream hiccup</html>", status=200)
            refused = self._refuse(parts.path, query, raw, handler.headers.get("x-tts-access-token", ""))
        if refused is not None:
            return handler.json(refused[0], status=refused[1])
        data = serve(query, body or {}, *arguments)
        handler.json({"code": 0, "message": "Success", "request_id": "fake-request", "data": data})

    def _refuse(self, path: str, query: dict[str, str], raw: bytes, token: str) -> tuple[dict, int] | None:
        if query.get("app_key") != APP_KEY:
            return error(36009004, "Invalid credentials. Invalid `app_key` query parameter."), 400
        try:
            stamp = datetime.fromtimestamp(int(query.get("timestamp", "")), UTC)
        except ValueError:
            return error(36009004, "Invalid timestamp."), 400
        if abs(stamp - self.now) > timedelta(minutes=5):
            return error(36009004, "Invalid timestamp. It must be within 5 minutes of the current time."), 400
        if query.get("sign") != expected_sign(APP_SECRET, path, query, raw):
            return error(106001, "Invalid credentials. The signature in the query is invalid."), 200
        if self._expire_after is not None:
            if self._expire_after <= 0:
                self._expire_all()
            else:
                self._expire_after -= 1
        if token not in self._access or self._revoked:
            return error(105001, "Invalid credentials. The access token is invalid."), 200
        if self._access[token] <= self.now:
            return error(105002, "Expired credentials. The access token has expired."), 200
        shop_path = path != "/authorization/202309/shops"
        if shop_path and query.get("shop_cipher") != SHOP_CIPHER:
            return error(36009004, "Invalid identifier. The `shop_cipher` query parameter is invalid."), 200
        if not shop_path and "shop_cipher" in query:
            return error(36009004, "Unexpected identifier. The `shop_cipher` query parameter is not required."), 200
        size = query.get("page_size", "0")
        if path in PAGED_PATHS and not (size.isdigit() and 1 <= int(size) <= 100):
            return error(36009004, "Invalid page_size: it must be between 1 and 100."), 200
        return None

    def _token_get(self, query: dict[str, str]) -> dict[str, Any]:
        if query.get("app_key") != APP_KEY or query.get("app_secret") != APP_SECRET:
            return error(36004004, "invalid app_key or app_secret")
        if query.get("grant_type") != "authorized_code" or query.get("auth_code") != AUTH_CODE:
            return error(36004004, "invalid auth_code")
        return self._token_answer(*self._issue())

    def _token_refresh(self, query: dict[str, str]) -> dict[str, Any]:
        if query.get("app_key") != APP_KEY or query.get("app_secret") != APP_SECRET:
            return error(36004004, "invalid app_key or app_secret")
        time.sleep(self.refresh_delay)
        with self.lock:
            token = query.get("refresh_token", "")
            expires = self._refresh.pop(token, None)
            if query.get("grant_type") != "refresh_token" or self._revoked or expires is None or expires <= self.now:
                return error(36004004, "refresh_token is invalid or expired")
            self.refreshes += 1
            access, refresh = self._issue()
        return self._token_answer(access, refresh)

    def _token_answer(self, access: str, refresh: str) -> dict[str, Any]:
        answer = copy.deepcopy(fixture("token_get.json"))
        answer["data"].update(
            access_token=access,
            refresh_token=refresh,
            access_token_expire_in=int(self._access[access].timestamp()),
            refresh_token_expire_in=int(self._refresh[refresh].timestamp()),
        )
        return answer

    def _shops(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        return {"shops": copy.deepcopy(self.shops)}

    def _search_orders(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        found = list(self.orders.values())
        for name, keep in (
            ("update_time_ge", lambda o, v: o["update_time"] >= v),
            ("update_time_lt", lambda o, v: o["update_time"] < v),
            ("create_time_ge", lambda o, v: o["create_time"] >= v),
            ("create_time_lt", lambda o, v: o["create_time"] < v),
        ):
            if name in body:
                found = [o for o in found if keep(o, int(body[name]))]
        sort_field = query.get("sort_field", "create_time")
        found.sort(key=lambda o: (o[sort_field], o["id"]), reverse=query.get("sort_order", "DESC") == "DESC")
        return self._page(query, body, found, "orders")

    def _search_products(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        found = sorted(self.products.values(), key=lambda p: p["id"])
        if body.get("seller_skus"):
            wanted = set(body["seller_skus"])
            found = [p for p in found if any(sku.get("seller_sku") in wanted for sku in p["skus"])]
        if "update_time_ge" in body:
            found = [p for p in found if p["update_time"] >= int(body["update_time_ge"])]
        if "update_time_le" in body:
            found = [p for p in found if p["update_time"] <= int(body["update_time_le"])]
        return self._page(query, body, found, "products")

    def _page(self, query: dict[str, str], body: dict[str, Any], found: list[dict], key: str) -> dict[str, Any]:
        signature = json.dumps(
            [{k: v for k, v in sorted(query.items()) if k not in ("page_token", "sign", "timestamp")}, body],
            sort_keys=True,
        )
        offset = 0
        if query.get("page_token"):
            with self.lock:
                known = self._pages.get(query["page_token"])
            if known is None or known[0] != signature or self.now - known[2] > PAGE_TOKEN_LIFE:
                raise Invalid("Invalid page_token: it is unknown, of another search, or expired.")
            offset = known[1]
        size = int(query["page_size"])
        data: dict[str, Any] = {key: copy.deepcopy(found[offset : offset + size]), "total_count": len(found)}
        if offset + size < len(found):
            with self.lock:
                token = f"page-{len(self._pages) + 1}-{self._rng.randrange(10**9)}"
                self._pages[token] = (signature, offset + size, self.now)
            data["next_page_token"] = token
        else:
            data["next_page_token"] = ""
        return data

    # --- Pushes ---

    def _order_detail(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        ids = [i for i in query.get("ids", "").split(",") if i]
        if not 1 <= len(ids) <= 50:
            raise Invalid("Invalid ids: name 1 to 50 orders.")
        with self.lock:
            return {"orders": [copy.deepcopy(self.orders[i]) for i in ids if i in self.orders]}

    def _shipping_providers(self, query: dict[str, str], body: dict[str, Any], option: str) -> dict[str, Any]:
        with self.lock:
            if option not in {str(o.get("delivery_option_id")) for o in self.orders.values()}:
                raise Invalid("Invalid delivery_option_id.")
        return {"shipping_providers": copy.deepcopy(self.providers)}

    def _ship_package(self, query: dict[str, str], body: dict[str, Any], package_id: str) -> dict[str, Any]:
        shipment = body.get("self_shipment") or {}
        tracking, provider = shipment.get("tracking_number"), shipment.get("shipping_provider_id")
        if not tracking or not provider:
            raise Invalid("Invalid self_shipment: tracking_number and shipping_provider_id are required.")
        with self.lock:
            order = next(
                (o for o in self.orders.values() if any(i["package_id"] == package_id for i in o["line_items"])), None
            )
            if order is None:
                raise Refused(REFUSED, "The package does not exist.")
            if order.get("shipping_type") != "SELLER":
                raise Refused(REFUSED, "The package ships with TikTok Shipping: self_shipment is not allowed.")
            if provider not in {p["id"] for p in self.providers}:
                raise Refused(REFUSED, "The shipping provider is not available for this delivery option.")
            items = [i for i in order["line_items"] if i["package_id"] == package_id]
            if order["status"] not in ("AWAITING_SHIPMENT", "PARTIALLY_SHIPPING") or any(
                i["display_status"] != "AWAITING_SHIPMENT" for i in items
            ):
                raise Refused(REFUSED, "The package status does not allow shipping.")
            for item in items:
                item.update(tracking_number=tracking, shipping_provider_id=provider, display_status="IN_TRANSIT")
            waiting = any(i["display_status"] == "AWAITING_SHIPMENT" for i in order["line_items"])
            order.update(status="PARTIALLY_SHIPPING" if waiting else "IN_TRANSIT", tracking_number=tracking)
            order["update_time"] = int(self.now.timestamp())
            self.shipments.append({"package_id": package_id, "tracking_number": tracking, "provider_id": provider})
        return {}

    def _warehouses(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        return {"warehouses": copy.deepcopy(self.warehouses)}

    def _update_inventory(self, query: dict[str, str], body: dict[str, Any], product_id: str) -> dict[str, Any]:
        with self.lock:
            product = self.products.get(product_id)
            if product is None:
                raise Refused(REFUSED, "The product does not exist.")
            for entry in body.get("skus") or []:
                sku = next((s for s in product["skus"] if s["id"] == entry.get("id")), None)
                if sku is None:
                    raise Refused(REFUSED, "The SKU does not belong to the product.")
                for level in entry.get("inventory") or []:
                    quantity = level.get("quantity")
                    if not isinstance(quantity, int) or not 0 <= quantity <= 99999:
                        raise Invalid("Invalid quantity: it must be between 0 and 99999.")
                    warehouse = level.get("warehouse_id")
                    if warehouse not in {w["id"] for w in self.warehouses if w["type"] == "SALES_WAREHOUSE"}:
                        raise Invalid("Invalid warehouse_id: not a sales warehouse of the shop.")
                    stocked = next((s for s in sku["inventory"] if s["warehouse_id"] == warehouse), None)
                    if stocked is None:
                        sku["inventory"].append({"warehouse_id": warehouse, "quantity": quantity})
                    else:
                        stocked["quantity"] = quantity
        return {}


class Refused(Exception):
    """A request TikTok answers with HTTP 200 and a non-zero `code`."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class Invalid(Refused):
    """A request TikTok would answer 36009004."""

    def __init__(self, message: str) -> None:
        super().__init__(36009004, message)


def error(code: int, message: str) -> dict[str, Any]:
    return {"code": code, "message": message, "request_id": "fake-request", "data": {}}


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    tiktok: FakeTikTok

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        try:
            self.server.tiktok.handle(self)
        except Refused as refused:
            self.json(error(refused.code, str(refused)))

    do_POST = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def json(self, data: Any, status: int = 200) -> None:
        self.text(json.dumps(data), status=status, content_type="application/json")

    def text(self, text: str, status: int = 200, content_type: str = "text/html") -> None:
        body = text.encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass
