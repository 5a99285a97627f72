"""Shopify's GraphQL transport: the ShopifyAPI package's `GraphQL` client sent through our
`HttpClient`, the cost-based throttle, and Shopify's GraphQL errors turned into ours.

Shopify limits a shop's GraphQL calls by a leaky bucket of query points. Every answer reports the
bucket (`extensions.cost.throttleStatus`) and what the query asked for (`requestedQueryCost`).
Before a query the client sleeps until the bucket, restored at its reported rate since it was
last seen, holds the query's expected cost; a THROTTLED answer waits the same way and is retried.
The bucket's last known state sits in the cache, so every worker syncing a connection sees it.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from typing import Any

import shopify
from django.core.cache import cache

from ..errors import BadResponse, PermissionDenied, RateLimited, Unavailable
from ..http import HttpClient

logger = logging.getLogger(__name__)

SCOPE_IN_MESSAGE = re.compile(r"`(\w+)`")


class QueryTooCostly(BadResponse):
    """Shopify's MAX_COST_EXCEEDED: the query asks for more points than one query may cost."""


class CostThrottle:
    """The shop's leaky bucket of query points as Shopify last described it, with the cost each
    operation last asked for. Nothing about the bucket is assumed: its size and restore rate
    depend on the shop's plan and come from each answer."""

    def __init__(self, key: str, sleep: Callable[[float], None]) -> None:
        self.key = f"shopify:throttle:{key}"
        self.sleep = sleep

    def wait(self, operation: str, cost: float | None = None) -> float:
        """Sleep until the bucket holds `cost` (default: the operation's last requested cost);
        return the time slept."""
        state = cache.get(self.key)
        if not state:
            return 0.0
        cost = state["expected"].get(operation) if cost is None else cost
        if not cost or state["rate"] <= 0:
            return 0.0
        cost = min(cost, state["maximum"])
        available = min(state["maximum"], state["available"] + state["rate"] * max(0.0, time.time() - state["at"]))
        # A point to spare, so a restore Shopify rounds down does not throttle the query anyway.
        delay = (cost + 1 - available) / state["rate"] if available < cost else 0.0
        if delay:
            logger.info("Shopify's bucket holds %.0f of the %.0f points needed; waiting %.1f s", available, cost, delay)
            self.sleep(delay)
            available = cost
        # Spend the points now, so another worker that reads the bucket before this answer arrives waits too.
        cache.set(self.key, {**state, "available": available - cost, "at": time.time()}, timeout=3600)
        return delay

    def update(self, operation: str, extensions: Any) -> None:
        cost = (extensions.get("cost") if isinstance(extensions, dict) else None) or {}
        status = cost.get("throttleStatus") or {}
        try:
            state = {
                "maximum": float(status["maximumAvailable"]),
                "available": float(status["currentlyAvailable"]),
                "rate": float(status["restoreRate"]),
                "at": time.time(),
                "expected": dict((cache.get(self.key) or {}).get("expected") or {}),
            }
            if cost.get("requestedQueryCost") is not None:
                state["expected"][operation] = float(cost["requestedQueryCost"])
        except (KeyError, TypeError, ValueError):
            return
        cache.set(self.key, state, timeout=3600)


class ShopifyGraphQL(shopify.GraphQL):
    """The package's GraphQL client, with the endpoint and headers given rather than read from its
    global session, sent through our HttpClient and cost throttle. `execute` returns the decoded
    answer's `data` (the package's returns the raw text) and raises an IntegrationError instead."""

    max_throttled_retries = 5

    def __init__(self, endpoint: str, headers: dict[str, str], *, http: HttpClient, throttle: CostThrottle) -> None:
        # Not calling super().__init__(): it reads ShopifyResource's process-wide site and token.
        self.endpoint = endpoint
        self.headers = headers
        self.http = http
        self.throttle = throttle

    def execute(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        operation_name: str | None = None,
        *,
        retry: bool = True,
        partial: bool = False,
    ) -> dict[str, Any]:
        headers = self.merge_headers({"Accept": "application/json", "Content-Type": "application/json"}, self.headers)
        payload = json.dumps({"query": query, "variables": variables or {}, "operationName": operation_name})
        operation = operation_name or "query"
        throttled = False
        for _attempt in range(self.max_throttled_retries + 1):
            if not self.throttle.wait(operation) and throttled:
                self.http.sleep(1.0)  # throttled without a bucket to compute the wait from
            response = self.http.request("POST", self.endpoint, data=payload, headers=headers, retry=retry)
            try:
                body = response.json()
            except ValueError as exc:
                raise BadResponse("Shopify answered with malformed JSON.", status=response.status_code) from exc
            if not isinstance(body, dict):
                raise BadResponse("Shopify answered with an unexpected shape.", status=response.status_code)
            self.throttle.update(operation, body.get("extensions"))
            if "THROTTLED" not in _error_codes(body):
                return _data(body, partial=partial)
            throttled = True
            if not retry:
                break
        raise RateLimited(
            "Shopify kept throttling the query.", hint="The shop's API points are spent; the sync resumes later."
        )


def _error_codes(body: dict[str, Any]) -> list[str]:
    errors = body.get("errors") or []
    if not isinstance(errors, list):
        return []
    return [str((e.get("extensions") or {}).get("code") or "") for e in errors if isinstance(e, dict)]


def _data(body: dict[str, Any], *, partial: bool) -> dict[str, Any]:
    """The answer's data, or the error its `errors` describe. With `partial`, fields denied for a
    missing scope come back as nulls instead (the check reports scopes itself)."""
    errors = body.get("errors")
    data = body.get("data")
    if errors:
        if not isinstance(errors, list):
            errors = [{"message": str(errors)}]
        codes = _error_codes(body)
        message = "; ".join(str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors)[:500]
        denied = codes.count("ACCESS_DENIED")
        if not (partial and data and denied == len(errors)):
            if denied:
                scopes = SCOPE_IN_MESSAGE.findall(json.dumps(errors))
                hint = f"The app lacks {scopes[0] if scopes else 'a required scope'}: add it to the app's scopes."
                raise PermissionDenied(f"Shopify denied access: {message}", hint=hint, status=403)
            if "MAX_COST_EXCEEDED" in codes:
                raise QueryTooCostly(f"Shopify refused the query as too costly: {message}")
            if "INTERNAL_SERVER_ERROR" in codes:
                raise Unavailable(f"Shopify failed on the query: {message}")
            raise BadResponse(f"Shopify refused the query: {message}")
    if not isinstance(data, dict):
        raise BadResponse("Shopify answered without data.")
    return data
