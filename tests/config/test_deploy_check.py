"""Production as docs/deployment.md sets it up: the environment it lists passes `check --deploy`
and resolves to PostgreSQL, the ORM broker, Redis and the proxy-aware security settings;
collected static files are served hashed and compressed by whitenoise under gunicorn with
config/gunicorn.conf.py, which believes the reverse proxy (and only it) about the client's address;
and a gunicorn worker that exits has its multiprocess metrics marked dead.

Settings are read once per process, so the Django side runs in subprocesses."""

from __future__ import annotations

import http.client
import json
import os
import re
import runpy
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[2]
GUNICORN_CONF = ROOT / "config" / "gunicorn.conf.py"
HOST = "hub.example.com"
# `check --deploy` warnings the deployment guide accepts (none: every one is dealt with).
ACCEPTED_WARNINGS: set[str] = set()


def production_environment(**overrides: str) -> dict[str, str]:
    """The variables docs/deployment.md puts in /etc/hub/hub.env (the database is not reached by
    `check`, so a production-shaped address does)."""
    variables = {
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "FERNET_KEYS": secrets.token_urlsafe(32),
        "ALLOWED_HOSTS": HOST,
        "CSRF_TRUSTED_ORIGINS": f"https://{HOST}",
        "BEHIND_TLS_PROXY": "true",
        "PUBLIC_BASE_URL": f"https://{HOST}",
        "DATABASE_URL": "postgres://hub:db-password@db.internal:5432/hub",
        "REDIS_URL": "redis://cache.internal:6379/0",
        "LOG_FORMAT": "json",
        "METRICS_TOKEN": secrets.token_urlsafe(32),
    }
    variables.update(overrides)
    return variables


def manage(*args: str, env: dict[str, str], timeout: int = 120) -> subprocess.CompletedProcess:
    # The developer's own settings (a DEBUG, a DATABASE_URL) must not leak in: the variables given win.
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_the_deploy_check_passes_with_the_documented_production_environment(tmp_path):
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_environment())

    warnings = set(re.findall(r"\((security\.W\d+|[a-z_]+\.W\d+)\)", result.stdout + result.stderr))
    assert warnings <= ACCEPTED_WARNINGS, result.stdout + result.stderr
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_the_production_environment_means_postgresql_the_orm_broker_redis_and_a_tls_proxy(tmp_path):
    code = (
        "import json; from django.conf import settings as s\n"
        "print(json.dumps({"
        "'engine': s.DATABASES['default']['ENGINE'], 'broker': s.Q_CLUSTER.get('orm'),"
        "'cache': s.CACHES['default']['BACKEND'], 'proxy_header': s.SECURE_PROXY_SSL_HEADER,"
        "'redirect': s.SECURE_SSL_REDIRECT, 'cookies': [s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE],"
        "'hsts': s.SECURE_HSTS_SECONDS, 'static': s.STORAGES['staticfiles']['BACKEND'],"
        "'middleware': s.MIDDLEWARE, 'csrf_origins': s.CSRF_TRUSTED_ORIGINS}))"
    )
    result = manage("shell", "-c", code, env=production_environment(STATIC_ROOT=str(tmp_path)))

    assert result.returncode == 0, result.stderr
    resolved = json.loads(result.stdout.strip().splitlines()[-1])
    assert resolved["engine"] == "django.db.backends.postgresql"
    assert resolved["broker"] == "default"
    assert resolved["cache"] == "config.cache.RedisCache"
    assert resolved["proxy_header"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert resolved["redirect"] is True and resolved["cookies"] == [True, True]
    assert resolved["hsts"] >= 31536000
    assert resolved["static"] == "whitenoise.storage.CompressedManifestStaticFilesStorage"
    # whitenoise right after the security middleware, before anything that does work per request.
    security = resolved["middleware"].index("django.middleware.security.SecurityMiddleware")
    assert resolved["middleware"][security + 1] == "whitenoise.middleware.WhiteNoiseMiddleware"
    assert resolved["csrf_origins"] == [f"https://{HOST}"]


# --- gunicorn with config/gunicorn.conf.py ---------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(port: int, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        conn.request("GET", path, headers={"Host": HOST, **headers})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """collectstatic, then gunicorn with config/gunicorn.conf.py and the production settings on a
    SQLite file (this module needs no services). Yields (port, access log path)."""
    work = tmp_path_factory.mktemp("deploy")
    env = production_environment(
        DATABASE_URL=f"sqlite:///{work / 'hub.sqlite3'}",
        REDIS_URL="",
        STATIC_ROOT=str(work / "static"),
        GUNICORN_BIND=f"127.0.0.1:{free_port()}",
        WEB_CONCURRENCY="1",
    )
    collected = manage("collectstatic", "--no-input", env=env, timeout=300)
    assert collected.returncode == 0, collected.stderr
    log = work / "gunicorn.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF), "config.wsgi"],
            cwd=ROOT,
            env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    port = int(env["GUNICORN_BIND"].rsplit(":", 1)[1])
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                get(port, "/health/")
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"gunicorn did not start:\n{log.read_text(errors='replace')[-3000:]}")
                time.sleep(0.2)
        yield port, log
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, 9)
            server.wait(timeout=10)


def test_plain_http_is_redirected_to_https_except_the_health_check(site):
    port, _ = site

    status, headers, _ = get(port, "/accounts/login/")
    health, _, _ = get(port, "/health/")

    assert status == 301 and headers["location"] == f"https://{HOST}/accounts/login/"
    assert health != 301


def test_pages_behind_the_tls_proxy_use_hashed_static_files_served_compressed_for_a_year(site):
    port, _ = site

    status, headers, body = get(port, "/accounts/login/", **{"X-Forwarded-Proto": "https"})
    stylesheet = re.search(rb'href="(/static/css/app\.[0-9a-f]{12}\.css)"', body)
    assert status == 200, body[:500]
    assert headers["strict-transport-security"].startswith("max-age=31536000")
    assert stylesheet, body[:2000]
    css_status, css_headers, _ = get(
        port, stylesheet.group(1).decode(), **{"X-Forwarded-Proto": "https", "Accept-Encoding": "gzip"}
    )
    assert css_status == 200
    assert css_headers["cache-control"] == "max-age=315360000, public, immutable"
    assert css_headers.get("content-encoding") == "gzip"


def test_the_client_address_comes_from_the_proxy_header_only_when_the_proxy_sends_it(site):
    port, log = site

    get(port, "/health/", **{"X-Real-IP": "203.0.113.7"})  # from 127.0.0.1: the trusted proxy

    time.sleep(0.5)  # the access log line is written after the answer
    assert re.search(r"^203\.0\.113\.7 .*GET /health/", log.read_text(errors="replace"), re.MULTILINE)


def gunicorn_conf() -> dict:
    return runpy.run_path(str(GUNICORN_CONF))


def test_a_client_cannot_choose_its_address_when_it_reaches_gunicorn_directly():
    conf = gunicorn_conf()
    seen = {}

    def app(environ, start_response):
        seen["address"] = environ["REMOTE_ADDR"]
        return []

    wrapped = conf["ClientAddressFromProxy"](app, ["127.0.0.1", "10.0.0.0/8"])

    wrapped({"REMOTE_ADDR": "198.51.100.20", "HTTP_X_REAL_IP": "203.0.113.7"}, None)
    assert seen["address"] == "198.51.100.20"
    wrapped({"REMOTE_ADDR": "10.1.2.3", "HTTP_X_REAL_IP": "203.0.113.7"}, None)
    assert seen["address"] == "203.0.113.7"
    wrapped({"REMOTE_ADDR": "127.0.0.1", "HTTP_X_REAL_IP": "not an address"}, None)
    assert seen["address"] == "127.0.0.1"


def test_a_worker_that_exits_has_its_live_gauges_removed(tmp_path, monkeypatch):
    pytest.importorskip("prometheus_client")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    (tmp_path / "gauge_livesum_4242.db").write_bytes(b"")
    (tmp_path / "counter_4242.db").write_bytes(b"")

    gunicorn_conf()["child_exit"](None, SimpleNamespace(pid=4242))

    assert sorted(p.name for p in tmp_path.iterdir()) == ["counter_4242.db"]
