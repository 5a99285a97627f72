"""The client's campaign pages, included at `dashboard/campaigns/` (config/urls.py)."""

from django.urls import path

from . import views

app_name = "campaigns"

urlpatterns = [
    path("", views.campaign_list, name="list"),
    path("new/", views.campaign_new, name="new"),
    path("<int:pk>/", views.campaign_detail, name="detail"),
    path("<int:pk>/edit/", views.campaign_edit, name="edit"),
    path("<int:pk>/schedule/", views.campaign_action, {"action": "schedule"}, name="schedule"),
    path("<int:pk>/pause/", views.campaign_action, {"action": "pause"}, name="pause"),
    path("<int:pk>/resume/", views.campaign_action, {"action": "resume"}, name="resume"),
    path("<int:pk>/cancel/", views.campaign_action, {"action": "cancel"}, name="cancel"),
    path("segments/", views.segment_list, name="segments"),
    path("segments/new/", views.segment_new, name="segment-new"),
    path("segments/count", views.segment_count, name="segment-count"),
    path("segments/<int:pk>/", views.segment_edit, name="segment"),
    path("suppressions/", views.suppression_list, name="suppressions"),
    path("suppressions/<int:pk>/remove/", views.suppression_remove, name="suppression-remove"),
]
