"""Sync connections now, in this process, printing progress; exits non-zero if any sync failed.

python manage.py sync [--tenant SLUG] [--connection ID] [--platform P] [--stream S ...] [--full]
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from integrations.connectors import CONNECTORS
from integrations.models import Connection, SyncRun, SyncStatus, SyncTrigger
from integrations.platforms import CATALOGUE
from integrations.sync import create_run, run_sync
from tenants import audit


class Command(BaseCommand):
    help = "Sync enabled connections now and print progress. Exits 1 when a sync fails."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--tenant", help="Only this tenant (slug).")
        parser.add_argument("--connection", type=int, help="Only this connection (id).")
        parser.add_argument("--platform", help="Only connections of this platform.")
        parser.add_argument("--stream", action="append", dest="streams", help="Only this stream (repeatable).")
        parser.add_argument("--full", action="store_true", help="Ignore stored cursors and read everything.")

    def handle(self, *args, tenant=None, connection=None, platform=None, streams=None, full=False, **options):
        connections = Connection.objects.select_related("tenant").filter(enabled=True, is_demo=False)
        if tenant:
            connections = connections.filter(tenant__slug=tenant)
        if connection:
            connections = connections.filter(pk=connection)
        if platform:
            connections = connections.filter(platform=platform)
        # Platforms with a connector and something to sync (payment gateways are only tested).
        connections = connections.filter(platform__in=[p for p in CONNECTORS if CATALOGUE[p].streams])
        if not connections.exists():
            raise CommandError("No enabled connection matches.")
        failures = 0
        for conn in connections:
            self.stdout.write(f"Syncing {conn} for {conn.tenant} …")
            run = create_run(conn, streams, full=full, trigger=SyncTrigger.COMMAND)
            audit.record("sync.requested", tenant=conn.tenant, target=conn, run=run.pk, trigger="command")
            run = run_sync(conn, streams, full=full, trigger=SyncTrigger.COMMAND, run=run, on_progress=self.progress)
            self.report(run)
            failures += run.status == SyncStatus.FAILED
        if failures:
            raise CommandError(f"{failures} sync(s) failed.")

    def progress(self, run: SyncRun) -> None:
        parts = []
        for stream, p in run.progress.items():
            total = f"/{p['total']}" if p.get("total") else ""
            parts.append(f"{stream} {p.get('seen', 0)}{total}")
        self.stdout.write("  " + ", ".join(parts))

    def report(self, run: SyncRun) -> None:
        t = run.totals
        summary = (
            f"  {run.get_status_display()}: {t['created']} created, {t['updated']} updated, "
            f"{t['unchanged']} unchanged, {t['failed']} failed"
        )
        if run.duration:
            summary += f" in {run.duration.total_seconds():.1f} s"
        if run.status == SyncStatus.SUCCEEDED:
            self.stdout.write(self.style.SUCCESS(summary))
        else:
            self.stdout.write(self.style.ERROR(f"{summary}. {run.error}"))
