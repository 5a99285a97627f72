"""Twilio SMS, through the official `twilio` package and the Messages resource.

- A `twilio.rest.Client` with the account SID and auth token, sending through our `HttpClient`
  (`twilio_http`); the connection's base URL replaces api.twilio.com (a Prism mock in tests).
- A message goes from the message's own number, else the connection's number, else its
  messaging service (Twilio then picks a number from the service's pool). The status callback URL
  is the caller's and carries the hub's message id.
- Twilio refusing a recipient (an invalid or landline number, a person who texted STOP, a country
  the account may not send to) is an answer: a failed message with Twilio's code. Twilio refusing
  the request itself is an error from `integrations.errors` (`twilio_error`).

The package's own HTTP client logs nothing here (ours replaces it), and Twilio's messages quote the
number they refuse, so numbers are cut out of the failure messages kept (`scrub`).
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.rest import Client

from integrations.connectors.base import CheckResult
from integrations.errors import (
    AuthError,
    BadResponse,
    ConfigurationError,
    IntegrationError,
    NotFound,
    PermissionDenied,
    RateLimited,
    Unavailable,
)
from integrations.http import Hints

from .base import MessageStatus, MessagingProvider, SendResult, SmsMessage
from .twilio_http import TwilioHttp

if TYPE_CHECKING:
    from integrations.http import HttpClient
    from integrations.models import Connection

# Refusals of one recipient (https://www.twilio.com/docs/api/errors): an answer, not an error.
RECIPIENT_ERRORS = {
    21211: "invalid_number",
    21408: "region_not_enabled",
    21610: "unsubscribed",
    21614: "not_mobile",
}
TAKEN = {"queued": MessageStatus.QUEUED, "accepted": MessageStatus.QUEUED, "scheduled": MessageStatus.QUEUED}
TAKEN |= {"sending": MessageStatus.QUEUED, "sent": MessageStatus.SENT}
HINT_AUTH = "Check the account SID and auth token in the Twilio Console (Account → API keys & tokens)."
HINT_PERMISSION = "The auth token lacks access to this account or resource (a subaccount's token?)."
HINT_RATE = "Twilio is limiting this account's requests; try again shortly."
HINT_SENDER = "Fill in a From number or a Messaging service SID on the connection."
PACKAGE_PREFIX = re.compile(r"^Unable to \w+ record: ")
NUMBERS = re.compile(r"\+?\d[\d ()\-]{5,}\d")
# What Twilio's answer may keep in `raw`: not the body or the numbers.
KEPT = ("sid", "status", "error_code", "error_message", "num_segments", "messaging_service_sid", "date_created")


def scrub(text: str) -> str:
    return NUMBERS.sub("…", text)


class TwilioProvider(MessagingProvider):
    platform = "twilio"
    channel = "sms"

    def __init__(self, connection: Connection, *, client: HttpClient | None = None) -> None:
        super().__init__(connection, client=client)
        self.client.hints = Hints(timeout="Twilio did not answer in time.", connection="Twilio could not be reached.")
        self._clients: dict[bool, Client] = {}

    def send_sms(self, message: SmsMessage) -> SendResult:
        params: dict[str, Any] = {"to": message.to, "body": message.body}
        sender = message.from_number or str(self.credentials.get("from_number") or "").strip()
        service = str(self.credentials.get("messaging_service_sid") or "").strip()
        if sender:
            params["from_"] = sender
        elif service:
            params["messaging_service_sid"] = service
        else:
            raise ConfigurationError("The Twilio connection has no From number or messaging service.", hint=HINT_SENDER)
        if message.status_callback:
            params["status_callback"] = message.status_callback
        try:
            sent = self.account().messages.create(**params)
        except TwilioRestException as error:
            if error.code in RECIPIENT_ERRORS:
                return SendResult(
                    status=MessageStatus.FAILED,
                    failure_code=str(error.code),
                    failure_message=scrub(_said(error.msg) or RECIPIENT_ERRORS[error.code]),
                    raw={"code": error.code, "reason": RECIPIENT_ERRORS[error.code], "status": error.status},
                )
            raise twilio_error(error) from error
        except TwilioException as error:
            raise twilio_error(error) from error
        raw = {key: getattr(sent, key, None) for key in KEPT}
        raw["date_created"] = str(raw["date_created"] or "")
        status = TAKEN.get(str(sent.status or ""))
        if status is None:  # failed or undelivered at once
            return SendResult(
                status=MessageStatus.FAILED,
                provider_id=sent.sid or "",
                failure_code=str(sent.error_code or ""),
                failure_message=scrub(str(getattr(sent, "error_message", "") or sent.status or "")),
                raw=raw,
            )
        return SendResult(status=status, provider_id=sent.sid or "", raw=raw)

    def check(self) -> CheckResult:
        """The account, read once without retries: the credentials work, and whether it is a trial."""
        started = time.monotonic()
        try:
            try:
                account = self.account(retry=False).fetch()
            except TwilioException as error:
                raise twilio_error(error) from error
            if account.status != "active":
                raise ConfigurationError(
                    f"The Twilio account is {account.status}.", hint="Reactivate it in the Twilio Console."
                )
        except IntegrationError as error:
            return CheckResult.failure(error, latency_ms=_since(started))
        kind = "trial" if str(account.type or "").lower() == "trial" else "full"
        from_number = str(self.credentials.get("from_number") or "").strip()
        service = str(self.credentials.get("messaging_service_sid") or "").strip()
        details = {"account": kind, "from_number": bool(from_number), "messaging_service": bool(service)}
        warnings = []
        if kind == "trial":
            warnings.append("A trial account only sends to numbers verified in the Twilio Console.")
        sender = "a From number" if from_number else "a messaging service" if service else ""
        if not sender:
            return CheckResult(
                ok=False,
                message=f"Connected to Twilio ({kind} account), but there is nothing to send from.",
                hint=HINT_SENDER,
                error_code=ConfigurationError.code,
                warnings=warnings,
                latency_ms=_since(started),
                details=details,
            )
        return CheckResult(
            ok=True,
            message=f"Connected to Twilio ({kind} account), sending from {sender}.",
            warnings=warnings,
            latency_ms=_since(started),
            details=details,
        )

    def account(self, *, retry: bool = True) -> Any:
        if retry not in self._clients:
            client = Client(
                self.credential("account_sid"),
                self.credential("auth_token"),
                http_client=TwilioHttp(self.client, retry_reads=retry),
                environment={},
            )
            base_url = (self.connection.base_url or "").strip().rstrip("/")
            if base_url:
                client.api.base_url = base_url
            self._clients[retry] = client
        return self._clients[retry].api.v2010.accounts(self.credential("account_sid"))


def twilio_error(error: TwilioException) -> IntegrationError:
    """Twilio refusing a request, as the hub's error for it, with Twilio's code and message."""
    if isinstance(error, TwilioRestException):
        status, code, said = error.status, error.code, _said(error.msg)
    elif isinstance(error, TwilioServiceException):
        status, code, said = error.status, error.code, error.detail or error.title
    else:
        return BadResponse(f"Twilio answered something the hub cannot read: {scrub(str(error))}")
    message = scrub(f"{said} (Twilio error {code})" if code and code != status else str(said or ""))
    if code == 20003 or status == 401:
        return AuthError(f"Twilio refused the credentials: {message}", hint=HINT_AUTH, status=status)
    if status == 403:
        return PermissionDenied(f"Twilio refused the request: {message}", hint=HINT_PERMISSION, status=status)
    if status == 429 or code == 20429:
        return RateLimited(f"Twilio is limiting requests: {message}", hint=HINT_RATE, status=status)
    if status == 404:
        return NotFound(f"Twilio has no such resource: {message}", status=status)
    if status >= 500:
        return Unavailable(f"Twilio failed to answer: {message}", status=status)
    return BadResponse(f"Twilio refused the request ({status}): {message}", status=status)


def _said(message: str) -> str:
    """Twilio's own words, without the package's "Unable to create record: " before them."""
    return PACKAGE_PREFIX.sub("", message or "")


def _since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
