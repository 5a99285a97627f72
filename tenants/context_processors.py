from __future__ import annotations

from django.http import HttpRequest


def current_tenant(request: HttpRequest) -> dict:
    return {"current_tenant": getattr(request, "tenant", None)}
