"""Amazon's streams: orders (with refunds) by last-updated time per marketplace; FBA summaries.

Orders (searchOrders, Orders API v2026-01-01) are read per marketplace in time windows
[after, before], `before` at least three minutes in the past (Amazon wants two). The stream's
cursor keeps, per marketplace, the committed watermark: the end of the last window read to its
last page. A window starts at the watermark less `OVERLAP`, so an order indexed a little late is
still seen (ingest skips what did not change).

Page tokens are never stored: Amazon's expire after 24 hours, and a token from a run that stopped
could be stale by the next one. While a window pages, the cursor marks it (`sweep`); a run that
finds the mark restarts that window from the watermark with half its span, so a window too large
for the operation's allowance (searchOrders: 20 requests, then one every three minutes by default)
shrinks until one run gets through it. A window read with room to spare doubles the next one.
When the allowance would keep the sync waiting more than `MAX_WAIT`, the stream ends where it
is and the next run goes on from the cursor.

Refunds (Finances v0 listFinancialEvents, `RefundEventList`), by posted time from their own
watermark less a day (Amazon posts financial events late): each refunded order is fetched again
(getOrder) and sent with its refunds, since commerce takes refunds only inside their order. The
paging of a Finances v0 list by date (`financial_pages`) is the finances stream's too
(`amazon_finances`), each with its own watermark.

    {"orders": {marketplace id: iso}, "spans": {marketplace id: seconds}, "refunds": iso,
     "sweep": {"marketplace", "after", "before"}  # only while a window pages}

Products and inventory (FBA inventory summaries, details on) keep `{"marketplaces": {id: <when
the last sweep of it began>}}` and read what changed since then (`startDateTime`, less an
overlap). FBA's page tokens last 30 seconds: an interrupted sweep starts its marketplace again.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.core.cache import cache

from ..errors import BadResponse, NotFound, PermissionDenied
from . import amazon_config
from . import amazon_mapping as mapping
from .amazon_client import BudgetSpent, SpApi
from .amazon_config import Marketplace
from .base import Failed, Page

if TYPE_CHECKING:
    from commerce.records import Record

    from .amazon import AmazonConnector

logger = logging.getLogger(__name__)

PAGE_SIZE = 100
LAG = timedelta(minutes=3)
OVERLAP = timedelta(minutes=5)
REFUND_OVERLAP = timedelta(days=1)
# Amazon shows orders of the last two years; a first sync reads them all.
LOOKBACK = timedelta(days=729)
MAX_SPAN = LOOKBACK
MIN_SPAN = timedelta(hours=1)
# listFinancialEvents and listFinancialEventGroups answer nothing for a range longer than 180 days.
FINANCE_SPAN = timedelta(days=179)
MAX_WAIT = 60.0
ORDER_DATA = ["BUYER", "RECIPIENT", "PROCEEDS", "FULFILLMENT", "CANCELLATION"]
WITHOUT_PII = ["PROCEEDS", "FULFILLMENT", "CANCELLATION"]
PII_MEMORY = 86400
# FBA's startDateTime may reach back 18 months at most; older watermarks sweep everything.
INVENTORY_HORIZON = timedelta(days=540)


def param_time(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


class OrderSweep:
    def __init__(self, connector: AmazonConnector, cursor: dict[str, Any]) -> None:
        self.connector = connector
        self.api = connector.api
        self.state = copy.deepcopy(cursor)
        self.interrupted = self.state.pop("sweep", None) or {}
        self.pii_key = f"amazon:no-pii:{connector.cache_id}"
        # Refund events by order, for this run: an order refunded on two pages goes with both.
        self.refunds: dict[str, dict[str, dict[str, Any]]] = {}

    def pages(self) -> Iterator[Page]:
        self.end = amazon_config.now() - LAG
        # The marketplace furthest behind first, so that one whose turn an allowance cut short
        # is not always last.
        watermarks = self.state.get("orders") or {}
        marketplaces = sorted(self.connector.config.marketplaces, key=lambda m: watermarks.get(m.id) or "")
        try:
            for marketplace in marketplaces:
                yield from self._orders(marketplace)
        except BudgetSpent as spent:
            logger.info("Stopping the orders of connection %s: %s", self.connector.cache_id, spent.message)
        try:
            yield from self._refunds()
        except BudgetSpent as spent:
            logger.info("Stopping the refunds of connection %s: %s", self.connector.cache_id, spent.message)
        except PermissionDenied:
            # Orders still sync; the connection's test names the missing role.
            logger.warning("Connection %s cannot read financial events: refunds are skipped", self.connector.cache_id)
        # The cursor as it ends (a window's mark dropped or kept) is committed even when nothing was read.
        yield self._page([])

    def _page(self, records: list[Record | Failed]) -> Page:
        return Page(records, copy.deepcopy(self.state))

    # --- Orders ---

    def _orders(self, marketplace: Marketplace) -> Iterator[Page]:
        watermarks = self.state.setdefault("orders", {})
        spans = self.state.setdefault("spans", {})
        span = timedelta(seconds=float(spans.get(marketplace.id) or MAX_SPAN.total_seconds()))
        if self.interrupted.get("marketplace") == marketplace.id:
            span = max(MIN_SPAN, span / 2)
            spans[marketplace.id] = span.total_seconds()
        watermark = mapping.time_of(watermarks.get(marketplace.id))
        after = watermark - OVERLAP if watermark else self.end - LOOKBACK
        while after < self.end:
            before = min(after + span, self.end)
            token, pages = None, 0
            while True:
                body = self._search(marketplace, after, before, token)
                orders = body.get("orders") if isinstance(body, dict) else None
                if not isinstance(orders, list):
                    raise BadResponse("Amazon's searchOrders answer has no orders.")
                pages += 1
                records = self.connector.parse_all("orders", orders, id_of=lambda o: o.get("orderId"))
                token = (body.get("pagination") or {}).get("nextToken")
                if token:
                    self.state["sweep"] = {
                        "marketplace": marketplace.id,
                        "after": param_time(after),
                        "before": param_time(before),
                    }
                    yield self._page(records)
                    continue
                self.state.pop("sweep", None)
                watermarks[marketplace.id] = param_time(before)
                if pages <= 2 and before - after >= span:
                    span = min(MAX_SPAN, span * 2)
                spans[marketplace.id] = span.total_seconds()
                yield self._page(records)
                break
            after = before

    def _search(self, marketplace: Marketplace, after: datetime, before: datetime, token: str | None) -> Any:
        params = {
            "lastUpdatedAfter": param_time(after),
            "lastUpdatedBefore": param_time(before),
            "marketplaceIds": [marketplace.id],
            "maxResultsPerPage": PAGE_SIZE,
            "paginationToken": token,
        }
        return self._with_order_data("searchOrders", params)

    def _with_order_data(self, operation: str, params: dict[str, Any], path: dict[str, str] | None = None) -> Any:
        """Ask for the buyer and recipient too, unless Amazon refused them to this app: then
        remember that for a day and ask without them."""
        if not cache.get(self.pii_key):
            try:
                return self.api.call(operation, {**params, "includedData": ORDER_DATA}, path=path, max_wait=MAX_WAIT)
            except PermissionDenied:
                logger.warning("Amazon refused buyer details (%s); reading orders without them", self.pii_key)
                cache.set(self.pii_key, True, timeout=PII_MEMORY)
        return self.api.call(operation, {**params, "includedData": WITHOUT_PII}, path=path, max_wait=MAX_WAIT)

    # --- Refunds ---

    def _refunds(self) -> Iterator[Page]:
        watermark = mapping.time_of(self.state.get("refunds"))
        after = watermark - REFUND_OVERLAP if watermark else self.end - LOOKBACK
        for payload, window_end in financial_pages(self.api, "listFinancialEvents", after, self.end):
            events = (payload.get("FinancialEvents") or {}).get("RefundEventList") or []
            records = self._refunded_orders([e for e in events if isinstance(e, dict)])
            if window_end is not None:
                self.state["refunds"] = param_time(window_end)
            yield self._page(records)

    def _refunded_orders(self, events: list[dict[str, Any]]) -> list[Record | Failed]:
        """Each refunded order of these events, fetched again and carrying its refunds."""
        ours = {m.id for m in self.connector.config.marketplaces}
        names = {m.name.lower() for m in self.connector.config.marketplaces}
        known = {m.name.lower() for m in mapping.MARKETPLACES.values()}
        payloads: list[Any] = []
        failed: list[Record | Failed] = []
        for order_id, page_events in mapping.refunded_order_ids(events).items():
            known_events = self.refunds.setdefault(order_id, {})
            known_events.update((mapping.refund_id(order_id, event), event) for event in page_events)
            order_events = list(known_events.values())
            market = str(order_events[0].get("MarketplaceName") or "").lower()
            if market in known and market not in names:
                continue  # a marketplace this connection does not sync
            try:
                body = self._with_order_data("getOrder", {}, path={"orderId": order_id})
            except NotFound:
                payload = {"orderId": order_id, mapping.HUB: {"refunds": order_events}}
                failed.append(Failed(order_id, payload, "NotFound: Amazon no longer shows the refunded order."))
                continue
            order = body.get("order") if isinstance(body, dict) else None
            if not isinstance(order, dict):
                raise BadResponse("Amazon's getOrder answer has no order.")
            if (order.get("salesChannel") or {}).get("marketplaceId") not in ours:
                continue
            payloads.append({**order, mapping.HUB: {"refunds": order_events}})
        return [*failed, *self.connector.parse_all("orders", payloads, id_of=lambda p: p.get("orderId"))]


# The date parameters of the Finances v0 operations read by date.
POSTED_RANGE = {
    "listFinancialEvents": ("PostedAfter", "PostedBefore"),
    "listFinancialEventGroups": ("FinancialEventGroupStartedAfter", "FinancialEventGroupStartedBefore"),
}


def financial_pages(
    api: SpApi, operation: str, after: datetime, end: datetime
) -> Iterator[tuple[dict, datetime | None]]:
    """Every page of a Finances v0 list from `after` to `end`, in windows of `FINANCE_SPAN` (Amazon
    answers nothing for a longer one), each paged with its NextToken: `(payload, window_end)`,
    where `window_end` is the end of the window on its last page and None on the others. Shared
    by the refunds of the orders stream and the finances stream, which keep watermarks of their
    own; a page token is only ever sent with the arguments it came with, as Amazon wants."""
    after_key, before_key = POSTED_RANGE[operation]
    while after < end:
        before = min(after + FINANCE_SPAN, end)
        token = None
        while True:
            params = {
                after_key: param_time(after),
                before_key: param_time(before),
                "MaxResultsPerPage": PAGE_SIZE,
                "NextToken": token,
            }
            body = api.call(operation, params, max_wait=MAX_WAIT)
            payload = (body.get("payload") if isinstance(body, dict) else None) or {}
            if not isinstance(payload, dict):
                raise BadResponse(f"Amazon's {operation} answer has no payload.")
            token = payload.get("NextToken")
            yield payload, None if token else before
            if not token:
                break
        after = before


def summaries(connector: AmazonConnector, stream: str, cursor: dict[str, Any]) -> Iterator[Page]:
    """The `products` or `inventory` stream: FBA inventory summaries of each marketplace."""
    state = copy.deepcopy(cursor)
    swept = state.setdefault("marketplaces", {})
    for marketplace in connector.config.marketplaces:
        started = amazon_config.now()
        since = mapping.time_of(swept.get(marketplace.id))
        params: dict[str, Any] = {
            "details": "true",
            "granularityType": "Marketplace",
            "granularityId": marketplace.id,
            "marketplaceIds": [marketplace.id],
        }
        if since is not None and started - since < INVENTORY_HORIZON:
            params["startDateTime"] = param_time(since - OVERLAP)
        token = None
        while True:
            body = connector.api.call("getInventorySummaries", {**params, "nextToken": token})
            items = (body.get("payload") or {}).get("inventorySummaries") if isinstance(body, dict) else None
            if not isinstance(items, list):
                raise BadResponse("Amazon's inventory answer has no inventorySummaries.")
            if stream == "products":
                payloads = mapping.product_payloads(items, marketplace.id)
            else:
                hub = {mapping.HUB: {"marketplace": marketplace.id}}
                payloads = [{**item, **hub} if isinstance(item, dict) else item for item in items]
            records = connector.parse_all(stream, payloads, id_of=lambda p: p.get("asin") or p.get("sellerSku"))
            token = (body.get("pagination") or {}).get("nextToken")
            if not token:
                swept[marketplace.id] = param_time(started)
            yield Page(records, copy.deepcopy(state))
            if not token:
                break
