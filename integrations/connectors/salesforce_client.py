"""Salesforce transport: login hosts, Salesforce's error words, and REST requests to the org.

- The login host is https://login.salesforce.com, or https://test.salesforce.com for a sandbox; a
  connection's base URL override stands in for it (the org's My Domain login address, or a test
  server). API requests go to the org's instance, which the token endpoint names
  (`salesforce_tokens`).
- A 401 (INVALID_SESSION_ID) gets a new access token once; refused again, the authorisation is gone
  and the connection must be connected again.
- Salesforce says why it refused a request in a list of `{"message", "errorCode"}`:
  `salesforce_errors` puts its words in the error, and `classify` turns REQUEST_LIMIT_EXCEEDED
  (a 403, the org's daily API limit) into `RateLimited` and API_DISABLED_FOR_ORG into a
  `PermissionDenied` that says what to enable.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import requests

from ..errors import AuthError, BadResponse, IntegrationError, PermissionDenied, RateLimited
from ..http import HttpClient

if TYPE_CHECKING:
    from .salesforce_tokens import SalesforceTokens, Session

logger = logging.getLogger(__name__)

API_VERSION = "60.0"
DATA = f"/services/data/v{API_VERSION}"
LOGIN_HOSTS = {"production": "https://login.salesforce.com", "sandbox": "https://test.salesforce.com"}
TOKEN_PATH = "/services/oauth2/token"  # noqa: S105 (a path, not a password)
AUTHORIZE_PATH = "/services/oauth2/authorize"
QUERY_BATCH = 200  # Sforce-Query-Options batchSize: the smallest Salesforce takes
JSON = {"Accept": "application/json"}
RECONNECT = (
    "Salesforce refused the connection's authorisation (expired or revoked, or the user was deactivated): "
    "reconnect Salesforce."
)
HINT_RECONNECT = "Connect the connection to Salesforce again (its Connect button) and sign in as the integration user."
HINT_CLIENT = (
    "Check the consumer key and secret: Setup → App Manager → the connected app → View → Manage Consumer Details."
)
HINT_DAILY_LIMIT = (
    "Salesforce counts API requests over the last 24 hours (Setup → Company Information → API Requests, Last 24 "
    "Hours); syncs go on once requests free up. The limit grows with the org's licences."
)


def is_sandbox(credentials: dict[str, Any]) -> bool:
    return str(credentials.get("sandbox") or "").strip().lower() == "true"


def login_url(credentials: dict[str, Any], override: str = "") -> str:
    return (override or "").strip().rstrip("/") or LOGIN_HOSTS["sandbox" if is_sandbox(credentials) else "production"]


# --- Salesforce's words --------------------------------------------------------------------------------


def error_items(body: Any) -> list[dict[str, Any]]:
    items = body if isinstance(body, list) else [body] if isinstance(body, dict) else []
    return [item for item in items if isinstance(item, dict)]


def response_body(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def salesforce_errors(response: requests.Response) -> str:
    """`errorCode: message` of Salesforce's first few errors (the connector's `Hints.describe`)."""
    body = response_body(response)
    if isinstance(body, dict) and body.get("error"):  # the token endpoint's OAuth shape
        return " - ".join(str(part) for part in (body["error"], body.get("error_description")) if part)[:300]
    parts = [
        f"{item.get('errorCode') or item.get('statusCode') or ''}: {item.get('message') or ''}".strip(": ")
        for item in error_items(body)[:3]
    ]
    return "; ".join(part for part in parts if part)[:300]


def error_code(response: requests.Response) -> str:
    items = error_items(response_body(response))
    return str(items[0].get("errorCode") or "") if items else ""


def classify(error: IntegrationError, code: str) -> IntegrationError:
    """The error a refusal is, by Salesforce's errorCode rather than by the HTTP status alone."""
    if code == "REQUEST_LIMIT_EXCEEDED":
        if "concurrent" in error.message.lower():
            return RateLimited(
                "Salesforce refused the request: too many long-running requests in the org at once.",
                hint="The sync tries again later.",
                status=error.status,
            )
        # Not worth retrying in seconds: the limit is a rolling 24 hours.
        return RateLimited(
            "The Salesforce org's daily API request limit is used up (REQUEST_LIMIT_EXCEEDED): nothing more can be "
            "read or pushed until requests free up.",
            hint=HINT_DAILY_LIMIT,
            status=error.status,
        )
    if code == "API_DISABLED_FOR_ORG":
        return PermissionDenied(
            "Salesforce API access is not enabled for this org or user (API_DISABLED_FOR_ORG).",
            hint="The org's edition must include the API (Enterprise, Unlimited, Developer, or Professional with the "
            "API add-on), and the integration user's profile needs the “API Enabled” permission.",
            status=error.status,
        )
    return error


# --- Requests -----------------------------------------------------------------------------------------


class SalesforceApi:
    """REST requests to the org's instance with the connection's shared access token."""

    def __init__(self, client: HttpClient, tokens: SalesforceTokens) -> None:
        self.client = client
        self.tokens = tokens

    def get(self, path: str, params: dict[str, Any] | None = None, *, retry: bool = True, **kwargs: Any) -> Any:
        return decoded(self.send("GET", path, params=params or {}, retry=retry, **kwargs))

    def send(self, method: str, path: str, *, retry: bool = True, **kwargs: Any) -> requests.Response:
        """The 2xx answer to a request; `retry=False` for one that must never be sent twice blindly
        (a create). A 401 is sent again once with a new token: Salesforce refused it before doing anything."""
        session = self.tokens.session(retry=retry)
        try:
            return self._send(session, method, path, retry, kwargs)
        except AuthError:
            logger.info("Salesforce refused the access token for %s; renewing it once", path)
        session = self.tokens.refresh_session(session, retry=retry)
        try:
            return self._send(session, method, path, retry, kwargs)
        except AuthError as error:
            raise AuthError(RECONNECT, hint=HINT_RECONNECT, status=error.status) from error

    def _send(self, session: Session, method: str, path: str, retry: bool, kwargs: dict[str, Any]) -> requests.Response:
        codes: list[str] = []

        def observe(response: requests.Response, *args: Any, **kw: Any) -> requests.Response:
            if response.status_code >= 400:
                codes.append(error_code(response))
            return response

        options = dict(kwargs)
        headers = {**JSON, **options.pop("headers", {}), "Authorization": f"Bearer {session.access_token}"}
        try:
            return self.client.request(
                method,
                session.instance_url + path,
                headers=headers,
                retry=retry,
                hooks={"response": observe},
                **options,
            )
        except IntegrationError as error:
            classified = classify(error, codes[-1] if codes else "")
            if classified is error:
                raise
            raise classified from error

    def query(self, soql: str, *, retry: bool = True) -> Iterator[dict[str, Any]]:
        """Each batch of a SOQL query's answer (`records`, `totalSize`), following `nextRecordsUrl`."""
        headers = {"Sforce-Query-Options": f"batchSize={QUERY_BATCH}"}
        body = query_answer(self.get(f"{DATA}/query", {"q": soql}, retry=retry, headers=headers))
        while True:
            yield body
            following = body.get("nextRecordsUrl")
            if body.get("done", True) or not following:
                return
            if not isinstance(following, str) or not following.startswith("/services/data/"):
                raise BadResponse("Salesforce answered a query with a next page outside its API.")
            body = query_answer(self.get(following, retry=retry, headers=headers))

    def query_all(self, soql: str, *, retry: bool = True) -> list[dict[str, Any]]:
        return [record for body in self.query(soql, retry=retry) for record in body["records"]]

    def describe(self, sobject: str, *, retry: bool = True) -> dict[str, Any]:
        body = self.get(f"{DATA}/sobjects/{sobject}/describe", retry=retry)
        if not isinstance(body, dict) or not isinstance(body.get("fields"), list):
            raise BadResponse(f"Salesforce's description of {sobject} has no fields.")
        return body

    def save(self, method: str, records: list[dict[str, Any]], *, retry: bool) -> list[dict[str, Any]]:
        """Create (POST) or update (PATCH) up to 200 records with sObject Collections, each on its own
        (allOrNone=false); one SaveResult per record, in their order."""
        response = self.send(
            method, f"{DATA}/composite/sobjects", json={"allOrNone": False, "records": records}, retry=retry
        )
        results = decoded(response)
        if not isinstance(results, list) or len(results) != len(records):
            raise BadResponse("Salesforce answered a collection with a different number of results than records.")
        return [result if isinstance(result, dict) else {} for result in results]


def decoded(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise BadResponse("Salesforce answered with malformed JSON.", status=response.status_code) from exc


def query_answer(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict) or not isinstance(body.get("records"), list):
        raise BadResponse("Salesforce answered a query without records.")
    return body
