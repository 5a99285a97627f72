"""Consent for campaigns: the suppression list every campaign send checks, and the ways onto and
off it (the unsubscribe link, replies to texts, the providers' unsubscribe, spam and bounce events).

- A suppression is one row per (tenant, channel, address), the address normalised (`normalise`):
  an email address stripped and lower-cased, a phone number in E.164. `suppress` is idempotent and
  safe against a concurrent insert of the same address (the unique constraint decides, inside a
  savepoint), and writes an audit entry only for a new row; `unsuppress` likewise for a removal.
- `suppressed` answers for a whole batch of addresses in one query, for the campaign sender.
- The unsubscribe link carries a token signed with its own salt (`django.core.signing`) holding
  the tenant's and the recipient's ids, never the address. It has no expiry: a years-old email's
  link must still work. Rotating SECRET_KEY breaks old links unless the old key stays in
  SECRET_KEY_FALLBACKS.
- One-off messages (`campaigns.messaging.send_sms/send_email`, the send API) are transactional and
  never checked here; campaigns are.

Addresses are never logged; the audit entry holds them masked (`mask`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from django.conf import settings
from django.core import signing
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from tenants import audit

from .models import Channel, Message, MessageStatus, Recipient, Suppression, SuppressionReason

if TYPE_CHECKING:
    from .models import Campaign

__all__ = [
    "SMS_OPT_OUT_FOOTER",
    "is_suppressed",
    "list_unsubscribe_headers",
    "mask",
    "normalise",
    "recipient_for_token",
    "suppress",
    "suppressed",
    "unsubscribe",
    "unsubscribe_token",
    "unsubscribe_url",
    "unsuppress",
]

SMS_OPT_OUT_FOOTER = "Reply STOP to opt out."
UNSUBSCRIBE_SALT = "campaigns.consent.unsubscribe"
PHONE_SEPARATORS = re.compile(r"[\s\-().]")


def normalise(channel: str, address: str) -> str:
    """The form an address is stored and compared in: an email address stripped and lower-cased,
    a phone number (given in E.164) without the spaces, dashes, dots and brackets people type."""
    address = str(address or "")
    if Channel(channel) == Channel.EMAIL:
        return address.strip().lower()
    return PHONE_SEPARATORS.sub("", address)


def mask(address: str) -> str:
    """An address as the unsubscribe page and the audit log show it: `j•••@example.com`,
    `+•••••••2671`."""
    address = str(address or "")
    if "@" in address:
        local, _, domain = address.rpartition("@")
        return f"{local[:1]}•••@{domain}"
    visible = 4 if len(address) > 8 else 2
    plus = "+" if address.startswith("+") else ""
    hidden = len(address) - len(plus) - visible
    return plus + "•" * max(hidden, 3) + address[-visible:]


# --- The suppression list ----------------------------------------------------------------------------


def suppressed(tenant_id: int, channel: str, addresses: Iterable[str]) -> set[str]:
    """Which of `addresses` (as given) the tenant must not send campaigns to on `channel`: one
    query for the whole batch."""
    wanted: dict[str, set[str]] = {}
    for address in addresses:
        wanted.setdefault(normalise(channel, address), set()).add(address)
    if not wanted:
        return set()
    held = (
        Suppression.objects.for_tenant(tenant_id)
        .filter(channel=channel, address__in=list(wanted))
        .values_list("address", flat=True)
    )
    return {given for address in held for given in wanted[address]}


def is_suppressed(tenant_id: int, channel: str, address: str) -> bool:
    return _held(getattr(tenant_id, "pk", tenant_id), channel, normalise(channel, address))


def suppress(
    tenant_id: int, channel: str, address: str, reason: str, *, detail: str = "", campaign: Campaign | int | None = None
) -> bool:
    """Put the address on the tenant's suppression list; returns whether it was new. An address
    already there keeps its first reason and campaign (the campaign that lost it counts it)."""
    tenant_id = getattr(tenant_id, "pk", tenant_id)
    address = normalise(channel, address)
    reason = SuppressionReason(reason)
    campaign_id = getattr(campaign, "pk", campaign)
    if campaign is not None and getattr(campaign, "tenant_id", tenant_id) != tenant_id:
        raise ValueError("The campaign is another tenant's.")
    if not address:
        raise ValueError("No address to suppress.")
    if _held(tenant_id, channel, address):
        return False
    try:
        # A savepoint: the caller's transaction (a webhook handler's) survives losing the race.
        with transaction.atomic():
            row = Suppression.objects.create(
                tenant_id=tenant_id,
                channel=channel,
                address=address,
                reason=reason,
                detail=str(detail or "")[:255],
                campaign_id=campaign_id,
            )
    except IntegrityError:
        return False  # another request inserted it between the look and the insert
    audit.record(
        "suppression.added",
        tenant=row.tenant,
        target=f"{channel} {mask(address)}",
        channel=channel,
        reason=reason.value,
        detail=row.detail,
        campaign=campaign_id,
    )
    return True


def _held(tenant_id: int, channel: str, address: str) -> bool:
    return Suppression.objects.for_tenant(tenant_id).filter(channel=channel, address=address).exists()


def unsuppress(tenant_id: int, channel: str, address: str) -> bool:
    """Take the address off the tenant's suppression list; returns whether it was there."""
    tenant_id = getattr(tenant_id, "pk", tenant_id)
    address = normalise(channel, address)
    rows = Suppression.objects.for_tenant(tenant_id).filter(channel=channel, address=address)
    held = rows.values_list("reason", flat=True).first()
    deleted, _ = rows.delete()
    if not deleted:
        return False
    from tenants.models import Tenant

    audit.record(
        "suppression.removed",
        tenant=Tenant.objects.get(pk=tenant_id),
        target=f"{channel} {mask(address)}",
        channel=channel,
        reason=held,
    )
    return True


# --- The unsubscribe link ----------------------------------------------------------------------------


def _signer() -> signing.Signer:
    # A plain Signer: no timestamp, so no expiry; the salt keeps these tokens from being
    # interchangeable with any other value the project signs.
    return signing.Signer(salt=UNSUBSCRIBE_SALT)


def unsubscribe_token(recipient: Recipient) -> str:
    return _signer().sign_object([recipient.tenant_id, recipient.pk])


def recipient_for_token(token: str) -> Recipient | None:
    """The recipient the token was made for, or None for a token that is tampered with, made
    with another salt or key, or whose recipient is gone."""
    try:
        tenant_id, recipient_id = _signer().unsign_object(str(token))
        tenant_id, recipient_id = int(tenant_id), int(recipient_id)
    except (signing.BadSignature, ValueError, TypeError, UnicodeDecodeError):
        return None
    return Recipient.objects.for_tenant(tenant_id).select_related("tenant", "campaign").filter(pk=recipient_id).first()


def unsubscribe_url(recipient: Recipient) -> str:
    base = settings.PUBLIC_BASE_URL
    if not base:
        raise ImproperlyConfigured("PUBLIC_BASE_URL is not set, so campaign emails cannot carry an unsubscribe link.")
    return base + reverse("consent:unsubscribe", kwargs={"token": unsubscribe_token(recipient)})


def list_unsubscribe_headers(recipient: Recipient) -> dict[str, str]:
    """The headers for one-click unsubscribe (RFC 2369's List-Unsubscribe with RFC 8058's
    List-Unsubscribe-Post): mail clients POST `List-Unsubscribe=One-Click` to the link."""
    return {
        "List-Unsubscribe": f"<{unsubscribe_url(recipient)}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def unsubscribe(recipient: Recipient, *, detail: str) -> bool:
    """The recipient asked to unsubscribe (the link, or a mail client's one-click): the address
    is suppressed for the tenant, counted against the recipient's campaign, and the recipient's
    message is marked unsubscribed as a provider's unsubscribe event would. Returns whether the
    address was newly suppressed; asking again changes nothing."""
    from .messaging import move

    campaign = recipient.campaign
    new = suppress(
        recipient.tenant_id,
        campaign.channel,
        recipient.address,
        SuppressionReason.UNSUBSCRIBED,
        detail=detail,
        campaign=campaign,
    )
    if recipient.message_id:
        with transaction.atomic():
            scope = Message.objects.for_tenant(recipient.tenant_id).select_for_update()
            message = scope.filter(pk=recipient.message_id).first()
            now = timezone.now()
            # Forward only, as for the providers' events: a bounced message stays bounced.
            if message is not None and move(message, MessageStatus.UNSUBSCRIBED, now):
                message.updated_at = now
                message.save()
    return new
