"""HubSpot (CRM API v3): contacts pulled in as customers, the hub's customers pushed out as contacts.

Authentication, tokens and HubSpot's error words are in `hubspot_client`; the field mapping in
`hubspot_mapping`; the push in `hubspot_push`.

Pulling contacts (`customers`)
    The CRM search (`POST /crm/v3/objects/contacts/search`), 100 contacts a query, filtered on
    `lastmodifieddate` and sorted by it, ascending. HubSpot's search pages with `after`, an offset,
    and refuses to go past 10,000 results of one query. The connector never pages by offset: each
    query starts again from the last `lastmodifieddate` read (keyset paging), so the 10,000 cap is
    never reached however many contacts changed, and a contact that changes while a sweep pages
    (and so moves to the end of the order) cannot shift an unread contact into a page already read.
    - The contacts of the last time read are re-read by the next query (it asks from that time on,
      inclusive) and skipped by id (`seen` in the cursor). When more contacts than a page share one
      `lastmodifieddate` (an import, a workflow), they are read by `hs_object_id` instead
      (`tie_after`), then the sweep goes on after that time (`past`).
    - Only contacts modified more than `INDEX_LAG` ago are read: HubSpot's search index trails its
      writes, and a contact indexed late behind the watermark would be missed. The next sync reads
      them.
    - The cursor is `{"since": <lastmodifieddate of the last contacts committed, ISO>, "seen": [<their
      ids>]}`, or while a crowded time is read by id `{"since": …, "tie_after": <last id>}`, then
      `{"since": …, "past": true}`. A sync that stops resumes there.
    - Lists (segments) become tags: for each page, one call reads the lists its contacts are in
      (`POST /crm/v3/lists/records/memberships/batch/read`) and, for lists not seen before in the
      run, one call reads their names (`GET /crm/v3/lists/?listIds=…`). A page costs two or three
      requests. Leaving a list does not change a contact's `lastmodifieddate`, so a tag dropped in
      HubSpot is seen by the next full sync, or when the contact changes.

Pushing contacts (`contacts`): see `hubspot_push`.

Rate limits: the connection's budget (the catalogue's 9 requests a second, 90 per 10 s) stays under
a private app's 100 per 10 s; a 429 is retried after `Retry-After` or a backoff by the HTTP client.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from ..errors import BadResponse, ConfigurationError, NotFound, PermissionDenied
from ..http import Hints
from . import hubspot_client, hubspot_push
from . import hubspot_mapping as mapping
from .base import CheckResult, Connector, Page
from .hubspot_client import HINT_PRIVATE_APP, HINT_RECONNECT, TOKEN_PATH, HubSpotApi, HubSpotTokens, auth_mode

if TYPE_CHECKING:
    from commerce.exports import Contact
    from commerce.records import Record

    from ..crm import PushOutcome

SEARCH_PATH = "/crm/v3/objects/contacts/search"
MEMBERSHIPS_PATH = "/crm/v3/lists/records/memberships/batch/read"
LISTS_PATH = "/crm/v3/lists/"
LIST_SEARCH_PATH = "/crm/v3/lists/search"
CONTACT_TYPE = "0-1"  # HubSpot's object type id for contacts
PAGE_SIZE = 100
INDEX_LAG = timedelta(minutes=2)
MODIFIED = "lastmodifieddate"


def now() -> datetime:
    return datetime.now(UTC)  # looked up when called, so a test can move the clock


class HubSpotConnector(Connector):
    streams = ("customers",)
    push_streams = ("contacts",)
    push_batch_size = 100  # HubSpot's limit for a batch call
    # `read` touches the network and the cache (OAuth tokens) only, so the engine reads a page ahead.
    reads_in_background = True

    def __init__(self, connection, *, client=None) -> None:
        super().__init__(connection, client=client)
        self._list_names: dict[str, str] = {}
        self._properties_ready = False

    def hints(self) -> Hints:
        try:
            oauth = auth_mode(self.credentials) == "oauth"
        except ConfigurationError:
            oauth = False
        hubspot_side = "HubSpot failed on its side; the sync tries again later."
        return Hints(
            by_status={
                401: HINT_RECONNECT if oauth else HINT_PRIVATE_APP,
                403: "The token lacks a scope the hub needs: "
                + ", ".join(self.connection.spec.scopes)
                + ("; add it to the app and connect again." if oauth else "; add it to the private app."),
                404: "HubSpot does not know this address: check the connection's base URL, if it has one.",
                429: "HubSpot's request limit for the app is spent for now; the sync slows down and retries.",
                500: hubspot_side,
                502: hubspot_side,
                503: hubspot_side,
                504: hubspot_side,
            },
            timeout="HubSpot did not answer in time.",
            connection="HubSpot could not be reached.",
            describe=hubspot_client.hubspot_message,
        )

    @cached_property
    def api(self) -> HubSpotApi:
        base_url = hubspot_client.api_url(self.connection.base_url or "")
        if auth_mode(self.credentials) == "oauth":
            tokens = HubSpotTokens(
                base_url + TOKEN_PATH,
                self.credential("client_id"),
                self.credential("client_secret"),
                self.credential("refresh_token"),
                self.cache_id,
                sleep=self.client.sleep,
            )
            return HubSpotApi(self.client, base_url, tokens=tokens)
        return HubSpotApi(self.client, base_url, token=self.credential("access_token"))

    # --- Check ---

    def _check(self) -> CheckResult:
        mode = auth_mode(self.credentials)
        # A wrong or revoked token (401) or one without the contacts scope (403) fails the test here.
        body = self.api.json("POST", SEARCH_PATH, json={"limit": 1, "properties": ["email"]}, retry=False)
        samples = {"customers": _int(body.get("total"))}
        granted, missing, warnings = ["crm.objects.contacts.read"], [], []
        details: dict[str, Any] = {"authentication": mode, "api": self.api.base_url}
        if self.credentials.get("hub_id"):
            details["hub_id"] = str(self.credentials["hub_id"])
        try:
            lists = self.api.json("POST", LIST_SEARCH_PATH, json={"count": 1, "offset": 0}, retry=False)
            samples["lists"] = _int(lists.get("total"))
            granted.append("crm.lists.read")
        except PermissionDenied as error:
            missing.extend(getattr(error, "scopes", None) or ["crm.lists.read"])
            warnings.append(f"The hub cannot read the contacts' lists, so it cannot pull contacts: {error.message}")
        except (BadResponse, NotFound) as error:
            warnings.append(f"The hub could not count the lists: {error.message}")
        try:
            self.api.send("GET", f"{hubspot_push.PROPERTIES_PATH}/hub_orders_count", retry=False)
            details["custom_properties"] = "present"
            granted.append("crm.schemas.contacts.read")
        except NotFound:
            details["custom_properties"] = "created by the first push"
            granted.append("crm.schemas.contacts.read")
        except PermissionDenied as error:
            missing.extend(getattr(error, "scopes", None) or ["crm.schemas.contacts.read"])
            warnings.append(f"The hub cannot read contact properties, so it cannot push contacts: {error.message}")
        warnings.append(
            "Pushing contacts also needs crm.objects.contacts.write and crm.schemas.contacts.write, which a test "
            "cannot check without writing: HubSpot says so on the first push if one is missing."
        )
        return CheckResult(
            ok=True,
            message=f"Connected to HubSpot ({'OAuth' if mode == 'oauth' else 'private app'}).",
            granted=granted,
            missing=missing,
            samples=samples,
            warnings=warnings,
            details=details,
        )

    # --- Pull ---

    def read(self, stream: str, cursor: dict[str, Any] | None, *, full: bool = False) -> Iterator[Page]:
        if stream not in self.streams:
            raise ConfigurationError(f"HubSpot has no “{stream}” stream to read.", hint="Streams: customers.")
        state = {} if full or not cursor else dict(cursor)
        since = mapping.hubspot_time(state.get("since"))
        seen = {str(i) for i in state.get("seen") or []}
        past = bool(state.get("past"))
        tie_after = str(state["tie_after"]) if since and state.get("tie_after") else None
        total = None
        while True:
            if tie_after is not None:
                # More contacts than a page share `since`: read them by id, then go on after it.
                items, more, _ = self._search(self._crowd_filters(since, tie_after), "hs_object_id")
                if items and more:
                    tie_after = str(max(int(item["id"]) for item in items))
                    yield Page(self._records(items), {"since": mapping.iso(since), "tie_after": tie_after}, total)
                    continue
                tie_after, seen, past = None, set(), True
                yield Page(self._records(items), {"since": mapping.iso(since), "past": True}, total)
                continue
            items, more, found = self._search(self._window_filters(since, past), MODIFIED)
            total = found if total is None else total
            stamped = [(mapping.modified_at(item), item) for item in items]
            times = [moment for moment, _ in stamped if moment is not None]
            if more and since is not None and not past and times and max(times) == since:
                tie_after = "0"  # a whole page at `since`: the next query would bring the same page
                continue
            fresh = [item for moment, item in stamped if moment != since or str(item["id"]) not in seen]
            if times:
                last = max(times)
                at_last = {str(item["id"]) for moment, item in stamped if moment == last}
                seen = seen | at_last if last == since and not past else at_last
                since, past = last, False
            position = {"since": mapping.iso(since), "seen": sorted(seen)} if since else {}
            if past:
                position = {"since": mapping.iso(since), "past": True}
            yield Page(self._records(fresh), position, total)
            if not more:
                return

    def parse(self, stream: str, payload: Any) -> Record:
        return mapping.map_contact(payload)

    def _window_filters(self, since: datetime | None, past: bool) -> list[dict[str, str]]:
        until = now() - INDEX_LAG
        filters = [{"propertyName": MODIFIED, "operator": "LTE", "value": str(mapping.millis(until))}]
        if since is not None:
            operator = "GT" if past else "GTE"
            filters.insert(0, {"propertyName": MODIFIED, "operator": operator, "value": str(mapping.millis(since))})
        return filters

    @staticmethod
    def _crowd_filters(since: datetime, after_id: str) -> list[dict[str, str]]:
        moment = str(mapping.millis(since))
        return [
            {"propertyName": MODIFIED, "operator": "GTE", "value": moment},
            {"propertyName": MODIFIED, "operator": "LTE", "value": moment},
            {"propertyName": "hs_object_id", "operator": "GT", "value": after_id},
        ]

    def _search(self, filters: list[dict[str, str]], sort: str) -> tuple[list[dict[str, Any]], bool, int | None]:
        """One search query from the start (never an `after` offset): its contacts, whether there are
        more, and how many match."""
        body = self.api.json(
            "POST",
            SEARCH_PATH,
            json={
                "filterGroups": [{"filters": filters}],
                "sorts": [{"propertyName": sort, "direction": "ASCENDING"}],
                "properties": list(mapping.PULLED_PROPERTIES),
                "limit": PAGE_SIZE,
            },
        )
        if not isinstance(body, dict) or not isinstance(body.get("results"), list):
            raise BadResponse("HubSpot's search answered without a list of results.")
        items = [item for item in body["results"] if isinstance(item, dict) and item.get("id") is not None]
        more = bool(((body.get("paging") or {}).get("next") or {}).get("after")) and len(items) > 0
        return items, more, _int(body.get("total")) if body.get("total") is not None else None

    def _records(self, items: list[dict[str, Any]]) -> list:
        return self.parse_all("customers", self._with_lists(items)) if items else []

    def _with_lists(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The contacts with the names of the lists each is in, and when it was last added to one."""
        try:
            body = self.api.json(
                "POST",
                MEMBERSHIPS_PATH,
                json={"inputs": [{"objectTypeId": CONTACT_TYPE, "recordId": str(item["id"])} for item in items]},
            )
        except NotFound:
            body = {}  # the path is fixed: a 404 can only mean that none of them is in a list
        memberships: dict[str, list[dict[str, Any]]] = {}
        for result in (body.get("results") if isinstance(body, dict) else None) or []:
            if isinstance(result, dict):
                found = [m for m in result.get("recordListMemberships") or [] if isinstance(m, dict)]
                memberships[str(result.get("recordId"))] = found
        self._learn_list_names({str(m.get("listId")) for found in memberships.values() for m in found})
        out = []
        for item in items:
            found = memberships.get(str(item["id"]), [])
            names = {self._list_names.get(str(m.get("listId")), "") for m in found} - {""}
            added = [t for t in (mapping.hubspot_time(m.get("lastAddedTimestamp")) for m in found) if t]
            hub = {"lists": sorted(names), "listed_at": mapping.iso(max(added)) if added else None}
            out.append({**item, mapping.HUB: hub})
        return out

    def _learn_list_names(self, list_ids: set[str]) -> None:
        unknown = sorted(list_ids - set(self._list_names))
        for start in range(0, len(unknown), 100):
            chunk = unknown[start : start + 100]
            body = self.api.json("GET", LISTS_PATH, params={"listIds": chunk})
            for item in (body.get("lists") if isinstance(body, dict) else None) or []:
                if isinstance(item, dict):
                    self._list_names[str(item.get("listId"))] = str(item.get("name") or "")
            for list_id in chunk:
                self._list_names.setdefault(list_id, "")  # deleted since: no tag, and not asked again

    # --- Push ---

    def push(self, stream: str, contacts: list[Contact]) -> PushOutcome:
        if stream not in self.push_streams:
            raise ConfigurationError(f"HubSpot takes no “{stream}” from the hub.", hint="Push streams: contacts.")
        if not self._properties_ready:
            hubspot_push.ensure_properties(self.api)
            self._properties_ready = True
        return hubspot_push.push_contacts(self.api, contacts)


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0
