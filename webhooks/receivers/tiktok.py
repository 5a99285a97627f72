"""TikTok Shop: the `Authorization` header (no "Bearer") is the hex HMAC-SHA256 of the app key
followed by the raw body, keyed with the app secret. The header is never stored.

The body is {type, tts_notification_id, shop_id, timestamp, data}; `type` is a number, named below
as TikTok names the event when it is subscribed to. A body without `tts_notification_id` is
identified by a hash of what it says, so the same notification delivered twice is one event.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

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

TOPICS = {
    1: "ORDER_STATUS_CHANGE",
    2: "REVERSE_STATUS_UPDATE",
    3: "RECIPIENT_ADDRESS_UPDATE",
    4: "PACKAGE_UPDATE",
    5: "PRODUCT_STATUS_CHANGE",
    6: "SELLER_DEAUTHORIZATION",
    7: "UPCOMING_AUTHORIZATION_EXPIRATION",
    11: "CANCELLATION_STATUS_CHANGE",
    12: "RETURN_STATUS_CHANGE",
    13: "NEW_CONVERSATION",
    14: "NEW_MESSAGE",
    15: "PRODUCT_INFORMATION_CHANGE",
    16: "PRODUCT_CREATION",
    18: "PRODUCT_CATEGORY_CHANGE",
}


def unix_time(value: object) -> datetime | None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        return datetime.fromtimestamp(value, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


class TikTokReceiver(Receiver):
    provider = "tiktok"

    def verify(self, delivery: Delivery) -> None:
        given = require_header(delivery, "Authorization")
        app_key = require_secrets(delivery, "app_key")[0]
        secrets = require_secrets(delivery, "app_secret")
        message = app_key.encode() + delivery.body
        if not matches_any((hmac_hex(secret, message) for secret in secrets), given):
            raise Rejected("Authorization does not match the app key and body signed with the app secret.")

    def parse(self, delivery: Delivery) -> list[Incoming]:
        body = delivery.json()
        if not isinstance(body, dict) or body.get("type") is None:
            raise Malformed("The body is not a TikTok Shop notification (an object with a type).")
        kind = body["type"]
        data = body.get("data") if isinstance(body.get("data"), dict) else {}
        event_id = str(body.get("tts_notification_id") or "")
        if not event_id:
            said = [kind, body.get("shop_id"), body.get("timestamp"), body.get("data")]
            event_id = hashlib.sha256(json.dumps(said, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
        return [
            Incoming(
                topic=TOPICS.get(int(kind), str(kind)) if str(kind).isdecimal() else str(kind),
                event_id=event_id,
                resource_id=str(data.get("order_id") or data.get("product_id") or ""),
                resource_updated_at=unix_time(data.get("update_time")),
            )
        ]
