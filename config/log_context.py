"""What a log line is about: the request, tenant and connection, wherever in the code it is logged.

The values live in a context variable, so they follow the request (or the task) through every
call, thread-safely and under ASGI too, and are gone when it ends:

    with log_context(tenant=connection.tenant_id, connection=connection.pk):
        ...  # every log line in here carries both

The request middleware (`config.middleware.RequestIdMiddleware`) starts each request's context
with its id and the request itself (`start_request`): the request's tenant is read when a line is
logged, since a tenant API key is only known once DRF has authenticated it, inside the view. That
context lasts until the response is closed (`end_request`, on `request_finished`), not just until
the middleware returns, because Django logs a 4xx or 5xx response after the whole middleware chain
has returned it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_context: ContextVar[Mapping[str, Any]] = ContextVar("log_context", default=_EMPTY)


@contextmanager
def log_context(**values: Any) -> Iterator[None]:
    """Add `values` (None ones are left out) to the log context until the block ends."""
    token = _context.set({**_context.get(), **{key: value for key, value in values.items() if value is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def start_request(request_id: str, request: Any) -> None:
    """A request's context, replacing what the thread had (a request starts afresh)."""
    _context.set(MappingProxyType({"request_id": request_id, "request": request}))


def end_request(**kwargs: Any) -> None:
    """Forget the request (a `request_finished` receiver: the response has been sent)."""
    _context.set(_EMPTY)


def connection_log_context(function: Callable[P, R]) -> Callable[P, R]:
    """Decorates a function whose first argument is a connection (a sync run, a push): every line
    it logs carries the connection and its tenant."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        connection = args[0] if args else kwargs["connection"]
        with log_context(tenant=connection.tenant_id, connection=connection.pk):
            return function(*args, **kwargs)

    return wrapper


def current() -> dict[str, Any]:
    """The context of a log line now: request_id, tenant, connection and whatever else was bound."""
    values = dict(_context.get())
    request = values.pop("request", None)
    if request is not None and "tenant" not in values:
        tenant = tenant_of(request)
        if tenant is not None:
            values["tenant"] = tenant
    return values


def tenant_of(request: Any) -> int | None:
    """The id of the tenant a request works for, from what is already on it (never a query): the
    signed-in member's current tenant, or a tenant API key's."""
    tenant = getattr(request, "tenant", None)
    if tenant is not None:
        return tenant.pk
    return getattr(getattr(request, "auth", None), "tenant_id", None)
