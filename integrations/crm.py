"""Pushing the hub's customers to a CRM as contacts: the push half of a CRM connection's sync.

A CRM connector (HubSpot, Salesforce) has two kinds of stream. Its `streams` are read like any
platform's: `customers` pulls the CRM's contacts (their lists as tags) into commerce, where segments
find them. Its `push_streams` go the other way: `contacts` upserts every person whose customer rows
or orders changed since the last push (`commerce.exports`), keyed by email, with their order
figures as properties.

The push runs inside the same sync run, under the same lease, with the same counts and progress:

- The window is (the cursor's `since`, the run's start]. Its end is fixed when the push starts and
  kept in the cursor, so a push that stops half-way resumes with the same window, after the last
  email it committed (`after`), and a person changed during the push is in the next window.
- Each batch is one call to the connector's `push(stream, contacts)`, then the position is
  committed. A batch that fails with an `IntegrationError` stops the run (retried like any sync);
  contacts the CRM refuses one by one are counted as failed with its reason, and the push goes on.
- Contacts from CRM connections themselves are never pushed (see commerce.exports).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from commerce.exports import Contact, changed_emails, contacts

from .platforms import Kind

if TYPE_CHECKING:
    from .connectors.base import Connector
    from .models import Connection, SyncRun

__all__ = ["Contact", "PushOutcome", "push_stream"]


@dataclass
class PushOutcome:
    """What the CRM did with one batch."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (email, the CRM's reason)


def crm_connection_ids(tenant_id: int) -> list[int]:
    from .models import Connection
    from .platforms import CATALOGUE

    crm = [platform for platform, spec in CATALOGUE.items() if spec.kind == Kind.CRM]
    return list(Connection.objects.for_tenant(tenant_id).filter(platform__in=crm).values_list("pk", flat=True))


def push_stream(
    connector: Connector,
    connection: Connection,
    run: SyncRun,
    stream: str,
    commit_position,
    *,
    on_progress=None,
) -> None:
    """Push every changed contact of the connection's tenant through `connector.push`, a batch at a
    time, committing the position (`commit_position(stream, cursor)`) with each batch's counts."""
    stored = {} if run.full else dict((connection.cursors or {}).get(stream) or {})
    since = _time(stored.get("since"))
    until = _time(stored.get("until")) or timezone.now()
    after = str(stored.get("after") or "")
    excluded = crm_connection_ids(connection.tenant_id)
    currency = connection.tenant.base_currency
    counts = run.counts.setdefault(stream, {"created": 0, "updated": 0, "unchanged": 0, "failed": 0})
    progress = run.progress.setdefault(stream, {"seen": 0, "total": None, "done": False})
    errors = progress.setdefault("errors", [])
    size = max(1, int(getattr(connector, "push_batch_size", 100)))
    while True:
        emails = changed_emails(
            connection.tenant_id, since, until, after=after, limit=size, exclude_connection_ids=excluded
        )
        if not emails:
            break
        batch = contacts(connection.tenant_id, emails, currency=currency, exclude_connection_ids=excluded)
        outcome: PushOutcome = connector.push(stream, batch) if batch else PushOutcome()
        after = emails[-1]
        with transaction.atomic():
            commit_position(stream, {"since": _iso(since), "until": _iso(until), "after": after})
            counts["created"] += outcome.created
            counts["updated"] += outcome.updated
            counts["unchanged"] += outcome.unchanged
            counts["failed"] += len(outcome.failed)
            # The last few refusals, for a person; the reason is the CRM's, never a credential.
            errors[:] = (errors + [{"email": e, "error": r[:300]} for e, r in outcome.failed])[-20:]
            progress["seen"] += len(emails)
            run.heartbeat_at = timezone.now()
            run.save(update_fields=["counts", "progress", "heartbeat_at"])
        if on_progress:
            on_progress(run)
    # The window is done: the next push starts where this one ended.
    commit_position(stream, {"since": _iso(until)})
    progress["done"] = True
    run.save(update_fields=["progress"])


def _time(value) -> datetime | None:
    return parse_datetime(value) if isinstance(value, str) and value else None


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value else ""
