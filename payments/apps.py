from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    """Payment gateways behind one interface (see docs/payments.md)."""

    name = "payments"

    def ready(self) -> None:
        from integrations.connectors import CONNECTORS

        from . import activity  # noqa: F401  (connect the receivers)
        from .gateways import GATEWAYS

        # Payment connections are tested through integrations' registry like every connection.
        for platform in GATEWAYS:
            CONNECTORS.setdefault(platform, "payments.gateways.connector.GatewayConnector")
