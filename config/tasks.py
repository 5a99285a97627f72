from __future__ import annotations

from django.utils import timezone

HEARTBEAT_FUNC = "config.tasks.heartbeat"
HEARTBEAT_SCHEDULE = "hub-heartbeat"


def heartbeat() -> str:
    """Runs every minute on the task cluster; /health/ reads when it last succeeded."""
    return timezone.now().isoformat()


def ensure_schedules(**kwargs) -> None:
    """Create the cluster's standing schedules (idempotent; runs after every migrate)."""
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name=HEARTBEAT_SCHEDULE,
        defaults={"func": HEARTBEAT_FUNC, "schedule_type": Schedule.MINUTES, "minutes": 1, "repeats": -1},
    )
