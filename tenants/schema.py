"""The OpenAPI schema's shared parts (drf-spectacular): how our keys authenticate, the one error
shape (`config.api.exception_handler` writes it), the error responses each operation can get, the
rate-limit headers, and `ordering` for lists that allow it."""

from __future__ import annotations

from drf_spectacular import openapi
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """A tenant's key, as a bearer token or in the X-Api-Key header (either will do)."""

    target_class = "tenants.authentication.ApiKeyAuthentication"
    name = ["ApiKeyBearer", "ApiKeyHeader"]

    def get_security_requirement(self, auto_schema) -> list[dict]:
        return [{"ApiKeyBearer": []}, {"ApiKeyHeader": []}]

    def get_security_definition(self, auto_schema) -> list[dict]:
        return [
            {"type": "http", "scheme": "bearer", "description": "A client's API key: `Authorization: Bearer <key>`."},
            {"type": "apiKey", "in": "header", "name": "X-Api-Key", "description": "A client's API key."},
        ]


class AdminApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "tenants.authentication.AdminApiKeyAuthentication"
    name = "AdminApiKey"

    def get_security_definition(self, auto_schema) -> dict:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A superadmin's admin API key (`hubadm_…`): `Authorization: Bearer <key>`.",
        }


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable and machine-readable, e.g. `not_found`, `permission_denied`.")
    message = serializers.CharField(help_text="For people.")
    details = serializers.DictField(
        help_text="Per-field messages for `invalid`; `required_scope` when a key lacks a scope; `retry_after` for "
        "`throttled`; otherwise empty."
    )


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


RATE_HEADERS = [
    OpenApiParameter(
        "X-RateLimit-Limit",
        OpenApiTypes.INT,
        OpenApiParameter.HEADER,
        response=True,
        description="Requests allowed in the current hour.",
    ),
    OpenApiParameter(
        "X-RateLimit-Remaining",
        OpenApiTypes.INT,
        OpenApiParameter.HEADER,
        response=True,
        description="Requests left in the current hour.",
    ),
    OpenApiParameter(
        "X-RateLimit-Reset",
        OpenApiTypes.INT,
        OpenApiParameter.HEADER,
        response=True,
        description="When the current hour's allowance renews, as Unix time.",
    ),
    OpenApiParameter(
        "Retry-After",
        OpenApiTypes.INT,
        OpenApiParameter.HEADER,
        response=[429],
        description="Seconds until requests are accepted again.",
    ),
]
ERROR_DESCRIPTIONS = {
    "400": "Invalid input: `details` names each field's problem.",
    "401": "No credentials, or a wrong or revoked key, or a suspended client's key.",
    "403": "The key lacks the scope named in the message and in `details.required_scope`, or the user's role "
    "forbids it.",
    "404": "No such object for this client (another client's objects are 404 too).",
    "415": "The body is neither JSON nor form data.",
    "429": "Over the hourly rate: wait `Retry-After` seconds.",
}
BODY_METHODS = {"POST", "PUT", "PATCH"}


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's schema plus what every operation of ours shares: the error responses that
    can happen to it, all in the one error shape; the rate-limit headers; `ordering` on lists."""

    def get_override_parameters(self) -> list:
        parameters = [*super().get_override_parameters(), *RATE_HEADERS]
        fields = getattr(self.view, "ordering_fields", ())
        if fields and self.method == "GET" and self._is_list_view():
            parameters.append(
                OpenApiParameter(
                    "ordering",
                    OpenApiTypes.STR,
                    enum=[choice for field in fields for choice in (field, f"-{field}")],
                    description="Sort order; a leading `-` sorts descending. The cursor links keep it.",
                )
            )
        return parameters

    def _get_response_bodies(self, direction: str = "response") -> dict:
        responses = super()._get_response_bodies(direction)
        for code in self.error_codes():
            if code not in responses:
                response = self._get_response_for_code(ErrorSerializer, code, direction=direction)
                response["description"] = ERROR_DESCRIPTIONS[code]
                responses[code] = response
        return responses

    def error_codes(self) -> list[str]:
        has_body = self.method in BODY_METHODS
        codes = []
        if has_body or (self.method == "GET" and self._is_list_view()):
            codes.append("400")
        if {} not in self.get_auth():
            codes += ["401", "403"]
        if "{" in self.path:
            codes.append("404")
        if has_body:
            codes.append("415")
        codes.append("429")
        return codes
