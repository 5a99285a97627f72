"""Access tokens a connection's workers share through the cache (Amazon's LWA tokens, eBay's user
tokens): the first worker that needs one mints it, under a lock taken with `cache.add`, and the
others wait for it instead of minting their own; a token the platform refused is replaced once,
by whichever worker gets there first, and the rest pick up its replacement."""

from __future__ import annotations

import logging
import uuid

from django.core.cache import cache

from .http import HttpClient

logger = logging.getLogger(__name__)

TOKEN_MARGIN = 60  # seconds before its expiry that a cached access token is no longer used
LOCK_SECONDS = 60  # longer than one token request with its retries
LOCK_POLL = 0.25
LOCK_POLLS = 120


class SharedToken:
    """One connection's access token, kept under `key`. Subclasses implement `mint`, which asks
    the platform for a token and returns it with its lifetime in seconds."""

    label = "access token"

    def __init__(self, client: HttpClient, key: str) -> None:
        self.client = client
        self.key = key
        self.lock_key = f"{key}:lock"

    def mint(self, retry: bool) -> tuple[str, int]:
        raise NotImplementedError

    def get(self, *, retry: bool = True) -> str:
        return cache.get(self.key) or self._renew(None, retry)

    def refresh(self, stale: str, *, retry: bool = True) -> str:
        """A token other than `stale`, which the platform refused: another worker's newer one, or a new one."""
        current = cache.get(self.key)
        if current and current != stale:
            return current
        cache.delete(self.key)
        return self._renew(stale, retry)

    def _renew(self, stale: str | None, retry: bool) -> str:
        owner = uuid.uuid4().hex
        for _ in range(LOCK_POLLS):
            if cache.add(self.lock_key, owner, timeout=LOCK_SECONDS):
                try:
                    current = cache.get(self.key)
                    if current and current != stale:
                        return current  # another worker minted one while this one waited
                    return self._mint_and_keep(retry)
                finally:
                    if cache.get(self.lock_key) == owner:
                        cache.delete(self.lock_key)
            self.client.sleep(LOCK_POLL)
            current = cache.get(self.key)
            if current and current != stale:
                return current
        logger.warning("The %s lock of %s stayed taken; minting without it", self.label, self.key)
        return self._mint_and_keep(retry)

    def _mint_and_keep(self, retry: bool) -> str:
        token, lifetime = self.mint(retry)
        if lifetime > TOKEN_MARGIN:
            cache.set(self.key, token, timeout=lifetime - TOKEN_MARGIN)
        return token


def lifetime_of(body: dict, default: int) -> int:
    """`expires_in` of a token answer, in seconds."""
    try:
        return int(body.get("expires_in") or default)
    except (TypeError, ValueError):
        return default
