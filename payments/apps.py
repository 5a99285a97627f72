from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    """Payment gateways behind one interface (see docs/architecture.md)."""

    name = "payments"
