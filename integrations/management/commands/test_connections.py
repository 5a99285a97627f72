"""Test connections' credentials and print each result; exits non-zero if any test failed."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from integrations.models import Connection
from integrations.services import test_connection


class Command(BaseCommand):
    help = "Test enabled connections and print each result. Exits 1 when any test fails."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--tenant", help="Only this tenant (slug).")
        parser.add_argument("--connection", type=int, help="Only this connection (id).")
        parser.add_argument("--platform", help="Only connections of this platform.")

    def handle(self, *args, tenant=None, connection=None, platform=None, **options):
        connections = Connection.objects.select_related("tenant").filter(enabled=True, is_demo=False)
        if tenant:
            connections = connections.filter(tenant__slug=tenant)
        if connection:
            connections = connections.filter(pk=connection)
        if platform:
            connections = connections.filter(platform=platform)
        failed = 0
        for conn in connections:
            result = test_connection(conn)
            if result.ok:
                extra = "; ".join(result.warnings)
                self.stdout.write(self.style.SUCCESS(f"OK    {conn} ({conn.tenant}) {result.latency_ms} ms {extra}"))
            else:
                failed += 1
                hint = f" — {result.hint}" if result.hint else ""
                self.stdout.write(self.style.ERROR(f"FAIL  {conn} ({conn.tenant}): {result.message}{hint}"))
        if not connections:
            self.stdout.write("No enabled connection matches.")
        if failed:
            raise CommandError(f"{failed} connection test(s) failed.")
