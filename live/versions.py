"""The exact versions of the libraries whose internals this project reads or
patches, and the startup check that the installed ones are those.

``live/media/aiortc_patches.py``, ``aioice_patches.py`` and
``asyncio_patches.py`` (and the Twisted reaches of ``live/hub/writers.py``,
which also depend on autobahn and daphne) use names these libraries never
promised to keep. They were checked against the versions below; an upgrade
that moved one would otherwise fail quietly (a bound that no longer bounds, a
keyframe request that goes nowhere) or only under load. So the process refuses
to start on any other version: upgrade by rereading the patch modules against
the new release, running ``tests/live/media``, then changing the pin in
``pyproject.toml`` and the version here together.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from django.core.exceptions import ImproperlyConfigured

# Distribution name (as pip knows it, normalized) -> the exact version checked.
CHECKED_VERSIONS: dict[str, str] = {
    "aiortc": "1.16.0",
    "aioice": "0.13.0",
    "av": "18.1.0",
    "twisted": "26.10.0",
    "autobahn": "26.11.1",
    "daphne": "4.2.3",
}


def assert_checked_versions() -> None:
    """Raise ``ImproperlyConfigured`` naming every library whose installed
    version is not the one in ``CHECKED_VERSIONS`` (or that is missing)."""
    problems = []
    for name, checked in CHECKED_VERSIONS.items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            installed = "not installed"
        if installed != checked:
            problems.append(f"{name} {installed} (checked against {name} {checked})")
    if problems:
        raise ImproperlyConfigured(
            "Showfloor reads private parts of these libraries and was checked "
            f"against other versions: {'; '.join(problems)}. Install the checked "
            "versions, or recheck the patch modules named in live/versions.py "
            "and update CHECKED_VERSIONS with the pins in pyproject.toml."
        )
