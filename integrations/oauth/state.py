"""The OAuth `state`: a random one-time value kept in the signed-in user's session with what it
is for (user, tenant, connection, platform, redirect URL) and when it lapses.

Kept server-side, a state cannot be forged or altered (an unknown value is refused), works only in
the session that started the flow (so not for another user), once (it is removed when used,
whatever the outcome, and claimed in the shared cache, so two requests racing with the same session
cannot both use it), and not after OAUTH_STATE_TTL_SECONDS.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import asdict, dataclass

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

SESSION_KEY = "oauth_flows"
# Flows a session may have under way at once (several tabs); the oldest is dropped beyond it.
MAX_PENDING = 10


def now() -> float:
    return time.time()  # looked up when called, so a test can move the clock


class StateError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Flow:
    state: str
    user_id: int
    tenant_id: int
    connection_id: int
    platform: str
    redirect_uri: str
    back: str  # where the result page links back to: "admin" or "dashboard"
    expires_at: float


def new_flow(request: HttpRequest, *, connection, redirect_uri: str, back: str) -> Flow:
    return Flow(
        state=secrets.token_urlsafe(32),
        user_id=request.user.pk,
        tenant_id=connection.tenant_id,
        connection_id=connection.pk,
        platform=connection.platform,
        redirect_uri=redirect_uri,
        back=back,
        expires_at=now() + settings.OAUTH_STATE_TTL_SECONDS,
    )


def remember(request: HttpRequest, flow: Flow) -> None:
    current = now()
    pending = {k: v for k, v in request.session.get(SESSION_KEY, {}).items() if v["expires_at"] > current}
    pending[flow.state] = {k: v for k, v in asdict(flow).items() if k != "state"}
    while len(pending) > MAX_PENDING:
        pending.pop(min(pending, key=lambda k: pending[k]["expires_at"]))
    request.session[SESSION_KEY] = pending


def take(request: HttpRequest, state: str, platform: str) -> Flow:
    """The flow this state belongs to, removed from the session; StateError when it cannot be used."""
    pending = dict(request.session.get(SESSION_KEY, {}))
    entry = pending.pop(state, None) if state else None
    if entry is not None:
        request.session[SESSION_KEY] = pending
    if not state:
        raise StateError("The platform's answer has no state, so it cannot be matched to a Connect you started.")
    used_key = "oauth:used:" + hashlib.sha256(state.encode()).hexdigest()
    if entry is None or not cache.add(used_key, 1, timeout=settings.OAUTH_STATE_TTL_SECONDS + 60):
        raise StateError(
            "This answer does not match a Connect started in this browser session: it was already used, "
            "altered, or started by someone else. Start Connect again."
        )
    flow = Flow(state=state, **entry)
    if flow.expires_at <= now():
        minutes = max(1, settings.OAUTH_STATE_TTL_SECONDS // 60)
        raise StateError(f"This Connect took longer than {minutes} minutes and has expired. Start Connect again.")
    if flow.user_id != request.user.pk:
        raise StateError("This Connect was started by another user. Start Connect again.")
    if flow.platform != platform:
        raise StateError("This answer came back to another platform's address. Start Connect again.")
    return flow
