"""The fake Shopify of `shopify_server.py` with an app install on top: a consent page and the
authorization-code grant, for browser tests of Connect.

    with FakeShopifyOAuth(shop="gamma.myshopify.com").running() as fake:
        connection.base_url = fake.url   # the provider and the connector both go to the fake

- `GET /admin/oauth/authorize?client_id&scope&redirect_uri&state` answers a consent page whose
  "Install app" link goes back to `redirect_uri` with `code`, `shop`, `state`, `timestamp` and
  `hmac` (signed with the app's client secret, as Shopify does); "Cancel" goes back with
  `error=access_denied`. An unknown client_id gets a 400 page.
- `POST /admin/oauth/access_token` with `client_id`, `client_secret` and `code` (no grant_type)
  answers an offline token that the GraphQL API then accepts; each code works once.
  Client-credentials requests still go to the base fake.

What happened: `authorize_requests` (each consent page's query) and `exchanged_codes`.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from .shopify_server import FakeShopify

HTML = {"Content-Type": "text/html; charset=utf-8"}


class FakeShopifyOAuth(FakeShopify):
    def __init__(self, *, shop: str = "fake-shop.myshopify.com", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.shop = shop
        self.authorize_requests: list[dict[str, str]] = []
        self.codes: set[str] = set()
        self.exchanged_codes: list[str] = []

    def _route(self, method: str, target: str, headers: Any, raw: bytes) -> tuple[int, dict, Any, float]:
        parts = urlsplit(target)
        if parts.path == "/admin/oauth/authorize" and method == "GET":
            return self._consent_page({k: v[0] for k, v in parse_qs(parts.query).items()})
        if parts.path == "/admin/oauth/access_token" and method == "POST":
            form = self._form(raw, headers.get("Content-Type", ""))
            if "grant_type" not in form:
                return self._exchange(form)
        return super()._route(method, target, headers, raw)

    @staticmethod
    def _form(raw: bytes, content_type: str) -> dict[str, str]:
        if "json" in content_type:
            return json.loads(raw or b"{}")
        return {k: v[0] for k, v in parse_qs(raw.decode()).items()}

    def _signed(self, params: dict[str, str]) -> dict[str, str]:
        message = "&".join(f"{k}={v}" for k, v in sorted(params.items()))
        digest = hmac.new(self.client_secret.encode(), message.encode(), hashlib.sha256).hexdigest()
        return {**params, "hmac": digest}

    def _consent_page(self, query: dict[str, str]) -> tuple[int, dict, Any, float]:
        self.authorize_requests.append(query)
        if query.get("client_id") != self.client_id:
            return 400, HTML, b"<h1>Oauth error invalid_request: The client_id is not valid</h1>", 0
        code = f"code-{len(self.codes) + 1}"
        self.codes.add(code)
        redirect = query.get("redirect_uri", "")
        back = {"code": code, "shop": self.shop, "state": query.get("state", ""), "timestamp": "1750000000"}
        install = f"{redirect}?{urlencode(self._signed(back))}"
        cancel = f"{redirect}?{urlencode({'error': 'access_denied', 'state': query.get('state', '')})}"
        page = (
            "<!doctype html><title>Install app</title>"
            f"<h1>Install this app on {html.escape(self.shop)}?</h1>"
            f"<p>It asks for: {html.escape(query.get('scope', ''))}</p>"
            f'<a id="install" href="{html.escape(install)}">Install app</a> '
            f'<a id="cancel" href="{html.escape(cancel)}">Cancel</a>'
        )
        return 200, HTML, page.encode(), 0

    def _exchange(self, form: dict[str, str]) -> tuple[int, dict, Any, float]:
        if (form.get("client_id"), form.get("client_secret")) != (self.client_id, self.client_secret):
            return 400, {}, {"error": "invalid_client", "error_description": "Client authentication failed"}, 0
        code = form.get("code", "")
        if code not in self.codes:
            return 400, {}, {"error": "invalid_request", "error_description": "The authorization code is invalid"}, 0
        self.codes.discard(code)
        self.exchanged_codes.append(code)
        token = f"shpat_offline_{len(self.exchanged_codes)}"
        self.tokens.add(token)
        return 200, {}, {"access_token": token, "scope": ",".join(self.scopes)}, 0
