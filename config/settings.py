"""Settings for the commerce integration hub.

Everything is read from the environment (or a `.env` file beside manage.py) through django-environ.
Every setting has a safe development default; with DEBUG=false the process refuses to start unless
the secrets a production deployment needs are set. README.md documents every variable in one table.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=True)

# Development defaults. They are public, so production must replace them: see the check below.
_DEV_SECRET_KEY = "django-insecure-development-only-key-do-not-use-in-production-0123456789"  # noqa: S105 (public dev default, refused in production)
_DEV_FERNET_KEY = "development-only-fernet-key-do-not-use-in-production"

if not DEBUG:
    _missing = [name for name in ("SECRET_KEY", "FERNET_KEYS", "ALLOWED_HOSTS") if not env.str(name, default="")]
    if _missing:
        raise ImproperlyConfigured(
            "DEBUG is false, so these settings must be set in the environment: " + ", ".join(_missing)
        )

SECRET_KEY = env.str("SECRET_KEY", default=_DEV_SECRET_KEY)
# The first key encrypts; every key decrypts. Rotate by putting a new key first, running
# `manage.py rotate_credentials`, then dropping the old key.
FERNET_KEYS = env.list("FERNET_KEYS", default=[_DEV_FERNET_KEY])
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

if not DEBUG and (SECRET_KEY == _DEV_SECRET_KEY or _DEV_FERNET_KEY in FERNET_KEYS):
    raise ImproperlyConfigured("SECRET_KEY and FERNET_KEYS must not be the public development defaults.")

INSTALLED_APPS = [
    "config.apps.SuperAdminConfig",  # replaces django.contrib.admin with the SuperAdmin dashboard
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files, served from here: the API docs work offline
    "django_q",
    "tenants",
    "integrations",
    "commerce",
    "campaigns",
    "payments",
    "webhooks",
]

MIDDLEWARE = [
    # First, so every response carries X-Request-ID and every log line of the request its id.
    "config.middleware.RequestIdMiddleware",
    "config.middleware.MetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "tenants.middleware.CurrentTenantMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
# Webhook deliveries (/webhooks/…) are served with only these (config/handlers.py): senders have no
# session, user, CSRF token or messages. Keep it in MIDDLEWARE's order.
WEBHOOK_MIDDLEWARE = [
    "config.middleware.RequestIdMiddleware",
    "config.middleware.MetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "tenants.context_processors.current_tenant",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The same backend, told SQLite's real parameter limit (config/sqlite3/base.py).
    DATABASES["default"]["ENGINE"] = "config.sqlite3"
    # The web process and the django-q2 worker share one file: WAL lets readers run beside the
    # writer, the busy timeout makes a writer wait instead of failing with "database is locked",
    # and IMMEDIATE transactions take the write lock up front so two writers never deadlock on
    # upgrading a read lock.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": env.int("SQLITE_BUSY_TIMEOUT", default=30),
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
else:
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # Webhook receipt's insert (webhooks/inbox.py) is prepared on the server after this many runs on a
    # connection. Only that statement: the connection itself keeps Django's setting (never prepare),
    # since psycopg would otherwise remember the text of up to 100 other statements per connection,
    # and ingest's are large. Empty turns it off, as a pooler in transaction mode that cannot keep
    # prepared statements needs (PgBouncer before 1.21).
    _prepare_threshold = env.str("DATABASE_PREPARE_THRESHOLD", default="5")
    WEBHOOK_PREPARE_THRESHOLD = int(_prepare_threshold) if _prepare_threshold else None
# Connections are kept between requests (opening one costs a round trip on PostgreSQL and the
# PRAGMAs above on SQLite); a PostgreSQL one is checked before reuse.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# The dashboard's covering indexes INCLUDE extra columns on PostgreSQL; SQLite keeps just their key
# columns, which still serve the queries, so its warning about it is noise.
SILENCED_SYSTEM_CHECKS = ["models.W040"]

# --- Cache ----------------------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "config.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="hub"),
            "TIMEOUT": 300,
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "hub"}}

# --- Task queue (django-q2) -----------------------------------------------------------------------
# The ORM broker on the project's own database in every setup: it keeps a delivery receipt, so a
# task held by a worker that dies is delivered again after `retry` seconds (Redis would lose it).
Q_TIMEOUT = env.int("Q_TIMEOUT", default=1800)
Q_RETRY = env.int("Q_RETRY", default=Q_TIMEOUT + 300)
if Q_RETRY <= Q_TIMEOUT:
    raise ImproperlyConfigured("Q_RETRY must be longer than Q_TIMEOUT, or a slow task is delivered twice.")
Q_CLUSTER = {
    "name": "hub",
    "orm": "default",
    "workers": env.int("Q_WORKERS", default=2),
    "timeout": Q_TIMEOUT,
    "retry": Q_RETRY,
    "max_attempts": 5,
    # Our tasks record their own failures where a person sees them (sync runs, event rows), so a
    # failed task is acknowledged rather than redelivered forever.
    "ack_failures": True,
    "save_limit": 1000,
    # Per function, so the once-a-minute heartbeat does not push real task history out.
    "save_limit_per": "func",
    "catch_up": False,
    "poll": 1,
    "label": "Task queue",
}
# /health/ reports the task cluster as down when its heartbeat task has not run for this long.
HEALTH_HEARTBEAT_MAX_AGE = env.int("HEALTH_HEARTBEAT_MAX_AGE", default=180)

# --- Auth -----------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = ["tenants.backends.CaseInsensitiveUsernameBackend"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard:home"
LOGOUT_REDIRECT_URL = "login"

# --- REST API -------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tenants.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": ["tenants.throttling.ApiRateThrottle"],
    "DEFAULT_PAGINATION_CLASS": "config.api.CursorPagination",
    "DEFAULT_SCHEMA_CLASS": "tenants.schema.AutoSchema",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "config.api.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
# Requests per hour: per API key by its tier, and per signed-in user (the default rate). Counted in
# fixed one-hour windows in the cache, so every process shares them when REDIS_URL is set.
API_RATE_DEFAULT = env.int("API_RATE_DEFAULT", default=1000)
API_RATE_PREMIUM = env.int("API_RATE_PREMIUM", default=10000)
SPECTACULAR_SETTINGS = {
    "TITLE": "Commerce hub API",
    "DESCRIPTION": (
        "The public REST API of the commerce integration hub. Authenticate with an API key "
        "(`Authorization: Bearer <key>` or `X-Api-Key: <key>`) or a signed-in session. Every error is "
        '`{"error": {"code", "message", "details"}}`.'
    ),
    "VERSION": "1",
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several models have a `status`; each choice set gets its own name in the schema.
    "ENUM_NAME_OVERRIDES": {
        "TenantStatusEnum": "tenants.models.TenantStatus",
        "ConnectionStatusEnum": "integrations.models.ConnectionStatus",
        "SyncStatusEnum": "integrations.models.SyncStatus",
        "OrderStatusEnum": "commerce.models.OrderStatus",
        "FulfilmentPushStatusEnum": "commerce.models.FulfilmentPushStatus",
        "FulfilmentSourceEnum": "commerce.models.FulfilmentSource",
        "PaymentStatusEnum": "payments.gateways.base.PaymentStatus",
        "RefundStatusEnum": "payments.gateways.base.RefundStatus",
        "RefundSourceEnum": "payments.models.RefundSource",
    },
}
API_KEY_PREFIX = env.str("API_KEY_PREFIX", default="hub")
# Tenant API keys are looked up through the cache for this long (tenants/key_cache.py): only with a
# cache every process shares, since a revocation must reach them all. 0 looks each one up.
API_KEY_CACHE_SECONDS = env.int("API_KEY_CACHE_SECONDS", default=300 if REDIS_URL else 0)

# --- Integrations ---------------------------------------------------------------------------------
# Outbound requests to user-supplied URLs refuse loopback/private/link-local/metadata addresses
# unless this is on (local development and tests against local fake servers).
INTEGRATIONS_ALLOW_PRIVATE_URLS = env.bool("INTEGRATIONS_ALLOW_PRIVATE_URLS", default=False)
# The Shopify Admin GraphQL API version every request is pinned to.
SHOPIFY_API_VERSION = env.str("SHOPIFY_API_VERSION", default="2025-10")
# A full Shopify sync of a stream with more records than this uses a bulk operation (JSONL export).
SHOPIFY_BULK_THRESHOLD = env.int("SHOPIFY_BULK_THRESHOLD", default=10000)
# Seconds a started OAuth Connect may take before its one-time state lapses.
OAUTH_STATE_TTL_SECONDS = env.int("OAUTH_STATE_TTL_SECONDS", default=600)
# Amazon SP-API application IDs still in draft: their consent page is opened with version=beta.
AMAZON_DRAFT_APPLICATION_IDS = env.list("AMAZON_DRAFT_APPLICATION_IDS", default=[])

# --- Email ----------------------------------------------------------------------------------------
# Where the hub's own mail goes (hook subscriptions switched off, alerts): an EMAIL_URL such as
# smtp+tls://user:password@smtp.example.com:587. Development prints mail to the console.
vars().update(env.email_url("EMAIL_URL", default="consolemail://" if DEBUG else "smtp://localhost:25"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="hub@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Webhooks -------------------------------------------------------------------------------------
# The hub's public address (https://hub.example.com), used for the webhook addresses it registers
# on platforms. Without it the hub does not register webhooks (scheduled syncs still reconcile).
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="").rstrip("/")
# Larger webhook bodies are refused with 413 (Shopify's largest orders stay well below 1 MB).
WEBHOOK_MAX_BODY_BYTES = env.int("WEBHOOK_MAX_BODY_BYTES", default=2 * 1024 * 1024)
# A failed event is retried with exponential backoff (from WEBHOOK_RETRY_BASE_SECONDS, at most an
# hour apart) this many times in all, then parked for a person to replay.
WEBHOOK_MAX_ATTEMPTS = env.int("WEBHOOK_MAX_ATTEMPTS", default=6)
WEBHOOK_RETRY_BASE_SECONDS = env.int("WEBHOOK_RETRY_BASE_SECONDS", default=30)
# Receipt rings for a drain task after storing an event; rings this close to a queued drain are
# absorbed by it (webhooks/queue.py), so a flood costs one task-queue insert per few seconds.
WEBHOOK_DRAIN_COALESCE_SECONDS = env.int("WEBHOOK_DRAIN_COALESCE_SECONDS", default=5)
# A process that saw a drain queued does not ask the cache again for this long (a drain that ends
# waits as long before its last look, so nothing is left waiting).
WEBHOOK_RING_MEMO_SECONDS = env.float("WEBHOOK_RING_MEMO_SECONDS", default=1.0)
# Receipt looks a connection up at most once per this many seconds per process (webhooks/connections.py).
WEBHOOK_CONNECTION_CACHE_SECONDS = env.int("WEBHOOK_CONNECTION_CACHE_SECONDS", default=30)
# A replaced credential (a webhook signing secret) still verifies deliveries for this long.
WEBHOOK_SECRET_GRACE_SECONDS = env.int("WEBHOOK_SECRET_GRACE_SECONDS", default=3600)
# Signed timestamps (Stripe, the generic HMAC, SendGrid) older or newer than this are refused.
WEBHOOK_TIMESTAMP_TOLERANCE_SECONDS = env.int("WEBHOOK_TIMESTAMP_TOLERANCE_SECONDS", default=300)
# Outbound hooks (clients' URLs, Zapier): https and public addresses only, unless
# INTEGRATIONS_ALLOW_PRIVATE_URLS is on. Timeouts of one attempt, in seconds.
HOOKS_CONNECT_TIMEOUT = env.float("HOOKS_CONNECT_TIMEOUT", default=3.0)
HOOKS_READ_TIMEOUT = env.float("HOOKS_READ_TIMEOUT", default=10.0)
# Seconds from a failed attempt to the next (with ±10 % jitter); after the last, the delivery has
# failed. The default tries 8 times over about 28 hours.
HOOKS_RETRY_DELAYS = env.list("HOOKS_RETRY_DELAYS", cast=int, default=[60, 300, 1800, 7200, 18000, 36000, 36000])
# A subscription whose deliveries have all failed for this many days is switched off, its owners told.
HOOKS_DISABLE_AFTER_DAYS = env.int("HOOKS_DISABLE_AFTER_DAYS", default=3)

# Campaign recipients sent per batch: the send task looks for a pause or a cancel between batches.
CAMPAIGN_BATCH_SIZE = env.int("CAMPAIGN_BATCH_SIZE", default=100)
HOOKS_MAX_SUBSCRIPTIONS = env.int("HOOKS_MAX_SUBSCRIPTIONS", default=100)
# Orders and customers the platform dates further back than this reach the hub without an
# order.created / customer.created hook (a first sync's backfill must not fire every zap).
HOOKS_BACKFILL_DAYS = env.int("HOOKS_BACKFILL_DAYS", default=7)

# --- Manual uploads -------------------------------------------------------------------------------
# Where uploaded CSV/JSON/XML files are kept (per tenant and job), and the largest file accepted.
UPLOADS_DIR = env.path("UPLOADS_DIR", default=BASE_DIR / "var" / "uploads")
UPLOAD_MAX_BYTES = env.int("UPLOAD_MAX_BYTES", default=200 * 1024 * 1024)
# Uploads stream to a temporary file beyond this size instead of staying in memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440

# --- Fulfilment -----------------------------------------------------------------------------------
# A push the platform could not take for a passing reason (429, 5xx, a timeout) is tried again after
# FULFILMENT_RETRY_BASE_SECONDS, each later retry waiting twice as long (at most an hour), up to this
# many attempts in all; then the fulfilment is failed, with the reason, for a person to look at.
FULFILMENT_MAX_ATTEMPTS = env.int("FULFILMENT_MAX_ATTEMPTS", default=8)
FULFILMENT_RETRY_BASE_SECONDS = env.int("FULFILMENT_RETRY_BASE_SECONDS", default=60)
# The most rows one bulk fulfilment (API or CSV) may hold.
FULFILMENT_BULK_MAX_ROWS = env.int("FULFILMENT_BULK_MAX_ROWS", default=5000)

# --- Stock across channels ------------------------------------------------------------------------
# A stock push the platform could not take for a passing reason (429, 5xx, a timeout) is tried again
# after STOCK_PUSH_RETRY_BASE_SECONDS, each later retry waiting twice as long (at most an hour), up to
# this many attempts in all; then the listing shows the push as failed, with the reason.
STOCK_PUSH_MAX_ATTEMPTS = env.int("STOCK_PUSH_MAX_ATTEMPTS", default=6)
STOCK_PUSH_RETRY_BASE_SECONDS = env.int("STOCK_PUSH_RETRY_BASE_SECONDS", default=30)
# The most rows one stock CSV (sku,quantity) may hold.
STOCK_CSV_MAX_ROWS = env.int("STOCK_CSV_MAX_ROWS", default=20000)

# --- Payments -------------------------------------------------------------------------------------
# A charge, capture or refund the gateway did not answer (timeout, 5xx, 429) is sent again with the
# same idempotency key, up to this many attempts in all, waiting PAYMENTS_RETRY_DELAY_SECONDS before
# the second and twice as long before each later one (the caller waits: keep both small).
PAYMENTS_MAX_ATTEMPTS = env.int("PAYMENTS_MAX_ATTEMPTS", default=3)
PAYMENTS_RETRY_DELAY_SECONDS = env.float("PAYMENTS_RETRY_DELAY_SECONDS", default=1.0)

# --- Activity, alerts, circuit breaker (docs/operations.md) ---------------------------------------
# The activity stream keeps this many days; `cleanup_activity` (daily) deletes older rows, and
# webhook deliveries refused for their signature older than WEBHOOK_REJECTED_RETENTION_DAYS.
ACTIVITY_RETENTION_DAYS = env.int("ACTIVITY_RETENTION_DAYS", default=90)
WEBHOOK_REJECTED_RETENTION_DAYS = env.int("WEBHOOK_REJECTED_RETENTION_DAYS", default=30)
# Processed webhook events go in the activity stream as one entry per connection per batch of a
# drain (about 100 events); true writes one entry per event (one more insert per event).
WEBHOOK_ACTIVITY_PER_EVENT = env.bool("WEBHOOK_ACTIVITY_PER_EVENT", default=False)
# Alerts to superadmins (checked every minute): a connection failing this many times in a row, ...
ALERT_FAILURES_IN_A_ROW = env.int("ALERT_FAILURES_IN_A_ROW", default=3)
# ... webhook events waiting longer than this, or more than this many waiting.
WEBHOOK_BACKLOG_ALERT_MINUTES = env.int("WEBHOOK_BACKLOG_ALERT_MINUTES", default=15)
WEBHOOK_BACKLOG_ALERT_COUNT = env.int("WEBHOOK_BACKLOG_ALERT_COUNT", default=1000)
# Alerts also go by SMS through this Twilio connection (its id) to these E.164 numbers, and as a
# JSON POST to this URL (https and a public address unless INTEGRATIONS_ALLOW_PRIVATE_URLS).
ALERT_SMS_CONNECTION_ID = env.int("ALERT_SMS_CONNECTION_ID", default=None)
ALERT_SMS_TO = env.list("ALERT_SMS_TO", default=[])
ALERT_WEBHOOK_URL = env.str("ALERT_WEBHOOK_URL", default="")
# Scheduled syncs of a connection pause after this many failures in a row (15 min, doubling, at most a day).
CIRCUIT_BREAKER_FAILURES = env.int("CIRCUIT_BREAKER_FAILURES", default=5)

# --- I18N -----------------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files ---------------------------------------------------------------------------------
STATIC_URL = "static/"
# In development whitenoise serves straight from the app and project static folders; production
# serves the collected, hashed and compressed copies from STATIC_ROOT (`manage.py collectstatic`).
STATIC_ROOT = env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")) if not DEBUG else None
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# --- Security (production) ------------------------------------------------------------------------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("BEHIND_TLS_PROXY", default=False) else None
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SESSION_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
# /health/ and /metrics are probed over plain HTTP by load balancers and scrapers inside the private network.
SECURE_REDIRECT_EXEMPT = [r"^health/$", r"^metrics$"]

# --- Metrics --------------------------------------------------------------------------------------
# GET /metrics (config/metrics.py) answers a request with `Authorization: Bearer <METRICS_TOKEN>` or
# from an address in METRICS_ALLOWED_IPS (comma-separated CIDRs); everyone else gets a 404, and with
# neither set, everyone does. Multiprocess counting is PROMETHEUS_MULTIPROC_DIR, read by
# prometheus_client itself from the environment.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOWED_IPS = env.list("METRICS_ALLOWED_IPS", default=[])
try:
    for _network in METRICS_ALLOWED_IPS:
        ipaddress.ip_network(_network.strip(), strict=False)
except ValueError as _error:
    raise ImproperlyConfigured(f"METRICS_ALLOWED_IPS: {_error}") from None

# --- Logging --------------------------------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
# "plain" lines for people, or "json" (config/logging.py), one object per line, for production.
LOG_FORMAT = env.str("LOG_FORMAT", default="plain")
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured("LOG_FORMAT must be 'plain' or 'json'.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_secrets": {"()": "tenants.logging.RedactSecretsFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "config.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["redact_secrets"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
    },
}

# --- Demo / first run -----------------------------------------------------------------------------
DEMO_PASSWORD = env.str("DEMO_PASSWORD", default="demo-password-2026")

if not API_KEY_PREFIX.isalpha() or not API_KEY_PREFIX.islower():
    raise ImproperlyConfigured("API_KEY_PREFIX must be lowercase letters only, e.g. 'hub'.")
