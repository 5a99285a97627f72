"""The webhooks app's API routes under /api/v1/ (Zapier REST hooks and outbound subscriptions)."""

from __future__ import annotations

urlpatterns: list = []
