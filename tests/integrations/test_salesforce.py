"""The Salesforce connector against a local fake Salesforce (tests/integrations/fake_salesforce.py),
over real HTTP through HttpClient: the check, pulling Contacts with their campaigns, pushing the
hub's people as Contacts, tokens that expire or are revoked, a full sync, and Connect."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.cache import cache
from django.utils import timezone

from commerce.exports import Contact
from commerce.models import Customer
from integrations import services
from integrations.connectors import CONNECTORS
from integrations.connectors.salesforce import SalesforceConnector
from integrations.connectors.salesforce_client import login_url
from integrations.errors import AuthError
from integrations.http import HttpClient, RateBudget
from integrations.models import Connection, ConnectionStatus, SyncStatus
from integrations.oauth.salesforce import SalesforceOAuth
from integrations.sync import run_sync
from tests.integrations.fake_salesforce import CLIENT_ID, CLIENT_SECRET, DATA, REFRESH_TOKEN, FakeSalesforce

pytestmark = pytest.mark.django_db

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
COLLECTIONS = f"{DATA}/composite/sobjects"
CALLBACK = "https://hub.example.com/integrations/oauth/salesforce/callback"


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sf(settings):
    settings.INTEGRATIONS_ALLOW_PRIVATE_URLS = True
    with FakeSalesforce(page_size=3) as fake:
        yield fake


@pytest.fixture
def crm(tenant_a, make_connection, sf) -> Connection:
    return make_connection(tenant_a, "salesforce", credentials=sf.credentials(), base_url=sf.url)


@pytest.fixture
def shop(tenant_a, make_connection) -> Connection:
    return make_connection(tenant_a, "shopify")


def connector(connection: Connection, *, read_timeout: float = 5.0) -> SalesforceConnector:
    # A roomy budget, and sleeps that only count: retries and 429 pauses cost no time.
    sleeps = Sleeps()
    budget = RateBudget(f"connection:{connection.pk}", 1000.0, 1000, sleep=sleeps)
    client = HttpClient(budget=budget, sleep=sleeps, allow_private=True, timeout=(2.0, read_timeout))
    return SalesforceConnector(connection, client=client)


def sync(connection: Connection, streams=None, **kwargs):
    return run_sync(connection, streams, connector=connector(connection), **kwargs)


def customer(connection: Connection, n: int, email: str, **fields) -> Customer:
    return Customer.objects.create(
        tenant=connection.tenant, connection=connection, external_id=f"c{n}", email=email, **fields
    )


def posted(sf: FakeSalesforce, method: str = "POST") -> list[list[dict]]:
    """The records of each collection request of `method` the fake was sent."""
    return [json.loads(seen.body)["records"] for seen in sf.seen(COLLECTIONS, method)]


# --- The check -----------------------------------------------------------------------------------------


def test_the_check_names_the_org_and_counts_its_contacts(crm, sf):
    sf.add_contact("ann@example.com")
    sf.add_contact("bob@example.com")

    result = connector(crm).check()

    assert result.ok, result.message
    assert result.message == f"Connected to Salesforce at {sf.url}."
    assert result.samples == {"customers": 2}
    assert result.granted == ["customers", "contacts"] and result.missing == []
    assert result.warnings == []
    assert result.details["daily_api_requests"] == {"max": 15000, "remaining": 14990}
    assert result.details["missing_fields"] == [] and result.details["country_field"] == "MailingCountryCode"
    assert sf.grants == ["refresh_token"]


def test_a_revoked_refresh_token_fails_the_check_and_asks_to_reconnect(crm, sf, monkeypatch):
    # As registered (a no-op once integrations.connectors.CONNECTORS lists it).
    monkeypatch.setitem(CONNECTORS, "salesforce", "integrations.connectors.salesforce.SalesforceConnector")
    sf.revoke()

    result = services.test_connection(crm)

    assert not result.ok and result.error_code == "auth"
    assert "reconnect Salesforce" in result.message and "invalid_grant" in result.message
    assert "Connect" in result.hint
    crm.refresh_from_db()
    assert crm.status == ConnectionStatus.NEEDS_REAUTH


def test_wrong_consumer_keys_say_which_credential_to_check(crm, sf):
    crm.credentials = {**crm.credentials, "client_secret": "wrong"}

    result = connector(crm).check()

    assert not result.ok and result.error_code == "auth"
    assert "connected app's keys" in result.message and "invalid_client" in result.message
    assert "Manage Consumer Details" in result.hint


def test_missing_custom_fields_are_a_warning_that_says_how_to_create_them(crm, sf):
    sf.custom_fields = {"Hub_Orders_Count__c": "double"}

    result = connector(crm).check()

    assert result.ok
    assert result.details["missing_fields"] == [
        "Hub_Total_Spent__c",
        "Hub_Currency__c",
        "Hub_Last_Order_Date__c",
        "Hub_First_Order_Date__c",
    ]
    [warning] = result.warnings
    assert "Hub_Total_Spent__c" in warning and "Object Manager → Contact" in warning


def test_a_spent_daily_api_limit_fails_the_check_as_a_rate_limit_without_retrying(crm, sf):
    sf.fail(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.", count=5)

    result = connector(crm).check()

    assert not result.ok and result.error_code == "rate_limited"
    assert "daily API request limit is used up" in result.message and "24 hours" in result.hint
    assert len(sf.seen(f"{DATA}/limits")) == 1


def test_a_spent_daily_api_limit_stops_a_sync_at_once(crm, sf):
    sf.add_contact("ann@example.com")
    sf.fail(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.", count=5)

    run = sync(crm, ["customers"])

    assert run.status == SyncStatus.FAILED and run.error_code == "rate_limited"
    assert len(sf.seen(f"{DATA}/sobjects/Contact/describe")) == 1  # refused once, not hammered
    crm.refresh_from_db()
    assert crm.status == ConnectionStatus.FAILING


def test_an_org_without_api_access_is_a_permission_error_that_says_what_to_enable(crm, sf):
    sf.fail(403, "API_DISABLED_FOR_ORG", "API is not enabled for this Organization or Partner")

    result = connector(crm).check()

    assert not result.ok and result.error_code == "permission"
    assert "API_DISABLED_FOR_ORG" in result.message and "API Enabled" in result.hint


def test_the_instance_url_salesforce_names_is_used_and_saved(crm, sf):
    crm.credentials = {**crm.credentials, "instance_url": "https://old-instance.my.salesforce.com"}
    crm.save()

    assert connector(crm).check().ok

    crm.refresh_from_db()
    assert crm.credentials["instance_url"] == sf.url
    assert crm.credentials["refresh_token"] == REFRESH_TOKEN


def test_a_rotated_refresh_token_is_saved_and_used_by_the_next_worker(crm, sf):
    sf.rotate_refresh_tokens = True

    assert connector(crm).check().ok
    crm.refresh_from_db()
    rotated = crm.credentials["refresh_token"]
    assert rotated != REFRESH_TOKEN

    # Another worker, built from credentials read before the rotation, once the cached token is gone.
    stale = Connection.objects.get(pk=crm.pk)
    stale.credentials = {**stale.credentials, "refresh_token": REFRESH_TOKEN}
    cache.clear()
    assert connector(stale).check().ok
    assert sf.grants == ["refresh_token", "refresh_token"]


def test_the_login_host_is_test_salesforce_for_a_sandbox_unless_overridden():
    assert login_url({}) == "https://login.salesforce.com"
    assert login_url({"sandbox": "true"}) == "https://test.salesforce.com"
    assert login_url({"sandbox": "true"}, "https://acme.my.salesforce.com/") == "https://acme.my.salesforce.com"


# --- Pulling Contacts ----------------------------------------------------------------------------------


def test_a_pull_pages_through_contacts_with_campaign_names_as_tags_one_campaign_query_a_page(crm, sf):
    spring, vip = sf.add_campaign("Spring Sale"), sf.add_campaign("VIP")
    ids = [
        sf.add_contact(
            f"person{n}@example.com",
            FirstName=f"P{n}",
            LastName="Doe",
            MailingCountryCode="DE" if n == 0 else None,
            HasOptedOutOfEmail=n == 1,
            modified=T0 + timedelta(minutes=n),
        )
        for n in range(7)
    ]
    sf.join(ids[0], spring)
    sf.join(ids[0], vip)
    sf.join(ids[4], vip)

    run = sync(crm, ["customers"])

    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert run.counts["customers"]["created"] == 7
    stored = {c.external_id: c for c in Customer.objects.for_tenant(crm.tenant).filter(connection=crm)}
    assert sorted(stored) == sorted(ids)
    assert stored[ids[0]].tags == ["salesforce-campaign:Spring Sale", "salesforce-campaign:VIP"]
    assert stored[ids[4]].tags == ["salesforce-campaign:VIP"] and stored[ids[2]].tags == []
    assert stored[ids[0]].country == "DE" and stored[ids[0]].first_name == "P0"
    assert stored[ids[0]].accepts_marketing and not stored[ids[1]].accepts_marketing
    assert stored[ids[6]].platform_updated_at == T0 + timedelta(minutes=6)
    # Three batches (3, 3, 1) through nextRecordsUrl, and one CampaignMember query for each.
    assert len(sf.queries("SELECT Id, Email, FirstName")) == 1
    assert len([s for s in sf.seen() if s.path.startswith(f"{DATA}/query/")]) == 2
    assert len(sf.queries("SELECT ContactId, Campaign.Name FROM CampaignMember")) == 3
    crm.refresh_from_db()
    assert crm.cursors["customers"] == {"modified": "2025-03-01T09:06:00.000+0000", "id": ids[6]}


def test_a_pull_resumes_after_its_last_committed_contact_breaking_ties_by_id(crm, sf):
    # Five Contacts changed in the same second: a page can end between them.
    ids = [sf.add_contact(f"same{n}@example.com", modified=T0) for n in range(5)]
    # The second batch cannot be had: the run fails after committing the first.
    sf.fail(500, "UNKNOWN_EXCEPTION", "An unexpected error occurred.", count=5, when=lambda s: "/query/" in s.path)

    first = sync(crm, ["customers"])

    assert first.status == SyncStatus.FAILED and first.error_code == "unavailable"
    crm.refresh_from_db()
    assert crm.cursors["customers"] == {"modified": "2025-03-01T09:00:00.000+0000", "id": ids[2]}
    assert Customer.objects.filter(connection=crm).count() == 3

    second = sync(crm, ["customers"])

    assert second.status == SyncStatus.SUCCEEDED, second.error
    resumed = sf.queries("SELECT Id, Email")[-1]
    assert (
        "WHERE (LastModifiedDate > 2025-03-01T09:00:00Z OR (LastModifiedDate = 2025-03-01T09:00:00Z "
        f"AND Id > '{ids[2]}')) ORDER BY LastModifiedDate, Id" in resumed
    )
    assert second.counts["customers"]["created"] == 2
    assert sorted(Customer.objects.filter(connection=crm).values_list("external_id", flat=True)) == sorted(ids)


def test_a_second_pull_reads_only_contacts_changed_since(crm, sf):
    sf.add_contact("ann@example.com", modified=T0)
    sync(crm, ["customers"])
    later = sf.add_contact("bob@example.com", modified=T0 + timedelta(hours=1))

    run = sync(crm, ["customers"])

    assert run.counts["customers"] == {"created": 1, "updated": 0, "unchanged": 0, "failed": 0}
    assert Customer.objects.get(connection=crm, email="bob@example.com").external_id == later
    assert len(sf.queries("SELECT ContactId")) == 2  # none for a page that is not there


def test_an_org_without_country_picklists_is_read_from_mailing_country(crm, sf):
    sf.country_picklists = False
    sf.add_contact("ann@example.com", MailingCountry="us")
    sf.add_contact("bob@example.com", MailingCountry="United Kingdom")

    run = sync(crm, ["customers"])

    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert "MailingCountryCode" not in sf.queries("SELECT Id")[0]
    assert dict(Customer.objects.filter(connection=crm).values_list("email", "country")) == {
        "ann@example.com": "US",
        "bob@example.com": "",
    }


def test_contacts_still_sync_without_campaign_tags_when_campaign_members_are_unreadable(crm, sf):
    sf.join(sf.add_contact("ann@example.com"), sf.add_campaign("VIP"))
    sf.add_contact("bob@example.com")
    unreadable = lambda seen: "CampaignMember" in seen.soql  # noqa: E731
    sf.fail(400, "INVALID_TYPE", "sObject type 'CampaignMember' is not supported.", count=2, when=unreadable)

    run = sync(crm, ["customers"])

    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert list(Customer.objects.filter(connection=crm).values_list("tags", flat=True)) == [[], []]
    assert "cannot read campaign members" in connector(crm).check().warnings[0]


def test_an_access_token_that_expires_mid_run_is_refreshed_once(crm, sf):
    for n in range(7):
        sf.add_contact(f"p{n}@example.com", modified=T0 + timedelta(minutes=n))
    expired = []

    def expire_once(run):
        if not expired:
            expired.append(True)
            sf.expire_tokens()

    run = sync(crm, ["customers"], on_progress=expire_once)

    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert Customer.objects.filter(connection=crm).count() == 7
    assert sf.grants == ["refresh_token", "refresh_token"]
    # The describe, three batches with their campaigns,, and the one request the expired token had refused.
    assert len([s for s in sf.seen() if s.path.startswith(DATA)]) == 8


def test_a_consent_revoked_mid_run_fails_the_run_and_the_connection_needs_reauthorisation(crm, sf):
    for n in range(7):
        sf.add_contact(f"p{n}@example.com", modified=T0 + timedelta(minutes=n))

    run = sync(crm, ["customers"], on_progress=lambda run: sf.revoke())

    assert run.status == SyncStatus.FAILED and run.error_code == "auth"
    assert "reconnect Salesforce" in run.error
    crm.refresh_from_db()
    assert crm.status == ConnectionStatus.NEEDS_REAUTH and "reconnect Salesforce" in crm.last_error
    assert Customer.objects.filter(connection=crm).count() == 3  # the page committed before stays


# --- Pushing contacts ----------------------------------------------------------------------------------


def test_a_push_updates_contacts_found_by_email_in_any_case_and_creates_the_others(crm, sf, shop):
    existing = sf.add_contact("Ann@Example.com", FirstName="A", LastName="Existing")
    customer(shop, 1, "ann@example.com", first_name="Ann")  # no last name: Salesforce's is kept
    customer(shop, 2, "bob@example.com", first_name="Bob", last_name="Builder", phone="+15550100", country="US")
    customer(shop, 3, "carl@example.com")  # no name at all: the new Contact is named after the email
    customer(shop, 4, "o'neil@example.com", last_name="O'Neil")

    run = sync(crm, ["contacts"])

    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert run.counts["contacts"] == {"created": 3, "updated": 1, "unchanged": 0, "failed": 0}
    [ann] = sf.by_email("ann@example.com")
    assert (ann["Id"], ann["FirstName"], ann["LastName"], ann["Email"]) == (
        existing,
        "Ann",
        "Existing",
        "Ann@Example.com",
    )
    [bob] = sf.by_email("bob@example.com")
    assert (bob["LastName"], bob["Phone"], bob["MailingCountryCode"]) == ("Builder", "+15550100", "US")
    assert sf.by_email("carl@example.com")[0]["LastName"] == "carl"
    assert sf.by_email("o'neil@example.com")[0]["LastName"] == "O'Neil"
    # One lookup, one update and one create for the batch.
    assert len(sf.queries("SELECT Id, Email FROM Contact WHERE Email IN")) == 1
    assert len(posted(sf, "PATCH")) == 1 and len(posted(sf, "POST")) == 1

    # The same people pushed again are found and updated, never created twice.
    Customer.objects.filter(connection=shop).update(phone="+15550199", updated_at=timezone.now())
    again = sync(crm, ["contacts"])
    assert again.counts["contacts"]["updated"] == 4 and again.counts["contacts"]["created"] == 0
    assert len(sf.contacts) == 4


def test_order_figures_go_to_the_custom_fields_the_org_has(crm, sf, shop, make_order):
    sf.custom_fields = {
        "Hub_Orders_Count__c": "double",
        "Hub_Total_Spent__c": "double",
        "Hub_Last_Order_Date__c": "date",
    }
    ann = customer(shop, 1, "ann@example.com", last_name="Lee")
    make_order(shop, customer=ann, email="ann@example.com", total=Decimal("30.00"), placed_at=T0)
    make_order(shop, customer=ann, email="ann@example.com", total=Decimal("12.50"), placed_at=T0 + timedelta(days=2))

    run = sync(crm, ["contacts"])

    assert run.status == SyncStatus.SUCCEEDED, run.error
    [[record]] = posted(sf)
    assert record["Hub_Orders_Count__c"] == 2 and record["Hub_Total_Spent__c"] == 42.5
    assert record["Hub_Last_Order_Date__c"] == "2025-03-03"  # a Date field takes the day
    assert not {"Hub_Currency__c", "Hub_First_Order_Date__c"} & set(record)


def test_figures_and_country_text_in_an_org_with_every_field_and_no_country_picklists(crm, sf, shop, make_order):
    sf.country_picklists = False
    ann = customer(shop, 1, "ann@example.com", last_name="Lee", country="GB")
    make_order(shop, customer=ann, email="ann@example.com", total=Decimal("30.00"), placed_at=T0)

    sync(crm, ["contacts"])

    [contact] = sf.by_email("ann@example.com")
    assert contact["MailingCountry"] == "GB" and "MailingCountryCode" not in contact
    assert contact["Hub_Currency__c"] == "USD"
    assert contact["Hub_First_Order_Date__c"] == contact["Hub_Last_Order_Date__c"] == "2025-03-01T09:00:00.000Z"


def test_contacts_salesforce_refuses_are_counted_failed_with_its_reason_and_the_rest_are_saved(crm, sf, shop):
    sf.refusals["dup@example.com"] = ("DUPLICATES_DETECTED", "Use one of these records?")
    sf.refusals["bad@example.com"] = ("FIELD_CUSTOM_VALIDATION_EXCEPTION", "Phone must have 10 digits")
    for n, email in enumerate(["a@example.com", "bad@example.com", "dup@example.com", "z@example.com"]):
        customer(shop, n, email, last_name="X")

    run = sync(crm, ["contacts"])

    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert run.counts["contacts"]["created"] == 2 and run.counts["contacts"]["failed"] == 2
    errors = {e["email"]: e["error"] for e in run.progress["contacts"]["errors"]}
    assert errors["bad@example.com"] == "FIELD_CUSTOM_VALIDATION_EXCEPTION: Phone must have 10 digits"
    assert errors["dup@example.com"].startswith("A Salesforce duplicate rule blocked it (DUPLICATES_DETECTED")
    assert sorted(c["Email"] for c in sf.contacts.values()) == ["a@example.com", "z@example.com"]


def test_a_create_that_times_out_is_looked_up_again_instead_of_sent_twice(crm, sf):
    # Salesforce creates the Contacts, but its answer comes after the hub stopped waiting.
    sf.delay(1.5, when=lambda seen: seen.method == "POST" and seen.path == COLLECTIONS)
    batch = [Contact(email="a@example.com", last_name="A"), Contact(email="b@example.com", last_name="B")]

    outcome = connector(crm, read_timeout=0.5).push("contacts", batch)

    assert (outcome.created, outcome.failed) == (2, [])
    assert len(posted(sf)) == 1
    assert len(sf.by_email("a@example.com")) == len(sf.by_email("b@example.com")) == 1
    assert len(sf.queries("SELECT Id, Email FROM Contact WHERE Email IN")) == 2


def test_a_create_refused_by_an_outage_is_sent_once_more_after_the_lookup(crm, sf):
    sf.fail(503, "SERVER_UNAVAILABLE", "Server unavailable", when=lambda seen: seen.method == "POST")
    batch = [Contact(email="a@example.com", last_name="A")]

    outcome = connector(crm).push("contacts", batch)

    assert outcome.created == 1
    assert len(sf.seen(COLLECTIONS, "POST")) == 2 and len(sf.by_email("a@example.com")) == 1


def test_a_full_batch_of_200_is_one_lookup_and_one_create_and_long_emails_split_the_lookup(crm, sf):
    batch = [Contact(email=f"person{n:03d}@example.com") for n in range(200)]

    assert connector(crm).push("contacts", batch).created == 200
    assert len(sf.queries("SELECT Id, Email FROM Contact")) == 1 and len(posted(sf)) == 1

    long = [Contact(email=f"{'x' * 60}{n:03d}@example.com") for n in range(200)]
    assert connector(crm).push("contacts", long).created == 200
    lookups = sf.queries("SELECT Id, Email FROM Contact")[1:]
    assert len(lookups) == 3 and all(len(q) < 6200 for q in lookups)


def test_a_push_sends_no_field_the_org_lacks(crm, sf):
    sf.custom_fields = {}
    sf.country_picklists = False

    outcome = connector(crm).push("contacts", [Contact(email="a@example.com", country="FR", orders_count=3)])

    assert outcome.created == 1
    [[record]] = posted(sf)
    assert set(record) == {"attributes", "Email", "LastName", "MailingCountry"}


# --- A whole sync -------------------------------------------------------------------------------------


def test_a_full_sync_pulls_contacts_then_pushes_the_stores_customers_and_a_rerun_pushes_nothing(
    crm, sf, shop, make_order
):
    vip = sf.add_campaign("VIP")
    sf.join(sf.add_contact("lead@example.com", LastName="Lead", modified=T0), vip)
    buyer = customer(shop, 1, "buyer@example.com", first_name="Bea", last_name="Buyer")
    make_order(shop, customer=buyer, email="buyer@example.com", total=Decimal("20.00"), placed_at=T0)
    make_order(shop, email="guest@example.com", total=Decimal("5.00"), placed_at=T0)

    run = run_sync(crm, connector=connector(crm))  # every stream of the connector

    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert run.streams == ["customers", "contacts"]
    assert run.counts["customers"]["created"] == 1 and run.counts["contacts"]["created"] == 2
    lead = Customer.objects.get(connection=crm, email="lead@example.com")
    assert lead.tags == ["salesforce-campaign:VIP"]
    [bea] = sf.by_email("buyer@example.com")
    assert (bea["FirstName"], bea["Hub_Orders_Count__c"], bea["Hub_Total_Spent__c"]) == ("Bea", 1, 20.0)
    assert sf.by_email("guest@example.com")[0]["LastName"] == "guest"
    assert not sf.by_email("lead@example.com")[0].get("Hub_Orders_Count__c")  # pulled, never pushed back
    crm.refresh_from_db()
    assert crm.status == ConnectionStatus.CONNECTED

    saves = len(sf.seen(COLLECTIONS))
    rerun = sync(crm)

    assert rerun.status == SyncStatus.SUCCEEDED, rerun.error
    assert len(sf.seen(COLLECTIONS)) == saves
    assert rerun.counts["contacts"] == {"created": 0, "updated": 0, "unchanged": 0, "failed": 0}
    # The Contacts the push made come back as the CRM's own, and are not pushed again.
    assert rerun.counts["customers"]["created"] == 2
    assert sync(crm).counts["customers"]["created"] == 0


# --- Connect -------------------------------------------------------------------------------------------


def test_the_consent_page_asks_for_api_and_refresh_token_with_the_state():
    credentials = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}

    url = SalesforceOAuth().authorize_url(credentials=credentials, state="st4te", redirect_uri=CALLBACK)

    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://login.salesforce.com/services/oauth2/authorize"
    assert parse_qs(parts.query) == {
        "response_type": ["code"],
        "client_id": [CLIENT_ID],
        "redirect_uri": [CALLBACK],
        "state": ["st4te"],
        "scope": ["api refresh_token"],
    }
    sandbox = SalesforceOAuth().authorize_url(
        credentials={**credentials, "sandbox": "true"}, state="s", redirect_uri=CALLBACK
    )
    assert sandbox.startswith("https://test.salesforce.com/services/oauth2/authorize?")


def test_connect_exchanges_the_code_for_a_refresh_token_and_instance_url_that_work(crm, sf):
    credentials = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    oauth = SalesforceOAuth(base_url=sf.url)
    code = sf.issue_code(CALLBACK)

    updates = oauth.exchange(credentials=credentials, params={"code": code, "state": "s"}, redirect_uri=CALLBACK)

    assert updates == {"refresh_token": updates["refresh_token"], "instance_url": sf.url}
    assert updates["refresh_token"] != REFRESH_TOKEN
    crm.credentials = {**credentials, **updates}
    crm.save()
    assert connector(crm).check().ok
    assert sf.grants == ["authorization_code", "refresh_token"]

    with pytest.raises(AuthError, match="Salesforce refused to issue a token: invalid_grant"):
        oauth.exchange(credentials=credentials, params={"code": code}, redirect_uri=CALLBACK)
    with pytest.raises(AuthError, match="did not grant access: end-user denied authorization"):
        oauth.exchange(
            credentials=credentials,
            params={"error": "access_denied", "error_description": "end-user denied authorization"},
            redirect_uri=CALLBACK,
        )
