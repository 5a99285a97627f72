"""The WSGI application (config.wsgi, config.handlers): webhook deliveries go through the short
middleware chain, every other path through the full one. Called as gunicorn calls it, with a
WSGI environ, not through Django's test client (which always builds the full chain)."""

from __future__ import annotations

import json
from contextlib import contextmanager
from io import BytesIO

import pytest
from django.conf import settings
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import RequestFactory

from config.handlers import Dispatcher, SubsetWSGIHandler
from webhooks import views
from webhooks.models import EventStatus, WebhookEvent

from .conftest import shopify_signature

ORDER = {"id": 7, "admin_graphql_api_id": "gid://shopify/Order/7", "updated_at": "2026-11-20T10:00:00-05:00"}


@pytest.fixture(scope="module")
def application() -> Dispatcher:
    from config.wsgi import application

    return application


@contextmanager
def in_the_test_transaction():
    """As Django's test client does: a request must not close the test's connection."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def call(application, request) -> tuple[str, dict[str, str], bytes]:
    answer: dict[str, object] = {}

    def start_response(status, headers, exc_info=None):
        answer.update(status=status, headers=dict(headers))

    with in_the_test_transaction():
        chunks = application(request.environ, start_response)
        try:
            body = b"".join(chunks)
        finally:
            chunks.close()  # request_finished, as a server does
    return answer["status"], answer["headers"], body


def delivery(shop, webhook_id: str = "wh-1"):
    raw = json.dumps(ORDER).encode()
    request = RequestFactory().post(
        f"/webhooks/shopify/{shop.uuid}/",
        data=raw,
        content_type="application/json",
        HTTP_X_SHOPIFY_TOPIC="orders/updated",
        HTTP_X_SHOPIFY_HMAC_SHA256=shopify_signature(raw),
        HTTP_X_SHOPIFY_WEBHOOK_ID=webhook_id,
    )
    request.environ["wsgi.input"] = BytesIO(raw)
    return request


def test_the_webhook_chain_is_a_subsequence_of_the_full_one():
    full = settings.MIDDLEWARE
    positions = [full.index(name) for name in settings.WEBHOOK_MIDDLEWARE]
    assert positions == sorted(positions), "keep WEBHOOK_MIDDLEWARE in MIDDLEWARE's order"
    assert "config.middleware.RequestIdMiddleware" in settings.WEBHOOK_MIDDLEWARE
    assert "config.middleware.MetricsMiddleware" in settings.WEBHOOK_MIDDLEWARE


def test_a_delivery_is_stored_through_the_short_chain(application, shop, monkeypatch):
    seen = []
    real = views._receive

    def spy(request, *args, **kwargs):
        seen.append(request)
        return real(request, *args, **kwargs)

    monkeypatch.setattr(views, "_receive", spy)
    status, headers, body = call(application, delivery(shop))

    assert status.startswith("200"), body
    assert json.loads(body) == {"status": "received", "events": 1}
    event = WebhookEvent.objects.get(connection=shop)
    assert (event.event_id, event.status, event.signature_valid) == ("wh-1", EventStatus.RECEIVED, True)
    # The request id and metrics middleware ran; session, auth, tenant and messages did not.
    assert headers.get("X-Request-ID")
    (request,) = seen
    assert not any(hasattr(request, name) for name in ("session", "user", "tenant", "_messages"))
    assert "Set-Cookie" not in headers and "X-Frame-Options" not in headers


def test_other_paths_get_the_full_chain(application, db):
    status, headers, _ = call(application, RequestFactory().get("/accounts/login/"))
    assert status.startswith("200")
    assert headers.get("X-Frame-Options") == "DENY"
    assert "csrftoken" in headers.get("Set-Cookie", "")
    assert headers.get("X-Request-ID")


def test_a_bad_signature_is_refused_through_the_short_chain(application, shop):
    request = delivery(shop)
    request.environ["HTTP_X_SHOPIFY_HMAC_SHA256"] = shopify_signature(b"something else")
    status, _, body = call(application, request)
    assert status.startswith("401"), body
    assert WebhookEvent.objects.get(connection=shop).status == EventStatus.REJECTED


def test_building_the_short_chain_leaves_the_settings_as_they_were():
    before = list(settings.MIDDLEWARE)
    SubsetWSGIHandler(settings.WEBHOOK_MIDDLEWARE)
    assert before == settings.MIDDLEWARE
