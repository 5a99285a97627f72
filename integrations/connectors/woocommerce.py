"""WooCommerce (REST API wc/v3): the client, its authentication and pagination.

- The `woocommerce` package builds every URL and query string, and signs with OAuth 1.0a; every
  request goes through our `HttpClient` (timeouts, retries, rate budget, address checks).
- Over https the consumer key and secret go as HTTP basic auth. A store on plain http is read only
  when the connection's `allow_insecure_http` credential says so, and then every request is
  signed with OAuth 1.0a one-legged, as WooCommerce requires, so the keys never cross the wire.
- Streams: orders (with their refunds), products (with their variations and stock), customers,
  and inventory: the stock of each simple product and variation, read from the products changed
  since the watermark (WooCommerce saves a product when its stock moves; stock a plugin writes
  straight to the database is seen by the next full sync).

Pagination and cursors
    Pages of 100 ordered by id, until `X-WP-TotalPages`; incremental by `modified_after` with
    `dates_are_gmt=true` (customers cannot be filtered so: they are read whole and filtered here).
    While a sweep pages, each page's cursor is
    `{"since": <the sweep's watermark>, "page": <next page>, "max_seen": <latest date_modified_gmt
    so far>, "started": <the store's clock when the sweep began>}` and `read` resumes there; after
    the last page it is `{"since": <watermark for the next sweep>}`. Times are WooCommerce's
    GMT format ("2024-05-01T12:00:00").

    Ordering by id rather than by modified time is deliberate: with offset pages, a record
    modified during a sweep would move to the end of a modified-ordered list and shift an unread
    record into a page already read, which would then be lost. By id nothing moves; what changed
    during the sweep is caught by the next one, because the watermark is the latest modified time
    seen but never later than the start of the sweep.

    A sweep that reads fewer records than the store's `X-WP-Total`, or meets a page before the
    last with less than a page of records (`"short": true` in its cursor), keeps its old watermark,
    so the next sweep reads again whatever it missed.
"""

from __future__ import annotations

import email.utils
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import requests
from requests.auth import AuthBase, HTTPBasicAuth
from woocommerce import API

from ..errors import AuthError, BadResponse, ConfigurationError, IntegrationError, NotFound, PermissionDenied, UnsafeURL
from ..http import Hints, HttpClient, validate_public_url
from . import woocommerce_mapping as mapping
from . import woocommerce_push
from .base import CheckResult, Connector, Page

if TYPE_CHECKING:
    from commerce.pushes import FulfilmentPush, StockPush
    from commerce.records import Record

    from ..models import Connection

logger = logging.getLogger(__name__)

API_VERSION = "wc/v3"
PER_PAGE = 100  # WooCommerce's maximum
GMT_FORMAT = "%Y-%m-%dT%H:%M:%S"
# The store's clock (its Date header) and its records' times may disagree by a little.
CLOCK_MARGIN = timedelta(minutes=1)
# A route that does not exist: WooCommerce checks a key's write permission before it looks for the
# route, so a POST here answers 401 to a read-only key and 404 to a read/write one, and writes nothing.
PERMISSION_PROBE = "commerce-hub-permission-probe"
TRUE_VALUES = {"1", "true", "yes", "on"}

HINT_AUTH = (
    "Check the consumer key and secret (WooCommerce → Settings → Advanced → REST API): the key may have been "
    "revoked. If they are right, the web server may be dropping the Authorization header."
)
HINT_NOT_FOUND = "Verify the site URL and the API version (wc/v3): the API answers at <site URL>/wp-json/wc/v3/."
HINT_NOT_API = (
    "This does not look like a WooCommerce REST API: is the permalink setting “Plain”? Pick any other structure "
    "in Settings → Permalinks, and check the site URL."
)
HINT_MALFORMED = "A plugin may be printing PHP warnings into the API's answers: turn off display_errors on the site."
HINT_INSECURE = (
    "Use the store's https:// address. Only if it has no HTTPS, allow plain http on the connection "
    "(allow_insecure_http): requests are then signed with OAuth 1.0a instead of carrying the keys."
)


@dataclass(frozen=True)
class Stream:
    endpoint: str
    filters_modified: bool  # the endpoint takes `modified_after`


STREAMS = {
    "orders": Stream("orders", filters_modified=True),
    "products": Stream("products", filters_modified=True),
    "customers": Stream("customers", filters_modified=False),
    "inventory": Stream("products", filters_modified=True),
}

MAPPERS = {
    "orders": mapping.map_order,
    "products": mapping.map_product,
    "customers": mapping.map_customer,
    "inventory": mapping.map_stock,
}


class WooCommerceAPI(API):
    """`woocommerce.API`, sending through our HttpClient instead of `requests.request`."""

    def __init__(self, url: str, consumer_key: str, consumer_secret: str, *, client: HttpClient, version: str) -> None:
        super().__init__(url, consumer_key, consumer_secret, version=version, wp_api=True)
        self.client = client

    # The package sends from its private `__request`; replacing that one method keeps its URL
    # building and OAuth signing, and puts every request through our client.
    def _API__request(
        self, method: str, endpoint: str, data: Any, params: dict[str, Any] | None = None, *, retry: bool = True
    ) -> requests.Response:
        url = self._API__get_url(endpoint)
        if self.is_ssl:
            auth: AuthBase = HTTPBasicAuth(self.consumer_key, self.consumer_secret)
        else:
            url, params, auth = f"{url}?{urlencode(params or {})}", None, OAuth1Signature(self)
        return self.client.request(
            method, url, params=params, auth=auth, json=data, headers={"Accept": "application/json"}, retry=retry
        )


class OAuth1Signature(AuthBase):
    """Signs each attempt of a request afresh, with the package's OAuth 1.0a: a retry that sent the
    first attempt's nonce again would be refused by WooCommerce as a replay."""

    def __init__(self, api: WooCommerceAPI) -> None:
        self.api = api

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.url = self.api._API__get_oauth_url(request.url, request.method)
        return request


class WooCommerceConnector(Connector):
    streams = tuple(STREAMS)
    # `read` touches the network and nothing else (no database), so the sync engine reads a page
    # ahead in a background thread while it writes the page before (integrations.sync).
    reads_in_background = True

    def __init__(self, connection: Connection, *, client: HttpClient | None = None) -> None:
        super().__init__(connection, client=client)
        # An injected client (tests, the sync engine) explains WooCommerce's failures all the same.
        self.client.hints = self.hints()
        self._api: WooCommerceAPI | None = None
        self._currency: str | None = None

    def hints(self) -> Hints:
        server_error = "The store failed on its side; WooCommerce → Status → Logs on the site may say why."
        return Hints(
            by_status={
                401: HINT_AUTH,
                403: "The key's user may not read the store: create the key for an administrator or shop manager.",
                404: HINT_NOT_FOUND,
                429: "The store or its host is limiting requests; the sync slows down and retries.",
                500: server_error,
                502: server_error,
                503: server_error,
                504: server_error,
            },
            ssl="The site's HTTPS is misconfigured: its certificate could not be verified (expired, self-signed or "
            "issued for another name).",
            timeout="The store did not answer in time: a slow host or a heavy plugin can cause this.",
            connection="The store could not be reached: check the site URL.",
            describe=error_message,
        )

    # --- Pushes (commerce.pushes) ---

    carrier_names = woocommerce_push.CARRIER_NAMES

    def fulfil(self, push: FulfilmentPush) -> str:
        return woocommerce_push.fulfil(self, push)

    def set_stock(self, push: StockPush) -> str:
        return woocommerce_push.set_stock(self, push)

    def write(self, method: str, endpoint: str, data: dict[str, Any], *, retry: bool = True) -> Any:
        """POST or PUT, and the decoded answer. `retry=False` for writes that are not idempotent."""
        return decode(self.api._API__request(method, endpoint, data, retry=retry))

    # --- The client ---

    @property
    def api(self) -> WooCommerceAPI:
        if self._api is None:
            self._api = WooCommerceAPI(
                self.site_url(),
                self.credential("consumer_key"),
                self.credential("consumer_secret"),
                client=self.client,
                version=self.api_version(),
            )
        return self._api

    def site_url(self) -> str:
        url = (self.connection.base_url or "").strip() or self.credential("site_url")
        if "://" not in url:
            url = f"https://{url}"
        parts = urlsplit(url)
        if parts.scheme == "http":
            if not self.allow_insecure_http:
                raise UnsafeURL(
                    "The store's address is plain http://, which would expose its keys.", hint=HINT_INSECURE
                )
            # The flag lifts the https rule only: the host must be as public as any other.
            validate_public_url(urlunsplit(("https", parts.netloc, parts.path, "", "")))
        else:
            validate_public_url(url)
        return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))

    def api_version(self) -> str:
        version = str(self.credentials.get("api_version") or API_VERSION).strip().strip("/")
        if not re.fullmatch(r"wc/v\d+", version):
            raise ConfigurationError(f"“{version}” is not a WooCommerce API version.", hint="Use wc/v3.")
        return version

    @property
    def allow_insecure_http(self) -> bool:
        value = self.credentials.get("allow_insecure_http")
        return value is True or str(value).strip().lower() in TRUE_VALUES

    def get(
        self, endpoint: str, params: dict[str, Any] | None = None, *, retry: bool = True
    ) -> tuple[Any, requests.Response]:
        # Redirects are refused by the HTTP layer with the address to use instead.
        response = self.api.get(endpoint, params=params, retry=retry)
        return decode(response), response

    def get_list(self, endpoint: str, params: dict[str, Any] | None = None) -> tuple[list[Any], requests.Response]:
        data, response = self.get(endpoint, params)
        if not isinstance(data, list):
            raise BadResponse(f"The store answered something other than a list of {endpoint}.", hint=HINT_NOT_API)
        return data, response

    # --- Check ---

    def _check(self) -> CheckResult:
        samples: dict[str, int] = {}
        missing: list[str] = []
        warnings: list[str] = []
        for stream in ("orders", "products", "customers"):
            try:
                _, response = self.get(STREAMS[stream].endpoint, {"per_page": 1}, retry=False)
            except (AuthError, PermissionDenied) as error:
                if stream == "orders":
                    raise  # the key reads nothing, or is wrong
                missing.append(stream)
                warnings.append(f"The key cannot read {stream}: {error.message}")
                continue
            total = header_int(response, "X-WP-Total")
            if total is None:
                warnings.append(f"The store did not say how many {stream} it has (no X-WP-Total header).")
            else:
                samples[stream] = total
        permissions = self._key_permissions()
        if permissions == "read_write":
            warnings.append("The key can also write: a Read key is enough to sync, and safer.")
        return CheckResult(
            ok=True,
            message=f"Connected to the WooCommerce store at {self.api.url}.",
            granted=["read", "write"] if permissions == "read_write" else ["read"],
            missing=missing,
            samples=samples,
            warnings=warnings,
            details={
                "api_version": self.api.version,
                "authentication": "basic" if self.api.is_ssl else "oauth1",
                "key_permissions": permissions,
            },
        )

    def _key_permissions(self) -> str:
        try:
            self.api.post(PERMISSION_PROBE, None, retry=False)
        except AuthError:
            return "read"
        except NotFound:
            return "read_write"
        except IntegrationError:
            pass
        return "unknown"

    # --- Read ---

    def read(self, stream: str, cursor: dict[str, Any] | None, *, full: bool = False) -> Iterator[Page]:
        spec = STREAMS.get(stream)
        if spec is None:
            raise ConfigurationError(f"WooCommerce has no “{stream}” stream.", hint=f"Streams: {', '.join(STREAMS)}.")
        state = {} if full or not cursor else dict(cursor)
        since: str | None = state.get("since")
        page = max(1, int(state.get("page") or 1))
        max_seen: str | None = state.get("max_seen")
        started: str | None = state.get("started")
        short = bool(state.get("short"))
        while True:
            params: dict[str, Any] = {"per_page": PER_PAGE, "page": page, "orderby": "id", "order": "asc"}
            if since and spec.filters_modified:
                params.update(modified_after=since, dates_are_gmt="true")
            items, response = self.get_list(spec.endpoint, params)
            started = started or server_time(response)
            changed = items if spec.filters_modified or not since else [i for i in items if modified_since(i, since)]
            max_seen = latest_modified(max_seen, changed)
            records = self.parse_all(stream, self._payloads(stream, changed))
            total = header_int(response, "X-WP-Total")
            if is_last(page, items, header_int(response, "X-WP-TotalPages")):
                if short or (total is not None and (page - 1) * PER_PAGE + len(items) < total):
                    # The sweep read fewer records than the store counts: its watermark stays, so
                    # the next sweep reads again what this one missed.
                    logger.warning("WooCommerce %s of connection %s came short of X-WP-Total", stream, self.cache_id)
                    yield Page(records, {"since": since}, total)
                    return
                yield Page(records, {"since": watermark(max_seen, started) or since}, total)
                return
            # A page before the last with less than a page of records (a cache serving an old page,
            # a plugin hiding some) marks the sweep as short.
            short = short or len(items) < PER_PAGE
            cursor = {"since": since, "page": page + 1, "max_seen": max_seen, "started": started}
            yield Page(records, {**cursor, "short": True} if short else cursor, total)
            page += 1

    def parse(self, stream: str, payload: Any) -> Record:
        return MAPPERS[stream](payload)

    def _payloads(self, stream: str, items: list[Any]) -> list[Any]:
        """What `parse` needs beyond the list's items: refunds, variations, currency, stock items."""
        if stream == "orders":
            return [self._with_refunds(order) for order in items]
        if stream == "products":
            currency = self._store_currency()
            return [self._with_variations(product, currency) for product in items]
        if stream == "inventory":
            stocked = []
            for product in items:
                is_variable = isinstance(product, dict) and product.get("type") == "variable"
                stocked.extend(self._variations(product) if is_variable else [product])
            return [item for item in stocked if not isinstance(item, dict) or manages_stock(item)]
        return items

    def _with_refunds(self, order: Any) -> Any:
        if not isinstance(order, dict) or not order.get("refunds"):
            return order
        try:
            refunds, _ = self.get_list(f"orders/{int(order['id'])}/refunds", {"per_page": PER_PAGE})
        except (KeyError, TypeError, ValueError, NotFound, BadResponse):
            return order  # mapped with the order's own, dateless list of refunds
        return {**order, mapping.HUB: {"refunds": refunds}}

    def _with_variations(self, product: Any, currency: str) -> Any:
        if not isinstance(product, dict):
            return product
        hub: dict[str, Any] = {"currency": currency}
        if product.get("type") == "variable":
            hub["variations"] = self._variations(product)
        return {**product, mapping.HUB: hub}

    def _variations(self, product: dict[str, Any]) -> list[Any]:
        try:
            endpoint = f"products/{int(product['id'])}/variations"
        except (KeyError, TypeError, ValueError):
            return []
        variations: list[Any] = []
        page = 1
        while True:
            try:
                items, response = self.get_list(
                    endpoint, {"per_page": PER_PAGE, "page": page, "orderby": "id", "order": "asc"}
                )
            except NotFound:
                return variations  # the product was deleted since the list was read
            variations.extend(items)
            if is_last(page, items, header_int(response, "X-WP-TotalPages")):
                return variations
            page += 1

    def _store_currency(self) -> str:
        """Products carry no currency: the store's is read once per connector."""
        if self._currency is None:
            try:
                data, _ = self.get("data/currencies/current")
            except (PermissionDenied, NotFound, BadResponse):
                data = {}
            self._currency = str(data.get("code") or "")[:3].upper() if isinstance(data, dict) else ""
        return self._currency


# --- Helpers --------------------------------------------------------------------------------------


def error_message(response: Any) -> str:
    """WooCommerce's reason in an error answer: `{"code": ..., "message": ..., "data": {"status": ...}}`."""
    body = response.json()
    return str(body.get("message") or "") if isinstance(body, dict) else ""


def decode(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        pass
    if "html" in response.headers.get("Content-Type", "") or response.text.lstrip()[:1] == "<":
        raise BadResponse(
            "The site answered with a web page, not JSON.", hint=HINT_NOT_API, status=response.status_code
        )
    raise BadResponse("The platform answered with malformed JSON.", hint=HINT_MALFORMED, status=response.status_code)


def header_int(response: Any, name: str) -> int | None:
    try:
        return int(response.headers[name])
    except (KeyError, ValueError):
        return None


def is_last(page: int, items: list[Any], pages: int | None) -> bool:
    if not items:
        return True
    return page >= pages if pages is not None else len(items) < PER_PAGE


def manages_stock(item: dict[str, Any]) -> bool:
    return bool(item.get("manage_stock")) and item.get("stock_quantity") is not None


def modified_of(item: Any) -> datetime | None:
    try:
        return mapping.gmt(item.get("date_modified_gmt"))
    except (AttributeError, TypeError, ValueError):
        return None


def modified_since(item: Any, since: str) -> bool:
    modified = modified_of(item)
    return modified is None or modified > mapping.gmt(since)


def latest_modified(current: str | None, items: list[Any]) -> str | None:
    times = [t for t in (modified_of(item) for item in items) if t is not None]
    if current:
        times.append(mapping.gmt(current))
    return max(times).strftime(GMT_FORMAT) if times else None


def server_time(response: Any) -> str | None:
    """When the store answered, by its own clock, less a margin."""
    try:
        answered = email.utils.parsedate_to_datetime(response.headers["Date"])
    except (KeyError, TypeError, ValueError):
        return None
    if answered.tzinfo is None:
        answered = answered.replace(tzinfo=UTC)
    return (answered.astimezone(UTC) - CLOCK_MARGIN).strftime(GMT_FORMAT)


def watermark(max_seen: str | None, started: str | None) -> str | None:
    if max_seen is None or started is None:
        return max_seen
    return min(max_seen, started, key=mapping.gmt)
