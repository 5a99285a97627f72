"""Make sure a superadmin exists, and say how to sign in.

Username and password come from SUPERADMIN_USERNAME / SUPERADMIN_PASSWORD. In development the
password defaults to DEMO_PASSWORD; with DEBUG off and no password set, a random one is generated
and printed once. An existing user's password is changed only with --reset-password.
"""

from __future__ import annotations

import os
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the superadmin if missing and print its login."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--reset-password", action="store_true", help="Set the password even if the user exists.")

    def handle(self, *args, reset_password: bool = False, **options) -> None:
        username = os.environ.get("SUPERADMIN_USERNAME", "admin")
        password = os.environ.get("SUPERADMIN_PASSWORD") or (settings.DEMO_PASSWORD if settings.DEBUG else "")
        User = get_user_model()
        user, created = User.objects.get_or_create(
            username=username, defaults={"email": os.environ.get("SUPERADMIN_EMAIL", "")}
        )
        if created or reset_password:
            password = password or secrets.token_urlsafe(16)
            user.is_staff = user.is_superuser = user.is_active = True
            user.set_password(password)
            user.save()
            self.stdout.write(self.style.SUCCESS(f"Superadmin login: {username} / {password}"))
        elif settings.DEBUG and password and user.check_password(password):
            # Development only: production logs never get a password that came from the environment.
            self.stdout.write(self.style.SUCCESS(f"Superadmin login: {username} / {password}"))
        else:
            self.stdout.write(f"Superadmin login: {username} (password unchanged; --reset-password sets a new one)")
