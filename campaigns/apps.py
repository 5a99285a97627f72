from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    """Email and SMS campaigns to customer segments, and one-off messages (see docs/messaging.md)."""

    name = "campaigns"

    def ready(self) -> None:
        from integrations.connectors import CONNECTORS

        from . import activity, shipping_notices  # noqa: F401  (connect the receivers)
        from .providers import PROVIDERS

        # Messaging connections are tested through integrations' registry like every connection.
        for platform in PROVIDERS:
            CONNECTORS.setdefault(platform, "campaigns.providers.connector.ProviderConnector")
        # Mailchimp also syncs its audience from the hub's customers (a push stream).
        CONNECTORS["mailchimp"] = "campaigns.providers.connector.MailchimpConnector"
