"""WooCommerce: `X-WC-Webhook-Signature` is the base64 HMAC-SHA256 of the raw body with the
webhook's secret (the hub sets it when it registers the webhook; one created by hand in
WooCommerce → Settings → Advanced → Webhooks has its secret copied to the connection).

When a webhook is created, WooCommerce pings its address with a form body `webhook_id=<id>` and no
signature, and keeps the webhook only if the answer is a 2xx: the ping is answered, not stored.

WooCommerce sends no event id that stays the same across deliveries, so a delivery is identified
by its topic, resource id and the resource's modified time: the same version of the same resource
delivered twice is one event.
"""

from __future__ import annotations

import re

from django.http import JsonResponse

from .base import (
    Delivery,
    Incoming,
    Malformed,
    Receiver,
    json_object,
    require_base64_hmac,
    topic_header,
)
from .common import parse_time

PING = re.compile(rb"^webhook_id=\d+$")


class WooCommerceReceiver(Receiver):
    provider = "woocommerce"
    content_types = ("application/json", "application/x-www-form-urlencoded")

    def handshake(self, delivery: Delivery) -> JsonResponse | None:
        if delivery.content_type == "application/x-www-form-urlencoded":
            if PING.match(delivery.body.strip()):
                return JsonResponse({"status": "pong"})
            raise Malformed("A form body is only accepted as WooCommerce's webhook_id ping.")
        return None

    def verify(self, delivery: Delivery) -> None:
        require_base64_hmac(delivery, "X-WC-Webhook-Signature", ("webhook_secret",), "the webhook's secret")

    def parse(self, delivery: Delivery) -> list[Incoming]:
        topic = topic_header(delivery, "X-WC-Webhook-Topic")
        body = json_object(delivery)
        resource_id = str(body.get("id") or delivery.header("X-WC-Webhook-Resource-Id") or "")
        modified = body.get("date_modified_gmt") or ""
        if resource_id and modified:
            event_id = f"{topic}:{resource_id}:{modified}"
        else:
            event_id = delivery.header("X-WC-Webhook-Delivery-Id").strip()
        return [
            Incoming(
                topic=topic,
                event_id=event_id,
                resource_id=resource_id,
                resource_updated_at=parse_time(modified) if modified else None,
            )
        ]
