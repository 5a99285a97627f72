"""One receiver per provider, in a plain dict. See `base.py` for what a receiver does."""

from __future__ import annotations

from .authorize_net import AuthorizeNetReceiver
from .base import Receiver
from .ebay import EbayReceiver
from .generic import GenericReceiver
from .paypal import PayPalReceiver
from .sendgrid import SendGridReceiver
from .shopify import ShopifyReceiver
from .square import SquareReceiver
from .stripe import StripeReceiver
from .tiktok import TikTokReceiver
from .twilio import TwilioReceiver
from .woocommerce import WooCommerceReceiver

RECEIVERS: dict[str, Receiver] = {
    receiver.provider: receiver
    for receiver in [
        ShopifyReceiver(),
        WooCommerceReceiver(),
        StripeReceiver(),
        PayPalReceiver(),
        SquareReceiver(),
        AuthorizeNetReceiver(),
        TwilioReceiver(),
        SendGridReceiver(),
        EbayReceiver(),
        TikTokReceiver(),
        GenericReceiver(),
    ]
}

# The platform a provider's connections have (the generic receiver takes any connection).
PROVIDER_PLATFORMS: dict[str, str] = {
    "shopify": "shopify",
    "woocommerce": "woocommerce",
    "stripe": "stripe",
    "paypal": "paypal",
    "square": "square",
    "authorize_net": "authorize_net",
    "twilio": "twilio",
    "sendgrid": "sendgrid",
    "ebay": "ebay",
    "tiktok": "tiktok",
}
