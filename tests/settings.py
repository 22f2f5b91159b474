"""Settings for the test suite: the real PostgreSQL and Redis on loopback.

Each checkout gets its own database name (and each xdist worker its own database
and Redis key prefix), so parallel runs on one machine never share state. With
``CI`` set a missing server is an error; elsewhere the suite falls back to SQLite
and the in-memory layer, and the tests that need the real server skip, naming it.
"""

from __future__ import annotations

import hashlib
import os
import socket

from config.settings import *  # noqa: F403
from config.settings import BASE_DIR

POSTGRES_HOST = os.environ.get("TEST_POSTGRES_HOST", "127.0.0.1")
POSTGRES_PORT = int(os.environ.get("TEST_POSTGRES_PORT", "5432"))
REDIS_HOST = os.environ.get("TEST_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("TEST_REDIS_PORT", "6379"))
IN_CI = bool(os.environ.get("CI"))


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


POSTGRES_AVAILABLE = _reachable(POSTGRES_HOST, POSTGRES_PORT)
REDIS_AVAILABLE = _reachable(REDIS_HOST, REDIS_PORT)
if IN_CI and not POSTGRES_AVAILABLE:
    raise RuntimeError(f"CI needs PostgreSQL on {POSTGRES_HOST}:{POSTGRES_PORT}")
if IN_CI and not REDIS_AVAILABLE:
    raise RuntimeError(f"CI needs Redis on {REDIS_HOST}:{REDIS_PORT}")

# SHOWFLOOR_TEST_ID separates two runs from one checkout (their databases and
# Redis keys would otherwise be the same).
CHECKOUT_ID = (
    os.environ.get("SHOWFLOOR_TEST_ID")
    or (hashlib.sha256(str(BASE_DIR).encode()).hexdigest()[:8])
)
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")

if POSTGRES_AVAILABLE:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": f"showfloor_{CHECKOUT_ID}",
            "USER": os.environ.get("TEST_POSTGRES_USER", "postgres"),
            "HOST": POSTGRES_HOST,
            "PORT": POSTGRES_PORT,
            # pytest-django adds the worker suffix to the test database name.
            "TEST": {"NAME": f"test_showfloor_{CHECKOUT_ID}"},
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(BASE_DIR / "var" / f"test-{WORKER}.sqlite3"),
            "TEST": {"NAME": str(BASE_DIR / "var" / f"test-{WORKER}.sqlite3")},
        }
    }

REDIS_PREFIX = f"sftest:{CHECKOUT_ID}:{WORKER}"
REDIS_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/0" if REDIS_AVAILABLE else ""

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
SHOWFLOOR_MEDIA_ADDRESSES = ["127.0.0.1"]
SHOWFLOOR_ICE_SERVERS = "[]"
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "testserver"]
