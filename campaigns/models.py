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

from django.conf import settings
from django.db import models
from django.utils import timezone

from tenants.models import TenantOwned

from .providers.base import MessageStatus

__all__ = [
    "Campaign",
    "CampaignStatus",
    "Channel",
    "Message",
    "MessageStatus",
    "Priority",
    "Recipient",
    "RecipientState",
    "Segment",
    "Suppression",
    "SuppressionReason",
]


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


# --- Campaigns ---------------------------------------------------------------------------------------


class Segment(TenantOwned):
    """A saved set of rules over the tenant's synced customers and orders (see campaigns.segments).

    `rules` is `{"match": "all" | "any", "rules": [{"field": …, "op": …, "value": …}, …]}`; an empty
    rule list matches every customer. Who matches is worked out when asked (the live count) and
    frozen into a campaign's recipients when it starts sending."""

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    rules = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="segment_unique_name")]

    def __str__(self) -> str:
        return self.name


class CampaignStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SCHEDULED = "scheduled", "Scheduled"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    PAUSED = "paused", "Paused"
    CANCELLED = "cancelled", "Cancelled"
    FAILED = "failed", "Failed"


class Campaign(TenantOwned):
    """One email or SMS campaign to a segment.

    Its subject, text and HTML are templates with merge fields (campaigns.templating), rendered per
    recipient in a sandbox. It is a draft until scheduled (`scheduled_at`, stored in UTC and shown in
    the tenant's time zone; empty means as soon as possible); the send task freezes its recipients
    the first time it runs (status sending) and sends them in batches, each recipient once."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=200)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    connection = models.ForeignKey(
        "integrations.Connection",
        on_delete=models.RESTRICT,
        related_name="campaigns",
        help_text="The messaging connection it is sent through.",
    )
    segment = models.ForeignKey(Segment, on_delete=models.PROTECT, related_name="campaigns", null=True, blank=True)
    subject = models.CharField(max_length=998, blank=True, help_text="Email only; may hold merge fields.")
    body = models.TextField(blank=True, help_text="The SMS text or the email's plain-text part (merge fields).")
    html = models.TextField(blank=True, help_text="The email's HTML (merge fields).")
    discount_code = models.CharField(max_length=64, blank=True, help_text="Shown by the {{ discount_code }} field.")
    status = models.CharField(max_length=16, choices=CampaignStatus.choices, default=CampaignStatus.DRAFT)
    scheduled_at = models.DateTimeField(null=True, blank=True, help_text="When to send; empty: as soon as scheduled.")
    started_at = models.DateTimeField(null=True, blank=True, editable=False)
    finished_at = models.DateTimeField(null=True, blank=True, editable=False)
    recipients_frozen_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The provider's campaign id for providers that send a campaign themselves (Mailchimp).
    provider_campaign_id = models.CharField(max_length=128, blank=True, editable=False)
    provider_report = models.JSONField(default=dict, blank=True, editable=False)
    last_error = models.TextField(blank=True, editable=False)
    # A/B test of two subjects (email): `ab_share` percent of the recipients split between subject
    # and subject_b; after `ab_wait_minutes` the subject with more opens goes to the rest.
    subject_b = models.CharField(max_length=998, blank=True, help_text="A second subject to test (email).")
    ab_share = models.PositiveSmallIntegerField(default=0, help_text="Percent of recipients in the test (0: no test).")
    ab_wait_minutes = models.PositiveIntegerField(default=240)
    ab_winner = models.CharField(max_length=1, blank=True, editable=False)
    ab_sent_at = models.DateTimeField(null=True, blank=True, editable=False, help_text="When the test shares went.")
    # One send task at a time: the task holding the lease renews it after every batch; a task whose
    # worker died loses it when it runs out, and `send_due_campaigns` queues the campaign again.
    lease_owner = models.CharField(max_length=64, blank=True, editable=False)
    lease_until = models.DateTimeField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", editable=False
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["tenant", "-created_at"], name="campaign_tenant_recent"),
            models.Index(fields=["status", "scheduled_at"], name="campaign_due"),
        ]

    def __str__(self) -> str:
        return self.name


class RecipientState(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"  # claimed by a send task: its message may or may not have gone
    SENT = "sent", "Sent"  # handed to the provider (delivery is on the message)
    FAILED = "failed", "Failed"
    SUPPRESSED = "suppressed", "Suppressed"  # unsubscribed, bounced or on the suppression list
    CANCELLED = "cancelled", "Cancelled"


class Recipient(TenantOwned):
    """One person a campaign goes to, frozen when it starts sending: the address and the merge
    data as they were then. Its state is what makes a resumed send skip whoever was done."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="recipients")
    customer = models.ForeignKey(
        "commerce.Customer", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    address = models.CharField(max_length=320, help_text="The email address (lower case) or E.164 number.")
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    merge = models.JSONField(default=dict, blank=True, help_text="Merge data frozen with the recipient.")
    variant = models.CharField(max_length=1, blank=True, help_text="A/B: a, b, or empty (the rest).")
    state = models.CharField(max_length=12, choices=RecipientState.choices, default=RecipientState.PENDING)
    message = models.OneToOneField(Message, on_delete=models.SET_NULL, null=True, blank=True, related_name="recipient")
    error = models.TextField(blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "address"], name="recipient_once_per_campaign"),
        ]
        indexes = [models.Index(fields=["campaign", "state", "id"], name="recipient_campaign_state")]

    def __str__(self) -> str:
        return self.address


class SuppressionReason(models.TextChoices):
    UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
    BOUNCED = "bounced", "Bounced"
    SPAM_REPORT = "spam_report", "Reported as spam"
    STOP = "stop", "Replied STOP"
    MANUAL = "manual", "Added by hand"
    PROVIDER = "provider", "Unsubscribed at the provider"


class Suppression(TenantOwned):
    """An address the tenant must not send campaigns to, whatever segment it is in. Every send
    checks it (campaigns.consent). One row per (tenant, channel, address); a START reply or a
    person removes it."""

    channel = models.CharField(max_length=8, choices=Channel.choices)
    address = models.CharField(max_length=320, help_text="Lower-case email address or E.164 number.")
    reason = models.CharField(max_length=16, choices=SuppressionReason.choices)
    detail = models.CharField(max_length=255, blank=True)
    campaign = models.ForeignKey(Campaign, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "channel", "address"], name="suppression_unique_address")
        ]

    def __str__(self) -> str:
        return f"{self.address} ({self.get_reason_display()})"
