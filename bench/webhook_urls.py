"""Bench-only URLconf for `bench/webhook_ingest.py`: the project's URLs plus `bench/bare/`, a bare
Django view that answers 200 (the ceiling the webhook receiver is compared with), and the same view
at `webhooks/bench-bare/`, where config.handlers serves it with the webhooks' short middleware
chain. Only the bench's gunicorn process uses it (through `bench.settings_webhook`); the
production URLconf is untouched."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from config.urls import handler404, handler500
from config.urls import urlpatterns as project_urlpatterns

__all__ = ["handler404", "handler500", "urlpatterns"]


@csrf_exempt
def bare(request: HttpRequest) -> JsonResponse:
    # Reads the body like the receiver does and answers the receiver's answer, with no database.
    request.read()
    return JsonResponse({"status": "received", "events": 1})


urlpatterns = [
    path("bench/bare/", bare, name="bench-bare"),
    path("webhooks/bench-bare/", bare, name="bench-bare-webhook-chain"),
    *project_urlpatterns,
]
