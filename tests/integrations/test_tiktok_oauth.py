"""Authorising a TikTok Shop: the authorisation link, the exchange of the callback's code for
tokens and the shop's cipher (against `responses`, then against the local fake TikTok Shop, whose
answer a connection then tests with)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from integrations.connectors import tiktok_client
from integrations.connectors.tiktok import TikTokConnector
from integrations.connectors.tiktok_oauth import TikTokOAuth
from integrations.errors import AuthError, ConfigurationError
from integrations.http import HttpClient
from tests.fakes.tiktok_server import AUTH_CODE, SHOP_CIPHER, FakeTikTok

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "tiktok"
TOKEN_URL = "https://auth.tiktok-shops.com/api/v2/token/get"
SHOPS_URL = "https://open-api.tiktokglobalshop.com/authorization/202309/shops"
APP = {"app_key": "6a1bcdkq4ubc2", "app_secret": "app-secret-for-tests", "service_id": "7123456789012345678"}
CALLBACK = "https://hub.example.com/integrations/oauth/tiktok/callback"
NOW = datetime(2023, 9, 10, 4, 0, tzinfo=UTC)


def load(name: str):
    return json.loads((FIXTURES / name).read_text())


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


@pytest.fixture(autouse=True)
def clock(monkeypatch):
    monkeypatch.setattr(tiktok_client, "now", lambda: NOW)


@pytest.fixture
def api():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def exchange(credentials=None, params=None):
    return TikTokOAuth(client=HttpClient(sleep=lambda s: None)).exchange(
        credentials=credentials or dict(APP), params=params or {"code": "TTP_code", "state": "s"}, redirect_uri=CALLBACK
    )


def test_the_provider_says_its_platform():
    assert TikTokOAuth.platform == "tiktok"


def test_the_authorisation_link_names_the_service_and_carries_the_state():
    url = TikTokOAuth().authorize_url(credentials=APP, state="a b&c", redirect_uri=CALLBACK)
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://services.tiktokshop.com/open/authorize"
    assert query(url) == {"service_id": "7123456789012345678", "state": "a b&c"}


def test_a_us_shop_authorises_at_the_us_host():
    url = TikTokOAuth().authorize_url(credentials={**APP, "region": "us"}, state="s", redirect_uri=CALLBACK)
    assert url.startswith("https://services.us.tiktokshop.com/open/authorize?")


def test_the_link_needs_the_service_id():
    with pytest.raises(ConfigurationError, match="Service ID"):
        TikTokOAuth().authorize_url(credentials={**APP, "service_id": ""}, state="s", redirect_uri=CALLBACK)


def test_the_code_is_exchanged_for_tokens_and_the_shops_cipher(api):
    api.add(responses.GET, TOKEN_URL, json=load("token_get.json"))
    api.add(responses.GET, SHOPS_URL, json=load("authorized_shops.json"))
    updates = exchange()
    token_request, shops_request = (call.request for call in api.calls)
    assert query(token_request.url) == {
        "app_key": APP["app_key"],
        "app_secret": APP["app_secret"],
        "auth_code": "TTP_code",
        "grant_type": "authorized_code",
    }
    assert shops_request.headers["x-tts-access-token"] == "ROW_Ag8JbwAAAAAA-access-token"
    shops_query = query(shops_request.url)
    assert "shop_cipher" not in shops_query and shops_query["app_key"] == APP["app_key"]
    assert shops_query["sign"] == tiktok_client.sign(
        APP["app_secret"], "/authorization/202309/shops", {k: v for k, v in shops_query.items() if k != "sign"}
    )
    assert updates == {
        "access_token": "ROW_Ag8JbwAAAAAA-access-token",
        "access_token_expires_at": "2023-09-17T04:00:00Z",
        "refresh_token": "ROW_Y6wpHgAAAAAA-refresh-token",
        "refresh_token_expires_at": "2024-09-09T05:20:00Z",
        "shop_cipher": "GCP_XF90igAAAABh00qsWgtvOiGFNqyubMt3",
        "shop_id": "7000714532876273420",
        "shop_name": "Maomao beauty shop",
        "region": "GB",
    }
    assert all(isinstance(value, str) for value in updates.values())


def test_a_refused_code_raises_tiktoks_message(api):
    api.add(responses.GET, TOKEN_URL, json={"code": 36004004, "message": "invalid auth_code", "data": {}})
    with pytest.raises(AuthError, match="invalid auth_code"):
        exchange()
    assert len(api.calls) == 1


def test_a_callback_without_a_code_is_refused_before_anything_is_sent(api):
    with pytest.raises(AuthError, match="access_denied"):
        exchange(params={"error": "access_denied", "state": "s"})
    assert not api.calls


def test_the_exchange_needs_the_app_secret(api):
    with pytest.raises(ConfigurationError, match="App secret"):
        exchange(credentials={**APP, "app_secret": " "})
    assert not api.calls


def test_no_authorised_shop_is_an_authorisation_error(api):
    api.add(responses.GET, TOKEN_URL, json=load("token_get.json"))
    api.add(responses.GET, SHOPS_URL, json={"code": 0, "message": "Success", "data": {"shops": []}})
    with pytest.raises(AuthError, match="No TikTok Shop shop has authorised the app"):
        exchange()


def test_reconnecting_keeps_to_the_connections_shop(api):
    shops = load("authorized_shops.json")
    other = {**shops["data"]["shops"][0], "cipher": "GCP_other", "id": "7000000000000000001", "name": "Other"}
    shops["data"]["shops"].insert(0, other)
    api.add(responses.GET, TOKEN_URL, json=load("token_get.json"))
    api.add(responses.GET, SHOPS_URL, json=shops)
    assert exchange(credentials={**APP, "shop_id": "7000714532876273420"})["shop_cipher"] == SHOP_CIPHER
    api.add(responses.GET, TOKEN_URL, json=load("token_get.json"))
    with pytest.raises(AuthError, match="Shop 7000714532876273421 has not authorised the app"):
        exchange(credentials={**APP, "shop_id": "7000714532876273421"})


@pytest.mark.django_db
def test_connect_against_the_fake_tiktok_then_the_connection_tests_green(settings, tenant_a, make_connection):
    settings.INTEGRATIONS_ALLOW_PRIVATE_URLS = True
    with FakeTikTok(orders=3, products=2, now=NOW) as tiktok:
        credentials = {k: v for k, v in tiktok.credentials().items() if k in ("app_key", "app_secret", "service_id")}
        oauth = TikTokOAuth(base_url=tiktok.url)
        updates = oauth.exchange(credentials=credentials, params={"code": AUTH_CODE}, redirect_uri=CALLBACK)
        assert updates["shop_cipher"] == SHOP_CIPHER
        connection = make_connection(tenant_a, "tiktok", credentials={**credentials, **updates}, base_url=tiktok.url)
        result = TikTokConnector(connection, client=HttpClient(allow_private=True)).check()
        assert result.ok, result.message
        assert result.samples == {"orders": 3, "products": 2}
        with pytest.raises(AuthError, match="invalid auth_code"):
            oauth.exchange(credentials=credentials, params={"code": "TTP_forged"}, redirect_uri=CALLBACK)
