"""HLS served by a real nginx (Debian's package) with ``deploy/nginx.conf``:
the files come from the HLS directory itself, with the cache headers of
their kind; a private show's files pass only with its access (checked by
Django through ``auth_request``) and never carry public caching."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from importlib import import_module
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from shows.models import Show
from tests.conftest import ROOT, free_port, missing_service, wait_for_port

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

IMMUTABLE = "public, max-age=31536000, immutable"
PRIVATE = "private, no-store"


def _render(conf: str, *, upstream: str, port: int, hls: Path, cache: Path) -> str:
    """The shipped config with the test's addresses and directories."""
    replacements = {
        "server 127.0.0.1:8000;": f"server {upstream};",
        "server 127.0.0.1:8001 max_fails=2 fail_timeout=10s;": f"server {upstream};",
        "    server 127.0.0.1:8002 max_fails=2 fail_timeout=10s;\n": "",
        "listen 80;": f"listen 127.0.0.1:{port};",
        "root /data/hls;": f"root {hls};",
        "/var/cache/nginx/showfloor-hls-auth": str(cache),
    }
    for old, new in replacements.items():
        assert conf.count(old) == 1, f"deploy/nginx.conf no longer has {old!r}"
        conf = conf.replace(old, new)
    return conf


@pytest.fixture
def hls_root(tmp_path: Path) -> Path:
    root = tmp_path / "hls"
    root.mkdir()
    return root


@pytest.fixture
def nginx(asgi_server: str, tmp_path: Path, hls_root: Path) -> Iterator[str]:
    """nginx on a free loopback port in front of the test's Daphne (as web
    and as the media node), serving ``hls_root``; yields its base URL."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(binary).exists():
        missing_service("nginx (apt-get install nginx)")
    port = free_port()
    workdir = tmp_path / "nginx"
    workdir.mkdir()
    site = workdir / "showfloor.conf"
    site.write_text(
        _render(
            (ROOT / "deploy" / "nginx.conf").read_text(),
            upstream=urlsplit(asgi_server).netloc,
            port=port,
            hls=hls_root,
            cache=workdir / "auth-cache",
        )
    )
    temp = "\n".join(
        f"  {kind}_temp_path {workdir / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    main = workdir / "nginx.conf"
    main.write_text(
        f"""{"user root;" if os.geteuid() == 0 else ""}
daemon off;
worker_processes 1;
pid {workdir / "nginx.pid"};
error_log {workdir / "error.log"} warn;
events {{ worker_connections 64; }}
http {{
  access_log off;
{temp}
  include {site};
}}
"""
    )
    command = [binary, "-p", str(workdir), "-e", str(workdir / "error.log")]
    checked = subprocess.run(
        [*command, "-t", "-c", str(main)], capture_output=True, text=True, timeout=20
    )
    assert checked.returncode == 0, checked.stderr
    process = subprocess.Popen(
        [*command, "-c", str(main)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def _write_hls(root: Path, slug: str) -> dict[str, bytes]:
    files = {
        "index.m3u8": b"#EXTM3U\n#EXT-X-VERSION:7\n",
        "init.mp4": b"\0\0\0\x18ftypiso6",
        "seg-00042.m4s": os.urandom(2048),
    }
    folder = root / slug
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return files


def _access_session(show: Show) -> str:
    """A session that entered the show's access code (as the show page's
    form leaves it); its cookie value."""
    from django.conf import settings

    from shows import selectors

    store = import_module(settings.SESSION_ENGINE).SessionStore()
    store[selectors.SHOW_ACCESS_SESSION_KEY] = {
        str(show.pk): selectors.show_access_token(show=show)
    }
    store.save()
    return str(store.session_key)


def test_public_show_hls_comes_from_the_directory_with_cache_headers(
    nginx, hls_root, live_show
):
    """Playlist: its type and ``no-cache``; segment and init: their types and
    a year, immutable; a file that is not there is 404."""
    files = _write_hls(hls_root, live_show.slug)
    base = f"{nginx}/live/{live_show.slug}/hls"
    expected = {
        "index.m3u8": ("application/vnd.apple.mpegurl", "no-cache"),
        "init.mp4": ("video/mp4", IMMUTABLE),
        "seg-00042.m4s": ("video/iso.segment", IMMUTABLE),
    }
    for _round in range(2):  # the second from nginx's cached auth answer
        for name, (kind, cache) in expected.items():
            response = requests.get(f"{base}/{name}", timeout=10)
            assert response.status_code == 200, name
            assert response.content == files[name]
            assert response.headers["Content-Type"] == kind
            assert response.headers["Cache-Control"] == cache
    # The file changes on disk: nginx serves it, not a copy.
    (hls_root / live_show.slug / "index.m3u8").write_bytes(b"#EXTM3U\n#new\n")
    assert requests.get(f"{base}/index.m3u8", timeout=10).content.endswith(b"#new\n")
    assert requests.get(f"{base}/seg-00043.m4s", timeout=10).status_code == 404


def test_private_show_hls_needs_access_and_is_never_cached_publicly(
    nginx, hls_root, private_live_show
):
    """Without access (no code, a wrong code) every file is 403; with the
    session that entered the code, or the code as Bearer token, 200 with
    ``private, no-store``, also when nginx reuses its auth answer."""
    show = private_live_show
    files = _write_hls(hls_root, show.slug)
    base = f"{nginx}/live/{show.slug}/hls"
    wrong = {"Authorization": "Bearer not-the-code"}
    for name in files:
        for headers in ({}, wrong):
            refused = requests.get(f"{base}/{name}", headers=headers, timeout=10)
            assert refused.status_code == 403, name
            assert "public" not in refused.headers.get("Cache-Control", "")
            assert refused.content != files[name]

    from django.conf import settings

    cookie = {"Cookie": f"{settings.SESSION_COOKIE_NAME}={_access_session(show)}"}
    bearer = {"Authorization": f"Bearer {show.access_code}"}
    for headers in (cookie, bearer, cookie):
        for name in files:
            response = requests.get(f"{base}/{name}", headers=headers, timeout=10)
            assert response.status_code == 200, name
            assert response.content == files[name]
            assert response.headers["Cache-Control"] == PRIVATE


def test_hls_auth_follows_the_hls_views_rules(client, show, host):
    """Unknown show: 403. A public show: 204 ``public``. A rehearsal: 403 for
    a viewer, 204 for the brand's staff."""
    from shows.services import lifecycle

    assert client.get("/live/no-such-show/hls-auth").status_code == 403
    public = client.get(f"/live/{show.slug}/hls-auth")
    assert public.status_code == 204
    assert public["X-Showfloor-Access"] == "public"
    lifecycle.show_rehearsal_start(show=show, user=host)
    assert client.get(f"/live/{show.slug}/hls-auth").status_code == 403
    client.force_login(host)
    assert client.get(f"/live/{show.slug}/hls-auth").status_code == 204
