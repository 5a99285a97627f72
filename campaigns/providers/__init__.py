"""Messaging providers, one module each, registered here by dotted path (see base.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils.module_loading import import_string

from integrations.errors import ConfigurationError

if TYPE_CHECKING:
    from integrations.models import Connection

    from .base import MessagingProvider

PROVIDERS: dict[str, str] = {
    "twilio": "campaigns.providers.twilio.TwilioProvider",
    "sendgrid": "campaigns.providers.sendgrid.SendGridProvider",
    "mailchimp": "campaigns.providers.mailchimp.MailchimpProvider",
}


def get_provider(connection: Connection, **kwargs) -> MessagingProvider:
    path = PROVIDERS.get(connection.platform)
    if path is None:
        raise ConfigurationError(f"{connection.get_platform_display()} cannot send messages from the hub yet.")
    return import_string(path)(connection, **kwargs)
