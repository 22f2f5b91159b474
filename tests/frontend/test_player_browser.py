"""The player's first WHEP request as Chromium makes it: a browser that says
its link is weak asks to start on the lower rendition (docs/video.md,
"Rendition ladder")."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from tests.frontend.test_a11y import open_live_room

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]

# DevTools' "3G" preset: Chromium's Network Information API then says
# effectiveType "3g" (a fresh headless Chromium says "4g").
THREE_G = {
    "offline": False,
    "latency": 400,
    "downloadThroughput": 100_000,
    "uploadThroughput": 50_000,
    "connectionType": "cellular3g",
}


@pytest.mark.parametrize("weak", [False, True], ids=["4g", "3g"])
def test_a_player_on_a_weak_link_asks_to_start_low(asgi_server, page, live_show, weak):
    if weak:
        cdp = page.context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send("Network.emulateNetworkConditions", THREE_G)
    with page.expect_request(
        lambda r: urlsplit(r.url).path.endswith("/whep"), timeout=20_000
    ) as whep:
        open_live_room(page, f"{asgi_server}/shows/{live_show.slug}/")
    effective = page.evaluate("navigator.connection.effectiveType")
    assert (effective == "3g") is weak
    query = parse_qs(urlsplit(whep.value.url).query)
    assert query == ({"start": ["low"]} if weak else {})
    assert whep.value.method == "POST"
