"""A local HubSpot for tests, shaped like the examples in HubSpot's documentation (CRM API v3), on a
threaded http.server on 127.0.0.1; the connection's base URL points at it.

Routes:
- POST /crm/v3/objects/contacts/search: `filterGroups` (GT, GTE, LT, LTE, EQ), one sort, `limit`
  1 to 200, `after` (an offset) refused past `SEARCH_CAP` results like HubSpot's 10,000; contacts
  that tie on the sort come in no particular order (here: newest id first).
- POST /crm/v3/objects/contacts/batch/upsert by email (any case): `new` per result; a contact it
  refuses (an invalid email, a property it does not have, a value of the wrong type) is answered
  as `refusals` says: "multi-status" (207, the others written), "whole-batch" (400 naming the
  email, nothing written) or "whole-batch-unnamed" (400 naming nothing).
- GET/POST /crm/v3/properties/contacts[/{name}]; POST /crm/v3/lists/records/memberships/batch/read;
  GET /crm/v3/lists/?listIds=…; POST /crm/v3/lists/search.
- POST /oauth/v1/token (authorization_code once per code, refresh_token); GET
  /oauth/v1/access-tokens/{token}.

Every API route wants a bearer token it issued (401 INVALID_AUTHENTICATION otherwise) with the
route's scope (403 MISSING_SCOPES naming it in `errors[].context.requiredGranularScopes`).

    with FakeHubSpot() as hubspot:
        hubspot.add_contact("ann@example.com", modified=T0, firstname="Ann")
        hubspot.add_list("VIP", [contact_id])
        hubspot.rate_limit(1, retry_after="1")   # the next API request answers 429 with Retry-After
        hubspot.expire_tokens()                 # OAuth access tokens issued so far stop working
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, parse_qsl, unquote, urlsplit

PRIVATE_TOKEN = "pat-na1-11111111-2222-3333-4444-555555555555"
CLIENT_ID = "0a1b2c3d-4e5f-6789-abcd-ef0123456789"
CLIENT_SECRET = "fedcba98-7654-3210-fedc-ba9876543210"
REFRESH_TOKEN = "na1-ab12-cd34-ef56-gh78-abcdef123456"
HUB_ID = 62515
ALL_SCOPES = frozenset(
    {
        "oauth",
        "crm.objects.contacts.read",
        "crm.objects.contacts.write",
        "crm.schemas.contacts.read",
        "crm.schemas.contacts.write",
        "crm.lists.read",
    }
)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
DATE_PROPERTIES = {"createdate", "lastmodifieddate", "hs_lastmodifieddate"}
STANDARD = {
    name: {"name": name, "label": name, "type": kind, "fieldType": field_type, "groupName": "contactinformation"}
    for name, kind, field_type in [
        ("email", "string", "text"),
        ("firstname", "string", "text"),
        ("lastname", "string", "text"),
        ("phone", "string", "phonenumber"),
        ("country", "string", "text"),
        ("hs_country_region_code", "string", "text"),
        ("createdate", "datetime", "date"),
        ("lastmodifieddate", "datetime", "date"),
        ("hs_lastmodifieddate", "datetime", "date"),
        ("hs_object_id", "number", "number"),
    ]
}
FIELD_TYPES = {"number": {"number"}, "date": {"date"}, "datetime": {"date"}, "string": {"text", "textarea"}}


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def millis(value: Any) -> int:
    """A time as HubSpot takes it in a filter (milliseconds, or ISO 8601) in milliseconds."""
    text = str(value)
    if text.isdigit():
        return int(text)
    return (datetime.fromisoformat(text.replace("Z", "+00:00")) - EPOCH) // timedelta(milliseconds=1)


def hubspot_error(message: str, category: str, **extra: Any) -> dict[str, Any]:
    return {"status": "error", "message": message, "correlationId": str(uuid.uuid4()), "category": category, **extra}


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class Refusal(Exception):
    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        super().__init__(body.get("message"))
        self.status, self.body, self.headers = status, body, headers or {}


class FakeHubSpot:
    SEARCH_CAP = 10_000

    def __init__(self, *, scopes: frozenset[str] = ALL_SCOPES, refusals: str = "multi-status") -> None:
        self.scopes = set(scopes)
        self.refusals = refusals
        self.lock = threading.RLock()
        self.requests: list[Seen] = []
        self.contacts: dict[str, dict[str, Any]] = {}
        self.lists: dict[str, str] = {}
        self.memberships: dict[str, dict[str, str]] = {}  # contact id → list id → last added
        self.properties: dict[str, dict[str, Any]] = {name: dict(value) for name, value in STANDARD.items()}
        self.tokens: dict[str, bool] = {PRIVATE_TOKEN: True}  # access token → still honoured
        self.codes: dict[str, bool] = {}  # authorisation code → not used yet
        self.token_has_hub_id = False
        self._ids = itertools.count(101)
        self._list_ids = itertools.count(1)
        self._faults: list[Refusal] = []
        self._server: ThreadingHTTPServer | None = None

    # --- Life ---

    def __enter__(self) -> FakeHubSpot:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.hubspot = self  # type: ignore[attr-defined]
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # --- Set-up ---

    def add_contact(self, email: str = "", *, modified: datetime, created: datetime | None = None, **props: str) -> str:
        with self.lock:
            contact_id = str(next(self._ids))
            created = created or modified
            properties = {"email": email or None, **props, "hs_object_id": contact_id}
            properties |= {"createdate": iso(created), "lastmodifieddate": iso(modified)}
            properties["hs_lastmodifieddate"] = iso(modified)
            self.contacts[contact_id] = {"id": contact_id, "properties": properties, "archived": False}
            return contact_id

    def add_list(self, name: str, contact_ids: list[str], *, added: datetime | None = None) -> str:
        with self.lock:
            list_id = str(next(self._list_ids))
            self.lists[list_id] = name
            for contact_id in contact_ids:
                stamp = iso(added or datetime(2024, 1, 1, tzinfo=UTC))
                self.memberships.setdefault(contact_id, {})[list_id] = stamp
            return list_id

    def issue_code(self) -> str:
        code = f"code-{uuid.uuid4().hex[:12]}"
        self.codes[code] = True
        return code

    def rate_limit(self, times: int = 1, *, retry_after: str = "1") -> None:
        body = hubspot_error(
            "You have reached your ten_secondly_rolling limit.",
            "RATE_LIMITS",
            errorType="RATE_LIMIT",
            policyName="TEN_SECONDLY_ROLLING",
        )
        self._faults.extend(Refusal(429, body, {"Retry-After": retry_after}) for _ in range(times))

    def expire_tokens(self) -> None:
        with self.lock:
            for token in self.tokens:
                if token != PRIVATE_TOKEN:
                    self.tokens[token] = False

    # --- Looking ---

    def by_email(self, email: str) -> dict[str, Any] | None:
        for contact in self.contacts.values():
            if (contact["properties"].get("email") or "").lower() == email.lower():
                return contact
        return None

    def seen(self, path: str, method: str | None = None) -> list[Seen]:
        return [r for r in self.requests if r.path == path and (method is None or r.method == method)]

    # --- Answering ---

    def handle(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict, Any]:
        parts = urlsplit(target)
        path, query = parts.path, parse_qs(parts.query)
        body: Any = None
        if raw:
            if headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
                body = dict(parse_qsl(raw.decode()))
            else:
                body = json.loads(raw)
        with self.lock:
            self.requests.append(Seen(method, path, query, body, headers))
            try:
                if path == "/oauth/v1/token" and method == "POST":
                    return 200, {}, self._token(body or {})
                if path.startswith("/oauth/v1/access-tokens/") and method == "GET":
                    return 200, {}, self._token_info(unquote(path.rsplit("/", 1)[1]))
                self._authenticate(headers)
                if self._faults:
                    raise self._faults.pop(0)
                return self._route(method, path, query, body)
            except Refusal as refusal:
                return refusal.status, refusal.headers, refusal.body

    def _authenticate(self, headers: dict[str, str]) -> None:
        token = headers.get("authorization", "").removeprefix("Bearer ")
        if not self.tokens.get(token):
            raise Refusal(
                401,
                hubspot_error(
                    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can "
                    "find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                    "INVALID_AUTHENTICATION",
                ),
            )

    def _needs(self, scope: str) -> None:
        if scope not in self.scopes:
            raise Refusal(
                403,
                hubspot_error(
                    "This app hasn't been granted all required scopes to make this call. Read more about required "
                    "scopes here: https://developers.hubspot.com/scopes.",
                    "MISSING_SCOPES",
                    errors=[
                        {
                            "message": "One or more of the following scopes are required.",
                            "context": {"requiredGranularScopes": [scope]},
                        }
                    ],
                    links={"scopes": "https://developers.hubspot.com/scopes"},
                ),
            )

    def _route(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, dict, Any]:
        if path == "/crm/v3/objects/contacts/search" and method == "POST":
            self._needs("crm.objects.contacts.read")
            return 200, {}, self._search(body or {})
        if path == "/crm/v3/objects/contacts/batch/upsert" and method == "POST":
            self._needs("crm.objects.contacts.write")
            return self._upsert(body or {})
        if path.startswith("/crm/v3/properties/contacts"):
            return self._properties(method, path, body)
        if path == "/crm/v3/lists/records/memberships/batch/read" and method == "POST":
            self._needs("crm.lists.read")
            return 200, {}, self._memberships(body or {})
        if path == "/crm/v3/lists/" and method == "GET":
            self._needs("crm.lists.read")
            wanted = query.get("listIds", [])
            return 200, {}, {"lists": [self._list(i) for i in wanted if i in self.lists]}
        if path == "/crm/v3/lists/search" and method == "POST":
            self._needs("crm.lists.read")
            count = int((body or {}).get("count") or 20)
            found = [self._list(i) for i in sorted(self.lists)]
            return (
                200,
                {},
                {"lists": found[:count], "total": len(found), "offset": count, "hasMore": len(found) > count},
            )
        raise Refusal(404, hubspot_error(f"Unknown route {method} {path}", "OBJECT_NOT_FOUND"))

    # --- CRM search ---

    def _search(self, body: dict[str, Any]) -> dict[str, Any]:
        limit = int(body.get("limit") or 10)
        after = int(body.get("after") or 0)
        if not 1 <= limit <= 200:
            raise Refusal(400, hubspot_error("limit must be between 1 and 200", "VALIDATION_ERROR"))
        if after >= self.SEARCH_CAP:
            raise Refusal(
                400,
                hubspot_error(
                    f"There was a problem with the request: paging past {self.SEARCH_CAP} results.", "VALIDATION_ERROR"
                ),
            )
        groups = body.get("filterGroups") or []
        found = [c for c in self.contacts.values() if not groups or any(self._matches(c, g) for g in groups)]
        sorts = body.get("sorts") or [{"propertyName": "hs_object_id", "direction": "ASCENDING"}]
        if len(sorts) > 1:
            raise Refusal(400, hubspot_error("Only one sort is allowed.", "VALIDATION_ERROR"))
        name = sorts[0]["propertyName"]
        # Ties come newest id first, so a client cannot count on the id order within one value.
        found.sort(key=lambda c: -int(c["id"]))
        found.sort(key=lambda c: self._value(c, name), reverse=sorts[0].get("direction") == "DESCENDING")
        page = found[after : after + limit]
        wanted = body.get("properties") or ["firstname", "lastname", "email", "lastmodifieddate", "createdate"]
        answer: dict[str, Any] = {"total": len(found), "results": [self._view(c, wanted) for c in page]}
        if after + limit < len(found):
            answer["paging"] = {"next": {"after": str(after + limit), "link": "?after=" + str(after + limit)}}
        return answer

    def _matches(self, contact: dict[str, Any], group: dict[str, Any]) -> bool:
        for rule in group.get("filters") or []:
            name, operator = rule["propertyName"], rule["operator"]
            have = self._value(contact, name)
            want = millis(rule["value"]) if name in DATE_PROPERTIES else self._number_or_text(name, rule["value"])
            ok = {
                "EQ": have == want,
                "GT": have > want,
                "GTE": have >= want,
                "LT": have < want,
                "LTE": have <= want,
            }.get(operator)
            if ok is None:
                raise Refusal(400, hubspot_error(f"Unsupported operator {operator}", "VALIDATION_ERROR"))
            if not ok:
                return False
        return True

    def _value(self, contact: dict[str, Any], name: str) -> Any:
        value = contact["properties"].get(name)
        if name in DATE_PROPERTIES:
            return millis(value) if value else 0
        return self._number_or_text(name, value)

    def _number_or_text(self, name: str, value: Any) -> Any:
        if self.properties.get(name, {}).get("type") == "number":
            return float(value or 0)
        return str(value or "")

    def _view(self, contact: dict[str, Any], wanted: list[str]) -> dict[str, Any]:
        properties = contact["properties"]
        shown = {name: properties.get(name) for name in [*wanted, "hs_object_id", "createdate", "lastmodifieddate"]}
        return {
            "id": contact["id"],
            "properties": shown,
            "createdAt": properties["createdate"],
            "updatedAt": properties["lastmodifieddate"],
            "archived": False,
        }

    # --- Batch upsert ---

    def _upsert(self, body: dict[str, Any]) -> tuple[int, dict, Any]:
        inputs = body.get("inputs") or []
        if len(inputs) > 100:
            raise Refusal(400, hubspot_error("Batch size must be at most 100.", "VALIDATION_ERROR"))
        started = iso(datetime.now(UTC))
        problems = {i: problem for i, item in enumerate(inputs) if (problem := self._problem(item))}
        if problems and self.refusals.startswith("whole-batch"):
            first = next(iter(problems.values()))
            message = f"Property values were not valid: {first}"
            if self.refusals == "whole-batch-unnamed":
                message = "Property values were not valid"
            raise Refusal(400, hubspot_error(message, "VALIDATION_ERROR"))
        results = [self._write(item) for i, item in enumerate(inputs) if i not in problems]
        answer: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": started,
            "completedAt": iso(datetime.now(UTC)),
        }
        if not problems:
            return 200, {}, answer
        answer["numErrors"] = len(problems)
        answer["errors"] = [
            {
                "status": "error",
                "category": "VALIDATION_ERROR",
                "message": problem,
                "context": {"ids": [str(inputs[i].get("id"))]},
            }
            for i, problem in problems.items()
        ]
        return 207, {}, answer

    def _problem(self, item: dict[str, Any]) -> str:
        if item.get("idProperty") != "email":
            return "idProperty must be email here"
        email = str(item.get("id") or "")
        if not EMAIL.match(email):
            return f"Email address {email} is invalid"
        for name, value in (item.get("properties") or {}).items():
            definition = self.properties.get(name)
            if definition is None:
                return f'Property "{name}" does not exist'
            if definition["type"] == "number" and not re.fullmatch(r"-?\d+(\.\d+)?", str(value)):
                return f"{value} is not a valid number for {name}"
            if definition["type"] == "date" and not re.fullmatch(r"\d{4}-\d\d-\d\d", str(value)):
                return f"{value} is not a valid date for {name}"
        return ""

    def _write(self, item: dict[str, Any]) -> dict[str, Any]:
        now = iso(datetime.now(UTC))
        contact = self.by_email(str(item["id"]))
        new = contact is None
        if contact is None:
            contact_id = str(next(self._ids))
            contact = {"id": contact_id, "archived": False, "properties": {"hs_object_id": contact_id}}
            contact["properties"] |= {"createdate": now, "email": str(item["id"]).lower()}
            self.contacts[contact_id] = contact
        properties = dict(item.get("properties") or {})
        properties["email"] = contact["properties"]["email"]  # the address it is known by stays
        contact["properties"] |= properties | {"lastmodifieddate": now, "hs_lastmodifieddate": now}
        result = {
            "id": contact["id"],
            "properties": dict(contact["properties"]),
            "createdAt": contact["properties"]["createdate"],
            "updatedAt": now,
            "archived": False,
            "new": new,
        }
        if item.get("objectWriteTraceId"):
            result["objectWriteTraceId"] = item["objectWriteTraceId"]
        return result

    # --- Properties ---

    def _properties(self, method: str, path: str, body: Any) -> tuple[int, dict, Any]:
        name = path.removeprefix("/crm/v3/properties/contacts").strip("/")
        if method == "GET" and name:
            self._needs("crm.schemas.contacts.read")
            if name not in self.properties:
                raise Refusal(404, hubspot_error(f"Unable to find property {name}", "OBJECT_NOT_FOUND"))
            return 200, {}, self.properties[name]
        if method == "POST" and not name:
            self._needs("crm.schemas.contacts.write")
            definition = dict(body or {})
            if definition.get("name") in self.properties:
                raise Refusal(409, hubspot_error(f"Property {definition['name']} already exists", "CONFLICT"))
            if definition.get("fieldType") not in FIELD_TYPES.get(definition.get("type"), set()):
                raise Refusal(400, hubspot_error("type and fieldType do not go together", "VALIDATION_ERROR"))
            if not definition.get("groupName") or not definition.get("label"):
                raise Refusal(400, hubspot_error("groupName and label are required", "VALIDATION_ERROR"))
            self.properties[definition["name"]] = definition
            return 201, {}, definition
        raise Refusal(404, hubspot_error(f"Unknown route {method} {path}", "OBJECT_NOT_FOUND"))

    # --- Lists ---

    def _list(self, list_id: str) -> dict[str, Any]:
        return {
            "listId": list_id,
            "name": self.lists[list_id],
            "objectTypeId": "0-1",
            "processingType": "MANUAL",
            "processingStatus": "COMPLETE",
            "listVersion": 1,
        }

    def _memberships(self, body: dict[str, Any]) -> dict[str, Any]:
        results = []
        for item in body.get("inputs") or []:
            record_id = str(item.get("recordId"))
            found = self.memberships.get(record_id, {})
            results.append(
                {
                    "objectTypeId": item.get("objectTypeId"),
                    "recordId": record_id,
                    "recordListMemberships": [
                        {"listId": list_id, "listVersion": 1, "firstAddedTimestamp": at, "lastAddedTimestamp": at}
                        for list_id, at in found.items()
                        if list_id in self.lists
                    ],
                }
            )
        return {"status": "COMPLETE", "results": results}

    # --- OAuth ---

    def _token(self, form: dict[str, str]) -> dict[str, Any]:
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            raise Refusal(400, {"status": "BAD_CLIENT_ID", "message": "missing or invalid client_id"})
        if form.get("grant_type") == "authorization_code":
            if not self.codes.get(form.get("code", "")):
                raise Refusal(400, {"status": "BAD_AUTH_CODE", "message": "missing or unknown auth code"})
            self.codes[form["code"]] = False
        elif form.get("grant_type") == "refresh_token":
            if form.get("refresh_token") != REFRESH_TOKEN:
                raise Refusal(400, {"status": "BAD_REFRESH_TOKEN", "message": "missing or unknown refresh token"})
        else:
            raise Refusal(400, {"status": "BAD_GRANT_TYPE", "message": "unknown grant_type"})
        token = f"CJ{uuid.uuid4().hex}"
        self.tokens[token] = True
        answer = {"token_type": "bearer", "refresh_token": REFRESH_TOKEN, "access_token": token, "expires_in": 1800}
        if self.token_has_hub_id:
            answer["hub_id"] = HUB_ID
        return answer

    def _token_info(self, token: str) -> dict[str, Any]:
        if not self.tokens.get(token) or token == PRIVATE_TOKEN:
            raise Refusal(404, hubspot_error("Token not found", "OBJECT_NOT_FOUND"))
        return {
            "token": token,
            "user": "owner@example.com",
            "hub_domain": "example-62515.com",
            "scopes": sorted(self.scopes),
            "hub_id": HUB_ID,
            "app_id": 456789,
            "expires_in": 1700,
            "user_id": 123,
            "token_type": "access",
        }


class _Handler(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {key.lower(): value for key, value in self.headers.items()}
        status, extra, body = self.server.hubspot.handle(self.command, self.path, headers, raw)  # type: ignore[attr-defined]
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for key, value in extra.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass
