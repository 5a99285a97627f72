"""Shopify, through the GraphQL Admin API: auth, the check, and reading streams.

- One pinned API version (`SHOPIFY_API_VERSION`) at `{shop}/admin/api/{version}/graphql.json`,
  sent by `shopify_client` (the ShopifyAPI package's GraphQL client on our HttpClient, with the
  cost-based throttle).
- Auth: a custom app's access token, or a client-credentials token bought with the client ID and
  secret, kept encrypted on the connection and renewed five minutes before it expires.
- Cursor pagination sorted by `updated_at`, incremental from a watermark (inclusive: the orders
  at the watermark's second are read again, since Shopify's times have whole seconds); a first or
  full read of more than `SHOPIFY_BULK_THRESHOLD` records runs as a bulk export (`shopify_bulk`).
- What is asked for is in `shopify_queries`; how a node becomes a record, in `shopify_mapping`.

A stream's cursor: {"since", "after", "max_seen"} between pages ({"bulk", "done", "max_seen"}
during a bulk export), and {"since": <latest updatedAt seen>} once the stream is read to its end.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import shopify
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from shopify.api_version import InvalidVersionError, VersionNotFoundError

from ..errors import (
    AuthError,
    BadResponse,
    ConfigurationError,
    IntegrationError,
    PermissionDenied,
)
from ..http import Hints, HttpClient
from ..platforms import COMMERCE_STREAMS
from . import shopify_bulk as bulk
from . import shopify_mapping as mapping
from . import shopify_push as push_changes
from . import shopify_queries as queries
from .base import CheckResult, Connector, Page
from .shopify_client import CostThrottle, QueryTooCostly, ShopifyGraphQL

if TYPE_CHECKING:
    from commerce.pushes import FulfilmentPush, StockPush
    from commerce.records import Record

    from ..models import Connection
    from .base import Failed

logger = logging.getLogger(__name__)

DEFAULT_API_VERSION = "2025-10"
DEFAULT_BULK_THRESHOLD = 10_000
TOKEN_MARGIN = timedelta(minutes=5)
SHOP_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9-]*(\.[a-z0-9-]+)+$")


def _sleep(seconds: float) -> None:
    time.sleep(seconds)  # looked up when called, so a test's fake clock can stand in


class ShopifyConnector(Connector):
    streams = COMMERCE_STREAMS
    carrier_names = push_changes.CARRIER_NAMES
    page_sizes = {"orders": 25, "products": 25, "customers": 100, "inventory": 50}
    bulk_page_size = 250
    bulk_poll_interval = 2.0
    bulk_max_poll_interval = 30.0
    bulk_timeout = 6 * 3600.0

    def __init__(
        self, connection: Connection, *, client: HttpClient | None = None, sleep: Callable[[float], None] | None = None
    ) -> None:
        super().__init__(connection, client=client)
        if client is None or sleep is not None:
            self.client.sleep = sleep or _sleep
            if self.client.budget is not None:
                self.client.budget.sleep = self.client.sleep
        self.sleep = self.client.sleep
        self.throttle = CostThrottle(self.cache_id, self.sleep)
        self.shop_currency: str = cache.get(self._currency_key) or ""

    def hints(self) -> Hints:
        return Hints(
            by_status={
                401: "Check the access token: it is wrong, was revoked, or the app was uninstalled.",
                402: "The shop is frozen until its Shopify bill is paid.",
                403: "The app lacks read_orders or another required scope: add it to the app's scopes and reinstall.",
                404: "Check the shop domain: it is the store's mystore.myshopify.com address.",
                423: "Shopify has locked the shop.",
            },
            ssl="The site's HTTPS is misconfigured: its certificate could not be verified.",
        )

    # --- Addresses and auth ------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self.connection.base_url:
            return self.connection.base_url.rstrip("/")
        domain = re.sub(r"^https?://", "", self.credential("shop_domain").lower()).split("/", 1)[0]
        if "." not in domain:
            domain += ".myshopify.com"
        if not SHOP_DOMAIN.match(domain):
            raise ConfigurationError(f"“{domain}” is not a shop domain.", hint="Use the mystore.myshopify.com address.")
        return f"https://{domain}"

    @property
    def version(self) -> str:
        return getattr(settings, "SHOPIFY_API_VERSION", DEFAULT_API_VERSION)

    @property
    def endpoint(self) -> str:
        try:
            version = shopify.ApiVersion.coerce_to_version(self.version)
        except (InvalidVersionError, VersionNotFoundError) as exc:
            raise ConfigurationError(f"SHOPIFY_API_VERSION “{self.version}” is not a Shopify API version.") from exc
        return version.api_path(self.base_url) + "/graphql.json"

    def _can_fetch_token(self) -> bool:
        return bool(self.credentials.get("client_id") and self.credentials.get("client_secret"))

    def _access_token(self, *, retry: bool = True) -> str:
        token = (self.credentials.get("access_token") or "").strip()
        expires_at = self.credentials.get("access_token_expires_at")
        # A token without an expiry was pasted from a custom app and is used as it is.
        if token and not (expires_at and self._can_fetch_token() and _expiring(expires_at)):
            return token
        if self._can_fetch_token():
            return self._fetch_token(retry=retry)
        raise ConfigurationError(
            "The connection has no access token.", hint="Fill in the Admin API access token, or a client ID and secret."
        )

    def _fetch_token(self, *, retry: bool = True) -> str:
        """The client-credentials grant; the token is kept on the connection until near its expiry."""
        form = {
            "grant_type": "client_credentials",
            "client_id": self.credential("client_id"),
            "client_secret": self.credential("client_secret"),
        }
        url = f"{self.base_url}/admin/oauth/access_token"
        try:
            body = self.client.json("POST", url, data=form, headers={"Accept": "application/json"}, retry=retry)
        except IntegrationError as error:
            if error.status in {400, 401, 403}:
                raise AuthError(
                    "Shopify refused the client ID and secret.",
                    hint="Check the client ID and secret, and that the app is installed on the shop.",
                    status=error.status,
                ) from error
            raise
        token = body.get("access_token") if isinstance(body, dict) else None
        if not token:
            raise BadResponse("Shopify's token answer has no access token.")
        expires_at = timezone.now() + timedelta(seconds=float(body.get("expires_in") or 86399))
        credentials = dict(self.connection.credentials or {})
        credentials.update(access_token=token, access_token_expires_at=expires_at.isoformat())
        self.connection.credentials = credentials
        type(self.connection).objects.filter(pk=self.connection.pk).update(credentials=self.connection.credentials)
        self.credentials = self.connection.credentials
        logger.info("Fetched a Shopify access token for connection %s, valid until %s", self.connection.pk, expires_at)
        return token

    def query(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        operation: str | None = None,
        *,
        retry: bool = True,
        partial: bool = False,
    ) -> dict[str, Any]:
        """Run one GraphQL operation and return its data. A client-credentials token Shopify no
        longer accepts is replaced once."""
        token = self._access_token(retry=retry)
        try:
            return self._graphql(token).execute(query, variables, operation, retry=retry, partial=partial)
        except AuthError:
            if not self._can_fetch_token():
                raise
            logger.info("Shopify refused the kept token of connection %s; fetching another", self.connection.pk)
            token = self._fetch_token(retry=retry)
            return self._graphql(token).execute(query, variables, operation, retry=retry, partial=partial)

    def _graphql(self, token: str) -> ShopifyGraphQL:
        headers = {"X-Shopify-Access-Token": token}
        return ShopifyGraphQL(self.endpoint, headers, http=self.client, throttle=self.throttle)

    # --- Pushes (commerce.pushes) -------------------------------------------------------------------

    def fulfil(self, push: FulfilmentPush) -> str:
        return push_changes.fulfil(self, push)

    def set_stock(self, push: StockPush) -> str:
        return push_changes.set_stock(self, push)

    # --- Check ---------------------------------------------------------------------------------------

    def _check(self) -> CheckResult:
        data = self.query(queries.CHECK, operation="HubCheck", retry=False, partial=True)
        shop = data.get("shop") or {}
        self.remember_currency(shop.get("currencyCode"))
        installation = data.get("currentAppInstallation") or {}
        granted = sorted({s["handle"] for s in installation.get("accessScopes") or [] if s.get("handle")})
        implied = set(granted) | {"read_" + s.removeprefix("write_") for s in granted if s.startswith("write_")}
        missing = [scope for scope in self.connection.spec.scopes if scope not in implied]
        samples = {
            stream: int(data[field]["count"])
            for stream, field in queries.COUNTS.items()
            if (data.get(field) or {}).get("count") is not None
        }
        warnings = []
        if "read_all_orders" in missing:
            warnings.append("Only the last 60 days of orders are visible: grant read_all_orders to sync older ones.")
        name = shop.get("name") or shop.get("myshopifyDomain") or "the shop"
        result = CheckResult(
            ok=True,
            message=f"Connected to {name}.",
            granted=granted,
            missing=missing,
            samples=samples,
            warnings=warnings,
            details={
                "shop": shop.get("name") or "",
                "domain": shop.get("myshopifyDomain") or "",
                "currency": shop.get("currencyCode") or "",
                "api_version": self.version,
            },
        )
        blocking = [scope for scope in missing if scope != "read_all_orders"]
        if blocking:
            result.ok = False
            result.message = f"Connected to {name}, but the app lacks {', '.join(blocking)}."
            them = "it" if len(blocking) == 1 else "them"
            result.hint = f"The app lacks {', '.join(blocking)}: add {them} to the app's scopes and reinstall it."
            result.error_code = PermissionDenied.code
        return result

    # --- Reading -------------------------------------------------------------------------------------

    def read(self, stream: str, cursor: dict[str, Any] | None, *, full: bool = False) -> Iterator[Page]:
        if stream not in self.streams:
            raise ConfigurationError(f"Shopify has no “{stream}” stream.")
        cursor = {} if full else dict(cursor or {})
        if stream == "products" and not self.shop_currency:
            shop = self.query(queries.SHOP_CURRENCY, None, "HubShop").get("shop") or {}
            self.remember_currency(shop.get("currencyCode"))
        if cursor.get("bulk"):
            yield from bulk.read(self, stream, cursor, None)
            return
        if cursor.get("after") or cursor.get("since"):
            yield from self.read_pages(stream, cursor, None)
            return
        count, precision = self._count(stream)
        threshold = getattr(settings, "SHOPIFY_BULK_THRESHOLD", DEFAULT_BULK_THRESHOLD)
        if count is not None and (count > threshold or (precision == "AT_LEAST" and count >= threshold)):
            yield from bulk.read(self, stream, {}, count)
        else:
            yield from self.read_pages(stream, {}, count)

    def complete_nested(self, holder: Any) -> None:
        """Fetch the rest of any nested connection the page cut at its size, depth first."""
        if not isinstance(holder, dict) or queries.gid_type(holder.get("id")) not in queries.NESTED:
            return
        type_name = queries.gid_type(holder["id"])
        field = queries.NESTED[type_name][0]
        connection = holder.get(field)
        if not isinstance(connection, dict):
            return
        info = connection.get("pageInfo") or {}
        while info.get("hasNextPage") and info.get("endCursor"):
            variables = {"id": holder["id"], "after": info["endCursor"]}
            rest = (self.query(queries.more(type_name), variables, "HubMore").get("node") or {}).get(field) or {}
            connection["nodes"] = [*(connection.get("nodes") or []), *(rest.get("nodes") or [])]
            info = connection["pageInfo"] = rest.get("pageInfo") or {}
        for child in connection.get("nodes") or []:
            for value in child.values() if isinstance(child, dict) else ():
                self.complete_nested(value)

    def parse(self, stream: str, payload: Any) -> Record:
        if stream == "orders":
            return mapping.order(payload)
        if stream == "products":
            return mapping.product(payload, self.shop_currency)
        if stream == "customers":
            return mapping.customer(payload)
        if stream == "inventory":
            return mapping.inventory_item(payload)
        raise ConfigurationError(f"Shopify has no “{stream}” stream.")

    def parse_nodes(self, stream: str, nodes: list[Any]) -> list[Record | Failed]:
        if stream != "inventory":
            return self.parse_all(stream, nodes)
        payloads = []
        for node in nodes:
            try:
                payloads.extend(mapping.split_inventory_item(node))
            except (AttributeError, TypeError):
                payloads.append(node)  # unreadable: parse fails on it and quarantines it whole
        return self.parse_all(stream, payloads, id_of=mapping.inventory_id)

    def remember_currency(self, code: str | None) -> None:
        if code:
            self.shop_currency = code
            cache.set(self._currency_key, code, timeout=86400)

    @property
    def _currency_key(self) -> str:
        return f"shopify:currency:{self.cache_id}"

    def _count(self, stream: str) -> tuple[int | None, str]:
        field = queries.COUNTS[stream]
        info = self.query(queries.count(stream), None, "HubCount").get(field) or {}
        count = info.get("count")
        return (int(count) if count is not None else None), str(info.get("precision") or "")

    def read_pages(self, stream: str, cursor: dict[str, Any], total: int | None) -> Iterator[Page]:
        since, after, max_seen = cursor.get("since"), cursor.get("after"), cursor.get("max_seen")
        query, root, operation = queries.page(stream), queries.ROOTS[stream], queries.operation(stream)
        # Inclusive: Shopify's times have whole seconds, so an order changed in the same second as the
        # last one a run read, after it read it, has the watermark's very time. Reading the orders at
        # the watermark again costs a few unchanged records a run.
        search = f"updated_at:>='{since}'" if since else None
        first = self.page_sizes[stream]
        while True:
            try:
                data = self.query(query, {"first": first, "after": after, "query": search}, operation)
            except QueryTooCostly:
                if first == 1:
                    raise
                first = max(1, first // 2)
                continue
            connection = data.get(root)
            if not isinstance(connection, dict):
                raise BadResponse(f"Shopify's answer has no {root}.")
            nodes = mapping.nodes(connection)
            for node in nodes:
                self.complete_nested(node)
            max_seen = mapping.latest_update(max_seen, nodes)
            info = connection.get("pageInfo") or {}
            records = self.parse_nodes(stream, nodes)
            if not (info.get("hasNextPage") and info.get("endCursor")):
                yield Page(records, bulk.cursor(since=max_seen or since), total)
                return
            after = info["endCursor"]
            yield Page(records, bulk.cursor(since=since, after=after, max_seen=max_seen), total)


def _expiring(expires_at: str) -> bool:
    try:
        when = datetime.fromisoformat(expires_at)
    except (TypeError, ValueError):
        return True
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return timezone.now() + TOKEN_MARGIN >= when
