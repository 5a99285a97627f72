from __future__ import annotations

import uuid
from datetime import UTC as UTC_TZ
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from tenants.fields import EncryptedJSONField
from tenants.models import TenantOwned

from .platforms import CATALOGUE, Kind, Platform


class ConnectionStatus(models.TextChoices):
    UNTESTED = "untested", "Untested"
    CONNECTED = "connected", "Connected"
    FAILING = "failing", "Failing"
    NEEDS_REAUTH = "needs_reauth", "Needs reauthorisation"
    DISCONNECTED = "disconnected", "Disconnected"  # the app was uninstalled on the platform
    DISABLED = "disabled", "Disabled"


class SyncFrequency(models.TextChoices):
    MANUAL = "manual", "Manual only"
    EVERY_15_MIN = "15m", "Every 15 minutes"
    HOURLY = "1h", "Hourly"
    EVERY_6_HOURS = "6h", "Every 6 hours"
    DAILY = "1d", "Daily"
    WEEKLY = "7d", "Weekly"


FREQUENCY_SECONDS = {
    SyncFrequency.EVERY_15_MIN: 15 * 60,
    SyncFrequency.HOURLY: 3600,
    SyncFrequency.EVERY_6_HOURS: 6 * 3600,
    SyncFrequency.DAILY: 86400,
    SyncFrequency.WEEKLY: 7 * 86400,
}


# The secret the hub generates for a connection's generic (third-party) webhook endpoint; kept in
# the credentials beside the platform's own, so it is encrypted and rotated the same way.
HUB_WEBHOOK_SECRET = "hub_webhook_secret"  # noqa: S105 (a field name)


class Connection(TenantOwned):
    """One tenant's account on one platform. Credentials are encrypted at rest."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="connections")
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    platform = models.CharField(max_length=32, choices=Platform.choices)
    name = models.CharField(max_length=100)
    credentials = EncryptedJSONField()
    # Credential values replaced in the last WEBHOOK_SECRET_GRACE_SECONDS, with when they lapse:
    # {"name": [{"value": ..., "until": iso}]}. Webhooks signed with a rotated secret (Shopify
    # keeps signing with the old one for an hour) still verify until then.
    previous_credentials = EncryptedJSONField(editable=False)
    base_url = models.URLField(
        "base URL override", blank=True, help_text="Sandbox, self-hosted or test server address; empty for the default."
    )
    status = models.CharField(max_length=16, choices=ConnectionStatus.choices, default=ConnectionStatus.UNTESTED)
    last_tested_at = models.DateTimeField(null=True, blank=True)
    last_test_result = models.JSONField(default=dict, blank=True)
    last_error = models.TextField(blank=True)
    sync_frequency = models.CharField(max_length=8, choices=SyncFrequency.choices, default=SyncFrequency.HOURLY)
    enabled = models.BooleanField(default=True)
    cursors = models.JSONField(default=dict, blank=True, help_text="Per-stream sync position.")
    is_demo = models.BooleanField(default=False)
    # The per-connection sync lease: a run holds it while it works and renews it per page; a run
    # whose worker died loses it when it expires, so the next run can take over.
    sync_lease_until = models.DateTimeField(null=True, blank=True, editable=False)
    sync_lease_owner = models.CharField(max_length=64, blank=True, editable=False)
    # Failed sync runs and tests since the last success (alerts, and the circuit breaker: from
    # CIRCUIT_BREAKER_FAILURES on, scheduled syncs wait until `paused_until`; see integrations.tasks).
    consecutive_failures = models.PositiveIntegerField(default=0, editable=False)
    failing_since = models.DateTimeField(null=True, blank=True, editable=False)
    paused_until = models.DateTimeField(null=True, blank=True, editable=False)
    pause_reason = models.CharField(max_length=500, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tenant__name", "name"]
        indexes = [models.Index(fields=["tenant", "platform"], name="connection_tenant_platform")]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_platform_display()})"

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        if "credentials" in instance.__dict__:
            instance._loaded_credentials = dict(instance.credentials or {})
        return instance

    def save(self, *args, **kwargs) -> None:
        update_fields = kwargs.get("update_fields")
        saves_credentials = update_fields is None or "credentials" in update_fields
        # A connection not loaded from the database (a new one) has nothing to replace.
        kept = hasattr(self, "_loaded_credentials") and saves_credentials and self._keep_replaced_secrets()
        if kept and update_fields is not None:
            kwargs["update_fields"] = {*update_fields, "previous_credentials"}
        super().save(*args, **kwargs)
        if "credentials" in self.__dict__:
            self._loaded_credentials = dict(self.credentials or {})

    def _keep_replaced_secrets(self) -> bool:
        """Remember secret values this save replaces, for the rotation grace period."""
        now = datetime.now(tz=UTC_TZ)
        until = (now + timedelta(seconds=settings.WEBHOOK_SECRET_GRACE_SECONDS)).isoformat()
        previous = {name: _unexpired(values, now) for name, values in (self.previous_credentials or {}).items()}
        changed = False
        current = self.credentials or {}
        names = (self.spec.secret_fields() if self.platform in CATALOGUE else set()) | {HUB_WEBHOOK_SECRET}
        for name in sorted(names):
            old = self._loaded_credentials.get(name)
            if old and old != current.get(name):
                previous.setdefault(name, []).append({"value": old, "until": until})
                changed = True
        previous = {name: values for name, values in previous.items() if values}
        if changed or previous != (self.previous_credentials or {}):
            self.previous_credentials = previous
            return True
        return False

    def secret_candidates(self, *names: str) -> list[str]:
        """Current values of these credentials, then replaced ones still in their grace period:
        every secret a signed delivery may rightly have used. No empties, no repeats."""
        now = datetime.now(tz=UTC_TZ)
        found: list[str] = []
        for name in names:
            value = (self.credentials or {}).get(name)
            if value and value not in found:
                found.append(str(value))
        for name in names:
            for entry in _unexpired((self.previous_credentials or {}).get(name, []), now):
                if entry["value"] not in found:
                    found.append(str(entry["value"]))
        return found

    @property
    def is_paused(self) -> bool:
        """Whether the circuit breaker holds its scheduled syncs back now (manual ones still run)."""
        return self.paused_until is not None and self.paused_until > timezone.now()

    @property
    def frequency_seconds(self) -> int | None:
        return FREQUENCY_SECONDS.get(self.sync_frequency)

    @property
    def spec(self):
        return CATALOGUE[self.platform]

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def is_commerce(self) -> bool:
        return self.kind == Kind.COMMERCE


def _unexpired(values: list[dict], now: datetime) -> list[dict]:
    return [v for v in values if datetime.fromisoformat(v["until"]) > now]


class SyncTrigger(models.TextChoices):
    SCHEDULE = "schedule", "Schedule"
    MANUAL = "manual", "Manual"
    WEBHOOK = "webhook", "Webhook"
    COMMAND = "command", "Command"
    API = "api", "API"


class SyncStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"


class SyncRun(TenantOwned):
    """One sync of one connection: what was asked, how far it got, and what it wrote."""

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="sync_runs")
    trigger = models.CharField(max_length=16, choices=SyncTrigger.choices, default=SyncTrigger.MANUAL)
    streams = models.JSONField(default=list)
    full = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=SyncStatus.choices, default=SyncStatus.QUEUED)
    # {stream: {"seen": n, "total": n|None, "done": bool}}
    progress = models.JSONField(default=dict, blank=True)
    # {stream: {"created": n, "updated": n, "unchanged": n, "failed": n}}
    counts = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    error_code = models.CharField(max_length=32, blank=True)
    queued_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # Records this scheduled run created or updated while the connection had webhook subscriptions:
    # changes the webhooks should have brought and did not (or had not yet). Set when it succeeds.
    missed_by_webhooks = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-queued_at"]
        indexes = [
            models.Index(fields=["connection", "-queued_at"], name="syncrun_connection_recent"),
            models.Index(fields=["status", "queued_at"], name="syncrun_status_queued"),
            models.Index(fields=["status", "finished_at"], name="syncrun_status_finished"),
        ]

    def __str__(self) -> str:
        return f"Sync #{self.pk} of {self.connection} ({self.status})"

    @property
    def duration(self):
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None

    @property
    def totals(self) -> dict[str, int]:
        keys = ("created", "updated", "unchanged", "failed")
        return {k: sum(int(c.get(k, 0)) for c in self.counts.values()) for k in keys}

    @property
    def percent(self) -> int | None:
        """Overall progress, when every stream's total is known."""
        if not self.progress:
            return None
        if self.status == SyncStatus.SUCCEEDED:
            return 100
        done = seen = 0
        for stream in self.streams or self.progress.keys():
            p = self.progress.get(stream, {})
            if p.get("done"):
                done += 1
            elif p.get("total"):
                seen += min(1.0, p.get("seen", 0) / p["total"])
            elif p:
                return None
        return int(100 * (done + seen) / max(1, len(self.streams or self.progress)))


class QuarantinedRecord(TenantOwned):
    """A platform record that could not be mapped or stored, kept with its payload and error so a
    person can see it and retry it; the rest of its sync went on."""

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="quarantined")
    sync_run = models.ForeignKey(SyncRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    stream = models.CharField(max_length=32)
    external_id = models.CharField(max_length=128, blank=True)
    payload = models.JSONField(default=dict, blank=True)
    error = models.TextField()
    attempts = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["connection", "resolved_at"], name="quarantine_connection_open")]

    def __str__(self) -> str:
        return f"{self.stream} {self.external_id or '(no id)'}: {self.error[:60]}"


class IncidentKind(models.TextChoices):
    CONNECTION_FAILING = "connection_failing", "Connection failing repeatedly"
    SYNC_OVERDUE = "sync_overdue", "Sync overdue"
    WEBHOOK_BACKLOG = "webhook_backlog", "Webhook backlog"
    WEBHOOK_PARKED = "webhook_parked", "Parked webhook events"


class Incident(models.Model):
    """A condition the alerts check found (integrations.alerts), open while it holds. At most one
    is open per (kind, subject), so a condition that stays true alerts once; when it clears the
    incident is resolved, and if it comes back a new one opens. Some concern no tenant (the
    webhook backlog), so this is not a tenant-owned row: superadmins only."""

    kind = models.CharField(max_length=32, choices=IncidentKind.choices)
    subject = models.CharField(max_length=100, help_text="What it is about, e.g. connection:12.")
    title = models.CharField(max_length=300)
    details = models.TextField(blank=True)
    tenant = models.ForeignKey(
        "tenants.Tenant", null=True, blank=True, on_delete=models.CASCADE, related_name="incidents"
    )
    connection = models.ForeignKey(
        Connection, null=True, blank=True, on_delete=models.CASCADE, related_name="incidents"
    )
    since = models.DateTimeField(help_text="When the condition began, as far as the hub can tell.")
    opened_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    notified_at = models.DateTimeField(null=True, blank=True)
    # What went wrong sending the notices (a person reads it on the incident's page).
    notify_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "subject"], condition=models.Q(resolved_at__isnull=True), name="incident_one_open"
            )
        ]
        indexes = [models.Index(fields=["resolved_at", "-opened_at"], name="incident_open_recent")]

    def __str__(self) -> str:
        return self.title

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None
