"""The task worker in the production shape: its own compose service running
``manage.py db_worker`` with the mail server's settings, from an image that
holds every package the project ships."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT
from tests.test_deploy import REQUIRED, manage, production_env


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    with (ROOT / "docker-compose.yml").open() as f:
        data: dict[str, Any] = yaml.safe_load(f)
        return data


def test_compose_runs_the_task_worker_with_the_mail_settings(compose):
    """The worker runs db_worker from the app image in production, after the
    migrations, and is the service that is told where the mail server is."""
    worker = compose["services"]["worker"]
    assert worker["build"] == "."
    assert worker["command"][:3] == ["python", "manage.py", "db_worker"]
    assert "--reload" not in worker["command"]
    assert worker["healthcheck"]["test"]
    env = worker["environment"]
    assert env["SHOWFLOOR_ENV"] == "production"
    for variable in (*REQUIRED, "EMAIL_HOST", "EMAIL_PORT", "DEFAULT_FROM_EMAIL"):
        assert env.get(variable), variable
    depends = worker["depends_on"]
    assert depends["migrate"]["condition"] == "service_completed_successfully"
    assert depends["postgres"]["condition"] == "service_healthy"


def test_the_image_copies_every_shipped_package():
    """``pip install .`` in the Dockerfile finds each package pyproject ships."""
    with (ROOT / "pyproject.toml").open("rb") as f:
        shipped = tomllib.load(f)["tool"]["setuptools"]["packages"]["find"]["include"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    for pattern in shipped:
        name = pattern.rstrip("*")
        assert f"COPY {name} ./{name}\n" in dockerfile, name


@pytest.mark.slow
def test_db_worker_is_a_command_of_the_production_settings():
    """The worker's command exists with the production settings."""
    result = manage("db_worker", "--help", env=production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "--batch" in result.stdout
