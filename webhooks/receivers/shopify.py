"""Shopify: `X-Shopify-Hmac-Sha256` is the base64 HMAC-SHA256 of the raw body.

Webhooks an app registers are signed with the app's client secret; ones created in the Shopify
admin (Settings → Notifications) with the signing secret shown there. After either is rotated
Shopify keeps signing with the old one for up to an hour, so replaced values still verify for
WEBHOOK_SECRET_GRACE_SECONDS (see `Connection.secret_candidates`).
"""

from __future__ import annotations

from .base import (
    Delivery,
    Incoming,
    Receiver,
    json_object,
    require_base64_hmac,
    topic_header,
)
from .common import parse_time


class ShopifyReceiver(Receiver):
    provider = "shopify"

    def verify(self, delivery: Delivery) -> None:
        require_base64_hmac(
            delivery, "X-Shopify-Hmac-Sha256", ("webhook_secret", "client_secret"), "the connection's secret"
        )

    def parse(self, delivery: Delivery) -> list[Incoming]:
        topic = topic_header(delivery, "X-Shopify-Topic")
        body = json_object(delivery)
        # The webhook id is the same on every retry of one delivery; the event id is shared by all
        # the topics one change triggers, so it only identifies a delivery together with its topic.
        event_id = delivery.header("X-Shopify-Webhook-Id").strip()
        if not event_id and delivery.header("X-Shopify-Event-Id"):
            event_id = f"{topic}:{delivery.header('X-Shopify-Event-Id').strip()}"
        resource = body.get("admin_graphql_api_id") or body.get("id") or body.get("inventory_item_id") or ""
        return [
            Incoming(
                topic=topic,
                event_id=event_id,
                resource_id=str(resource),
                resource_updated_at=parse_time(body.get("updated_at")),
            )
        ]
