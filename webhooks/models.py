"""Inbound webhook events, stored before they are acknowledged, and the subscriptions the hub has
registered on platforms; outbound hooks: clients' subscriptions, their deliveries and milestones."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from django.db import models
from django.db.models import Q
from django.utils import timezone
from fernet_fields import EncryptedTextField

from tenants.models import TenantOwned


class Provider(models.TextChoices):
    SHOPIFY = "shopify", "Shopify"
    WOOCOMMERCE = "woocommerce", "WooCommerce"
    STRIPE = "stripe", "Stripe"
    PAYPAL = "paypal", "PayPal"
    SQUARE = "square", "Square"
    AUTHORIZE_NET = "authorize_net", "Authorize.Net"
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

    # Receipt's insert writes every index of this table, so the foreign keys have none of their own:
    # `webhook_tenant_recent` and `webhook_connection_recent` lead with the same columns.
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+", db_index=False)
    connection = models.ForeignKey(
        "integrations.Connection", on_delete=models.CASCADE, related_name="webhook_events", db_index=False
    )
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


# --- Outbound hooks --------------------------------------------------------------------------------


class HookEvent(models.TextChoices):
    """The events a client can subscribe a URL to (Zapier REST hooks, or any receiver)."""

    ORDER_CREATED = "order.created", "Order created"
    ORDER_UPDATED = "order.updated", "Order updated"
    ORDER_FULFILLED = "order.fulfilled", "Order fulfilled"
    ORDER_REFUNDED = "order.refunded", "Order refunded"
    PRODUCT_LOW_STOCK = "product.low_stock", "Product low on stock"
    CUSTOMER_CREATED = "customer.created", "Customer created"
    INTEGRATION_CONNECTED = "integration.connected", "Integration connected"
    INTEGRATION_FAILED = "integration.failed", "Integration failed"
    SYNC_COMPLETED = "sync.completed", "Sync completed"
    CAMPAIGN_SENT = "campaign.sent", "Campaign sent"
    ANALYTICS_MILESTONE = "analytics.milestone", "Analytics milestone reached"


class HookSecretField(EncryptedTextField):
    """A signing secret, Fernet-encrypted at rest like every credential; serialisers (dumpdata)
    write a placeholder, never the secret."""

    def value_to_string(self, obj: Any) -> str:
        return "***"


class HookSubscription(TenantOwned):
    """A client's URL that receives one event, signed with its own secret (Standard Webhooks).

    The secret is shown once, when the subscription is made. A subscription is switched off (never
    silently deleted) when its target answers 410 Gone or fails for HOOKS_DISABLE_AFTER_DAYS, so
    the client can see why in the API and the admin; deleting it through the API removes it."""

    target_url = models.URLField(max_length=2000)
    event = models.CharField(max_length=32, choices=HookEvent.choices)
    secret = HookSecretField()
    active = models.BooleanField(default=True)
    # {"output key": "dotted.path.in.the.payload"}: the body is built from these paths alone.
    payload_template = models.JSONField(null=True, blank=True)
    created_by_key = models.ForeignKey(
        "tenants.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # When the first of the current run of failed attempts happened; cleared by any success.
    failing_since = models.DateTimeField(null=True, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["tenant", "event", "active"], name="hook_tenant_event_active")]

    def __str__(self) -> str:
        return f"{self.event} → {urlsplit(self.target_url).hostname or self.target_url}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # queued, not tried yet
    SUCCEEDED = "succeeded", "Succeeded"
    RETRYING = "retrying", "Failed, will retry"
    FAILED = "failed", "Failed"  # out of attempts, or refused before sending
    CANCELLED = "cancelled", "Cancelled"  # its subscription was switched off first


class HookDelivery(TenantOwned):
    """One message to one subscription, and how its attempts went. The webhook id stays the same
    on every attempt, so a receiver can drop a message it already has."""

    subscription = models.ForeignKey(HookSubscription, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=32, choices=HookEvent.choices)
    webhook_id = models.CharField(max_length=40, unique=True)
    payload = models.JSONField()
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    # When the sweep should (re)queue it: the next retry, or the end of the current attempt's lease.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_ms = models.PositiveIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True, help_text="The first 2 KB of the target's answer.")
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "hook deliveries"
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="hookdelivery_due"),
            models.Index(fields=["subscription", "-created_at"], name="hookdelivery_subscription_log"),
        ]

    def __str__(self) -> str:
        return f"{self.event} {self.webhook_id} ({self.status})"


class HookMark(TenantOwned):
    """What the hooks last announced about one object, so that a state is announced once when it
    is reached, not on every later write: an order fulfilled, an order's refund status, a variant
    low on stock (removed when it is restocked), a connection connected or failed."""

    topic = models.CharField(max_length=32)
    object_id = models.BigIntegerField()
    value = models.CharField(max_length=32, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "topic", "object_id"], name="hookmark_once_per_object")
        ]

    def __str__(self) -> str:
        return f"{self.topic} #{self.object_id}: {self.value or 'marked'}"


class MilestoneKind(models.TextChoices):
    ORDER_COUNT = "order_count", "Orders (all time, not cancelled)"
    REVENUE = "revenue", "Revenue (all time, not cancelled, in one currency)"


class Milestone(TenantOwned):
    """A threshold the client sets (the 1,000th order, a revenue goal). Checked whenever orders
    are written; `analytics.milestone` is sent once, when it is first reached."""

    kind = models.CharField(max_length=16, choices=MilestoneKind.choices)
    threshold = models.DecimalField(max_digits=18, decimal_places=4)
    currency = models.CharField(max_length=3, blank=True, help_text="For revenue milestones.")
    reached_at = models.DateTimeField(null=True, blank=True)
    reached_value = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["tenant", "reached_at"], name="milestone_tenant_open")]

    def __str__(self) -> str:
        unit = f" {self.currency}" if self.kind == MilestoneKind.REVENUE else " orders"
        return f"{self.threshold.normalize():f}{unit}"
