"""The client dashboard's integrations page: the tenant's connections, and Connect for each one
that connects by OAuth."""

from __future__ import annotations

from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from tenants.views import tenant_required

from .models import Connection, ConnectionStatus, SyncStatus
from .oauth.providers import PROVIDERS
from .oauth.views import CONNECT_ROLES
from .services import connection_stats


@dataclass
class Row:
    connection: Connection
    stats: dict
    may_connect: bool  # the member's role lets them change credentials

    @property
    def can_connect(self) -> bool:
        return self.may_connect and self.connection.platform in PROVIDERS

    @property
    def needs_reauth(self) -> bool:
        return self.connection.status == ConnectionStatus.NEEDS_REAUTH

    @property
    def connect_label(self) -> str:
        untouched = self.connection.status == ConnectionStatus.UNTESTED
        return f"{'Connect' if untouched else 'Reconnect'} {self.connection.get_platform_display()}"

    @property
    def last_status_label(self) -> str:
        status = self.stats.get("last_status")
        return SyncStatus(status).label if status in SyncStatus.values else ""


@tenant_required
def connections(request: HttpRequest) -> HttpResponse:
    items = list(Connection.objects.for_tenant(request.tenant).order_by("name"))
    stats = connection_stats(items) if items else {}
    may_connect = getattr(request.tenant, "member_role", None) in CONNECT_ROLES
    rows = [Row(c, stats.get(c.pk, {}), may_connect) for c in items]
    context = {"rows": rows, "needing_reauth": [row for row in rows if row.needs_reauth and row.can_connect]}
    return render(request, "dashboard/integrations.html", context)
