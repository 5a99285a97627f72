"""A local Amazon for tests: Login with Amazon's token endpoint and the SP-API operations the
connector uses, on a threaded http.server on 127.0.0.1 (the connection's base URL serves both).

Routes: POST /auth/o2/token; GET /sellers/v1/marketplaceParticipations,
/orders/2026-01-01/orders (searchOrders), /orders/2026-01-01/orders/<id> (getOrder),
/fba/inventory/v1/summaries, /finances/v0/financialEvents (refunds, shipments with their fees,
service fees) and /finances/v0/financialEventGroups (settlements), over records made from the
documented examples in tests/fixtures/amazon/. Like Amazon it checks what the models say a
request must be (one of createdAfter/lastUpdatedAfter, a lastUpdatedBefore at least two minutes
old, comma-separated lists, page sizes, the granularity, posted and started ranges of at most 180
days), pages with opaque tokens that expire (24 hours for orders), wants `x-amz-access-token`
from a token it issued and still honours (403 Unauthorized otherwise, as SP-API answers), and
keeps its own clock (`now`), which a test moves with `advance`.

Financial events are served in the order they were posted, whatever their list, 100 (or
`MaxResultsPerPage`) to a page. Service fee events carry no date, as Amazon's do not; the fake
knows when it posted them and serves each in the ranges that hold that time.

    with FakeAmazon(orders=250, skus=12, refunds=5, fees=40, service_fees=2, settlements=3, now=NOW) as amazon:
        connection.credentials = amazon.credentials()
        amazon.rate_limit(3)                  # the next 3 SP-API requests answer 429
        amazon.expire_tokens(after=2)         # access tokens stop working after 2 more requests
        amazon.revoke(after=1)                # after one more SP-API request, the app's authorisation
                                              # is revoked: tokens refused, LWA answers invalid_grant
"""

from __future__ import annotations

import copy
import json
import random
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "amazon"
US = "ATVPDKIKX0DER"
CLIENT_ID = "amzn1.application-oa2-client.fake"
CLIENT_SECRET = "amzn1.oa2-cs.v1.fake-secret"
REFRESH_TOKEN = "Atzr|fake-refresh-token"
ORDER_DATA = {"BUYER", "RECIPIENT", "PROCEEDS", "EXPENSE", "PROMOTION", "CANCELLATION", "FULFILLMENT", "PACKAGES"}
ORDER_DATA |= {"TAX", "PAYMENT", "FULFILLMENT_ORDERS"}
STATUSES = ("SHIPPED", "UNSHIPPED", "PARTIALLY_SHIPPED", "PENDING", "CANCELLED")
ORDERS_TOKEN_LIFE = timedelta(hours=24)
INVENTORY_PAGE = 50


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str) -> datetime:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Invalid(Exception):
    """A request Amazon would answer 400 InvalidInput."""


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str] = field(default_factory=dict)


class FakeAmazon:
    def __init__(
        self,
        *,
        orders: int = 0,
        skus: int = 0,
        refunds: int = 0,
        fees: int = 0,
        service_fees: int = 0,
        settlements: int = 0,
        now: datetime | None = None,
        marketplaces: tuple[str, ...] = (US,),
        seed: int = 7,
    ) -> None:
        self.now = now or datetime.now(UTC).replace(microsecond=0)
        self.marketplaces = marketplaces
        self.participating = set(marketplaces)
        self.requests: list[Seen] = []
        self.exchanges = 0
        self.lock = threading.RLock()
        self.rate_headers: dict[str, str] = {}
        self.pii_allowed = True
        self._rate_limited = 0
        self._rate_limit_header: str | None = None
        self._revoked = False
        self._tokens: dict[str, bool] = {}  # access token → still honoured
        self._expire_after: int | None = None
        self._revoke_after: int | None = None
        self._pages: dict[str, tuple[str, int, datetime]] = {}  # page token → (query, offset, issued)
        self._rng = random.Random(seed)
        self.orders: dict[str, dict[str, Any]] = {}
        self.summaries: dict[str, list[dict[str, Any]]] = {}
        self.refund_events: list[dict[str, Any]] = []
        self.shipment_events: list[dict[str, Any]] = []
        self.service_fee_events: list[tuple[datetime, dict[str, Any]]] = []  # (when posted, event)
        self.groups: list[dict[str, Any]] = []
        self._generate(orders, skus, refunds)
        self._generate_finances(fees, service_fees, settlements)
        self._server: ThreadingHTTPServer | None = None

    # --- Life ---

    def __enter__(self) -> FakeAmazon:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.amazon = self
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
            "lwa_client_id": CLIENT_ID,
            "lwa_client_secret": CLIENT_SECRET,
            "refresh_token": REFRESH_TOKEN,
            "seller_id": "A3TH9S8BH6GOGM",
            "region": "NA",
            "marketplace_ids": ",".join(self.marketplaces),
            **extra,
        }

    # --- Faults and time ---

    def advance(self, delta: timedelta) -> None:
        with self.lock:
            self.now += delta

    def rate_limit(self, count: int, *, rate: str | None = None) -> None:
        """The next `count` SP-API requests answer 429, with `x-amzn-RateLimit-Limit: rate` if given."""
        with self.lock:
            self._rate_limited, self._rate_limit_header = count, rate

    def expire_tokens(self, *, after: int = 0) -> None:
        """Every access token issued so far stops working after `after` more SP-API requests."""
        with self.lock:
            self._expire_after = after
            if after == 0:
                self._tokens = dict.fromkeys(self._tokens, False)

    def revoke(self, *, after: int = 0) -> None:
        """The seller revokes the app's authorisation after `after` more SP-API requests."""
        with self.lock:
            self._revoke_after = after
            if after == 0:
                self._revoke()

    def _revoke(self) -> None:
        self._revoked, self._revoke_after = True, None
        self._tokens = dict.fromkeys(self._tokens, False)

    def restore(self) -> None:
        with self.lock:
            self._revoked, self._rate_limited, self._expire_after, self._revoke_after = False, 0, None, None

    def seen(self, path: str | None = None) -> list[Seen]:
        with self.lock:
            return [r for r in self.requests if path is None or r.path == path]

    def touch(self, order_id: str, when: datetime, **fulfillment: Any) -> dict[str, Any]:
        with self.lock:
            order = self.orders[order_id]
            order["lastUpdatedTime"] = iso(when)
            order["fulfillment"].update(fulfillment)
            return order

    # --- Data ---

    def _generate(self, orders: int, skus: int, refunds: int) -> None:
        template = fixture("search_orders.json")["orders"][0]
        summary = fixture("inventory_summaries.json")["payload"]["inventorySummaries"][0]
        catalogue = [f"SKU-{k}" for k in range(max(skus, 1))]
        for marketplace in self.marketplaces:
            self.summaries[marketplace] = []
            for k in range(skus):
                item = copy.deepcopy(summary)
                item.update(asin=f"B0{k:08d}", sellerSku=catalogue[k], productName=f"Product {k}", totalQuantity=3 * k)
                item["fnSku"], item["lastUpdatedTime"] = f"X0{k:08d}", iso(self.now - timedelta(hours=2))
                item["inventoryDetails"]["fulfillableQuantity"] = 3 * k
                self.summaries[marketplace].append(item)
        ranks = list(range(orders))
        self._rng.shuffle(ranks)
        for n, rank in enumerate(ranks):
            order = copy.deepcopy(template)
            order_id = f"{111 + n % 7}-{n:07d}-{rank:07d}"
            order["orderId"] = order_id
            order["salesChannel"]["marketplaceId"] = self.marketplaces[n % len(self.marketplaces)]
            order["createdTime"] = iso(self.now - timedelta(days=2) + timedelta(minutes=n))
            # Updated in an order unrelated to the ids, so pages by id are not pages by time.
            order["lastUpdatedTime"] = iso(self.now - timedelta(days=1) + timedelta(minutes=rank))
            order["fulfillment"]["fulfillmentStatus"] = STATUSES[n % len(STATUSES)]
            for k, item in enumerate(order["orderItems"]):
                item["orderItemId"] = f"{n:07d}{k:03d}"
                item["product"]["sellerSku"] = catalogue[(n + k) % len(catalogue)]
            self.orders[order_id] = order
        for order_id in list(self.orders)[:refunds]:
            event = copy.deepcopy(fixture("refund_events.json")["payload"]["FinancialEvents"]["RefundEventList"][0])
            posted = parse_time(self.orders[order_id]["lastUpdatedTime"]) + timedelta(minutes=30)
            event.update(AmazonOrderId=order_id, PostedDate=iso(posted))
            self.refund_events.append(event)

    def _generate_finances(self, fees: int, service_fees: int, settlements: int) -> None:
        shipment = fixture("financial_events.json")["payload"]["FinancialEvents"]["ShipmentEventList"][0]
        service_fee = fixture("financial_events.json")["payload"]["FinancialEvents"]["ServiceFeeEventList"][0]
        for order_id in list(self.orders)[:fees]:
            order = self.orders[order_id]
            event = copy.deepcopy(shipment)
            event["AmazonOrderId"], event["SellerOrderId"] = order_id, f"SELLER-{order_id}"
            event["PostedDate"] = iso(parse_time(order["lastUpdatedTime"]) + timedelta(minutes=10))
            for item, ordered in zip(event["ShipmentItemList"], order["orderItems"], strict=False):
                item["OrderItemId"], item["SellerSKU"] = ordered["orderItemId"], ordered["product"]["sellerSku"]
            self.shipment_events.append(event)
        for n in range(service_fees):
            event = copy.deepcopy(service_fee)
            event["FeeDescription"] = f"Professional selling plan, month {n + 1}"
            self.service_fee_events.append((self.now - timedelta(days=30 * n + 1), event))
        for n in range(settlements):
            start = self.now - timedelta(days=14 * (n + 1))
            group: dict[str, Any] = {
                "FinancialEventGroupId": f"GROUP-{n:04d}",
                "ProcessingStatus": "Open" if n == 0 else "Closed",
                "FundTransferStatus": "Unknown" if n == 0 else "Succeeded",
                "OriginalTotal": {"CurrencyCode": "USD", "CurrencyAmount": round(100 + 10.5 * n, 2)},
                "BeginningBalance": {"CurrencyCode": "USD", "CurrencyAmount": 0.0},
                "FinancialEventGroupStart": iso(start),
            }
            if n:
                group["FinancialEventGroupEnd"] = iso(start + timedelta(days=14))
                group["FundTransferDate"] = iso(start + timedelta(days=15))
            self.groups.append(group)

    def pay(self, group_id: str, when: datetime) -> None:
        """Amazon closes a settlement and pays it."""
        with self.lock:
            group = next(g for g in self.groups if g["FinancialEventGroupId"] == group_id)
            group.update(ProcessingStatus="Closed", FundTransferStatus="Succeeded", FundTransferDate=iso(when))
            group["FinancialEventGroupEnd"] = iso(when - timedelta(hours=1))

    # --- Serving ---

    def handle(self, handler: _Handler) -> None:
        parts = urlsplit(handler.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        with self.lock:
            self.requests.append(Seen(handler.command, parts.path, query, dict(handler.headers.items())))
        if parts.path == "/auth/o2/token" and handler.command == "POST":
            return self._token(handler)
        if handler.command != "GET":
            return handler.errors(404, "NotFound", "Resource not found.")
        with self.lock:
            if self._rate_limited > 0:
                self._rate_limited -= 1
                headers = {"x-amzn-RateLimit-Limit": self._rate_limit_header} if self._rate_limit_header else {}
                return handler.errors(429, "QuotaExceeded", "You exceeded your quota.", headers)
            if not self._honours(handler.headers.get("x-amz-access-token", "")):
                return handler.errors(403, "Unauthorized", "Access to requested resource is denied.")
        routes = {
            "/sellers/v1/marketplaceParticipations": ("getMarketplaceParticipations", self._participations),
            "/orders/2026-01-01/orders": ("searchOrders", self._search_orders),
            "/fba/inventory/v1/summaries": ("getInventorySummaries", self._summaries),
            "/finances/v0/financialEvents": ("listFinancialEvents", self._financial_events),
            "/finances/v0/financialEventGroups": ("listFinancialEventGroups", self._event_groups),
        }
        operation, serve = routes.get(parts.path, ("getOrder", None))
        if serve is None and parts.path.startswith("/orders/2026-01-01/orders/"):
            serve = lambda q: self._get_order(unquote(parts.path.rsplit("/", 1)[1]), q)  # noqa: E731
        if serve is None:
            return handler.errors(404, "NotFound", "Resource not found.")
        try:
            status, body = serve(query)
        except Invalid as error:
            return handler.errors(400, "InvalidInput", str(error))
        headers = {"x-amzn-RateLimit-Limit": self.rate_headers[operation]} if operation in self.rate_headers else {}
        handler.json(body, status=status, headers=headers)

    def _honours(self, token: str) -> bool:
        if self._revoke_after is not None:
            if self._revoke_after <= 0:
                self._revoke()
            else:
                self._revoke_after -= 1
        if not self._tokens.get(token):
            return False
        if self._expire_after is not None:
            if self._expire_after <= 0:
                self._tokens = dict.fromkeys(self._tokens, False)
                self._expire_after = None
                return False
            self._expire_after -= 1
        return True

    def _token(self, handler: _Handler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        form = dict(parse_qsl(handler.rfile.read(length).decode()))
        missing = [name for name in ("grant_type", "client_id", "client_secret") if not form.get(name)]
        if missing or form["grant_type"] != "refresh_token" or not form.get("refresh_token"):
            return handler.json({"error": "invalid_request", "error_description": f"missing {missing}"}, status=400)
        if form["client_id"] != CLIENT_ID or form["client_secret"] != CLIENT_SECRET:
            return handler.json({"error": "invalid_client", "error_description": "Client authentication failed"}, 401)
        with self.lock:
            if self._revoked or form["refresh_token"] != REFRESH_TOKEN:
                body = {"error": "invalid_grant", "error_description": "The request has an invalid grant parameter"}
                return handler.json(body, status=400)
            self.exchanges += 1
            access = f"Atza|fake-{self.exchanges}"
            self._tokens[access] = True
        body = {"access_token": access, "refresh_token": REFRESH_TOKEN, "token_type": "bearer", "expires_in": 3600}
        handler.json(body)

    def _participations(self, query: dict[str, str]) -> tuple[int, Any]:
        payload = [
            {
                "marketplace": {"id": m, "countryCode": "US", "name": "Amazon", "defaultCurrencyCode": "USD"},
                "participation": {"isParticipating": m in self.participating, "hasSuspendedListings": False},
            }
            for m in self.marketplaces
        ]
        return 200, {"payload": payload}

    def _search_orders(self, query: dict[str, str]) -> tuple[int, Any]:
        if ("createdAfter" in query) == ("lastUpdatedAfter" in query):
            raise Invalid("Exactly one of createdAfter and lastUpdatedAfter is required.")
        after = parse_time(query.get("lastUpdatedAfter") or query["createdAfter"])
        before = parse_time(query["lastUpdatedBefore"]) if "lastUpdatedBefore" in query else self.now
        if before < after or before > self.now - timedelta(minutes=2):
            raise Invalid("lastUpdatedBefore must follow lastUpdatedAfter and be two minutes before the request.")
        marketplaces = [m for m in query.get("marketplaceIds", "").split(",") if m]
        if not marketplaces or any(m not in self.marketplaces for m in marketplaces):
            raise Invalid(f"Invalid marketplaceIds: {query.get('marketplaceIds')}")
        size = int(query.get("maxResultsPerPage", "100"))
        if not 1 <= size <= 100:
            raise Invalid("maxResultsPerPage must be between 1 and 100.")
        included = {d for d in query.get("includedData", "").split(",") if d}
        if included - ORDER_DATA:
            raise Invalid(f"Invalid includedData: {sorted(included - ORDER_DATA)}")
        if included & {"BUYER", "RECIPIENT"} and not self.pii_allowed:
            return 403, {"errors": [{"code": "Unauthorized", "message": "Access to requested resource is denied."}]}
        field = "lastUpdatedTime" if "lastUpdatedAfter" in query else "createdTime"
        found = sorted(
            (o for o in self.orders.values() if o["salesChannel"]["marketplaceId"] in marketplaces),
            key=lambda o: o["orderId"],
        )
        found = [o for o in found if after <= parse_time(o[field]) <= before]
        signature = json.dumps({k: v for k, v in sorted(query.items()) if k != "paginationToken"})
        offset = self._offset(query.get("paginationToken"), signature, ORDERS_TOKEN_LIFE)
        body: dict[str, Any] = {"orders": [self._shaped(o, included) for o in found[offset : offset + size]]}
        if offset + size < len(found):
            body["pagination"] = {"nextToken": self._new_page(signature, offset + size)}
        body["lastUpdatedBefore"] = iso(before)
        return 200, body

    def _get_order(self, order_id: str, query: dict[str, str]) -> tuple[int, Any]:
        order = self.orders.get(order_id)
        if order is None:
            return 404, {"errors": [{"code": "NotFound", "message": f"Order {order_id} not found."}]}
        included = {d for d in query.get("includedData", "").split(",") if d}
        return 200, {"order": self._shaped(order, included)}

    def _summaries(self, query: dict[str, str]) -> tuple[int, Any]:
        marketplace = query.get("marketplaceIds", "")
        if query.get("granularityType") != "Marketplace" or query.get("granularityId") != marketplace:
            raise Invalid("granularityType must be Marketplace and granularityId its marketplace.")
        if marketplace not in self.marketplaces:
            raise Invalid(f"Invalid marketplaceIds: {marketplace}")
        items = self.summaries[marketplace]
        if "startDateTime" in query:
            since = parse_time(query["startDateTime"])
            items = [i for i in items if parse_time(i["lastUpdatedTime"]) > since]
        signature = json.dumps({k: v for k, v in sorted(query.items()) if k != "nextToken"})
        offset = self._offset(query.get("nextToken"), signature, timedelta(seconds=30))
        body: dict[str, Any] = {
            "payload": {
                "granularity": {"granularityType": "Marketplace", "granularityId": marketplace},
                "inventorySummaries": items[offset : offset + INVENTORY_PAGE],
            }
        }
        if offset + INVENTORY_PAGE < len(items):
            body["pagination"] = {"nextToken": self._new_page(signature, offset + INVENTORY_PAGE)}
        return 200, body

    def _financial_events(self, query: dict[str, str]) -> tuple[int, Any]:
        after = parse_time(query["PostedAfter"])
        before = parse_time(query["PostedBefore"]) if "PostedBefore" in query else self.now - timedelta(minutes=2)
        if before <= after or before > self.now - timedelta(minutes=2):
            raise Invalid("PostedBefore must follow PostedAfter and be two minutes before the request.")
        size = int(query.get("MaxResultsPerPage", "100"))
        if not 1 <= size <= 100:
            raise Invalid("MaxResultsPerPage must be between 1 and 100.")
        timeline = sorted(
            [
                *((parse_time(e["PostedDate"]), "RefundEventList", e) for e in self.refund_events),
                *((parse_time(e["PostedDate"]), "ShipmentEventList", e) for e in self.shipment_events),
                *((posted, "ServiceFeeEventList", e) for posted, e in self.service_fee_events),
            ],
            key=lambda entry: entry[0],
        )
        events = [(name, e) for posted, name, e in timeline if after <= posted < before]
        if before - after > timedelta(days=180):
            events = []
        signature = json.dumps({k: v for k, v in sorted(query.items()) if k != "NextToken"})
        offset = self._offset(query.get("NextToken"), signature, ORDERS_TOKEN_LIFE)
        lists: dict[str, list[dict[str, Any]]] = {"RefundEventList": []}
        for name, event in events[offset : offset + size]:
            lists.setdefault(name, []).append(copy.deepcopy(event))
        payload: dict[str, Any] = {"FinancialEvents": lists}
        if offset + size < len(events):
            payload["NextToken"] = self._new_page(signature, offset + size)
        return 200, {"payload": payload}

    def _event_groups(self, query: dict[str, str]) -> tuple[int, Any]:
        after = (
            parse_time(query["FinancialEventGroupStartedAfter"]) if "FinancialEventGroupStartedAfter" in query else None
        )
        before = parse_time(query.get("FinancialEventGroupStartedBefore") or iso(self.now - timedelta(minutes=2)))
        if after is not None and (before <= after or before > self.now - timedelta(minutes=2)):
            raise Invalid("FinancialEventGroupStartedBefore must follow the start and be two minutes old.")
        size = int(query.get("MaxResultsPerPage", "10"))
        if not 1 <= size <= 100:
            raise Invalid("MaxResultsPerPage must be between 1 and 100.")
        groups = [
            g
            for g in sorted(self.groups, key=lambda g: g["FinancialEventGroupStart"])
            if (after is None or after <= parse_time(g["FinancialEventGroupStart"]))
            and parse_time(g["FinancialEventGroupStart"]) < before
        ]
        if after is not None and before - after > timedelta(days=180):
            groups = []
        signature = json.dumps({k: v for k, v in sorted(query.items()) if k != "NextToken"})
        offset = self._offset(query.get("NextToken"), signature, ORDERS_TOKEN_LIFE)
        payload: dict[str, Any] = {"FinancialEventGroupList": copy.deepcopy(groups[offset : offset + size])}
        if offset + size < len(groups):
            payload["NextToken"] = self._new_page(signature, offset + size)
        return 200, {"payload": payload}

    def _offset(self, token: str | None, signature: str, life: timedelta) -> int:
        if not token:
            return 0
        with self.lock:
            known = self._pages.get(token)
        if known is None or known[0] != signature:
            raise Invalid("Invalid pagination token.")
        if self.now - known[2] > life:
            raise Invalid("The pagination token has expired.")
        return known[1]

    def _new_page(self, signature: str, offset: int) -> str:
        with self.lock:
            token = f"page-{len(self._pages) + 1}-{self._rng.randrange(10**9)}"
            self._pages[token] = (signature, offset, self.now)
        return token

    def _shaped(self, order: dict[str, Any], included: set[str]) -> dict[str, Any]:
        shaped = copy.deepcopy(order)
        for data, key in (("BUYER", "buyer"), ("RECIPIENT", "recipient"), ("PROCEEDS", "proceeds")):
            if data not in included:
                shaped.pop(key, None)
        return shaped


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    amazon: FakeAmazon

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self.server.amazon.handle(self)

    do_POST = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def json(self, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(data).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("x-amzn-RequestId", "fake-request")
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def errors(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        self.json({"errors": [{"code": code, "message": message}]}, status=status, headers=headers)
