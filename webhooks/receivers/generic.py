"""The generic receiver, for any service that can sign with a shared secret:
`POST /webhooks/third-party/<service>/<connection uuid>/`.

The sender signs `<timestamp>.<raw body>` with HMAC-SHA256 and the connection's webhook secret
(generated on the connection's admin page) and sends

    X-Hub-Timestamp: <unix seconds>
    X-Hub-Signature-256: sha256=<hex digest>
    X-Hub-Event: <topic>            (or "event"/"type" in the JSON body)
    X-Hub-Event-Id: <unique id>     (or "id" in the JSON body)

A timestamp further than WEBHOOK_TIMESTAMP_TOLERANCE_SECONDS from now is refused, so a captured
delivery cannot be replayed later.
"""

from __future__ import annotations

import time

from django.conf import settings

from integrations.models import HUB_WEBHOOK_SECRET

from .base import (
    Delivery,
    Incoming,
    Malformed,
    Receiver,
    Rejected,
    hmac_hex,
    matches_any,
    require_header,
    require_secrets,
)


class GenericReceiver(Receiver):
    provider = "third-party"

    def verify(self, delivery: Delivery) -> None:
        stamp = require_header(delivery, "X-Hub-Timestamp")
        given = require_header(delivery, "X-Hub-Signature-256")
        try:
            sent = int(stamp)
            stale = abs(time.time() - sent) > settings.WEBHOOK_TIMESTAMP_TOLERANCE_SECONDS
        except (ValueError, OverflowError):
            raise Rejected("X-Hub-Timestamp is not a Unix time in seconds.") from None
        if stale:
            raise Rejected("X-Hub-Timestamp is too far from now: the delivery is stale or replayed.")
        secrets = require_secrets(delivery, HUB_WEBHOOK_SECRET)
        message = stamp.encode() + b"." + delivery.body
        expected = ("sha256=" + hmac_hex(s, message) for s in secrets)
        if not matches_any(expected, given):
            raise Rejected("X-Hub-Signature-256 does not match the timestamp and body signed with the secret.")

    def parse(self, delivery: Delivery) -> list[Incoming]:
        body = delivery.json()
        if not isinstance(body, dict):
            raise Malformed("The body is not a JSON object.")
        topic = delivery.header("X-Hub-Event").strip() or str(body.get("event") or body.get("type") or "")
        if not topic:
            raise Malformed("No event name: send X-Hub-Event or an “event” field.")
        event_id = delivery.header("X-Hub-Event-Id").strip() or str(body.get("id") or "")
        return [Incoming(topic=topic, event_id=event_id)]
