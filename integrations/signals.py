from __future__ import annotations

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django_q.models import Schedule

from commerce import metrics

from .models import Connection
from .sync import sync_committed
from .tasks import schedule_name, update_schedule


@receiver(sync_committed, dispatch_uid="commerce-metrics-invalidate")
def drop_cached_metrics(sender, tenant_id: int, **kwargs) -> None:
    metrics.invalidate(tenant_id)


@receiver(post_save, sender=Connection)
def keep_schedule_in_step(sender, instance: Connection, **kwargs) -> None:
    update_fields = kwargs.get("update_fields")
    if update_fields and not {"sync_frequency", "enabled", "is_demo", "status"} & set(update_fields):
        return
    transaction.on_commit(lambda: update_schedule(instance))


@receiver(post_delete, sender=Connection)
def drop_schedule(sender, instance: Connection, **kwargs) -> None:
    Schedule.objects.filter(name=schedule_name(instance)).delete()
