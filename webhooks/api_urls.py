"""The webhooks app's API routes under /api/v1/ (Zapier REST hooks and outbound subscriptions)."""

from __future__ import annotations

from rest_framework.routers import SimpleRouter

from .api import HookViewSet, MilestoneViewSet

router = SimpleRouter()
# Both `/hooks` and `/hooks/` resolve, as in config/urls.py's router.
router.trailing_slash = "/?"
router.register("hooks", HookViewSet, basename="hook")
router.register("milestones", MilestoneViewSet, basename="milestone")

urlpatterns = router.urls
