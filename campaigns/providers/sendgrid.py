"""SendGrid email over its v3 REST API (no `sendgrid` package: one POST and two reads).

- The API key as a bearer token; the connection's base URL replaces api.sendgrid.com (a Prism
  mock in tests, or api.eu.sendgrid.com for an EU subuser).
- A message is one personalization with the hub's message id in `custom_args`, which SendGrid
  echoes in every event of its Event Webhook, so a delivery event finds its message. The plain
  text goes before the HTML: SendGrid requires that order.
- 202 is SendGrid taking the message; its id is the X-Message-Id header. SendGrid gives no way to
  make a send idempotent, so the POST is sent once, never retried (it may have gone out).
- A refusal lists SendGrid's `errors` ({message, field}): they are carried by `SendGridRefused`.
"""

from __future__ import annotations

import time
from typing import Any

import requests

from integrations.connectors.base import CheckResult
from integrations.errors import BadResponse, ConfigurationError, IntegrationError, PermissionDenied
from integrations.http import Hints

from .base import EmailMessage, MessageStatus, MessagingProvider, SendResult

API = "https://api.sendgrid.com"
HINTS = {
    401: "Check the API key in SendGrid (Settings → API Keys): it may have been deleted.",
    403: "The API key lacks a permission: the hub needs Mail Send (mail.send).",
    429: "SendGrid is limiting this account's requests; try again shortly.",
}
HINT_SENDER = (
    "Verify the sender in SendGrid (Settings → Sender Authentication): a single sender, or authenticate its domain."
)
SENDER_ERROR = "verified sender identity"


class SendGridRefused(BadResponse):
    """SendGrid refused the message; `errors` are its own ({message, field})."""

    def __init__(self, message: str, *, errors: list[dict[str, Any]], hint: str = "", status: int | None = None):
        super().__init__(message, hint=hint, status=status)
        self.errors = errors


def errors_of(response: requests.Response) -> list[dict[str, Any]]:
    try:
        found = response.json().get("errors")
    except (ValueError, AttributeError):
        return []
    return [
        {"message": str(item.get("message") or ""), "field": item.get("field")}
        for item in found or []
        if isinstance(item, dict)
    ]


def describe(response: requests.Response) -> str:
    return "; ".join(item["message"] for item in errors_of(response) if item["message"])


class SendGridProvider(MessagingProvider):
    platform = "sendgrid"
    channel = "email"

    def __init__(self, connection, *, client=None) -> None:
        super().__init__(connection, client=client)
        self.client.hints = Hints(
            by_status=HINTS,
            describe=describe,
            timeout="SendGrid did not answer in time.",
            connection="SendGrid could not be reached.",
        )

    def send_email(self, message: EmailMessage) -> SendResult:
        body = self.mail(message)
        answers: list[requests.Response] = []

        def keep(response: requests.Response, *args: Any, **kwargs: Any) -> None:
            answers.append(response)

        try:
            response = self._request("POST", "/v3/mail/send", json=body, retry=False, hooks={"response": keep})
        except IntegrationError as error:
            raise refusal(error, answers[-1] if answers else None) from error
        return SendResult(
            status=MessageStatus.QUEUED,
            provider_id=response.headers.get("X-Message-Id", ""),
            raw={"status": response.status_code, "x_message_id": response.headers.get("X-Message-Id", "")},
        )

    def mail(self, message: EmailMessage) -> dict[str, Any]:
        """The mail/send body for one message."""
        content = [
            {"type": kind, "value": value}
            for kind, value in (("text/plain", message.text), ("text/html", message.html))
            if value
        ]
        if not content:
            raise ValueError("An email needs a text or an HTML body.")
        sender: dict[str, str] = {"email": message.from_email or self.credential("from_email")}
        if message.from_name:
            sender["name"] = message.from_name
        personalization: dict[str, Any] = {"to": [{"email": message.to}]}
        if message.reference:
            personalization["custom_args"] = {"hub_message_id": message.reference}
        body: dict[str, Any] = {
            "personalizations": [personalization],
            "from": sender,
            "subject": message.subject,
            "content": content,
        }
        if message.reply_to:
            body["reply_to"] = {"email": message.reply_to}
        if message.headers:
            body["headers"] = dict(message.headers)
        if message.categories:
            body["categories"] = list(message.categories)
        return body

    def check(self) -> CheckResult:
        """The key's scopes and the verified senders, each read once without retries."""
        started = time.monotonic()
        try:
            try:
                scopes = self._request("GET", "/v3/scopes", retry=False).json().get("scopes") or []
            except (ValueError, AttributeError) as error:
                raise BadResponse("SendGrid answered something the hub cannot read.") from error
            sender = self.credential("from_email")
        except IntegrationError as error:
            return CheckResult.failure(error, latency_ms=_since(started))
        if "mail.send" not in scopes:
            return CheckResult(
                ok=False,
                message="The SendGrid API key may not send mail.",
                hint=HINTS[403],
                error_code=PermissionDenied.code,
                missing=["mail.send"],
                latency_ms=_since(started),
                details={"mail_send": False, "sender_verified": None},
            )
        verified, warnings = self._sender_verified(sender)
        details = {"mail_send": True, "sender_verified": verified}
        if verified is False:
            return CheckResult(
                ok=False,
                message="The sender is a SendGrid single sender that is not verified yet.",
                hint="Open the verification email SendGrid sent to it, or resend it from Sender Authentication.",
                error_code=ConfigurationError.code,
                granted=["mail.send"],
                latency_ms=_since(started),
                details=details,
            )
        said = " and the sender is verified" if verified else ""
        return CheckResult(
            ok=True,
            message=f"Connected to SendGrid: the key may send mail{said}.",
            granted=["mail.send"],
            warnings=warnings,
            latency_ms=_since(started),
            details=details,
        )

    def _sender_verified(self, sender: str) -> tuple[bool | None, list[str]]:
        """True or False for a single sender SendGrid knows; None when it does not say (the key may
        not read senders, or the sender's whole domain is authenticated instead)."""
        try:
            found = self._request("GET", "/v3/verified_senders", retry=False).json().get("results") or []
        except (IntegrationError, ValueError, AttributeError):
            return None, ["The key may not read the verified senders, so the sender was not checked."]
        for item in found:
            if isinstance(item, dict) and str(item.get("from_email") or "").lower() == sender.lower():
                return bool(item.get("verified")), []
        warning = "The sender is not a single sender: mail sends only if its domain is authenticated in SendGrid."
        return None, [warning]

    def _request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        base = (self.connection.base_url or "").strip().rstrip("/") or API
        headers = {"Authorization": f"Bearer {self.credential('api_key')}", "Accept": "application/json"}
        return self.client.request(method, f"{base}{path}", headers=headers, **kwargs)


def refusal(error: IntegrationError, answer: requests.Response | None) -> IntegrationError:
    """SendGrid's refusal of a send: its errors carried, and a sender it will not send from said plainly."""
    errors = errors_of(answer) if answer is not None and answer.status_code < 500 else []
    if any(SENDER_ERROR in item["message"].lower() for item in errors):
        return SendGridRefused(
            "SendGrid refused the sender: the from address is not a verified Sender Identity.",
            errors=errors,
            hint=HINT_SENDER,
            status=error.status,
        )
    if error.status in (400, 413) and answer is not None:
        fields = "; ".join(
            f"{item['field']}: {item['message']}" if item["field"] else item["message"] for item in errors
        )
        return SendGridRefused(
            f"SendGrid refused the message: {fields}" if fields else f"SendGrid refused the message ({error.status}).",
            errors=errors,
            status=error.status,
        )
    return error


def _since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
