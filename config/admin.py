from __future__ import annotations

from django.contrib import admin

from tenants.forms import ThrottledAdminAuthenticationForm


class SuperAdminSite(admin.AdminSite):
    site_header = "SuperAdmin dashboard"
    site_title = "SuperAdmin dashboard"
    index_title = "Overview"
    login_form = ThrottledAdminAuthenticationForm

    def has_permission(self, request) -> bool:
        # Only staff ever see the admin; client users have their own dashboard.
        return bool(request.user.is_active and request.user.is_staff)
