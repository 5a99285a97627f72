"""A WooCommerce-shaped platform for the fault tests: the orders list of the REST API (wc/v3) on a
threaded http.server on 127.0.0.1, that can misbehave on any request, and the platform's signed
order webhooks.

It pages as WooCommerce does (`per_page` ≤ 100, `page`, ordered by id, `X-WP-Total`,
`X-WP-TotalPages`, a `Date` header), filters by `modified_after` (GMT, strictly after), and takes
the connector's OAuth 1.0a query by its consumer key (the signature itself is the other fake's
business: tests/fakes/woocommerce_server.py). Orders carry no refunds, so a page is one request;
products and customers are empty lists, so a sync of every stream reads orders only.

    with FakePlatform(orders=1000) as platform:
        connection = make_connection(tenant, "woocommerce", credentials=platform.credentials())
        platform.inject("rate_limit", page=3, retry_after=1)   # page 3 answers 429 once
        platform.inject("stall", page=5)                       # page 5 stops mid-body past the timeout
        platform.on_page(6, kill_the_worker)                   # runs when page 6 is asked for
        platform.chaos(seed=7, rate_limit=0.10, server_error=0.02, timeout=0.01)

Faults (`inject(kind, page=None, times=1, active=None, ...)`; `page=None` is any request of the
list, `times=None` for as long as `active()` says so):

- `rate_limit`: 429 with `Retry-After` (`retry_after`).
- `server_error`: `status` (500, 502, 503) with WooCommerce's error body.
- `stall`: the headers and part of the body, then nothing for `seconds` (past the client's read
  timeout), then the connection closes.
- `reset`: the headers and part of the body, then the connection closes at once.
- `malformed`: 200 with a body cut in the middle of the JSON.
- `truncated`: 200 with only the first `keep` orders of the page, and `X-WP-TotalPages` saying
  this page is the last (or `pages`), while `X-WP-Total` stays true.
- `unauthorized`: 401, as a refused key or an expired token is answered.

`chaos(seed, ...)` draws a fault for each request no injected fault took, from its own seeded
random generator, so a run of the same requests in the same order meets the same faults.
`injected` counts every fault answered, by kind.

Orders change through `update(order_id, status)`, which gives the new version a modified time
strictly later than the one before (WooCommerce's times have whole seconds) and returns it; the
list then serves that version. `delivery(topic, payload, secret)` signs a webhook delivery as
WooCommerce does, and `WebhookSender` sends them to the hub, dropping, duplicating and reordering
a seeded share of them.
"""

from __future__ import annotations

import copy
import http.client
import json
import queue
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from webhooks.receivers.base import hmac_base64

TEMPLATE = Path(__file__).resolve().parents[1] / "fixtures" / "woocommerce" / "orders_list.json"
BASE_TIME = datetime(2024, 1, 1, tzinfo=UTC)
GMT_FORMAT = "%Y-%m-%dT%H:%M:%S"
# The store's clock runs three hours behind GMT, as in WooCommerce's documented examples.
SITE_OFFSET = timedelta(hours=-3)
CONSUMER_KEY = "ck_faults0123456789abcdef0123456789abcdef01"
CONSUMER_SECRET = "cs_faults0123456789abcdef0123456789abcdef01"
WEBHOOK_SECRET = "faults-webhook-secret"
PREFIX = "/wp-json/wc/v3/"
MALFORMED_BODY = b'[{"id": 1000, "status": "proc'
KINDS = ("rate_limit", "server_error", "stall", "reset", "malformed", "truncated", "unauthorized")


def gmt(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(GMT_FORMAT)


def parse_gmt(value: str) -> datetime:
    return datetime.strptime(value, GMT_FORMAT).replace(tzinfo=UTC)


@dataclass
class Fault:
    kind: str
    page: int | None = None  # a page of the list; None: any request of it
    times: int | None = 1  # how many requests it answers; None: while `active()` holds
    active: Callable[[], bool] | None = None
    status: int = 503
    retry_after: str = "1"
    seconds: float = 2.0
    keep: int = 40
    pages: int | None = None

    def applies(self, page: int) -> bool:
        if self.page is not None and self.page != page:
            return False
        return self.active is None or self.active()


@dataclass
class Hook:
    page: int
    action: Callable[[], None]
    once: bool = True


@dataclass
class Chaos:
    """Seeded random faults: each request draws a 429 (`rate_limit`), a 5xx (`server_error`) or a
    stalled or reset answer (`timeout`) with these probabilities."""

    rng: random.Random
    rate_limit: float = 0.0
    server_error: float = 0.0
    timeout: float = 0.0
    retry_after: str = "1"
    stall_seconds: float = 2.0

    @classmethod
    def seeded(cls, seed: int, **rates: Any) -> Chaos:
        return cls(random.Random(seed), **rates)

    def draw(self) -> Fault | None:
        roll = self.rng.random()
        if roll < self.rate_limit:
            return Fault("rate_limit", retry_after=self.retry_after)
        roll -= self.rate_limit
        if roll < self.server_error:
            return Fault("server_error", status=self.rng.choice((500, 502, 503)))
        roll -= self.server_error
        if roll < self.timeout:
            kind = self.rng.choice(("stall", "reset"))
            return Fault(kind, seconds=self.stall_seconds)
        return None


@dataclass
class Request:
    """A request of the orders list, and what it was answered."""

    page: int
    query: dict[str, str]
    answer: str  # "ok" or the fault's kind
    status: int
    at: float = field(default_factory=time.monotonic)


class FakePlatform:
    def __init__(self, *, orders: int = 0, seed: int = 11) -> None:
        self.consumer_key = CONSUMER_KEY
        self.consumer_secret = CONSUMER_SECRET
        self.lock = threading.RLock()
        self.orders: dict[int, dict[str, Any]] = {}
        self.versions: Counter[int] = Counter()
        self.requests: list[Request] = []
        self.injected: Counter[str] = Counter()
        self._faults: list[Fault] = []
        self._hooks: list[Hook] = []
        self._chaos: Chaos | None = None
        self._rng = random.Random(seed)
        self._template = json.loads(TEMPLATE.read_text())[0]
        self._server: ThreadingHTTPServer | None = None
        # Modified times are a shuffle of the ids' order, as in a store where old orders change:
        # a sweep by id sees them in no order of time.
        ranks = list(range(orders))
        self._rng.shuffle(ranks)
        for rank in ranks:
            self.create(modified=BASE_TIME + timedelta(days=1, seconds=rank))

    # --- Life ---

    def start(self) -> FakePlatform:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.platform = self
        thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakePlatform:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start the platform first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def credentials(self, **extra: Any) -> dict[str, Any]:
        return {
            "site_url": self.url,
            "consumer_key": self.consumer_key,
            "consumer_secret": self.consumer_secret,
            "allow_insecure_http": True,
            "webhook_secret": WEBHOOK_SECRET,
            **extra,
        }

    # --- Faults ---

    def inject(
        self,
        kind: str,
        *,
        page: int | None = None,
        times: int | None = 1,
        active: Callable[[], bool] | None = None,
        **options: Any,
    ) -> None:
        assert kind in KINDS, kind
        with self.lock:
            self._faults.append(Fault(kind, page=page, times=times, active=active, **options))

    def chaos(self, *, seed: int, **rates: Any) -> None:
        """Random faults from now on, drawn from `seed` (`rates`: Chaos's fields)."""
        with self.lock:
            self._chaos = Chaos.seeded(seed, **rates)

    def calm(self) -> None:
        """No more faults: injected ones and chaos alike."""
        with self.lock:
            self._faults, self._chaos = [], None

    def on_page(self, page: int, action: Callable[[], None], *, once: bool = True) -> None:
        """Run `action` when `page` is asked for, before it is answered (in the server's thread)."""
        with self.lock:
            self._hooks.append(Hook(page, action, once))

    def _fault_for(self, page: int) -> Fault | None:
        with self.lock:
            for fault in self._faults:
                if fault.applies(page):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self._faults.remove(fault)
                    return fault
            if self._chaos is not None:
                return self._chaos.draw()
        return None

    def _hooks_for(self, page: int) -> list[Callable[[], None]]:
        with self.lock:
            due = [hook for hook in self._hooks if hook.page == page]
            self._hooks = [hook for hook in self._hooks if not (hook.page == page and hook.once)]
        return [hook.action for hook in due]

    # --- Orders ---

    def create(self, status: str = "pending", *, modified: datetime | None = None) -> dict[str, Any]:
        """A new order (the next id), placed and last modified at `modified` (default: now)."""
        with self.lock:
            n = len(self.orders)
            order_id = 1000 + n
            order = copy.deepcopy(self._template)
            created = modified or datetime.now(UTC).replace(microsecond=0)
            order.update(
                id=order_id,
                number=str(order_id),
                order_key=f"wc_order_{order_id}",
                status=status,
                refunds=[],
                date_created=gmt(created + SITE_OFFSET),
                date_created_gmt=gmt(created),
                date_modified=gmt(created + SITE_OFFSET),
                date_modified_gmt=gmt(created),
                total=f"{10 + n % 90}.{n % 100:02d}",
            )
            order["_links"] = {"self": [{"href": f"{PREFIX}orders/{order_id}"}]}
            for k, item in enumerate(order["line_items"]):
                item["id"] = 100_000 + n * 10 + k
            self.orders[order_id] = order
            self.versions[order_id] = 1
            return copy.deepcopy(order)

    def update(self, order_id: int, status: str) -> dict[str, Any]:
        """The order moves to `status`: a new version, modified now (and after its last version)."""
        with self.lock:
            order = self.orders[order_id]
            now = datetime.now(UTC).replace(microsecond=0)
            modified = max(now, parse_gmt(order["date_modified_gmt"]) + timedelta(seconds=1))
            order.update(status=status, date_modified=gmt(modified + SITE_OFFSET), date_modified_gmt=gmt(modified))
            self.versions[order_id] += 1
            return copy.deepcopy(order)

    def final(self) -> dict[str, tuple[str, str]]:
        """Every order's current status and modified time, by id as the hub keeps it."""
        with self.lock:
            return {str(i): (o["status"], o["date_modified_gmt"]) for i, o in self.orders.items()}

    def pages_answered(self) -> list[int]:
        with self.lock:
            return [r.page for r in self.requests if r.answer == "ok"]

    @staticmethod
    def webhook_key(topic: str, payload: dict[str, Any]) -> tuple[str, str, str]:
        """What names one version's delivery: its topic, the order's id and its modified time."""
        return topic, str(payload["id"]), payload["date_modified_gmt"]

    def delivery(self, topic: str, payload: dict[str, Any], *, secret: str = WEBHOOK_SECRET) -> tuple[bytes, dict]:
        """A webhook delivery of `payload` as WooCommerce signs it: the body and its headers."""
        body = json.dumps(payload).encode()
        resource, _, event = topic.partition(".")
        headers = {
            "Content-Type": "application/json",
            "X-WC-Webhook-Source": f"{self.url}/" if self._server else "http://127.0.0.1/",
            "X-WC-Webhook-Topic": topic,
            "X-WC-Webhook-Resource": resource,
            "X-WC-Webhook-Event": event,
            "X-WC-Webhook-ID": "1",
            "X-WC-Webhook-Delivery-ID": str(self._rng.randrange(1, 10**9)),
            "X-WC-Webhook-Signature": hmac_base64(secret, body),
        }
        return body, headers

    # --- Serving ---

    def handle(self, handler: _Handler) -> None:
        parts = urlsplit(handler.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        route = parts.path[len(PREFIX) :] if parts.path.startswith(PREFIX) else None
        if route in ("products", "customers"):  # a store that sells nothing but its orders
            return handler.reply(200, b"[]", headers={"X-WP-Total": "0", "X-WP-TotalPages": "0"})
        if route == "data/currencies/current":
            return handler.reply(200, b'{"code": "USD", "name": "United States (US) dollar", "symbol": "$"}')
        if route != "orders":
            return handler.error(404, "rest_no_route", "No route was found matching the URL and request method.")
        try:
            page = int(query.get("page", "1"))
            per_page = int(query.get("per_page", "10"))
        except ValueError:
            return handler.error(400, "rest_invalid_param", "Invalid parameter(s): page, per_page")
        for action in self._hooks_for(page):
            action()
        if query.get("oauth_consumer_key") != self.consumer_key and not handler.headers.get("Authorization"):
            return self._answer(handler, page, query, "unauthorized", 401)
        fault = self._fault_for(page)
        if fault is not None and fault.kind not in ("truncated", "malformed", "stall", "reset"):
            return self._fail(handler, page, query, fault)
        with self.lock:
            matching = list(self.orders.values())
            since = query.get("modified_after")
            if since:
                matching = [o for o in matching if o["date_modified_gmt"] > since.replace("Z", "")[:19]]
            matching.sort(key=lambda o: o["id"])
            total = len(matching)
            chosen = matching[(page - 1) * per_page : page * per_page]
            body = json.dumps(chosen).encode()
        pages = (total + per_page - 1) // per_page
        headers = {"X-WP-Total": str(total), "X-WP-TotalPages": str(pages)}
        if fault is None:
            handler.reply(200, body, headers=headers)
            return self._record(page, query, "ok", 200)
        self.injected[fault.kind] += 1
        self._record(page, query, fault.kind, 200)
        if fault.kind == "malformed":
            return handler.reply(200, MALFORMED_BODY, headers=headers)
        if fault.kind == "truncated":
            headers["X-WP-TotalPages"] = str(fault.pages if fault.pages is not None else page)
            return handler.reply(200, json.dumps(chosen[: fault.keep]).encode(), headers=headers)
        handler.reply_partly(200, body, headers=headers, stall=fault.seconds if fault.kind == "stall" else 0.0)

    def _fail(self, handler: _Handler, page: int, query: dict[str, str], fault: Fault) -> None:
        self.injected[fault.kind] += 1
        if fault.kind == "rate_limit":
            handler.error(
                429, "woocommerce_rest_too_many_requests", "Too many requests.", {"Retry-After": fault.retry_after}
            )
            return self._record(page, query, fault.kind, 429)
        if fault.kind == "unauthorized":
            return self._answer(handler, page, query, fault.kind, 401)
        handler.error(fault.status, "internal_server_error", "There has been a critical error on this website.")
        self._record(page, query, fault.kind, fault.status)

    def _answer(self, handler: _Handler, page: int, query: dict[str, str], answer: str, status: int) -> None:
        handler.error(status, "woocommerce_rest_authentication_error", "Consumer key is invalid.")
        self._record(page, query, answer, status)

    def _record(self, page: int, query: dict[str, str], answer: str, status: int) -> None:
        with self.lock:
            self.requests.append(Request(page, query, answer, status))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    platform: FakePlatform

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up (a killed worker, a timeout) is expected, not news


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self.server.platform.handle(self)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _head(self, status: int, length: int, headers: dict | None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(length))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()

    def reply(self, status: int, body: bytes, *, headers: dict | None = None) -> None:
        try:
            self._head(status, len(body), headers)
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def reply_partly(self, status: int, body: bytes, *, headers: dict | None = None, stall: float = 0.0) -> None:
        """The headers and a part of the body; then, after `stall` seconds, the connection closes."""
        try:
            self._head(status, len(body), headers)
            self.wfile.write(body[: max(1, len(body) // 3)])
            self.wfile.flush()
            if stall:
                time.sleep(stall)
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True

    def error(self, status: int, code: str, message: str, headers: dict | None = None) -> None:
        body = json.dumps({"code": code, "message": message, "data": {"status": status}}).encode()
        self.reply(status, body, headers=headers)


# --- Webhook deliveries ---------------------------------------------------------------------------


@dataclass
class Outcome:
    """What became of one version's webhook: copies sent, and answered 200."""

    key: tuple[str, str, str]  # the platform's `webhook_key`: topic, order id, the version's modified time
    copies: int = 0
    delivered: int = 0


class WebhookSender:
    """The platform's webhooks to the hub's address, signed as the platform signs them (its
    `delivery`: WooCommerce's here, Shopify's in chaos_shopify.py) and sent over HTTP by a few
    sender threads, as a platform's delivery workers send them: with a seeded share of deliveries
    dropped (never sent), duplicated (sent twice) and reordered (held back behind up to `hold`
    later ones). A delivery answered otherwise than 200, or not at all, is sent again, as platforms
    retry: five more times, 0.2 s after the first attempt and twice as long after each next one
    (about six seconds in all, through a database restart). Each version's `Outcome` is keyed by
    the platform's `webhook_key`."""

    def __init__(
        self,
        platform: Any,  # a FakePlatform or anything with its `delivery` and `webhook_key`
        url: str,
        *,
        seed: int,
        drop: float = 0.0,
        duplicate: float = 0.0,
        reorder: float = 0.0,
        hold: int = 40,
        threads: int = 4,
    ) -> None:
        self.platform = platform
        parts = urlsplit(url)
        self.host, self.port, self.path = parts.hostname or "127.0.0.1", parts.port or 80, parts.path
        self.rng = random.Random(seed)
        self.drop, self.duplicate, self.reorder, self.hold = drop, duplicate, reorder, hold
        self.outcomes: list[Outcome] = []
        self.counts: Counter[str] = Counter()
        self.answers: Counter[int] = Counter()
        self._sent = 0
        self._held: list[tuple[int, Outcome, bytes, dict]] = []
        self._queue: queue.Queue = queue.Queue(maxsize=200)
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._send_all, daemon=True) for _ in range(threads)]
        for thread in self._threads:
            thread.start()

    def send(self, topic: str, payload: dict[str, Any]) -> None:
        """The platform fires `topic` for this version of the order."""
        body, headers = self.platform.delivery(topic, payload)
        outcome = Outcome(self.platform.webhook_key(topic, payload))
        self.outcomes.append(outcome)
        self._sent += 1
        roll = self.rng.random()
        if roll < self.drop:
            self.counts["dropped"] += 1
        elif roll < self.drop + self.reorder:
            self.counts["reordered"] += 1
            self._held.append((self._sent + self.rng.randint(1, self.hold), outcome, body, headers))
        else:
            copies = 2 if roll < self.drop + self.reorder + self.duplicate else 1
            if copies == 2:
                self.counts["duplicated"] += 1
            for _ in range(copies):
                self._put(outcome, body, headers)
        due = [held for held in self._held if held[0] <= self._sent]
        self._held = [held for held in self._held if held[0] > self._sent]
        for _, *item in due:
            self._put(*item)

    def close(self) -> None:
        """Send what is still held back, wait for every delivery to be answered, stop the senders."""
        for _, *item in self._held:
            self._put(*item)
        self._held = []
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()

    def _put(self, outcome: Outcome, body: bytes, headers: dict) -> None:
        outcome.copies += 1
        self._queue.put((outcome, body, headers))

    def _send_all(self) -> None:
        connection = None
        while (item := self._queue.get()) is not None:
            outcome, body, headers = item
            for attempt in range(6):
                try:
                    if connection is None:
                        connection = http.client.HTTPConnection(self.host, self.port, timeout=60)
                    connection.request("POST", self.path, body=body, headers=headers)
                    response = connection.getresponse()
                    response.read()
                    status = response.status
                    if response.getheader("Connection", "").lower() == "close":
                        connection.close()
                        connection = None
                except (OSError, http.client.HTTPException):
                    if connection is not None:
                        connection.close()
                    connection, status = None, 0
                with self._lock:
                    self.answers[status] += 1
                if status == 200:
                    with self._lock:
                        outcome.delivered += 1
                    break
                time.sleep(0.2 * 2**attempt)
        if connection is not None:
            connection.close()
