"""The embed in Chromium (docs/embed.md): a brand's page on another loopback
origin (127.0.0.2, another site than the server's 127.0.0.1) embeds a live
show with the one script tag, hears its events, commands it, and a guest buys
through it; a page on an origin the brand did not allow gets no frame."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from checkout.models import Order
from shows.models import Brand
from shows.services import room
from tests.frontend.test_a11y import axe_problems, axe_script  # noqa: F401
from tests.live.conftest import login_cookie

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]

# The brand's page: it records what the embed tells it (its own page, under
# no policy of ours) and when the frame has loaded, whatever loaded in it.
SHOP_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>The shop</title></head>
<body><h1>Our shop</h1>
<script>
window.__events = [];
window.__raw = [];
const names = ["ready", "live", "ended", "product.pinned", "bag.added", "purchased",
  "muted"];
for (const name of names) {
  document.addEventListener("showfloor:" + name, (e) => window.__events.push(e.detail));
}
window.addEventListener("message", (e) => window.__raw.push(e.data));
</script>
<script src="%(base)s/embed.js" data-show="%(slug)s"
  data-title="Live from the shop"></script>
<script>
document.querySelector("iframe.showfloor-embed")
  .addEventListener("load", () => { window.__loaded = true; });
</script>
</body></html>
"""


@contextmanager
def shop(address: str, base: str, slug: str) -> Iterator[str]:
    """A brand's page served on ``address`` (a port of its own); yields its
    origin."""
    body = (SHOP_PAGE % {"base": base, "slug": slug}).encode()

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((address, 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{address}:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def events_of(page, kind: str) -> list[dict]:
    return [e for e in page.evaluate("window.__events") if e["type"] == kind]


def wait_for_event(page, kind: str, test: str = "true") -> None:
    page.wait_for_function(
        f"window.__events.some((e) => e.type === {kind!r} && ({test}))",
        timeout=15000,
    )


def the_frame(page):
    return next(f for f in page.frames if "/embed/" in f.url)


def test_a_brands_page_embeds_the_live_show_hears_it_and_a_guest_buys_in_it(
    stripe_settings, asgi_server, browser, live_show, products, host
):
    room.product_pin(show=live_show, actor=host, product_id=products[1].pk)
    with shop("127.0.0.2", asgi_server, live_show.slug) as origin:
        Brand.objects.filter(pk=live_show.brand_id).update(embed_origins=[origin])
        # The policy in force: frame-ancestors is the point here.
        context = browser.new_context(
            viewport={"width": 1280, "height": 900}, bypass_csp=False
        )
        try:
            page = context.new_page()
            page.goto(f"{origin}/")
            wait_for_event(page, "ready")
            frame_element = page.locator("iframe.showfloor-embed")
            assert frame_element.get_attribute("title") == "Live from the shop"
            assert frame_element.get_attribute("allow") == (
                "autoplay; fullscreen; payment"
            )
            # The show is live and the mic pinned: the snapshot says both.
            wait_for_event(page, "live")
            wait_for_event(page, "product.pinned", "e.product.name === 'Desk Mic'")
            frame = page.frame_locator("iframe.showfloor-embed")
            frame.locator("#room-conn[data-state='live']").wait_for(timeout=15000)
            # A pin made now reaches the page too.
            room.product_pin(show=live_show, actor=host, product_id=products[0].pk)
            wait_for_event(
                page, "product.pinned", "e.product.name === 'Studio Headphones'"
            )

            # Commands: unmute, then mute again; the frame says each change.
            video = the_frame(page).locator(".player-video")
            page.evaluate("Showfloor.embeds[0].mute(false)")
            wait_for_event(page, "muted", "e.muted === false")
            assert video.evaluate("(v) => v.muted") is False
            page.evaluate("Showfloor.embeds[0].mute()")
            wait_for_event(page, "muted", "e.muted === true")
            assert video.evaluate("(v) => v.muted") is True

            # A message that does not come from the frame is not relayed.
            page.evaluate(
                "window.postMessage({source: 'showfloor', type: 'purchased'}, '*');"
                "window.postMessage('sentinel', '*')"
            )
            page.wait_for_function("window.__raw.includes('sentinel')")
            assert events_of(page, "purchased") == []

            # A guest buys the pinned mic inside the frame.
            mic_card = frame.locator(".room-pin", has_text="Desk Mic")
            mic_card.locator(".room-buy").click()
            frame.locator("#buy-sheet[open]").wait_for()
            frame.locator("#buy-email").fill("embedded@example.test")
            frame.locator("#buy-primary").click()  # reserve
            frame.locator("#buy-sheet[data-order-id]").wait_for(timeout=10000)
            frame.locator("#buy-primary").click()  # pay with the test card
            frame.locator("#buy-sheet[data-order-status='paid']").wait_for(
                timeout=15000
            )
            order = Order.objects.get()
            assert order.status == Order.Status.PAID
            assert order.email == "embedded@example.test"
            assert order.buyer is None
            assert order.session_key
            # Bought in the embed on 127.0.0.2: attributed to it.
            assert order.source == "embed.127.0.0.2"
            wait_for_event(
                page, "purchased", f"e.order_id === {str(order.public_id)!r}"
            )
            assert len(events_of(page, "purchased")) == 1
            # "See your order" is the signed link: no cookie knows this guest.
            frame.locator("#buy-order-link[href*='/orders/link/']").wait_for(
                timeout=5000
            )
            frame.locator("#buy-close").click()

            # Into the bag, from the other pinned card.
            frame.locator(".room-pin", has_text="Studio Headphones").locator(
                ".room-add"
            ).click()
            wait_for_event(page, "bag.added")
            headphones = products[0].variants.get()
            assert events_of(page, "bag.added")[0]["variant_id"] == headphones.pk
        finally:
            context.close()


def test_the_page_hears_when_an_embedded_show_goes_live(asgi_server, browser, show):
    """Embedded before it starts: "ready" says scheduled, and "live" comes
    when the host starts the show, from the room's event."""
    from shows import services

    with shop("127.0.0.2", asgi_server, show.slug) as origin:
        Brand.objects.filter(pk=show.brand_id).update(embed_origins=[origin])
        context = browser.new_context(bypass_csp=False)
        try:
            page = context.new_page()
            page.goto(f"{origin}/")
            wait_for_event(page, "ready", "e.status === 'scheduled'")
            frame = page.frame_locator("iframe.showfloor-embed")
            frame.locator("#room-conn[data-state='live']").wait_for(timeout=15000)
            assert events_of(page, "live") == []
            services.show_start(show=show)
            wait_for_event(page, "live")
            frame.locator(".badge-live").wait_for()
            assert len(events_of(page, "live")) == 1
        finally:
            context.close()


def test_a_page_on_an_origin_the_brand_did_not_allow_gets_no_frame(
    asgi_server, browser, live_show
):
    Brand.objects.filter(pk=live_show.brand_id).update(
        embed_origins=["http://127.0.0.2:1"]
    )
    with shop("127.0.0.3", asgi_server, live_show.slug) as origin:
        context = browser.new_context(
            viewport={"width": 1280, "height": 900}, bypass_csp=False
        )
        refusals: list[str] = []
        try:
            page = context.new_page()
            page.on(
                "console",
                lambda msg: (
                    refusals.append(msg.text) if "frame-ancestors" in msg.text else None
                ),
            )
            page.goto(f"{origin}/")
            page.wait_for_function("window.__loaded === true", timeout=15000)
            child = next(f for f in page.frames if f != page.main_frame)
            # Chromium put its error page in the frame, not ours.
            assert child.url.startswith("chrome-error://")
            assert page.evaluate("window.__events") == []
            assert refusals, "Chromium did not say why it refused the frame"
            assert "http://127.0.0.2:1" in refusals[0]
        finally:
            context.close()


def test_the_embed_page_and_its_settings_pass_axe(
    asgi_server,
    page,
    axe_script,  # noqa: F811
    live_show,
    products,
    host,
    make_user,
):
    """The framed page on its own (a phone-sized frame), and the owner's
    settings section that lists the allowed sites."""
    from shows import services

    room.product_pin(show=live_show, actor=host, product_id=products[1].pk)
    page.goto(f"{asgi_server}/embed/{live_show.slug}/")
    page.wait_for_selector("#room-conn[data-state='live']", timeout=15000)
    page.wait_for_selector(".room-pin .room-buy")
    problems = axe_problems(page, axe_script, "embed")
    page.click(".room-pin .room-buy")
    page.wait_for_selector("#buy-sheet[open]")
    problems += axe_problems(page, axe_script, "embed buy sheet")

    owner = make_user("Olga Owner")
    services.membership_set(brand=live_show.brand, user=owner, role="owner")
    page.context.add_cookies(
        [{"name": "sessionid", "value": login_cookie(owner), "url": asgi_server}]
    )
    page.goto(f"{asgi_server}/brand/{live_show.brand.slug}/settings/")
    page.fill("#e-origins", "https://shop.example/path")
    page.click("#e-origins ~ button, form:has(#e-origins) button[type=submit]")
    page.wait_for_selector("#e-origins-error")
    problems += axe_problems(page, axe_script, "settings with an origin refused")
    assert problems == []
