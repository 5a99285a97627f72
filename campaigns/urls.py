from django.urls import path

from . import consent_views

app_name = "consent"

urlpatterns = [
    path("<str:token>/", consent_views.unsubscribe, name="unsubscribe"),
]
