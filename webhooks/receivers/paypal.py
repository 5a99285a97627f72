"""PayPal: a delivery is verified by asking PayPal. `POST /v1/notifications/verify-webhook-signature`
with the five PAYPAL-* transmission headers, the connection's webhook ID and the event answers
`verification_status` SUCCESS or FAILURE; the call takes an app token (`POST /v1/oauth2/token`,
client credentials). Live or sandbox API by the connection's `environment`, or its base URL.

The event goes into that request exactly as delivered: PayPal checks it against the bytes it signed,
and decoding and re-encoding it (1.0 → 1, key order, {} → []) makes genuine deliveries fail.
When PayPal cannot be asked (timeout, 5xx) the delivery is answered 503 and PayPal sends it again.
"""

from __future__ import annotations

import json

from .base import Delivery, Incoming, Malformed, Receiver, Rejected, require_header, require_secrets
from .common import parse_time
from .remote import AppToken, client

LIVE = "https://api-m.paypal.com"
SANDBOX = "https://api-m.sandbox.paypal.com"
# verify-webhook-signature field: the delivery header it comes from
TRANSMISSION = {
    "auth_algo": "PAYPAL-AUTH-ALGO",
    "cert_url": "PAYPAL-CERT-URL",
    "transmission_id": "PAYPAL-TRANSMISSION-ID",
    "transmission_sig": "PAYPAL-TRANSMISSION-SIG",
    "transmission_time": "PAYPAL-TRANSMISSION-TIME",
}


def event_object(delivery: Delivery) -> dict:
    try:
        event = delivery.json()
    except RecursionError:  # read before PayPal is asked, so anyone can send it
        raise Malformed("The body is nested too deeply to be a PayPal event.") from None
    if not isinstance(event, dict):
        raise Malformed("The body is not a PayPal event (a JSON object).")
    return event


class PayPalReceiver(Receiver):
    provider = "paypal"

    def verify(self, delivery: Delivery) -> None:
        fields = {name: require_header(delivery, header) for name, header in TRANSMISSION.items()}
        fields["webhook_id"] = require_secrets(delivery, "webhook_id")[0]
        client_id = require_secrets(delivery, "client_id")[0]
        client_secret = require_secrets(delivery, "client_secret")[0]
        event_object(delivery)  # only a JSON object is forwarded, so the request below is valid JSON
        try:
            event = delivery.body.decode("utf-8")
        except UnicodeDecodeError:
            raise Malformed("The body is not UTF-8 JSON.") from None
        request = json.dumps(fields)[:-1] + ', "webhook_event": ' + event + "}"

        connection = delivery.connection
        environment = (connection.credentials or {}).get("environment")
        base = connection.base_url.rstrip("/") or (SANDBOX if environment == "sandbox" else LIVE)
        http = client()
        token = AppToken(connection, "PayPal", f"{base}/v1/oauth2/token", client_id, client_secret)
        answer = token.call(
            http,
            "POST",
            f"{base}/v1/notifications/verify-webhook-signature",
            "verify the webhook signature",
            data=request.encode(),
            headers={"Content-Type": "application/json"},
        )
        status = answer.get("verification_status") if isinstance(answer, dict) else None
        if status != "SUCCESS":
            raise Rejected(
                f"PayPal did not verify the delivery (verification_status {status}): the transmission signature "
                "does not match the event and the connection's webhook ID."
            )

    def parse(self, delivery: Delivery) -> list[Incoming]:
        event = event_object(delivery)
        if not event.get("event_type"):
            raise Malformed("The body is not a PayPal event (no event_type).")
        resource = event.get("resource") if isinstance(event.get("resource"), dict) else {}
        return [
            Incoming(
                topic=str(event["event_type"]),
                event_id=str(event.get("id") or ""),
                resource_id=str(resource.get("id") or ""),
                resource_updated_at=parse_time(resource.get("update_time")),
            )
        ]
