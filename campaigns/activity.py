"""The activity stream's entry for a campaign that was sent (tenants.activity)."""

from __future__ import annotations

from django.db.models import Count
from django.dispatch import receiver

from tenants import activity
from tenants.models import ActivityKind, ActivityLevel

from .models import Campaign, Recipient, RecipientState
from .signals import campaign_sent


@receiver(campaign_sent, dispatch_uid="activity-campaign-sent")
def record_campaign_sent(sender, tenant_id: int, campaign_id: int, **kwargs) -> None:
    # campaign_sent is sent after the campaign's last change committed.
    campaign = Campaign.objects.for_tenant(tenant_id).filter(pk=campaign_id).first()
    if campaign is None:
        return
    states = dict(
        Recipient.objects.for_tenant(tenant_id)
        .filter(campaign_id=campaign_id)
        .values_list("state")
        .annotate(n=Count("pk"))
        .order_by()
    )
    sent, failed = states.get(RecipientState.SENT, 0), states.get(RecipientState.FAILED, 0)
    activity.record(
        tenant_id,
        ActivityKind.CAMPAIGN_SENT,
        f"Campaign “{campaign.name}” ({campaign.get_channel_display()}) sent to {sent} recipient"
        f"{'' if sent == 1 else 's'}" + (f"; {failed} failed." if failed else "."),
        level=ActivityLevel.WARNING if failed else ActivityLevel.INFO,
        connection_id=campaign.connection_id,
        subject=f"campaign:{campaign_id}",
        data={"sent": sent, "failed": failed},
    )
