from django.urls import path

from . import views

app_name = "webhooks"

urlpatterns = [
    path("third-party/<slug:service>/<uuid:connection_uuid>/", views.receive_third_party, name="third-party"),
    path("<slug:provider>/<uuid:connection_uuid>/", views.receive, name="receive"),
]
