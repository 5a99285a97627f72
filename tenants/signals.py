from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from . import audit, key_cache
from .middleware import resolve_tenant
from .models import ApiKey, Tenant


@receiver(user_logged_in)
def audit_login(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    # The tenant the user lands in: the middleware's choice for this session.
    tenant, _refused = resolve_tenant(user, getattr(request, "session", None))
    audit.record("auth.login", request=request, actor=user, tenant=tenant, target=user)


@receiver(user_login_failed)
def audit_failed_login(sender: Any, credentials: dict, request: Any = None, **kwargs: Any) -> None:
    # Only the username is kept: `credentials` also holds the password, which is never stored.
    audit.record("auth.login_failed", request=request, target=credentials.get("username", ""))


@receiver(post_save, sender=ApiKey, dispatch_uid="tenants-forget-cached-key-on-save")
@receiver(post_delete, sender=ApiKey, dispatch_uid="tenants-forget-cached-key-on-delete")
def forget_cached_key(sender: Any, instance: ApiKey, **kwargs: Any) -> None:
    """A revoked or edited key is refused or seen anew on the next request, in every process."""
    key_cache.forget(instance.prefix)


@receiver(post_save, sender=Tenant, dispatch_uid="tenants-forget-cached-keys-of-tenant")
def forget_cached_keys_of_tenant(sender: Any, instance: Tenant, created: bool = False, **kwargs: Any) -> None:
    """A suspended tenant's keys are refused on the next request (deleting a tenant deletes its keys,
    which forget themselves)."""
    if not created and key_cache.enabled():
        key_cache.forget(*ApiKey.objects.for_tenant(instance).values_list("prefix", flat=True))
