"""Payments taken and refunded through a tenant's own gateway accounts.

A `Payment` is stored before the gateway is asked (status processing), under an idempotency key
derived from its own uuid, so a retry after a timeout sends the same key and never charges twice.
The gateway's answer fills the promoted columns; the ids a later webhook may name the payment by
are `gateway_id` (the gateway's payment, order or transaction) and `gateway_reference` (a second
id some gateways' events use instead: PayPal's capture, Stripe's charge). Card data never reaches
the hub: `payment_method` holds a gateway token only, and `raw` holds the gateway's answer with
card data stripped by the gateway module.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.db import models
from django.db.models import Q
from django.utils import timezone
from fernet_fields import EncryptedTextField

from tenants.models import TenantOwned

from .gateways.base import PaymentStatus, RefundStatus
from .money import places

__all__ = ["Payment", "PaymentStatus", "Refund", "RefundStatus"]

# Statuses of a payment whose money was taken (and may since have been refunded or disputed).
TAKEN = (PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED, PaymentStatus.DISPUTED)


def money(**kwargs) -> models.DecimalField:
    # Four places hold every ISO 4217 currency exactly, as in commerce.
    return models.DecimalField(max_digits=18, decimal_places=4, **kwargs)


class Payment(TenantOwned):
    connection = models.ForeignKey("integrations.Connection", on_delete=models.RESTRICT, related_name="payments")
    order = models.ForeignKey(
        "commerce.Order", null=True, blank=True, on_delete=models.SET_NULL, related_name="payments"
    )
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    amount = money()
    currency = models.CharField(max_length=3)
    # Where the platform reports both: the amount in the customer-facing currency.
    presentment_amount = money(null=True, blank=True)
    presentment_currency = models.CharField(max_length=3, blank=True)
    status = models.CharField(max_length=24, choices=PaymentStatus.choices, default=PaymentStatus.PROCESSING)
    capture = models.BooleanField(default=True, help_text="False: authorised only, captured later.")
    amount_captured = money(default=Decimal("0"))
    # What the hub knows was refunded: the larger of the gateway's last reported total and the sum of
    # the refunds it knows one by one (each a lower bound, so neither ever counts a refund twice).
    amount_refunded = money(default=Decimal("0"))
    amount_refunded_reported = money(default=Decimal("0"), editable=False)
    gateway_id = models.CharField(max_length=128, blank=True)
    gateway_reference = models.CharField(
        max_length=128, blank=True, help_text="A second gateway id its events may use (PayPal capture, Stripe charge)."
    )
    # For the customer's browser to finish a payment that requires action; returned once, on create.
    client_secret = EncryptedTextField(blank=True, editable=False)
    approval_url = models.URLField(max_length=2000, blank=True)
    return_url = models.URLField(max_length=2000, blank=True)
    cancel_url = models.URLField(max_length=2000, blank=True)
    failure_code = models.CharField(max_length=64, blank=True)
    failure_message = models.TextField(blank=True)
    description = models.CharField(max_length=500, blank=True)
    customer = models.CharField(max_length=255, blank=True, help_text="The gateway's customer id, or an email.")
    payment_method = models.CharField(max_length=255, blank=True, help_text="A gateway token, never card data.")
    metadata = models.JSONField(default=dict, blank=True)
    extra = models.JSONField(default=dict, blank=True, help_text="Gateway ids the hub keeps (capture id, …).")
    raw = models.JSONField(default=dict, blank=True, help_text="The gateway's last answer, card data stripped.")
    idempotency_key = models.CharField(max_length=64, unique=True, editable=False)
    # The API client's own Idempotency-Key, when it sent one: the same key again answers this payment.
    client_key = models.CharField(max_length=255, blank=True, editable=False)
    # The gateway's time of the state we hold (its event's time for webhooks), so an older event
    # arriving late never overwrites a newer state.
    status_updated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["tenant", "-created_at"], name="payment_tenant_recent"),
            models.Index(fields=["tenant", "status", "-created_at"], name="payment_tenant_status"),
            # The stats: per connection and currency, by status, over the tenant's payments.
            models.Index(
                fields=["tenant", "connection", "currency", "status"],
                include=["amount", "amount_refunded"],
                name="payment_tenant_figures",
            ),
            models.Index(fields=["connection", "gateway_id"], name="payment_connection_gateway_id"),
            models.Index(
                fields=["connection", "gateway_reference"],
                condition=~Q(gateway_reference=""),
                name="payment_connection_reference",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "client_key"], condition=~Q(client_key=""), name="payment_once_per_client_key"
            )
        ]

    def __str__(self) -> str:
        return f"{format_amount(self.amount, self.currency)} {self.currency} ({self.get_status_display()})"

    def save(self, *args, **kwargs) -> None:
        if not self.idempotency_key:
            self.idempotency_key = f"pay_{self.uuid.hex}"
        super().save(*args, **kwargs)

    @property
    def gateway(self) -> str:
        return self.connection.platform

    def refund_totals(self) -> tuple[Decimal, Decimal]:
        """(succeeded, pending) sums of the refunds the hub knows one by one (prefetched or read)."""
        sums = {RefundStatus.SUCCEEDED: Decimal("0"), RefundStatus.PENDING: Decimal("0")}
        for refund in self.refunds.all():
            if refund.status in sums:
                sums[refund.status] += refund.amount
        return sums[RefundStatus.SUCCEEDED], sums[RefundStatus.PENDING]

    @property
    def refundable(self) -> Decimal:
        """What may still be refunded: captured, less what was refunded and what pending refunds hold."""
        succeeded, pending = self.refund_totals()
        held = max(self.amount_refunded, self.amount_refunded_reported, succeeded + pending)
        return max(Decimal("0"), self.amount_captured - held)


class RefundSource(models.TextChoices):
    HUB = "hub", "Made through the hub"
    GATEWAY = "gateway", "Reported by the gateway"


class Refund(TenantOwned):
    payment = models.ForeignKey(Payment, on_delete=models.CASCADE, related_name="refunds")
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    amount = money()
    currency = models.CharField(max_length=3)
    reason = models.CharField(max_length=500, blank=True)
    status = models.CharField(max_length=16, choices=RefundStatus.choices, default=RefundStatus.PENDING)
    source = models.CharField(max_length=16, choices=RefundSource.choices, default=RefundSource.HUB)
    gateway_id = models.CharField(max_length=128, blank=True)
    idempotency_key = models.CharField(max_length=64, unique=True, editable=False)
    failure_code = models.CharField(max_length=64, blank=True)
    failure_message = models.TextField(blank=True)
    raw = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at"]
        indexes = [
            models.Index(fields=["payment", "gateway_id"], name="refund_payment_gateway_id"),
            models.Index(fields=["tenant", "-created_at"], name="refund_tenant_recent"),
        ]

    def __str__(self) -> str:
        return f"Refund of {format_amount(self.amount, self.currency)} {self.currency} ({self.get_status_display()})"

    def save(self, *args, **kwargs) -> None:
        if not self.idempotency_key:
            self.idempotency_key = f"ref_{self.uuid.hex}"
        super().save(*args, **kwargs)


def format_amount(amount: Decimal | None, currency: str) -> str:
    """10.5 USD → "10.50", 500 JPY → "500": the currency's own number of places."""
    if amount is None:
        return ""
    return f"{Decimal(amount):.{places(currency)}f}"
