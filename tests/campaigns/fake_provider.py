"""Messaging providers of our own for the campaigns app's tests: a little post office that keeps
every message handed to it and answers as the provider would. It never sends a request anywhere;
the real Twilio and SendGrid modules are never used here.

- A message is taken (`queued`, with an id: `SM…` for SMS, an X-Message-Id for email).
- `office.answer_next(SendResult(...))`: the next send answers that (a refusal, say).
- `office.refuse_next(error)`: the next send raises it (AuthError, Unavailable, …).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from campaigns.providers.base import EmailMessage, MessageStatus, MessagingProvider, SendResult, SmsMessage
from integrations.connectors.base import CheckResult
from integrations.errors import IntegrationError


@dataclass
class PostOffice:
    sms: list[SmsMessage] = field(default_factory=list)
    emails: list[EmailMessage] = field(default_factory=list)
    check_result: CheckResult = field(default_factory=lambda: CheckResult(ok=True, message="Fake provider, test mode."))
    _answers: list[SendResult] = field(default_factory=list)
    _refusals: list[IntegrationError] = field(default_factory=list)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def answer_next(self, result: SendResult) -> None:
        self._answers.append(result)

    def refuse_next(self, error: IntegrationError) -> None:
        self._refusals.append(error)

    def answer(self, prefix: str) -> SendResult:
        if self._refusals:
            raise self._refusals.pop(0)
        if self._answers:
            return self._answers.pop(0)
        return SendResult(status=MessageStatus.QUEUED, provider_id=f"{prefix}{next(self._ids):032d}")


OFFICE = PostOffice()


class FakeSmsProvider(MessagingProvider):
    platform = "twilio"
    channel = "sms"

    def send_sms(self, message: SmsMessage) -> SendResult:
        result = OFFICE.answer("SM")
        OFFICE.sms.append(message)
        return result

    def check(self) -> CheckResult:
        self.credential("auth_token")
        return OFFICE.check_result


class FakeEmailProvider(MessagingProvider):
    platform = "sendgrid"
    channel = "email"

    def send_email(self, message: EmailMessage) -> SendResult:
        result = OFFICE.answer("xm")
        OFFICE.emails.append(message)
        return result

    def check(self) -> CheckResult:
        self.credential("api_key")
        return OFFICE.check_result
