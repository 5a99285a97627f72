"""A local fake of the Mailchimp Marketing API 3.0 for the provider's tests: real HTTP on loopback,
in-memory state, answers shaped like Mailchimp's documented examples.

It holds audiences (lists) with members keyed by subscriber hash (the MD5 of the lower-case
address), static segments, campaigns with their content, the send action and reports. Every request
needs HTTP Basic auth with the API key as password (any user name), or it is answered 401 with
Mailchimp's problem document ({type, title, status, detail, instance}).

Where Mailchimp's documentation leaves a behaviour open, the fake takes the one the provider must
survive: the batch upsert (`POST /lists/{id}` with `update_existing`) applies the `status` sent to
existing members, so an unsubscribed member sent `subscribed` is re-subscribed. `answer()` scripts a
status (429, 500, …) or a delay for the next matching requests; `calls()` says what was asked.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

API_KEY = "0123456789abcdef0123456789abcdef-us21"
AUDIENCE = "b1a2c3d4e5"
STATUSES = ("subscribed", "unsubscribed", "cleaned", "pending", "transactional")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
PROBLEMS = {
    400: "Invalid Resource",
    401: "API Key Invalid",
    404: "Resource Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
DETAILS = {
    401: "Your API key may be invalid, or you've attempted to access the wrong datacenter.",
    404: "The requested resource could not be found.",
    429: "You have exceeded the limit of 10 simultaneous connections.",
    500: "An unexpected internal error has occurred. Please contact Support for more information.",
    503: "This service is temporarily unavailable.",
}


def subscriber_hash(email: str) -> str:
    return hashlib.md5(email.lower().encode()).hexdigest()  # noqa: S324 (Mailchimp's member id)


def problem(status: int, detail: str = "", **extra: Any) -> dict[str, Any]:
    return {
        "type": "https://mailchimp.com/developer/marketing/docs/errors/",
        "title": PROBLEMS.get(status, "Bad Request"),
        "status": status,
        "detail": detail or DETAILS.get(status, ""),
        "instance": str(uuid.uuid4()),
        **extra,
    }


@dataclass
class Call:
    method: str
    path: str  # without /3.0
    query: dict[str, str]
    body: Any


@dataclass
class Scripted:
    method: str
    path: re.Pattern[str]
    status: int | None  # None: after the delay, answer as usual
    times: int
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class FakeMailchimp:
    def __init__(self, api_key: str = API_KEY, audience_id: str = AUDIENCE) -> None:
        self.api_key = api_key
        self.lock = threading.Lock()
        self.lists: dict[str, dict[str, Any]] = {
            audience_id: {
                "id": audience_id,
                "name": "Alpha Goods customers",
                "campaign_defaults": {
                    "from_name": "Alpha Goods",
                    "from_email": "news@alpha.example",
                    "subject": "",
                    "language": "en",
                },
                "members": {},
                "segments": {},
            }
        }
        self.campaigns: dict[str, dict[str, Any]] = {}
        self.reports: dict[str, dict[str, Any]] = {}
        self.received: list[Call] = []
        self.scripted: list[Scripted] = []
        self.sent: dict[str, list[str]] = {}  # campaign id → the addresses it went to

    # --- For tests ---

    @contextlib.contextmanager
    def running(self) -> Iterator[str]:
        """Serve on loopback; yields the base URL (the connection's base_url). Like `tests.prism.serve`,
        but polling for shutdown every 20 ms rather than 500, which every test would wait for."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake.handle(self)

            do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()

    def add_member(self, email: str, status: str = "subscribed", *, last_changed: str = "", **merge: str) -> dict:
        audience = self.lists[AUDIENCE]
        member = self._new_member(AUDIENCE, email, status, merge)
        if last_changed:
            member["last_changed"] = last_changed
        audience["members"][member["id"]] = member
        return member

    def member(self, email: str, audience_id: str = AUDIENCE) -> dict[str, Any] | None:
        return self.lists[audience_id]["members"].get(subscriber_hash(email))

    def answer(
        self,
        method: str,
        path: str,
        status: int | None = None,
        *,
        times: int = 1,
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
    ) -> None:
        """Answer the next `times` requests whose path (without /3.0) matches `path` fully."""
        self.scripted.append(Scripted(method, re.compile(path), status, times, headers or {}, delay))

    def calls(self, method: str, path: str) -> list[Call]:
        pattern = re.compile(path)
        return [c for c in self.received if c.method == method and pattern.fullmatch(c.path)]

    # --- HTTP ---

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(request.path)
        path = parts.path.removeprefix("/3.0")
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        with self.lock:
            self.received.append(Call(request.command, path, query, body))
            script = self._script(request.command, path)
        headers: dict[str, str] = {}
        if script is not None:
            time.sleep(script.delay)
            headers = script.headers
        if script is not None and script.status is not None:
            status, payload = script.status, problem(script.status)
        elif not parts.path.startswith("/3.0/"):
            status, payload = 404, problem(404)
        elif not self._authorised(request.headers.get("Authorization", "")):
            status, payload = 401, problem(401)
        else:
            with self.lock:
                status, payload = self.route(request.command, path, query, body)
        self._write(request, status, payload, headers)

    def _script(self, method: str, path: str) -> Scripted | None:
        for script in self.scripted:
            if script.times > 0 and script.method == method and script.path.fullmatch(path):
                script.times -= 1
                return script
        return None

    def _authorised(self, header: str) -> bool:
        kind, _, encoded = header.partition(" ")
        if kind.lower() != "basic":
            return False
        try:
            _, _, password = base64.b64decode(encoded).decode().partition(":")
        except ValueError:
            return False
        return password == self.api_key

    @staticmethod
    def _write(request: BaseHTTPRequestHandler, status: int, payload: Any, headers: dict[str, str]) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        kind = "application/problem+json" if status >= 400 else "application/json"
        try:
            request.send_response(status)
            request.send_header("Content-Type", f"{kind}; charset=utf-8")
            request.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                request.send_header(name, value)
            request.end_headers()
            request.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (a timeout test): what was done stays done

    # --- Routes ---

    def route(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        routes = [
            ("GET", r"/ping", lambda: (200, {"health_status": "Everything's Chimpy!"})),
            ("GET", r"/lists/(\w+)", self.get_list),
            ("POST", r"/lists/(\w+)", lambda list_id: self.batch_members(list_id, body)),
            ("GET", r"/lists/(\w+)/members", lambda list_id: self.list_members(list_id, query)),
            ("POST", r"/lists/(\w+)/segments", lambda list_id: self.create_segment(list_id, body)),
            ("POST", r"/lists/(\w+)/segments/(\d+)", lambda list_id, sid: self.segment_members(list_id, sid, body)),
            ("DELETE", r"/lists/(\w+)/segments/(\d+)", self.delete_segment),
            ("POST", r"/campaigns", lambda: self.create_campaign(body)),
            ("PUT", r"/campaigns/(\w+)/content", lambda campaign_id: self.set_content(campaign_id, body)),
            ("POST", r"/campaigns/(\w+)/actions/send", self.send),
            ("GET", r"/reports/(\w+)", self.report),
        ]
        for verb, pattern, action in routes:
            found = re.fullmatch(pattern, path)
            if verb == method and found:
                return action(*found.groups())
        return 404, problem(404)

    def _audience(self, list_id: str) -> dict[str, Any] | None:
        return self.lists.get(list_id)

    def get_list(self, list_id: str) -> tuple[int, Any]:
        audience = self._audience(list_id)
        if audience is None:
            return 404, problem(404)
        subscribed = sum(1 for m in audience["members"].values() if m["status"] == "subscribed")
        return 200, {
            "id": list_id,
            "web_id": 123,
            "name": audience["name"],
            "campaign_defaults": audience["campaign_defaults"],
            "stats": {"member_count": subscribed},
        }

    def batch_members(self, list_id: str, body: dict[str, Any]) -> tuple[int, Any]:
        audience = self._audience(list_id)
        if audience is None:
            return 404, problem(404)
        members = body.get("members") or []
        if len(members) > 500:
            return 400, problem(
                400,
                "The resource submitted could not be validated. For field-specific details, see the 'errors' array.",
                errors=[{"field": "members", "message": "Schema describes array, maximum 500 items"}],
            )
        created, updated, errors = [], [], []
        for item in members:
            email = str(item.get("email_address") or "")
            key = subscriber_hash(email)
            status = item.get("status")
            existing = audience["members"].get(key)
            if not EMAIL.fullmatch(email):
                errors.append(self._member_error(email, f"{email} looks fake or invalid, please enter a real email."))
            elif existing is not None and not body.get("update_existing"):
                said = f"{email} is already a list member. Use PUT to insert or update list members."
                errors.append(self._member_error(email, said, "ERROR_CONTACT_EXISTS"))
            elif status not in (*STATUSES, None) or (existing is None and status is None):
                errors.append(self._member_error(email, "Your merge fields were invalid: status is required."))
            elif existing is None:
                member = self._new_member(list_id, email, status, item.get("merge_fields") or {}, item.get("tags"))
                audience["members"][key] = member
                created.append(member)
            else:
                existing["merge_fields"].update(item.get("merge_fields") or {})
                existing["tags"] += [{"id": 1, "name": t} for t in item.get("tags") or []]
                if status is not None:  # update_existing changes the subscription status too
                    existing["status"] = status
                existing["last_changed"] = _now()
                updated.append(existing)
        return 200, {
            "new_members": created,
            "updated_members": updated,
            "errors": errors,
            "total_created": len(created),
            "total_updated": len(updated),
            "error_count": len(errors),
            "_links": [],
        }

    @staticmethod
    def _member_error(email: str, error: str, code: str = "ERROR_GENERIC") -> dict[str, str]:
        return {"email_address": email, "error": error, "error_code": code, "field": "", "field_message": ""}

    def list_members(self, list_id: str, query: dict[str, str]) -> tuple[int, Any]:
        audience = self._audience(list_id)
        if audience is None:
            return 404, problem(404)
        status = query.get("status")
        if "unsubscribed_since" in query and status != "unsubscribed":
            return 400, problem(400, "unsubscribed_since can only be used with status=unsubscribed.")
        members = [m for m in audience["members"].values() if status is None or m["status"] == status]
        for name, key in (("unsubscribed_since", "last_changed"), ("since_last_changed", "last_changed")):
            if name in query:
                since = datetime.fromisoformat(query[name])
                members = [m for m in members if datetime.fromisoformat(m[key]) > since]
        count = min(int(query.get("count", 10)), 1000)
        offset = int(query.get("offset", 0))
        return 200, {
            "members": members[offset : offset + count],
            "list_id": list_id,
            "total_items": len(members),
            "_links": [],
        }

    def create_segment(self, list_id: str, body: dict[str, Any]) -> tuple[int, Any]:
        audience = self._audience(list_id)
        if audience is None:
            return 404, problem(404)
        segment_id = 10_000 + len(audience["segments"]) + 1
        held = audience["members"]
        keys = {subscriber_hash(e) for e in body.get("static_segment") or [] if subscriber_hash(e) in held}
        audience["segments"][segment_id] = {"id": segment_id, "name": body.get("name"), "members": keys}
        return 200, self._segment(list_id, segment_id)

    def _segment(self, list_id: str, segment_id: int) -> dict[str, Any]:
        segment = self.lists[list_id]["segments"][segment_id]
        return {
            "id": segment_id,
            "name": segment["name"],
            "member_count": len(segment["members"]),
            "type": "static",
            "list_id": list_id,
            "options": {},
        }

    def segment_members(self, list_id: str, segment_id: str, body: dict[str, Any]) -> tuple[int, Any]:
        audience = self._audience(list_id)
        segment = audience and audience["segments"].get(int(segment_id))
        if not segment:
            return 404, problem(404)
        to_add = body.get("members_to_add") or []
        if len(to_add) > 500:
            return 400, problem(400, "members_to_add may hold 500 email addresses at most.")
        added, missing = [], []
        for email in to_add:
            member = audience["members"].get(subscriber_hash(email))
            if member is None:
                missing.append(email)
            else:
                segment["members"].add(member["id"])
                added.append(member)
        errors = [{"email_addresses": missing, "error": "Email addresses not found in list"}] if missing else []
        return 200, {
            "members_added": added,
            "members_removed": [],
            "errors": errors,
            "total_added": len(added),
            "total_removed": 0,
            "error_count": len(missing),
            "_links": [],
        }

    def delete_segment(self, list_id: str, segment_id: str) -> tuple[int, Any]:
        audience = self._audience(list_id)
        if not audience or audience["segments"].pop(int(segment_id), None) is None:
            return 404, problem(404)
        return 204, None

    def create_campaign(self, body: dict[str, Any]) -> tuple[int, Any]:
        recipients = body.get("recipients") or {}
        audience = self._audience(str(recipients.get("list_id")))
        segment_id = (recipients.get("segment_opts") or {}).get("saved_segment_id")
        if body.get("type") not in ("regular", "plaintext") or audience is None:
            return 400, problem(400, "The resource submitted could not be validated.")
        if segment_id is not None and segment_id not in audience["segments"]:
            return 400, problem(400, "The segment does not exist.")
        campaign_id = uuid.uuid4().hex[:10]
        self.campaigns[campaign_id] = {
            "id": campaign_id,
            "web_id": len(self.campaigns) + 1,
            "type": body["type"],
            "create_time": _now(),
            "status": "save",
            "emails_sent": 0,
            "recipients": recipients,
            "settings": body.get("settings") or {},
            "content": {},
        }
        return 200, {key: value for key, value in self.campaigns[campaign_id].items() if key != "content"}

    def set_content(self, campaign_id: str, body: dict[str, Any]) -> tuple[int, Any]:
        campaign = self.campaigns.get(campaign_id)
        if campaign is None:
            return 404, problem(404)
        campaign["content"] = {"html": body.get("html"), "plain_text": body.get("plain_text")}
        return 200, {**campaign["content"], "_links": []}

    def send(self, campaign_id: str) -> tuple[int, Any]:
        campaign = self.campaigns.get(campaign_id)
        if campaign is None:
            return 404, problem(404)
        settings = campaign["settings"]
        if campaign["status"] != "save":
            return 400, problem(400, "This campaign has already been sent.", title="Bad Request")
        if not campaign["content"].get("html") or not all(
            settings.get(k) for k in ("subject_line", "from_name", "reply_to")
        ):
            return 400, problem(400, "Your Campaign is not ready to send.", title="Bad Request")
        audience = self.lists[campaign["recipients"]["list_id"]]
        segment_id = (campaign["recipients"].get("segment_opts") or {}).get("saved_segment_id")
        keys = audience["segments"][segment_id]["members"] if segment_id else set(audience["members"])
        members = [audience["members"][key] for key in keys]
        self.sent[campaign_id] = sorted(m["email_address"] for m in members if m["status"] == "subscribed")
        campaign["status"] = "sent"
        campaign["emails_sent"] = len(self.sent[campaign_id])
        return 204, None

    def report(self, campaign_id: str) -> tuple[int, Any]:
        if campaign_id in self.reports:
            return 200, self.reports[campaign_id]
        campaign = self.campaigns.get(campaign_id)
        if campaign is None or campaign["status"] != "sent":
            return 404, problem(404)
        return 200, {
            "id": campaign_id,
            "campaign_title": campaign["settings"].get("title"),
            "type": "regular",
            "emails_sent": campaign["emails_sent"],
            "abuse_reports": 0,
            "unsubscribed": 0,
            "bounces": {"hard_bounces": 0, "soft_bounces": 0, "syntax_errors": 0},
            "opens": {"opens_total": 0, "unique_opens": 0, "open_rate": 0},
            "clicks": {"clicks_total": 0, "unique_clicks": 0, "unique_subscriber_clicks": 0, "click_rate": 0},
        }

    def _new_member(
        self, list_id: str, email: str, status: str, merge: dict[str, str], tags: list[str] | None = None
    ) -> dict[str, Any]:
        now = _now()
        return {
            "id": subscriber_hash(email),
            "email_address": email,
            "unique_email_id": uuid.uuid4().hex[:10],
            "status": status,
            "merge_fields": {"FNAME": "", "LNAME": "", "PHONE": "", **merge},
            "tags": [{"id": 1, "name": t} for t in tags or []],
            "timestamp_opt": now,
            "last_changed": now,
            "list_id": list_id,
        }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
