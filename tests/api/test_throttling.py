"""Rate limits: per key by tier, per signed-in user, per address for anonymous callers; fixed
one-hour windows with X-RateLimit-* headers on every response and 429 + Retry-After beyond."""

from __future__ import annotations

import pytest

from tenants import throttling
from tenants.models import ApiKeyTier

from .conftest import assert_error_shape, bearer

pytestmark = pytest.mark.django_db

HOUR = 3600
# 10 minutes into an hour.
NOW = 1_800_000_000 - 1_800_000_000 % HOUR + 600


class FakeTime:
    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> FakeTime:
    fake = FakeTime(NOW)
    monkeypatch.setattr(throttling, "time", fake)
    return fake


@pytest.fixture
def tiny_rates(settings):
    settings.API_RATE_DEFAULT = 3
    settings.API_RATE_PREMIUM = 5


def me(api_client, raw_key: str):
    return api_client.get("/api/v1/me", **bearer(raw_key))


def test_every_response_carries_the_rate_headers(api_client, api_key, tiny_rates, clock):
    response = me(api_client, api_key[1])
    assert response.status_code == 200
    assert response["X-RateLimit-Limit"] == "3"
    assert response["X-RateLimit-Remaining"] == "2"
    assert response["X-RateLimit-Reset"] == str(NOW - 600 + HOUR)


def test_the_request_after_the_limit_is_429_with_retry_after(api_client, api_key, tiny_rates, clock):
    remaining = [me(api_client, api_key[1])["X-RateLimit-Remaining"] for _ in range(3)]
    assert remaining == ["2", "1", "0"]

    response = me(api_client, api_key[1])

    assert response.status_code == 429
    assert_error_shape(response.json(), "throttled")
    assert response["Retry-After"] == str(HOUR - 600)
    assert response.json()["error"]["details"] == {"retry_after": HOUR - 600}
    assert response["X-RateLimit-Limit"] == "3"
    assert response["X-RateLimit-Remaining"] == "0"
    assert response["X-RateLimit-Reset"] == str(NOW - 600 + HOUR)


def test_the_next_hour_starts_a_fresh_allowance(api_client, api_key, tiny_rates, clock):
    for _ in range(4):
        me(api_client, api_key[1])
    clock.now += HOUR - 600

    response = me(api_client, api_key[1])

    assert response.status_code == 200
    assert response["X-RateLimit-Remaining"] == "2"


def test_a_premium_key_gets_the_premium_rate(api_client, make_key, tiny_rates, clock):
    _, raw = make_key(tier=ApiKeyTier.PREMIUM)
    statuses = [me(api_client, raw).status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    assert me(api_client, raw)["X-RateLimit-Limit"] == "5"


def test_each_key_has_its_own_allowance(api_client, make_key, tiny_rates, clock):
    _, first = make_key(name="first")
    _, second = make_key(name="second")
    for _ in range(4):
        me(api_client, first)
    assert me(api_client, first).status_code == 429
    assert me(api_client, second).status_code == 200


def test_refused_requests_count_and_carry_the_headers(api_client, make_key, tiny_rates, clock):
    _, raw = make_key(["products:read"])
    response = api_client.get("/api/v1/orders", **bearer(raw))
    assert response.status_code == 403
    assert response["X-RateLimit-Remaining"] == "2"


def test_errors_count_too(api_client, api_key, tiny_rates, clock):
    for _ in range(3):
        api_client.get("/api/v1/orders/999999", **bearer(api_key[1]))
    assert me(api_client, api_key[1]).status_code == 429


def test_a_signed_in_user_has_a_rate_of_their_own(api_client, make_member, tenant_a, tiny_rates, clock):
    api_client.force_login(make_member(tenant_a))
    statuses = [api_client.get("/api/v1/me").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]


def test_anonymous_callers_are_counted_by_address(api_client, api_key, tiny_rates, clock):
    for _ in range(3):
        assert api_client.get("/api/v1/me", REMOTE_ADDR="203.0.113.9").status_code == 401
    assert api_client.get("/api/v1/me", REMOTE_ADDR="203.0.113.9").status_code == 429
    assert api_client.get("/api/v1/me", REMOTE_ADDR="203.0.113.10").status_code == 401
    assert me(api_client, api_key[1]).status_code == 200


def test_default_rates_come_from_settings(settings):
    assert settings.API_RATE_DEFAULT == 1000
    assert settings.API_RATE_PREMIUM == 10000


@pytest.mark.parametrize(("cache_seconds", "queries"), [(0, 1), (300, 0)])
def test_key_authentication_and_the_throttle_add_no_query(
    api_client, api_key, django_assert_num_queries, settings, cache_seconds, queries
):
    settings.API_KEY_CACHE_SECONDS = cache_seconds
    me(api_client, api_key[1])  # writes last_used_at once
    with django_assert_num_queries(queries):  # the key lookup, with its tenant, unless the cache has it
        assert me(api_client, api_key[1]).status_code == 200


@pytest.mark.redis
def test_on_redis_a_windows_counter_expires_with_the_window(api_client, api_key):
    from django.core.cache import cache

    me(api_client, api_key[1])
    client = cache._cache.get_client(write=True)
    (counter,) = list(client.scan_iter(match=f"{cache.key_prefix}:*ratelimit:key:{api_key[0].pk}:*"))
    assert int(client.get(counter)) == 1
    assert 0 < client.ttl(counter) <= HOUR + 5
