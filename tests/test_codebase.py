"""The code base's own checks run as tests: lint, format, types, migrations."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def run(*command: str) -> None:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"}
    env.pop("SHOWFLOOR_ENV", None)
    result = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    output = (result.stdout + result.stderr)[-20000:]
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{output}"


def test_ruff_check_passes():
    """``ruff check`` finds nothing."""
    run(sys.executable, "-m", "ruff", "check", ".")


def test_ruff_format_is_applied():
    """``ruff format --check`` would change nothing."""
    run(sys.executable, "-m", "ruff", "format", "--check", ".")


def test_mypy_passes():
    """``mypy`` (strict on app code, with django-stubs) finds nothing."""
    run(sys.executable, "-m", "mypy", ".")


def test_migrations_match_the_models():
    """``makemigrations --check`` finds no model change without a migration."""
    run(sys.executable, "manage.py", "makemigrations", "--check", "--dry-run")
