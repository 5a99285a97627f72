"""Settings are read once, at process start, so these tests start `manage.py` in a subprocess with a
controlled environment and look at what it prints and how it exits."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]

# Every variable config/settings.py reads, so the developer's shell (or CI's services) cannot leak in.
SETTINGS_VARIABLES = (
    "ALLOWED_HOSTS",
    "API_KEY_PREFIX",
    "BEHIND_TLS_PROXY",
    "CACHE_KEY_PREFIX",
    "CONN_MAX_AGE",
    "CSRF_TRUSTED_ORIGINS",
    "DATABASE_URL",
    "DEBUG",
    "DEMO_PASSWORD",
    "FERNET_KEYS",
    "HEALTH_HEARTBEAT_MAX_AGE",
    "INTEGRATIONS_ALLOW_PRIVATE_URLS",
    "LOG_LEVEL",
    "Q_RETRY",
    "Q_TIMEOUT",
    "Q_WORKERS",
    "REDIS_URL",
    "SECRET_KEY",
    "SECURE_COOKIES",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SECURE_HSTS_SECONDS",
    "SECURE_SSL_REDIRECT",
    "SQLITE_BUSY_TIMEOUT",
    "STATIC_ROOT",
)

DEV_SECRET_KEY = "django-insecure-development-only-key-do-not-use-in-production-0123456789"
DEV_FERNET_KEY = "development-only-fernet-key-do-not-use-in-production"


@pytest.fixture
def manage(tmp_path):
    """Run `manage.py <args>` with only the given settings variables set; returns the CompletedProcess.

    An empty string counts as "not set" for the required variables and, unlike a removed variable,
    is not filled in from a local `.env` file."""

    def run(*args: str, **variables: str) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if k not in SETTINGS_VARIABLES}
        env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'db.sqlite3'}"
        env["REDIS_URL"] = ""
        env.update(variables)
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    return run


def production_variables(**overrides: str) -> dict[str, str]:
    variables = {
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(48)[:64],
        "FERNET_KEYS": secrets.token_urlsafe(32),
        "ALLOWED_HOSTS": "hub.example.com",
    }
    variables.update(overrides)
    return variables


def test_production_refuses_to_start_and_names_every_missing_secret(manage):
    result = manage("check", DEBUG="false", SECRET_KEY="", FERNET_KEYS="", ALLOWED_HOSTS="")

    assert result.returncode != 0
    assert "must be set in the environment: SECRET_KEY, FERNET_KEYS, ALLOWED_HOSTS" in result.stderr


def test_production_names_only_the_secret_that_is_missing(manage):
    result = manage("check", **production_variables(FERNET_KEYS=""))

    assert result.returncode != 0
    assert "must be set in the environment: FERNET_KEYS" in result.stderr


@pytest.mark.parametrize(
    "public_default",
    [{"SECRET_KEY": DEV_SECRET_KEY}, {"FERNET_KEYS": DEV_FERNET_KEY}],
    ids=["secret-key", "fernet-key"],
)
def test_production_refuses_the_public_development_keys(manage, public_default):
    result = manage("check", **production_variables(**public_default))

    assert result.returncode != 0
    assert "must not be the public development defaults" in result.stderr


def test_the_deploy_check_passes_without_warnings_on_production_settings(manage):
    result = manage("check", "--deploy", "--fail-level", "WARNING", **production_variables())

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNING" not in result.stdout + result.stderr


def test_a_retry_not_longer_than_the_task_timeout_refuses_to_start(manage):
    result = manage("check", Q_TIMEOUT="600", Q_RETRY="600")

    assert result.returncode != 0
    assert "Q_RETRY must be longer than Q_TIMEOUT" in result.stderr


def test_without_redis_the_cache_is_in_process_memory(manage):
    result = manage(
        "shell", "-c", "from django.conf import settings; print('backend=' + settings.CACHES['default']['BACKEND'])"
    )

    assert result.returncode == 0, result.stderr
    assert "backend=django.core.cache.backends.locmem.LocMemCache" in result.stdout


def test_a_sqlite_database_file_runs_in_wal_mode(manage, tmp_path):
    db_file = tmp_path / "hub.sqlite3"
    code = (
        "from django.db import connection\n"
        "with connection.cursor() as cursor:\n"
        "    cursor.execute('PRAGMA journal_mode')\n"
        "    print('journal_mode=' + cursor.fetchone()[0])\n"
    )

    result = manage("shell", "-c", code, DATABASE_URL=f"sqlite:///{db_file}")

    assert result.returncode == 0, result.stderr
    assert "journal_mode=wal" in result.stdout
