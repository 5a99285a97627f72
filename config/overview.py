"""The SuperAdmin overview on the admin index: what needs a person's attention across every tenant.

Every figure comes from a fixed number of aggregate queries, however many tenants, connections and
runs there are. Rows carry their admin URLs so the template only lays them out.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db.models import Case, Count, F, OuterRef, Q, Subquery, When
from django.db.models.functions import Coalesce, Greatest
from django.urls import reverse
from django.utils import timezone
from django.utils.text import Truncator

from integrations.models import Connection, ConnectionStatus, QuarantinedRecord, SyncRun, SyncStatus
from tenants.models import ApiKey, AuditLog, Tenant, TenantStatus

FAILING_STATUSES = [ConnectionStatus.FAILING, ConnectionStatus.NEEDS_REAUTH]
IN_PROGRESS_STATUSES = [SyncStatus.RUNNING, SyncStatus.QUEUED]
# What the progress bar and the row need from a run (and, through only(), nothing else).
RUN_FIELDS = ["trigger", "status", "streams", "progress", "queued_at", "started_at", "connection", "tenant"]
FAILING_LIMIT = 10
IN_PROGRESS_LIMIT = 20
AUDIT_LIMIT = 15
API_KEY_LIMIT = 5
ERROR_CHARS = 140
# The order the connection figures are shown in: healthy first, then what needs attention.
CONNECTION_STATUS_ORDER = [
    ConnectionStatus.CONNECTED,
    ConnectionStatus.FAILING,
    ConnectionStatus.NEEDS_REAUTH,
    ConnectionStatus.UNTESTED,
    ConnectionStatus.DISABLED,
]


def overview_context(now: datetime | None = None) -> dict[str, Any]:
    now = now or timezone.now()
    return {
        "tenants": _tenants(),
        "connections": _connections(),
        "sync": _sync_figures(now),
        "failing_connections": _failing_connections(),
        "in_progress": _in_progress_runs(),
        "quarantine": _quarantine(),
        "audit": _recent_audit(),
        "api": _api_activity(now),
        # Webhook activity has no model yet: the webhooks work fills this in and the template
        # renders its section only when it is set.
        "webhook_activity": None,
    }


def _integrations_admin():
    """The connection admin's status badge and progress bar, so the overview looks like its pages.
    Imported late: integrations.admin registers on the SuperAdmin site, whose module imports this one."""
    from integrations import admin

    return admin


def _admin_url(name: str, *args: Any, query: str = "") -> str:
    url = reverse(f"admin:{name}", args=args)
    return f"{url}?{query}" if query else url


def _tenants() -> dict[str, Any]:
    figures = Tenant.objects.aggregate(
        total=Count("id"),
        active=Count("id", filter=Q(status=TenantStatus.ACTIVE)),
        suspended=Count("id", filter=Q(status=TenantStatus.SUSPENDED)),
        demo=Count("id", filter=Q(is_demo=True)),
    )
    changelist = _admin_url("tenants_tenant_changelist")
    return {
        **figures,
        "url": changelist,
        "active_url": f"{changelist}?status__exact={TenantStatus.ACTIVE}",
        "suspended_url": f"{changelist}?status__exact={TenantStatus.SUSPENDED}",
        "demo_url": f"{changelist}?is_demo__exact=1",
        "add_url": _admin_url("tenants_tenant_add"),
    }


def _connections() -> dict[str, Any]:
    badge = _integrations_admin().badge
    counts = dict(Connection.objects.order_by().values_list("status").annotate(n=Count("id")))
    changelist = _admin_url("integrations_connection_changelist")
    by_status = [
        {
            "status": status.value,
            "label": status.label,
            "badge": badge(status.value, status.label),
            "count": counts.get(status.value, 0),
            "url": f"{changelist}?status__exact={status.value}",
        }
        for status in CONNECTION_STATUS_ORDER
    ]
    return {"total": sum(counts.values()), "by_status": by_status, "url": changelist}


def _sync_figures(now: datetime) -> dict[str, Any]:
    windows = {"day": timedelta(hours=24), "week": timedelta(days=7)}
    aggregates: dict[str, Any] = {
        "running": Count("id", filter=Q(status=SyncStatus.RUNNING)),
        "queued": Count("id", filter=Q(status=SyncStatus.QUEUED)),
    }
    for key, span in windows.items():
        finished = Q(finished_at__gt=now - span, finished_at__lte=now)
        aggregates[f"{key}_succeeded"] = Count("id", filter=finished & Q(status=SyncStatus.SUCCEEDED))
        aggregates[f"{key}_failed"] = Count("id", filter=finished & Q(status=SyncStatus.FAILED))
    figures = SyncRun.objects.aggregate(**aggregates)
    changelist = _admin_url("integrations_syncrun_changelist")
    return {
        "day": _rate(figures["day_succeeded"], figures["day_failed"]),
        "week": _rate(figures["week_succeeded"], figures["week_failed"]),
        "running": figures["running"],
        "queued": figures["queued"],
        "url": changelist,
        "failed_url": f"{changelist}?status__exact={SyncStatus.FAILED}",
    }


def _rate(succeeded: int, failed: int) -> dict[str, Any]:
    finished = succeeded + failed
    return {
        "succeeded": succeeded,
        "failed": failed,
        "finished": finished,
        "rate": round(100 * succeeded / finished, 1) if finished else None,
    }


def _failing_connections() -> list[dict[str, Any]]:
    badge = _integrations_admin().badge
    # A failed test stamps last_tested_at; a failed sync only updates the status and last_error, so
    # its time is the failed run's finish. The later of the two is when the connection last failed.
    # Coalescing each with the other keeps Greatest from returning NULL where one is missing (SQLite).
    last_failed_run = (
        SyncRun.objects.filter(connection=OuterRef("pk"), status=SyncStatus.FAILED, finished_at__isnull=False)
        .order_by("-finished_at")
        .values("finished_at")[:1]
    )
    connections = (
        Connection.objects.filter(status__in=FAILING_STATUSES)
        .select_related("tenant")
        # Only what is shown: loading the credentials would decrypt every one of them for nothing.
        .only("name", "platform", "status", "last_error", "last_tested_at", "updated_at", "tenant__name")
        .annotate(failed_run_at=Subquery(last_failed_run))
        .annotate(
            failed_at=Greatest(Coalesce("last_tested_at", "failed_run_at"), Coalesce("failed_run_at", "last_tested_at"))
        )
        .order_by(F("failed_at").desc(nulls_last=True), "-updated_at", "-pk")[:FAILING_LIMIT]
    )
    return [
        {
            "name": connection.name,
            "tenant": connection.tenant.name,
            "platform": connection.get_platform_display(),
            "status": connection.status,
            "badge": badge(connection.status, connection.get_status_display()),
            "error": Truncator(connection.last_error).chars(ERROR_CHARS),
            "full_error": connection.last_error,
            "failed_at": connection.failed_at,
            "url": _admin_url("integrations_connection_change", connection.pk),
        }
        for connection in connections
    ]


def _in_progress_runs() -> list[dict[str, Any]]:
    helpers = _integrations_admin()
    runs = (
        SyncRun.objects.filter(status__in=IN_PROGRESS_STATUSES)
        .select_related("connection", "tenant")
        .only(*RUN_FIELDS, "connection__name", "tenant__name")
        .order_by(Case(When(status=SyncStatus.RUNNING, then=0), default=1), "queued_at", "pk")[:IN_PROGRESS_LIMIT]
    )
    return [
        {
            "pk": run.pk,
            "connection": run.connection.name,
            "tenant": run.tenant.name,
            "trigger": run.get_trigger_display(),
            "status": run.status,
            "badge": helpers.badge(run.status, run.get_status_display()),
            "started_at": run.started_at,
            "queued_at": run.queued_at,
            "progress": helpers.progress_bar(run),
            "url": _admin_url("integrations_syncrun_change", run.pk),
        }
        for run in runs
    ]


def _quarantine() -> dict[str, Any]:
    return {
        "open": QuarantinedRecord.objects.filter(resolved_at__isnull=True).count(),
        "url": _admin_url("integrations_quarantinedrecord_changelist", query="open=1"),
    }


def _recent_audit() -> dict[str, Any]:
    entries = AuditLog.objects.select_related("tenant").defer("details").order_by("-created_at", "-pk")[:AUDIT_LIMIT]
    return {
        "entries": [
            {
                "created_at": entry.created_at,
                "actor": entry.actor_label or "system",
                "tenant": entry.tenant.name if entry.tenant else "",
                "action": entry.action,
                "target": entry.target,
                "url": _admin_url("tenants_auditlog_change", entry.pk),
            }
            for entry in entries
        ],
        "url": _admin_url("tenants_auditlog_changelist"),
    }


def _api_activity(now: datetime) -> dict[str, Any]:
    used_recently = ApiKey.objects.filter(last_used_at__gt=now - timedelta(hours=24), last_used_at__lte=now).count()
    keys = (
        ApiKey.objects.filter(last_used_at__isnull=False)
        .select_related("tenant")
        .only("name", "prefix", "last_used_at", "revoked_at", "tenant__name")
        .order_by("-last_used_at", "-pk")[:API_KEY_LIMIT]
    )
    return {
        "used_24h": used_recently,
        "recent_keys": [
            {
                "prefix": key.prefix,
                "name": key.name,
                "tenant": key.tenant.name,
                "last_used_at": key.last_used_at,
                "revoked": key.is_revoked,
                "url": _admin_url("tenants_apikey_change", key.pk),
            }
            for key in keys
        ],
        "url": _admin_url("tenants_apikey_changelist"),
    }
