"""Inbound webhook events, stored before they are acknowledged, and the subscriptions the hub has
registered on platforms."""

from __future__ import annotations

import json
from typing import Any

from django.db import models
from django.db.models import Q
from django.utils import timezone

from tenants.models import TenantOwned


class Provider(models.TextChoices):
    SHOPIFY = "shopify", "Shopify"
    WOOCOMMERCE = "woocommerce", "WooCommerce"
    STRIPE = "stripe", "Stripe"
    PAYPAL = "paypal", "PayPal"
    SQUARE = "square", "Square"
    TWILIO = "twilio", "Twilio"
    SENDGRID = "sendgrid", "SendGrid"
    EBAY = "ebay", "eBay"
    TIKTOK = "tiktok", "TikTok Shop"
    THIRD_PARTY = "third-party", "Third-party (signed HMAC)"


class EventStatus(models.TextChoices):
    RECEIVED = "received", "Received"  # stored and acknowledged, waiting for the worker
    PROCESSING = "processing", "Processing"
    PROCESSED = "processed", "Processed"
    IGNORED = "ignored", "Ignored"  # no handler for its topic, or its connection is disabled
    RETRYING = "retrying", "Failed, will retry"
    PARKED = "parked", "Failed, parked"  # out of retries: waits for a person to replay it
    REJECTED = "rejected", "Rejected"  # bad signature or unreadable body: kept, never processed


class WebhookEvent(TenantOwned):
    """One event a provider delivered. A delivery whose signature fails is kept too (status
    rejected, with the reason) so a person can see what was sent, but it is never processed.

    A provider event id is unique per connection among verified events: a second delivery of the
    same event loses the race on that constraint and only counts itself in `duplicates`."""

    connection = models.ForeignKey("integrations.Connection", on_delete=models.CASCADE, related_name="webhook_events")
    provider = models.CharField(max_length=16, choices=Provider.choices)
    service = models.CharField(max_length=64, blank=True, help_text="The sending service, for third-party hooks.")
    event_id = models.CharField(max_length=255, blank=True)
    topic = models.CharField(max_length=128, blank=True)
    resource_id = models.CharField(max_length=255, blank=True)
    resource_updated_at = models.DateTimeField(null=True, blank=True)
    headers = models.JSONField(default=dict, blank=True)
    body = models.TextField(blank=True)
    # This event's own part of the body, when the delivery carried several (SendGrid batches).
    payload = models.JSONField(null=True, blank=True)
    signature_valid = models.BooleanField(default=True)
    status = models.CharField(max_length=16, choices=EventStatus.choices, default=EventStatus.RECEIVED)
    received_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # A worker holds the event while it processes it; one that died loses it when this passes.
    locked_until = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    outcome = models.CharField(max_length=255, blank=True)
    duplicates = models.PositiveIntegerField(default=0)
    last_duplicate_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "event_id"],
                condition=Q(signature_valid=True) & ~Q(event_id=""),
                name="webhook_event_once_per_connection",
            )
        ]
        indexes = [
            models.Index(fields=["connection", "-received_at"], name="webhook_connection_recent"),
            models.Index(fields=["tenant", "-received_at"], name="webhook_tenant_recent"),
            models.Index(fields=["status", "next_attempt_at"], name="webhook_status_due"),
        ]

    def __str__(self) -> str:
        return f"{self.get_provider_display()} {self.topic or '(no topic)'} {self.event_id}".strip()

    @property
    def data(self) -> Any:
        """The event's JSON: its own part of a batch, or the whole body."""
        if self.payload is not None:
            return self.payload
        return json.loads(self.body) if self.body else None


class WebhookSubscription(TenantOwned):
    """A webhook topic the hub registered on a platform for a connection."""

    connection = models.ForeignKey(
        "integrations.Connection", on_delete=models.CASCADE, related_name="webhook_subscriptions"
    )
    topic = models.CharField(max_length=128)
    address = models.URLField(max_length=500)
    remote_id = models.CharField(max_length=255, blank=True, help_text="The platform's id for the subscription.")
    registered_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["connection", "topic"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "topic"], name="webhook_subscription_once_per_topic")
        ]

    def __str__(self) -> str:
        return f"{self.topic} → {self.address}"
