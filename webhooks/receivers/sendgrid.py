"""SendGrid signed Event Webhook: `X-Twilio-Email-Event-Webhook-Signature` is a base64 (DER)
ECDSA P-256 / SHA-256 signature over the `X-Twilio-Email-Event-Webhook-Timestamp` value followed by
the raw body, checked with the verification key SendGrid shows under Settings → Mail Settings →
Event Webhook (base64 DER SubjectPublicKeyInfo), kept in the connection's `webhook_public_key`.

SendGrid documents no freshness window; a timestamp further than WEBHOOK_TIMESTAMP_TOLERANCE_SECONDS
from now is refused so a captured batch cannot be replayed. The body is a JSON array of events:
each becomes its own event, identified by its `sg_event_id`.
"""

from __future__ import annotations

import base64
import binascii
import time

from cryptography.hazmat.primitives import hashes
from django.conf import settings

from .base import Delivery, Incoming, Malformed, Receiver, Rejected, require_header, require_secrets
from .public_keys import ec_public_key, ecdsa_verifies

SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"


class SendGridReceiver(Receiver):
    provider = "sendgrid"

    def verify(self, delivery: Delivery) -> None:
        given = require_header(delivery, SIGNATURE)
        stamp = require_header(delivery, TIMESTAMP)
        try:
            age = abs(time.time() - int(stamp))
        except (ValueError, OverflowError):
            raise Rejected(f"{TIMESTAMP} is not a Unix time in seconds.") from None
        if age > settings.WEBHOOK_TIMESTAMP_TOLERANCE_SECONDS:
            raise Rejected(f"{TIMESTAMP} is too far from now: the delivery is stale or replayed.")
        try:
            signature = base64.b64decode(given, validate=True)
        except binascii.Error:
            raise Rejected(f"{SIGNATURE} is not base64.") from None
        try:
            keys = [ec_public_key(text) for text in require_secrets(delivery, "webhook_public_key")]
        except ValueError:
            raise Rejected(
                "The connection's event webhook verification key is not the base64 public key SendGrid shows."
            ) from None
        message = stamp.encode() + delivery.body
        if not any(ecdsa_verifies(key, signature, message, hashes.SHA256()) for key in keys):
            raise Rejected(f"{SIGNATURE} does not match the timestamp and body for the verification key.")

    def parse(self, delivery: Delivery) -> list[Incoming]:
        events = delivery.json()
        if not isinstance(events, list) or not all(isinstance(event, dict) for event in events):
            raise Malformed("The body is not a JSON array of SendGrid events.")
        return [
            Incoming(
                topic=str(event.get("event") or ""),
                event_id=str(event.get("sg_event_id") or ""),
                resource_id=str(event.get("sg_message_id") or ""),
                payload=event,
            )
            for event in events
        ]
