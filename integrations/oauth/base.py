"""What every OAuth provider shares: reading a credential it needs, and one call to a token
endpoint that never retries (an authorisation code works once) and says in words why a token
endpoint refused."""

from __future__ import annotations

import re
from typing import Any

import requests

from ..errors import AuthError, BadResponse, ConfigurationError, IntegrationError, Unavailable
from ..http import HttpClient

# OAuth's error codes (RFC 6749 §5.2) and what a person can do about each.
ERROR_HINTS = {
    "invalid_grant": "The authorisation code was already used or has expired: start Connect again.",
    "invalid_client": "The platform does not accept the connection's client ID and secret: check them.",
    "unauthorized_client": "The app may not use this grant: check the app's settings in the platform's portal.",
    "invalid_request": "Check that the redirect URL registered in the platform's portal is the hub's callback.",
}
MAX_DETAIL = 300


def required(credentials: dict, name: str, label: str, hint: str = "") -> str:
    value = str(credentials.get(name) or "").strip()
    if not value:
        raise ConfigurationError(f"The connection has no {label}.", hint=hint or f"Fill in the {label} first.")
    return value


def _detail(response: requests.Response) -> tuple[str, str]:
    """The OAuth error code and description of a refusal, shortened and on one line."""
    try:
        body = response.json()
    except ValueError:
        return "", ""
    if not isinstance(body, dict):
        return "", ""
    code = str(body.get("error") or body.get("error_code") or "")[:64]
    description = str(body.get("error_description") or body.get("message") or "")
    return code, re.sub(r"\s+", " ", description).strip()[:MAX_DETAIL]


class TokenClient(HttpClient):
    def __init__(self, label: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.label = label

    def error_for(self, response: requests.Response) -> IntegrationError:
        status = response.status_code
        code, description = _detail(response)
        detail = ": " + " - ".join(part for part in (code, description) if part) if code or description else ""
        if status >= 500:
            return Unavailable(
                f"{self.label}'s token endpoint answered {status}{detail}.",
                hint="The platform is having trouble; try Connect again in a few minutes.",
                status=status,
            )
        if status in {400, 401, 403}:
            return AuthError(
                f"{self.label} refused to issue a token{detail}.",
                hint=ERROR_HINTS.get(code, "Start Connect again; if it keeps failing, check the app's credentials."),
                status=status,
            )
        return super().error_for(response)


def token_request(url: str, form: dict[str, str], *, label: str) -> dict[str, Any]:
    """POST a form to a token endpoint once and return its JSON object."""
    client = TokenClient(label)
    body = client.json("POST", url, data=form, headers={"Accept": "application/json"}, retry=False)
    if not isinstance(body, dict):
        raise BadResponse(f"{label}'s token endpoint answered something other than a JSON object.")
    return body
