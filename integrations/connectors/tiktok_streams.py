"""TikTok Shop's streams: orders and products, each read by update time from a watermark.

Orders (`POST /order/202309/orders/search`) are asked for sorted by update time, oldest first,
updated in `[start, end)`: `end` is two minutes ago (an order indexed a little late is not
skipped), `start` the watermark less five minutes (ingest skips what did not change), and a first
sync has no `start`, so it reads every order. The watermark moves to `end` once the last page is
read. Page tokens are never stored, since they do not outlive their search: while a sweep pages,
the cursor keeps only how far it got (`reached`, the update time of the last order committed),
and a run that finds it starts again from there less the overlap, not from the old watermark.

    {"watermark": iso, "sweep": {"before": iso, "reached": iso}  # only while a sweep pages}

Products (`POST /product/202309/products/search`) have no sort order, so an interrupted sweep
starts again from its watermark: `{"watermark": iso}`, with `"sweep": {"before": iso}` while
paging. Their update-time range is inclusive at both ends.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..errors import BadResponse
from . import tiktok_client
from .base import Page
from .tiktok_client import iso, time_of
from .tiktok_mapping import unix_time

if TYPE_CHECKING:
    from .tiktok import TikTokConnector

ORDERS_PATH = "/order/202309/orders/search"
PRODUCTS_PATH = "/product/202309/products/search"
PAGE_SIZE = 100  # the most either search returns per page
LAG = timedelta(minutes=2)
OVERLAP = timedelta(minutes=5)


def unix(moment: datetime) -> int:
    return int(moment.timestamp())


def orders(connector: TikTokConnector, cursor: dict[str, Any]) -> Iterator[Page]:
    state = copy.deepcopy(cursor)
    interrupted = state.pop("sweep", None) or {}
    end = tiktok_client.now() - LAG
    reached = time_of(interrupted.get("reached"))
    start = max(filter(None, (time_of(state.get("watermark")), reached)), default=None)
    body: dict[str, Any] = {"update_time_lt": unix(end)}
    if start is not None:
        body["update_time_ge"] = unix(start - OVERLAP)
    query = {"page_size": PAGE_SIZE, "sort_field": "update_time", "sort_order": "ASC"}
    for data, token in _pages(connector, ORDERS_PATH, query, body, "orders"):
        items = data.get("orders") or []
        records = connector.parse_all("orders", items, id_of=lambda o: o.get("id"))
        if token:
            times = [t for t in map(_update_time, items) if t is not None]
            reached = max(filter(None, (*times, reached)), default=None)
            state["sweep"] = {"before": iso(end), **({"reached": iso(reached)} if reached else {})}
        else:
            state.pop("sweep", None)
            state["watermark"] = iso(end)
        yield Page(records, copy.deepcopy(state), total=_total(data))


def products(connector: TikTokConnector, cursor: dict[str, Any]) -> Iterator[Page]:
    state = copy.deepcopy(cursor)
    state.pop("sweep", None)
    end = tiktok_client.now() - LAG
    watermark = time_of(state.get("watermark"))
    body: dict[str, Any] = {"update_time_le": unix(end)}
    if watermark:
        body["update_time_ge"] = unix(watermark - OVERLAP)
    for data, token in _pages(connector, PRODUCTS_PATH, {"page_size": PAGE_SIZE}, body, "products"):
        records = connector.parse_all("products", data.get("products") or [], id_of=lambda p: p.get("id"))
        if token:
            state["sweep"] = {"before": iso(end)}
        else:
            state.pop("sweep", None)
            state["watermark"] = iso(end)
        yield Page(records, copy.deepcopy(state), total=_total(data))


def _pages(
    connector: TikTokConnector, path: str, query: dict[str, Any], body: dict[str, Any], key: str
) -> Iterator[tuple[dict[str, Any], str | None]]:
    """Each page's `data` with the token of the next page (None on the last)."""
    token: str | None = None
    seen: set[str] = set()
    while True:
        data = connector.call(path, query={**query, "page_token": token}, body=body)
        if not isinstance(data.get(key) or [], list):
            raise BadResponse(f"TikTok Shop's answer to {path} has no list of {key}.")
        token = data.get("next_page_token") or None
        if token in seen:
            raise BadResponse(f"TikTok Shop answered the same page token twice for {path}.")
        if token:
            seen.add(token)
        yield data, token
        if not token:
            return


def _update_time(item: Any) -> datetime | None:
    try:
        return unix_time(item.get("update_time"))
    except (AttributeError, TypeError, ValueError, OverflowError, OSError):
        return None  # a malformed order, quarantined by its mapping


def _total(data: dict[str, Any]) -> int | None:
    total = data.get("total_count")
    return total if isinstance(total, int) and not isinstance(total, bool) else None
