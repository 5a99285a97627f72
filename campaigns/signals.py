"""Signals campaigns send about its work, for apps that react (the outbound `campaign.sent` hook)."""

from django.dispatch import Signal

# Sent after a campaign's last recipient is done and the change committed. kwargs: tenant_id, campaign_id
campaign_sent = Signal()
