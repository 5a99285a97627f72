"""Amazon Selling Partner API: credentials, the check, reading streams, and pushes.

- Credentials: an LWA client (ID and secret), the seller's refresh token, the region (NA, EU, FE)
  and the marketplaces to sync, checked against Amazon's list and the region. The sandbox switch
  sends to sandbox.sellingpartnerapi-*; a base URL override serves SP-API and the token endpoint
  (a test server, a proxy). AWS keys and role ARNs are accepted and ignored: SP-API stopped
  signing requests with them.
- Marketplaces, regions and endpoints: `amazon_config`. Tokens and per-operation rate limits:
  `amazon_client`. Reading and cursors: `amazon_streams`. Mapping: `amazon_mapping`.
- Streams: `orders` (Orders API v2026-01-01, with items, and the refunds of Finances v0 attached
  to their orders), `products` and `inventory` (FBA inventory summaries: a variant per seller
  SKU, fulfillable units per marketplace), and `finances` (Finances v0: settlements from the
  financial event groups, fees from the financial events; `amazon_finances`). Orders v0 is not
  read: v2026-01-01 has all the hub reads.
- Pushes (`amazon_push`): shipments of seller-fulfilled orders (Orders v0 confirmShipment, which
  v2026-01-01 does not have) and seller-fulfilled stock levels (Listings Items patchListingsItem).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from ..errors import AuthError, ConfigurationError, PermissionDenied, RateLimited
from ..http import Hints, HttpClient
from . import amazon_config, amazon_push
from . import amazon_mapping as mapping
from .amazon_client import LwaTokens, Operation, SpApi
from .amazon_config import LWA_TOKEN_URL, MARKETPLACES, Config, Marketplace, parse_config, secret_expiry
from .amazon_finances import FinanceSweep, map_finance
from .amazon_streams import OrderSweep, param_time, summaries
from .base import CheckResult, Connector, Page

if TYPE_CHECKING:
    from commerce.pushes import FulfilmentPush, StockPush
    from commerce.records import Record

    from ..models import Connection

STREAMS = ("products", "orders", "inventory", "finances")
SECRET_WARNING = timedelta(days=30)
CHECK_WAIT = 5.0  # a test waits this long at most for an operation's budget
UNUSED_AWS_FIELDS = ("aws_access_key_id", "aws_secret_access_key", "role_arn")
ROLES = {
    "orders": "Inventory and Order Tracking",
    "inventory": "Amazon Fulfillment",
    "finances": "Finance and Accounting",
}
HINT_ROLE = (
    "The app lacks the role this needs, or the seller has not granted it: add the role to the app in Developer "
    "Central (Inventory and Order Tracking for orders, Amazon Fulfillment for FBA inventory, Finance and Accounting "
    "for refunds, fees and settlements, Product Listing for stock levels) and authorise it again in Seller Central."
)


class AmazonConnector(Connector):
    streams = STREAMS
    # `read` touches the network and the cache only, so the engine reads a page ahead.
    reads_in_background = True
    carrier_names = amazon_push.CARRIER_NAMES

    def __init__(
        self,
        connection: Connection,
        *,
        client: HttpClient | None = None,
        operations: dict[str, Operation] | None = None,
    ) -> None:
        super().__init__(connection, client=client)
        self.operations = operations

    def hints(self) -> Hints:
        amazon_side = "Amazon failed on its side; the sync tries again later."
        return Hints(
            by_status={
                400: "Amazon refused the request's parameters.",
                401: "Re-authorise the app in Seller Central (Apps and Services → Manage Your Apps).",
                403: HINT_ROLE,
                404: "Check the region and the marketplace IDs: Amazon does not know this resource there.",
                429: "Amazon's allowance for this operation is spent; the sync slows down and retries.",
                500: amazon_side,
                503: amazon_side,
            },
            timeout="Amazon did not answer in time.",
            connection="Amazon SP-API could not be reached.",
        )

    @cached_property
    def config(self) -> Config:
        return parse_config(self.credentials)

    @cached_property
    def api(self) -> SpApi:
        override = (self.connection.base_url or "").strip().rstrip("/")
        form = {
            "client_id": self.credential("lwa_client_id"),
            "client_secret": self.credential("lwa_client_secret"),
            "refresh_token": self.credential("refresh_token"),
        }
        token_url = f"{override}/auth/o2/token" if override else LWA_TOKEN_URL
        tokens = LwaTokens(self.client, token_url, form, self.cache_id)
        base_url = override or amazon_config.endpoint(self.config.region, sandbox=self.config.sandbox)
        return SpApi(self.client, base_url, tokens, self.cache_id, self.operations)

    # --- Check ---

    def _check(self) -> CheckResult:
        config = self.config
        warnings = self._setup_warnings()
        expiry = secret_expiry(self.credentials.get("lwa_client_secret_expires_at"))
        try:
            self.api.tokens.get(retry=False)
        except AuthError as error:
            if expiry is not None and expiry <= amazon_config.now().date() and error.status == 401:
                error.hint = f"The LWA client secret expired on {expiry}: rotate it in Developer Central. {error.hint}"
            raise
        body = self.api.call("getMarketplaceParticipations", retry=False, max_wait=CHECK_WAIT)
        participations = {
            (p.get("marketplace") or {}).get("id"): p.get("participation") or {}
            for p in (body.get("payload") if isinstance(body, dict) else None) or []
            if isinstance(p, dict)
        }
        absent = [m for m in config.marketplaces if not participations.get(m.id, {}).get("isParticipating")]
        warnings += [
            f"The seller has suspended listings in {m.country} ({m.id})."
            for m in config.marketplaces
            if participations.get(m.id, {}).get("hasSuspendedListings")
        ]
        present = [m for m in config.marketplaces if m not in absent]
        samples, granted, missing = self._samples(present[0], warnings) if present else ({}, [], [])
        result = CheckResult(
            ok=True,
            message=f"Connected to Amazon SP-API ({config.region}) for {', '.join(m.country for m in present)}.",
            granted=granted,
            missing=missing,
            samples=samples,
            warnings=warnings,
            details={
                "region": config.region,
                "endpoint": self.api.base_url,
                "sandbox": config.sandbox,
                "seller_id": self.credentials.get("seller_id") or "",
                "marketplaces": [m.id for m in config.marketplaces],
                "lwa_client_secret_expires_at": expiry.isoformat() if expiry else None,
            },
        )
        if absent:
            selling = [f"{MARKETPLACES[i].country} ({i})" for i, p in participations.items() if i in MARKETPLACES]
            names = ", ".join(f"{m.country} ({m.id})" for m in absent)
            result.ok = False
            result.error_code = ConfigurationError.code
            result.message = f"The seller is not registered in {names}."
            result.hint = (
                "Remove it from the Marketplace IDs, or register the seller there in Seller Central. "
                f"The seller sells in: {', '.join(selling) or 'no marketplace of this region'}."
            )
        return result

    def _setup_warnings(self) -> list[str]:
        warnings = []
        if any(str(self.credentials.get(name) or "").strip() for name in UNUSED_AWS_FIELDS):
            warnings.append("The AWS keys and role ARN are not used: SP-API no longer signs requests with them.")
        value = self.credentials.get("lwa_client_secret_expires_at")
        expiry = secret_expiry(value)
        today = amazon_config.now().date()
        if value and expiry is None:
            warnings.append(f"“{value}” is not a date: give the LWA client secret's expiry as YYYY-MM-DD.")
        elif expiry is not None and expiry <= today:
            warnings.append(f"The LWA client secret expired on {expiry}: rotate it in Developer Central.")
        elif expiry is not None and expiry - today <= SECRET_WARNING:
            days = (expiry - today).days
            warnings.append(f"The LWA client secret expires on {expiry} (in {days} days): rotate it before then.")
        return warnings

    def _samples(self, marketplace: Marketplace, warnings: list[str]) -> tuple[dict[str, int], list[str], list[str]]:
        """What a sample of each stream holds, and which roles answer (the check never retries)."""
        since = param_time(amazon_config.now() - timedelta(days=30))
        probes = {
            "orders": ("searchOrders", {"lastUpdatedAfter": since, "marketplaceIds": [marketplace.id]}),
            "inventory": (
                "getInventorySummaries",
                {"granularityType": "Marketplace", "granularityId": marketplace.id, "marketplaceIds": [marketplace.id]},
            ),
            "finances": ("listFinancialEvents", {"PostedAfter": since, "MaxResultsPerPage": 1}),
        }
        samples: dict[str, int] = {}
        granted: list[str] = []
        missing: list[str] = []
        for stream, (operation, params) in probes.items():
            try:
                body = self.api.call(operation, params, retry=False, max_wait=CHECK_WAIT)
            except PermissionDenied:
                missing.append(stream)
                warnings.append(f"The app cannot read {stream}: it lacks the {ROLES[stream]} role.")
                continue
            except RateLimited:
                warnings.append(f"No sample of {stream}: Amazon's allowance for {operation} is spent for now.")
                continue
            granted.append(stream)
            if stream == "orders":
                samples["orders"] = len(body.get("orders") or [])
            elif stream == "inventory":
                samples["inventory"] = len((body.get("payload") or {}).get("inventorySummaries") or [])
        return samples, granted, missing

    # --- Read ---

    def read(self, stream: str, cursor: dict[str, Any] | None, *, full: bool = False) -> Iterator[Page]:
        if stream not in STREAMS:
            raise ConfigurationError(f"Amazon has no “{stream}” stream.", hint=f"Streams: {', '.join(STREAMS)}.")
        if stream == "orders":
            yield from OrderSweep(self, {} if full else cursor or {}).pages()
        elif stream == "finances":
            yield from FinanceSweep(self, {} if full else cursor or {}).pages()
        else:
            yield from summaries(self, stream, {} if full else cursor or {})

    def parse(self, stream: str, payload: Any) -> Record:
        if stream == "orders":
            return mapping.map_order(payload)
        if stream == "inventory":
            return mapping.map_inventory(payload)
        if stream == "products":
            return mapping.map_product(payload)
        if stream == "finances":
            return map_finance(payload)
        raise ConfigurationError(f"Amazon has no “{stream}” stream.")

    # --- Pushes (commerce.pushes) ---

    def fulfil(self, push: FulfilmentPush) -> str:
        return amazon_push.fulfil(self, push)

    def set_stock(self, push: StockPush) -> str:
        return amazon_push.set_stock(self, push)
