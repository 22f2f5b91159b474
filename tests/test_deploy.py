"""The production shape: docker-compose.yml, the Dockerfile and production
settings (``manage.py check --deploy``, refusing to start without secrets)."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT

REQUIRED = ("SECRET_KEY", "DATABASE_URL", "REDIS_URL")


def production_env(**overrides: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in REQUIRED and not key.startswith("DJANGO_")
    }
    env.update(
        SHOWFLOOR_ENV="production",
        DJANGO_SETTINGS_MODULE="config.settings",
        SECRET_KEY=secrets.token_urlsafe(50),
        DATABASE_URL="postgres://showfloor@127.0.0.1:5432/showfloor",
        REDIS_URL="redis://127.0.0.1:6379/0",
        ALLOWED_HOSTS="shop.example.com",
    )
    env.update(overrides)
    return env


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    with (ROOT / "docker-compose.yml").open() as f:
        data: dict[str, Any] = yaml.safe_load(f)
        return data


@pytest.mark.slow
def test_check_deploy_is_clean_with_production_settings():
    """``check --deploy --fail-level WARNING`` passes in the production shape."""
    result = manage(
        "check", "--deploy", "--fail-level", "WARNING", env=production_env()
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize("missing", REQUIRED)
def test_production_refuses_to_start_without_each_secret(missing):
    """Production settings name the missing variable and stop."""
    env = production_env()
    env.pop(missing)
    result = manage("check", env=env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert missing in result.stderr


def test_compose_has_the_services_of_the_production_shape(compose):
    """web, media, sweeper, redis and postgres, each with a health check."""
    services = compose["services"]
    for name in ("web", "media", "sweeper", "redis", "postgres"):
        assert name in services, name
        assert "healthcheck" in services[name], name
        assert services[name]["healthcheck"]["test"], name
    assert services["redis"]["image"].startswith("redis:7")
    assert services["postgres"]["image"].startswith("postgres:")


def test_compose_commands_run_daphne_the_sweeper_and_migrations(compose):
    """web and media run Daphne on the ASGI app, the sweeper its command, and
    migrations run once before the app services start."""
    services = compose["services"]
    for name in ("web", "media"):
        command = services[name]["command"]
        assert command[0] == "daphne"
        assert command[-1] == "config.asgi:application"
    assert services["sweeper"]["command"] == ["python", "manage.py", "sweep"]
    assert services["migrate"]["command"][:3] == ["python", "manage.py", "migrate"]
    for name in ("web", "media", "sweeper"):
        depends = services[name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["redis"]["condition"] == "service_healthy"
        assert depends["migrate"]["condition"] == "service_completed_successfully"
    assert (ROOT / "Dockerfile").exists()
    assert all(services[n]["build"] == "." for n in ("web", "media", "sweeper"))


def test_compose_environment_is_production_with_the_secrets(compose):
    """The app services run production settings with every required variable;
    only the media node serves media routes."""
    services = compose["services"]
    for name in ("web", "media", "sweeper", "migrate"):
        env = services[name]["environment"]
        assert env["SHOWFLOOR_ENV"] == "production", name
        for variable in REQUIRED:
            assert env.get(variable), (name, variable)
        assert "redis:" in env["REDIS_URL"] or "127.0.0.1" in env["REDIS_URL"]
        assert env["DATABASE_URL"].startswith("postgres://")
    assert services["web"]["environment"]["SHOWFLOOR_SERVE_MEDIA"] == "false"
    assert services["media"]["environment"]["SHOWFLOOR_SERVE_MEDIA"] == "true"
    assert services["media"]["environment"]["SHOWFLOOR_MEDIA_ADDRESSES"]


def test_every_setting_variable_is_documented_in_the_readme():
    """Each environment variable config/settings.py reads is in the README."""
    settings_source = (ROOT / "config" / "settings.py").read_text()
    names = set(
        re.findall(r'env(?:_bool|_int|_list)?\(\s*"([A-Z][A-Z0-9_]+)"', settings_source)
    )
    assert {"SECRET_KEY", "DATABASE_URL", "REDIS_URL"} <= names
    readme = (ROOT / "README.md").read_text()
    missing = sorted(name for name in names if f"`{name}`" not in readme)
    assert not missing, f"not documented in README.md: {missing}"


@pytest.mark.slow
def test_collectstatic_with_production_storage_succeeds(tmp_path):
    """The image's build step: hashed, compressed static files for WhiteNoise
    (a missing file referenced from CSS would fail here)."""
    env = production_env(STATIC_ROOT=str(tmp_path / "static"))
    result = manage("collectstatic", "--noinput", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    manifest = tmp_path / "static" / "staticfiles.json"
    assert manifest.exists()
    assert "frontend/app.css" in manifest.read_text()
    assert list((tmp_path / "static" / "frontend").glob("app.*.css.gz"))
    # A module imports the room by the hashed name the page loads it by, so
    # the room (and its socket) exists once.
    files = json.loads(manifest.read_text())["paths"]
    room = files["frontend/room.js"].removeprefix("frontend/")
    for module in ("frontend/game-auction.js", "frontend/checkout.js"):
        text = (tmp_path / "static" / files[module]).read_text()
        assert f'from "./{room}"' in text, module
        assert 'from "./room.js"' not in text, module
