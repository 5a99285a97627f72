"""The OpenAPI schema is generated from the code: every /api/v1/ endpoint is in it with its auth
and its error responses, it validates without warnings, and the docs are served offline."""

from __future__ import annotations

import re

import pytest
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.urls import URLPattern, URLResolver, get_resolver

from tenants.usage import route_label

pytestmark = pytest.mark.django_db

HTTP_METHODS = {"get", "post", "put", "patch", "delete"}


def api_routes(patterns=None, prefix: str = "") -> dict[str, set[str]]:
    """Every URL pattern under /api/v1/ as a normalised path, with the methods its view answers."""
    found: dict[str, set[str]] = {}
    for pattern in patterns if patterns is not None else get_resolver().url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            for path, methods in api_routes(pattern.url_patterns, route).items():
                found.setdefault(path, set()).update(methods)
        elif isinstance(pattern, URLPattern) and route_label(route).startswith("/api/v1/"):
            found.setdefault(normalise(route_label(route)), set()).update(view_methods(pattern.callback))
    return found


def view_methods(callback) -> set[str]:
    actions = getattr(callback, "actions", None)
    if actions is not None:
        return set(actions) & HTTP_METHODS
    view_class = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
    return {m for m in HTTP_METHODS if hasattr(view_class, m)}


def normalise(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path).rstrip("/")


@pytest.fixture(scope="module")
def schema(django_db_blocker) -> dict:
    from drf_spectacular.generators import SchemaGenerator

    with django_db_blocker.unblock():
        return SchemaGenerator().get_schema(request=None, public=True)


def operations(schema: dict):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield path, method, operation


def test_the_schema_is_served_as_openapi_3(api_client):
    response = api_client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    body = response.json()
    assert body["openapi"].startswith("3.")
    assert "/api/v1/orders/" in body["paths"]


def test_every_api_url_and_method_is_in_the_schema(schema):
    documented: dict[str, set[str]] = {}
    for path, method, _ in operations(schema):
        documented.setdefault(normalise(path), set()).add(method)
    routes = api_routes()
    assert len(routes) >= 20
    for path, methods in routes.items():
        assert path in documented, f"{path} is not in the schema"
        assert methods <= documented[path], f"{path}: {methods - documented[path]} undocumented"


def test_every_operation_requires_credentials(schema):
    for path, method, operation in operations(schema):
        security = operation.get("security")
        assert security, f"{method} {path} has no security"
        assert {} not in security, f"{method} {path} allows anonymous callers"


def test_tenant_endpoints_take_a_key_either_way_or_a_session(schema):
    security = schema["paths"]["/api/v1/orders/"]["get"]["security"]
    assert {"ApiKeyBearer": []} in security
    assert {"ApiKeyHeader": []} in security
    assert {"cookieAuth": []} in security
    schemes = schema["components"]["securitySchemes"]
    assert schemes["ApiKeyBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["ApiKeyBearer"]["description"],
    }
    assert schemes["ApiKeyHeader"]["in"] == "header"
    assert schemes["ApiKeyHeader"]["name"] == "X-Api-Key"


def test_admin_endpoints_take_an_admin_key_or_a_session(schema):
    security = schema["paths"]["/api/v1/admin/clients/"]["post"]["security"]
    assert {"AdminApiKey": []} in security
    assert {"cookieAuth": []} in security


def test_every_operation_documents_its_error_responses(schema):
    for path, method, operation in operations(schema):
        codes = set(operation["responses"])
        expected = {"401", "403", "429"}
        if "{" in path:
            expected.add("404")
        if method in {"post", "put", "patch"}:
            expected |= {"400", "415"}
        assert expected <= codes, f"{method} {path} lacks {expected - codes}"
        for code in expected:
            content = operation["responses"][code]["content"]["application/json"]
            assert content["schema"] == {"$ref": "#/components/schemas/Error"}, f"{method} {path} {code}"


def test_the_error_component_is_the_one_error_body(schema):
    error = schema["components"]["schemas"]["Error"]
    detail = schema["components"]["schemas"]["ErrorDetail"]
    assert error["required"] == ["error"]
    assert set(detail["properties"]) == {"code", "message", "details"}


def test_responses_document_the_rate_headers(schema):
    responses = schema["paths"]["/api/v1/orders/"]["get"]["responses"]
    assert set(responses["200"]["headers"]) == {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"}
    assert "Retry-After" in responses["429"]["headers"]


def test_lists_document_their_filters_and_orderings(schema):
    parameters = {p["name"]: p for p in schema["paths"]["/api/v1/orders/"]["get"]["parameters"]}
    assert {"cursor", "page_size", "platform", "status", "fulfillment_status", "updated_since", "ordering"} <= set(
        parameters
    )
    assert "-placed_at" in parameters["ordering"]["schema"]["enum"]


def test_request_and_response_bodies_are_described(schema):
    create = schema["paths"]["/api/v1/integrations/"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ConnectionRequest"
    }
    assert create["responses"]["201"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Connection"
    }
    new_key = schema["paths"]["/api/v1/api-keys/"]["post"]["responses"]["201"]
    assert new_key["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/NewApiKey"}
    assert "key_hash" not in str(schema["components"]["schemas"]["ApiKey"])


def test_the_schema_validates_without_a_warning(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yml"))
    assert (tmp_path / "schema.yml").read_text().startswith("openapi: 3.")


def test_the_docs_are_served_from_our_own_static_files(api_client):
    response = api_client.get("/api/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    scripts = re.findall(r'<script src="([^"]+)"', page)
    assert scripts
    for src in scripts:
        assert src.startswith("/static/drf_spectacular_sidecar/"), src
        assert finders.find(src.removeprefix("/static/")), src
    assert "cdn." not in page
    assert "/api/schema/" in page
