"""What the media code reads or patches inside its libraries stays in one
module per library, on library versions checked exactly, asserted at startup."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import typing
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import aioice.ice
import pytest
from django.core.exceptions import ImproperlyConfigured

from live import versions
from live.media import aioice_patches

MEDIA_DIR = Path(__file__).resolve().parents[3] / "live" / "media"
PATCH_MODULES = {"aiortc_patches.py", "aioice_patches.py", "asyncio_patches.py"}
# Roots of the modules whose imported names count as the libraries' own.
LIBRARIES = {"aiortc", "aioice", "asyncio", "av", "pyee"}
PRIVATE = re.compile(r"^_[A-Za-z0-9]\w*$")


def _is_private(name: str) -> bool:
    return bool(PRIVATE.match(name)) and not name.endswith("__")


# --- The version check ------------------------------------------------------


def test_the_installed_libraries_are_the_checked_versions():
    """Startup passes here: every library is installed at the checked version."""
    versions.assert_checked_versions()
    assert {
        name: version(name) for name in versions.CHECKED_VERSIONS
    } == versions.CHECKED_VERSIONS
    assert set(versions.CHECKED_VERSIONS) == {
        "aiortc",
        "aioice",
        "av",
        "twisted",
        "autobahn",
        "daphne",
    }


def test_another_version_is_refused_naming_the_library_and_both_versions(
    monkeypatch,
):
    """One library at another version stops startup; the message names it,
    the installed version and the checked one, and no other library."""
    monkeypatch.setattr(
        versions,
        "version",
        lambda name: "1.17.0" if name == "aiortc" else version(name),
    )
    with pytest.raises(ImproperlyConfigured) as caught:
        versions.assert_checked_versions()
    message = str(caught.value)
    assert "aiortc 1.17.0 (checked against aiortc 1.16.0)" in message
    assert "aioice" not in message


def test_a_missing_library_is_refused(monkeypatch):
    """A checked library that is not installed is refused as well."""

    def missing(name: str) -> str:
        if name == "twisted":
            raise PackageNotFoundError(name)
        return version(name)

    monkeypatch.setattr(versions, "version", missing)
    with pytest.raises(ImproperlyConfigured, match="twisted not installed"):
        versions.assert_checked_versions()


# --- The one global patch ---------------------------------------------------


def test_startup_has_applied_the_aioice_patch():
    """``LiveConfig.ready()`` installed the host-address hook before any test
    made a peer connection."""
    assert aioice.ice.get_host_addresses is aioice_patches.media_addresses


def test_apply_is_idempotent(monkeypatch):
    """Applying again leaves the same function in place (no wrapper around a
    wrapper); applying after something else replaced it puts it back."""
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda **_: ["10.0.0.1"])
    aioice_patches.apply()
    aioice_patches.apply()
    assert aioice.ice.get_host_addresses is aioice_patches.media_addresses


def test_apply_is_called_from_one_place_only():
    """``apply()`` runs from ``LiveConfig.ready()`` and nowhere else in the
    application code."""
    root = MEDIA_DIR.parents[1]
    callers = [
        path.relative_to(root).as_posix()
        for package in ("live", "config", "shows", "checkout", "frontend")
        for path in (root / package).rglob("*.py")
        if re.search(r"_patches\.apply\(\)", path.read_text())
    ]
    assert callers == ["live/apps.py"]


# --- No private reaches outside the patch modules ---------------------------


def _library_private_names(klass: type) -> set[str]:
    """The private names a library class and its library bases define or set
    on ``self`` (name-mangled as Python stores them)."""
    names: set[str] = set()
    for base in klass.__mro__:
        if base.__module__.split(".")[0] not in LIBRARIES:
            continue
        names.update(name for name in vars(base) if _is_private(name))
        try:
            tree = ast.parse(inspect.getsource(base))
        except (OSError, TypeError):  # compiled (PyAV): its dict is all there is
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
                attr = node.attr
                if attr.startswith("__") and not attr.endswith("__"):
                    attr = f"_{base.__name__.lstrip('_')}{attr}"
                if _is_private(attr):
                    names.add(attr)
    return names


def _own_private_names(node: ast.ClassDef) -> set[str]:
    """The private names a class of ours defines, or uses on ``self``."""
    names: set[str] = set()
    for statement in node.body:
        if isinstance(statement, ast.Assign | ast.AnnAssign):
            targets = (
                statement.targets
                if isinstance(statement, ast.Assign)
                else [statement.target]
            )
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    for child in ast.walk(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(child.name)
        elif isinstance(child, ast.Attribute) and (
            isinstance(child.value, ast.Name) and child.value.id in ("self", "cls")
        ):
            names.add(child.attr)
    return {name for name in names if _is_private(name)}


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(
            node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef
        ):
            body = node.body
            if body and isinstance(body[0], ast.Expr):
                found.add(id(body[0].value))
    return found


def _library_imports(tree: ast.AST) -> tuple[set[str], list[str]]:
    """The names bound to library modules or objects by ``import``, and the
    imports of private names."""
    bound, found = set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] in LIBRARIES:
                    bound.add(alias.asname or parts[0])
                    if any(_is_private(part) for part in parts):
                        found.append(f"{node.lineno}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module:
            parts = node.module.split(".")
            if parts[0] not in LIBRARIES:
                continue
            for alias in node.names:
                bound.add(alias.asname or alias.name)
                if _is_private(alias.name) or any(_is_private(p) for p in parts):
                    found.append(
                        f"{node.lineno}: from {node.module} import {alias.name}"
                    )
    return bound, found


def _patched_attribute(node: ast.AST, library_names: set[str]) -> str | None:
    """``lib.module.name = ...`` or ``LibClass.name = ...``: a monkeypatch."""
    if not isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
        return None
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    for target in targets:
        root = target
        while isinstance(root, ast.Attribute):
            root = root.value
        if (
            isinstance(target, ast.Attribute)
            and isinstance(root, ast.Name)
            and root.id in library_names
        ):
            return f"{ast.unparse(target)} = ..."
    return None


def _subclass_reaches(node: ast.ClassDef, namespace: dict[str, Any]) -> list[str]:
    """The private names of a library base class that a class of ours
    overrides, reads or sets."""
    own = _own_private_names(node)
    found = []
    for base in node.bases:
        value = eval(ast.unparse(base), namespace)  # noqa: S307 (our own source)
        klass = typing.get_origin(value) or value
        if isinstance(klass, type):
            for name in sorted(own & _library_private_names(klass)):
                found.append(f"{node.name} uses {klass.__name__}.{name}")
    return found


def private_reaches(source: str, namespace: dict[str, Any]) -> list[str]:
    """Every place ``source`` (a module whose globals are ``namespace``)
    reaches into a library: a private attribute of anything but ``self`` or
    ``cls``; a private name as a string (``getattr(x, "_y")``); a private
    name imported from a library; an assignment onto a library's module or
    class (a monkeypatch); a class of ours that overrides, reads or sets a
    private name of the library class it subclasses."""
    tree = ast.parse(source)
    docstrings = _docstrings(tree)
    library_names, found = _library_imports(tree)
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Attribute) and _is_private(node.attr):
            if not (
                isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")
            ):
                found.append(f"{line}: {ast.unparse(node)}")
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and _is_private(node.value)
            and id(node) not in docstrings
        ):
            found.append(f"{line}: {node.value!r}")
        elif (patched := _patched_attribute(node, library_names)) is not None:
            found.append(f"{line}: {patched}")
        elif isinstance(node, ast.ClassDef):
            found.extend(f"{line}: {r}" for r in _subclass_reaches(node, namespace))
    return found


def _media_modules() -> list[Path]:
    return sorted(MEDIA_DIR.glob("*.py"))


@pytest.mark.parametrize(
    "path",
    [p for p in _media_modules() if p.name not in PATCH_MODULES],
    ids=lambda path: path.name,
)
def test_no_media_module_reaches_into_a_library_outside_its_patch_module(path):
    """Outside ``aiortc_patches``, ``aioice_patches`` and ``asyncio_patches``
    the media code uses its libraries' public names only."""
    module = importlib.import_module(f"live.media.{path.stem}")
    assert private_reaches(path.read_text(), vars(module)) == []


@pytest.mark.parametrize("name", sorted(PATCH_MODULES))
def test_the_check_sees_the_reaches_of_the_patch_modules(name):
    """The same check finds reaches in each patch module (it looks at code
    that does reach)."""
    path = MEDIA_DIR / name
    module = importlib.import_module(f"live.media.{path.stem}")
    assert private_reaches(path.read_text(), vars(module))


REACHES = {
    "a private method replaced": (
        "def forward(sender, request):\n"
        "    original = sender._send_keyframe\n"
        "    sender._send_keyframe = request\n"
    ),
    "a mangled name as a string": (
        "def lost(receiver):\n"
        "    return getattr(receiver, '_RTCRtpReceiver__decoder_error', None)\n"
    ),
    "a dict lookup by private name": (
        "def waiting(track):\n    return vars(track)['_queue']\n"
    ),
    "a library function replaced": (
        "import aioice.ice\n"
        "def mine(use_ipv4, use_ipv6):\n    return []\n"
        "aioice.ice.get_host_addresses = mine\n"
    ),
    "a private class imported": (
        "from asyncio.selector_events import _SelectorDatagramTransport\n"
    ),
    "a library class patched": (
        "from aiortc import RTCRtpSender\nRTCRtpSender.getCapabilities = print\n"
    ),
    "a subclass reading the base's state": (
        "from aiortc.jitterbuffer import JitterBuffer\n"
        "class Eager(JitterBuffer):\n"
        "    def add(self, packet):\n"
        "        return self._origin, self._packets\n"
    ),
    "a subclass overriding a private method": (
        "from aiortc import RTCRtpSender\n"
        "class Sender(RTCRtpSender):\n"
        "    def _send_keyframe(self):\n        pass\n"
    ),
    "a mangled attribute set from a subclass": (
        "from aiortc import MediaStreamTrack\n"
        "class Track(MediaStreamTrack):\n"
        "    def end(self):\n        self._MediaStreamTrack__ended = True\n"
    ),
}


@pytest.mark.parametrize("source", REACHES.values(), ids=REACHES.keys())
def test_the_check_finds_each_kind_of_reach(source):
    """Each way the media code used to reach into aiortc, aioice or asyncio
    is found."""
    namespace: dict[str, Any] = {}
    exec(compile(source, "<reach>", "exec"), namespace)  # noqa: S102 (literal)
    assert private_reaches(source, namespace)


def test_the_check_leaves_our_own_private_names_alone():
    """``self._x`` on our own classes, and private names of our own on a
    subclass of a library class, are not reaches."""
    source = (
        "from aiortc import MediaStreamTrack\n"
        "class Track(MediaStreamTrack):\n"
        '    """A track with ``_queue`` in its docstring."""\n'
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self._limit = 3\n"
        "    def _drop(self):\n        return self._limit\n"
    )
    namespace: dict[str, Any] = {}
    exec(compile(source, "<own>", "exec"), namespace)  # noqa: S102 (literal)
    assert private_reaches(source, namespace) == []
