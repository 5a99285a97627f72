"""The HubSpot connector against a local fake HubSpot (tests/integrations/fake_hubspot.py), through the
real HTTP client: the connection test, contacts pulled in pages with their lists as tags, the hub's
customers pushed as contacts by email, OAuth tokens, and whole syncs through the engine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest

from commerce.exports import Contact
from commerce.models import Customer
from integrations.connectors import hubspot as hubspot_module
from integrations.connectors.hubspot import HubSpotConnector
from integrations.errors import AuthError, BadResponse, ConfigurationError, PermissionDenied
from integrations.http import HttpClient, RateBudget
from integrations.models import SyncStatus
from integrations.oauth.hubspot import HubSpotOAuth
from integrations.sync import run_sync
from tests.integrations.fake_hubspot import (
    ALL_SCOPES,
    CLIENT_ID,
    CLIENT_SECRET,
    HUB_ID,
    PRIVATE_TOKEN,
    REFRESH_TOKEN,
    FakeHubSpot,
)

pytestmark = pytest.mark.django_db

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
SEARCH = "/crm/v3/objects/contacts/search"
UPSERT = "/crm/v3/objects/contacts/batch/upsert"
PROPERTIES = "/crm/v3/properties/contacts"
TOKEN = "/oauth/v1/token"
CALLBACK = "https://hub.example.com/integrations/oauth/hubspot/callback"
OAUTH = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "refresh_token": REFRESH_TOKEN}


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def fake(settings):
    settings.INTEGRATIONS_ALLOW_PRIVATE_URLS = True
    with FakeHubSpot() as hubspot:
        yield hubspot


@pytest.fixture
def crm(tenant_a, make_connection, fake):
    return make_connection(tenant_a, "hubspot", credentials={"access_token": PRIVATE_TOKEN}, base_url=fake.url)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def page_size(monkeypatch):
    def use(size: int) -> None:
        monkeypatch.setattr(hubspot_module, "PAGE_SIZE", size)

    return use


def connector(connection, sleeps: Sleeps | None = None) -> HubSpotConnector:
    # A roomy budget, so only a 429's pause makes it wait; the sleeps do not move the clock.
    sleeps = Sleeps() if sleeps is None else sleeps
    budget = RateBudget(f"connection:{connection.pk}", 1000.0, 1000, sleep=sleeps)
    client = HttpClient(budget=budget, sleep=sleeps, allow_private=True, timeout=(2.0, 5.0))
    return HubSpotConnector(connection, client=client)


def read_all(hubspot: HubSpotConnector, cursor=None, *, full: bool = False):
    pages = list(hubspot.read("customers", cursor, full=full))
    return [r for page in pages for r in page.records], pages


def contact(email: str, **kwargs) -> Contact:
    return Contact(email=email, currency="USD", **kwargs)


# --- The connection test ---------------------------------------------------------------------------


def test_the_test_passes_with_a_private_app_token_and_counts_contacts_and_lists(crm, fake):
    ann = fake.add_contact("ann@example.com", modified=T0)
    fake.add_contact("bob@example.com", modified=T0)
    fake.add_list("VIP", [ann])

    result = connector(crm).check()

    assert result.ok, result.message
    assert result.message == "Connected to HubSpot (private app)."
    assert result.samples == {"customers": 2, "lists": 1}
    assert result.missing == []
    assert result.details["custom_properties"] == "created by the first push"
    assert fake.seen(SEARCH)[0].headers["authorization"] == f"Bearer {PRIVATE_TOKEN}"


def test_a_revoked_token_fails_the_test_at_once_with_what_to_do(crm, fake):
    crm.credentials = {"access_token": "pat-na1-revoked"}

    result = connector(crm).check()

    assert not result.ok and result.error_code == "auth"
    assert "refused the private app's access token" in result.message
    assert "Private apps" in result.hint
    assert len(fake.requests) == 1  # a test never retries


def test_a_token_without_the_contacts_scope_fails_the_test_naming_it(tenant_a, make_connection, settings):
    settings.INTEGRATIONS_ALLOW_PRIVATE_URLS = True
    with FakeHubSpot(scopes=ALL_SCOPES - {"crm.objects.contacts.read"}) as fake:
        crm = make_connection(tenant_a, "hubspot", credentials={"access_token": PRIVATE_TOKEN}, base_url=fake.url)
        result = connector(crm).check()

    assert not result.ok and result.error_code == "permission"
    assert "crm.objects.contacts.read" in result.message
    assert "Private apps" in result.hint


def test_a_token_without_the_lists_scope_passes_with_the_scope_named_missing(tenant_a, make_connection, settings):
    settings.INTEGRATIONS_ALLOW_PRIVATE_URLS = True
    with FakeHubSpot(scopes=ALL_SCOPES - {"crm.lists.read"}) as fake:
        crm = make_connection(tenant_a, "hubspot", credentials={"access_token": PRIVATE_TOKEN}, base_url=fake.url)
        result = connector(crm).check()

    assert result.ok
    assert result.missing == ["crm.lists.read"]
    assert any("lists" in warning for warning in result.warnings)


@pytest.mark.parametrize(
    ("credentials", "words"),
    [
        ({}, "neither a HubSpot private app access token nor OAuth credentials"),
        ({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}, "its refresh token is missing"),
        ({"refresh_token": REFRESH_TOKEN}, "client ID, client secret is missing"),
    ],
)
def test_a_connection_needs_a_token_or_the_whole_oauth_trio(crm, fake, credentials, words):
    crm.credentials = credentials

    result = connector(crm).check()

    assert not result.ok and result.error_code == "configuration"
    assert words in result.message
    assert fake.requests == []


# --- Pulling contacts -----------------------------------------------------------------------------------


def test_contacts_are_pulled_in_pages_with_their_lists_as_tags(crm, fake, page_size):
    page_size(2)
    ann = fake.add_contact("ann@example.com", modified=T0, firstname="Ann", lastname="Lee", country="US")
    bob = fake.add_contact("bob@example.com", modified=T0 + timedelta(minutes=1), hs_country_region_code="fr")
    texted = fake.add_contact("", modified=T0 + timedelta(minutes=2), phone="+15550100", country="United States")
    fake.add_list("VIP", [ann, bob])
    fake.add_list("Newsletter", [ann])

    run = run_sync(crm, ["customers"], connector=connector(crm))

    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert run.counts["customers"]["created"] == 3
    rows = {c.external_id: c for c in Customer.objects.for_tenant(crm.tenant).filter(connection=crm)}
    assert rows[ann].tags == ["hubspot-list:Newsletter", "hubspot-list:VIP"]
    assert (rows[ann].first_name, rows[ann].last_name, rows[ann].country) == ("Ann", "Lee", "US")
    assert rows[bob].tags == ["hubspot-list:VIP"] and rows[bob].country == "FR"
    # No email: it still lands, to be texted; a country HubSpot keeps as a name is not a code.
    assert rows[texted].email == "" and rows[texted].phone == "+15550100" and rows[texted].country == ""
    assert len(fake.seen(SEARCH)) == 2
    assert crm.cursors["customers"]["since"] == "2025-03-01T09:02:00.000Z"


def test_the_next_sync_reads_only_what_changed_since(crm, fake, page_size):
    page_size(2)
    ann = fake.add_contact("ann@example.com", modified=T0)
    fake.add_contact("bob@example.com", modified=T0 + timedelta(minutes=1))
    fake.add_contact("cy@example.com", modified=T0 + timedelta(minutes=2))
    run_sync(crm, ["customers"], connector=connector(crm))
    fake.contacts[ann]["properties"] |= {"firstname": "Annie", "lastmodifieddate": "2025-03-02T10:00:00.000Z"}
    fake.add_contact("dee@example.com", modified=T0 + timedelta(days=1, hours=2))
    before = len(fake.seen(SEARCH))

    run = run_sync(crm, ["customers"], connector=connector(crm))

    assert run.counts["customers"] == {"created": 1, "updated": 1, "unchanged": 0, "failed": 0}
    first = fake.seen(SEARCH)[before].body["filterGroups"][0]["filters"][0]
    assert first == {"propertyName": "lastmodifieddate", "operator": "GTE", "value": str(1740819720000)}
    assert Customer.objects.get(connection=crm, external_id=ann).first_name == "Annie"


def test_a_pull_that_stops_resumes_after_its_last_committed_page(crm, fake, page_size):
    page_size(2)
    ids = [fake.add_contact(f"c{n}@example.com", modified=T0 + timedelta(minutes=n)) for n in range(5)]
    hubspot = connector(crm)
    pages = hubspot.read("customers", None)
    first = next(pages)
    pages.close()  # the worker died after committing the first page

    records, _ = read_all(connector(crm), first.cursor)

    assert [r.external_id for r in first.records] == ids[:2]
    assert [r.external_id for r in records] == ids[2:]


def test_a_full_sync_reads_from_the_beginning_whatever_the_cursor(crm, fake):
    fake.add_contact("ann@example.com", modified=T0)
    cursor = {"since": "2025-03-02T00:00:00.000Z", "seen": []}

    assert read_all(connector(crm), cursor)[0] == []
    assert [r.email for r in read_all(connector(crm), cursor, full=True)[0]] == ["ann@example.com"]


def test_more_contacts_on_one_modified_time_than_a_page_are_read_by_id(crm, fake, page_size):
    page_size(3)
    crowd = [fake.add_contact(f"import{n}@example.com", modified=T0) for n in range(7)]
    later = [fake.add_contact(f"later{n}@example.com", modified=T0 + timedelta(seconds=n + 1)) for n in range(2)]

    records, pages = read_all(connector(crm))

    assert {r.external_id for r in records} == {*crowd, *later}
    assert any(s.body["sorts"][0]["propertyName"] == "hs_object_id" for s in fake.seen(SEARCH))
    assert pages[-1].cursor == {"since": "2025-03-01T09:00:02.000Z", "seen": [later[1]]}


def test_more_contacts_than_the_search_cap_are_all_read_without_paging_past_it(crm, fake, page_size):
    # HubSpot refuses to page a search past 10,000 results; here the cap is 4.
    page_size(2)
    fake.SEARCH_CAP = 4
    ids = [fake.add_contact(f"c{n}@example.com", modified=T0 + timedelta(minutes=n)) for n in range(11)]

    records, _ = read_all(connector(crm))

    assert [r.external_id for r in records] == ids
    assert all("after" not in s.body for s in fake.seen(SEARCH))


def test_a_contact_changed_while_a_sweep_pages_hides_no_other(crm, fake, page_size):
    # With offset paging the changed contact would move to the end and shift an unread one into a
    # page already read.
    page_size(2)
    ids = [fake.add_contact(f"c{n}@example.com", modified=T0 + timedelta(minutes=n)) for n in range(6)]
    pages = connector(crm).read("customers", None)
    read = [r.external_id for r in next(pages).records]
    fake.contacts[ids[0]]["properties"]["lastmodifieddate"] = "2025-03-05T00:00:00.000Z"

    read += [r.external_id for page in pages for r in page.records]

    assert set(read) == set(ids)
    assert read.count(ids[0]) == 2  # read again at its new time


def test_contacts_changed_in_the_last_minutes_wait_for_the_next_sync(crm, fake):
    fake.add_contact("old@example.com", modified=T0)
    fake.add_contact("fresh@example.com", modified=datetime.now(UTC) - timedelta(seconds=10))

    records, _ = read_all(connector(crm))

    assert [r.email for r in records] == ["old@example.com"]


def test_a_429_is_waited_out_for_its_retry_after(crm, fake, sleeps):
    fake.add_contact("ann@example.com", modified=T0)
    fake.rate_limit(1, retry_after="3")

    records, _ = read_all(connector(crm, sleeps))

    assert [r.email for r in records] == ["ann@example.com"]
    assert any(2.0 < s <= 3.0 for s in sleeps)


# --- Pushing contacts -------------------------------------------------------------------------------------


def test_push_creates_then_updates_by_email_without_duplicates(crm, fake):
    fake.add_contact("Ann@Example.com", modified=T0, firstname="Annie", lastname="Lee")
    hubspot = connector(crm)
    batch = [
        contact("ann@example.com", orders_count=2, total_spent=Decimal("42.50"), platforms=("shopify",)),
        contact("bob@example.com", first_name="Bob", first_order_at=T0, last_order_at=T0 + timedelta(days=3)),
    ]

    first = hubspot.push("contacts", batch)
    again = hubspot.push("contacts", batch)

    assert (first.created, first.updated, first.failed) == (1, 1, [])
    assert (again.created, again.updated, again.failed) == (0, 2, [])
    assert len(fake.contacts) == 2
    ann = fake.by_email("ann@example.com")["properties"]
    assert (ann["firstname"], ann["lastname"]) == ("Annie", "Lee")  # empty hub names never blank them
    assert (ann["hub_orders_count"], ann["hub_total_spent"], ann["hub_currency"]) == ("2", "42.5", "USD")
    assert ann["hub_platforms"] == "shopify"
    bob = fake.by_email("bob@example.com")["properties"]
    assert (bob["hub_first_order_date"], bob["hub_last_order_date"]) == ("2025-03-01", "2025-03-04")


def test_empty_hub_values_are_never_sent(crm, fake):
    connector(crm).push("contacts", [contact("ann@example.com")])

    [sent] = fake.seen(UPSERT)[0].body["inputs"]
    assert sent == {
        "id": "ann@example.com",
        "idProperty": "email",
        "objectWriteTraceId": "ann@example.com",
        "properties": {
            "email": "ann@example.com",
            "hub_orders_count": "0",
            "hub_total_spent": "0",
            "hub_currency": "USD",
        },
    }


def test_the_custom_properties_are_created_once_with_their_types(crm, fake):
    hubspot = connector(crm)
    hubspot.push("contacts", [contact("a@example.com")])
    hubspot.push("contacts", [contact("b@example.com")])
    connector(crm).push("contacts", [contact("c@example.com")])  # the next run only looks them up

    created = {s.body["name"]: (s.body["type"], s.body["fieldType"]) for s in fake.seen(PROPERTIES, "POST")}
    assert created == {
        "hub_orders_count": ("number", "number"),
        "hub_total_spent": ("number", "number"),
        "hub_currency": ("string", "text"),
        "hub_first_order_date": ("date", "date"),
        "hub_last_order_date": ("date", "date"),
        "hub_platforms": ("string", "text"),
    }
    assert all(s.body["groupName"] == "contactinformation" for s in fake.seen(PROPERTIES, "POST"))
    assert len(fake.seen(PROPERTIES, "POST")) == 6
    assert len([s for s in fake.requests if s.path.startswith(PROPERTIES + "/")]) == 12  # 6 per run


def test_a_refused_contact_is_counted_with_hubspots_reason_and_the_rest_go_in(crm, fake):
    outcome = connector(crm).push("contacts", [contact("ann@example.com"), contact("broken@example")])

    assert (outcome.created, outcome.updated) == (1, 0)
    assert outcome.failed == [("broken@example", "Email address broken@example is invalid")]
    assert fake.by_email("ann@example.com") is not None


@pytest.mark.parametrize(("refusals", "upserts"), [("whole-batch", 2), ("whole-batch-unnamed", 5)])
def test_a_whole_batch_refused_for_one_contact_is_sent_again_without_it(crm, fake, refusals, upserts):
    fake.refusals = refusals
    batch = [contact(email) for email in ("a@example.com", "b@example.com", "broken@example", "d@example.com")]

    outcome = connector(crm).push("contacts", batch)

    assert outcome.created == 3
    assert [email for email, _ in outcome.failed] == ["broken@example"]
    assert "Property values were not valid" in outcome.failed[0][1]
    assert sorted(c["properties"]["email"] for c in fake.contacts.values()) == [
        "a@example.com",
        "b@example.com",
        "d@example.com",
    ]
    assert len(fake.seen(UPSERT)) == upserts


def test_a_push_without_the_scope_to_create_properties_names_it(tenant_a, make_connection, settings):
    settings.INTEGRATIONS_ALLOW_PRIVATE_URLS = True
    with FakeHubSpot(scopes=ALL_SCOPES - {"crm.schemas.contacts.write"}) as fake:
        crm = make_connection(tenant_a, "hubspot", credentials={"access_token": PRIVATE_TOKEN}, base_url=fake.url)
        with pytest.raises(PermissionDenied, match=r"lacks the scope this needs: crm\.schemas\.contacts\.write"):
            connector(crm).push("contacts", [contact("a@example.com")])
        assert fake.seen(UPSERT) == []


def test_a_batch_refused_entirely_for_one_reason_stops_the_push(crm, fake):
    # Someone made hub_total_spent a date property: no contact can go in, whoever it is.
    fake.properties["hub_total_spent"] = {"name": "hub_total_spent", "type": "date", "fieldType": "date"}

    with pytest.raises(BadResponse, match="refused every contact of the batch: 0 is not a valid date"):
        connector(crm).push("contacts", [contact("a@example.com"), contact("b@example.com")])


# --- Whole syncs ---------------------------------------------------------------------------------------------


def test_a_sync_pulls_contacts_and_pushes_the_hubs_customers_and_then_has_nothing_to_push(
    tenant_a, make_connection, make_order, crm, fake
):
    ann_id = fake.add_contact("ann@example.com", modified=T0, firstname="Ann")
    fake.add_contact("zed@example.com", modified=T0, firstname="Zed")
    fake.add_list("VIP", [ann_id])
    shop = make_connection(tenant_a, "shopify")
    ann = Customer.objects.create(tenant=tenant_a, connection=shop, external_id="s1", email="Ann@example.com")
    make_order(shop, customer=ann, email="ann@example.com", total=Decimal("30.00"))
    Customer.objects.create(
        tenant=tenant_a, connection=shop, external_id="s2", email="new@example.com", first_name="Nu"
    )
    make_order(shop, email="guest@example.com", total=Decimal("5.00"))

    run = run_sync(crm, connector=HubSpotConnector(crm))

    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert run.counts["customers"]["created"] == 2
    assert run.counts["contacts"] == {"created": 2, "updated": 1, "unchanged": 0, "failed": 0}
    assert Customer.objects.get(connection=crm, external_id=ann_id).tags == ["hubspot-list:VIP"]
    assert len(fake.contacts) == 4
    ann_props = fake.by_email("ann@example.com")["properties"]
    assert (ann_props["firstname"], ann_props["hub_orders_count"], ann_props["hub_total_spent"]) == ("Ann", "1", "30")
    assert fake.by_email("guest@example.com")["properties"]["hub_total_spent"] == "5"
    assert fake.by_email("zed@example.com")["properties"].get("hub_orders_count") is None  # pulled, never pushed
    upserts = len(fake.seen(UPSERT))

    again = run_sync(crm, connector=HubSpotConnector(crm))

    assert again.status == SyncStatus.SUCCEEDED, again.error
    assert len(fake.seen(UPSERT)) == upserts
    assert again.counts["contacts"] == {"created": 0, "updated": 0, "unchanged": 0, "failed": 0}
    assert again.counts["customers"]["created"] == 0


# --- OAuth ------------------------------------------------------------------------------------------------------


def test_the_consent_page_asks_for_the_apps_scopes_with_the_state_and_callback():
    url = HubSpotOAuth().authorize_url(credentials=OAUTH, state="st4te", redirect_uri=CALLBACK)

    parts = urlsplit(url)
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://app.hubspot.com/oauth/authorize"
    assert query == {
        "client_id": CLIENT_ID,
        "scope": "oauth crm.objects.contacts.read crm.objects.contacts.write crm.schemas.contacts.read "
        "crm.schemas.contacts.write crm.lists.read",
        "redirect_uri": CALLBACK,
        "state": "st4te",
    }
    assert "%20" in parts.query  # spaces between scopes, not plus signs


def test_the_consent_page_needs_the_apps_client_id_and_secret():
    with pytest.raises(ConfigurationError, match="client secret"):
        HubSpotOAuth().authorize_url(credentials={"client_id": CLIENT_ID}, state="s", redirect_uri=CALLBACK)


def test_the_code_is_exchanged_once_for_a_refresh_token_and_the_accounts_hub_id(fake):
    code = fake.issue_code()
    oauth = HubSpotOAuth(base_url=fake.url)

    updates = oauth.exchange(credentials=OAUTH, params={"code": code, "state": "s"}, redirect_uri=CALLBACK)

    assert updates == {"refresh_token": REFRESH_TOKEN, "hub_id": str(HUB_ID)}
    [sent] = fake.seen(TOKEN)
    assert sent.body == {
        "grant_type": "authorization_code",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "redirect_uri": CALLBACK,
        "code": code,
    }
    with pytest.raises(AuthError, match="missing or unknown auth code"):
        oauth.exchange(credentials=OAUTH, params={"code": code}, redirect_uri=CALLBACK)


def test_the_hub_id_of_the_token_answer_saves_a_lookup(fake):
    fake.token_has_hub_id = True

    updates = HubSpotOAuth(base_url=fake.url).exchange(
        credentials=OAUTH, params={"code": fake.issue_code()}, redirect_uri=CALLBACK
    )

    assert updates["hub_id"] == str(HUB_ID)
    assert not [r for r in fake.requests if r.path.startswith("/oauth/v1/access-tokens/")]


def test_a_declined_consent_is_said_as_such(fake):
    with pytest.raises(AuthError, match="did not grant access: access_denied"):
        HubSpotOAuth(base_url=fake.url).exchange(
            credentials=OAUTH, params={"error": "access_denied"}, redirect_uri=CALLBACK
        )
    assert fake.requests == []


def test_an_oauth_connection_shares_its_access_token_and_renews_a_refused_one(crm, fake):
    crm.credentials = dict(OAUTH)
    fake.add_contact("ann@example.com", modified=T0)

    assert connector(crm).check().ok
    assert connector(crm).check().ok  # another worker: the cached token, no new one
    assert len(fake.seen(TOKEN)) == 1
    fake.expire_tokens()
    records, _ = read_all(connector(crm))

    assert [r.email for r in records] == ["ann@example.com"]
    assert [s.body["grant_type"] for s in fake.seen(TOKEN)] == ["refresh_token", "refresh_token"]
    assert fake.seen(SEARCH)[0].headers["authorization"] != f"Bearer {PRIVATE_TOKEN}"


def test_a_revoked_refresh_token_asks_to_connect_again(crm, fake):
    crm.credentials = {**OAUTH, "refresh_token": "na1-revoked"}

    result = connector(crm).check()

    assert not result.ok and result.error_code == "auth"
    assert "uninstalled or its access revoked" in result.message
    assert "missing or unknown refresh token" in result.message
    assert "Connect" in result.hint
