"""Shopify bulk exports, for backfills too large to page through.

`bulkOperationRunQuery` starts an export on Shopify's side; it is polled through the same client
(sleeping between polls), and its JSONL result is streamed from the storage URL a line at a time
and yielded in pages of `connector.bulk_page_size`. A page's cursor names the operation and how
many records are done, so a sync that stops reads on from there while the result is kept (7 days).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import requests

from ..errors import BadResponse, IntegrationError, NotFound, PermissionDenied, Unavailable
from . import shopify_mapping as mapping
from . import shopify_queries as queries
from .base import Page

if TYPE_CHECKING:
    from .shopify import ShopifyConnector

logger = logging.getLogger(__name__)


def cursor(**values: Any) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def read(connector: ShopifyConnector, stream: str, state: dict[str, Any], total: int | None) -> Iterator[Page]:
    """Run (or resume reading, from `state`) a bulk export of `stream`. Shopify may refuse to start
    one (another is running for the app): the stream is then paged through instead."""
    operation_id, done, max_seen = state.get("bulk"), int(state.get("done") or 0), state.get("max_seen")
    response = None
    if operation_id:
        try:
            response = download(connector, wait(connector, operation_id))
        except IntegrationError as error:  # failed, expired, or its result is gone: a new export
            logger.info("Shopify bulk operation %s cannot be resumed (%s); starting over", operation_id, error.code)
            operation_id = None
    if not operation_id:
        done, max_seen = 0, None
        operation_id = start(connector, stream)
        if operation_id is None:
            yield from connector.read_pages(stream, {}, total)
            return
        response = download(connector, wait(connector, operation_id))
    batch: list[Any] = []
    seen = 0
    for node in nodes(connector, response) if response is not None else ():
        seen += 1
        if seen <= done:
            continue
        batch.append(node)
        if len(batch) >= connector.bulk_page_size:
            max_seen = mapping.latest_update(max_seen, batch)
            page_cursor = cursor(bulk=operation_id, done=seen, max_seen=max_seen)
            yield Page(connector.parse_nodes(stream, batch), page_cursor, total)
            batch = []
    max_seen = mapping.latest_update(max_seen, batch)
    yield Page(connector.parse_nodes(stream, batch), cursor(since=max_seen), total)


def start(connector: ShopifyConnector, stream: str) -> str | None:
    data = connector.query(queries.BULK_RUN, {"query": queries.bulk(stream)}, "HubBulkRun")
    result = data.get("bulkOperationRunQuery") or {}
    errors = result.get("userErrors") or []
    operation_id = (result.get("bulkOperation") or {}).get("id")
    if errors or not operation_id:
        reason = "; ".join(str(e.get("message")) for e in errors) or "no operation"
        logger.info("Shopify refused a bulk export of %s (%s); paging through instead", stream, reason)
        return None
    return operation_id


def wait(connector: ShopifyConnector, operation_id: str) -> str | None:
    """Poll the operation until it completes; its result URL (None when it found nothing)."""
    interval, waited = connector.bulk_poll_interval, 0.0
    while True:
        node = connector.query(queries.BULK_STATUS, {"id": operation_id}, "HubBulkStatus").get("node")
        if not node:
            raise NotFound("Shopify has no such bulk operation.")
        status = node.get("status")
        if status == "COMPLETED":
            return node.get("url")
        if status not in {"CREATED", "RUNNING"}:
            code = node.get("errorCode") or status
            error = PermissionDenied if code == "ACCESS_DENIED" else Unavailable
            raise error(f"Shopify's bulk export ended {str(status).lower()} ({code}).")
        if waited >= connector.bulk_timeout:
            raise Unavailable("Shopify's bulk export did not finish in time.")
        connector.sleep(interval)
        waited += interval
        interval = min(interval * 2, connector.bulk_max_poll_interval)


def download(connector: ShopifyConnector, url: str | None) -> requests.Response | None:
    """Open the result for streaming. The URL is a signed storage address: no Shopify token goes
    with it."""
    return connector.client.request("GET", url, stream=True) if url else None


def nodes(connector: ShopifyConnector, response: requests.Response) -> Iterator[dict[str, Any]]:
    """The JSONL result, a line at a time, each root node with its children in place."""
    with response:
        try:
            yield from queries.reassemble(response.iter_lines())
        except ValueError as exc:
            raise BadResponse(f"Shopify's bulk export is malformed: {exc}") from exc
        except requests.RequestException as exc:
            hint = connector.client.hints.connection
            raise Unavailable("The bulk export download was interrupted.", hint=hint) from exc
