"""eBay (Sell APIs): credentials, the check, and reading streams.

- Credentials: the app's keys (App ID, Cert ID) and RuName of the connection's environment
  (production or sandbox), and the seller's refresh token with its expiry, which Connect sets
  (`ebay_oauth.EbayOAuth`). The account deletion verification token is the webhook receiver's. A
  base URL override serves the APIs and the token endpoint (a test server, a proxy).
- Tokens and requests: `ebay_client`. Reading and cursors: `ebay_streams`. Mapping: `ebay_mapping`.
- Streams: `orders` (Sell Fulfillment API getOrders, with their refunds), `products` and
  `inventory` (Sell Inventory API getInventoryItems: a variant and a stock level per SKU). Listings
  made outside the Inventory API (Seller Hub, the Trading API) have no inventory item: their orders
  sync, their products and stock do not.
- Pushes (commerce.pushes): shipping fulfilments and ship-to-home stock, in `ebay_push`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from ..errors import AuthError, ConfigurationError, PermissionDenied, RateLimited
from ..http import Hints
from . import ebay_client, ebay_push
from . import ebay_mapping as mapping
from .base import CheckResult, Connector, Page
from .ebay_client import HINT_RECONNECT, TOKEN_PATH, EbayApi, EbayTokens
from .ebay_streams import INVENTORY_ITEMS, LAG, ORDERS, item_pages, order_filter, order_pages

if TYPE_CHECKING:
    from commerce.pushes import FulfilmentPush, StockPush
    from commerce.records import Record

STREAMS = ("products", "orders", "inventory")
TOKEN_WARNING = timedelta(days=30)
SAMPLE_SPAN = timedelta(days=30)
SCOPES = {"orders": "sell.fulfillment", "inventory": "sell.inventory"}
HINT_SCOPE = (
    "The seller did not grant the app this scope (sell.fulfillment for orders, sell.inventory for products and "
    "stock): connect the connection to eBay again and accept every permission asked for."
)


class EbayConnector(Connector):
    streams = STREAMS
    # `read` touches the network and the cache only, so the engine reads a page ahead.
    reads_in_background = True
    carrier_names = ebay_push.CARRIER_NAMES

    def hints(self) -> Hints:
        ebay_side = "eBay failed on its side; the sync tries again later."
        return Hints(
            by_status={
                400: "eBay refused the request's parameters.",
                401: HINT_RECONNECT,
                403: HINT_SCOPE,
                404: "eBay does not know this resource: check the environment (production or sandbox).",
                429: "eBay's call limit for the app is spent for now; the sync slows down and retries.",
                500: ebay_side,
                503: ebay_side,
            },
            timeout="eBay did not answer in time.",
            connection="eBay could not be reached.",
            describe=ebay_client.ebay_errors,
        )

    @cached_property
    def api(self) -> EbayApi:
        base_url = ebay_client.api_url(self.credentials, self.connection.base_url or "")
        refresh_token = str(self.credentials.get("refresh_token") or "").strip()
        if not refresh_token:
            raise ConfigurationError(
                "The connection has no eBay refresh token yet.",
                hint="Connect it to eBay (its Connect button) and sign in as the seller.",
            )
        tokens = EbayTokens(
            self.client,
            base_url + TOKEN_PATH,
            self.credential("client_id"),
            self.credential("client_secret"),
            refresh_token,
            self.cache_id,
        )
        return EbayApi(self.client, base_url, tokens)

    # --- Pushes (commerce.pushes) ---

    def fulfil(self, push: FulfilmentPush) -> str:
        return ebay_push.fulfil(self, push)

    def set_stock(self, push: StockPush) -> str:
        return ebay_push.set_stock(self, push)

    # --- Check ---

    def _check(self) -> CheckResult:
        environment = ebay_client.environment(self.credentials)
        warnings = self._setup_warnings()
        expiry = self._token_expiry()
        try:
            self.api.tokens.get(retry=False)
        except AuthError as error:
            if expiry is not None and expiry <= ebay_client.now() and error.status == 400:
                error.hint = f"The refresh token expired on {expiry.date()}. {error.hint}"
            raise
        samples, granted, missing = self._samples(warnings)
        return CheckResult(
            ok=True,
            message=f"Connected to eBay ({environment}).",
            granted=granted,
            missing=missing,
            samples=samples,
            warnings=warnings,
            details={
                "environment": environment,
                "endpoint": self.api.base_url,
                "refresh_token_expires_at": expiry.isoformat() if expiry else None,
            },
        )

    def _token_expiry(self) -> datetime | None:
        try:
            return mapping.time_of(self.credentials.get("refresh_token_expires_at"))
        except ValueError:
            return None

    def _setup_warnings(self) -> list[str]:
        warnings = []
        if not str(self.credentials.get("ru_name") or "").strip():
            warnings.append("The RuName is missing: connecting to eBay again needs it.")
        value = self.credentials.get("refresh_token_expires_at")
        expiry = self._token_expiry()
        moment = ebay_client.now()
        if value and expiry is None:
            warnings.append(f"“{value}” is not a time: the refresh token's expiry is unknown.")
        elif expiry is not None and expiry <= moment:
            warnings.append(f"The eBay refresh token expired on {expiry.date()}: connect to eBay again.")
        elif expiry is not None and expiry - moment <= TOKEN_WARNING:
            days = (expiry - moment).days
            warnings.append(
                f"The eBay refresh token expires on {expiry.date()} (in {days} days): connect to eBay again "
                "before then."
            )
        return warnings

    def _samples(self, warnings: list[str]) -> tuple[dict[str, int], list[str], list[str]]:
        """How many orders changed in the last 30 days and how many inventory items there are, and
        which scopes answer (the check never retries)."""
        end = ebay_client.now() - LAG
        probes = {
            "orders": (ORDERS, {"filter": order_filter(end - SAMPLE_SPAN, end), "limit": 1, "offset": 0}, "orders"),
            "inventory": (INVENTORY_ITEMS, {"limit": 1, "offset": 0}, "inventoryItems"),
        }
        samples: dict[str, int] = {}
        granted: list[str] = []
        missing: list[str] = []
        for stream, (path, params, key) in probes.items():
            try:
                body = self.api.get(path, params, retry=False)
            except PermissionDenied:
                missing.append(stream)
                warnings.append(f"The app cannot read {stream}: the seller did not grant it {SCOPES[stream]}.")
                continue
            except RateLimited:
                warnings.append(f"No sample of {stream}: eBay's call limit for the app is spent for now.")
                continue
            granted.append(stream)
            body = body if isinstance(body, dict) else {}
            total = body.get("total")
            samples[stream] = total if isinstance(total, int) else len(body.get(key) or [])
        return samples, granted, missing

    # --- Read ---

    def read(self, stream: str, cursor: dict[str, Any] | None, *, full: bool = False) -> Iterator[Page]:
        if stream not in STREAMS:
            raise ConfigurationError(f"eBay has no “{stream}” stream.", hint=f"Streams: {', '.join(STREAMS)}.")
        if stream == "orders":
            yield from order_pages(self, {} if full else cursor or {})
        else:
            yield from item_pages(self, stream, {} if full else cursor or {})

    def parse(self, stream: str, payload: Any) -> Record:
        if stream == "orders":
            return mapping.map_order(payload)
        if stream == "inventory":
            return mapping.map_inventory(payload)
        if stream == "products":
            return mapping.map_product(payload)
        raise ConfigurationError(f"eBay has no “{stream}” stream.")
