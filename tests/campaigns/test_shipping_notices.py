"""Shipping notices sent by the hub through the client's messaging connection, when the client
chose that over the platform's own email: one per fulfilment, only once the push landed."""

from __future__ import annotations

import pytest
from django.utils.module_loading import import_string
from django_q.models import OrmQ

from campaigns.models import Message
from commerce.fulfilment import fulfil
from commerce.models import Customer, FulfilmentSettings, NotifyVia
from commerce.pushes import PushResult
from tests.commerce.test_fulfilment import FakePlatform, add_line, install

pytestmark = pytest.mark.django_db


@pytest.fixture
def platform():
    fake = FakePlatform()
    restore = install(fake)
    yield fake
    restore()


@pytest.fixture
def shop(make_connection, tenant_a):
    return make_connection(tenant_a, "shopify", name="Alpha Shopify")


@pytest.fixture
def order(shop, make_order):
    order = make_order(shop, number="1001", external_id="gid://shopify/Order/1001", email="ann@example.com")
    add_line(order, "TENT-1", 1, "Tent")
    return order


def hub_tells_customers(tenant) -> None:
    FulfilmentSettings.objects.create(tenant=tenant, notify_via=NotifyVia.HUB)


def ship(order, capture, carrier="UPS", tracking="1Z999AA10123456784"):
    """Fulfil, then run what the task cluster would: the push, then anything it queued."""
    with capture(execute=True):
        fulfilment = fulfil(order, tracking, carrier)
    done = []
    while queued := list(OrmQ.objects.order_by("pk")):
        for row in queued:
            row.delete()
            with capture(execute=True):
                done.append(import_string(row.task["func"])(*row.task["args"], **row.task["kwargs"]))
    fulfilment.refresh_from_db()
    return fulfilment, done


def test_the_hub_emails_the_tracking_link_and_the_platform_does_not(
    order, platform, sendgrid_a, office, django_capture_on_commit_callbacks
):
    hub_tells_customers(order.tenant)
    fulfilment, _ = ship(order, django_capture_on_commit_callbacks)
    assert platform.calls[0].notify_customer is False  # the platform sends no email of its own
    [email] = office.emails
    assert email.to == "ann@example.com" and email.subject == "Your order 1001 has shipped"
    assert "UPS 1Z999AA10123456784" in email.text and fulfilment.tracking_url in email.text
    assert fulfilment.tracking_url in email.html
    message = Message.objects.get()
    assert message.purpose == f"fulfilment:{fulfilment.pk}" and message.connection == sendgrid_a


def test_a_notice_task_run_twice_sends_once(order, platform, sendgrid_a, office, django_capture_on_commit_callbacks):
    hub_tells_customers(order.tenant)
    fulfilment, _ = ship(order, django_capture_on_commit_callbacks)
    from campaigns.shipping_notices import send_notice

    send_notice(fulfilment.pk)
    assert len(office.emails) == 1 and Message.objects.count() == 1


def test_an_order_without_an_email_gets_an_sms(order, platform, twilio_a, office, django_capture_on_commit_callbacks):
    customer = Customer.objects.create(
        tenant=order.tenant, connection=order.connection, external_id="c1", phone="+15005550006"
    )
    order.email, order.customer = "", customer
    order.save()
    hub_tells_customers(order.tenant)
    ship(order, django_capture_on_commit_callbacks)
    [sms] = office.sms
    assert sms.to == "+15005550006" and "order 1001 has shipped, UPS 1Z999AA10123456784" in sms.body


def test_by_default_the_platform_tells_the_customer_and_the_hub_sends_nothing(
    order, platform, sendgrid_a, office, django_capture_on_commit_callbacks
):
    ship(order, django_capture_on_commit_callbacks)
    assert platform.calls[0].notify_customer is True
    assert office.emails == [] and not Message.objects.exists()


def test_a_push_the_platform_refused_sends_no_notice(
    order, platform, sendgrid_a, office, django_capture_on_commit_callbacks
):
    hub_tells_customers(order.tenant)
    platform.refuse[order.external_id] = PushResult(ok=False, message="Tracking number is invalid")
    ship(order, django_capture_on_commit_callbacks)
    assert office.emails == [] and not Message.objects.exists()


def test_without_a_messaging_connection_nothing_is_sent_and_it_says_why(
    order, platform, office, django_capture_on_commit_callbacks
):
    hub_tells_customers(order.tenant)
    _, done = ship(order, django_capture_on_commit_callbacks)
    assert "no messaging connection" in done[-1]
    assert office.emails == []


def test_no_notice_when_the_fulfilment_says_not_to(
    order, platform, sendgrid_a, office, django_capture_on_commit_callbacks
):
    hub_tells_customers(order.tenant)
    with django_capture_on_commit_callbacks(execute=True):
        fulfil(order, "1Z1", "UPS", notify_customer=False)
    from tests.commerce.test_fulfilment import run_queued

    run_queued()
    assert office.emails == [] and not OrmQ.objects.exists()
    assert not Message.objects.exists()


def test_a_phone_number_the_providers_would_refuse_is_reported_not_raised(
    order, platform, twilio_a, office, django_capture_on_commit_callbacks
):
    customer = Customer.objects.create(tenant=order.tenant, connection=order.connection, external_id="c1", phone="12")
    order.email, order.customer = "", customer
    order.save()
    hub_tells_customers(order.tenant)
    _, done = ship(order, django_capture_on_commit_callbacks)
    assert done[-1].startswith("not sent:") and office.sms == []
