"""A local Salesforce for tests, shaped like the REST API's documented examples, on a threaded
http.server on 127.0.0.1 (it is both the login host and the org's instance).

Routes: POST /services/oauth2/token (refresh_token and authorization_code grants; `invalid_grant`,
`invalid_client_id`, `invalid_client` as Salesforce answers them), and under /services/data/v60.0,
with a bearer token it issued (401 INVALID_SESSION_ID otherwise): GET limits,
sobjects/Contact/describe, query?q=… and query/<locator> (a tiny SOQL subset: SELECT fields or
COUNT() FROM Contact|CampaignMember, WHERE with AND, OR, parentheses, =, !=, <, >, <=, >=, IN, ORDER
BY, LIMIT; text compared without regard to case, as SOQL does; `page_size` records a batch with
`nextRecordsUrl`), and POST/PATCH composite/sobjects (allOrNone=false: one SaveResult per record, with
Salesforce's per-record errors). Error bodies are lists of {"message", "errorCode"}.

    with FakeSalesforce(page_size=3) as sf:
        contact = sf.add_contact("ann@example.com", LastName="Lee", modified=T0)
        sf.join(contact, sf.add_campaign("Spring"))
        sf.expire_tokens()                                  # issued access tokens stop working
        sf.revoke()                                         # refresh tokens answered invalid_grant
        sf.fail(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")  # the next API request
        sf.delay(1.0, when=lambda seen: seen.method == "POST")  # done, but answered late
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

VERSION = "v60.0"
DATA = f"/services/data/{VERSION}"
CLIENT_ID = "3MVG9fakeConsumerKey.for.hub.tests"
CLIENT_SECRET = "F4KE0123456789ABCDEF"
REFRESH_TOKEN = "5Aep861fake.refresh.token"
ORG_ID = "00D000000000001AAA"
CUSTOM_FIELDS = {
    "Hub_Orders_Count__c": "double",
    "Hub_Total_Spent__c": "double",
    "Hub_Currency__c": "string",
    "Hub_Last_Order_Date__c": "datetime",
    "Hub_First_Order_Date__c": "datetime",
}
STANDARD_FIELDS = {
    "Id": "id",
    "Email": "email",
    "FirstName": "string",
    "LastName": "string",
    "Phone": "phone",
    "MailingCountry": "string",
    "HasOptedOutOfEmail": "boolean",
    "LastModifiedDate": "datetime",
    "CreatedDate": "datetime",
}
READ_ONLY = {"Id", "LastModifiedDate", "CreatedDate"}
MEMBER_FIELDS = {"Id", "ContactId", "CampaignId", "Campaign.Name"}
TIMES = {"LastModifiedDate", "CreatedDate"}
Match = Callable[["Seen"], bool]


def sf_time(moment: datetime) -> str:
    """A dateTime as Salesforce writes it: 2024-01-15T10:30:00.000+0000."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def errors(code: str, message: str, fields: list[str] | None = None) -> list[dict[str, Any]]:
    item: dict[str, Any] = {"message": message, "errorCode": code}
    if fields is not None:
        item["fields"] = fields
    return [item]


class Refused(Exception):
    """A request Salesforce answers with an error list."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def soql(self) -> str:
        return self.query.get("q", "")


# --- SOQL ---------------------------------------------------------------------------------------------

QUERY = re.compile(
    r"^SELECT (?P<fields>.+?) FROM (?P<object>\w+)(?: WHERE (?P<where>.+?))?"
    r"(?: ORDER BY (?P<order>[\w.]+(?:, [\w.]+)*))?(?: LIMIT (?P<limit>\d+))?$",
    re.S,
)
TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:\\.|[^'\\])*')"
    r"|(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d))"
    r"|(?P<number>\d+(?:\.\d+)?)"
    r"|(?P<op><=|>=|!=|=|<|>|\(|\)|,)"
    r"|(?P<word>[A-Za-z_][\w.]*))"
)


def tokens(text: str) -> list[tuple[str, Any]]:
    out, position = [], 0
    while position < len(text):
        match = TOKEN.match(text, position)
        if not match or match.end() == position:
            if text[position:].strip():
                raise Refused(400, "MALFORMED_QUERY", f"unexpected token: '{text[position : position + 20]}'")
            break
        position = match.end()
        kind = match.lastgroup
        value: Any = match.group(kind)
        if kind == "string":
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        elif kind == "time":
            value = parse_time(value)
        elif kind == "number":
            value = float(value)
        out.append((kind, value))
    return out


class Where:
    """A recursive-descent parser of a WHERE clause into a predicate on a row."""

    def __init__(self, text: str, known: set[str]) -> None:
        self.items = tokens(text)
        self.index = 0
        self.known = known
        self.predicate = self.disjunction()
        if self.index != len(self.items):
            raise Refused(400, "MALFORMED_QUERY", f"unexpected token: '{self.items[self.index][1]}'")

    def peek(self) -> tuple[str, Any] | None:
        return self.items[self.index] if self.index < len(self.items) else None

    def take(self) -> tuple[str, Any]:
        item = self.peek()
        if item is None:
            raise Refused(400, "MALFORMED_QUERY", "unexpected end of query")
        self.index += 1
        return item

    def word(self, value: str) -> bool:
        item = self.peek()
        if item and item[0] == "word" and item[1].upper() == value:
            self.index += 1
            return True
        return False

    def disjunction(self) -> Callable[[dict], bool]:
        parts = [self.conjunction()]
        while self.word("OR"):
            parts.append(self.conjunction())
        return lambda row: any(p(row) for p in parts)

    def conjunction(self) -> Callable[[dict], bool]:
        parts = [self.factor()]
        while self.word("AND"):
            parts.append(self.factor())
        return lambda row: all(p(row) for p in parts)

    def factor(self) -> Callable[[dict], bool]:
        if self.peek() == ("op", "("):
            self.take()
            inner = self.disjunction()
            if self.take() != ("op", ")"):
                raise Refused(400, "MALFORMED_QUERY", "expected )")
            return inner
        kind, name = self.take()
        if kind != "word" or name not in self.known:
            raise Refused(400, "INVALID_FIELD", f"No such column '{name}' on entity")
        if self.word("IN"):
            if self.take() != ("op", "("):
                raise Refused(400, "MALFORMED_QUERY", "expected ( after IN")
            listed = [self.value()]
            while self.peek() == ("op", ","):
                self.take()
                listed.append(self.value())
            if self.take() != ("op", ")"):
                raise Refused(400, "MALFORMED_QUERY", "expected )")
            wanted = [comparable(name, v) for v in listed]
            return lambda row: comparable(name, row.get(name)) in wanted
        kind, operator = self.take()
        if kind != "op" or operator not in {"=", "!=", "<", ">", "<=", ">="}:
            raise Refused(400, "MALFORMED_QUERY", f"unexpected operator {operator}")
        literal = self.value()
        if name in TIMES and not isinstance(literal, datetime):
            raise Refused(
                400, "INVALID_FIELD", f"value of filter criterion for field '{name}' must be of type dateTime"
            )
        target = comparable(name, literal)
        return lambda row: compare(comparable(name, row.get(name)), operator, target)

    def value(self) -> Any:
        kind, value = self.take()
        if kind not in {"string", "time", "number"} and not (kind == "word" and value.lower() in {"null", "true"}):
            raise Refused(400, "MALFORMED_QUERY", f"unexpected value {value}")
        return None if kind == "word" and value.lower() == "null" else value


def comparable(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in TIMES:
        return value if isinstance(value, datetime) else parse_time(value)
    if isinstance(value, str) and not name.endswith("Id"):
        return value.lower()  # SOQL compares text without regard to case; Ids exactly
    return value


def compare(left: Any, operator: str, right: Any) -> bool:
    if operator == "=":
        return left == right
    if operator == "!=":
        return left != right
    if left is None or right is None:
        return False
    return {"<": left < right, ">": left > right, "<=": left <= right, ">=": left >= right}[operator]


# --- The fake ------------------------------------------------------------------------------------------


class FakeSalesforce:
    def __init__(
        self,
        *,
        page_size: int = 200,
        now: datetime | None = None,
        custom_fields: dict[str, str] | None = None,
        country_picklists: bool = True,
        rotate_refresh_tokens: bool = False,
    ) -> None:
        self.page_size = page_size
        self.now = now or datetime(2025, 3, 3, 12, 0, tzinfo=UTC)
        self.custom_fields = dict(CUSTOM_FIELDS if custom_fields is None else custom_fields)
        self.country_picklists = country_picklists
        self.rotate_refresh_tokens = rotate_refresh_tokens
        self.lock = threading.RLock()
        self.contacts: dict[str, dict[str, Any]] = {}
        self.campaigns: dict[str, str] = {}
        self.members: list[dict[str, Any]] = []
        self.requests: list[Seen] = []
        self.grants: list[str] = []  # the grant types of the token requests answered with a token
        self.refusals: dict[str, tuple[str, str]] = {}  # email → (statusCode, message) for its saves
        self.daily = {"Max": 15000, "Remaining": 14990}
        self._ids = itertools.count(1)
        self._tokens: dict[str, bool] = {}
        self._refresh_tokens: dict[str, bool] = {REFRESH_TOKEN: True}
        self._codes: dict[str, str] = {}  # authorisation code → the redirect_uri it was issued for
        self._locators: dict[str, list[dict[str, Any]]] = {}
        self._faults: list[tuple[Match | None, int, bytes]] = []
        self._delays: list[tuple[Match | None, float]] = []
        self._server: ThreadingHTTPServer | None = None
        self.instance_url = ""  # the token endpoint's instance_url; the fake's own address by default

    # --- Life ---

    def __enter__(self) -> FakeSalesforce:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None, "start the fake first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def credentials(self, **extra: Any) -> dict[str, Any]:
        return {
            "instance_url": self.url,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "refresh_token": REFRESH_TOKEN,
            **extra,
        }

    # --- Data ---

    def new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):012d}AAA"

    def stamp(self) -> datetime:
        """The time of a write; the clock moves a second with each, so writes are ordered."""
        moment, self.now = self.now, self.now + timedelta(seconds=1)
        return moment

    def add_contact(self, email: str, *, modified: datetime | None = None, **fields: Any) -> str:
        with self.lock:
            contact_id = self.new_id("003")
            moment = modified or self.stamp()
            self.contacts[contact_id] = {
                "Id": contact_id,
                "Email": email,
                "LastName": "Contact",
                "HasOptedOutOfEmail": False,
                **fields,
                "LastModifiedDate": sf_time(moment),
                "CreatedDate": sf_time(moment),
            }
            return contact_id

    def add_campaign(self, name: str) -> str:
        with self.lock:
            campaign_id = self.new_id("701")
            self.campaigns[campaign_id] = name
            return campaign_id

    def join(self, contact_id: str, campaign_id: str) -> None:
        with self.lock:
            self.members.append({"Id": self.new_id("00v"), "ContactId": contact_id, "CampaignId": campaign_id})

    def by_email(self, email: str) -> list[dict[str, Any]]:
        with self.lock:
            return [c for c in self.contacts.values() if str(c.get("Email") or "").lower() == email.lower()]

    # --- Faults ---

    def expire_tokens(self) -> None:
        with self.lock:
            self._tokens = dict.fromkeys(self._tokens, False)

    def revoke(self) -> None:
        with self.lock:
            self._refresh_tokens = dict.fromkeys(self._refresh_tokens, False)
            self._tokens = dict.fromkeys(self._tokens, False)

    def fail(self, status: int, code: str, message: str, *, count: int = 1, when: Match | None = None) -> None:
        """The next `count` API requests (of those `when` accepts) are refused, untouched."""
        with self.lock:
            self._faults += [(when, status, json.dumps(errors(code, message)).encode())] * count

    def delay(self, seconds: float, *, when: Match | None = None) -> None:
        """The next API request `when` accepts is carried out, then answered `seconds` late."""
        with self.lock:
            self._delays.append((when, seconds))

    def issue_code(self, redirect_uri: str) -> str:
        with self.lock:
            code = f"aPrxFakeCode{len(self._codes) + 1}"
            self._codes[code] = redirect_uri
            return code

    def seen(self, path: str | None = None, method: str | None = None) -> list[Seen]:
        with self.lock:
            return [
                r for r in self.requests if (path is None or r.path == path) and (method is None or r.method == method)
            ]

    def queries(self, start: str = "") -> list[str]:
        """The SOQL of the queries asked, those starting with `start`."""
        return [r.soql for r in self.seen(f"{DATA}/query") if r.soql.startswith(start)]

    # --- Answers ---

    def answer(self, seen: Seen, headers: dict[str, str]) -> tuple[int, Any, float]:
        """(status, JSON body, delay before answering) for a request."""
        with self.lock:
            self.requests.append(seen)
            if seen.path == "/services/oauth2/token" and seen.method == "POST":
                return (*self.token(dict(parse_qsl(seen.body))), 0.0)
            if not seen.path.startswith("/services/data/"):
                return 404, errors("NOT_FOUND", "The requested resource does not exist"), 0.0
            auth = headers.get("authorization", "")
            if not auth.startswith("Bearer ") or not self._tokens.get(auth[7:]):
                return 401, errors("INVALID_SESSION_ID", "Session expired or invalid"), 0.0
            for index, (when, status, body) in enumerate(self._faults):
                if when is None or when(seen):
                    del self._faults[index]
                    return status, json.loads(body), 0.0
            if not seen.path.startswith(DATA + "/"):
                return 404, errors("NOT_FOUND", "The requested resource does not exist"), 0.0
            try:
                status, body = self.api(seen)
            except Refused as refused:
                status, body = refused.status, errors(refused.code, refused.message)
            late = 0.0
            for index, (when, seconds) in enumerate(self._delays):
                if when is None or when(seen):
                    del self._delays[index]
                    late = seconds
                    break
            return status, body, late

    def token(self, form: dict[str, str]) -> tuple[int, Any]:
        if form.get("client_id") != CLIENT_ID:
            return 400, {"error": "invalid_client_id", "error_description": "client identifier invalid"}
        if form.get("client_secret") != CLIENT_SECRET:
            return 400, {"error": "invalid_client", "error_description": "invalid client credentials"}
        grant = form.get("grant_type")
        refresh = None
        if grant == "refresh_token":
            if not self._refresh_tokens.get(form.get("refresh_token", "")):
                return 400, {"error": "invalid_grant", "error_description": "expired access/refresh token"}
            if self.rotate_refresh_tokens:
                self._refresh_tokens[form["refresh_token"]] = False
                refresh = f"{REFRESH_TOKEN}.{len(self._refresh_tokens)}"
                self._refresh_tokens[refresh] = True
        elif grant == "authorization_code":
            issued_for = self._codes.pop(form.get("code", ""), None)
            if issued_for is None:
                return 400, {"error": "invalid_grant", "error_description": "authorization code expired"}
            if issued_for != form.get("redirect_uri"):
                return 400, {"error": "redirect_uri_mismatch", "error_description": "redirect_uri must match"}
            refresh = f"{REFRESH_TOKEN}.code{len(self._refresh_tokens)}"
            self._refresh_tokens[refresh] = True
        else:
            return 400, {"error": "unsupported_grant_type", "error_description": "grant type not supported"}
        access = f"{ORG_ID}!fake-access-{len(self._tokens) + 1}"
        self._tokens[access] = True
        self.grants.append(grant)
        body = {
            "access_token": access,
            "signature": "ZmFrZS1zaWduYXR1cmU=",
            "scope": "api refresh_token",
            "instance_url": self.instance_url or self.url,
            "id": f"https://login.salesforce.com/id/{ORG_ID}/005000000000001AAA",
            "token_type": "Bearer",
            "issued_at": str(int(time.time() * 1000)),
        }
        if refresh:
            body["refresh_token"] = refresh
        return 200, body

    def api(self, seen: Seen) -> tuple[int, Any]:
        path = seen.path[len(DATA) :]
        if path == "/limits" and seen.method == "GET":
            return 200, {
                "DailyApiRequests": dict(self.daily),
                "DailyBulkApiRequests": {"Max": 10000, "Remaining": 10000},
            }
        if path == "/sobjects/Contact/describe" and seen.method == "GET":
            return 200, self.describe()
        if path == "/query" and seen.method == "GET":
            return 200, self.query(seen.soql)
        if path.startswith("/query/") and seen.method == "GET":
            locator, _, offset = path[len("/query/") :].rpartition("-")
            if locator not in self._locators:
                raise Refused(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
            return 200, self.batch(locator, self._locators[locator], int(offset))
        if path == "/composite/sobjects" and seen.method in {"POST", "PATCH"}:
            return 200, self.save(seen.method, json.loads(seen.body or "{}"))
        return 404, errors("NOT_FOUND", "The requested resource does not exist")

    def contact_fields(self) -> dict[str, str]:
        fields = {**STANDARD_FIELDS, **self.custom_fields}
        if self.country_picklists:
            fields["MailingCountryCode"] = "picklist"
        return fields

    def describe(self) -> dict[str, Any]:
        return {
            "name": "Contact",
            "queryable": True,
            "createable": True,
            "updateable": True,
            "fields": [
                {"name": name, "type": kind, "createable": name not in READ_ONLY, "updateable": name not in READ_ONLY}
                for name, kind in self.contact_fields().items()
            ],
        }

    def query(self, soql: str) -> dict[str, Any]:
        match = QUERY.match(soql.strip())
        if not match:
            raise Refused(400, "MALFORMED_QUERY", "unexpected query")
        sobject = match["object"]
        if sobject == "Contact":
            rows, known = [dict(c) for c in self.contacts.values()], set(self.contact_fields())
        elif sobject == "CampaignMember":
            rows = [{**m, "Campaign.Name": self.campaigns[m["CampaignId"]]} for m in self.members]
            known = MEMBER_FIELDS
        else:
            raise Refused(400, "INVALID_TYPE", f"sObject type '{sobject}' is not supported.")
        selected = [f.strip() for f in match["fields"].split(",")]
        counting = selected == ["COUNT()"]
        for name in [] if counting else selected:
            if name not in known:
                raise Refused(400, "INVALID_FIELD", f"No such column '{name}' on entity '{sobject}'.")
        if match["where"]:
            predicate = Where(match["where"], known).predicate
            rows = [row for row in rows if predicate(row)]
        for name in reversed((match["order"] or "").split(", ") if match["order"] else []):
            rows.sort(key=lambda row, name=name: (row.get(name) is not None, comparable(name, row.get(name))))
        if match["limit"]:
            rows = rows[: int(match["limit"])]
        if counting:
            return {"totalSize": len(rows), "done": True, "records": []}
        records = [self.project(sobject, row, selected) for row in rows]
        locator = f"01gFAKE{len(self._locators) + 1:08d}"
        self._locators[locator] = records
        return self.batch(locator, records, 0)

    def batch(self, locator: str, records: list[dict[str, Any]], offset: int) -> dict[str, Any]:
        end = offset + self.page_size
        body: dict[str, Any] = {"totalSize": len(records), "done": end >= len(records), "records": records[offset:end]}
        if end < len(records):
            body["nextRecordsUrl"] = f"{DATA}/query/{locator}-{end}"
        return body

    def project(self, sobject: str, row: dict[str, Any], selected: list[str]) -> dict[str, Any]:
        record: dict[str, Any] = {"attributes": {"type": sobject, "url": f"{DATA}/sobjects/{sobject}/{row['Id']}"}}
        for name in selected:
            if "." in name:
                relation, sub = name.split(".", 1)
                record.setdefault(relation, {"attributes": {"type": relation}})[sub] = row.get(name)
            else:
                record[name] = row.get(name)
        return record

    def save(self, method: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        records = body.get("records") or []
        if body.get("allOrNone") is not False:
            raise Refused(400, "INVALID_FIELD", "the hub always sends allOrNone=false")
        if len(records) > 200:
            raise Refused(400, "EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more than 200 records")
        known = self.contact_fields()
        for record in records:
            for name in record:
                if name not in {"attributes", "id"} and (name not in known or name in READ_ONLY):
                    raise Refused(400, "INVALID_FIELD", f"No such column '{name}' on sobject of type Contact")
        moment = sf_time(self.stamp())
        return [self.save_one(method, record, moment) for record in records]

    def save_one(self, method: str, record: dict[str, Any], moment: str) -> dict[str, Any]:
        fields = {k: v for k, v in record.items() if k not in {"attributes", "id"}}
        if (record.get("attributes") or {}).get("type") != "Contact":
            return refused("INVALID_TYPE", "The hub writes Contacts only", [])
        if method == "PATCH":
            contact = self.contacts.get(str(record.get("id") or ""))
            if contact is None:
                return refused("ENTITY_IS_DELETED", "entity is deleted", [])
            email = str(fields.get("Email") or contact.get("Email") or "")
        else:
            if record.get("id"):
                return refused("INVALID_FIELD_FOR_INSERT_UPDATE", "cannot specify Id in an insert call", ["Id"])
            email = str(fields.get("Email") or "")
            if not str(fields.get("LastName") or "").strip():
                return refused("REQUIRED_FIELD_MISSING", "Required fields are missing: [LastName]", ["LastName"])
        if email and "@" not in email:
            return refused("INVALID_EMAIL_ADDRESS", f"Email: invalid email address: {email}", ["Email"])
        if email.lower() in self.refusals:
            code, message = self.refusals[email.lower()]
            return refused(code, message, [])
        if method == "POST":
            contact = {"Id": self.new_id("003"), "HasOptedOutOfEmail": False, "CreatedDate": moment}
            self.contacts[contact["Id"]] = contact
        contact.update(fields, LastModifiedDate=moment)
        return {"id": contact["Id"], "success": True, "errors": []}


def refused(code: str, message: str, fields: list[str]) -> dict[str, Any]:
    return {"success": False, "errors": [{"statusCode": code, "message": message, "fields": fields}]}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeSalesforce


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        seen = Seen(self.command, parts.path, dict(parse_qsl(parts.query)), body, dict(self.headers.items()))
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, answer, late = self.server.fake.answer(seen, headers)
        if late:
            time.sleep(late)
        payload = json.dumps(answer).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json;charset=UTF-8")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Sforce-Limit-Info", "api-usage=10/15000")
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (a timeout test)

    do_POST = do_PATCH = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass
