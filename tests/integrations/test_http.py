"""The shared HTTP layer: retries, Retry-After, error mapping, the rate budget and the SSRF guard."""

from __future__ import annotations

import http.server
import threading

import pytest
import requests
import responses

from integrations.errors import (
    AuthError,
    BadResponse,
    NotFound,
    PermissionDenied,
    RateLimited,
    Unavailable,
    UnsafeURL,
)
from integrations.http import Hints, HttpClient, RateBudget, is_forbidden_ip, parse_retry_after, validate_public_url

URL = "https://shop.example.com/api"


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def client(sleeps) -> HttpClient:
    return HttpClient(sleep=sleeps, allow_private=True, hints=Hints(by_status={401: "check the access token"}))


@responses.activate
def test_a_429_is_retried_after_the_retry_after_seconds(client, sleeps):
    responses.get(URL, status=429, headers={"Retry-After": "7"})
    responses.get(URL, json={"ok": True})
    assert client.json("GET", URL) == {"ok": True}
    assert sleeps == [7.0]


@responses.activate
def test_5xx_answers_are_retried_with_growing_jittered_backoff(client, sleeps):
    for _ in range(3):
        responses.get(URL, status=503)
    responses.get(URL, json={"ok": True})
    assert client.json("GET", URL) == {"ok": True}
    assert len(sleeps) == 3
    assert all(0 <= s <= 0.5 * 2**i for i, s in enumerate(sleeps))


@responses.activate
def test_retries_stop_after_the_limit_with_an_unavailable_error(client):
    for _ in range(5):
        responses.get(URL, status=502)
    with pytest.raises(Unavailable):
        client.request("GET", URL)
    assert client.attempts == 5


@responses.activate
def test_a_429_storm_that_outlasts_the_retries_is_rate_limited(client):
    for _ in range(5):
        responses.get(URL, status=429, headers={"Retry-After": "1"})
    with pytest.raises(RateLimited):
        client.request("GET", URL)


@responses.activate
def test_connection_errors_and_timeouts_are_retried(client):
    responses.get(URL, body=requests.exceptions.ConnectTimeout())
    responses.get(URL, body=requests.exceptions.ReadTimeout())
    responses.get(URL, body=requests.exceptions.ConnectionError())
    responses.get(URL, json={"ok": True})
    assert client.json("GET", URL) == {"ok": True}
    assert client.attempts == 4


@pytest.mark.parametrize(
    ("status", "error"), [(401, AuthError), (403, PermissionDenied), (404, NotFound), (400, BadResponse)]
)
@responses.activate
def test_other_4xx_are_permanent_and_mapped(client, status, error):
    responses.get(URL, status=status)
    with pytest.raises(error):
        client.request("GET", URL)
    assert client.attempts == 1


@responses.activate
def test_an_error_carries_the_platforms_hint(client):
    responses.get(URL, status=401)
    with pytest.raises(AuthError) as raised:
        client.request("GET", URL)
    assert raised.value.hint == "check the access token"
    assert "check the access token" in str(raised.value)


@responses.activate
def test_a_connection_test_never_retries(client, sleeps):
    responses.get(URL, status=503)
    with pytest.raises(Unavailable):
        client.request("GET", URL, retry=False)
    assert client.attempts == 1 and sleeps == []


@responses.activate
def test_a_tls_failure_says_the_sites_https_is_misconfigured(client):
    responses.get(URL, body=requests.exceptions.SSLError("certificate verify failed"))
    with pytest.raises(Unavailable) as raised:
        client.request("GET", URL)
    assert "HTTPS is misconfigured" in raised.value.hint


@responses.activate
def test_malformed_json_is_a_bad_response(client):
    responses.get(URL, body="<html>not json</html>")
    with pytest.raises(BadResponse, match="malformed JSON"):
        client.json("GET", URL)


def test_retry_after_accepts_seconds_and_http_dates():
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


@pytest.fixture
def still_clock(monkeypatch):
    """Budget windows are wall-clock slices: the clock stands still at a window's start, so a
    test's requests cannot straddle two windows on a slow machine."""
    monkeypatch.setattr("integrations.http.time.time", lambda: 1_750_000_000.0)


def test_the_rate_budget_lets_a_burst_through_then_waits_for_the_next_window(db, sleeps, still_clock):
    budget = RateBudget("t1", rate=2, burst=4, sleep=sleeps)
    for _ in range(4):
        budget.acquire()
    assert sleeps == []
    assert budget.remaining() == 0
    # The fifth waits for the next window; the fake sleep does not pass time, so bound the wait.
    with pytest.raises(RateLimited):
        budget.acquire(max_wait=1.0)


def test_the_rate_budget_is_shared_by_every_client_of_a_connection(db, sleeps, still_clock):
    first, second = RateBudget("t2", 1, 3, sleep=sleeps), RateBudget("t2", 1, 3, sleep=sleeps)
    first.acquire()
    first.acquire()
    second.acquire()
    assert first.remaining() == 0 and second.remaining() == 0


@responses.activate
def test_a_429_pauses_the_connections_whole_budget(db, sleeps):
    budget = RateBudget("t3", 10, 10, sleep=sleeps)
    client = HttpClient(budget=budget, sleep=sleeps, allow_private=True)
    responses.get(URL, status=429, headers={"Retry-After": "30"})
    responses.get(URL, json={})
    client.request("GET", URL)
    assert budget.describe()["paused_for"] > 25
    assert sleeps == [pytest.approx(30, abs=0.1)]  # waited once, in the budget, not twice


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254", "::1", "fe80::1", "0.0.0.0"],  # noqa: S104
)
def test_private_loopback_link_local_and_metadata_addresses_are_forbidden(address):
    assert is_forbidden_ip(address)


def test_public_addresses_are_allowed():
    assert not is_forbidden_ip("93.184.216.34")
    assert not is_forbidden_ip("2606:4700::1111")


@pytest.mark.parametrize(
    "url",
    [
        "http://shop.example.com",
        "https://127.0.0.1/wp-json",
        "https://10.0.0.1",
        "https://169.254.169.254/latest/meta-data",
        "https://localhost:8443",
        "https://metadata.google.internal",
        "ftp://shop.example.com",
    ],
)
def test_unsafe_user_urls_are_refused_when_saved(url):
    with pytest.raises(UnsafeURL):
        validate_public_url(url, allow_private=False)


def test_a_public_https_url_is_accepted():
    assert validate_public_url("https://shop.example.com/", allow_private=False) == "https://shop.example.com/"


def test_private_urls_are_accepted_when_the_operator_allows_them():
    assert validate_public_url("http://127.0.0.1:8000", allow_private=True)


@pytest.fixture
def local_server():
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_a_request_to_a_loopback_address_is_refused_at_connect_time(local_server):
    client = HttpClient(allow_private=False)
    with pytest.raises(UnsafeURL, match="private or loopback"):
        client.request("GET", f"http://{local_server}/")


def test_a_name_that_resolves_to_loopback_is_refused(local_server):
    port = local_server.rsplit(":", 1)[1]
    client = HttpClient(allow_private=False)
    with pytest.raises(UnsafeURL, match=r"resolves to 127\.0\.0\.1"):
        client.request("GET", f"http://localhost:{port}/")


def test_a_redirect_to_loopback_is_not_followed(local_server):
    with responses.RequestsMock() as mock:
        mock.get(URL, status=302, headers={"Location": f"http://{local_server}/admin?token=x"})
        with pytest.raises(BadResponse, match="redirected to") as raised:
            HttpClient(allow_private=False).request("GET", URL)
        assert len(mock.calls) == 1
    assert "token" not in str(raised.value)


def test_local_servers_are_reachable_when_allowed(local_server):
    assert HttpClient(allow_private=True).request("GET", f"http://{local_server}/").status_code == 200
