"""Shipping notices sent by the hub: when a client has the hub tell customers (fulfilment settings,
"tell customers through the hub"), each fulfilment whose push landed gets one email through the
client's SendGrid connection, or, for an order without an email address, one SMS through its
Twilio connection, with the carrier, the tracking number and link.

One notice per fulfilment (the message's purpose is `fulfilment:<id>`), sent by a task after the
push commits, so a push that rolls back sends nothing and a task run twice sends once.
"""

from __future__ import annotations

import logging
from html import escape

from django.dispatch import receiver
from django_q.tasks import async_task

from commerce.carriers import CARRIERS
from commerce.models import Fulfilment
from commerce.signals import fulfilment_shipped
from integrations.models import Connection

from . import messaging

logger = logging.getLogger(__name__)

EMAIL_PLATFORMS = ("sendgrid",)
SMS_PLATFORMS = ("twilio",)


@receiver(fulfilment_shipped, dispatch_uid="campaigns-shipping-notice")
def queue_notice(sender, tenant_id: int, fulfilment_id: int, **kwargs) -> None:
    async_task("campaigns.shipping_notices.send_notice", fulfilment_id, task_name=f"shipping-notice-{fulfilment_id}")


def send_notice(fulfilment_id: int) -> str:
    try:
        return _send_notice(fulfilment_id)
    except messaging.MessageError as problem:  # an address or number the providers would refuse
        logger.warning("Fulfilment %s: shipping notice not sent: %s", fulfilment_id, problem)
        return f"not sent: {problem}"


def _send_notice(fulfilment_id: int) -> str:
    fulfilment = (
        Fulfilment.objects.select_related("order", "order__customer", "tenant").filter(pk=fulfilment_id).first()
    )
    if fulfilment is None:
        return "the fulfilment is gone"
    order, tenant = fulfilment.order, fulfilment.tenant
    email = order.email or getattr(order.customer, "email", "")
    phone = getattr(order.customer, "phone", "")
    purpose = f"fulfilment:{fulfilment.pk}"
    carrier = CARRIERS[fulfilment.carrier].name if fulfilment.carrier in CARRIERS else fulfilment.carrier
    tracking = f"{carrier} {fulfilment.tracking_number}".strip()
    link = fulfilment.tracking_url

    if email and (connection := _connection(tenant.pk, EMAIL_PLATFORMS)):
        text = f"Your order {order.number} from {tenant.name} has shipped: {tracking}." + (
            f" Track it: {link}" if link else ""
        )
        html = (
            f"<p>Your order <strong>{escape(order.number)}</strong> from {escape(tenant.name)} has shipped.</p>"
            f"<p>{escape(tracking)}" + (f' — <a href="{escape(link)}">track your parcel</a>' if link else "") + "</p>"
        )
        message = messaging.send_email(
            tenant, connection, email, f"Your order {order.number} has shipped", html=html, text=text, purpose=purpose
        )
        return f"email {message.uuid}: {message.status}"
    if phone and (connection := _connection(tenant.pk, SMS_PLATFORMS)):
        body = f"{tenant.name}: order {order.number} has shipped, {tracking}." + (f" {link}" if link else "")
        message = messaging.send_sms(tenant, connection, phone, body[: messaging.SMS_MAX_CHARS], purpose=purpose)
        return f"sms {message.uuid}: {message.status}"
    logger.warning("Fulfilment %s: no messaging connection or contact to send its shipping notice to", fulfilment.pk)
    return "no messaging connection for the customer's email or phone"


def _connection(tenant_id: int, platforms: tuple[str, ...]) -> Connection | None:
    return (
        Connection.objects.for_tenant(tenant_id)
        .filter(platform__in=platforms, enabled=True, is_demo=False)
        .order_by("pk")
        .first()
    )
