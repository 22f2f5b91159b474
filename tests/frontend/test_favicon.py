"""Every page names the site's icon, and the old address finds it."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_pages_link_the_icon_and_favicon_ico_leads_to_it(client):
    page = client.get("/")
    assert b'rel="icon" href="/static/frontend/favicon.svg"' in page.content
    moved = client.get("/favicon.ico")
    assert moved.status_code == 301
    assert moved["Location"] == "/static/frontend/favicon.svg"
    missing = client.get("/no-such-page/")
    assert missing.status_code == 404
    assert b'rel="icon"' in missing.content
