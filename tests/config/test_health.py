from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.test import override_settings
from django.utils import timezone
from django_q.models import Schedule, Task

from config.tasks import HEARTBEAT_FUNC, HEARTBEAT_SCHEDULE

pytestmark = pytest.mark.django_db


def record_heartbeat(age: timedelta = timedelta(seconds=5), success: bool = True) -> Task:
    """What the task cluster leaves behind when a worker has run the heartbeat task."""
    stopped = timezone.now() - age
    return Task.objects.create(
        id=uuid.uuid4().hex,
        name="heartbeat",
        func=HEARTBEAT_FUNC,
        started=stopped - timedelta(milliseconds=20),
        stopped=stopped,
        success=success,
    )


class BrokenCache:
    def set(self, *args, **kwargs):
        raise ConnectionError("cache server unreachable")

    def get(self, *args, **kwargs):
        raise ConnectionError("cache server unreachable")

    def delete(self, *args, **kwargs):
        raise ConnectionError("cache server unreachable")


def test_health_is_200_with_every_check_ok_after_a_recent_heartbeat(client):
    record_heartbeat()

    response = client.get("/health/")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert {name: check["ok"] for name, check in body["checks"].items()} == {
        "database": True,
        "cache": True,
        "task_cluster": True,
    }


def test_health_is_never_cached(client):
    record_heartbeat()

    response = client.get("/health/")

    assert "no-cache" in response["Cache-Control"]


def test_health_reports_the_database_vendor(client):
    response = client.get("/health/")

    assert response.json()["checks"]["database"] == {"ok": True, "vendor": connection.vendor}


def test_health_is_503_when_no_heartbeat_has_ever_run(client):
    response = client.get("/health/")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    cluster = body["checks"]["task_cluster"]
    assert cluster["ok"] is False
    assert cluster["last_heartbeat"] is None
    assert "qcluster" in cluster["error"]


def test_health_is_503_when_the_last_heartbeat_is_older_than_the_allowed_age(client):
    old = record_heartbeat(age=timedelta(seconds=settings.HEALTH_HEARTBEAT_MAX_AGE + 60))

    response = client.get("/health/")

    assert response.status_code == 503
    cluster = response.json()["checks"]["task_cluster"]
    assert cluster["ok"] is False
    assert cluster["last_heartbeat"] == old.stopped.isoformat()
    assert "heartbeat" in cluster["error"]


@override_settings(HEALTH_HEARTBEAT_MAX_AGE=3600)
def test_a_heartbeat_within_the_configured_age_counts(client):
    record_heartbeat(age=timedelta(minutes=30))

    assert client.get("/health/").status_code == 200


def test_a_failed_heartbeat_does_not_count_as_the_cluster_being_up(client):
    record_heartbeat(success=False)

    response = client.get("/health/")

    assert response.status_code == 503
    assert response.json()["checks"]["task_cluster"]["ok"] is False


def test_health_is_503_naming_the_error_when_the_cache_fails(client, monkeypatch):
    record_heartbeat()
    monkeypatch.setattr("config.health.cache", BrokenCache())

    response = client.get("/health/")

    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["cache"] == {"ok": False, "error": "ConnectionError"}
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["task_cluster"]["ok"] is True


def test_health_answers_only_get(client):
    assert client.post("/health/").status_code == 405


def test_the_heartbeat_schedule_exists_after_migrations():
    schedule = Schedule.objects.get(name=HEARTBEAT_SCHEDULE)

    assert schedule.func == HEARTBEAT_FUNC
    assert schedule.schedule_type == Schedule.MINUTES
    assert schedule.minutes == 1
    assert schedule.repeats == -1


@pytest.mark.redis
def test_with_redis_configured_the_cache_is_redis_and_round_trips(client):
    assert settings.CACHES["default"]["BACKEND"] == "config.cache.RedisCache"
    key = f"test:{uuid.uuid4().hex}"
    cache.set(key, {"answer": 42}, 30)

    assert cache.get(key) == {"answer": 42}
    assert client.get("/health/").json()["checks"]["cache"] == {"ok": True, "backend": "RedisCache"}
    cache.delete(key)


@pytest.mark.postgres
def test_with_a_postgres_database_url_the_database_is_postgresql(client):
    assert settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
    assert client.get("/health/").json()["checks"]["database"] == {"ok": True, "vendor": "postgresql"}
