from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from campaigns.api import MessageViewSet
from campaigns.campaign_api import CampaignViewSet, SegmentViewSet, SuppressionViewSet
from commerce.api import CustomerViewSet, InventoryViewSet, OrderViewSet, ProductViewSet
from commerce.fulfilment_api import FulfilmentRuleViewSet, FulfilmentViewSet, fulfilment_analytics
from integrations.api import ConnectionViewSet, PlatformViewSet, SyncRunViewSet
from payments.api import PaymentViewSet
from tenants import activity_views
from tenants import api as tenants_api
from tenants import views as tenants_views
from tenants.activity_api import ActivityViewSet
from tenants.forms import ThrottledAuthenticationForm

from . import admin_api, metrics
from .health import health

router = SimpleRouter()
# Both `/orders` and `/orders/` resolve. SimpleRouter's constructor turns any true trailing_slash
# into "/", so the optional-slash pattern is set on the instance, before `router.urls` is built.
router.trailing_slash = "/?"
router.register("orders", OrderViewSet, basename="order")
router.register("products", ProductViewSet, basename="product")
router.register("customers", CustomerViewSet, basename="customer")
router.register("inventory", InventoryViewSet, basename="inventory")
router.register("fulfillments", FulfilmentViewSet, basename="fulfillment")
router.register("fulfillment-rules", FulfilmentRuleViewSet, basename="fulfillment-rule")
router.register("platforms", PlatformViewSet, basename="platform")
router.register("integrations", ConnectionViewSet, basename="integration")
router.register("sync-runs", SyncRunViewSet, basename="sync-run")
router.register("payments", PaymentViewSet, basename="payment")
router.register("messages", MessageViewSet, basename="message")
router.register("segments", SegmentViewSet, basename="segment")
router.register("campaigns", CampaignViewSet, basename="campaign")
router.register("suppressions", SuppressionViewSet, basename="suppression")
router.register("api-keys", tenants_api.ApiKeyViewSet, basename="api-key")
router.register("activity", ActivityViewSet, basename="activity")

# The admin API for superadmins (config/admin_api.py); optional trailing slash, like the router's.
admin_api_urls = [
    re_path(r"^clients/?$", admin_api.ClientsView.as_view(), name="admin-api-clients"),
    re_path(r"^platforms/?$", admin_api.PlatformsView.as_view(), name="admin-api-platforms"),
    re_path(r"^credentials/test/?$", admin_api.CredentialTestView.as_view(), name="admin-api-credentials-test"),
    re_path(r"^connections/test/?$", admin_api.BulkTestView.as_view(), name="admin-api-connections-test"),
    re_path(r"^overview/?$", admin_api.OverviewView.as_view(), name="admin-api-overview"),
]

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="dashboard:home", permanent=False)),
    path("admin/", admin.site.urls),
    path("health/", health, name="health"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("webhooks/", include("webhooks.urls")),
    path("u/", include("campaigns.urls")),
    path("integrations/oauth/", include("integrations.oauth.urls")),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True, authentication_form=ThrottledAuthenticationForm),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("dashboard/uploads/", include("commerce.upload_urls")),
    path("dashboard/api-keys/", include("tenants.urls")),
    path("dashboard/integrations/", include("integrations.urls")),
    path("dashboard/campaigns/", include("campaigns.dashboard_urls")),
    re_path(r"^dashboard/activity/feed/?$", activity_views.feed, name="dashboard-activity-feed"),
    path("dashboard/", include("commerce.urls")),
    path("dashboard/switch/<slug:slug>/", tenants_views.switch_tenant, name="switch-tenant"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/me", tenants_api.me, name="api-me"),
    re_path(r"^api/v1/fulfillment/analytics/?$", fulfilment_analytics, name="api-fulfillment-analytics"),
    re_path(r"^api/v1/sms/send/?$", MessageViewSet.as_view({"post": "send_sms"}), name="api-sms-send"),
    re_path(r"^api/v1/email/send/?$", MessageViewSet.as_view({"post": "send_email"}), name="api-email-send"),
    path("api/v1/admin/", include(admin_api_urls)),
    path("api/v1/", include("webhooks.api_urls")),
    path("api/v1/", include(router.urls)),
]

handler404 = "config.api.json_404"
handler500 = "config.api.json_500"
