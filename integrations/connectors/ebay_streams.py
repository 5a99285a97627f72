"""eBay's streams: orders by last-modified time in windows; inventory items swept by offset.

Orders (getOrders, `filter=lastmodifieddate:[after..before]`, `limit`/`offset`) are read in
windows of at most `WINDOW`, `before` at least `LAG` in the past (eBay refuses end dates in the
future). The cursor keeps the watermark: the end of the last window read to its last page. A window
starts at the watermark less `OVERLAP`, so an order indexed a little late is still seen (ingest
skips what did not change). A first sync reaches back `LOOKBACK`, the two years getOrders keeps.

While a window pages, the cursor keeps it with the next page's offset and eBay's total (`sweep`),
and a run that finds it goes on from there. The window ended in the past, so its orders can only
leave it while it is read (an order modified since moves beyond it, into a later window): when
eBay's total is smaller than on the page before, the next offset steps back by the difference, so
no order that moved up a place is skipped (ingest skips the ones read twice).

    {"watermark": iso, "sweep": {"after": iso, "before": iso, "offset": n, "total": n}}

Inventory items (getInventoryItems) cannot be asked for what changed: every run sweeps them all.
The next page is at the offset of eBay's `next` link (the description calls the offset a page
number, an item's position elsewhere: whichever it is, eBay's own link has it right). The cursor
keeps that offset while a sweep pages, so an interrupted sweep goes on from it, and
`{"swept_at": iso}` once it is done; the next sweep starts from the first page.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from ..errors import BadResponse
from . import ebay_client
from . import ebay_mapping as mapping
from .base import Page

if TYPE_CHECKING:
    from .ebay import EbayConnector

logger = logging.getLogger(__name__)

ORDERS = "/sell/fulfillment/v1/order"
INVENTORY_ITEMS = "/sell/inventory/v1/inventory_item"
ORDER_PAGE = 200  # getOrders' maximum
ITEM_PAGE = 100  # getInventoryItems' maximum
LAG = timedelta(minutes=2)
OVERLAP = timedelta(minutes=5)
WINDOW = timedelta(days=30)
LOOKBACK = timedelta(days=729)


def param_time(moment: datetime) -> str:
    """eBay's timestamp form: UTC with milliseconds, 2025-01-15T12:00:00.000Z."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def order_filter(after: datetime, before: datetime) -> str:
    return f"lastmodifieddate:[{param_time(after)}..{param_time(before)}]"


def order_pages(connector: EbayConnector, cursor: dict[str, Any]) -> Iterator[Page]:
    state = copy.deepcopy(cursor)
    end = ebay_client.now() - LAG
    sweep = resumable(state.pop("sweep", None))
    if sweep is not None:
        after, before, offset, seen_total = sweep
    else:
        watermark = mapping.time_of(state.get("watermark"))
        after = watermark - OVERLAP if watermark else end - LOOKBACK
        before, offset, seen_total = min(after + WINDOW, end), 0, None
    read = False
    while after < before:
        while True:
            params = {"filter": order_filter(after, before), "limit": ORDER_PAGE, "offset": offset}
            body = connector.api.get(ORDERS, params)
            if not isinstance(body, dict) or not isinstance(body.get("orders", []), list):
                raise BadResponse("eBay's getOrders answer has no list of orders.")
            orders = body.get("orders") or []
            records = connector.parse_all("orders", orders, id_of=lambda o: o.get("orderId"))
            total = body["total"] if isinstance(body.get("total"), int) else None
            following = offset + len(orders)
            if seen_total is not None and total is not None and total < seen_total:
                following = max(0, offset - (seen_total - total))
            if orders and body.get("next"):
                state["sweep"] = {
                    "after": param_time(after),
                    "before": param_time(before),
                    "offset": following,
                    "total": total,
                }
                yield Page(records, copy.deepcopy(state))
                read, offset, seen_total = True, following, total
                continue
            state.pop("sweep", None)
            state["watermark"] = param_time(before)
            yield Page(records, copy.deepcopy(state))
            read = True
            break
        after, offset, seen_total = before, 0, None
        before = min(after + WINDOW, end)
    if not read:  # nothing to read (a clock set back): the cursor is still committed
        yield Page([], copy.deepcopy(state))


def resumable(sweep: Any) -> tuple[datetime, datetime, int, int | None] | None:
    """The window a run left paging, if the cursor's mark of it is whole."""
    if not isinstance(sweep, dict):
        return None
    try:
        after, before = mapping.time_of(sweep["after"]), mapping.time_of(sweep["before"])
        offset = int(sweep["offset"])
        total = sweep.get("total")
    except (KeyError, TypeError, ValueError):
        return None
    if after is None or before is None or offset < 0:
        return None
    return after, before, offset, total if isinstance(total, int) else None


def item_pages(connector: EbayConnector, stream: str, cursor: dict[str, Any]) -> Iterator[Page]:
    """The `products` or `inventory` stream: every inventory item of the seller."""
    started = ebay_client.now()
    try:
        offset = max(0, int(cursor.get("offset") or 0))
    except (TypeError, ValueError):
        offset = 0
    while True:
        body = connector.api.get(INVENTORY_ITEMS, {"limit": ITEM_PAGE, "offset": offset})
        if not isinstance(body, dict) or not isinstance(body.get("inventoryItems", []), list):
            raise BadResponse("eBay's getInventoryItems answer has no list of inventory items.")
        items = body.get("inventoryItems") or []
        payloads = mapping.product_payloads(items) if stream == "products" else items
        records = connector.parse_all(stream, payloads, id_of=lambda p: p.get("sku"))
        total = body["total"] if isinstance(body.get("total"), int) else None
        following = next_offset(body.get("next"))
        if items and following is not None and following > offset:
            yield Page(records, {"offset": following}, total=total)
            offset = following
            continue
        if items and body.get("next") and following is None:
            logger.warning("eBay's next link %r has no offset; the sweep of %s ends here", body["next"], stream)
        yield Page(records, {"swept_at": param_time(started)}, total=total)
        return


def next_offset(link: Any) -> int | None:
    if not isinstance(link, str) or not link:
        return None
    try:
        return int(parse_qs(urlsplit(link).query)["offset"][0])
    except (KeyError, IndexError, ValueError):
        return None
