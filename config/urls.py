from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView
from rest_framework.routers import SimpleRouter

from commerce.api import CustomerViewSet, InventoryViewSet, OrderViewSet, ProductViewSet
from integrations.api import ConnectionViewSet, PlatformViewSet, SyncRunViewSet
from tenants import api as tenants_api
from tenants import views as tenants_views
from tenants.forms import ThrottledAuthenticationForm

from .health import health

router = SimpleRouter()
# Both `/orders` and `/orders/` resolve. SimpleRouter's constructor turns any true trailing_slash
# into "/", so the optional-slash pattern is set on the instance, before `router.urls` is built.
router.trailing_slash = "/?"
router.register("orders", OrderViewSet, basename="order")
router.register("products", ProductViewSet, basename="product")
router.register("customers", CustomerViewSet, basename="customer")
router.register("inventory", InventoryViewSet, basename="inventory")
router.register("platforms", PlatformViewSet, basename="platform")
router.register("integrations", ConnectionViewSet, basename="integration")
router.register("sync-runs", SyncRunViewSet, basename="sync-run")

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="dashboard:home", permanent=False)),
    path("admin/", admin.site.urls),
    path("health/", health, name="health"),
    path("webhooks/", include("webhooks.urls")),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True, authentication_form=ThrottledAuthenticationForm),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("dashboard/uploads/", include("commerce.upload_urls")),
    path("dashboard/", include("commerce.urls")),
    path("dashboard/switch/<slug:slug>/", tenants_views.switch_tenant, name="switch-tenant"),
    path("api/v1/me", tenants_api.me, name="api-me"),
    path("api/v1/", include(router.urls)),
]

handler404 = "config.api.json_404"
handler500 = "config.api.json_500"
