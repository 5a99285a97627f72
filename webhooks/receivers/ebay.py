"""eBay marketplace account deletion notifications.

Endpoint validation: eBay sends `GET <endpoint>?challenge_code=<code>` and expects JSON
`{"challengeResponse": hex SHA-256 of (challenge code + verification token + endpoint)}`, where the
endpoint is the address entered in the developer portal (this one, without its query string) and
the token the connection's `verification_token`.

Notifications: `X-EBAY-SIGNATURE` is base64 of a JSON object {alg, kid, signature, digest}. The
signature is ECDSA with the digest eBay's key answer names (SHA1 for these notifications) over the
notification JSON, with eBay's public key for `kid` from the Notification API
(`GET /commerce/notification/v1/public_key/{kid}`, app token from the client-credentials grant),
cached for an hour as eBay asks. eBay's own SDKs verify the compact JSON of the parsed message
(which is what eBay delivers), so that form is tried when the raw body differs from it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from django.core.cache import cache
from django.http import JsonResponse

from .base import Delivery, Incoming, Malformed, Receiver, Rejected, Unavailable, require_header, require_secrets
from .public_keys import ec_public_key, ecdsa_verifies
from .remote import AppToken, client

PRODUCTION = "https://api.ebay.com"
SANDBOX = "https://api.sandbox.ebay.com"
SCOPE = "https://api.ebay.com/oauth/api_scope"
KEY_CACHE_SECONDS = 3600
DIGESTS = {"SHA1": hashes.SHA1, "SHA256": hashes.SHA256}
KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,100}")  # goes into a URL path: nothing else is accepted


def signed_forms(body: bytes) -> list[bytes]:
    forms = [body]
    try:
        compact = json.dumps(json.loads(body), separators=(",", ":"), ensure_ascii=False).encode()
    except (ValueError, RecursionError):
        return forms
    return forms if compact == body else [*forms, compact]


def read_key(answer: object, kid: str) -> tuple[ec.EllipticCurvePublicKey, type[hashes.HashAlgorithm]]:
    if isinstance(answer, dict) and str(answer.get("algorithm") or "ECDSA").upper() == "ECDSA":
        digest = DIGESTS.get(str(answer.get("digest") or "SHA1").upper())
        try:
            key = ec_public_key(str(answer.get("key") or ""))
        except ValueError:
            key = None
        if key is not None and digest is not None:
            return key, digest
    raise Unavailable(f"eBay's answer for public key {kid} is not an ECDSA key with a known digest.")


class EbayReceiver(Receiver):
    provider = "ebay"
    uses_url = True
    handshake_methods = ("GET",)

    def handshake(self, delivery: Delivery) -> JsonResponse | None:
        if delivery.method != "GET":
            return None
        code = delivery.query.get("challenge_code", "")
        if not code:
            raise Malformed("A GET is only answered as eBay's endpoint validation, which carries a challenge_code.")
        token = require_secrets(delivery, "verification_token")[0]
        endpoint = delivery.url.split("?", 1)[0]
        return JsonResponse({"challengeResponse": hashlib.sha256((code + token + endpoint).encode()).hexdigest()})

    def verify(self, delivery: Delivery) -> None:
        header = require_header(delivery, "X-EBAY-SIGNATURE")
        try:
            claim = json.loads(base64.b64decode(header, validate=True))
            kid = str(claim["kid"])
            signature = base64.b64decode(claim["signature"], validate=True)
        except (ValueError, KeyError, TypeError, RecursionError):
            raise Rejected("X-EBAY-SIGNATURE is not base64 of a JSON object with a kid and a signature.") from None
        if not KEY_ID.fullmatch(kid):
            raise Rejected("X-EBAY-SIGNATURE names a key id that is not of the form eBay's are.")
        key, digest = self.public_key(delivery, kid)
        if not any(ecdsa_verifies(key, signature, message, digest()) for message in signed_forms(delivery.body)):
            raise Rejected(f"X-EBAY-SIGNATURE does not match the notification signed with eBay's key {kid}.")

    def public_key(self, delivery: Delivery, kid: str) -> tuple[ec.EllipticCurvePublicKey, type[hashes.HashAlgorithm]]:
        """eBay's key and digest for `kid`, from the cache or the Notification API ({key, algorithm, digest})."""
        connection = delivery.connection
        environment = (connection.credentials or {}).get("environment")
        base = connection.base_url.rstrip("/") or (SANDBOX if environment == "sandbox" else PRODUCTION)
        cache_key = "webhooks:ebay:key:" + hashlib.sha256(f"{base}|{kid}".encode()).hexdigest()[:32]
        answer = cache.get(cache_key)
        if answer:
            return read_key(answer, kid)
        client_id = require_secrets(delivery, "client_id")[0]
        client_secret = require_secrets(delivery, "client_secret")[0]
        token = AppToken(connection, "eBay", f"{base}/identity/v1/oauth2/token", client_id, client_secret, scope=SCOPE)
        answer = token.call(
            client(), "GET", f"{base}/commerce/notification/v1/public_key/{kid}", f"give its public key {kid}"
        )
        key = read_key(answer, kid)
        cache.set(cache_key, answer, timeout=KEY_CACHE_SECONDS)
        return key

    def parse(self, delivery: Delivery) -> list[Incoming]:
        message = delivery.json()
        metadata = message.get("metadata") if isinstance(message, dict) else None
        notification = message.get("notification") if isinstance(message, dict) else None
        if not isinstance(metadata, dict) or not isinstance(notification, dict) or not metadata.get("topic"):
            raise Malformed("The body is not an eBay notification (metadata with a topic, and a notification).")
        data = notification.get("data") if isinstance(notification.get("data"), dict) else {}
        return [
            Incoming(
                topic=str(metadata["topic"]),
                event_id=str(notification.get("notificationId") or ""),
                resource_id=str(data.get("userId") or ""),
            )
        ]
