from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    """Email and SMS campaigns to customer segments (see docs/architecture.md)."""

    name = "campaigns"
