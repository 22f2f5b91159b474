"""The viewer page's weight: its own JS and CSS, vendored libraries included,
stay under 150 kB gzipped before the video starts.

Run with ``-s`` to see the figure and the per-file breakdown.
"""

from __future__ import annotations

import gzip
from urllib.parse import urljoin

import pytest

from shows.services import room

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]

BUDGET_BYTES = 150_000


def test_viewer_page_js_and_css_stay_under_150_kb_gzipped(
    asgi_server, page, live_show, host, products
):
    """Every script and stylesheet the live show page loads from our static
    files (modules imported by other modules too), plus the vendored hls.js
    the player imports only when it falls back to HLS, each compressed with
    gzip level 9."""
    room.product_pin(show=live_show, actor=host, product_id=products[0].pk)
    static = f"{asgi_server}/static/"
    urls: set[str] = set()
    page.on(
        "request",
        lambda request: (
            urls.add(request.url)
            if request.resource_type in ("script", "stylesheet")
            and request.url.startswith(static)
            else None
        ),
    )
    page.goto(f"{asgi_server}/shows/{live_show.slug}/")
    page.wait_for_selector("#room-conn[data-state='live']", timeout=15_000)
    page.wait_for_selector(".room-pin .room-buy")
    page.wait_for_load_state("networkidle")
    hls = page.get_attribute("[data-player]", "data-hls-lib")
    assert hls
    urls.add(urljoin(page.url, hls))

    sizes: dict[str, tuple[int, int]] = {}
    for url in sorted(urls):
        answer = page.request.get(url)
        assert answer.ok, url
        body = answer.body()
        sizes[url.removeprefix(static)] = (len(body), len(gzip.compress(body, 9)))
    total = sum(zipped for _, zipped in sizes.values())

    print(f"\nviewer page JS + CSS: {total / 1000:.1f} kB gzipped, {len(sizes)} files")
    for name, (raw, zipped) in sorted(sizes.items(), key=lambda item: -item[1][1]):
        print(f"  {zipped / 1000:7.1f} kB  ({raw / 1000:7.1f} kB raw)  {name}")
    # The page's own modules and styles are all there, besides hls.js (a live
    # show's page has no countdown and no time to put in the viewer's zone; the
    # buy sheet's checkout.js and checkout.css come on its first use).
    assert {
        "frontend/app.css",
        "frontend/room.css",
        "frontend/player.css",
        "frontend/room.js",
        "frontend/player.js",
        "frontend/checkout-loader.js",
    } <= {name.split("?")[0] for name in sizes}
    assert any("hls" in name for name in sizes)
    assert total < BUDGET_BYTES, f"{total} bytes gzipped, budget {BUDGET_BYTES}"
