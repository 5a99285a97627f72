"""Twilio (message status callbacks and incoming messages): `X-Twilio-Signature` is the base64
HMAC-SHA1, with the account's auth token, of the full URL Twilio requested followed by every POST
parameter name and value, sorted by name; checked by the `twilio` package's `RequestValidator`
(which also tries the URL with and without the port, as Twilio may sign either).

The body is a form, not JSON: its parameters, read from the raw bytes with repeated names kept, are
both what is verified and the event's payload. Twilio sends no event id: a status callback is
identified by the message SID and the status it reports, an incoming message by its SID.
"""

from __future__ import annotations

from django.core.exceptions import TooManyFieldsSent
from django.http import QueryDict
from twilio.request_validator import RequestValidator

from .base import Delivery, Incoming, Malformed, Receiver, Rejected, require_header, require_secrets


def form(delivery: Delivery) -> QueryDict:
    try:
        return QueryDict(delivery.body, encoding="utf-8")
    except TooManyFieldsSent:
        raise Malformed("The form has more fields than Twilio sends.") from None


class TwilioReceiver(Receiver):
    provider = "twilio"
    uses_url = True
    content_types = ("application/x-www-form-urlencoded",)

    def verify(self, delivery: Delivery) -> None:
        given = require_header(delivery, "X-Twilio-Signature")
        tokens = require_secrets(delivery, "auth_token")
        params = form(delivery)
        try:
            valid = any(RequestValidator(token).validate(delivery.url, params, given) for token in tokens)
        except ValueError:  # a port out of range in the Host header
            raise Rejected(
                "The address the request was sent to cannot be read, so its signature cannot hold."
            ) from None
        if not valid:
            raise Rejected(
                "X-Twilio-Signature does not match the URL and parameters signed with the account's auth token."
            )

    def parse(self, delivery: Delivery) -> list[Incoming]:
        params = form(delivery)
        sid = params.get("MessageSid") or params.get("SmsSid") or ""
        if not sid:
            raise Malformed("No MessageSid: the body is not a Twilio message callback.")
        payload = {name: values[0] if len(values) == 1 else values for name, values in params.lists()}
        status = params.get("MessageStatus") or ""
        if not status or params.get("SmsStatus") == "received":
            return [Incoming(topic="message.inbound", event_id=sid, resource_id=sid, payload=payload)]
        return [Incoming(topic="message.status", event_id=f"{sid}:{status}", resource_id=sid, payload=payload)]
