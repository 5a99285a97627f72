"""The WSGI application: Django's handler, with webhook deliveries served by a second handler
whose middleware chain is only what a machine-to-machine POST needs.

A webhook sender has no session, no user, no CSRF token and no messages, asks for no static file
and frames no page; the receiver views are CSRF-exempt and read none of it. Those middleware still
cost every delivery their calls (0.1 to 0.2 ms of about 1 ms of worker time on the bench machine), so
paths under `/webhooks/` go to a handler built from `settings.WEBHOOK_MIDDLEWARE` (the request id,
metrics, security and common middleware, in MIDDLEWARE's order, which
`tests/webhooks/test_wsgi_dispatch.py` checks). Every other path, and Django's test client, gets
the full chain.

Only the WSGI entry point dispatches; `config.asgi` serves everything with the full chain.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler

WEBHOOK_PREFIX = "/webhooks/"


class SubsetWSGIHandler(WSGIHandler):
    """Django's WSGI handler with its own middleware list (a subsequence of MIDDLEWARE)."""

    def __init__(self, middleware: list[str]) -> None:
        self.middleware = list(middleware)
        super().__init__()

    def load_middleware(self, is_async: bool = False) -> None:
        # BaseHandler builds its chain from settings.MIDDLEWARE; it is read only here, once, when
        # the worker loads this module and before any request is served.
        full = settings.MIDDLEWARE
        settings.MIDDLEWARE = self.middleware
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = full


class Dispatcher:
    """Webhook deliveries to the lean handler, everything else to the full one (by PATH_INFO, the
    path Django resolves, below any SCRIPT_NAME)."""

    def __init__(self, default: WSGIHandler, webhooks: WSGIHandler) -> None:
        self.default, self.webhooks = default, webhooks

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        handler = self.webhooks if environ.get("PATH_INFO", "").startswith(WEBHOOK_PREFIX) else self.default
        return handler(environ, start_response)


def application() -> Dispatcher:
    """The project's WSGI application (call after django.setup())."""
    return Dispatcher(WSGIHandler(), SubsetWSGIHandler(settings.WEBHOOK_MIDDLEWARE))
