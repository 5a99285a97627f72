"""A campaign's life: schedule, send in batches, pause, resume, cancel; and its figures.

- **Schedule** (`schedule`): a draft (or a paused campaign that never started) is checked — its
  connection is the tenant's own, enabled and of the campaign's channel, its content renders, it
  has a segment — and becomes *scheduled* for `scheduled_at` (empty: now). `send_due` (every
  minute on the cluster, and `manage.py send_due_campaigns` for cron) queues the due ones.
- **Send** (`run`, a django-q2 task taking the campaign's id): one task at a time holds the
  campaign's lease (a conditional UPDATE), renewed after every batch. The first run freezes the
  recipients (`campaigns.segments.recipients`, deduplicated by address) into `Recipient` rows;
  from then on the segment can change without changing who gets the campaign. Recipients are then
  sent `CAMPAIGN_BATCH_SIZE` at a time, in id order, each through `campaigns.messaging` with the
  purpose `campaign:<campaign>:<recipient>`: the message is stored before the provider is asked
  and there is one per purpose, so a recipient is never sent twice, whatever dies when. A recipient
  whose send was under way when its worker died (state *sending* with a message stored but never
  answered) is marked failed as *unconfirmed*, not sent again: it may have gone out.
- **Consent**: each batch asks the suppression list once (`campaigns.consent.suppressed`); a
  suppressed address is skipped (state *suppressed*), whenever it was suppressed. Every email
  carries an unsubscribe link (added at the foot when the template has none) and RFC 8058
  `List-Unsubscribe` headers; every SMS ends with the opt-out line unless the text has one.
- **Pause / cancel** work mid-send: the task looks at the campaign's status before each batch.
  A paused campaign keeps its place and `resume` goes on from it; cancelling marks the recipients
  not yet sent *cancelled*.
- **Rate**: the provider's rate budget (per connection, in the shared HTTP client) paces the
  sends; a batch is small enough that pausing takes effect within seconds.
- **Sent**: when no recipient is left, the campaign is *sent*, audited once, and `campaign_sent`
  is sent after commit (the `campaign.sent` outbound hook).
- **A/B test** (email): with `subject_b` and `ab_share`, that share of the recipients is split
  between the two subjects; after `ab_wait_minutes` the subject with the higher open rate (ties:
  the first) goes to the rest.

Bodies, addresses and phone numbers are never logged.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from itertools import islice

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from integrations.errors import IntegrationError
from tenants import audit

from . import consent, messaging, segments, templating
from .messaging import UNCONFIRMED, MessageError
from .models import (
    Campaign,
    CampaignStatus,
    Channel,
    Message,
    MessageStatus,
    Recipient,
    RecipientState,
    SuppressionReason,
)
from .providers import get_provider
from .signals import campaign_sent

logger = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)
FREEZE_CHUNK = 1000
SEND_FUNC = "campaigns.sending.run"
DELIVERED = (MessageStatus.DELIVERED, MessageStatus.OPENED, MessageStatus.CLICKED)
NOT_DELIVERED = (MessageStatus.FAILED, MessageStatus.UNDELIVERED, MessageStatus.DROPPED)
# Campaigns a person may still stop.
STOPPABLE = (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED, CampaignStatus.SENDING, CampaignStatus.PAUSED)


class CampaignError(Exception):
    """A request about a campaign the hub refuses, with the field it is about."""

    def __init__(self, message: str, *, field: str = "non_field_errors") -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def batch_size() -> int:
    return max(1, int(getattr(settings, "CAMPAIGN_BATCH_SIZE", 100)))


# --- Checking and scheduling -------------------------------------------------------------------------


def check(campaign: Campaign) -> None:
    """Raise CampaignError when the campaign cannot be sent as it is."""
    connection = campaign.connection
    if connection.tenant_id != campaign.tenant_id:
        raise CampaignError("No such connection.", field="connection")
    if not connection.enabled:
        raise CampaignError("The connection is disabled.", field="connection")
    if messaging.channel_of(connection.platform) != campaign.channel:
        raise CampaignError(
            f"{connection.get_platform_display()} does not send {campaign.get_channel_display()}.", field="connection"
        )
    if campaign.segment_id is None:
        raise CampaignError("Choose the segment it goes to.", field="segment")
    if campaign.segment.tenant_id != campaign.tenant_id:
        raise CampaignError("No such segment.", field="segment")
    if campaign.channel == Channel.EMAIL:
        if not settings.PUBLIC_BASE_URL:
            raise CampaignError(
                "The hub's public address (PUBLIC_BASE_URL) is not set, so emails cannot carry an unsubscribe link.",
                field="connection",
            )
        if not campaign.subject.strip():
            raise CampaignError("Give the email a subject.", field="subject")
        if not campaign.html.strip() and not campaign.body.strip():
            raise CampaignError("Give the email its content: HTML, text or both.", field="html")
    elif not campaign.body.strip():
        raise CampaignError("Write the text message.", field="body")
    if campaign.subject_b and campaign.channel != Channel.EMAIL:
        raise CampaignError("Only email campaigns test two subjects.", field="subject_b")
    if campaign.ab_share and not (campaign.subject_b.strip() and 2 <= campaign.ab_share <= 50):
        raise CampaignError("An A/B test needs a second subject and a share between 2 and 50 percent.", "ab_share")
    for name in ("subject", "subject_b", "body", "html"):
        try:
            templating.check(getattr(campaign, name), field=name)
        except templating.TemplateProblem as problem:
            raise CampaignError(problem.message, field=problem.field) from problem


def schedule(campaign: Campaign, at: datetime | None = None, *, request=None) -> Campaign:
    """Schedule a draft for `at` (empty: now); queue it at once when it is due."""
    if campaign.status not in (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED):
        raise CampaignError(f"A {campaign.get_status_display().lower()} campaign cannot be scheduled.", field="status")
    check(campaign)
    now = timezone.now()
    campaign.scheduled_at = at or now
    campaign.status = CampaignStatus.SCHEDULED
    campaign.updated_at = now
    campaign.save(update_fields=["scheduled_at", "status", "updated_at"])
    audit.record("campaign.scheduled", request=request, tenant=campaign.tenant, target=campaign, at=str(at or "now"))
    if campaign.scheduled_at <= now:
        _enqueue(campaign.pk)
    return campaign


def pause(campaign: Campaign, *, request=None) -> Campaign:
    changed = Campaign.objects.filter(
        pk=campaign.pk, status__in=[CampaignStatus.SCHEDULED, CampaignStatus.SENDING]
    ).update(status=CampaignStatus.PAUSED, updated_at=timezone.now())
    if not changed:
        raise CampaignError("Only a scheduled or sending campaign can be paused.", field="status")
    audit.record("campaign.paused", request=request, tenant=campaign.tenant, target=campaign)
    campaign.refresh_from_db()
    return campaign


def resume(campaign: Campaign, *, request=None) -> Campaign:
    """A paused campaign goes on where it stopped (or waits for its time, if it never started)."""
    status = CampaignStatus.SENDING if campaign.recipients_frozen_at else CampaignStatus.SCHEDULED
    changed = Campaign.objects.filter(pk=campaign.pk, status=CampaignStatus.PAUSED).update(
        status=status, updated_at=timezone.now()
    )
    if not changed:
        raise CampaignError("Only a paused campaign can be resumed.", field="status")
    audit.record("campaign.resumed", request=request, tenant=campaign.tenant, target=campaign)
    campaign.refresh_from_db()
    if status == CampaignStatus.SENDING or (campaign.scheduled_at or timezone.now()) <= timezone.now():
        _enqueue(campaign.pk)
    return campaign


def cancel(campaign: Campaign, *, request=None) -> Campaign:
    now = timezone.now()
    with transaction.atomic():
        changed = Campaign.objects.filter(pk=campaign.pk, status__in=STOPPABLE).update(
            status=CampaignStatus.CANCELLED, finished_at=now, updated_at=now
        )
        if not changed:
            raise CampaignError("This campaign can no longer be cancelled.", field="status")
        Recipient.objects.filter(campaign=campaign, state=RecipientState.PENDING).update(
            state=RecipientState.CANCELLED, updated_at=now
        )
    audit.record("campaign.cancelled", request=request, tenant=campaign.tenant, target=campaign)
    campaign.refresh_from_db()
    return campaign


def due(now: datetime | None = None):
    """Campaigns due to send: scheduled ones whose time has come, and sending ones with no task
    (its worker died, or an A/B test's wait is over: the lease ran out)."""
    now = now or timezone.now()
    return Campaign.objects.filter(
        Q(status=CampaignStatus.SCHEDULED, scheduled_at__lte=now)
        | Q(status=CampaignStatus.SENDING) & (Q(lease_until__isnull=True) | Q(lease_until__lt=now))
    )


def send_due(now: datetime | None = None) -> list[int]:
    """Queue every due campaign (every minute on the cluster). Returns their ids."""
    ids = list(due(now).values_list("pk", flat=True))
    for pk in ids:
        _enqueue(pk)
    return ids


def _enqueue(campaign_id: int) -> None:
    from django_q.tasks import async_task

    transaction.on_commit(
        lambda: async_task(SEND_FUNC, campaign_id, task_name=f"campaign-{campaign_id}-{uuid.uuid4().hex[:8]}")
    )


# --- Sending -----------------------------------------------------------------------------------------


def run(campaign_id: int) -> str:
    """The send task: freeze the recipients once, then send batches until none is left, the
    campaign is paused or cancelled, or an A/B test waits for its result. Returns what it did."""
    owner = f"send-{uuid.uuid4().hex[:12]}"
    if not _take_lease(campaign_id, owner):
        return "busy or not due"
    campaign = Campaign.objects.select_related("connection", "segment", "tenant").get(pk=campaign_id)
    try:
        if campaign.recipients_frozen_at is None:
            freeze(campaign, owner=owner)
        _recover_interrupted(campaign)
        if _sends_itself(campaign):
            return _send_through_provider_campaign(campaign, owner)
        provider = get_provider(campaign.connection)  # one client for the whole send
        while True:
            status = Campaign.objects.values_list("status", flat=True).get(pk=campaign.pk)
            if status != CampaignStatus.SENDING:
                return f"stopped: {status}"
            batch = _next_batch(campaign)
            if not batch:
                if _waiting_for_test(campaign):
                    return "waiting for the A/B test"
                if Recipient.objects.filter(campaign=campaign, state=RecipientState.PENDING).exists():
                    continue  # the test is decided: the rest goes with the winning subject
                break
            _send_batch(campaign, batch, provider)
            _renew_lease(campaign.pk, owner)
        _finish(campaign)
        return "sent"
    except (IntegrationError, _Stop) as error:
        # The connection itself failed (credentials, configuration, an outage): a person looks.
        Campaign.objects.filter(pk=campaign.pk, status=CampaignStatus.SENDING).update(
            status=CampaignStatus.PAUSED, last_error=str(error)[:2000], updated_at=timezone.now()
        )
        logger.warning("Campaign %s paused: %s", campaign.pk, type(error).__name__)
        return "paused: " + str(error)
    finally:
        Campaign.objects.filter(pk=campaign_id, lease_owner=owner).update(lease_owner="", lease_until=None)


def _take_lease(campaign_id: int, owner: str) -> bool:
    now = timezone.now()
    with transaction.atomic():
        started = Campaign.objects.filter(
            pk=campaign_id, status=CampaignStatus.SCHEDULED, scheduled_at__lte=now
        ).update(status=CampaignStatus.SENDING, started_at=now, updated_at=now)
        taken = (
            Campaign.objects.filter(pk=campaign_id, status=CampaignStatus.SENDING)
            .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now) | Q(lease_owner=owner))
            .update(lease_owner=owner, lease_until=now + LEASE)
        )
    if started and taken:
        campaign = Campaign.objects.select_related("tenant").get(pk=campaign_id)
        audit.record("campaign.started", tenant=campaign.tenant, target=campaign)
    return bool(taken)


def _renew_lease(campaign_id: int, owner: str) -> None:
    Campaign.objects.filter(pk=campaign_id, lease_owner=owner).update(lease_until=timezone.now() + LEASE)


def freeze(campaign: Campaign, *, owner: str = "") -> int:
    """Write the campaign's recipients from its segment, once (an interrupted freeze is redone: the
    unique (campaign, address) keeps each person once). Returns how many there are."""
    rows = segments.recipients(campaign.tenant, campaign.segment.rules if campaign.segment else {}, campaign.channel)
    while chunk := list(islice(rows, FREEZE_CHUNK)):
        Recipient.objects.bulk_create(
            [
                Recipient(
                    tenant_id=campaign.tenant_id,
                    campaign_id=campaign.pk,
                    customer_id=r.customer_id,
                    address=r.address,
                    first_name=r.first_name[:100],
                    last_name=r.last_name[:100],
                    merge=r.merge,
                    variant=_variant(campaign, r.address),
                )
                for r in chunk
            ],
            ignore_conflicts=True,
        )
        if owner:
            _renew_lease(campaign.pk, owner)  # a big segment takes a while: keep the campaign
    now = timezone.now()
    Campaign.objects.filter(pk=campaign.pk).update(recipients_frozen_at=now)
    campaign.recipients_frozen_at = now
    return Recipient.objects.filter(campaign=campaign).count()


def _variant(campaign: Campaign, address: str) -> str:
    """A/B: a stable split by a hash of the address, so a refreeze puts everyone where they were."""
    if not campaign.ab_share or not campaign.subject_b:
        return ""
    bucket = int(hashlib.sha256(f"{campaign.uuid}:{address}".encode()).hexdigest()[:8], 16) % 10_000
    share = campaign.ab_share * 100  # in hundredths of a percent
    if bucket < share / 2:
        return "a"
    if bucket < share:
        return "b"
    return ""


def _recover_interrupted(campaign: Campaign) -> None:
    """Recipients a dead task left *sending*: done if their message was answered, failed as
    unconfirmed if it was stored but never answered (it may have gone), pending if never stored."""
    stuck = list(Recipient.objects.filter(campaign=campaign, state=RecipientState.SENDING).values_list("pk", flat=True))
    if not stuck:
        return
    messages = {
        m.purpose: m
        for m in Message.objects.for_tenant(campaign.tenant_id).filter(
            purpose__in=[_purpose(campaign, pk) for pk in stuck]
        )
    }
    now = timezone.now()
    for pk in stuck:
        message = messages.get(_purpose(campaign, pk))
        if message is None:
            Recipient.objects.filter(pk=pk).update(state=RecipientState.PENDING, updated_at=now)
        elif message.provider_id or message.status != MessageStatus.QUEUED:
            state = RecipientState.FAILED if message.status == MessageStatus.FAILED else RecipientState.SENT
            Recipient.objects.filter(pk=pk).update(state=state, message=message, updated_at=now)
        else:
            reason = (
                "The send stopped while this message was with the provider; it may have gone out, "
                "so it was not sent again."
            )
            Message.objects.filter(pk=message.pk).update(
                status=MessageStatus.FAILED, failure_code=UNCONFIRMED, failure_message=reason, updated_at=now
            )
            Recipient.objects.filter(pk=pk).update(
                state=RecipientState.FAILED, message=message, error=reason, updated_at=now
            )


def _purpose(campaign: Campaign, recipient_id: int) -> str:
    return f"campaign:{campaign.pk}:{recipient_id}"


def _next_batch(campaign: Campaign) -> list[Recipient]:
    """The next pending recipients, claimed (marked sending) in one UPDATE. During an A/B test,
    only the test's shares until a winner is chosen."""
    pending = Recipient.objects.filter(campaign=campaign, state=RecipientState.PENDING)
    if campaign.ab_share and campaign.subject_b and not campaign.ab_winner:
        pending = pending.exclude(variant="")
    ids = list(pending.order_by("pk").values_list("pk", flat=True)[: batch_size()])
    if not ids:
        return []
    Recipient.objects.filter(pk__in=ids, state=RecipientState.PENDING).update(
        state=RecipientState.SENDING, updated_at=timezone.now()
    )
    return list(Recipient.objects.filter(pk__in=ids).order_by("pk"))


class _Stop(Exception):
    """The connection, not the recipient, is the problem: pause the campaign for a person."""


# The provider refused the hub itself (the message provably did not go): the recipient waits.
CONNECTION_FAILURES = frozenset({"auth_error", "permission_denied", "configuration_error"})
# Twilio's error for a number that opted out (replied STOP): a send refused at once carries it.
TWILIO_UNSUBSCRIBED = "21610"
# Sends in a row the provider did not answer before the campaign is paused rather than burning the list.
MAX_UNCONFIRMED_IN_A_ROW = 3


def _send_batch(campaign: Campaign, batch: list[Recipient], provider) -> None:
    blocked = consent.suppressed(campaign.tenant_id, campaign.channel, [r.address for r in batch])
    now = timezone.now()
    unanswered = 0
    for index, recipient in enumerate(batch):
        if recipient.address in blocked:
            _set(recipient, RecipientState.SUPPRESSED, error="The address is on the suppression list.")
            continue
        try:
            message = _send_one(campaign, recipient, provider)
        except (MessageError, templating.TemplateProblem) as problem:
            _set(recipient, RecipientState.FAILED, error=getattr(problem, "message", str(problem)))
            continue
        if message.status == MessageStatus.FAILED and message.failure_code in CONNECTION_FAILURES:
            reason = message.failure_message
            message.delete()  # refused before anything was sent: this recipient is sent later
            _release(batch[index:])
            raise _Stop(reason)
        if message.failure_code == TWILIO_UNSUBSCRIBED:  # Twilio refused: the number replied STOP
            consent.suppress(
                campaign.tenant_id, campaign.channel, recipient.address, SuppressionReason.STOP, campaign=campaign
            )
        unanswered = unanswered + 1 if message.failure_code == UNCONFIRMED else 0
        state = RecipientState.FAILED if message.status == MessageStatus.FAILED else RecipientState.SENT
        _set(recipient, state, message=message, error=message.failure_message if state == RecipientState.FAILED else "")
        if unanswered >= MAX_UNCONFIRMED_IN_A_ROW:
            _release(batch[index + 1 :])
            raise _Stop(f"The provider did not answer {unanswered} sends in a row: {message.failure_message}")
    if batch and any(r.variant for r in batch) and not campaign.ab_sent_at:
        Campaign.objects.filter(pk=campaign.pk, ab_sent_at__isnull=True).update(ab_sent_at=now)
        campaign.ab_sent_at = now


def _release(recipients: list[Recipient]) -> None:
    Recipient.objects.filter(pk__in=[r.pk for r in recipients], state=RecipientState.SENDING).update(
        state=RecipientState.PENDING, updated_at=timezone.now()
    )


def _set(recipient: Recipient, state: str, *, message: Message | None = None, error: str = "") -> None:
    Recipient.objects.filter(pk=recipient.pk).update(
        state=state, message=message, error=error[:2000], updated_at=timezone.now()
    )


def _send_one(campaign: Campaign, recipient: Recipient, provider) -> Message:
    context = merge_context(campaign, recipient)
    zone = campaign.tenant.time_zone
    purpose = _purpose(campaign, recipient.pk)
    if campaign.channel == Channel.SMS:
        text = templating.render(campaign.body, context, time_zone=zone).strip()
        if "stop" not in text.lower():
            text = f"{text}\n{consent.SMS_OPT_OUT_FOOTER}"
        return messaging.send_sms(
            campaign.tenant, campaign.connection, recipient.address, text,
            purpose=purpose, provider=provider, audited=False,
        )  # fmt: skip
    subject = templating.render(_subject_for(campaign, recipient), context, time_zone=zone)
    html = templating.render(campaign.html, context, html=True, time_zone=zone) if campaign.html.strip() else ""
    text = templating.render(campaign.body, context, time_zone=zone) if campaign.body.strip() else ""
    url = context["unsubscribe_url"]
    if html and url not in html:
        html += f'\n<p style="font-size:12px;color:#666"><a href="{url}">Unsubscribe</a></p>'
    if text and url not in text:
        text += f"\n\nUnsubscribe: {url}"
    if html and not text:
        text = messaging.text_alternative(html)
    return messaging.send_email(
        campaign.tenant, campaign.connection, recipient.address, subject, html=html, text=text,
        purpose=purpose, headers=consent.list_unsubscribe_headers(recipient), provider=provider, audited=False,
    )  # fmt: skip


def _subject_for(campaign: Campaign, recipient: Recipient) -> str:
    if recipient.variant == "b" or (not recipient.variant and campaign.ab_winner == "b"):
        return campaign.subject_b
    return campaign.subject


def merge_context(campaign: Campaign, recipient: Recipient) -> dict:
    """What a campaign's templates may show about one recipient: plain data only."""
    merge = recipient.merge or {}
    return {
        "first_name": recipient.first_name,
        "last_name": recipient.last_name,
        "full_name": f"{recipient.first_name} {recipient.last_name}".strip(),
        "email": recipient.address if campaign.channel == Channel.EMAIL else "",
        "orders_count": merge.get("orders_count", 0),
        "total_spent": merge.get("total_spent", "0"),
        "currency": merge.get("currency", ""),
        "last_order": merge.get("last_order"),
        "discount_code": campaign.discount_code,
        # Email only: an SMS opts out by a STOP reply (and needs no public address).
        "unsubscribe_url": consent.unsubscribe_url(recipient) if campaign.channel == Channel.EMAIL else "",
        "company": campaign.tenant.name,
    }


def _waiting_for_test(campaign: Campaign) -> bool:
    """During an A/B test with its shares sent: choose the winner once the wait is over (then the
    rest goes out), or say to wait (the campaign stays sending; `send_due` comes back to it)."""
    if not (campaign.ab_share and campaign.subject_b) or campaign.ab_winner:
        return False
    if not Recipient.objects.filter(campaign=campaign, state=RecipientState.PENDING, variant="").exists():
        winner = _winner(campaign)  # nobody is left for the winner: record the result anyway
        Campaign.objects.filter(pk=campaign.pk).update(ab_winner=winner)
        campaign.ab_winner = winner
        return False
    sent_at = campaign.ab_sent_at or timezone.now()
    if timezone.now() < sent_at + timedelta(minutes=campaign.ab_wait_minutes):
        # Come back when the wait is over: the lease is left to run out then, so send_due requeues it.
        Campaign.objects.filter(pk=campaign.pk).update(
            lease_until=sent_at + timedelta(minutes=campaign.ab_wait_minutes), lease_owner="ab-test"
        )
        return True
    winner = _winner(campaign)
    Campaign.objects.filter(pk=campaign.pk).update(ab_winner=winner)
    campaign.ab_winner = winner
    audit.record("campaign.ab_winner", tenant=campaign.tenant, target=campaign, winner=winner)
    return False


def _winner(campaign: Campaign) -> str:
    rates = {}
    for variant in ("a", "b"):
        figures = Recipient.objects.filter(campaign=campaign, variant=variant, state=RecipientState.SENT).aggregate(
            sent=Count("pk"), opened=Count("pk", filter=Q(message__opened_at__isnull=False))
        )
        rates[variant] = figures["opened"] / figures["sent"] if figures["sent"] else 0.0
    return "b" if rates["b"] > rates["a"] else "a"


def _finish(campaign: Campaign) -> None:
    now = timezone.now()
    with transaction.atomic():
        finished = Campaign.objects.filter(pk=campaign.pk, status=CampaignStatus.SENDING).update(
            status=CampaignStatus.SENT, finished_at=now, updated_at=now
        )
        if not finished:
            return
        campaign.refresh_from_db()
        figures = stats(campaign)
        audit.record(
            "campaign.sent",
            tenant=campaign.tenant,
            target=campaign,
            recipients=figures["recipients"],
            sent=figures["sent"],
            failed=figures["failed"],
        )
        pk, tenant_id = campaign.pk, campaign.tenant_id
        transaction.on_commit(lambda: campaign_sent.send(sender=Campaign, tenant_id=tenant_id, campaign_id=pk))


# --- Providers that send a campaign themselves (Mailchimp) ---------------------------------------------


def _sends_itself(campaign: Campaign) -> bool:
    return not messaging.sends_one_off(campaign.connection.platform)


def _send_through_provider_campaign(campaign: Campaign, owner: str) -> str:
    """Mailchimp sends a campaign to its own audience: the hub syncs the frozen recipients (less the
    suppressed) into the audience, hands the provider one campaign for exactly those addresses, and
    records its id; opens and clicks come from the provider's report (`refresh_provider_report`)."""
    from .providers.mailchimp import AudienceMember, CampaignSend, SendUnconfirmed

    if campaign.provider_campaign_id:  # handed over already: a second send would mail everyone twice
        _finish(campaign)
        return "sent"
    provider = get_provider(campaign.connection)
    # Whoever unsubscribed in Mailchimp is suppressed in the hub too (for every channel's sends).
    for email, _ in provider.unsubscribed_since(None):
        consent.suppress(campaign.tenant_id, Channel.EMAIL, email, SuppressionReason.PROVIDER, detail="mailchimp")
    pending = Recipient.objects.filter(campaign=campaign, state__in=[RecipientState.PENDING, RecipientState.SENDING])
    addresses = list(pending.values_list("address", flat=True))
    blocked = set()
    for chunk in _chunks(addresses, 1000):
        blocked |= consent.suppressed(campaign.tenant_id, campaign.channel, chunk)
    pending.filter(address__in=blocked).update(state=RecipientState.SUPPRESSED, updated_at=timezone.now())
    members = [
        AudienceMember(email=r.address, first_name=r.first_name, last_name=r.last_name)
        for r in pending.exclude(address__in=blocked)
    ]
    result = provider.sync_audience(members)
    refused = {email for email, _ in result.failed}
    _renew_lease(campaign.pk, owner)
    for email, reason in result.failed:
        pending.filter(address=email).update(
            state=RecipientState.FAILED, error=reason[:2000], updated_at=timezone.now()
        )
    emails = tuple(m.email for m in members if m.email not in refused)
    context = {"company": campaign.tenant.name, "discount_code": campaign.discount_code, "unsubscribe_url": "*|UNSUB|*"}
    html = templating.render(campaign.html, context, html=True) if campaign.html.strip() else ""
    text = templating.render(campaign.body, context) if campaign.body.strip() else messaging.text_alternative(html)
    if emails:
        send = CampaignSend(
            subject=templating.render(campaign.subject, context),
            html=html,
            text=text,
            emails=emails,
            title=campaign.name,
            from_name=campaign.tenant.name,
        )
        try:
            campaign_id, problem = provider.send_campaign(send), ""
        except SendUnconfirmed as unconfirmed:
            # It may have gone out: recorded as handed over, never sent a second time.
            campaign_id, problem = unconfirmed.campaign_id, str(unconfirmed)
        Campaign.objects.filter(pk=campaign.pk).update(provider_campaign_id=campaign_id[:128], last_error=problem)
        campaign.provider_campaign_id = campaign_id
    pending.filter(address__in=emails).update(state=RecipientState.SENT, updated_at=timezone.now())
    _finish(campaign)
    return "sent"


def refresh_provider_report(campaign: Campaign) -> dict:
    """Read the provider's figures for a campaign it sent (Mailchimp) into the campaign."""
    if not campaign.provider_campaign_id:
        return {}
    report = get_provider(campaign.connection).campaign_report(campaign.provider_campaign_id)
    Campaign.objects.filter(pk=campaign.pk).update(provider_report=report)
    campaign.provider_report = report
    return report


def _chunks(items: list, size: int) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --- Figures -----------------------------------------------------------------------------------------


def stats(campaign: Campaign) -> dict:
    """The campaign's figures in one query (and one for unsubscribes), with rates over `sent`."""
    figures = Recipient.objects.filter(campaign=campaign).aggregate(
        recipients=Count("pk"),
        pending=Count("pk", filter=Q(state__in=[RecipientState.PENDING, RecipientState.SENDING])),
        sent=Count("pk", filter=Q(state=RecipientState.SENT)),
        delivered=Count("pk", filter=Q(message__status__in=DELIVERED) | Q(message__opened_at__isnull=False)),
        opened=Count("pk", filter=Q(message__opened_at__isnull=False)),
        clicked=Count("pk", filter=Q(message__clicked_at__isnull=False)),
        bounced=Count("pk", filter=Q(message__status=MessageStatus.BOUNCED)),
        failed=Count(
            "pk",
            filter=Q(state=RecipientState.FAILED) | Q(state=RecipientState.SENT, message__status__in=NOT_DELIVERED),
        ),
        suppressed=Count("pk", filter=Q(state=RecipientState.SUPPRESSED)),
        cancelled=Count("pk", filter=Q(state=RecipientState.CANCELLED)),
    )
    from .models import Suppression

    figures["unsubscribed"] = (
        Suppression.objects.for_tenant(campaign.tenant_id)
        .filter(campaign=campaign, reason__in=[SuppressionReason.UNSUBSCRIBED, SuppressionReason.STOP])
        .count()
    )
    if campaign.provider_campaign_id:
        # The provider sent it and counts its opens and clicks (refreshed by refresh_provider_report).
        figures.update({k: v for k, v in (campaign.provider_report or {}).items() if k in figures})
    sent = figures["sent"]
    for name in ("delivered", "opened", "clicked", "bounced", "unsubscribed", "failed"):
        figures[f"{name}_rate"] = round(figures[name] / sent, 4) if sent else 0.0
    return figures
