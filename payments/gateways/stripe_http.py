"""The `stripe` package's HTTP, sent through our `HttpClient`.

Stripe's requestor builds the request (form encoding, Authorization, Stripe-Version, the
Idempotency-Key) and reads the answer (its typed errors, CardError with the decline code); this
adapter only carries it, so every request gets our timeouts, rate budget and address checks.

Retries are split by method, so that no request is retried by two layers:
- Reads (GET) are retried by `HttpClient` (5xx, 429 with its Retry-After, network errors), and
  Stripe's own retries are turned off for them.
- Writes (POST) are never retried by `HttpClient`: Stripe's `max_network_retries` retries them,
  sending the same headers again, so the same Idempotency-Key, and Stripe replays its first
  answer instead of charging twice. It also follows Stripe's `Stripe-Should-Retry` header and
  retries a 409 (the same key still in flight).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests
import stripe

from integrations.errors import IntegrationError, Unavailable
from integrations.http import HttpClient


class StripeHttp(stripe.HTTPClient):
    name = "commerce-hub"

    def __init__(self, client: HttpClient, *, retry_reads: bool = True) -> None:
        super().__init__()
        self.client = client
        # A connection test never retries (STYLE.md).
        self.retry_reads = retry_reads

    def request_with_retries(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        post_data: Any = None,
        max_network_retries: int | None = None,
        *,
        _usage: list[str] | None = None,
    ) -> tuple[Any, int, Mapping[str, str]]:
        if method.lower() != "post":
            max_network_retries = 0  # HttpClient has retried it already
        return super().request_with_retries(method, url, headers, post_data, max_network_retries, _usage=_usage)

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        post_data: Any = None,
        *,
        _usage: list[str] | None = None,
    ) -> tuple[bytes, int, Mapping[str, str]]:
        """One attempt: Stripe's answer as (body, status, headers), whatever its status, for Stripe's
        requestor to read; a network failure as Stripe's APIConnectionError."""
        answers: list[requests.Response] = []

        def keep(response: requests.Response, *args: Any, **kwargs: Any) -> None:
            answers.append(response)

        read = method.lower() != "post"
        try:
            response = self.client.request(
                method.upper(),
                url,
                headers=dict(headers or {}),
                data=post_data,
                retry=read and self.retry_reads,
                hooks={"response": keep},
            )
        except IntegrationError as error:
            if error.status is not None and error.status >= 400 and answers:
                # HttpClient turns an error status into an exception; Stripe's requestor needs the
                # body itself to tell a card decline from an invalid request.
                answer = answers[-1]
                return answer.content, answer.status_code, answer.headers
            if isinstance(error, Unavailable) and error.status is None:
                # A timeout or a refused connection: Stripe retries a POST with the same key.
                # A TLS failure will not mend by retrying.
                retry = not isinstance(error.__cause__, requests.exceptions.SSLError)
                raise stripe.APIConnectionError(error.message, should_retry=retry) from error
            raise
        return response.content, response.status_code, response.headers

    def close(self) -> None:
        """The session belongs to the HttpClient, which outlives this adapter."""
