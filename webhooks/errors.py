"""What a webhook handler raises to say how its event failed."""

from __future__ import annotations


class Unprocessable(Exception):
    """The event can never be processed as it is (a payload that does not map, a resource the hub
    cannot place): it is parked at once for a person, instead of being retried. Anything else a
    handler raises is taken as passing trouble and retried with backoff."""
