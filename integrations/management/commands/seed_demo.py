"""Demo tenants with realistic shops, so the admin and the dashboards are not empty on first run.

Idempotent: tenants, users and connections are found by their natural keys, and every commerce row
is upserted by (connection, external id), so a second run updates rows and creates none. Every
tenant and connection it makes is marked `is_demo`. Dates are relative to today, so the demo data
stays recent.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from io import StringIO

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from commerce.ingest import (
    CUSTOMER_FIELDS,
    LEVEL_FIELDS,
    LINE_FIELDS,
    ORDER_FIELDS,
    PRODUCT_FIELDS,
    REFUND_FIELDS,
    VARIANT_FIELDS,
    bulk_upsert,
)
from commerce.models import (
    Customer,
    FinancialStatus,
    FulfillmentStatus,
    InventoryLevel,
    Order,
    OrderLine,
    OrderStatus,
    Product,
    ProductVariant,
    Refund,
)
from integrations.models import Connection, ConnectionStatus, SyncFrequency
from tenants.models import Membership, Role, Tenant

FIRST = [
    "Ava",
    "Liam",
    "Mia",
    "Noah",
    "Zoe",
    "Omar",
    "Ivy",
    "Leo",
    "Nia",
    "Eli",
    "Maya",
    "Kai",
    "Lena",
    "Theo",
    "Rosa",
    "Finn",
    "Aria",
    "Sami",
    "Jade",
    "Owen",
]
LAST = [
    "Patel",
    "Garcia",
    "Smith",
    "Kim",
    "Novak",
    "Okafor",
    "Rossi",
    "Müller",
    "Silva",
    "Dubois",
    "Tanaka",
    "Jones",
    "Haddad",
    "Larsen",
    "Brown",
]


@dataclass(frozen=True)
class DemoShop:
    slug: str
    name: str
    currency: str
    time_zone: str
    country: str
    channels: tuple[tuple[str, str, str], ...]  # (platform, connection name, currency)
    catalogue: tuple[tuple[str, str, str], ...]  # (title, product type, base price)


SHOPS = (
    DemoShop(
        "acme-outdoor",
        "Acme Outdoor",
        "USD",
        "America/New_York",
        "US",
        (
            ("shopify", "Acme Shopify store", "USD"),
            ("amazon", "Acme on Amazon US", "USD"),
            ("woocommerce", "Acme outlet (WooCommerce)", "USD"),
        ),
        (
            ("Trail Runner Shoe", "Footwear", "129.00"),
            ("Alpine Down Jacket", "Outerwear", "249.00"),
            ("Summit Backpack 30L", "Bags", "149.00"),
            ("Merino Base Layer", "Apparel", "79.00"),
            ("Camp Stove Mini", "Camping", "59.00"),
            ("Insulated Bottle 1L", "Accessories", "34.00"),
            ("Trekking Poles", "Accessories", "89.00"),
            ("Rain Shell", "Outerwear", "179.00"),
            ("Headlamp 400", "Camping", "45.00"),
            ("Sleeping Bag -5°C", "Camping", "219.00"),
        ),
    ),
    DemoShop(
        "bella-boutique",
        "Bella Boutique",
        "GBP",
        "Europe/London",
        "GB",
        (
            ("shopify", "Bella Shopify (UK)", "GBP"),
            ("ebay", "Bella on eBay", "GBP"),
            ("tiktok", "Bella TikTok Shop", "EUR"),
        ),
        (
            ("Silk Scarf", "Accessories", "45.00"),
            ("Linen Dress", "Dresses", "120.00"),
            ("Leather Tote", "Bags", "185.00"),
            ("Cashmere Beanie", "Accessories", "55.00"),
            ("Wide-leg Trousers", "Trousers", "95.00"),
            ("Gold Hoop Earrings", "Jewellery", "65.00"),
            ("Wool Coat", "Outerwear", "290.00"),
            ("Cotton Tee", "Tops", "28.00"),
        ),
    ),
)

CUSTOMERS_PER_SHOP = 80
ORDERS_PER_CHANNEL = 120
SIZES = ("S", "M", "L")
CENT = Decimal("0.01")


def _money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


class Command(BaseCommand):
    help = "Create or refresh the demo tenants, their users, connections and a few hundred orders."

    def handle(self, *args, **options) -> None:
        password = settings.DEMO_PASSWORD
        for shop in SHOPS:
            with transaction.atomic():
                tenant, owner = self.seed_shop(shop, password)
            # The demo writes rows directly, without ingest's signals: link its SKUs to stock items.
            call_command("link_stock", tenant=tenant.slug, stdout=StringIO())
            orders = Order.objects.for_tenant(tenant).count()
            self.stdout.write(f"{tenant.name}: {orders} orders; client login {owner.username} / {password}")
        self.stdout.write(self.style.SUCCESS("Demo data is ready."))

    def seed_shop(self, shop: DemoShop, password: str):
        rng = random.Random(shop.slug)
        now = timezone.now().replace(minute=0, second=0, microsecond=0)
        tenant, _ = Tenant.objects.update_or_create(
            slug=shop.slug,
            defaults={
                "name": shop.name,
                "contact_email": f"owner@{shop.slug}.example",
                "base_currency": shop.currency,
                "time_zone": shop.time_zone,
                "is_demo": True,
            },
        )
        User = get_user_model()
        owner, created = User.objects.get_or_create(
            username=f"owner@{shop.slug}.example", defaults={"email": f"owner@{shop.slug}.example"}
        )
        if created:
            owner.set_password(password)
            owner.save()
        Membership.objects.get_or_create(tenant=tenant, user=owner, defaults={"role": Role.OWNER})

        for platform, name, currency in shop.channels:
            connection, _ = Connection.objects.update_or_create(
                tenant=tenant,
                name=name,
                defaults={
                    "platform": platform,
                    "is_demo": True,
                    "status": ConnectionStatus.UNTESTED,
                    "sync_frequency": SyncFrequency.MANUAL,
                    "enabled": False,
                },
            )
            self.seed_channel(rng, tenant, connection, shop, currency, now)
        self.seed_segments(tenant)
        return tenant, owner

    def seed_segments(self, tenant) -> None:
        """Two customer segments for the Campaigns pages (a campaign needs a real messaging
        connection, which the demo does not pretend to have)."""
        from campaigns.models import Segment

        segments = {
            "Best customers": {"match": "all", "rules": [{"field": "order_count", "op": "gte", "value": 3}]},
            "Lapsed: no order in 90 days": {
                "match": "all",
                "rules": [
                    {"field": "order_count", "op": "gte", "value": 1},
                    {"field": "last_order_at", "op": "not_within_days", "value": 90},
                ],
            },
        }
        for name, rules in segments.items():
            Segment.objects.update_or_create(tenant=tenant, name=name, defaults={"rules": rules})

    def seed_channel(self, rng, tenant, connection, shop: DemoShop, currency: str, now) -> None:
        base = dict(tenant=tenant, connection=connection)
        prefix = connection.platform[:3].upper()

        customers = []
        for i in range(CUSTOMERS_PER_SHOP):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            customers.append(
                Customer(
                    **base,
                    external_id=f"C{i:04d}",
                    email=f"{first}.{last}.{i}@example.com".lower().replace("ü", "u"),
                    first_name=first,
                    last_name=last,
                    country=shop.country,
                    accepts_marketing=rng.random() < 0.6,
                    platform_created_at=now - timedelta(days=rng.randint(30, 720)),
                    platform_updated_at=now - timedelta(days=rng.randint(0, 30)),
                    raw={"demo": True},
                )
            )
        customer_ids = bulk_upsert(Customer, customers, CUSTOMER_FIELDS)

        emails = {c.external_id: c.email for c in customers}

        products, variants, levels = [], [], []
        for p, (title, kind, _price) in enumerate(shop.catalogue):
            products.append(
                Product(
                    **base,
                    external_id=f"P{p:03d}",
                    title=title,
                    product_type=kind,
                    vendor=shop.name,
                    status="active",
                    platform_updated_at=now,
                    raw={"demo": True},
                )
            )
        product_ids = bulk_upsert(Product, products, PRODUCT_FIELDS)
        for p, (title, _kind, price) in enumerate(shop.catalogue):
            for size in SIZES:
                variants.append(
                    ProductVariant(
                        **base,
                        product_id=product_ids[f"P{p:03d}"],
                        external_id=f"P{p:03d}-{size}",
                        sku=f"{shop.slug[:4].upper()}-{p:03d}-{size}",
                        title=f"{title} / {size}",
                        price=Decimal(price),
                        currency=currency,
                        reorder_point=5,
                        platform_updated_at=now,
                        raw={"demo": True},
                    )
                )
        variant_ids = bulk_upsert(ProductVariant, variants, [*VARIANT_FIELDS, "reorder_point"])
        for variant in variants:
            # A few items low or out of stock, so the dashboard's stock panels have something to show.
            roll = rng.random()
            available = 0 if roll < 0.06 else rng.randint(1, 4) if roll < 0.18 else rng.randint(8, 140)
            levels.append(
                InventoryLevel(
                    **base,
                    variant_id=variant_ids[variant.external_id],
                    external_id=f"{variant.external_id}@main",
                    location_id="main",
                    location_name="Main warehouse",
                    available=available,
                    platform_updated_at=now,
                    raw={"demo": True},
                )
            )
        bulk_upsert(InventoryLevel, levels, LEVEL_FIELDS)

        orders, lines, refunds = [], [], []
        for n in range(ORDERS_PER_CHANNEL):
            external_id = f"{prefix}-{n:05d}"
            placed = now - timedelta(days=rng.uniform(0, 120), minutes=rng.randint(0, 59))
            customer_key = f"C{rng.randrange(CUSTOMERS_PER_SHOP):04d}"
            order_lines, subtotal = [], Decimal("0")
            for li in range(rng.choice((1, 1, 2, 3))):
                variant = rng.choice(variants)
                qty = rng.choice((1, 1, 1, 2, 3))
                line_total = variant.price * qty
                subtotal += line_total
                order_lines.append(
                    OrderLine(
                        **base,
                        external_id=f"{external_id}-L{li}",
                        variant_id=variant_ids[variant.external_id],
                        sku=variant.sku,
                        title=variant.title,
                        quantity=qty,
                        unit_price=variant.price,
                        total=line_total,
                        raw={"demo": True},
                    )
                )
            discount = _money(subtotal * Decimal("0.1")) if rng.random() < 0.15 else Decimal("0")
            shipping = Decimal("0") if subtotal > 100 else Decimal("7.95")
            tax = _money((subtotal - discount) * Decimal("0.08"))
            total = subtotal - discount + shipping + tax
            age = now - placed
            roll = rng.random()
            status = OrderStatus.CANCELLED if roll < 0.04 else OrderStatus.OPEN
            financial = FinancialStatus.VOIDED if status == OrderStatus.CANCELLED else FinancialStatus.PAID
            fulfilled = status != OrderStatus.CANCELLED and (age > timedelta(days=3) or rng.random() < 0.4)
            if fulfilled and age > timedelta(days=10):
                status = OrderStatus.COMPLETED
            refund_amount = None
            if status == OrderStatus.COMPLETED and rng.random() < 0.06:
                refund_amount = _money(total * Decimal(rng.choice(("1", "0.5"))))
                financial = FinancialStatus.REFUNDED if refund_amount == total else FinancialStatus.PARTIALLY_REFUNDED
            orders.append(
                Order(
                    **base,
                    external_id=external_id,
                    number=f"{prefix}{1000 + n}",
                    channel=connection.platform,
                    customer_id=customer_ids[customer_key],
                    email=emails[customer_key],
                    status=status,
                    financial_status=financial,
                    fulfillment_status=FulfillmentStatus.FULFILLED if fulfilled else FulfillmentStatus.UNFULFILLED,
                    currency=currency,
                    subtotal=subtotal,
                    discounts=discount,
                    shipping=shipping,
                    tax=tax,
                    total=total,
                    placed_at=placed,
                    platform_updated_at=placed + timedelta(hours=rng.randint(1, 48)),
                    shipping_address={"country": shop.country},
                    raw={"demo": True},
                )
            )
            for line in order_lines:
                line.order_external_id = external_id
            lines.extend(order_lines)
            if refund_amount is not None:
                refunds.append(
                    (
                        external_id,
                        Refund(
                            **base,
                            external_id=f"{external_id}-R1",
                            amount=refund_amount,
                            currency=currency,
                            reason="Customer return",
                            refunded_at=placed + timedelta(days=rng.randint(5, 9)),
                            raw={"demo": True},
                        ),
                    )
                )
        order_ids = bulk_upsert(Order, orders, ORDER_FIELDS)
        for line in lines:
            line.order_id = order_ids[line.order_external_id]
        bulk_upsert(OrderLine, lines, LINE_FIELDS)
        for order_external_id, refund in refunds:
            refund.order_id = order_ids[order_external_id]
        bulk_upsert(Refund, [r for _, r in refunds], REFUND_FIELDS)
