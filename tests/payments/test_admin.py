"""Payments in the SuperAdmin dashboard, and payment connections on the connection page."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME

from integrations.models import ConnectionStatus, SyncRun
from payments import service
from payments.gateways.base import PaymentStatus
from payments.models import Payment, Refund

from .fake_gateway import CLIENT_SECRET

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/payments/payment/"


@pytest.fixture
def admin_client(client, superadmin):
    client.force_login(superadmin)
    return client


def pay(connection, amount="100.00", currency="USD", method="pm_card_visa", **kwargs) -> Payment:
    return service.create_payment(
        connection.tenant, connection, Decimal(amount), currency, payment_method=method, **kwargs
    )


def test_the_list_shows_payments_with_figures_per_gateway(admin_client, stripe_a, stripe_b, fake_bank):
    paid = pay(stripe_a, "100.00")
    service.refund(paid, Decimal("40"))
    pay(stripe_b, "500", "JPY")
    pay(stripe_a, "20.00", method="pm_card_chargeDeclined")

    page = admin_client.get(CHANGELIST).content.decode()

    assert 'id="payment-figures"' in page
    assert "Per gateway (3 payments as filtered)" in page
    assert "100.00 USD" in page and "40.00 USD" in page and "60.00 USD" in page  # volume, refunded, net
    assert "500 JPY" in page
    assert "66.7%" in page  # 2 taken of 3 that ended


def test_the_figures_follow_the_filters(admin_client, stripe_a, fake_bank):
    pay(stripe_a, "100.00")
    pay(stripe_a, "20.00", method="pm_card_chargeDeclined")

    page = admin_client.get(CHANGELIST, {"status__exact": "failed"}).content.decode()

    assert "Per gateway (1 payment as filtered)" in page
    assert "no money taken" in page


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status__exact": "succeeded"}, {"pi_0001"}),
        ({"gateway": "stripe"}, {"pi_0001", "pi_0002"}),
        ({"gateway": "paypal"}, set()),
        ({"currency": "JPY"}, {"pi_0002"}),
        ({"q": "pi_0002"}, {"pi_0002"}),
    ],
)
def test_filters_and_search_by_gateway_id(admin_client, stripe_a, fake_bank, params, expected):
    pay(stripe_a, "100.00")
    pay(stripe_a, "700", "JPY", method="pm_card_authenticationRequired")

    response = admin_client.get(CHANGELIST, params)

    assert {p.gateway_id for p in response.context["cl"].result_list} == expected


def test_the_date_filter(admin_client, stripe_a, fake_bank):
    pay(stripe_a)
    # As the filter's own "Today" / "Past 7 days" links send them.
    old = {"created_at__gte": "2000-01-01 00:00:00+00:00", "created_at__lt": "2000-01-02 00:00:00+00:00"}
    assert list(admin_client.get(CHANGELIST, old).context["cl"].result_list) == []
    recent = {"created_at__gte": "2000-01-01 00:00:00+00:00"}
    assert len(admin_client.get(CHANGELIST, recent).context["cl"].result_list) == 1


def test_a_payment_page_shows_its_refunds_and_no_secret(admin_client, stripe_a, fake_bank):
    payment = pay(stripe_a, method="pm_card_authenticationRequired")
    Payment.objects.filter(pk=payment.pk).update(status=PaymentStatus.SUCCEEDED, amount_captured=Decimal("100"))
    service.refund(payment, Decimal("12.5"), "scratched")

    page = admin_client.get(f"{CHANGELIST}{payment.pk}/change/").content.decode()

    assert "scratched" in page
    assert "12.5" in page
    assert CLIENT_SECRET not in page
    assert "client_secret" not in page


def test_a_payment_page_shows_the_gateways_ids_but_no_masked_card(admin_client, stripe_a, fake_bank):
    payment = pay(stripe_a)
    Payment.objects.filter(pk=payment.pk).update(extra={"capture_id": "CAP-1", "account_number": "XXXX1111"})

    page = admin_client.get(f"{CHANGELIST}{payment.pk}/change/").content.decode()

    assert "capture_id: CAP-1" in page
    assert "XXXX1111" not in page


def test_the_refund_action_asks_for_the_amount_then_refunds(admin_client, stripe_a, fake_bank):
    payment = pay(stripe_a)

    form = admin_client.post(CHANGELIST, {"action": "refund_selected", ACTION_CHECKBOX_NAME: [payment.pk]})
    assert form.status_code == 200
    assert "Refundable" in form.content.decode() and "100.00 USD" in form.content.decode()
    assert not Refund.objects.exists()

    done = admin_client.post(
        CHANGELIST,
        {
            "action": "refund_selected",
            ACTION_CHECKBOX_NAME: [payment.pk],
            "apply": "1",
            "amount": "30",
            "reason": "late",
        },
        follow=True,
    )

    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded) == (PaymentStatus.PARTIALLY_REFUNDED, Decimal("30"))
    assert Refund.objects.get().reason == "late"
    assert f"Payment {payment.pk}: refund of 30.00 USD succeeded." in done.content.decode()


def test_the_refund_action_refuses_more_than_is_left(admin_client, stripe_a, fake_bank):
    payment = pay(stripe_a)
    done = admin_client.post(
        CHANGELIST,
        {"action": "refund_selected", ACTION_CHECKBOX_NAME: [payment.pk], "apply": "1", "amount": "100.01"},
        follow=True,
    )
    assert "At most 100.00 USD can be refunded" in done.content.decode()
    assert not Refund.objects.exists()


def test_an_amount_refunds_part_of_one_payment_only(admin_client, stripe_a, fake_bank):
    first, second = pay(stripe_a), pay(stripe_a)
    page = admin_client.post(
        CHANGELIST,
        {"action": "refund_selected", ACTION_CHECKBOX_NAME: [first.pk, second.pk], "apply": "1", "amount": "5"},
    )
    assert "Choose one payment to refund part of it" in page.content.decode()
    assert not Refund.objects.exists()

    admin_client.post(
        CHANGELIST, {"action": "refund_selected", ACTION_CHECKBOX_NAME: [first.pk, second.pk], "apply": "1"}
    )
    assert set(Payment.objects.values_list("status", flat=True)) == {PaymentStatus.REFUNDED}


def test_asking_the_gateway_again_settles_a_payment_whose_answer_was_lost(admin_client, stripe_a, fake_bank):
    fake_bank.lose_answers(3)
    payment = pay(stripe_a)
    assert payment.status == PaymentStatus.PROCESSING

    admin_client.post(CHANGELIST, {"action": "resend_selected", ACTION_CHECKBOX_NAME: [payment.pk]})

    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    assert len(fake_bank.charges) == 1


def test_a_client_user_cannot_reach_payments(client, stripe_a, make_member, fake_bank):
    pay(stripe_a)
    client.force_login(make_member(stripe_a.tenant))
    assert client.get(CHANGELIST).status_code == 302


# --- The connection page -----------------------------------------------------------------------------------


def test_test_connection_on_a_payment_connection_asks_its_gateway(admin_client, stripe_a, fake_bank):
    response = admin_client.post(f"/admin/integrations/connection/{stripe_a.pk}/test/", follow=True)
    stripe_a.refresh_from_db()
    assert stripe_a.status == ConnectionStatus.CONNECTED
    assert "Fake gateway, test mode." in response.content.decode()


def test_sync_now_on_a_payment_connection_says_there_is_nothing_to_sync(admin_client, stripe_a, fake_bank):
    response = admin_client.post(f"/admin/integrations/connection/{stripe_a.pk}/sync/", follow=True)
    assert "Stripe connections have nothing to sync" in response.content.decode()
    assert not SyncRun.objects.exists()


def test_the_sync_action_skips_payment_connections(admin_client, stripe_a, fake_bank):
    response = admin_client.post(
        "/admin/integrations/connection/", {"action": "sync_selected", ACTION_CHECKBOX_NAME: [stripe_a.pk]}, follow=True
    )
    assert "0 sync(s) queued. 1 disabled, not yet syncable or nothing-to-sync connection(s) skipped." in (
        response.content.decode()
    )
    assert not SyncRun.objects.exists()
