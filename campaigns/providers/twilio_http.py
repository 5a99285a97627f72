"""The `twilio` package's HTTP, sent through our `HttpClient`.

Twilio's client builds each request (form fields, Basic auth with the account SID and auth token)
and reads each answer into its objects or a `TwilioRestException` with Twilio's error code; this
adapter only carries it, so every request gets our timeouts, rate budget and address checks.

Reads are retried by `HttpClient` (5xx, 429, network errors) unless the adapter is told not to
(the connection test). A POST creates a message and Twilio takes no idempotency key, so it is sent
once: after a timeout it may have gone out, and sending it again could text the person twice.
"""

from __future__ import annotations

import logging
from typing import Any

import requests
from twilio.http import HttpClient as TwilioHttpClient
from twilio.http.response import Response

from integrations.errors import IntegrationError
from integrations.http import HttpClient


class TwilioHttp(TwilioHttpClient):
    def __init__(self, client: HttpClient, *, retry_reads: bool = True) -> None:
        super().__init__(logging.getLogger(__name__), is_async=False)
        self.client = client
        self.retry_reads = retry_reads

    def request(
        self,
        method: str,
        uri: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        """One request: Twilio's answer whatever its status, for the package to read its error
        code from; a network failure as the hub's `Unavailable`, raised."""
        answers: list[requests.Response] = []

        def keep(response: requests.Response, *args: Any, **kwargs: Any) -> None:
            answers.append(response)

        try:
            response = self.client.request(
                method.upper(),
                uri,
                params=params,
                data=data,
                headers=dict(headers or {}),
                auth=auth,
                retry=method.upper() == "GET" and self.retry_reads,
                hooks={"response": keep},
            )
        except IntegrationError as error:
            if error.status is not None and error.status >= 400 and answers:
                answer = answers[-1]
                return Response(answer.status_code, answer.text, answer.headers)
            raise
        return Response(response.status_code, response.text, response.headers)
