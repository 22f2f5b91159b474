"""The viewer page's layout in Chromium: built for a phone held upright, side by
side from desktop width. Screenshots land in ``test-artifacts/``."""

from __future__ import annotations

from typing import Any

import pytest

from shows.services import room
from tests.conftest import ARTIFACTS
from tests.live.conftest import login_cookie

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]

BOXES = """() => {
  const box = (selector) => {
    const node = document.querySelector(selector);
    if (!node) return null;
    const r = node.getBoundingClientRect();
    return { top: r.top + scrollY, bottom: r.bottom + scrollY, left: r.left,
             right: r.right, width: r.width, height: r.height };
  };
  return {
    video: box(".player-frame"),
    chat: box("#room-chat"),
    chatForm: box("#room-chat-form"),
    pin: box(".room-pin"),
    buy: box(".room-pin .room-buy"),
    pinName: box(".room-pin-name"),
    heart: box("#room-heart"),
    scrollWidth: document.scrollingElement.scrollWidth,
    viewport: innerWidth,
    viewportFit: document.querySelector("meta[name=viewport]").content,
  };
}"""


@pytest.fixture
def viewer_page(asgi_server, browser, live_show, host, make_user, products):
    """A signed-in viewer's page of the live show with chat and a pinned product;
    a factory taking the viewport size."""
    room.product_pin(show=live_show, actor=host, product_id=products[0].pk)
    viewer = make_user("Vera Viewer")
    for n in range(12):  # the host has no rate limit
        room.chat_send(show=live_show, user=host, text=f"Message number {n}")
    room.chat_send(show=live_show, user=viewer, text="Hello from Leeuwarden!")
    contexts: list[Any] = []

    def open_at(width: int, height: int, locale: str = "en-GB") -> Any:
        context = browser.new_context(
            viewport={"width": width, "height": height}, locale=locale
        )
        contexts.append(context)
        context.add_cookies(
            [{"name": "sessionid", "value": login_cookie(viewer), "url": asgi_server}]
        )
        page = context.new_page()
        page.goto(f"{asgi_server}/shows/{live_show.slug}/")
        page.wait_for_selector("#room-conn[data-state='live']", timeout=15_000)
        page.wait_for_selector(".room-pin .room-buy")
        page.wait_for_function(
            "document.querySelectorAll('#room-chat li').length >= 13"
        )
        return page

    yield open_at
    for context in contexts:
        context.close()


def test_phone_upright_vertical_video_with_the_chat_over_its_lower_part(viewer_page):
    """At 390 x 844: a vertical video as wide as the screen, the chat over its
    lower half, the pinned card over the video just above the chat with its
    buy button on the first screen, nothing wider than the screen, and a
    viewport that covers the notch (the safe-area insets pad the edges)."""
    page = viewer_page(390, 844)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "viewer-phone.png"))
    page.screenshot(path=str(ARTIFACTS / "viewer-phone-full.png"), full_page=True)
    box = page.evaluate(BOXES)

    assert "viewport-fit=cover" in box["viewportFit"]
    assert box["scrollWidth"] <= 390
    video, chat = box["video"], box["chat"]
    assert video["left"] == 0
    assert video["width"] == 390
    assert video["height"] > video["width"] * 1.5  # upright
    # The chat lies over the video's lower part, not below it.
    assert chat["top"] > video["top"] + video["height"] / 2
    assert chat["bottom"] <= video["bottom"]
    assert box["chatForm"]["bottom"] <= video["bottom"]
    assert box["heart"]["bottom"] <= video["bottom"]
    # The newest message is in view at the bottom of the chat.
    last = page.locator("#room-chat li").last.bounding_box()
    assert last is not None
    assert last["y"] + last["height"] <= chat["bottom"] - page.evaluate("scrollY") + 1
    # The pinned card floats over the video just above the chat, its Buy
    # button beside the facts, on the first screen: no scrolling to buy.
    pin, buy = box["pin"], box["buy"]
    assert video["top"] < pin["top"] < pin["bottom"] <= chat["top"]
    assert buy["left"] >= box["pinName"]["right"]
    assert buy["bottom"] <= 844
    assert pin["right"] <= box["heart"]["left"]


def test_desktop_puts_the_video_and_the_chat_side_by_side(viewer_page):
    """At 1280 x 800 the video is a landscape frame and the room is to its right."""
    page = viewer_page(1280, 800)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "viewer-desktop.png"))
    box = page.evaluate(BOXES)

    assert box["scrollWidth"] <= 1280
    video, chat = box["video"], box["chat"]
    assert video["width"] > video["height"]
    assert chat["left"] >= video["right"]
    assert chat["top"] < video["bottom"]
    assert box["pin"]["left"] >= video["right"]


def test_phone_in_landscape_and_small_phones_do_not_overflow(viewer_page):
    """A 320-wide phone and a phone on its side keep everything on screen."""
    for width, height in ((320, 568), (844, 390)):
        page = viewer_page(width, height)
        box = page.evaluate(BOXES)
        assert box["scrollWidth"] <= width, (width, height)
        assert box["chat"]["bottom"] <= box["video"]["bottom"], (width, height)


@pytest.mark.parametrize("locale", ["de-DE", "fr-FR", "fy-NL"])
def test_phone_layout_holds_in_every_language(viewer_page, locale):
    """Longer words (German, French, Frisian) wrap instead of widening the page."""
    page = viewer_page(390, 844, locale)
    assert page.evaluate("document.documentElement.lang") == locale[:2]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"viewer-phone-{locale[:2]}.png"))
    box = page.evaluate(BOXES)
    assert box["scrollWidth"] <= 390
    assert box["chat"]["bottom"] <= box["video"]["bottom"]
    assert box["chatForm"]["bottom"] <= box["video"]["bottom"]


def test_phone_replay_leaves_the_whole_frame_to_the_video_controls(
    asgi_server, page, live_show
):
    """After the show the chat moves out of the frame: the replay's controls
    along the video's bottom edge are not covered."""
    from shows import services

    services.show_end(show=live_show)
    page.goto(f"{asgi_server}/shows/{live_show.slug}/")
    page.wait_for_selector("[data-player][data-mode='replay']", timeout=15_000)
    box = page.evaluate(BOXES)
    video = box["video"]
    assert box["chat"]["top"] >= video["bottom"]
    page.evaluate("document.querySelector('.player-frame').scrollIntoView()")
    hit = page.evaluate(
        """() => {
          const r = document.querySelector(".player-frame").getBoundingClientRect();
          const hit = document.elementFromPoint(r.left + r.width / 2, r.bottom - 10);
          return Boolean(hit.closest(".player-frame"));
        }"""
    )
    assert hit is True  # the player, not the room
    assert box["scrollWidth"] <= 390
    # Nobody watches an ended show live, and it takes no reactions.
    assert page.locator(".room-viewers").is_hidden()
    assert page.locator("#room-heart").is_hidden()


@pytest.mark.parametrize("locale", ["en-GB", "de-DE", "fr-FR", "fy-NL"])
def test_phone_two_pinned_cards_leave_the_picture_free(
    viewer_page, live_show, host, products, locale
):
    """Two pinned products at 390 x 844 in every language: the cards share
    one strip to swipe (the second peeks in), together at most a third of
    the video's height; a long name gets two lines; the option list shows
    its price whole; the unmute pill keeps clear of the LIVE badge."""
    from shows import services

    services.variant_create(
        product=products[1],
        sku="MIC-LONG",
        name="Matt black with a windscreen",
        price_minor=10900,
        currency="EUR",
        stock_available=3,
    )
    room.product_pin(show=live_show, actor=host, product_id=products[1].pk)
    page = viewer_page(390, 844, locale)
    page.wait_for_function("document.querySelectorAll('.room-pin').length === 2")
    # The player shows both overlays as it does while a muted stream plays.
    page.evaluate(
        """() => {
          document.querySelector("[data-badge]").hidden = false;
          document.querySelector("[data-unmute]").hidden = false;
        }"""
    )
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"viewer-phone-two-pins-{locale[:2]}.png"))
    box = page.evaluate(
        """() => {
          const r = (s) => document.querySelector(s).getBoundingClientRect();
          const cards = [...document.querySelectorAll(".room-pin")]
            .map((n) => n.getBoundingClientRect());
          const strip = r(".room-pin-list");
          const select = document.querySelector(".room-pin select");
          return {
            video: r(".player-frame"), strip, cards,
            badge: r("[data-badge]"), unmute: r("[data-unmute]"),
            selectFits: select.scrollWidth <= select.clientWidth + 1,
            scrollWidth: document.scrollingElement.scrollWidth,
          };
        }"""
    )
    video, strip, (first, second) = box["video"], box["strip"], box["cards"]
    assert box["scrollWidth"] <= 390
    assert strip["height"] <= video["height"] / 3, (strip["height"], video["height"])
    # Side by side in one strip: the second card starts right of the first
    # and peeks in before the strip's edge.
    assert abs(first["top"] - second["top"]) < 1
    assert first["right"] <= second["left"] < strip["right"]
    assert box["selectFits"]
    assert box["unmute"]["left"] >= box["badge"]["right"]

    # The sheet's options: each checkbox in line with its label's first line,
    # all at the same left edge.
    page.locator(".room-pin .room-buy").first.click()
    page.wait_for_selector("#buy-sheet[open]")
    page.click(".buy-extras summary")
    checks = page.evaluate(
        """() => [...document.querySelectorAll(".buy-extras .buy-check")]
          .filter((label) => label.offsetParent)
          .map((label) => {
            const box = label.querySelector("input").getBoundingClientRect();
            // The words' first line, not the checkbox's own box.
            const words = [...label.childNodes].find(
              (node) => node.nodeType === Node.TEXT_NODE && node.textContent.trim());
            const text = document.createRange();
            text.selectNodeContents(words);
            const first = text.getClientRects()[0];
            return { left: box.left, middle: box.top + box.height / 2,
                     lineTop: first.top, lineBottom: first.bottom };
          })"""
    )
    assert checks
    for check in checks:
        assert check["lineTop"] - 2 <= check["middle"] <= check["lineBottom"] + 2
    assert len({round(check["left"]) for check in checks}) == 1
