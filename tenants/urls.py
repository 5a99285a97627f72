from django.urls import path

from . import views

app_name = "api_keys"

urlpatterns = [
    path("", views.api_keys, name="list"),
    path("<int:pk>/", views.api_key_detail, name="detail"),
    path("<int:pk>/revoke/", views.revoke_api_key, name="revoke"),
]
