"""Amazon SP-API transport: LWA access tokens, and a rate budget per operation.

- Login with Amazon (LWA) trades the refresh token for an access token that lasts an hour. It is
  kept in the cache until a minute before it expires, so every worker of a connection shares it,
  and only one worker at a time exchanges (a lock taken with `cache.add`; the others wait for its
  token). A request Amazon refuses with 401 or 403 gets a fresh token once; refused again, a 401
  means the authorisation is gone, a 403 that the app lacks a role.
- Reads are GETs; the pushes' writes (confirmShipment, patchListingsItem) go through the same
  `call`, with the method of their operation and a JSON body. A write that is not idempotent is
  sent with `retry=False`: a 5xx or a timeout is reported, never sent again blindly. A refused
  token is still renewed once and the request sent again, since Amazon did nothing with it.
- Amazon limits each operation separately (a token bucket per operation, seller and app), so
  each operation has its own `RateBudget` with the rate and burst of its usage plan, moved to the
  rate Amazon reports in `x-amzn-RateLimit-Limit` whenever an answer carries it. The HTTP client
  retries a 429 after backoff and pauses that operation's budget for every worker.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from django.core.cache import cache

from ..errors import AuthError, BadResponse, IntegrationError, PermissionDenied, RateLimited
from ..http import HttpClient, RateBudget
from ..tokens import SharedToken, lifetime_of

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Operation:
    """One SP-API operation and its default usage plan (requests per second, burst)."""

    name: str
    path: str
    rate: float
    burst: int
    method: str = "GET"


LISTINGS_ITEM = "/listings/2021-08-01/items/{sellerId}/{sku}"

# Usage plans as each operation's description in the vendor's models states them
# (shared/specs/amazon-sp-api/). The Sellers and Listings Items models are not there: their plans
# are from Amazon's sellers.json and listingsItems_2021-08-01.json.
OPERATIONS: dict[str, Operation] = {
    op.name: op
    for op in [
        Operation("searchOrders", "/orders/2026-01-01/orders", 0.0056, 20),
        Operation("getOrder", "/orders/2026-01-01/orders/{orderId}", 0.5, 30),
        Operation("confirmShipment", "/orders/v0/orders/{orderId}/shipmentConfirmation", 2.0, 10, "POST"),
        Operation("getInventorySummaries", "/fba/inventory/v1/summaries", 2.0, 2),
        Operation("listFinancialEvents", "/finances/v0/financialEvents", 0.5, 30),
        Operation("listFinancialEventGroups", "/finances/v0/financialEventGroups", 0.5, 30),
        Operation("getMarketplaceParticipations", "/sellers/v1/marketplaceParticipations", 0.016, 15),
        Operation("getListingsItem", LISTINGS_ITEM, 5.0, 10),
        Operation("patchListingsItem", LISTINGS_ITEM, 5.0, 5, "PATCH"),
    ]
}

REVOKED = "Refresh token expired or revoked: re-authorise the app in Seller Central."
HINT_REAUTHORISE = (
    "In Seller Central, Apps and Services → Manage Your Apps, authorise the app again and paste the new refresh "
    "token on the connection."
)
HINT_CLIENT = (
    "Check the LWA client ID and secret (Developer Central → your app → LWA credentials): the secret may have been "
    "rotated or have expired."
)
RATE_HEADER = "x-amzn-RateLimit-Limit"
JSON = {"Accept": "application/json"}
USER_AGENT = "commerce-hub/1.0 (Language=Python)"
RATE_MEMORY = 86400  # how long an operation's reported rate is remembered


class BudgetSpent(RateLimited):
    """An operation's budget would make the caller wait longer than it is willing to."""

    def __init__(self, operation: str, wait: float) -> None:
        super().__init__(
            f"Amazon's allowance for {operation} is spent for the next {int(wait)} s.",
            hint="The sync goes on from here next time; Amazon raises the allowance for busier sellers.",
        )
        self.wait = wait


class OperationBudget(RateBudget):
    """A `RateBudget` for one operation of one connection, whose rate Amazon's answers may move."""

    def __init__(self, cache_id: str, op: Operation, *, sleep: Callable[[float], None]) -> None:
        self.rate_key = f"amazon:rate:{cache_id}:{op.name}"
        self.rate = float(cache.get(self.rate_key) or op.rate)
        super().__init__(f"connection:{cache_id}:amazon:{op.name}", self.rate, op.burst, sleep=sleep)

    def set_rate(self, rate: float) -> None:
        if abs(rate - self.rate) < 1e-9:
            return
        logger.info("Amazon reports %s requests/s for %s (was %s)", rate, self.key, self.rate)
        self.rate = rate
        self.window = max(1.0, self.burst / rate)
        cache.set(self.rate_key, rate, timeout=RATE_MEMORY)

    def wait(self) -> float:
        """Seconds until a request may go, without taking one."""
        now = time.time()
        paused = float(cache.get(f"{self.key}:paused") or 0)
        if self.remaining() > 0:
            return max(0.0, paused - now)
        window_end = (int(now // self.window) + 1) * self.window
        return max(window_end, paused) - now


def parse_rate(value: str | None) -> float | None:
    try:
        rate = float(value or "")
    except ValueError:
        return None
    return rate if 0 < rate < 10_000 else None


class LwaTokens(SharedToken):
    """One connection's LWA access tokens, shared by its workers through the cache."""

    label = "LWA token"

    def __init__(self, client: HttpClient, url: str, form: dict[str, str], cache_id: str) -> None:
        # Keyed by the credentials too: a new refresh token or client never uses the old one's token.
        digest = hashlib.sha256(f"{form['client_id']}\n{form['refresh_token']}".encode()).hexdigest()[:16]
        super().__init__(client, f"amazon:lwa:{cache_id}:{digest}")
        self.url = url
        self.form = {"grant_type": "refresh_token", **form}

    def mint(self, retry: bool) -> tuple[str, int]:
        previous, self.client.budget = self.client.budget, None  # LWA is not an SP-API operation
        try:
            body = self.client.json("POST", self.url, data=self.form, headers=JSON, retry=retry)
        except IntegrationError as error:
            # LWA answers invalid_grant (a refresh token expired or revoked) with 400, and
            # invalid_client (a wrong or rotated client secret) with 401.
            if error.status == 400:
                raise AuthError(REVOKED, hint=HINT_REAUTHORISE, status=400) from error
            if error.status in (401, 403):
                raise AuthError("Login with Amazon refused the LWA client.", hint=HINT_CLIENT, status=401) from error
            raise
        finally:
            self.client.budget = previous
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise BadResponse("Login with Amazon answered without an access token.")
        return token, lifetime_of(body, 3600)


class SpApi:
    """Calls SP-API operations with a shared access token and each operation's own budget."""

    def __init__(
        self,
        client: HttpClient,
        base_url: str,
        tokens: LwaTokens,
        cache_id: str,
        operations: dict[str, Operation] | None = None,
    ) -> None:
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.tokens = tokens
        self.cache_id = cache_id
        self.operations = operations or OPERATIONS
        self._budgets: dict[str, OperationBudget] = {}

    def budget(self, name: str) -> OperationBudget:
        if name not in self._budgets:
            self._budgets[name] = OperationBudget(self.cache_id, self.operations[name], sleep=self.client.sleep)
        return self._budgets[name]

    def call(
        self,
        name: str,
        params: dict[str, Any] | None = None,
        *,
        path: dict[str, str] | None = None,
        body: Any = None,
        retry: bool = True,
        max_wait: float | None = None,
    ) -> Any:
        """Call one operation with its method; lists in `params` go comma-separated, as SP-API reads
        them, and `body` as JSON. An answer without content (204) is None."""
        operation = self.operations[name]
        budget = self.budget(name)
        if max_wait is not None and (wait := budget.wait()) > max_wait:
            raise BudgetSpent(name, wait)
        url = self.base_url + operation.path.format(**{k: quote(v, safe="") for k, v in (path or {}).items()})
        query = {k: ",".join(v) if isinstance(v, list) else v for k, v in (params or {}).items() if v is not None}
        request = {"method": operation.method, "url": url, "query": query, "body": body, "retry": retry}
        token = self.tokens.get(retry=retry)
        try:
            return self._send(budget, token, **request)
        except (AuthError, PermissionDenied):
            logger.info("Amazon refused the access token for %s; renewing it once", name)
        token = self.tokens.refresh(token, retry=retry)
        try:
            return self._send(budget, token, **request)
        except AuthError as error:
            raise AuthError(REVOKED, hint=HINT_REAUTHORISE, status=error.status) from error

    def _send(
        self,
        budget: OperationBudget,
        token: str,
        *,
        method: str,
        url: str,
        query: dict[str, Any],
        body: Any,
        retry: bool,
    ) -> Any:
        errors: list[str] = []

        def observe(response: Any, *args: Any, **kwargs: Any) -> Any:
            if (rate := parse_rate(response.headers.get(RATE_HEADER))) is not None:
                budget.set_rate(rate)
            if response.status_code >= 400:
                errors.append(amazon_errors(response))
            return response

        headers = {**JSON, "x-amz-access-token": token, "User-Agent": USER_AGENT}
        previous, self.client.budget = self.client.budget, budget
        try:
            response = self.client.request(
                method, url, params=query, json=body, headers=headers, retry=retry, hooks={"response": observe}
            )
        except IntegrationError as error:
            if errors and errors[-1] and error.status not in (401, 429) and error.status and error.status < 500:
                raise type(error)(f"{error.message} {errors[-1]}", hint=error.hint, status=error.status) from error
            raise
        finally:
            self.client.budget = previous
        if response.status_code == 204:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise BadResponse("The platform answered with malformed JSON.", status=response.status_code) from exc


def amazon_errors(response: Any) -> str:
    """Amazon's own words for a refused request (its ErrorList), for the error message."""
    try:
        body = response.json()
    except ValueError:
        return ""
    items = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(items, list):
        return ""
    parts = []
    for item in items[:3]:
        if not isinstance(item, dict):
            continue
        part = ": ".join(str(item[k]) for k in ("code", "message") if item.get(k))
        details = str(item.get("details") or "")
        if details and details != item.get("message"):
            part = f"{part} ({details})" if part else details
        parts.append(part)
    return "; ".join(part for part in parts if part)[:500]
