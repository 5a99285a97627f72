"""The platform catalogue: what each platform needs from a person to connect it.

Plain data. The admin renders each platform's credential form from it, the API serves it, and the
connectors (one module each) read their credentials by these field names.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from django.db import models


class Platform(models.TextChoices):
    SHOPIFY = "shopify", "Shopify"
    WOOCOMMERCE = "woocommerce", "WooCommerce"
    AMAZON = "amazon", "Amazon SP-API"
    EBAY = "ebay", "eBay"
    TIKTOK = "tiktok", "TikTok Shop"
    MANUAL = "manual", "Manual upload"
    STRIPE = "stripe", "Stripe"
    PAYPAL = "paypal", "PayPal"
    SQUARE = "square", "Square"
    AUTHORIZE_NET = "authorize_net", "Authorize.Net"
    TWILIO = "twilio", "Twilio SMS"
    SENDGRID = "sendgrid", "SendGrid"
    MAILCHIMP = "mailchimp", "Mailchimp"
    HUBSPOT = "hubspot", "HubSpot"
    SALESFORCE = "salesforce", "Salesforce"


class Kind(models.TextChoices):
    COMMERCE = "commerce", "E-commerce platform"
    PAYMENTS = "payments", "Payment gateway"
    MESSAGING = "messaging", "Messaging"
    CRM = "crm", "CRM"


@dataclass(frozen=True)
class CredentialField:
    name: str
    label: str
    secret: bool = False
    required: bool = True
    help_text: str = ""
    example: str = ""
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlatformSpec:
    platform: str
    label: str
    kind: str
    credentials: tuple[CredentialField, ...]
    scopes: tuple[str, ...] = ()
    streams: tuple[str, ...] = ()
    # Requests per second the platform allows one connection, and the burst it tolerates.
    rate_limit: float = 2.0
    rate_burst: int = 4
    docs_url: str = ""
    oauth: bool = False
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        data = asdict(self)
        data["credentials"] = [asdict(f) for f in self.credentials]
        return data

    def secret_fields(self) -> set[str]:
        return {f.name for f in self.credentials if f.secret}


_F = CredentialField
COMMERCE_STREAMS = ("orders", "products", "customers", "inventory")
# A CRM's contacts pulled in as customers, and the hub's customers pushed out as contacts.
CRM_STREAMS = ("customers", "contacts")

CATALOGUE: dict[str, PlatformSpec] = {
    spec.platform: spec
    for spec in [
        PlatformSpec(
            Platform.SHOPIFY,
            "Shopify",
            Kind.COMMERCE,
            (
                _F("shop_domain", "Shop domain", help_text="Without https://", example="mystore.myshopify.com"),
                _F(
                    "access_token",
                    "Admin API access token",
                    secret=True,
                    required=False,
                    help_text="From a custom app: Settings → Apps → Develop apps → API credentials.",
                    example="shpat_…",
                ),
                _F("client_id", "Client ID", required=False, help_text="For client-credentials tokens instead."),
                _F("client_secret", "Client secret", secret=True, required=False),
                _F(
                    "webhook_secret",
                    "Webhook signing secret",
                    secret=True,
                    required=False,
                    help_text="Only for webhooks created in the Shopify admin (Settings → Notifications); the ones "
                    "the hub registers are signed with the app's client secret.",
                ),
            ),
            scopes=("read_orders", "read_all_orders", "read_products", "read_customers", "read_inventory"),
            streams=COMMERCE_STREAMS,
            rate_limit=2.0,
            rate_burst=40,
            docs_url="https://shopify.dev/docs/api/admin-graphql",
            oauth=True,
        ),
        PlatformSpec(
            Platform.WOOCOMMERCE,
            "WooCommerce",
            Kind.COMMERCE,
            (
                _F("site_url", "Site URL", help_text="The store's address, https://", example="https://mystore.com"),
                _F("consumer_key", "Consumer key", secret=True, example="ck_…"),
                _F("consumer_secret", "Consumer secret", secret=True, example="cs_…"),
                _F("api_version", "API version", required=False, example="wc/v3", choices=("wc/v3",)),
                _F(
                    "allow_insecure_http",
                    "Allow plain http",
                    required=False,
                    help_text="Only for a store without HTTPS, with the operator's explicit permission: requests "
                    "are then signed with OAuth 1.0a instead of sending the keys.",
                    choices=("true",),
                ),
                _F(
                    "webhook_secret",
                    "Webhook secret",
                    secret=True,
                    required=False,
                    help_text="Set by the hub when it registers webhooks; for a webhook made by hand in WooCommerce → "
                    "Settings → Advanced → Webhooks, copy its secret here.",
                ),
            ),
            scopes=("read",),
            streams=COMMERCE_STREAMS,
            rate_limit=5.0,
            rate_burst=10,
            docs_url="https://woocommerce.github.io/woocommerce-rest-api-docs/",
        ),
        PlatformSpec(
            Platform.AMAZON,
            "Amazon SP-API",
            Kind.COMMERCE,
            (
                _F(
                    "lwa_client_id",
                    "LWA client ID",
                    help_text="Developer Central → your app → View LWA credentials.",
                    example="amzn1.application-oa2-client.…",
                ),
                _F("lwa_client_secret", "LWA client secret", secret=True),
                _F(
                    "application_id",
                    "Application ID",
                    required=False,
                    help_text="For Connect: Solution Provider Portal → your app → App ID.",
                    example="amzn1.sp.solution.…",
                ),
                _F(
                    "lwa_client_secret_expires_at",
                    "LWA client secret expires on",
                    required=False,
                    help_text="The rotation deadline Developer Central shows for the secret (YYYY-MM-DD): the "
                    "connection test warns 30 days before it.",
                    example="2026-09-30",
                ),
                _F(
                    "refresh_token",
                    "Refresh token",
                    secret=True,
                    required=False,
                    help_text="Set by Connect; or from authorising the app yourself in Seller Central (Apps and "
                    "Services → Manage Your Apps).",
                    example="Atzr|…",
                ),
                _F(
                    "seller_id",
                    "Seller ID",
                    required=False,
                    help_text="Set by Connect; or Seller Central → Settings → Account Info.",
                ),
                _F("region", "Region", example="NA", choices=("NA", "EU", "FE")),
                _F(
                    "marketplace_ids",
                    "Marketplace IDs",
                    help_text="Comma-separated, all of the region: NA US ATVPDKIKX0DER, CA A2EUQ1WTGCTBG2, "
                    "MX A1AM78C64UM0Y8, BR A2Q3Y263D00KWC; EU UK A1F83G8C2ARO7P, DE A1PA6795UKMFR9, "
                    "FR A13V1IB3VIYZZH, IT APJ6JRA9NG5V4, ES A1RKKUPIHCS9HS, NL A1805IZSGTT6HS, SE A2NODRKZP88ZB9, "
                    "PL A1C3SOZRARQ6R3, TR A33AVAJ2PDY3EV, AE A2VIGQ35RCS4UG, IN A21TJRUUN4KGV; FE JP A1VC38T7YXB528, "
                    "AU A39IBJ37TRP1C6, SG A19VAU5U5O7RUS.",
                    example="ATVPDKIKX0DER,A2EUQ1WTGCTBG2",
                ),
                _F(
                    "sandbox",
                    "Sandbox",
                    required=False,
                    help_text="Send to Amazon's sandbox (sandbox.sellingpartnerapi-*), which answers canned data.",
                    choices=("true",),
                ),
                _F(
                    "role_arn",
                    "IAM role ARN (not used)",
                    required=False,
                    help_text="SP-API no longer signs requests with AWS credentials: leave empty. Kept only "
                    "because older setup guides ask for it.",
                ),
                _F(
                    "aws_access_key_id",
                    "AWS access key ID (not used)",
                    required=False,
                    help_text="SP-API no longer signs requests with AWS credentials: leave empty. Kept only "
                    "because older setup guides ask for it.",
                ),
                _F(
                    "aws_secret_access_key",
                    "AWS secret access key (not used)",
                    secret=True,
                    required=False,
                    help_text="SP-API no longer signs requests with AWS credentials: leave empty.",
                ),
            ),
            # Refunds come with orders; fees and settlements are the finances stream.
            streams=("products", "orders", "inventory", "finances"),
            # Amazon limits each operation on its own: the connector keeps a budget per operation
            # (connectors/amazon_client.OPERATIONS) and does not use this connection-wide one.
            rate_limit=0.5,
            rate_burst=20,
            docs_url="https://developer-docs.amazon.com/sp-api/",
            oauth=True,
        ),
        PlatformSpec(
            Platform.EBAY,
            "eBay",
            Kind.COMMERCE,
            (
                _F(
                    "client_id",
                    "App ID (client ID)",
                    help_text="Developer portal → Application Keys, for the connection's environment.",
                    example="YourApp-Hub-PRD-1a2b3c4d5-6e7f8a9b",
                ),
                _F("client_secret", "Cert ID (client secret)", secret=True, example="PRD-1a2b3c4d5e6f-…"),
                _F(
                    "ru_name",
                    "RuName (eBay redirect URL name)",
                    help_text="Developer portal → User Tokens → Get a Token from eBay via Your Application: the "
                    "RuName of the environment. Set its “auth accepted URL” to the hub's OAuth callback address: "
                    "eBay sends the seller back there, and Connect sends eBay the RuName, not the address.",
                    example="Your_Company-YourApp-Hub-PR-abcdefgh",
                ),
                _F("environment", "Environment", example="production", choices=("production", "sandbox")),
                _F(
                    "refresh_token",
                    "Refresh token",
                    secret=True,
                    required=False,
                    help_text="Set by Connect (eBay's consent page, signed in as the seller); lasts about 18 months.",
                    example="v^1.1#i^1#…",
                ),
                _F(
                    "refresh_token_expires_at",
                    "Refresh token expires at",
                    required=False,
                    help_text="Set by Connect (ISO time, UTC): the connection test warns 30 days before.",
                    example="2027-07-15T12:00:00Z",
                ),
                _F(
                    "verification_token",
                    "Account deletion verification token",
                    secret=True,
                    required=False,
                    help_text="32 to 80 letters, digits, _ or -; the same token entered for the marketplace account "
                    "deletion endpoint in the eBay developer portal.",
                ),
            ),
            # The scope URLs Connect asks for (connectors/ebay_oauth.EbayOAuth.scopes).
            scopes=(
                "https://api.ebay.com/oauth/api_scope",
                "https://api.ebay.com/oauth/api_scope/sell.fulfillment",
                "https://api.ebay.com/oauth/api_scope/sell.inventory",
            ),
            streams=("products", "orders", "inventory"),
            rate_limit=5.0,
            rate_burst=10,
            docs_url="https://developer.ebay.com/api-docs/sell/static/selling-ig-landing.html",
            oauth=True,
        ),
        PlatformSpec(
            Platform.TIKTOK,
            "TikTok Shop",
            Kind.COMMERCE,
            (
                _F("app_key", "App key", help_text="Partner Center → App & Service → your app."),
                _F("app_secret", "App secret", secret=True),
                _F(
                    "service_id",
                    "Service ID",
                    required=False,
                    help_text="Partner Center → App & Service → your app; Connect's authorisation link needs it.",
                ),
                _F(
                    "region",
                    "Shop region",
                    required=False,
                    help_text="The shop's country code. A US shop authorises at services.us.tiktokshop.com, others "
                    "at services.tiktokshop.com; Connect fills it in from the authorised shop.",
                    example="US",
                ),
                _F(
                    "access_token",
                    "Access token",
                    secret=True,
                    required=False,
                    help_text="Set by Connect, and refreshed by the hub before it expires.",
                ),
                _F("access_token_expires_at", "Access token expires at", required=False, help_text="Set by Connect."),
                _F(
                    "refresh_token",
                    "Refresh token",
                    secret=True,
                    required=False,
                    help_text="Set by Connect; TikTok issues a new one with each refresh.",
                ),
                _F("refresh_token_expires_at", "Refresh token expires at", required=False, help_text="Set by Connect."),
                _F(
                    "shop_cipher",
                    "Shop cipher",
                    required=False,
                    help_text="Set by Connect from the authorised shops (or looked up on first use).",
                ),
                _F("shop_id", "Shop ID", required=False, help_text="Set by Connect; the shop this connection syncs."),
                _F("shop_name", "Shop name", required=False, help_text="Set by Connect."),
            ),
            streams=("orders", "products"),
            rate_limit=5.0,
            rate_burst=10,
            docs_url="https://partner.tiktokshop.com/docv2",
            oauth=True,
        ),
        # Files a client (or a superadmin for them) uploads: no credentials and nothing to sync.
        # Each tenant has one such connection; commerce.uploads creates it on the first import.
        PlatformSpec(
            Platform.MANUAL,
            "Manual upload",
            Kind.COMMERCE,
            (),
            extra={"upload_formats": ["csv", "json", "xml"]},
        ),
        PlatformSpec(
            Platform.STRIPE,
            "Stripe",
            Kind.PAYMENTS,
            (
                _F("secret_key", "Secret key", secret=True, example="sk_live_… or sk_test_…"),
                _F("webhook_secret", "Webhook signing secret", secret=True, required=False, example="whsec_…"),
            ),
            rate_limit=25.0,
            rate_burst=50,
            docs_url="https://docs.stripe.com/api",
        ),
        PlatformSpec(
            Platform.PAYPAL,
            "PayPal",
            Kind.PAYMENTS,
            (
                _F("client_id", "Client ID"),
                _F("client_secret", "Client secret", secret=True),
                _F("environment", "Environment", example="live", choices=("live", "sandbox")),
                _F("webhook_id", "Webhook ID", required=False),
            ),
            docs_url="https://developer.paypal.com/api/rest/",
        ),
        PlatformSpec(
            Platform.SQUARE,
            "Square",
            Kind.PAYMENTS,
            (
                _F("access_token", "Access token", secret=True),
                _F("location_id", "Location ID"),
                _F("environment", "Environment", example="production", choices=("production", "sandbox")),
                _F("webhook_signature_key", "Webhook signature key", secret=True, required=False),
                _F(
                    "notification_url",
                    "Webhook notification URL",
                    required=False,
                    help_text="The exact URL entered in Square's webhook subscription (Square signs it with the body); "
                    "empty to use the address the request arrived at.",
                ),
            ),
            docs_url="https://developer.squareup.com/reference/square",
        ),
        PlatformSpec(
            Platform.AUTHORIZE_NET,
            "Authorize.Net",
            Kind.PAYMENTS,
            (
                _F("api_login_id", "API login ID"),
                _F("transaction_key", "Transaction key", secret=True),
                _F("signature_key", "Signature key", secret=True, required=False),
                _F("environment", "Environment", example="production", choices=("production", "sandbox")),
            ),
            docs_url="https://developer.authorize.net/api/reference/",
        ),
        PlatformSpec(
            Platform.TWILIO,
            "Twilio SMS",
            Kind.MESSAGING,
            (
                _F("account_sid", "Account SID", example="AC…"),
                _F("auth_token", "Auth token", secret=True),
                _F("from_number", "From number", required=False, example="+15005550006"),
                _F("messaging_service_sid", "Messaging service SID", required=False, example="MG…"),
            ),
            docs_url="https://www.twilio.com/docs/messaging/api",
        ),
        PlatformSpec(
            Platform.SENDGRID,
            "SendGrid",
            Kind.MESSAGING,
            (
                _F("api_key", "API key", secret=True, example="SG.…"),
                _F("from_email", "Verified sender", example="shop@example.com"),
                _F("webhook_public_key", "Event webhook verification key", required=False),
            ),
            # Mail Send is not throttled per second the way SendGrid's other endpoints are (600 a
            # minute); the hub paces a campaign at 10 a second, bursting to 20.
            rate_limit=10.0,
            rate_burst=20,
            docs_url="https://www.twilio.com/docs/sendgrid/api-reference",
        ),
        PlatformSpec(
            Platform.MAILCHIMP,
            "Mailchimp",
            Kind.MESSAGING,
            (
                _F("api_key", "API key", secret=True, example="…-us21"),
                _F("audience_id", "Audience ID", required=False),
            ),
            # The hub's customers who accept marketing, pushed to the audience (campaigns.providers.connector).
            streams=("audience",),
            docs_url="https://mailchimp.com/developer/marketing/api/",
        ),
        PlatformSpec(
            Platform.HUBSPOT,
            "HubSpot",
            Kind.CRM,
            (
                _F(
                    "access_token",
                    "Private app access token",
                    secret=True,
                    required=False,
                    help_text="HubSpot → Settings → Integrations → Private apps → the app → Auth. Or leave it empty "
                    "and connect by OAuth: the app's client ID and secret, then Connect.",
                    example="pat-na1-…",
                ),
                _F("client_id", "Client ID", required=False, help_text="For Connect (OAuth): the app's Auth settings."),
                _F("client_secret", "Client secret", secret=True, required=False, help_text="For Connect (OAuth)."),
                _F("refresh_token", "Refresh token", secret=True, required=False, help_text="Set by Connect."),
                _F("hub_id", "Hub ID", required=False, help_text="Set by Connect: the HubSpot account connected."),
            ),
            # What a private app or the OAuth app needs: contacts read and written, the hub's
            # custom contact properties read and created, and the lists read for tags.
            scopes=(
                "crm.objects.contacts.read",
                "crm.objects.contacts.write",
                "crm.schemas.contacts.read",
                "crm.schemas.contacts.write",
                "crm.lists.read",
            ),
            streams=CRM_STREAMS,
            # 90 requests per 10 s: under a private app's 100 per 10 s (190 on Professional and
            # Enterprise). The connector sends one request at a time, so its searches (one in two
            # or three requests) stay near search's own limit of 5 a second; a 429 is retried.
            rate_limit=9.0,
            rate_burst=90,
            docs_url="https://developers.hubspot.com/docs/api/crm/contacts",
            oauth=True,
        ),
        PlatformSpec(
            Platform.SALESFORCE,
            "Salesforce",
            Kind.CRM,
            (
                _F(
                    "instance_url",
                    "Instance URL",
                    required=False,
                    help_text="Set by Connect, and kept current by the hub from Salesforce's token answers.",
                    example="https://yourorg.my.salesforce.com",
                ),
                _F(
                    "client_id",
                    "Consumer key",
                    help_text="Setup → App Manager → the connected app → View → Manage Consumer Details.",
                ),
                _F("client_secret", "Consumer secret", secret=True),
                _F("refresh_token", "Refresh token", secret=True, required=False, help_text="Set by Connect."),
                _F(
                    "sandbox",
                    "Sandbox",
                    required=False,
                    help_text="Sign in at test.salesforce.com (a sandbox org) instead of login.salesforce.com.",
                    choices=("true",),
                ),
            ),
            scopes=("api", "refresh_token"),
            streams=CRM_STREAMS,
            # Salesforce limits API requests per org per 24 hours, not per second: a steady pace that
            # leaves the org's other integrations their share.
            rate_limit=5.0,
            rate_burst=25,
            docs_url="https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/",
            oauth=True,
        ),
    ]
}


def spec_for(platform: str) -> PlatformSpec:
    return CATALOGUE[platform]
