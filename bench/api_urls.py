"""Bench-only URLconf for `bench/api.py`: the project's URLs plus `bench/orders`, the production
orders viewset with no authentication, no throttle and no usage counting, for one fixed tenant (the
slug in BENCH_API_TENANT), so the difference with `/api/v1/orders` is what an API key costs; and
`bench/bare/`, a view that answers 200 at once, the ceiling of the server and its middleware. Only
the bench's gunicorn process uses it (through `bench.api_settings`)."""

from __future__ import annotations

import os

from django.http import HttpResponse
from django.urls import re_path
from rest_framework.permissions import AllowAny

from commerce.api import OrderViewSet
from config.urls import handler404, handler500
from config.urls import urlpatterns as project_urlpatterns
from tenants.models import Tenant

__all__ = ["handler404", "handler500", "urlpatterns"]

_tenant: Tenant | None = None


def bench_tenant() -> Tenant:
    # Looked up once per process: with a key, the tenant comes with the key's own query.
    global _tenant
    if _tenant is None:
        _tenant = Tenant.objects.get(slug=os.environ.get("BENCH_API_TENANT", "bench-api"))
    return _tenant


class UnauthenticatedOrderViewSet(OrderViewSet):
    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = []

    def initial(self, request, *args, **kwargs):
        request.tenant = bench_tenant()  # what `tenants.api.request_tenant` reads for a non-key caller
        super().initial(request, *args, **kwargs)


def bare(request):
    return HttpResponse(b"ok", content_type="text/plain")


urlpatterns = [
    re_path(r"^bench/orders/?$", UnauthenticatedOrderViewSet.as_view({"get": "list"}), name="bench-orders"),
    re_path(r"^bench/bare/$", bare, name="bench-bare"),
    *project_urlpatterns,
]
