"""Structured logs: the JSON line's shape, the request id every request gets and returns, the
tenant and connection a line is about, and no secrets in what is written."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.test import Client

from config.log_context import current, log_context
from config.logging import JsonFormatter
from integrations.sync import run_sync
from tenants.logging import RedactSecretsFilter
from tests.integrations.test_sync_engine import ListConnector, pages_of
from webhooks import processing
from webhooks.models import WebhookEvent

PROJECT_ROOT = Path(__file__).resolve().parents[2]
UUID_HEX = re.compile(r"[0-9a-f]{32}")


class JsonLines:
    """What a handler configured as in production (JSON formatter, redaction filter) wrote."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    @property
    def lines(self) -> list[dict]:
        return [json.loads(line) for line in self.text.splitlines()]


@pytest.fixture
def json_logs() -> Iterator[JsonLines]:
    captured = JsonLines()
    handler = logging.StreamHandler(captured.stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactSecretsFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    yield captured
    root.removeHandler(handler)


# --- The line ------------------------------------------------------------------------------------


def test_a_json_line_has_time_level_logger_message_and_context(json_logs):
    with log_context(request_id="req-0123456789", tenant=7, connection=42):
        logging.getLogger("hub.test").warning("Order %s could not be pushed", 1001)

    [line] = json_logs.lines
    assert line["level"] == "WARNING"
    assert line["logger"] == "hub.test"
    assert line["message"] == "Order 1001 could not be pushed"
    assert (line["request_id"], line["tenant"], line["connection"]) == ("req-0123456789", 7, 42)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])
    assert "exception" not in line


def test_a_line_outside_any_context_has_empty_context_fields(json_logs):
    logging.getLogger("hub.test").warning("Nothing to say about")
    [line] = json_logs.lines
    assert (line["request_id"], line["tenant"], line["connection"]) == (None, None, None)


def test_an_exception_is_in_the_line_with_its_traceback(json_logs):
    try:
        raise ValueError("the platform sent nonsense")
    except ValueError:
        logging.getLogger("hub.test").exception("Mapping failed")

    [line] = json_logs.lines
    assert line["level"] == "ERROR"
    assert line["exception"].startswith("Traceback (most recent call last):")
    assert "ValueError: the platform sent nonsense" in line["exception"]


def test_extra_fields_are_kept_and_override_the_context(json_logs):
    with log_context(connection=1):
        logging.getLogger("hub.test").warning("Refused", extra={"provider": "shopify", "connection": 2})
    [line] = json_logs.lines
    assert (line["provider"], line["connection"]) == ("shopify", 2)


def test_secrets_never_reach_a_json_line(json_logs):
    api_key = "hub_0123456789ab_" + "S3cr3tS3cr3tS3cr3tS3cr3t"
    log = logging.getLogger("hub.test")
    log.warning("Calling with Authorization: Bearer sk_live_abcdefghijklmnop and key %s", api_key)
    try:
        raise RuntimeError('token="tok-very-secret-1" rejected')
    except RuntimeError:
        log.exception("Request failed: password=hunter2-hunter2")
    log.warning("Extra", extra={"detail": "client_secret=cs_very_secret_2", "headers": {"api_key": "ak-secret-3"}})

    text = json_logs.text
    for secret in (
        "sk_live_abcdefghijklmnop",
        "S3cr3tS3cr3t",
        "tok-very-secret-1",
        "hunter2-hunter2",
        "cs_very_secret_2",
        "ak-secret-3",
    ):
        assert secret not in text
    assert len(json_logs.lines) == 3  # still one valid JSON object per line
    assert "hub_0123456789ab_***" in json_logs.lines[0]["message"]


def test_the_formatter_scrubs_secrets_even_without_the_filter():
    record = logging.makeLogRecord({"msg": "password=%s", "args": ("plain-secret-4",), "levelname": "INFO"})
    assert "plain-secret-4" not in JsonFormatter().format(record)


def test_the_context_ends_with_its_block():
    with log_context(tenant=1, connection=2):
        with log_context(connection=3):
            assert current() == {"tenant": 1, "connection": 3}
        assert current() == {"tenant": 1, "connection": 2}
    assert current() == {}


# --- Request ids ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_every_response_carries_a_new_request_id():
    first = Client().get("/health/")["X-Request-ID"]
    second = Client().get("/no/such/page")["X-Request-ID"]
    assert UUID_HEX.fullmatch(first) and UUID_HEX.fullmatch(second)
    assert first != second


@pytest.mark.django_db
@pytest.mark.parametrize(
    "incoming", ["b54557e4-bdd9-4b37-8a5f-bf7d70bcd043", "0af7651916cd43dd8448eb211c80319c", "req_1.2:3"]
)
def test_a_sane_incoming_request_id_is_kept_and_echoed(incoming):
    assert Client().get("/health/", HTTP_X_REQUEST_ID=incoming)["X-Request-ID"] == incoming


@pytest.mark.django_db
@pytest.mark.parametrize(
    "incoming",
    [
        "short",
        "has spaces in it",
        "x" * 129,
        "<script>alert(1)</script>",
        "-leading-dash",
        'quote"injected"id',
        "é-unicode-id",
    ],
)
def test_a_bad_incoming_request_id_is_replaced(incoming):
    returned = Client().get("/health/", HTTP_X_REQUEST_ID=incoming)["X-Request-ID"]
    assert returned != incoming and UUID_HEX.fullmatch(returned)


@pytest.mark.django_db
def test_lines_logged_during_a_members_request_carry_its_id_and_tenant(json_logs, tenant_a, make_member):
    client = Client()
    client.force_login(make_member(tenant_a))
    response = client.get("/dashboard/no-such-page/", HTTP_X_REQUEST_ID="trace-abcdef123456")

    assert response.status_code == 404
    [line] = [line for line in json_logs.lines if line["logger"] == "django.request"]
    assert line["message"].startswith("Not Found: /dashboard/no-such-page/")
    assert (line["request_id"], line["tenant"]) == ("trace-abcdef123456", tenant_a.pk)
    assert response["X-Request-ID"] == "trace-abcdef123456"


@pytest.mark.django_db
def test_lines_logged_during_an_api_key_request_carry_the_keys_tenant(json_logs, api_key):
    key, raw = api_key
    response = Client().get("/api/v1/orders/999999", HTTP_AUTHORIZATION=f"Bearer {raw}")

    assert response.status_code == 404
    [line] = [line for line in json_logs.lines if line["logger"] == "django.request"]
    assert line["tenant"] == key.tenant_id
    assert line["request_id"] == response["X-Request-ID"]
    assert raw not in json_logs.text


# --- Tasks ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_sync_runs_lines_carry_its_tenant_and_connection(json_logs, tenant_a, make_connection):
    shop = make_connection(tenant_a, "shopify", credentials={"shop_domain": "l.myshopify.com", "access_token": "x"})
    run_sync(shop, ["orders"], connector=ListConnector(shop, pages_of(10), fail_at={0: RuntimeError("boom")}))

    [line] = [line for line in json_logs.lines if line["logger"] == "integrations.sync"]
    assert "crashed" in line["message"] and "RuntimeError: boom" in line["exception"]
    assert (line["tenant"], line["connection"]) == (tenant_a.pk, shop.pk)
    assert current() == {}


@pytest.mark.django_db
def test_webhook_processing_lines_carry_the_events_tenant_and_connection(
    json_logs, tenant_a, make_connection, monkeypatch
):
    shop = make_connection(tenant_a, "shopify")
    event = WebhookEvent.objects.create(
        tenant=tenant_a, connection=shop, provider="shopify", topic="orders/updated", event_id="log-1"
    )

    def failing(event):
        raise RuntimeError("handler broke")

    monkeypatch.setattr(processing, "handlers", lambda: {("shopify", "orders/updated"): failing})
    processing.process(event.pk)

    [line] = [line for line in json_logs.lines if line["logger"] == "webhooks.processing"]
    assert (line["tenant"], line["connection"]) == (tenant_a.pk, shop.pk)


# --- Settings ------------------------------------------------------------------------------------


def manage(tmp_path, *args: str, **variables: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("LOG_FORMAT", "LOG_LEVEL")}
    env.update({"DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "REDIS_URL": "", **variables})
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def test_log_format_json_writes_json_lines(tmp_path):
    code = "import logging; logging.getLogger('hub.test').warning('hello from %s', 'json')"
    result = manage(tmp_path, "shell", "-c", code, LOG_FORMAT="json")
    assert result.returncode == 0, result.stderr
    [line] = [json.loads(line) for line in result.stderr.splitlines() if "hello from" in line]
    assert (line["level"], line["logger"], line["message"]) == ("WARNING", "hub.test", "hello from json")


def test_an_unknown_log_format_refuses_to_start(tmp_path):
    result = manage(tmp_path, "check", LOG_FORMAT="xml")
    assert result.returncode != 0
    assert "LOG_FORMAT must be 'plain' or 'json'" in result.stderr
