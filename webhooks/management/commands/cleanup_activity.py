"""Retention: the activity stream beyond ACTIVITY_RETENTION_DAYS, and webhook deliveries refused
for their signature beyond WEBHOOK_REJECTED_RETENTION_DAYS (kept so a person can see what was sent,
never processed, and otherwise never removed). Here, in webhooks, because it reaches both tables.
Runs daily on the task worker (config/tasks.py)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from tenants import activity
from webhooks.models import EventStatus, WebhookEvent


class Command(BaseCommand):
    help = (
        "Delete activity older than ACTIVITY_RETENTION_DAYS and rejected webhook deliveries older than "
        "WEBHOOK_REJECTED_RETENTION_DAYS, in batches."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--days", type=int, help="Keep this many days of activity (default: the setting).")
        parser.add_argument(
            "--rejected-days", type=int, help="Keep this many days of rejected deliveries (default: the setting)."
        )
        parser.add_argument("--batch-size", type=int, default=1000, help="Rows per delete statement (default 1000).")

    def handle(self, *args, days=None, rejected_days=None, batch_size=1000, **options) -> None:
        days = settings.ACTIVITY_RETENTION_DAYS if days is None else days
        rejected_days = settings.WEBHOOK_REJECTED_RETENTION_DAYS if rejected_days is None else rejected_days
        if days < 0 or rejected_days < 0 or batch_size < 1:
            raise CommandError("Days must be 0 or more and the batch size at least 1.")
        now = timezone.now()
        entries, batches = activity.prune(days, batch_size, now=now)
        rejected = WebhookEvent.objects.filter(
            status=EventStatus.REJECTED, received_at__lt=now - timedelta(days=rejected_days)
        )
        events, event_batches = activity.delete_in_batches(rejected, batch_size)
        self.stdout.write(
            f"Deleted {entries} activity entries older than {days} days ({batches} batches) and {events} rejected "
            f"webhook deliveries older than {rejected_days} days ({event_batches} batches)."
        )
