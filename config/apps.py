from __future__ import annotations

from django.contrib.admin.apps import AdminConfig
from django.db.models.signals import post_migrate


class SuperAdminConfig(AdminConfig):
    """Makes the SuperAdmin dashboard the default admin site, so every app's
    `@admin.register` (ours and third-party ones like django-q2's) lands on it.

    It is also the project-level app config, so it installs the task cluster's standing schedules
    after each migrate."""

    default_site = "config.admin.SuperAdminSite"

    def ready(self) -> None:
        super().ready()
        from . import db
        from .tasks import ensure_schedules

        post_migrate.connect(ensure_schedules, sender=self, dispatch_uid="hub-ensure-schedules")
        db.install()
