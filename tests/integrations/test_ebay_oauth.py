"""Connect with eBay (`EbayOAuth`): the consent URL, and the authorisation code traded for a refresh
token at eBay's token endpoint (mocked at the transport with `responses`)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from integrations.connectors import ebay_client
from integrations.connectors.ebay_oauth import EbayOAuth
from integrations.errors import AuthError, BadResponse, ConfigurationError
from integrations.http import HttpClient
from integrations.platforms import spec_for

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ebay"
PRODUCTION = "https://api.ebay.com/identity/v1/oauth2/token"
SANDBOX = "https://api.sandbox.ebay.com/identity/v1/oauth2/token"
NOW = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
CALLBACK = "https://hub.example.com/integrations/oauth/callback/"
CREDENTIALS = {
    "client_id": "HubTests-Hub-PRD-0123456789-abcdef01",
    "client_secret": "PRD-0123456789ab-cdef-0123-4567-89ab",
    "ru_name": "Hub_Tests-HubTests-Hub-PR-abcdefghi",
    "environment": "production",
}


def load(name: str):
    return json.loads((FIXTURES / name).read_text())


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture(autouse=True)
def clock(monkeypatch):
    monkeypatch.setattr(ebay_client, "now", lambda: NOW)


@pytest.fixture
def api():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def oauth() -> EbayOAuth:
    return EbayOAuth(client=HttpClient(sleep=Sleeps()))


def exchange(oauth: EbayOAuth, params=None, **credentials):
    return oauth.exchange(
        credentials={**CREDENTIALS, **credentials}, params=params or {"code": "v^1.1#i^1#code"}, redirect_uri=CALLBACK
    )


# --- The consent URL -----------------------------------------------------------------------------------


def test_the_consent_url_sends_the_runame_as_redirect_uri_with_every_scope_and_the_state():
    url = EbayOAuth().authorize_url(credentials=CREDENTIALS, state="st8-xyz", redirect_uri=CALLBACK)
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "auth.ebay.com", "/oauth2/authorize")
    query = parse_qs(parts.query)
    assert query == {
        "client_id": [CREDENTIALS["client_id"]],
        "response_type": ["code"],
        "redirect_uri": [CREDENTIALS["ru_name"]],
        "scope": [
            "https://api.ebay.com/oauth/api_scope https://api.ebay.com/oauth/api_scope/sell.fulfillment "
            "https://api.ebay.com/oauth/api_scope/sell.inventory"
        ],
        "state": ["st8-xyz"],
    }
    assert "%20" in parts.query and "+" not in parts.query  # scopes apart by encoded spaces
    assert CALLBACK not in url


def test_the_sandbox_consent_page_is_ebays_sandbox():
    url = EbayOAuth().authorize_url(
        credentials={**CREDENTIALS, "environment": "sandbox"}, state="s", redirect_uri=CALLBACK
    )
    assert urlsplit(url).netloc == "auth.sandbox.ebay.com"


def test_the_base_url_override_serves_the_consent_page_and_the_token_endpoint(api):
    oauth = EbayOAuth(client=HttpClient(sleep=Sleeps()), base_url="https://ebay.test.example/")
    url = oauth.authorize_url(credentials=CREDENTIALS, state="s", redirect_uri=CALLBACK)
    assert url.startswith("https://ebay.test.example/oauth2/authorize?")
    api.add(responses.POST, "https://ebay.test.example/identity/v1/oauth2/token", json=load("identity_code.json"))
    assert exchange(oauth)["refresh_token"]


def test_a_consent_url_needs_the_runame():
    with pytest.raises(ConfigurationError, match="RuName"):
        EbayOAuth().authorize_url(credentials={**CREDENTIALS, "ru_name": " "}, state="s", redirect_uri=CALLBACK)


def test_an_unknown_environment_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="not an eBay environment"):
        EbayOAuth().authorize_url(credentials={**CREDENTIALS, "environment": "staging"}, state="s", redirect_uri="")


def test_the_scopes_are_the_ones_the_catalogue_lists():
    assert EbayOAuth.platform == "ebay"
    assert tuple(EbayOAuth.scopes) == tuple(spec_for("ebay").scopes)


# --- The code exchange ----------------------------------------------------------------------------------


def test_the_code_is_traded_for_a_refresh_token_and_its_expiry(oauth, api):
    api.add(responses.POST, PRODUCTION, json=load("identity_code.json"))
    updates = exchange(oauth)
    assert updates == {
        "refresh_token": "v^1.1#i^1#p^3#r^1#I^3#f^0#t^Ul4xMF8-example-refresh-token==",
        "refresh_token_expires_at": "2026-07-17T00:00:00Z",  # 47,304,000 s: about 18 months
    }
    request = api.calls[0].request
    keys = base64.b64encode(f"{CREDENTIALS['client_id']}:{CREDENTIALS['client_secret']}".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {keys}"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qs(request.body) == {
        "grant_type": ["authorization_code"],
        "code": ["v^1.1#i^1#code"],
        "redirect_uri": [CREDENTIALS["ru_name"]],
    }
    assert "access_token" not in updates


def test_a_sandbox_code_goes_to_the_sandbox_token_endpoint(oauth, api):
    api.add(responses.POST, SANDBOX, json=load("identity_code.json"))
    exchange(oauth, environment="sandbox")
    assert [urlsplit(c.request.url).netloc for c in api.calls] == ["api.sandbox.ebay.com"]


def test_a_refused_code_is_an_auth_error_that_says_why(oauth, api):
    body = {"error": "invalid_grant", "error_description": "the provided authorization grant code is invalid"}
    api.add(responses.POST, PRODUCTION, json=body, status=400)
    with pytest.raises(AuthError) as caught:
        exchange(oauth)
    assert "refused the authorisation code" in caught.value.message
    assert "invalid_grant: the provided authorization grant code is invalid." in caught.value.message
    assert caught.value.hint


def test_wrong_keys_are_an_auth_error_about_the_keys(oauth, api):
    api.add(responses.POST, PRODUCTION, json=load("identity_invalid_client.json"), status=401)
    with pytest.raises(AuthError) as caught:
        exchange(oauth)
    assert "refused the app's keys" in caught.value.message and "Application Keys" in caught.value.hint


def test_a_declined_consent_is_an_auth_error_and_nothing_is_sent(oauth, api):
    params = {"error": "access_denied", "error_description": "The user declined", "state": "s"}
    with pytest.raises(AuthError, match="did not grant access: The user declined"):
        exchange(oauth, params)
    assert not api.calls


def test_a_redirect_without_a_code_is_an_auth_error(oauth, api):
    with pytest.raises(AuthError, match="no authorisation code"):
        exchange(oauth, {"state": "s"})
    assert not api.calls


def test_a_code_is_never_sent_twice_even_when_ebay_fails(oauth, api):
    api.add(responses.POST, PRODUCTION, json={"error": "server_error"}, status=503)
    with pytest.raises(Exception) as caught:
        exchange(oauth)
    assert caught.value.code == "unavailable"
    assert len(api.calls) == 1


def test_an_answer_without_a_refresh_token_is_a_bad_response(oauth, api):
    api.add(responses.POST, PRODUCTION, json=load("identity_refresh.json"))
    with pytest.raises(BadResponse, match="without a refresh token"):
        exchange(oauth)


def test_an_answer_without_a_lifetime_clears_the_old_expiry(oauth, api):
    body = {k: v for k, v in load("identity_code.json").items() if k != "refresh_token_expires_in"}
    api.add(responses.POST, PRODUCTION, json=body)
    assert exchange(oauth)["refresh_token_expires_at"] is None  # None removes the credential


def test_a_code_exchange_needs_the_cert_id(oauth, api):
    with pytest.raises(ConfigurationError, match="Cert ID"):
        exchange(oauth, client_secret="")
    assert not api.calls
