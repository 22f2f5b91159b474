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


# The code that runs in production (tests and benches are not deployed).
SHIPPED = ("config", "realtime", "shows", "checkout", "live", "frontend")


def test_bandit_finds_nothing_untriaged():
    """``bandit`` at every severity finds nothing in the shipped code; each
    accepted finding is marked where it is, with its test id and a reason."""
    run(
        sys.executable,
        "-m",
        "bandit",
        "-q",
        "-r",
        *SHIPPED,
        "-x",
        "*/migrations/*",
    )
    import re

    bare = []
    for package in SHIPPED:
        for path in sorted((ROOT / package).rglob("*.py")):
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if "# nosec" in line and not re.search(r"# nosec B\d{3} - \S", line):
                    bare.append(f"{path.relative_to(ROOT)}:{number}")
    assert bare == [], "nosec without a test id and a reason"


def _imported_modules(package: str) -> dict[str, set[str]]:
    """Every module each file of ``package`` imports (absolute names)."""
    import ast

    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        if "migrations" in path.parts:
            continue
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module)
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
        found[str(path.relative_to(ROOT))] = names
    return found


def _reaching(package: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{path} imports {name}"
        for path, names in _imported_modules(package).items()
        for name in names
        if name.split(".")[0] in forbidden
    )


def test_realtime_imports_none_of_the_apps():
    """``realtime`` is the floor: it builds on Django and Redis, never on an app."""
    assert _reaching("realtime", ("shows", "checkout", "live", "frontend")) == []


def test_shows_and_checkout_import_nothing_from_live():
    """The services announce through ``realtime``; the web tier's sockets,
    hub and media stay above them."""
    assert _reaching("shows", ("live", "frontend", "checkout")) == []
    assert _reaching("checkout", ("live", "frontend")) == []


def test_the_import_check_sees_an_import_of_an_app():
    """The check above can fail: it reads both import forms."""
    names = _imported_modules("live")["live/consumers.py"]
    assert "shows.selectors" in names or "shows" in names
    assert "live.hub.core" in names
