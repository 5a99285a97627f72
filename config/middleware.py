"""Request middleware for operations: a request id on every request, and the HTTP metrics."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable

from django.core.signals import request_finished
from django.http import HttpRequest, HttpResponse

from . import metrics
from .log_context import end_request, start_request

REQUEST_ID_HEADER = "X-Request-ID"
# An id a proxy or caller sent is kept when it looks like one (a uuid, a trace id); anything else,
# which would land in every log line of the request, is replaced.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{7,127}")


def request_id_of(request: HttpRequest) -> str:
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    return incoming if _SANE_REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex


class RequestIdMiddleware:
    """Gives each request an id (`request.request_id`), binds it (and the request, for its tenant)
    to the log context and returns it in the `X-Request-ID` response header. First in MIDDLEWARE,
    so every line logged while the request is served carries it, up to Django's own line about an
    error response, which comes after the middleware: the context ends when the response is closed."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        request_finished.connect(end_request, dispatch_uid="log-context-end-request")

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.request_id = request_id_of(request)
        start_request(request.request_id, request)
        response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request.request_id
        return response


class MetricsMiddleware:
    """Counts and times every response by method, URL route (never the raw path) and status, and
    API requests made with a key by the key's tier."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        metrics.http_response(request, response, time.perf_counter() - started)
        return response
