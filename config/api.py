"""Project-wide API plumbing: one JSON error shape for every 4xx/5xx, and cursor pagination with a
whitelisted `ordering`. The schema's side of both is in `tenants.schema`."""

from __future__ import annotations

import logging
from typing import Any

from django.http import HttpRequest, JsonResponse
from rest_framework import exceptions, pagination, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

logger = logging.getLogger(__name__)


class CursorPagination(pagination.CursorPagination):
    """Cursor pagination in the view's own `ordering`, or in the one the caller asks for with
    `?ordering=[-]field` among the view's `ordering_fields` (ties broken by id). The `next` and
    `previous` links keep the ordering. DRF's default, `-created`, is no field of ours."""

    ordering = "-pk"
    ordering_param = "ordering"
    page_size_query_param = "page_size"
    max_page_size = 200

    def decode_cursor(self, request):
        # DRF answers a cursor it cannot decode with a 404; it is a bad parameter, so a 400.
        try:
            return super().decode_cursor(request)
        except exceptions.NotFound:
            raise exceptions.ValidationError(
                {self.cursor_query_param: "Invalid cursor: use the `next` or `previous` link as it was given."}
            ) from None

    def get_ordering(self, request, queryset, view) -> tuple[str, ...]:
        requested = request.query_params.get(self.ordering_param)
        if requested:
            return self.requested_ordering(requested, getattr(view, "ordering_fields", ()))
        ordering = getattr(view, "ordering", None) or self.ordering
        return (ordering,) if isinstance(ordering, str) else tuple(ordering)

    def requested_ordering(self, requested: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
        field = requested.removeprefix("-")
        if field not in allowed:
            choices = ", ".join(ordering_choices(allowed)) or "nothing (this list has a fixed order)"
            raise exceptions.ValidationError({self.ordering_param: f"Order by one of: {choices}."})
        sign = "-" if requested.startswith("-") else ""
        return (requested,) if field == "id" else (requested, f"{sign}id")


def ordering_choices(fields: tuple[str, ...]) -> list[str]:
    return [choice for field in fields for choice in (field, f"-{field}")]


def error_body(code: str, message: str, details: Any = None) -> dict:
    return {"error": {"code": code, "message": message, "details": details if details is not None else {}}}


def exception_handler(exc: Exception, context: dict) -> Response | None:
    response = drf_exception_handler(exc, context)
    if response is None:
        logger.exception("Unhandled API error in %s", context.get("view").__class__.__name__)
        set_rollback()
        return Response(error_body("server_error", "Something went wrong on our side."), status=500)
    if isinstance(exc, exceptions.ValidationError):
        code, message, details = "invalid", "The request has invalid fields.", response.data
    else:
        detail = getattr(exc, "detail", None)
        code = getattr(detail, "code", None) or _code_for(response.status_code)
        message = str(detail) if detail is not None else "Not found."
        details = getattr(exc, "error_details", None) or {}
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        details = {"retry_after": int(response.headers.get("Retry-After") or 0)}
    if response.status_code == status.HTTP_404_NOT_FOUND:
        code, message = "not_found", "Not found."
    response.data = error_body(str(code), message, details)
    return response


def _code_for(status_code: int) -> str:
    return {401: "not_authenticated", 403: "permission_denied", 404: "not_found", 429: "throttled"}.get(
        status_code, "error"
    )


def json_404(request: HttpRequest, exception: Exception | None = None):
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("not_found", "Not found."), status=404)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def json_500(request: HttpRequest):
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("server_error", "Something went wrong on our side."), status=500)
    from django.views.defaults import server_error

    return server_error(request)
