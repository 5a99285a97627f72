from __future__ import annotations

from django.utils import timezone

HEARTBEAT_FUNC = "config.tasks.heartbeat"
HEARTBEAT_SCHEDULE = "hub-heartbeat"
# Standing schedules: name → (function, minutes between runs).
STANDING = {
    HEARTBEAT_SCHEDULE: (HEARTBEAT_FUNC, 1),
    # Retries due webhook events, and ones the queue lost or a dead worker held.
    "webhooks-sweep": ("webhooks.tasks.sweep", 1),
    # Queues outbound hook deliveries whose retry is due, and ones the queue lost.
    "hooks-sweep": ("webhooks.tasks.deliver_due_hooks", 1),
    # Queues stock pushes whose retry is due, and ones the queue lost or a dead worker held.
    "stock-push-sweep": ("commerce.stock_push.sweep", 1),
    # Pushes fulfilments whose retry is due, ones the queue lost, and ones a dead worker held.
    "fulfilment-sweep": ("commerce.fulfilment.sweep", 1),
    # Queues campaigns whose time has come, and sends a dead worker left half-done.
    "campaigns-due": ("campaigns.sending.send_due", 1),
    # Opens and resolves alert incidents, and notifies superadmins (integrations/alerts.py).
    "alerts-check": ("integrations.alerts.check", 1),
    # Deletes activity and rejected webhook deliveries past their retention (cleanup_activity).
    "activity-cleanup": ("config.tasks.cleanup_activity", 24 * 60),
}


def heartbeat() -> str:
    """Runs every minute on the task cluster; /health/ reads when it last succeeded."""
    return timezone.now().isoformat()


def cleanup_activity() -> str:
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("cleanup_activity", stdout=out)
    return out.getvalue().strip()


def ensure_schedules(**kwargs) -> None:
    """Create the cluster's standing schedules (idempotent; runs after every migrate)."""
    from django_q.models import Schedule

    for name, (func, minutes) in STANDING.items():
        Schedule.objects.update_or_create(
            name=name,
            defaults={"func": func, "schedule_type": Schedule.MINUTES, "minutes": minutes, "repeats": -1},
        )
