"""What every webhook receiver does, and the two places where providers differ.

A receiver is one small class per provider (`webhooks/receivers/<provider>.py`), registered in the
plain dict in `receivers/__init__.py`. The view (`webhooks/views.py`) does the rest the same way
for everyone: finds the connection, bounds and reads the raw body, checks the content type, stores
a refused delivery with its reason, stores accepted events, acknowledges, and queues processing.

A receiver overrides:

- `verify(delivery)`: check the signature over the raw body, constant-time
  (`hmac.compare_digest`, or the provider's own package), and raise `Rejected(reason)` when it
  does not hold. Nothing of the body is trusted before this returns.
- `parse(delivery)`: turn the verified body into one or more `Incoming` events (provider event
  id, topic, and, where the payload says, the resource's id and updated time). A body that cannot
  be read raises `Malformed(reason)`.

and may override `handshake(delivery)` to answer a provider's ping or challenge (WooCommerce's
ping on creation, eBay's challenge code) before verification.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from base64 import b64encode
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.http import HttpResponse

if TYPE_CHECKING:
    from integrations.models import Connection


class Rejected(Exception):
    """The delivery's signature (or another proof of origin) does not hold: answered 401."""

    def __init__(self, reason: str, *, status: int = 401) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class Malformed(Exception):
    """The delivery is signed but cannot be read (bad JSON, missing fields): answered 400."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Unavailable(Exception):
    """Verification needs a provider call that failed (e.g. PayPal's verify-webhook-signature):
    answered 503 so the provider delivers again later; nothing is stored as verified."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class Delivery:
    """One HTTP delivery, as the receivers see it."""

    connection: Connection
    method: str
    # The absolute URL the provider posted to, for receivers that sign or echo it (`uses_url`);
    # empty for the others, which saves working it out on every delivery.
    url: str
    headers: dict[str, str]  # lower-cased names
    body: bytes
    content_type: str  # without parameters, lower-cased
    query: dict[str, str] = field(default_factory=dict)
    service: str = ""  # the third-party service name, for the generic receiver

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise Malformed(f"The body is not valid JSON: {exc}") from None
        except RecursionError:
            raise Malformed("The body's JSON is nested too deeply.") from None

    def secrets(self, *names: str) -> list[str]:
        """The connection's current values of these credentials, then values they replaced that are
        still within the rotation grace period, without empties or repeats."""
        return self.connection.secret_candidates(*names)


@dataclass
class Incoming:
    """One event a delivery carries (most carry one; SendGrid batches many)."""

    topic: str
    event_id: str = ""  # the provider's id for the event, the key duplicates are found by
    resource_id: str = ""  # the platform's id of the thing the event is about, when it says
    resource_updated_at: datetime | None = None
    payload: Any = None  # this event's part of the body, when the delivery carries several


class Receiver:
    provider: str = ""
    # Accepted content types (lower-case, without parameters). Anything else gets a 415.
    content_types: tuple[str, ...] = ("application/json",)
    # Methods other than POST this receiver answers in `handshake` (eBay's GET challenge).
    handshake_methods: tuple[str, ...] = ()
    # Header names whose values are never stored (they hold tokens, not only signatures).
    secret_headers: tuple[str, ...] = ("authorization",)
    # Whether `verify` or `handshake` reads `delivery.url` (Square and Twilio sign it, eBay hashes it).
    uses_url: bool = False

    def handshake(self, delivery: Delivery) -> HttpResponse | None:
        """Answer a ping or challenge, or return None for an ordinary delivery."""
        return None

    def verify(self, delivery: Delivery) -> None:
        raise NotImplementedError

    def parse(self, delivery: Delivery) -> list[Incoming]:
        raise NotImplementedError


# --- Helpers the receivers share ---------------------------------------------------------------


def hmac_digest(secret: str | bytes, message: bytes, algorithm: str = "sha256") -> bytes:
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, message, getattr(hashlib, algorithm)).digest()


def hmac_base64(secret: str | bytes, message: bytes, algorithm: str = "sha256") -> str:
    return b64encode(hmac_digest(secret, message, algorithm)).decode()


def hmac_hex(secret: str | bytes, message: bytes, algorithm: str = "sha256") -> str:
    return hmac_digest(secret, message, algorithm).hex()


def matches_any(expected: Iterable[str], given: str) -> bool:
    """Constant-time comparison of `given` against each expected value (every one is compared)."""
    given_bytes = given.strip().encode()
    found = False
    for value in expected:
        found |= hmac.compare_digest(value.encode(), given_bytes)
    return found


def require_header(delivery: Delivery, name: str) -> str:
    value = delivery.header(name).strip()
    if not value:
        raise Rejected(f"The {name} header is missing.")
    return value


def require_base64_hmac(delivery: Delivery, header: str, secret_names: tuple[str, ...], signed_by: str) -> None:
    """The header must hold the base64 HMAC-SHA256 of the raw body with one of these secrets."""
    given = require_header(delivery, header)
    secrets = require_secrets(delivery, *secret_names)
    if not matches_any((hmac_base64(s, delivery.body) for s in secrets), given):
        raise Rejected(f"{header} does not match the body signed with {signed_by}.")


def json_object(delivery: Delivery) -> dict[str, Any]:
    body = delivery.json()
    if not isinstance(body, dict):
        raise Malformed("The body is not a JSON object.")
    return body


def topic_header(delivery: Delivery, name: str) -> str:
    topic = delivery.header(name).strip()
    if not topic:
        raise Malformed(f"The {name} header is missing.")
    return topic


def require_secrets(delivery: Delivery, *names: str) -> list[str]:
    secrets = delivery.secrets(*names)
    if not secrets:
        label = " or ".join(names)
        raise Rejected(f"The connection has no {label} to verify webhooks with: fill it in on the connection.")
    return secrets
