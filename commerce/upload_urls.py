from django.urls import path

from . import upload_views

app_name = "uploads"

urlpatterns = [
    path("", upload_views.upload_list, name="list"),
    path("new/", upload_views.upload_new, name="new"),
    path("<int:pk>/", upload_views.upload_detail, name="detail"),
]
