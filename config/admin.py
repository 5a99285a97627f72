from __future__ import annotations

from django.contrib import admin

from tenants.forms import ThrottledAdminAuthenticationForm

from .overview import overview_context


class SuperAdminSite(admin.AdminSite):
    site_header = "SuperAdmin dashboard"
    site_title = "SuperAdmin dashboard"
    index_title = "Overview"
    login_form = ThrottledAdminAuthenticationForm

    def has_permission(self, request) -> bool:
        # Only staff ever see the admin; client users have their own dashboard.
        return bool(request.user.is_active and request.user.is_staff)

    def index(self, request, extra_context=None):
        # The index view is only reached through admin_view, so the overview is built for staff only.
        context = {"overview": overview_context(), **(extra_context or {})}
        return super().index(request, extra_context=context)
