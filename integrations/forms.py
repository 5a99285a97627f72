"""The connection form, built from the platform catalogue.

Each credential field of the chosen platform becomes a form field named `cred_<name>`. Secret
fields are write-only: the page never renders their value, only whether one is set (and, for long
values, its last 4 characters); leaving one empty keeps the stored value.
"""

from __future__ import annotations

from django import forms

from tenants.fields import SecretDict, mask

from .errors import UnsafeURL
from .http import validate_public_url
from .models import Connection
from .platforms import CATALOGUE, PlatformSpec

PREFIX = "cred_"


def credential_form_field(cred) -> forms.CharField:
    help_parts = [cred.help_text] if cred.help_text else []
    if cred.example:
        help_parts.append(f"Example: {cred.example}")
    if cred.secret:
        widget = forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})
    elif cred.choices:
        widget = forms.Select(choices=[("", "---------")] + [(c, c) for c in cred.choices])
    else:
        widget = forms.TextInput()
    return forms.CharField(
        label=cred.label, required=cred.required, widget=widget, help_text=" ".join(help_parts), strip=True
    )


class ConnectionForm(forms.ModelForm):
    """Without a platform: the first step (tenant, platform, name). `for_platform()` makes the
    full form for one platform."""

    spec: PlatformSpec | None = None
    base_url = forms.URLField(
        label="Base URL override",
        required=False,
        assume_scheme="https",
        help_text="Sandbox, self-hosted or test server address; empty for the platform's default.",
    )

    class Meta:
        model = Connection
        fields = ["tenant", "platform", "name", "base_url", "sync_frequency", "enabled"]

    @classmethod
    def for_platform(cls, platform: str | None) -> type[ConnectionForm]:
        spec = CATALOGUE.get(platform or "")
        if spec is None:
            return cls
        attrs = {PREFIX + cred.name: credential_form_field(cred) for cred in spec.credentials}
        attrs["spec"] = spec
        return type(f"{spec.platform.title()}ConnectionForm", (cls,), attrs)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # What was stored before this submission: save(commit=False) writes the new credentials onto
        # the instance, and the admin asks for the changed names after that, for the audit log.
        self.stored_credentials = SecretDict(self.instance.credentials or {})
        if self.instance.pk:
            # Moving a connection to another platform or tenant would mix data sources.
            for name in ("tenant", "platform"):
                self.fields[name].disabled = True
        if self.spec is None:
            return
        self.fields["platform"].initial = self.spec.platform
        stored = self.stored_credentials
        for cred in self.spec.credentials:
            field = self.fields[PREFIX + cred.name]
            if cred.secret:
                if stored.get(cred.name):
                    field.required = False
                    field.help_text = f"Currently {mask(stored[cred.name])}; leave empty to keep it. {field.help_text}"
            else:
                field.initial = stored.get(cred.name, "")

    def credential_field_names(self) -> list[str]:
        return [PREFIX + c.name for c in self.spec.credentials] if self.spec else []

    def clean(self) -> dict:
        cleaned = super().clean()
        if self.spec is None:
            if not self.errors:
                raise forms.ValidationError("Choose a platform first.")
            return cleaned
        if cleaned.get("platform") and cleaned["platform"] != self.spec.platform:
            raise forms.ValidationError("The platform changed while editing; reload the page.")
        for name in ("base_url", PREFIX + "site_url"):
            if cleaned.get(name):
                try:
                    validate_public_url(cleaned[name])
                except UnsafeURL as error:
                    self.add_error(name, str(error))
        return cleaned

    def changed_credentials(self) -> list[str]:
        """Names (never values) of the credential fields this submission changes."""
        stored = self.stored_credentials
        changed = []
        for cred in self.spec.credentials if self.spec else ():
            value = self.cleaned_data.get(PREFIX + cred.name, "")
            if cred.secret and not value:
                continue
            if value != stored.get(cred.name, ""):
                changed.append(cred.name)
        return changed

    def save(self, commit: bool = True) -> Connection:
        connection = super().save(commit=False)
        credentials = SecretDict(connection.credentials or {})
        for name in self.changed_credentials():
            value = self.cleaned_data[PREFIX + name]
            if value:
                credentials[name] = value
            else:
                credentials.pop(name, None)
        connection.credentials = credentials
        if commit:
            connection.save()
        return connection
