"""Showfloor settings: one file, driven by the environment.

Defaults are the embedded demo (SQLite, in-memory channel layer, DEBUG off but a
development secret). ``SHOWFLOOR_ENV=production`` turns on the production shape,
which refuses to start without ``SECRET_KEY``, ``DATABASE_URL`` and ``REDIS_URL``.
Every variable is listed, with its default, in the README.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return default if raw in (None, "") else int(raw)


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


SHOWFLOOR_ENV = env("SHOWFLOOR_ENV", "development")
PRODUCTION = SHOWFLOOR_ENV == "production"

if PRODUCTION:
    missing = [
        name for name in ("SECRET_KEY", "DATABASE_URL", "REDIS_URL") if not env(name)
    ]
    if missing:
        raise ImproperlyConfigured(
            "Production settings need these environment variables: "
            + ", ".join(missing)
        )

SECRET_KEY = env(
    "SECRET_KEY", "dev-only-insecure-key-change-me-in-production-0123456789"
)
DEBUG = env_bool("DEBUG", default=False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "channels",
    "axes",
    # Background tasks: the buyer's emails (checkout/tasks.py).
    "django_tasks",
    "django_tasks.backends.database",
    # Product thumbnails, made at upload (shows/images.py).
    "easy_thumbnails",
    "realtime",
    "shows",
    "checkout",
    "live",
    "frontend",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django_permissions_policy.PermissionsPolicyMiddleware",
    # Content-Security-Policy on every response, error pages included
    # (frontend/csp.py).
    "frontend.csp.ContentSecurityPolicy",
    # Static files from the same process, in the demo and in production.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    # Times in the viewer's time zone, from the cookie zone.js sets (frontend/zone.py).
    "frontend.zone.ViewerTimeZone",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # The checkout API of an embedded show runs as the frame's guest token
    # (frontend/embed.py).
    "frontend.embed.EmbedTokenMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # A login refused by the throttle answers 429 (frontend/login_throttling.py).
    "axes.middleware.AxesMiddleware",
    # A view that finds the database unreachable answers 503, not 500.
    "config.middleware.DatabaseUnavailable",
    # Last: one thread hop per request instead of one per hook (its docstring).
    "config.middleware.SyncStack",
]

# Scripts, styles, fonts and frames from this origin only: no inline script or
# style, no eval, no framing (frontend/csp.py adds Stripe's origins for the
# settings of the moment). Product images may be on any HTTPS host; hls.js
# plays from blob: URLs and runs its demuxer in a blob: worker.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:", "https:"],
        "font-src": [SELF],
        "media-src": [SELF, "blob:"],
        "worker-src": [SELF, "blob:"],
        "connect-src": [SELF],
        "frame-src": [NONE],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
        "report-uri": "/csp-report",
    }
}

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES: dict[str, Any] = {
    "default": dj_database_url.parse(
        env("DATABASE_URL", f"sqlite:///{BASE_DIR / 'var' / 'showfloor.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
        # A kept or pooled connection is checked before a request uses it, so
        # the first requests after PostgreSQL restarts do not fail on it.
        conn_health_checks=env_bool("DATABASE_CONN_HEALTH_CHECKS", default=True),
    )
}
if DATABASES["default"]["ENGINE"].endswith("postgresql"):
    # With PostgreSQL unreachable a request should get a quick 503
    # (config.middleware), not hang: seconds libpq waits for the server to
    # answer (its minimum is 2; a connection refused fails at once). A
    # ``connect_timeout`` in DATABASE_URL wins.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", env_int("DATABASE_CONNECT_TIMEOUT", 2)
    )
# Seconds a client is told to wait (``Retry-After``) when a dependency is down.
SHOWFLOOR_RETRY_AFTER_SECONDS = env_int("SHOWFLOOR_RETRY_AFTER_SECONDS", 5)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "shows.User"

AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"  # noqa: E501
    },
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 8},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Axes first: it refuses a locked-out login before a password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

REDIS_URL = env("REDIS_URL")
# A prefix for every key and channel Showfloor writes to Redis, so several
# deployments (or parallel test runs) can share one server.
REDIS_PREFIX = env("SHOWFLOOR_REDIS_PREFIX", "showfloor")

# Rate-limit counters and other short-lived values: shared through Redis when
# there is one, so every replica sees the same counts.
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": f"{REDIS_PREFIX}:cache",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

LANGUAGE_CODE = "en"
LANGUAGES = [
    ("en", _("English")),
    ("de", _("German")),
    ("fr", _("French")),
    ("fy", _("Frisian")),
]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(env("STATIC_ROOT", str(BASE_DIR / "var" / "static")))
MEDIA_ROOT = Path(env("SHOWFLOOR_MEDIA_ROOT", str(BASE_DIR / "var" / "media")))
MEDIA_URL = env("SHOWFLOOR_MEDIA_URL", "/media/")
# Uploaded files (product images and their thumbnails) go through the storage
# API: the local MEDIA_ROOT here; production may point ``STORAGES["default"]``
# at django-storages' S3 backend (docs/catalogue.md). This process serves
# MEDIA_URL from MEDIA_ROOT itself unless told not to (a CDN or S3 serves it).
SHOWFLOOR_SERVE_UPLOADS = env_bool("SHOWFLOOR_SERVE_UPLOADS", default=not PRODUCTION)
# Thumbnails keep the format of their image (JPEG, PNG or WebP), so their
# names follow from the image's name without a database look-up.
THUMBNAIL_PRESERVE_EXTENSIONS = True
THUMBNAIL_QUALITY = 85
# Production serves the files ``collectstatic`` wrote (compressed, with hashed
# names that are cached for a year); elsewhere WhiteNoise finds them in the apps.
WHITENOISE_USE_FINDERS = not PRODUCTION
STORAGES: dict[str, Any] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "frontend.storage.StaticStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# Login throttling (django-axes, frontend/login_throttling.py): the site's and
# the admin's login refuse every password, the right one too, for a client
# address or an account once either has this many failures, until the cool-off
# has passed since the last failure. Counted in the database, like the
# accounts: shared by every replica, kept across restarts, the same in the
# SQLite demo, and the admin lists (and can delete) the attempts. A success
# forgets the account's failures.
AXES_FAILURE_LIMIT = env_int("SHOWFLOOR_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("SHOWFLOOR_LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["ip_address", "username"]
AXES_HANDLER = "frontend.login_throttling.LoginAttemptsHandler"
AXES_LOCKOUT_CALLABLE = "frontend.login_throttling.lockout_response"
AXES_HTTP_RESPONSE_CODE = 429
# The login forms' field; Django passes it as ``username`` whatever the user
# model's USERNAME_FIELD (ours is ``email``).
AXES_USERNAME_FORM_FIELD = "username"
# Daphne's --proxy-headers puts the forwarded client in REMOTE_ADDR.
AXES_IPWARE_META_PRECEDENCE_ORDER = ("REMOTE_ADDR",)
# No lasting record of every successful login's address and browser.
AXES_DISABLE_ACCESS_LOG = True

# Database sessions, minus redundant round trips (shows/sessions.py).
SESSION_ENGINE = "shows.sessions"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
CSRF_FAILURE_VIEW = "frontend.views.csrf_failure"
X_FRAME_OPTIONS = "DENY"
# What the pages may ask the browser for: the studio's camera and microphone
# (this origin only), Stripe's wallets (its frames), fullscreen and
# picture-in-picture video; every other powerful feature is off.
PERMISSIONS_POLICY: dict[str, list[str]] = {
    "accelerometer": [],
    "autoplay": ["self"],
    "camera": ["self"],
    "display-capture": ["self"],
    "fullscreen": ["self"],
    "geolocation": [],
    "gyroscope": [],
    "magnetometer": [],
    "microphone": ["self"],
    "payment": ["self", "https://js.stripe.com"],
    "picture-in-picture": ["self"],
    "usb": [],
}
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

if PRODUCTION:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=True)
    # Container health checks speak plain HTTP from inside the network.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"client_errors": {"()": "config.logging.ClientErrorsWithoutTraceback"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["client_errors"]}
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {
        "daphne": {"level": "WARNING"},
        "aioice": {"level": "WARNING"},
        "aiortc": {"level": "WARNING"},
    },
}

# --- Showfloor -------------------------------------------------------------

# Public base URL used in links the server prints (demo) or sends (emails).
SHOWFLOOR_PUBLIC_URL = env("SHOWFLOOR_PUBLIC_URL", "http://127.0.0.1:8000")
# This process's name as a media node; live shows are assigned to one node.
SHOWFLOOR_MEDIA_NODE = env("SHOWFLOOR_MEDIA_NODE", "embedded")
# This node's public base URL (scheme and host, no path), where a WHEP POST that
# reached another node is redirected (307) when this node is the show's origin.
# Not SHOWFLOOR_MEDIA_URL: that one is Django's MEDIA_URL for uploads.
SHOWFLOOR_MEDIA_NODE_URL = env("SHOWFLOOR_MEDIA_NODE_URL", "")
# The shared publisher lock's TTL: a node that stops renewing it (it died) loses
# the show's lock after this long and another node may take the show.
SHOWFLOOR_MEDIA_LOCK_SECONDS = env_int("SHOWFLOOR_MEDIA_LOCK_SECONDS", 15)
# How often each media node reports its load to Redis (kept for three periods).
SHOWFLOOR_MEDIA_REPORT_SECONDS = env_int("SHOWFLOOR_MEDIA_REPORT_SECONDS", 5)
# Routing viewers by load (docs/video.md, "Several media nodes"): WebRTC viewers
# one node is meant to carry over all its shows, and the CPU (cores of the
# node's process) beyond which it is full. A show's origin keeps its viewers
# until 80 % of either; then the least loaded node serves them as an edge.
SHOWFLOOR_MEDIA_NODE_MAX_VIEWERS = env_int("SHOWFLOOR_MEDIA_NODE_MAX_VIEWERS", 150)
SHOWFLOOR_MEDIA_ROUTE_CPU = float(env("SHOWFLOOR_MEDIA_ROUTE_CPU", "0.8"))
# The secret an edge signs its pull from the origin with (every media node
# must have the same); empty: SECRET_KEY, which the nodes share anyway.
SHOWFLOOR_MEDIA_EDGE_SECRET = env("SHOWFLOOR_MEDIA_EDGE_SECRET", "")
# How long an edge keeps pulling a show after its last viewer left.
SHOWFLOOR_MEDIA_EDGE_LINGER_SECONDS = env_int("SHOWFLOOR_MEDIA_EDGE_LINGER_SECONDS", 10)
# Whether this process serves the /live/ media routes (WHIP, WHEP, HLS packaging).
SHOWFLOOR_SERVE_MEDIA = env_bool("SHOWFLOOR_SERVE_MEDIA", default=True)
# ICE servers handed to every peer connection, as JSON ([] means host candidates only).
SHOWFLOOR_ICE_SERVERS = env("SHOWFLOOR_ICE_SERVERS", "[]")
# TURN for viewers and hosts behind NAT or strict firewalls (live/turn.py): the
# TURN server's URLs (comma-separated, e.g. turn:turn.example.com:3478?transport=udp)
# and the secret it shares with the web tier (coturn's static-auth-secret). With
# both set, every page gets a TURN entry with credentials valid for
# SHOWFLOOR_TURN_TTL_SECONDS.
SHOWFLOOR_TURN_URLS = env_list("SHOWFLOOR_TURN_URLS", "")
SHOWFLOOR_TURN_SECRET = env("SHOWFLOOR_TURN_SECRET", "")
SHOWFLOOR_TURN_TTL_SECONDS = env_int("SHOWFLOOR_TURN_TTL_SECONDS", 3600)
# The pages' RTCPeerConnection iceTransportPolicy: "all", or "relay" (TURN only).
SHOWFLOOR_ICE_TRANSPORT_POLICY = env("SHOWFLOOR_ICE_TRANSPORT_POLICY", "all")
# Addresses the media node gathers and announces ICE candidates on (comma-separated).
SHOWFLOOR_MEDIA_ADDRESSES = env_list("SHOWFLOOR_MEDIA_ADDRESSES", "127.0.0.1")
SHOWFLOOR_WEBRTC_MAX_VIEWERS = env_int("SHOWFLOOR_WEBRTC_MAX_VIEWERS", 200)
SHOWFLOOR_PUBLISHER_GRACE_SECONDS = env_int("SHOWFLOOR_PUBLISHER_GRACE_SECONDS", 30)
# A live show nobody has streamed to for this long (the encoder stopped or
# vanished) is ended by the sweeper; the studio says so.
SHOWFLOOR_ABANDONED_SHOW_SECONDS = env_int("SHOWFLOOR_ABANDONED_SHOW_SECONDS", 900)
SHOWFLOOR_RECORDINGS_DIR = Path(
    env("SHOWFLOOR_RECORDINGS_DIR", str(BASE_DIR / "var" / "recordings"))
)
SHOWFLOOR_HLS_DIR = Path(env("SHOWFLOOR_HLS_DIR", str(BASE_DIR / "var" / "hls")))

# Checkout.
SHOWFLOOR_HOLD_SECONDS = env_int("SHOWFLOOR_HOLD_SECONDS", 300)
# How long a line added to the bag keeps its units off sale (each addition
# its own hold); checking out gives every line SHOWFLOOR_HOLD_SECONDS more.
SHOWFLOOR_BAG_HOLD_SECONDS = env_int("SHOWFLOOR_BAG_HOLD_SECONDS", 600)
# Count the show's figures (viewers, watch time, chat, taps, sales) in Redis
# and roll them up per minute (docs/analytics.md); off: nothing is counted.
SHOWFLOOR_COUNTING = env_bool("SHOWFLOOR_COUNTING", default=True)
# How long before a show's start the "starting soon" reminders go out.
SHOWFLOOR_REMINDER_LEAD_MINUTES = env_int("SHOWFLOOR_REMINDER_LEAD_MINUTES", 15)
SHOWFLOOR_MAX_PER_BUYER = env_int("SHOWFLOOR_MAX_PER_BUYER", 5)
# How long an auction's winner (then each next bidder offered it) has to pay
# when the off-session charge of their saved card fails (docs/auctions.md).
SHOWFLOOR_AUCTION_PAY_SECONDS = env_int("SHOWFLOOR_AUCTION_PAY_SECONDS", 600)
STRIPE_SECRET_KEY = env("STRIPE_SECRET_KEY", "sk_test_showfloor_demo")
STRIPE_PUBLISHABLE_KEY = env("STRIPE_PUBLISHABLE_KEY", "pk_test_showfloor_demo")
STRIPE_WEBHOOK_SECRET = env("STRIPE_WEBHOOK_SECRET", "whsec_showfloor_demo")

# The buyer's emails (order confirmed, payment refunded). Outside production they
# are printed on the console; production sends them through SMTP.
EMAIL_BACKEND = env(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if PRODUCTION
    else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_HOST = env("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", default=False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "Showfloor <orders@showfloor.invalid>")
# Background tasks (django-tasks): the buyer's emails are sent by a worker, never
# in a request. The database backend keeps them in a table on SQLite and
# PostgreSQL alike; ``manage.py db_worker`` runs them (its own service in
# docker-compose.yml, a thread in ``manage.py demo``).
TASKS = {
    "default": {
        "BACKEND": env(
            "TASKS_BACKEND", "django_tasks.backends.database.DatabaseBackend"
        ),
    }
}
# Where the stripe library sends API calls; empty means Stripe itself.
STRIPE_API_BASE = env("STRIPE_API_BASE")

# Show room (docs/protocol.md).
# How long the hub collects events before one batched frame goes to every socket.
SHOWFLOOR_ROOM_TICK_MS = env_int("SHOWFLOOR_ROOM_TICK_MS", 100)
# Unsent data after which a socket that stopped reading is dropped.
SHOWFLOOR_ROOM_MAX_BUFFER_KIB = env_int("SHOWFLOOR_ROOM_MAX_BUFFER_KIB", 256)
SHOWFLOOR_ROOM_MAX_SOCKETS_PER_USER = env_int("SHOWFLOOR_ROOM_MAX_SOCKETS_PER_USER", 10)
# Sockets per show from one client address for visitors who are not signed in
# (one household or office shares an address; a script opening thousands does
# not get them). 0 turns the cap off (load tests from one address).
SHOWFLOOR_ROOM_MAX_ANONYMOUS_PER_ADDRESS = env_int(
    "SHOWFLOOR_ROOM_MAX_ANONYMOUS_PER_ADDRESS", 50
)
# Chat token bucket per user and show: burst size and refill per second.
SHOWFLOOR_CHAT_BURST = env_int("SHOWFLOOR_CHAT_BURST", 5)
SHOWFLOOR_CHAT_RATE_PER_SECOND = float(env("SHOWFLOOR_CHAT_RATE_PER_SECOND", "1"))
# The server confirms payments with a Stripe test payment method (demo, browser
# tests, benches). Always on while STRIPE_API_BASE points at localstripe.
SHOWFLOOR_PAYMENTS_TEST_MODE = env_bool("SHOWFLOOR_PAYMENTS_TEST_MODE", default=False)
# The test payment method the server confirms with in test mode.
SHOWFLOOR_TEST_PAYMENT_METHOD = env("SHOWFLOOR_TEST_PAYMENT_METHOD", "pm_card_visa")
# Where the sheet loads Stripe.js from (localstripe serves a fake at
# <STRIPE_API_BASE>/js.stripe.com/v3/).
STRIPE_JS_URL = env("STRIPE_JS_URL", "https://js.stripe.com/v3/")

# Live video (docs/video.md): the one encode per show, HLS segment length.
SHOWFLOOR_VIDEO_MAX_WIDTH = env_int("SHOWFLOOR_VIDEO_MAX_WIDTH", 1280)
SHOWFLOOR_VIDEO_MAX_HEIGHT = env_int("SHOWFLOOR_VIDEO_MAX_HEIGHT", 720)
SHOWFLOOR_VIDEO_FPS = env_int("SHOWFLOOR_VIDEO_FPS", 30)
SHOWFLOOR_VIDEO_BITRATE = env_int("SHOWFLOOR_VIDEO_BITRATE", 2_000_000)
# x264 preset of the one encode per show (ultrafast … medium).
SHOWFLOOR_VIDEO_PRESET = env("SHOWFLOOR_VIDEO_PRESET", "veryfast")
# The rendition ladder: a second, lower rendition encoded alongside the first
# for WebRTC viewers on weak links and HLS's adaptive players (docs/video.md).
SHOWFLOOR_VIDEO_LADDER = env_bool("SHOWFLOOR_VIDEO_LADDER", True)
SHOWFLOOR_VIDEO_LOW_MAX_WIDTH = env_int("SHOWFLOOR_VIDEO_LOW_MAX_WIDTH", 640)
SHOWFLOOR_VIDEO_LOW_MAX_HEIGHT = env_int("SHOWFLOOR_VIDEO_LOW_MAX_HEIGHT", 360)
SHOWFLOOR_VIDEO_LOW_BITRATE = env_int("SHOWFLOOR_VIDEO_LOW_BITRATE", 500_000)
SHOWFLOOR_HLS_SEGMENT_SECONDS = env_int("SHOWFLOOR_HLS_SEGMENT_SECONDS", 1)

# PostgreSQL connection pool (Django 5.1+, psycopg-pool): under ASGI every
# request runs in its own thread, so without a pool each request opens a new
# server connection. Off by default; the flash-sale bench and production
# deployments with many buyers turn it on.
if env_bool("DATABASE_POOL") and DATABASES["default"]["ENGINE"].endswith("postgresql"):
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env_int("DATABASE_POOL_MIN", 2),
        "max_size": env_int("DATABASE_POOL_MAX", 8),
        # A request waits this long for a connection, then answers 503: while
        # PostgreSQL is down it answers within a second instead of hanging.
        "timeout": float(env("DATABASE_POOL_TIMEOUT", "0.5")),
        # A connection that cannot be replaced is given up after this long (not
        # psycopg's 5 minutes of ever longer waits), and the next request asks
        # for a new one: the pool is back soon after PostgreSQL is.
        "reconnect_timeout": float(env("DATABASE_POOL_RECONNECT_TIMEOUT", "2")),
    }
# Reservations (stock holds) one client address may take: a burst, then this
# many per minute. 0 turns the limit off.
SHOWFLOOR_RESERVATIONS_BURST = env_int("SHOWFLOOR_RESERVATIONS_BURST", 20)
SHOWFLOOR_RESERVATIONS_PER_MINUTE = env_int("SHOWFLOOR_RESERVATIONS_PER_MINUTE", 30)
