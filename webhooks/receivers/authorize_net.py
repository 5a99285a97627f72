"""Authorize.Net: `X-ANET-Signature: sha512=<HEX>` is the HMAC-SHA512 of the raw body with the
account's Signature Key (Merchant Interface → Account → Settings → API Credentials and Keys), in
hex; Authorize.Net writes it in upper case, so it is compared case-insensitively (in constant time).

The body's `notificationId` is the same on every retry of a notification, so it is the event id;
`eventType` is the topic; `payload.id` the transaction the event is about; `eventDate` its time.
"""

from __future__ import annotations

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
from .common import parse_time

PREFIX = "sha512="


class AuthorizeNetReceiver(Receiver):
    provider = "authorize_net"

    def verify(self, delivery: Delivery) -> None:
        given = require_header(delivery, "X-ANET-Signature")
        if not given.lower().startswith(PREFIX):
            raise Rejected("X-ANET-Signature is not of the form sha512=<hex>.")
        keys = require_secrets(delivery, "signature_key")
        digest = given[len(PREFIX) :].strip().lower()
        if not matches_any((hmac_hex(key, delivery.body, "sha512") for key in keys), digest):
            raise Rejected("X-ANET-Signature does not match the body signed with the account's signature key.")

    def parse(self, delivery: Delivery) -> list[Incoming]:
        event = delivery.json()
        if not isinstance(event, dict) or not event.get("eventType") or not event.get("notificationId"):
            raise Malformed(
                "The body is not an Authorize.Net notification (an object with a notificationId and eventType)."
            )
        payload = event.get("payload") if isinstance(event.get("payload"), dict) else {}
        return [
            Incoming(
                topic=str(event["eventType"]),
                event_id=str(event["notificationId"]),
                resource_id=str(payload.get("id") or ""),
                resource_updated_at=parse_time(event.get("eventDate")),
            )
        ]
