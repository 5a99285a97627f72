from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    """Inbound webhook receipt and outbound hooks (see docs/architecture.md)."""

    name = "webhooks"
