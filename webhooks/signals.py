from __future__ import annotations

import logging

from django.db import transaction
from django.db.models.signals import post_delete, post_save, pre_delete
from django.dispatch import receiver
from django_q.tasks import async_task

from campaigns.signals import campaign_sent
from commerce.signals import records_written, stock_low
from integrations.errors import IntegrationError
from integrations.models import Connection, SyncRun, SyncStatus, SyncTrigger
from integrations.services import connection_tested

from . import connections, registration
from .models import WebhookSubscription
from .outbound import publish

logger = logging.getLogger(__name__)


@receiver(connection_tested, dispatch_uid="webhooks-register-after-test")
def register_after_test(sender, connection: Connection, result, **kwargs) -> None:
    if result.ok and registration.can_register(connection):
        pk = connection.pk
        transaction.on_commit(lambda: async_task("webhooks.tasks.register_webhooks", pk, task_name=f"webhooks-{pk}"))


@receiver(post_save, sender=Connection, dispatch_uid="webhooks-forget-cached-connection-on-save")
@receiver(post_delete, sender=Connection, dispatch_uid="webhooks-forget-cached-connection-on-delete")
def forget_cached_connection(sender, instance: Connection, **kwargs) -> None:
    connections.forget(instance.uuid)


@receiver(pre_delete, sender=Connection, dispatch_uid="webhooks-remember-before-delete")
def remember_subscriptions(sender, instance: Connection, **kwargs) -> None:
    instance._webhook_remote_ids = list(
        WebhookSubscription.objects.filter(connection=instance).values_list("remote_id", flat=True)
    )


@receiver(post_delete, sender=Connection, dispatch_uid="webhooks-delete-on-platform")
def delete_on_platform(sender, instance: Connection, **kwargs) -> None:
    """Once the deletion commits, ask the platform to stop sending (best effort: a platform drops
    subscriptions whose deliveries keep failing anyway, and ours now answer 404)."""
    remote_ids = getattr(instance, "_webhook_remote_ids", [])
    if not remote_ids or instance.platform not in registration.registrars():
        return

    def delete() -> None:
        from integrations.connectors import get_connector

        try:
            registrar = registration.registrars()[instance.platform](get_connector(instance))
            for remote_id in remote_ids:
                registrar.delete(remote_id)
        except IntegrationError as error:
            logger.warning("Could not delete webhooks of deleted connection %s: %s", instance.pk, error.message)

    transaction.on_commit(delete)


@receiver(post_save, sender=SyncRun, dispatch_uid="webhooks-count-missed")
def count_missed_by_webhooks(sender, instance: SyncRun, **kwargs) -> None:
    """A scheduled sync of a connection with webhooks reconciles: whatever it still had to create
    or update is a change the webhooks did not bring (or had not brought yet)."""
    if (
        instance.status != SyncStatus.SUCCEEDED
        or instance.trigger != SyncTrigger.SCHEDULE
        or instance.missed_by_webhooks is not None
        or not WebhookSubscription.objects.filter(connection_id=instance.connection_id).exists()
    ):
        return
    totals = instance.totals
    missed = totals["created"] + totals["updated"]
    SyncRun.objects.filter(pk=instance.pk).update(missed_by_webhooks=missed)
    instance.missed_by_webhooks = missed


# --- Outbound hooks: every change is announced after it commits, so a rollback sends nothing. A
# hook's trouble is logged (robust=True), never raised into the sync or request that made the change.
# (Lambdas, not functools.partial: Django logs a robust callback's failure by its __qualname__.)


@receiver(records_written, dispatch_uid="hooks-records-written")
def hooks_for_records(sender, tenant_id: int, connection_id: int, stream: str, created, updated, **kwargs) -> None:
    if created or updated:
        created, updated = list(created), list(updated)
        transaction.on_commit(lambda: publish.records_written(tenant_id, stream, created, updated), robust=True)


@receiver(stock_low, dispatch_uid="hooks-stock-low")
def hooks_for_stock_low(sender, tenant_id: int, items, **kwargs) -> None:
    items = list(items)
    transaction.on_commit(lambda: publish.stock_low(tenant_id, items), robust=True)


@receiver(connection_tested, dispatch_uid="hooks-connection-tested")
def hooks_for_connection_test(sender, connection: Connection, result, **kwargs) -> None:
    state = publish.CONNECTED if result.ok else publish.FAILED
    pk = connection.pk
    transaction.on_commit(lambda: publish.connection_state(pk, state), robust=True)


@receiver(post_save, sender=SyncRun, dispatch_uid="hooks-sync-finished")
def hooks_for_sync_run(sender, instance: SyncRun, update_fields=None, **kwargs) -> None:
    finished = instance.status in (SyncStatus.SUCCEEDED, SyncStatus.FAILED)
    if finished and (update_fields is None or "status" in update_fields):
        pk = instance.pk
        transaction.on_commit(lambda: publish.sync_finished(pk), robust=True)


@receiver(campaign_sent, dispatch_uid="hooks-campaign-sent")
def hooks_for_campaign(sender, tenant_id: int, campaign_id: int, **kwargs) -> None:
    # campaign_sent is sent after the campaign's last change committed.
    publish.campaign_sent(tenant_id, campaign_id)
