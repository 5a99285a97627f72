"""The webhook endpoints: `POST /webhooks/<provider>/<connection uuid>/` and
`POST /webhooks/third-party/<service>/<connection uuid>/`.

Every delivery goes the same way: find the connection (its uuid is the unguessable part of the
address), bound and read the raw body, check the content type, let the provider's receiver answer
a ping or challenge, verify the signature over the raw body, read the events, store them in one
insert each and answer 200; the work happens in a task. A refused delivery is stored with its
reason (never processed) and answered 401; nothing a sender can post makes a 500. A delivery
that meets the database down is answered 503 (send it again).
"""

from __future__ import annotations

import dataclasses
import logging

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from config.api import error_body

from . import connections, inbox
from .receivers import PROVIDER_PLATFORMS, RECEIVERS
from .receivers.base import Delivery, Malformed, Rejected, Unavailable

logger = logging.getLogger(__name__)


@csrf_exempt
def receive(request: HttpRequest, provider: str, connection_uuid) -> JsonResponse:
    return _unless_database_down(request, provider, connection_uuid)


@csrf_exempt
def receive_third_party(request: HttpRequest, service: str, connection_uuid) -> JsonResponse:
    return _unless_database_down(request, "third-party", connection_uuid, service=service)


def _unless_database_down(request: HttpRequest, provider: str, connection_uuid, **kwargs) -> JsonResponse:
    """A delivery that cannot be stored because the database is unreachable (a restart, a
    failover) is answered 503 with Retry-After, which every provider retries, rather than a 500
    page. Nothing is lost: an event whose insert did commit before the connection broke is found as
    a duplicate when it comes again. Django drops the broken connection when the request ends, and
    the next delivery connects afresh."""
    try:
        return _receive(request, provider, connection_uuid, **kwargs)
    except (OperationalError, InterfaceError) as trouble:
        logger.error("Webhook not stored, the database is unavailable: %s", trouble, extra={"provider": provider})
        return _answer(
            503, "unavailable", "The delivery could not be stored just now; send it again.", Retry_After="30"
        )


def public_url(request: HttpRequest) -> str:
    """The address the provider was given, which Square, Twilio and eBay sign or hash: behind a
    proxy the request's own idea of its scheme and host may differ, so PUBLIC_BASE_URL wins."""
    if settings.PUBLIC_BASE_URL:
        return settings.PUBLIC_BASE_URL + request.get_full_path()
    return request.build_absolute_uri()


def _answer(status: int, code: str, message: str, **headers: str) -> JsonResponse:
    response = JsonResponse(error_body(code, message), status=status)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def _receive(request: HttpRequest, provider: str, connection_uuid, *, service: str = "") -> JsonResponse:
    receiver = RECEIVERS.get(provider)
    if receiver is None:
        return _answer(404, "not_found", f"No webhook receiver for “{provider}”.")
    connection, cached = connections.lookup(connection_uuid)
    platform = PROVIDER_PLATFORMS.get(provider)
    if connection is None or (platform is not None and connection.platform != platform):
        return _answer(404, "not_found", "No such webhook address.")
    if request.method != "POST" and request.method not in receiver.handshake_methods:
        return _answer(405, "method_not_allowed", "Webhooks are delivered with POST.", Allow="POST")

    limit = settings.WEBHOOK_MAX_BODY_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return _answer(400, "bad_request", "The Content-Length header is not a number.")
    if declared > limit:
        return _answer(413, "too_large", f"The body is larger than the {limit}-byte limit.")
    body = request.read(limit + 1)  # the raw bytes, never request.POST: signatures cover exactly these
    if len(body) > limit:
        return _answer(413, "too_large", f"The body is larger than the {limit}-byte limit.")

    delivery = Delivery(
        connection=connection,
        method=request.method,
        url=public_url(request) if receiver.uses_url else "",
        headers=_headers(request.META),
        body=body,
        content_type=(request.content_type or "").lower(),
        query={key: request.GET.get(key, "") for key in request.GET} if request.META.get("QUERY_STRING") else {},
        service=service,
    )
    if request.method == "POST" and not body:
        return _answer(400, "malformed", "The body is empty.")
    if request.method == "POST" and delivery.content_type not in receiver.content_types:
        accepted = ", ".join(receiver.content_types)
        return _answer(415, "unsupported_media_type", f"Send the body as {accepted}, not “{delivery.content_type}”.")

    try:
        response = receiver.handshake(delivery)
        if response is not None:
            return response
        delivery = _verify(receiver, delivery, cached=cached)
    except Rejected as refusal:
        inbox.store_rejected(receiver, delivery, refusal.reason)
        logger.warning("Webhook refused: %s", refusal.reason, extra={"provider": provider, "connection": connection.pk})
        return _answer(refusal.status, "invalid_signature", refusal.reason)
    except Malformed as problem:
        return _answer(400, "malformed", problem.reason)
    except Unavailable as trouble:
        logger.warning("Webhook not verified yet: %s", trouble.reason, extra={"provider": provider})
        return _answer(503, "verification_unavailable", trouble.reason, Retry_After="60")

    try:
        incoming = receiver.parse(delivery)
    except Malformed as problem:
        inbox.store_rejected(receiver, delivery, problem.reason)
        return _answer(400, "malformed", problem.reason)
    except (KeyError, TypeError, ValueError, AttributeError) as problem:
        # A shape the receiver did not expect: the sender's fault, kept for a person to see.
        reason = f"The body does not have the shape {provider} documents ({type(problem).__name__}: {problem})."
        inbox.store_rejected(receiver, delivery, reason)
        return _answer(400, "malformed", reason)

    stored = inbox.store(receiver, delivery, incoming)
    duplicates = sum(1 for _, created in stored if not created)
    return JsonResponse(
        {"status": "duplicate" if stored and duplicates == len(stored) else "received", "events": len(stored)}
    )


def _headers(meta: dict) -> dict[str, str]:
    """The request's headers with lower-cased names, as `request.headers` has them (HTTP_X_Y as
    x-y, and Content-Type and Content-Length), read from the WSGI environ in one pass: a third of
    the time of going through `request.headers`, on every delivery."""
    headers = {}
    for key, value in meta.items():
        if key.startswith("HTTP_"):
            headers[key[5:].replace("_", "-").lower()] = value
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            headers[key.replace("_", "-").lower()] = value
    return headers


def _verify(receiver, delivery: Delivery, *, cached: bool) -> Delivery:
    """Verify the delivery; one that fails against a cached connection is verified again against
    a fresh copy (its secret may have been rotated in another process) before it is refused."""
    try:
        receiver.verify(delivery)
    except Rejected:
        if not cached:
            raise
        fresh, _ = connections.lookup(delivery.connection.uuid, fresh=True)
        if fresh is None:
            raise
        delivery = dataclasses.replace(delivery, connection=fresh)
        receiver.verify(delivery)
    return delivery
