"""One-off messages sent through a tenant's own messaging connections (Twilio SMS, SendGrid email).

A `Message` is stored before the provider is asked (status queued), so the provider carries the
hub's id (`uuid`) as its reference and a delivery event can find the message before or after the
provider's answer is recorded. The provider's answer fills `provider_id` and the status; its status
callbacks then move the status forward only (see `messaging.move`), `status_updated_at` being the
provider's time of the state held. Bodies are kept for the record and shown on a message's own admin
page, never in lists or logs.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

from tenants.models import TenantOwned

from .providers.base import MessageStatus

__all__ = ["Channel", "Message", "MessageStatus", "Priority"]


class Channel(models.TextChoices):
    SMS = "sms", "SMS"
    EMAIL = "email", "Email"


class Priority(models.TextChoices):
    LOW = "low", "Low"
    NORMAL = "normal", "Normal"
    HIGH = "high", "High"


class Message(TenantOwned):
    connection = models.ForeignKey("integrations.Connection", on_delete=models.RESTRICT, related_name="messages")
    channel = models.CharField(max_length=8, choices=Channel.choices)
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    to = models.CharField(max_length=320, help_text="An E.164 phone number or an email address.")
    subject = models.CharField(max_length=998, blank=True)
    body = models.TextField(blank=True, help_text="The SMS text, or the email's plain-text part.")
    html = models.TextField(blank=True)
    priority = models.CharField(max_length=8, choices=Priority.choices, default=Priority.NORMAL)
    status = models.CharField(max_length=16, choices=MessageStatus.choices, default=MessageStatus.QUEUED)
    provider_id = models.CharField(max_length=128, blank=True)
    failure_code = models.CharField(max_length=64, blank=True)
    failure_message = models.TextField(blank=True)
    # The provider's time of the status held (its event's time for callbacks), so an older event
    # arriving late never overwrites a newer state.
    status_updated_at = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True, help_text="The first open the provider reported.")
    clicked_at = models.DateTimeField(null=True, blank=True, help_text="The first click the provider reported.")
    opens = models.PositiveIntegerField(default=0)
    clicks = models.PositiveIntegerField(default=0)
    raw = models.JSONField(default=dict, blank=True, help_text="The provider's last answer or event.")
    purpose = models.CharField(
        max_length=64,
        blank=True,
        help_text="What the hub sent it for (e.g. fulfilment:12, a shipping notice): one message per purpose.",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["tenant", "-created_at"], name="message_tenant_recent"),
            models.Index(fields=["tenant", "status", "-created_at"], name="message_tenant_status"),
            models.Index(fields=["tenant", "channel", "-created_at"], name="message_tenant_channel"),
            models.Index(fields=["connection", "provider_id"], name="message_connection_provider_id"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "purpose"], condition=~models.Q(purpose=""), name="message_once_per_purpose"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} {self.uuid} ({self.get_status_display()})"
