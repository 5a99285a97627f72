"""Fulfilling an order: what may be fulfilled (quantities left, the platform's carriers), the push
through commerce.pushes (claimed once, retried with backoff, failed with the platform's reason,
recovered after a worker died), and the order's status changing only once the platform accepted.

The platform is `FakePlatform`, registered with `commerce.pushes.register`. It behaves like the
real connectors where it matters: a push whose tracking number already landed on the order returns
that fulfilment instead of creating a second one. The other fulfilment test modules import it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from django.utils.module_loading import import_string
from django_q.models import OrmQ, Schedule

from commerce import fulfilment as service
from commerce import pushes
from commerce.fulfilment import FulfilmentError, fulfil, remaining_by_order
from commerce.models import (
    FulfillmentStatus,
    Fulfilment,
    FulfilmentSettings,
    FulfilmentSource,
    Order,
    OrderLine,
    OrderStatus,
)
from commerce.models import FulfilmentPushStatus as Status
from commerce.pushes import FulfilmentPush, PushResult
from config.tasks import ensure_schedules
from webhooks.models import HookDelivery, HookEvent, HookSubscription
from webhooks.outbound.signing import new_secret

pytestmark = pytest.mark.django_db


# --- The fake platform and helpers (imported by the other fulfilment tests) ----------------------------


class WorkerDied(BaseException):
    """What a killed worker looks like from inside: nothing of ours catches it."""


class FakePlatform:
    """A pusher standing in for integrations. Its platform accepts `accepted` carriers. Each push
    takes the next of `answers` (a PushResult, an exception to raise, or a callable of the push),
    or lands; `refuse` maps an order's external id to a permanent refusal."""

    def __init__(self, accepted: tuple[str, ...] = ("ups", "usps", "royal_mail", "dhl")) -> None:
        self.accepted = list(accepted)
        self.calls: list[FulfilmentPush] = []
        self.landed: dict[tuple[str, str], str] = {}
        self.answers: list = []
        self.refuse: dict[str, PushResult] = {}

    def carriers(self, tenant_id: int, connection_id: int) -> list[str]:
        return list(self.accepted)

    def set_stock(self, push) -> PushResult:
        return PushResult(ok=True)

    def fulfil(self, push: FulfilmentPush) -> PushResult:
        self.calls.append(push)
        key = (push.order_external_id, push.tracking_number)
        if push.tracking_number and key in self.landed:  # an earlier attempt landed: the connectors re-read
            return PushResult(ok=True, remote_id=self.landed[key])
        if push.order_external_id in self.refuse:
            return self.refuse[push.order_external_id]
        if self.answers:
            answer = self.answers.pop(0)
            if isinstance(answer, BaseException):
                raise answer
            return answer(push) if callable(answer) else answer
        return self.land(push)

    def land(self, push: FulfilmentPush) -> PushResult:
        remote_id = f"remote-{len(self.landed) + 1}"
        self.landed[(push.order_external_id, push.tracking_number)] = remote_id
        return PushResult(ok=True, remote_id=remote_id)


def install(platform) -> Callable[[], None]:
    """Register `platform` as the pusher; returns how to put the previous one back."""
    previous = pushes._registered
    pushes.register(platform)
    return lambda: pushes.register(previous)


def run_queued() -> list[str]:
    """Run the fulfilment tasks async_task queued (ORM broker), as the cluster would."""
    done = []
    for queued in OrmQ.objects.order_by("pk"):
        task = queued.task
        if task["func"].startswith("commerce.fulfilment"):
            queued.delete()
            done.append(import_string(task["func"])(*task["args"], **task["kwargs"]))
    return done


def add_line(order: Order, sku: str, quantity: int, title: str = "Tent") -> OrderLine:
    n = OrderLine.objects.count() + 1
    return OrderLine.objects.create(
        tenant=order.tenant,
        connection=order.connection,
        order=order,
        external_id=f"line-{n}",
        sku=sku,
        title=title,
        quantity=quantity,
        unit_price=Decimal("10.00"),
        total=Decimal("10.00") * quantity,
    )


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
    order = make_order(shop, number="1001", external_id="gid://shopify/Order/1001")
    add_line(order, "TENT-1", 2, "Tent")
    add_line(order, "MAT-1", 1, "Mat")
    return order


def lines_of(order: Order) -> dict[str, OrderLine]:
    return {line.sku: line for line in order.lines.all()}


def fulfil_and_push(order, *args, capture, **kwargs) -> Fulfilment:
    with capture(execute=True):
        made = fulfil(order, *args, **kwargs)
    run_queued()
    made.refresh_from_db()
    return made


# --- What may be fulfilled -----------------------------------------------------------------------------


def test_a_partial_fulfilment_ships_the_chosen_lines_and_the_rest_follows(
    order, platform, django_capture_on_commit_callbacks
):
    tent, mat = lines_of(order)["TENT-1"], lines_of(order)["MAT-1"]

    first = fulfil_and_push(order, "1Z001", "UPS", [(tent.pk, 1)], capture=django_capture_on_commit_callbacks)

    assert first.status == Status.PUSHED and first.remote_id == "remote-1"
    assert platform.calls[0].lines == ((tent.external_id, 1),)
    order.refresh_from_db()
    assert order.fulfillment_status == FulfillmentStatus.PARTIAL
    left = remaining_by_order([order.pk])[order.pk]
    assert left.lines == {tent.pk: 1, mat.pk: 1}

    rest = fulfil_and_push(order, "1Z002", "ups", capture=django_capture_on_commit_callbacks)

    assert rest.lines == [] and platform.calls[1].lines == ()  # every line still unfulfilled
    order.refresh_from_db()
    assert order.fulfillment_status == FulfillmentStatus.FULFILLED


def test_explicit_lines_covering_the_whole_order_mark_it_fulfilled(order, platform, django_capture_on_commit_callbacks):
    tent, mat = lines_of(order)["TENT-1"], lines_of(order)["MAT-1"]
    fulfil_and_push(order, "1Z001", "UPS", [(tent.pk, 2), (mat.pk, 1)], capture=django_capture_on_commit_callbacks)
    order.refresh_from_db()
    assert order.fulfillment_status == FulfillmentStatus.FULFILLED


def test_more_than_is_left_is_refused_with_the_figures(order, platform):
    tent = lines_of(order)["TENT-1"]
    with pytest.raises(FulfilmentError, match=r"Only 2 of “Tent \(TENT-1\)” left to fulfil on order #1001, not 3"):
        fulfil(order, "1Z001", "UPS", [(tent.pk, 3)])
    assert not Fulfilment.objects.exists()


def test_a_fulfilment_waiting_for_its_push_already_holds_its_lines(order, platform):
    tent = lines_of(order)["TENT-1"]
    fulfil(order, "1Z001", "UPS", [(tent.pk, 2)])
    with pytest.raises(FulfilmentError, match="Only 0 of"):
        fulfil(order, "1Z002", "UPS", [(tent.pk, 1)])


def test_a_failed_fulfilment_frees_its_lines(order, platform):
    tent = lines_of(order)["TENT-1"]
    failed = fulfil(order, "1Z001", "UPS", [(tent.pk, 2)])
    Fulfilment.objects.filter(pk=failed.pk).update(status=Status.FAILED)
    assert fulfil(order, "1Z002", "UPS", [(tent.pk, 2)]).lines == [[tent.pk, 2]]


def test_a_fulfilment_of_everything_left_leaves_nothing(order, platform):
    fulfil(order, "1Z001", "UPS")
    with pytest.raises(FulfilmentError, match="Nothing is left to fulfil on order #1001"):
        fulfil(order, "1Z002", "UPS")


@pytest.mark.parametrize("quantity", [0, -1, True])
def test_a_quantity_below_one_is_refused(order, platform, quantity):
    with pytest.raises(FulfilmentError, match="at least 1"):
        fulfil(order, "1Z001", "UPS", [(lines_of(order)["TENT-1"].pk, quantity)])


def test_a_line_of_another_order_is_refused(order, platform, shop, make_order):
    other = make_order(shop, number="2002")
    stranger = add_line(other, "TENT-1", 5)
    with pytest.raises(FulfilmentError, match=f"Line {stranger.pk} is not a line of order #1001"):
        fulfil(order, "1Z001", "UPS", [(stranger.pk, 1)])


def test_a_cancelled_or_fulfilled_order_is_refused(order, platform):
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.CANCELLED)
    with pytest.raises(FulfilmentError, match="#1001 is cancelled"):
        fulfil(order, "1Z001", "UPS")
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.OPEN, fulfillment_status=FulfillmentStatus.FULFILLED)
    with pytest.raises(FulfilmentError, match="#1001 is already fulfilled"):
        fulfil(order, "1Z001", "UPS")


def test_the_same_tracking_number_twice_on_one_order_is_refused(order, platform):
    tent, mat = lines_of(order)["TENT-1"], lines_of(order)["MAT-1"]
    first = fulfil(order, "1Z001", "UPS", [(tent.pk, 1)])
    with pytest.raises(
        FulfilmentError, match=f"already has a fulfilment with the tracking number 1Z001 .fulfilment {first.pk}"
    ):
        fulfil(order, "1Z001", "UPS", [(mat.pk, 1)])


def test_any_spelling_of_an_accepted_carrier_becomes_its_code_with_a_tracking_link(order, platform):
    made = fulfil(order, " 1Z999AA10123456784 ", "United Parcel Service")
    assert made.carrier == "ups"
    assert made.tracking_number == "1Z999AA10123456784"
    assert made.tracking_url == "https://www.ups.com/track?tracknum=1Z999AA10123456784"


def test_an_unknown_carrier_is_refused_with_the_platforms_list(order, platform):
    with pytest.raises(FulfilmentError) as refused:
        fulfil(order, "1Z001", "Pony Express")
    assert str(refused.value) == "Unknown carrier “Pony Express”. Accepted: UPS, USPS, Royal Mail, DHL Express."
    assert refused.value.field == "carrier"
    assert refused.value.accepted == ["ups", "usps", "royal_mail", "dhl"]
    assert not Fulfilment.objects.exists()


def test_a_carrier_the_hub_knows_but_the_platform_does_not_take_is_refused(order, platform):
    with pytest.raises(FulfilmentError, match=r"Unknown carrier “FedEx”\. Accepted: UPS, USPS"):
        fulfil(order, "1Z001", "FedEx")


def test_no_carrier_is_refused_with_the_list(order, platform):
    with pytest.raises(FulfilmentError, match=r"Choose a carrier\. Accepted: UPS, USPS, Royal Mail, DHL Express\."):
        fulfil(order, "1Z001", "")


def test_an_order_from_a_platform_taking_no_fulfilments_is_refused(order, platform):
    platform.accepted = []
    with pytest.raises(FulfilmentError, match="Orders from Shopify cannot be fulfilled through the hub"):
        fulfil(order, "1Z001", "UPS")


def test_notifying_the_customer_follows_the_tenants_setting_unless_told(order, platform, tenant_a):
    assert fulfil(order, "1Z001", "UPS", [(lines_of(order)["TENT-1"].pk, 1)]).notify_customer is True
    FulfilmentSettings.objects.create(tenant=tenant_a, notify_customers=False)
    assert fulfil(order, "1Z002", "UPS", [(lines_of(order)["TENT-1"].pk, 1)]).notify_customer is False
    assert fulfil(order, "1Z003", "UPS", [(lines_of(order)["MAT-1"].pk, 1)], notify_customer=True).notify_customer


# --- Pushing -------------------------------------------------------------------------------------------


def test_nothing_is_queued_before_the_commit_and_the_push_carries_everything(
    order, platform, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        made = fulfil(order, "1Z001", "Royal Mail", notify_customer=True, source=FulfilmentSource.API)
    assert not OrmQ.objects.exists()
    for callback in callbacks:
        callback()
    assert [q.task["func"] for q in OrmQ.objects.all()] == ["commerce.fulfilment.push_many"]
    run_queued()
    assert platform.calls == [
        FulfilmentPush(
            tenant_id=order.tenant_id,
            connection_id=order.connection_id,
            order_external_id="gid://shopify/Order/1001",
            tracking_number="1Z001",
            carrier="royal_mail",
            lines=(),
            tracking_url="https://www.royalmail.com/track-your-item#/tracking-results/1Z001",
            notify_customer=True,
            reference=str(made.pk),
        )
    ]


def test_a_refusal_is_recorded_with_the_platforms_reason_and_the_order_stays_unfulfilled(
    order, platform, django_capture_on_commit_callbacks
):
    platform.answers = [PushResult(ok=False, message="Shopify refused the fulfilment: Tracking number is invalid")]

    made = fulfil_and_push(order, "1Z001", "UPS", capture=django_capture_on_commit_callbacks)

    assert made.status == Status.FAILED
    assert made.last_error == "Shopify refused the fulfilment: Tracking number is invalid"
    assert made.attempts == 1 and made.next_attempt_at is None and made.locked_until is None
    order.refresh_from_db()
    assert order.fulfillment_status == FulfillmentStatus.UNFULFILLED
    assert service.due(timezone.now() + timedelta(days=1)) == []  # never retried


def test_a_passing_failure_is_retried_with_backoff_then_lands(order, platform, django_capture_on_commit_callbacks):
    platform.answers = [PushResult(ok=False, message="Shopify answered 503", retryable=True)]

    made = fulfil_and_push(order, "1Z001", "UPS", capture=django_capture_on_commit_callbacks)

    assert made.status == Status.RETRYING and made.last_error == "Shopify answered 503"
    wait = (made.next_attempt_at - made.updated_at).total_seconds()
    assert 60 <= wait <= 72  # the first backoff, with at most 20 % jitter
    order.refresh_from_db()
    assert order.fulfillment_status == FulfillmentStatus.UNFULFILLED

    assert service.sweep() == "0 fulfilments pushed"  # not due yet
    assert len(platform.calls) == 1

    service.sweep(now=made.next_attempt_at + timedelta(seconds=1))
    made.refresh_from_db()
    assert (made.status, made.attempts, made.remote_id, made.last_error) == (Status.PUSHED, 2, "remote-1", "")
    order.refresh_from_db()
    assert order.fulfillment_status == FulfillmentStatus.FULFILLED


def test_each_retry_waits_twice_as_long_up_to_an_hour(settings):
    settings.FULFILMENT_RETRY_BASE_SECONDS = 60
    assert 120 <= service.backoff(2).total_seconds() <= 144
    assert 3600 <= service.backoff(10).total_seconds() <= 4320


def test_retries_give_up_after_the_last_attempt(order, platform, settings, django_capture_on_commit_callbacks):
    settings.FULFILMENT_MAX_ATTEMPTS = 2
    platform.answers = [PushResult(ok=False, message="Timed out", retryable=True)] * 2

    made = fulfil_and_push(order, "1Z001", "UPS", capture=django_capture_on_commit_callbacks)
    service.sweep(now=made.next_attempt_at + timedelta(seconds=1))

    made.refresh_from_db()
    assert made.status == Status.FAILED and made.attempts == 2
    assert made.last_error == "Gave up after 2 attempts. Timed out"


def test_a_push_that_raises_is_retried_not_lost(order, platform, django_capture_on_commit_callbacks):
    platform.answers = [RuntimeError("connector bug")]
    made = fulfil_and_push(order, "1Z001", "UPS", capture=django_capture_on_commit_callbacks)
    assert made.status == Status.RETRYING and made.last_error == "RuntimeError: connector bug"


def test_a_worker_that_dies_mid_push_is_recovered_by_the_sweep_without_a_second_shipment(
    order, platform, django_capture_on_commit_callbacks
):
    def lands_then_dies(push):
        platform.land(push)
        raise WorkerDied

    platform.answers = [lands_then_dies]
    with django_capture_on_commit_callbacks(execute=True):
        made = fulfil(order, "1Z001", "UPS")
    with pytest.raises(WorkerDied):
        run_queued()
    made.refresh_from_db()
    assert made.status == Status.PUSHING and made.locked_until > timezone.now()
    assert service.due() == []  # its lock still holds: nobody else takes it

    service.sweep(now=made.locked_until + timedelta(seconds=1))

    made.refresh_from_db()
    assert (made.status, made.attempts, made.remote_id) == (Status.PUSHED, 2, "remote-1")
    assert len(platform.calls) == 2 and len(platform.landed) == 1  # pushed twice, shipped once
    order.refresh_from_db()
    assert order.fulfillment_status == FulfillmentStatus.FULFILLED


def test_a_push_whose_worker_keeps_dying_is_given_up(order, platform, settings):
    settings.FULFILMENT_MAX_ATTEMPTS = 3
    made = fulfil(order, "1Z001", "UPS", queue=False)
    Fulfilment.objects.filter(pk=made.pk).update(
        status=Status.PUSHING, attempts=3, locked_until=timezone.now() - timedelta(minutes=1)
    )
    assert service.due() == []
    made.refresh_from_db()
    assert made.status == Status.FAILED and "stopped midway" in made.last_error
    assert platform.calls == []


def test_a_fulfilment_being_pushed_is_not_pushed_again(order, platform):
    made = fulfil(order, "1Z001", "UPS", queue=False)
    Fulfilment.objects.filter(pk=made.pk).update(
        status=Status.PUSHING, locked_until=timezone.now() + timedelta(minutes=5)
    )
    assert service.push(made.pk) == f"{made.pk}: already taken or done"
    assert platform.calls == []


def test_a_fulfilment_the_queue_lost_is_pushed_by_the_sweep(order, platform):
    made = fulfil(order, "1Z001", "UPS", queue=False)
    assert service.due() == []  # just made: its task may still come
    service.sweep(now=timezone.now() + service.UNCLAIMED_AFTER + timedelta(seconds=1))
    made.refresh_from_db()
    assert made.status == Status.PUSHED


def test_a_line_the_platform_removed_since_fails_the_push(order, platform):
    tent = lines_of(order)["TENT-1"]
    made = fulfil(order, "1Z001", "UPS", [(tent.pk, 1)], queue=False)
    tent.delete()
    service.push(made.pk)
    made.refresh_from_db()
    assert made.status == Status.FAILED and "no longer on the order" in made.last_error
    assert platform.calls == []


def test_a_landed_push_announces_the_fulfilled_order_to_hooks(order, platform, django_capture_on_commit_callbacks):
    subscription = HookSubscription.objects.create(
        tenant=order.tenant, target_url="https://hooks.example/x", event=HookEvent.ORDER_FULFILLED, secret=new_secret()
    )
    platform.answers = [PushResult(ok=False, message="503", retryable=True)]
    made = fulfil_and_push(order, "1Z001", "UPS", capture=django_capture_on_commit_callbacks)
    assert not HookDelivery.objects.exists()  # nothing before the platform accepted it

    with django_capture_on_commit_callbacks(execute=True):
        service.sweep(now=made.next_attempt_at + timedelta(seconds=1))

    delivery = HookDelivery.objects.get()
    assert delivery.subscription == subscription and delivery.event == HookEvent.ORDER_FULFILLED
    assert delivery.payload["data"]["id"] == order.pk
    assert delivery.payload["data"]["fulfillment_status"] == "fulfilled"


def test_the_sweep_is_a_standing_schedule():
    ensure_schedules()
    schedule = Schedule.objects.get(name="fulfilment-sweep")
    assert (schedule.func, schedule.schedule_type, schedule.minutes) == ("commerce.fulfilment.sweep", "I", 1)
    assert import_string(schedule.func) is service.sweep
