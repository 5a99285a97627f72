"""Send the campaigns that are due, for cron: the cluster does it every minute by itself, this is for
running without a cluster or to send at once. Prints each campaign's figures as it goes."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from campaigns import sending


class Command(BaseCommand):
    help = "Send due campaigns (scheduled ones whose time has come, and sends a dead worker left) in this process."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--tenant", help="Only this tenant (slug).")
        parser.add_argument(
            "--queue", action="store_true", help="Queue them on the task cluster instead of sending here."
        )

    def handle(self, *args, tenant=None, queue=False, **options):
        if queue:
            ids = sending.send_due()
            self.stdout.write(f"Queued {len(ids)} campaign(s).")
            return
        due = sending.due().select_related("tenant")
        if tenant:
            due = due.filter(tenant__slug=tenant)
        campaigns = list(due.order_by("scheduled_at", "pk"))
        if not campaigns:
            self.stdout.write("No campaign is due.")
        for campaign in campaigns:
            self.stdout.write(f"{campaign.name} ({campaign.tenant}): sending…")
            outcome = sending.run(campaign.pk)
            campaign.refresh_from_db()
            figures = sending.stats(campaign)
            self.stdout.write(
                f"  {outcome}: {figures['sent']} sent, {figures['failed']} failed, "
                f"{figures['suppressed']} suppressed, {figures['pending']} left of {figures['recipients']}"
            )
