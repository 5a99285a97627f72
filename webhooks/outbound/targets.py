"""Hook targets are addresses clients type in, so the hub must not be made to call itself or its
private network. At subscribe time a target must be https, name a public host and resolve, only to
public addresses. At send time the rule is enforced again on the address actually connected to
(`integrations.http.SafeAdapter`), so a name that re-resolves to 127.0.0.1 later (DNS rebinding)
still gets nothing; redirects are never followed, timeouts are short and the answer is read only
so far. `INTEGRATIONS_ALLOW_PRIVATE_URLS` (development, tests) lifts the address rules."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from django.conf import settings

from integrations.errors import UnsafeURL
from integrations.http import is_forbidden_ip, new_session, validate_public_url

READ_CAP = 64 * 1024  # bytes of an answer read at most
STORE_CAP = 2 * 1024  # characters of it kept on the delivery
USER_AGENT = "commerce-hub-webhooks/1.0"


def allow_private() -> bool:
    return settings.INTEGRATIONS_ALLOW_PRIVATE_URLS


def check_target(url: str) -> str:
    """Refuse a target with UnsafeURL (the message says why): not a web address, not https, a
    private host, a name that does not resolve or that resolves to a private address."""
    private = allow_private()
    try:
        validate_public_url(url, allow_private=private)
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise UnsafeURL(f"“{url}” is not a valid web address.") from exc
    host = parts.hostname or ""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)}
    except (OSError, UnicodeError) as exc:
        raise UnsafeURL(f"“{host}” could not be resolved.", hint="Check the host name.") from exc
    if not private:
        for address in sorted(addresses):
            if is_forbidden_ip(address):
                raise UnsafeURL(f"“{host}” resolves to {address}, a private or loopback address.")
    return url


@dataclass
class Answer:
    """What one POST came to: the status and the start of the body, or the error that stopped it."""

    status: int | None = None
    body: str = ""
    ms: int = 0
    error: str = ""
    refused: bool = False  # the target is not allowed: never retried

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def post(url: str, body: bytes, headers: dict[str, str]) -> Answer:
    private = allow_private()
    started = time.monotonic()
    try:
        validate_public_url(url, allow_private=private)
    except (UnsafeURL, ValueError) as error:
        return Answer(error=f"Refused: {error}", refused=True)
    session = new_session(allow_private=private)
    session.headers.update({"User-Agent": USER_AGENT, "Accept-Encoding": "identity"})
    timeout = (settings.HOOKS_CONNECT_TIMEOUT, settings.HOOKS_READ_TIMEOUT)
    try:
        with session.post(
            url,
            data=body,
            headers={"Content-Type": "application/json", **headers},
            timeout=timeout,
            allow_redirects=False,
            stream=True,
        ) as response:
            content = _read(response, deadline=started + sum(timeout))
            answer = Answer(status=response.status_code, body=_text(content))
            if response.is_redirect:
                answer.error = (
                    f"Redirected to {_host(response.headers.get('Location', ''))}; redirects are not followed."
                )
            elif not answer.ok:
                answer.error = f"The target answered {response.status_code} {response.reason or ''}".strip() + "."
    except UnsafeURL as error:
        answer = Answer(error=f"Refused: {error}", refused=True)
    except requests.exceptions.SSLError:
        answer = Answer(error="The TLS handshake failed (certificate not valid for the host?).")
    except requests.exceptions.Timeout:
        answer = Answer(error=f"No answer within {timeout[0]:g} s to connect and {timeout[1]:g} s to respond.")
    except requests.exceptions.ConnectionError:
        answer = Answer(error="Could not connect to the target.")
    except requests.exceptions.RequestException as error:
        answer = Answer(error=f"The request failed: {type(error).__name__}.")
    finally:
        session.close()
    answer.ms = int((time.monotonic() - started) * 1000)
    return answer


def _read(response: requests.Response, *, deadline: float) -> bytes:
    """At most READ_CAP bytes, and no longer than the deadline: a target that drips its answer
    does not hold a worker."""
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_content(8192):
            chunks.append(chunk)
            size += len(chunk)
            if size >= READ_CAP or time.monotonic() > deadline:
                break
    except requests.exceptions.RequestException:
        pass  # the status is what counts; a broken body is kept as far as it came
    return b"".join(chunks)[:READ_CAP]


def _text(content: bytes) -> str:
    # PostgreSQL text cannot hold NUL.
    return content.decode("utf-8", errors="replace").replace("\x00", "\ufffd")[:STORE_CAP]


def _host(url: str) -> str:
    try:
        return urlsplit(url).hostname or "another address"
    except ValueError:
        return "another address"
