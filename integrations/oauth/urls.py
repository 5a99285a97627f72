from django.urls import path

from . import views

app_name = "oauth"

urlpatterns = [
    path("<slug:platform>/start", views.start, name="start"),
    path("<slug:platform>/callback", views.callback, name="callback"),
]
