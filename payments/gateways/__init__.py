"""Payment gateways, one module each, registered here by dotted path (see base.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils.module_loading import import_string

from integrations.errors import ConfigurationError

if TYPE_CHECKING:
    from integrations.models import Connection

    from .base import Gateway

GATEWAYS: dict[str, str] = {
    "stripe": "payments.gateways.stripe.StripeGateway",
    "paypal": "payments.gateways.paypal.PayPalGateway",
    "square": "payments.gateways.square.SquareGateway",
    "authorize_net": "payments.gateways.authorize_net.AuthorizeNetGateway",
}


def get_gateway(connection: Connection, **kwargs) -> Gateway:
    path = GATEWAYS.get(connection.platform)
    if path is None:
        raise ConfigurationError(f"{connection.get_platform_display()} is not a payment gateway.")
    return import_string(path)(connection, **kwargs)
