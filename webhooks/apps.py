from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    """Inbound webhook receipt and outbound hooks (see docs/architecture.md)."""

    name = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        from . import signals  # noqa: F401
