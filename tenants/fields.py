"""Encrypted storage for secrets (platform credentials, signing secrets).

`EncryptedJSONField` keeps a dict of secrets Fernet-encrypted at rest with `FERNET_KEYS`
(django-fernet-fields-v2: the first key encrypts, every key decrypts) and hands it back as a
`SecretDict`, whose repr and str never show the values, so a stray log line or traceback does not
leak them.
"""

from __future__ import annotations

import json
from typing import Any

from django.apps import apps
from django.core.signals import setting_changed
from django.db.models.query_utils import DeferredAttribute
from django.dispatch import receiver
from fernet_fields import EncryptedField, EncryptedTextField


def mask(value: Any) -> str:
    """How a secret is shown to people: whether it is set and, for long values, its last 4 characters."""
    text = "" if value is None else str(value)
    if not text:
        return "not set"
    if len(text) < 12:
        return "set"
    return f"set, ending …{text[-4:]}"


class SecretDict(dict):
    """A dict whose printed forms hide its values."""

    def __repr__(self) -> str:
        return "SecretDict({" + ", ".join(f"{k!r}: '***'" for k in self) + "})"

    __str__ = __repr__

    def masked(self) -> dict[str, str]:
        return {k: mask(v) for k, v in self.items()}


class _SecretDictAttribute(DeferredAttribute):
    """Wraps whatever is assigned in a SecretDict, so even an unsaved instance never prints secrets."""

    def __set__(self, instance: Any, value: Any) -> None:
        if isinstance(value, dict) and not isinstance(value, SecretDict):
            value = SecretDict(value)
        instance.__dict__[self.field.attname] = value


class EncryptedJSONField(EncryptedTextField):
    """A JSON object, encrypted as a whole."""

    descriptor_class = _SecretDictAttribute

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("default", dict)
        kwargs.setdefault("blank", True)
        super().__init__(*args, **kwargs)

    def get_prep_value(self, value: Any) -> Any:
        if value is None:
            return None
        return json.dumps(dict(value), sort_keys=True)

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str):
            return SecretDict(json.loads(value)) if value else SecretDict()
        if isinstance(value, dict) and not isinstance(value, SecretDict):
            return SecretDict(value)
        return value

    def value_to_string(self, obj: Any) -> str:
        # dumpdata/serialisers get a placeholder, never the plaintext.
        return "***"


def encrypted_fields() -> list[tuple[type, EncryptedField]]:
    """Every (model, field) pair in the project that stores an encrypted value."""
    return [
        (model, field)
        for model in apps.get_models()
        for field in model._meta.concrete_fields
        if isinstance(field, EncryptedField)
    ]


@receiver(setting_changed)
def _reset_fernet_caches(setting: str, **kwargs: Any) -> None:
    """The fields cache their Fernet objects; a changed key list (tests, rotation) must reach them."""
    if setting not in {"FERNET_KEYS", "SECRET_KEY", "FERNET_USE_HKDF"}:
        return
    reset_key_caches()


def reset_key_caches() -> None:
    for _model, field in encrypted_fields():
        for attr in ("keys", "fernet_keys", "fernet"):
            field.__dict__.pop(attr, None)
