"""What the commerce webhook handlers share: reading the payload, mapping it, writing it through
commerce ingest, and saying what happened."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from commerce import metrics
from commerce.ingest import Source, ingest
from commerce.records import IngestResult
from webhooks.errors import Unprocessable
from webhooks.models import WebhookEvent

from ..connectors import shopify_rest_mapping as rest

Handler = Callable[[WebhookEvent], str]
MALFORMED = (KeyError, IndexError, TypeError, ValueError, AttributeError, ArithmeticError)


class NotYet(LookupError):
    """The payload points at a record the hub has not stored yet (stock of an unsynced variant):
    retried, since its own delivery or the next sync usually brings it."""


def payload_of(event: WebhookEvent) -> dict[str, Any]:
    try:
        data = event.data
    except ValueError as exc:
        raise Unprocessable(f"The body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise Unprocessable("The payload is not a JSON object.")
    return data


def source_of(event: WebhookEvent) -> Source:
    connection = event.connection
    if event.tenant_id != connection.tenant_id:
        raise Unprocessable("The event's tenant is not its connection's.")
    return Source(connection.tenant_id, connection.pk, connection.platform)


def map_payload(what: str, mapper: Callable, *args: Any) -> Any:
    try:
        return mapper(*args)
    except rest.ShopMoneyMissing:
        raise
    except MALFORMED as exc:
        raise Unprocessable(f"The {what} payload does not map: {type(exc).__name__}: {exc}") from exc


def write(event: WebhookEvent, stream: str, records: list, subject: str) -> str:
    source = source_of(event)
    result = ingest(stream, source, records)
    if result.failures:
        raise NotYet("; ".join(failure.error for failure in result.failures))
    metrics.invalidate(source.tenant_id)
    return outcome(subject, result)


def outcome(subject: str, result: IngestResult) -> str:
    if result.created + result.updated + result.unchanged > 1:
        return f"{subject}: {result.created} created, {result.updated} updated, {result.unchanged} left alone"
    if result.created:
        return f"{subject} created"
    if result.updated:
        return f"{subject} updated"
    return f"{subject} left alone: stored copy is as new or newer"


def scoped(model: type, source: Source):
    return model.objects.for_tenant(source.tenant_id).filter(connection_id=source.connection_id)
