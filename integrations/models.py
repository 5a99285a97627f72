from __future__ import annotations

import uuid

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
    DISABLED = "disabled", "Disabled"


class SyncFrequency(models.TextChoices):
    MANUAL = "manual", "Manual only"
    EVERY_15_MIN = "15m", "Every 15 minutes"
    HOURLY = "1h", "Hourly"
    EVERY_6_HOURS = "6h", "Every 6 hours"
    DAILY = "1d", "Daily"
    WEEKLY = "7d", "Weekly"


class Connection(TenantOwned):
    """One tenant's account on one platform. Credentials are encrypted at rest."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="connections")
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    platform = models.CharField(max_length=32, choices=Platform.choices)
    name = models.CharField(max_length=100)
    credentials = EncryptedJSONField()
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
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tenant__name", "name"]
        indexes = [models.Index(fields=["tenant", "platform"], name="connection_tenant_platform")]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_platform_display()})"

    @property
    def spec(self):
        return CATALOGUE[self.platform]

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def is_commerce(self) -> bool:
        return self.kind == Kind.COMMERCE
