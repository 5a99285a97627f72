"""Keeping a connection's webhook subscriptions on its platform in step with what the hub wants.

`register(connection)` runs after every successful connection test (through the
`connection_tested` signal, in a task): it lists the platform's subscriptions, creates the topics
missing at the hub's address, deletes ones at that address the hub no longer wants (and extra
copies of a topic), and records the result in `WebhookSubscription` rows. Running it again changes
nothing. `unregister(connection)` removes them when the connection is deleted.

Addresses need the hub's public address (`PUBLIC_BASE_URL`); without it nothing is registered and
the scheduled syncs alone keep data current.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.urls import reverse

from integrations.errors import IntegrationError
from integrations.models import Connection

from .models import WebhookSubscription

logger = logging.getLogger(__name__)


@dataclass
class Registration:
    registered: list[str] = field(default_factory=list)  # topics the platform now sends to the hub
    created: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: str = ""
    error: str = ""

    @property
    def summary(self) -> str:
        if self.skipped:
            return f"not registered: {self.skipped}"
        if self.error:
            return f"failed: {self.error}"
        return f"{len(self.registered)} topics registered ({len(self.created)} new, {len(self.removed)} removed)"


def registrars() -> dict:
    from integrations.connectors.webhook_registration import REGISTRARS

    return REGISTRARS


def webhook_address(connection: Connection) -> str:
    base = settings.PUBLIC_BASE_URL
    if not base:
        return ""
    path = reverse("webhooks:receive", kwargs={"provider": connection.platform, "connection_uuid": connection.uuid})
    return base + path


def can_register(connection: Connection) -> bool:
    return connection.platform in registrars() and bool(settings.PUBLIC_BASE_URL) and not connection.is_demo


def register(connection: Connection) -> Registration:
    from integrations.connectors import get_connector

    if connection.platform not in registrars():
        return Registration(skipped=f"{connection.get_platform_display()} webhooks are not registered by the hub")
    address = webhook_address(connection)
    if not address:
        return Registration(skipped="PUBLIC_BASE_URL is not set, so the hub has no address to give the platform")
    _ensure_secret(connection)
    registrar = registrars()[connection.platform](get_connector(connection))
    outcome = Registration()
    try:
        ours = [hook for hook in registrar.list() if hook.address == address]
        kept = {}
        for hook in ours:
            # WooCommerce disables a webhook after repeated failed deliveries: one that no longer
            # delivers is replaced, not kept.
            if hook.topic in registrar.topics and hook.topic not in kept and getattr(hook, "active", True):
                kept[hook.topic] = hook
            else:
                registrar.delete(hook.remote_id)
                outcome.removed.append(hook.topic)
        for topic in registrar.topics:
            if topic not in kept:
                kept[topic] = registrar.create(topic, address)
                outcome.created.append(topic)
    except IntegrationError as error:
        outcome.error = error.message
        logger.warning("Webhook registration failed for connection %s: %s", connection.pk, error.message)
        return outcome
    with transaction.atomic():
        WebhookSubscription.objects.filter(connection=connection).exclude(topic__in=list(kept)).delete()
        for topic, hook in kept.items():
            WebhookSubscription.objects.update_or_create(
                connection=connection,
                topic=topic,
                defaults={"tenant_id": connection.tenant_id, "address": address, "remote_id": str(hook.remote_id)},
            )
    outcome.registered = sorted(kept)
    return outcome


def unregister(connection: Connection) -> Registration:
    """Delete the hub's subscriptions on the platform (best effort: the platform also drops
    subscriptions that keep failing) and forget them."""
    from integrations.connectors import get_connector

    outcome = Registration()
    subscriptions = list(WebhookSubscription.objects.filter(connection=connection))
    if subscriptions and connection.platform in registrars():
        try:
            registrar = registrars()[connection.platform](get_connector(connection))
            for subscription in subscriptions:
                registrar.delete(subscription.remote_id)
                outcome.removed.append(subscription.topic)
        except IntegrationError as error:
            outcome.error = error.message
            logger.warning("Could not delete webhooks of connection %s: %s", connection.pk, error.message)
    WebhookSubscription.objects.filter(connection=connection).delete()
    return outcome


def _ensure_secret(connection: Connection) -> None:
    """WooCommerce signs with a secret the hub chooses when it creates the webhook."""
    if connection.platform == "woocommerce" and not (connection.credentials or {}).get("webhook_secret"):
        connection.credentials = {**(connection.credentials or {}), "webhook_secret": secrets.token_urlsafe(32)}
        connection.save(update_fields=["credentials", "updated_at"])
