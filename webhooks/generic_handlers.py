"""Handlers for the generic third-party endpoint. A service that knows something changed can ask
for a sync of the connection (topic `sync.requested`, optionally with `{"streams": [...]}`)."""

from __future__ import annotations

from integrations.models import SyncTrigger

from .errors import Unprocessable
from .models import WebhookEvent


def request_sync(event: WebhookEvent) -> str:
    from integrations.connectors import CONNECTORS
    from integrations.services import request_sync as queue_sync

    connection = event.connection
    if connection.platform not in CONNECTORS:
        raise Unprocessable(f"{connection.get_platform_display()} connections cannot be synced yet.")
    if not connection.spec.streams:
        raise Unprocessable(f"{connection.get_platform_display()} connections have nothing to sync.")
    data = event.data if isinstance(event.data, dict) else {}
    streams = data.get("streams") or None
    known = set(connection.spec.streams)
    if streams is not None and (not isinstance(streams, list) or not set(streams) <= known):
        raise Unprocessable(f"“streams” must be a list drawn from {', '.join(sorted(known))}.")
    run = queue_sync(connection, streams, trigger=SyncTrigger.WEBHOOK)
    return f"sync run {run.pk} queued"


HANDLERS = {("third-party", "sync.requested"): request_sync}
