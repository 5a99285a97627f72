"""The activity stream's entries for payments (tenants.activity): one each time a payment reaches
an outcome (succeeded, authorised, failed, refunded, disputed, ...), whichever way it got there
(the API call's answer, a capture, a gateway webhook)."""

from __future__ import annotations

from django.db.models.signals import post_init, post_save
from django.dispatch import receiver

from tenants import activity
from tenants.models import ActivityKind, ActivityLevel

from .gateways.base import PaymentStatus
from .models import Payment, format_amount

OUTCOMES = {
    PaymentStatus.SUCCEEDED: ActivityLevel.INFO,
    PaymentStatus.AUTHORIZED: ActivityLevel.INFO,
    PaymentStatus.PARTIALLY_REFUNDED: ActivityLevel.INFO,
    PaymentStatus.REFUNDED: ActivityLevel.INFO,
    PaymentStatus.CANCELED: ActivityLevel.INFO,
    PaymentStatus.FAILED: ActivityLevel.WARNING,
    PaymentStatus.DISPUTED: ActivityLevel.WARNING,
}


@receiver(post_init, sender=Payment, dispatch_uid="activity-payment-loaded")
def remember_status(sender, instance: Payment, **kwargs) -> None:
    # Only when loaded: reading a deferred status here would cost a query per row.
    instance._activity_status = instance.__dict__.get("status")


@receiver(post_save, sender=Payment, dispatch_uid="activity-payment-saved")
def record_outcome(sender, instance: Payment, created: bool = False, **kwargs) -> None:
    status = instance.__dict__.get("status")
    previous = None if created else getattr(instance, "_activity_status", None)
    if status is None or status == previous:
        return
    instance._activity_status = status
    if status not in OUTCOMES:
        return
    text = f"Payment #{instance.pk} of {format_amount(instance.amount, instance.currency)} {instance.currency}: "
    text += PaymentStatus(status).label.lower()
    if status == PaymentStatus.FAILED and instance.failure_message:
        text += f" ({instance.failure_message})"
    activity.record(
        instance.tenant_id,
        ActivityKind.PAYMENT_PROCESSED,
        text,
        level=OUTCOMES[status],
        connection_id=instance.connection_id,
        subject=f"payment:{instance.pk}",
        data={
            "status": status,
            "amount": format_amount(instance.amount, instance.currency),
            "currency": instance.currency,
        },
    )
