"""Square: `x-square-hmacsha256-signature` is the base64 HMAC-SHA256 of the notification URL
followed by the raw body, with the subscription's signature key.

The URL must be the one entered in the Square subscription, byte for byte: the connection's
`notification_url` when set (behind a proxy the address a request arrives at can differ), else the
address this request arrived at. The body's `event_id` is Square's idempotency key, the same on
every retry.
"""

from __future__ import annotations

from .base import (
    Delivery,
    Incoming,
    Malformed,
    Receiver,
    Rejected,
    hmac_base64,
    matches_any,
    require_header,
    require_secrets,
)
from .common import parse_time


class SquareReceiver(Receiver):
    provider = "square"
    uses_url = True

    def verify(self, delivery: Delivery) -> None:
        given = require_header(delivery, "x-square-hmacsha256-signature")
        keys = require_secrets(delivery, "webhook_signature_key")
        url = str((delivery.connection.credentials or {}).get("notification_url") or "").strip() or delivery.url
        message = url.encode() + delivery.body
        if not matches_any((hmac_base64(key, message) for key in keys), given):
            raise Rejected(
                "x-square-hmacsha256-signature does not match the notification URL and body signed with the "
                "subscription's signature key (check the key, and that the notification URL is exactly Square's)."
            )

    def parse(self, delivery: Delivery) -> list[Incoming]:
        event = delivery.json()
        if not isinstance(event, dict) or not event.get("type"):
            raise Malformed("The body is not a Square event (an object with a type).")
        data = event.get("data") if isinstance(event.get("data"), dict) else {}
        # data.object holds the resource under its type's name: {"type": "payment", "object": {"payment": {…}}}.
        holder = data.get("object") if isinstance(data.get("object"), dict) else {}
        resource = holder.get(str(data.get("type") or "")) or {}
        return [
            Incoming(
                topic=str(event["type"]),
                event_id=str(event.get("event_id") or ""),
                resource_id=str(data.get("id") or ""),
                resource_updated_at=parse_time(resource.get("updated_at")) if isinstance(resource, dict) else None,
            )
        ]
