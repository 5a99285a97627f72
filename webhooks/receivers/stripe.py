"""Stripe: `Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">` with the
endpoint's signing secret (whsec_…), checked by the `stripe` package itself
(`stripe.WebhookSignature.verify_header`), which also refuses a timestamp older than
WEBHOOK_TIMESTAMP_TOLERANCE_SECONDS; one as far in the future is refused here. While a secret is
rolled Stripe signs with both (two v1 values), and a replaced secret still verifies during the
grace period.

The event's `evt_` id is the same on every retry of the event, so it is the event id.
"""

from __future__ import annotations

import time

import stripe
from django.conf import settings

from .base import Delivery, Incoming, Malformed, Receiver, Rejected, require_header, require_secrets


class StripeReceiver(Receiver):
    provider = "stripe"

    def verify(self, delivery: Delivery) -> None:
        header = require_header(delivery, "Stripe-Signature")
        secrets = require_secrets(delivery, "webhook_secret")
        try:
            payload = delivery.body.decode("utf-8")
        except UnicodeDecodeError:
            raise Malformed("The body is not UTF-8 text.") from None
        # The signature first, without the time check, so a stale delivery is told apart from a forged one.
        matched, refusal = None, ""
        for secret in secrets:
            try:
                stripe.WebhookSignature.verify_header(payload, header, secret)
            except stripe.SignatureVerificationError as error:
                refusal = error.user_message
                continue
            matched = secret
            break
        if matched is None:
            raise Rejected(f"Stripe-Signature does not hold for the endpoint's signing secret: {refusal}.")
        tolerance = settings.WEBHOOK_TIMESTAMP_TOLERANCE_SECONDS
        try:
            stripe.WebhookSignature.verify_header(payload, header, matched, tolerance)
        except stripe.SignatureVerificationError as error:
            reason = f"Stripe-Signature is older than {tolerance} s, the delivery is stale or replayed"
            raise Rejected(f"{reason}: {error.user_message}.") from None
        # The package refuses only the past; a time as far ahead of the hub's clock is refused too,
        # as for every signed timestamp (WEBHOOK_TIMESTAMP_TOLERANCE_SECONDS).
        if _signed_at(header) > time.time() + tolerance:
            raise Rejected(f"Stripe-Signature is dated more than {tolerance} s ahead of the hub's clock.")

    def parse(self, delivery: Delivery) -> list[Incoming]:
        event = delivery.json()
        if not isinstance(event, dict) or not event.get("id") or not event.get("type"):
            raise Malformed("The body is not a Stripe event (an object with an id and a type).")
        data = event.get("data")
        obj = data.get("object") if isinstance(data, dict) else None
        resource_id = obj.get("id") if isinstance(obj, dict) else None
        return [Incoming(topic=str(event["type"]), event_id=str(event["id"]), resource_id=str(resource_id or ""))]


def _signed_at(header: str) -> int:
    """The `t=` of a Stripe-Signature the package has already parsed and verified."""
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t":
            return int(value)
    return 0
