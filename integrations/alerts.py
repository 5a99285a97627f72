"""Alerts to superadmins: conditions checked every minute by the task worker (`check`).

- a connection whose syncs or tests failed ALERT_FAILURES_IN_A_ROW times in a row;
- a scheduled connection whose last successful sync is older than twice its sync frequency;
- webhook events waiting longer than WEBHOOK_BACKLOG_ALERT_MINUTES, or more than
  WEBHOOK_BACKLOG_ALERT_COUNT of them;
- parked webhook events (out of retries, waiting for a person's Replay).

Each condition that holds is an open `Incident`, at most one per (kind, subject): it is announced
once when it opens, however many checks find it again, and resolved (with a notice) when a check
no longer finds it. If it comes back later, a new incident opens and alerts again. Notices go by
email to every active superuser with an address, and optionally by SMS through a Twilio
connection (ALERT_SMS_CONNECTION_ID, ALERT_SMS_TO) and as a JSON POST (ALERT_WEBHOOK_URL)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Count, Min, OuterRef, Subquery
from django.urls import reverse
from django.utils import timezone

from .errors import IntegrationError
from .http import HttpClient, validate_public_url
from .models import (
    Connection,
    ConnectionStatus,
    Incident,
    IncidentKind,
    SyncFrequency,
    SyncRun,
    SyncStatus,
)
from .platforms import CATALOGUE
from .tasks import SCHEDULED_STATUSES

logger = logging.getLogger(__name__)

WEBHOOK_TIMEOUT = (3.0, 10.0)
SMS_MAX = 300


@dataclass(frozen=True)
class Finding:
    """A condition that holds now."""

    kind: str
    subject: str
    title: str
    since: datetime
    details: str = ""
    tenant_id: int | None = None
    connection_id: int | None = None


# --- The conditions --------------------------------------------------------------------------------


def failing_connections(now: datetime) -> Iterator[Finding]:
    enabled = Connection.objects.filter(enabled=True).exclude(status=ConnectionStatus.DISABLED)
    failing = enabled.filter(consecutive_failures__gte=settings.ALERT_FAILURES_IN_A_ROW).select_related("tenant")
    for c in failing:
        details = f"Last error: {c.last_error or '(none recorded)'}"
        if c.is_paused:
            details += f"\nScheduled syncs are paused until {c.paused_until:%Y-%m-%d %H:%M} UTC."
        yield Finding(
            IncidentKind.CONNECTION_FAILING,
            f"connection:{c.pk}",
            f"{c.name} ({c.tenant.name}) failed {c.consecutive_failures} times in a row",
            c.failing_since or now,
            details,
            c.tenant_id,
            c.pk,
        )


def overdue_syncs(now: datetime) -> Iterator[Finding]:
    """Connections that sync on a schedule (as `tasks.update_schedule` decides) and have not
    succeeded for twice their period. One that never succeeded counts from its last test."""
    platforms = [platform for platform, spec in CATALOGUE.items() if spec.streams]
    last_success = SyncRun.objects.filter(connection=OuterRef("pk"), status=SyncStatus.SUCCEEDED).order_by("-queued_at")
    scheduled = (
        Connection.objects.filter(
            enabled=True,
            is_demo=False,
            tenant__is_demo=False,
            status__in=SCHEDULED_STATUSES,
            platform__in=platforms,
        )
        .exclude(sync_frequency=SyncFrequency.MANUAL)
        .annotate(last_success=Subquery(last_success.values("finished_at")[:1]))
        .select_related("tenant")
    )
    for c in scheduled:
        seconds = c.frequency_seconds
        since = c.last_success or c.last_tested_at or c.created_at
        if seconds is None or now - since <= timedelta(seconds=2 * seconds):
            continue
        last = f"{c.last_success:%Y-%m-%d %H:%M} UTC" if c.last_success else "never"
        yield Finding(
            IncidentKind.SYNC_OVERDUE,
            f"connection:{c.pk}",
            f"{c.name} ({c.tenant.name}) has not synced for {_duration(now - since)}",
            since,
            f"Sync frequency: {c.get_sync_frequency_display().lower()}. Last successful sync: {last}."
            + (f"\nScheduled syncs are paused: {c.pause_reason}" if c.is_paused else ""),
            c.tenant_id,
            c.pk,
        )


def webhook_backlog(now: datetime) -> Iterator[Finding]:
    # Presentation of what the webhooks app stores (it imports integrations, so never the reverse
    # at import time).
    from webhooks.models import EventStatus, WebhookEvent

    limit = now - timedelta(minutes=settings.WEBHOOK_BACKLOG_ALERT_MINUTES)
    received = WebhookEvent.objects.filter(status=EventStatus.RECEIVED)
    waiting = received.aggregate(n=Count("pk"), oldest=Min("received_at"))
    late_retries = WebhookEvent.objects.filter(status=EventStatus.RETRYING, next_attempt_at__lt=limit).aggregate(
        n=Count("pk"), oldest=Min("next_attempt_at")
    )
    oldest = min((t for t in (waiting["oldest"], late_retries["oldest"]) if t is not None), default=None)
    too_old = oldest is not None and oldest < limit
    too_many = waiting["n"] > settings.WEBHOOK_BACKLOG_ALERT_COUNT
    if not (too_old or too_many):
        return
    busiest = received.values("connection__name", "connection__tenant__name").annotate(n=Count("pk")).order_by("-n")[:5]
    lines = [f"- {row['connection__name']} ({row['connection__tenant__name']}): {row['n']}" for row in busiest]
    yield Finding(
        IncidentKind.WEBHOOK_BACKLOG,
        "webhooks",
        f"Webhook backlog: {waiting['n']} events waiting, {late_retries['n']} retries overdue",
        oldest or now,
        "Is the task worker running? Waiting events by connection:\n" + "\n".join(lines or ["(none)"]),
    )


def parked_webhooks(now: datetime) -> Iterator[Finding]:
    from webhooks.models import EventStatus, WebhookEvent

    rows = list(
        WebhookEvent.objects.filter(status=EventStatus.PARKED)
        .values("connection_id")
        .annotate(n=Count("pk"), since=Min("received_at"))
        .order_by()
    )
    connections = Connection.objects.select_related("tenant").in_bulk([row["connection_id"] for row in rows])
    for row in rows:
        c = connections.get(row["connection_id"])
        if c is None:
            continue
        yield Finding(
            IncidentKind.WEBHOOK_PARKED,
            f"connection:{c.pk}",
            f"{row['n']} parked webhook event{'s' if row['n'] != 1 else ''} of {c.name} ({c.tenant.name})",
            row["since"],
            "They ran out of retries: fix the cause, then Replay them (admin: Webhooks → Webhook events).",
            c.tenant_id,
            c.pk,
        )


CONDITIONS = (failing_connections, overdue_syncs, webhook_backlog, parked_webhooks)


def findings(now: datetime | None = None) -> list[Finding]:
    now = now or timezone.now()
    return [finding for condition in CONDITIONS for finding in condition(now)]


# --- Incidents -------------------------------------------------------------------------------------


def check(now: datetime | None = None) -> str:
    """Every minute: open an incident for each new condition, resolve the ones that cleared, and
    send the notices. Safe to run twice at once: the open incident per (kind, subject) is a unique
    constraint, and resolving is a conditional update."""
    now = now or timezone.now()
    found = {(f.kind, f.subject): f for f in findings(now)}
    still_open = Incident.objects.filter(resolved_at__isnull=True).select_related("tenant", "connection")
    open_now = {(i.kind, i.subject): i for i in still_open}
    opened = resolved = 0
    for key, finding in found.items():
        if key not in open_now and (incident := _open(finding, now)) is not None:
            opened += 1
            notify(incident)
    for key, incident in open_now.items():
        if key in found:
            if incident.notified_at is None:
                notify(incident)  # nothing got out when it opened: try again
            continue
        if Incident.objects.filter(pk=incident.pk, resolved_at__isnull=True).update(resolved_at=now):
            incident.resolved_at = now
            resolved += 1
            notify(incident)
    return f"{len(found)} conditions hold; {opened} incidents opened, {resolved} resolved"


def _open(finding: Finding, now: datetime) -> Incident | None:
    try:
        with transaction.atomic():
            return Incident.objects.create(
                kind=finding.kind,
                subject=finding.subject,
                title=finding.title[:300],
                details=finding.details,
                tenant_id=finding.tenant_id,
                connection_id=finding.connection_id,
                since=finding.since,
                opened_at=now,
            )
    except IntegrityError:  # another check opened it a moment ago, and announces it
        return None


# --- Notices ---------------------------------------------------------------------------------------


def notify(incident: Incident) -> None:
    """Announce an incident that opened (or resolved) on every configured channel. An opening
    counts as announced when one channel delivered it (or none is configured); otherwise the next
    check tries again. What failed is kept on the incident."""
    subject, body = message(incident)
    channels = [("email", lambda: _email(subject, body))]
    if settings.ALERT_SMS_CONNECTION_ID and settings.ALERT_SMS_TO:
        channels.append(("sms", lambda: _sms(incident, subject)))
    if settings.ALERT_WEBHOOK_URL:
        channels.append(("webhook", lambda: _webhook(incident, subject)))
    errors, delivered = [], False
    for name, send in channels:
        try:
            delivered = send() or delivered
        except Exception as error:  # one channel's trouble must not stop the others
            logger.warning("Alert %s for incident %s failed: %s", name, incident.pk, error)
            errors.append(f"{name}: {error}")
    fields = {"notify_error": "\n".join(errors)[:2000]}
    if incident.resolved_at is None and (delivered or not errors):
        fields["notified_at"] = timezone.now()
    Incident.objects.filter(pk=incident.pk).update(**fields)
    for name, value in fields.items():
        setattr(incident, name, value)


def admin_url(incident: Incident) -> str:
    return settings.PUBLIC_BASE_URL + reverse("admin:integrations_incident_change", args=[incident.pk])


def message(incident: Incident) -> tuple[str, str]:
    """The email's subject and body: what, which client and connection, since when, and where."""
    state = "Resolved" if incident.resolved_at else "Alert"
    lines = [incident.title, "", f"What: {incident.get_kind_display()}"]
    if incident.tenant_id:
        lines.append(f"Client: {incident.tenant.name}")
    if incident.connection_id:
        c = incident.connection
        lines.append(f"Connection: {c.name} (#{c.pk}, {c.get_platform_display()})")
    lines.append(f"Since: {incident.since:%Y-%m-%d %H:%M} UTC")
    if incident.resolved_at:
        lasted = _duration(incident.resolved_at - incident.since)
        lines.append(f"Resolved: {incident.resolved_at:%Y-%m-%d %H:%M} UTC, after {lasted}")
    if incident.details:
        lines += ["", incident.details]
    lines += ["", f"Incident: {admin_url(incident)}"]
    if incident.connection_id:
        lines.append(
            "Connection: "
            + settings.PUBLIC_BASE_URL
            + reverse("admin:integrations_connection_change", args=[incident.connection_id])
        )
    return f"[Hub {state.lower()}] {incident.title}", "\n".join(lines) + "\n"


def superadmin_emails() -> list[str]:
    users = get_user_model().objects.filter(is_superuser=True, is_active=True).exclude(email="")
    return sorted({email for email in users.values_list("email", flat=True) if email})


def _email(subject: str, body: str) -> bool:
    recipients = superadmin_emails()
    if not recipients:
        return False
    send_mail(subject, body, None, recipients)
    return True


def _sms(incident: Incident, text: str) -> bool:
    # Sent through campaigns' messaging (which imports integrations): imported here, when needed.
    from campaigns.messaging import MessageError, send_sms
    from campaigns.models import MessageStatus

    connection = Connection.objects.select_related("tenant").filter(pk=settings.ALERT_SMS_CONNECTION_ID).first()
    if connection is None:
        raise IntegrationError(f"ALERT_SMS_CONNECTION_ID {settings.ALERT_SMS_CONNECTION_ID} is no connection.")
    event = "resolved" if incident.resolved_at else "opened"
    failures = []
    for number in settings.ALERT_SMS_TO:
        try:
            sent = send_sms(
                connection.tenant,
                connection,
                number,
                text[:SMS_MAX],
                purpose=f"alert:{incident.pk}:{event}:{number}"[:64],
                audited=False,
            )
        except MessageError as error:
            failures.append(f"{number}: {error}")
            continue
        if sent.status == MessageStatus.FAILED:
            failures.append(f"{number}: {sent.failure_message or sent.failure_code}")
    if failures:
        raise IntegrationError("; ".join(failures))
    return True


def _webhook(incident: Incident, text: str) -> bool:
    url = validate_public_url(settings.ALERT_WEBHOOK_URL)
    payload = {
        "event": "incident.resolved" if incident.resolved_at else "incident.opened",
        "id": incident.pk,
        "kind": incident.kind,
        "subject": incident.subject,
        "title": incident.title,
        "text": text,
        "tenant": incident.tenant.slug if incident.tenant_id else None,
        "connection": incident.connection_id,
        "since": incident.since.isoformat(),
        "resolved_at": incident.resolved_at.isoformat() if incident.resolved_at else None,
        "url": admin_url(incident),
    }
    HttpClient(timeout=WEBHOOK_TIMEOUT, max_retries=1).request("POST", url, json=payload)
    return True


def _duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} min"
    hours = minutes // 60
    return f"{hours} h" if hours < 48 else f"{hours // 24} days"
