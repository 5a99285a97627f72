"""The push half of a CRM sync (integrations.crm) with an in-memory CRM: who is pushed, with which
figures, in which windows, and what a push that dies half-way does when it runs again."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from commerce.exports import Contact, changed_emails, contacts
from commerce.models import Customer, OrderStatus
from integrations.connectors.base import Connector
from integrations.crm import PushOutcome
from integrations.errors import Unavailable
from integrations.models import Connection, SyncStatus
from integrations.sync import run_sync

pytestmark = pytest.mark.django_db


class MemoryCrm(Connector):
    """Keeps contacts by email; fails the batch numbered `fail_at` (0-based) once."""

    streams = ("customers",)
    push_streams = ("contacts",)
    push_batch_size = 2

    def __init__(self, connection, store=None, fail_at=None, refuse=()):
        super().__init__(connection)
        self.store = {} if store is None else store
        self.fail_at = fail_at
        self.refuse = set(refuse)
        self.batches: list[list[str]] = []

    def read(self, stream, cursor, *, full=False):
        return iter(())

    def push(self, stream, batch: list[Contact]) -> PushOutcome:
        if self.fail_at is not None and len(self.batches) == self.fail_at:
            self.fail_at = None
            raise Unavailable("The CRM is down.")
        self.batches.append([c.email for c in batch])
        outcome = PushOutcome()
        for contact in batch:
            if contact.email in self.refuse:
                outcome.failed.append((contact.email, "Property values were not valid"))
                continue
            if contact.email in self.store:
                outcome.updated += 1
            else:
                outcome.created += 1
            self.store[contact.email] = contact
        return outcome


@pytest.fixture
def shop(tenant_a, make_connection):
    return make_connection(tenant_a, "shopify")


@pytest.fixture
def crm(tenant_a, make_connection):
    return make_connection(tenant_a, "hubspot", credentials={"access_token": "pat-x"})


def customer(connection, n, email, **kwargs):
    return Customer.objects.create(
        tenant=connection.tenant, connection=connection, external_id=f"c{n}", email=email, **kwargs
    )


def test_one_contact_per_person_with_order_figures_from_every_platform(tenant_a, shop, make_connection, make_order):
    woo = make_connection(tenant_a, "woocommerce")
    ann = customer(shop, 1, "Ann@Example.com", first_name="Ann", phone="+15550100", country="US", tags=["vip"])
    customer(woo, 2, "ann@example.com", last_name="Lee", tags=["wholesale"])
    make_order(shop, customer=ann, email="Ann@Example.com", total=Decimal("30.00"))
    make_order(woo, email="ann@example.com", total=Decimal("12.50"))
    make_order(woo, email="ann@example.com", total=Decimal("99.00"), status=OrderStatus.CANCELLED)
    make_order(woo, email="ann@example.com", total=Decimal("7.00"), currency="EUR")
    make_order(shop, email="guest@example.com", total=Decimal("5.00"))  # a guest checkout, no customer row

    [ann_contact, guest] = contacts(tenant_a.pk, ["ann@example.com", "guest@example.com"], currency="USD")

    assert ann_contact.email == "ann@example.com"
    assert (ann_contact.first_name, ann_contact.last_name, ann_contact.phone) == ("Ann", "Lee", "+15550100")
    assert ann_contact.tags == ("vip", "wholesale")
    assert ann_contact.platforms == ("shopify", "woocommerce")
    assert ann_contact.orders_count == 3  # not the cancelled one
    assert ann_contact.total_spent == Decimal("42.50")  # USD only: no exchange rates are guessed
    assert guest.email == "guest@example.com" and guest.orders_count == 1


def test_changed_emails_window_and_paging(tenant_a, tenant_b, shop, make_connection):
    now = timezone.now()
    for n, email in enumerate(["c@x.com", "a@x.com", "b@x.com"]):
        customer(shop, n, email)
    customer(make_connection(tenant_b, "shopify"), 9, "other@x.com")
    Customer.objects.filter(email="c@x.com").update(updated_at=now - timedelta(days=2))

    assert changed_emails(tenant_a.pk, None, now + timedelta(seconds=1)) == ["a@x.com", "b@x.com", "c@x.com"]
    assert changed_emails(tenant_a.pk, now - timedelta(days=1), now + timedelta(seconds=1)) == ["a@x.com", "b@x.com"]
    assert changed_emails(tenant_a.pk, None, now + timedelta(seconds=1), after="a@x.com", limit=1) == ["b@x.com"]


def test_push_sends_every_changed_person_once_in_batches(tenant_a, shop, crm):
    for n, email in enumerate(["a@x.com", "b@x.com", "c@x.com", "d@x.com", "e@x.com"]):
        customer(shop, n, email)
    connector = MemoryCrm(crm)

    run = run_sync(crm, ["contacts"], connector=connector)

    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert connector.batches == [["a@x.com", "b@x.com"], ["c@x.com", "d@x.com"], ["e@x.com"]]
    assert run.counts["contacts"] == {"created": 5, "updated": 0, "unchanged": 0, "failed": 0}
    assert run.progress["contacts"]["seen"] == 5 and run.progress["contacts"]["done"]

    # Nothing changed since: the next push sends nothing; a changed person is sent again.
    again = MemoryCrm(crm, store=connector.store)
    run_sync(crm, ["contacts"], connector=again)
    assert again.batches == []
    Customer.objects.filter(email="c@x.com").update(first_name="Cy", updated_at=timezone.now())
    run = run_sync(crm, ["contacts"], connector=again)
    assert again.batches == [["c@x.com"]]
    assert run.counts["contacts"]["updated"] == 1 and connector.store["c@x.com"].first_name == "Cy"


def test_push_that_dies_resumes_after_its_last_batch(tenant_a, shop, crm):
    for n, email in enumerate(["a@x.com", "b@x.com", "c@x.com", "d@x.com", "e@x.com"]):
        customer(shop, n, email)
    store: dict = {}
    first = MemoryCrm(crm, store=store, fail_at=1)

    run = run_sync(crm, ["contacts"], connector=first)

    assert run.status == SyncStatus.FAILED and "down" in run.error
    assert first.batches == [["a@x.com", "b@x.com"]]
    # A person changed while the run was down is in the next window, not lost.
    customer(shop, 7, "f@x.com")
    second = MemoryCrm(crm, store=store)
    run = run_sync(crm, ["contacts"], connector=second)
    assert run.status == SyncStatus.SUCCEEDED
    assert second.batches == [["c@x.com", "d@x.com"], ["e@x.com"]]
    third = MemoryCrm(crm, store=store)
    run_sync(crm, ["contacts"], connector=third)
    assert third.batches == [["f@x.com"]]
    assert sorted(store) == ["a@x.com", "b@x.com", "c@x.com", "d@x.com", "e@x.com", "f@x.com"]


def test_refused_contacts_are_counted_with_the_reason_and_the_push_goes_on(shop, crm):
    customer(shop, 1, "a@x.com")
    customer(shop, 2, "bad@x.com")
    customer(shop, 3, "c@x.com")
    connector = MemoryCrm(crm, refuse={"bad@x.com"})

    run = run_sync(crm, ["contacts"], connector=connector)

    assert run.status == SyncStatus.SUCCEEDED
    assert run.counts["contacts"]["created"] == 2 and run.counts["contacts"]["failed"] == 1
    assert run.progress["contacts"]["errors"] == [{"email": "bad@x.com", "error": "Property values were not valid"}]


def test_contacts_pulled_from_a_crm_are_never_pushed_to_any_crm(tenant_a, tenant_b, shop, crm, make_connection):
    other_crm = make_connection(tenant_a, "salesforce")
    customer(crm, 1, "from-hubspot@x.com")
    customer(other_crm, 2, "from-salesforce@x.com")
    customer(shop, 3, "buyer@x.com")
    customer(make_connection(tenant_b, "shopify"), 4, "tenant-b@x.com")
    connector = MemoryCrm(crm)

    run_sync(crm, ["contacts"], connector=connector)

    assert connector.batches == [["buyer@x.com"]]
    assert Connection.objects.get(pk=crm.pk).cursors["contacts"]["since"]
