"""The shoppable replay in Chromium (docs/replay.md): a viewer opens the replay
of an ended show (a real, short recording made here with PyAV), taps the
second chapter, the video seeks there and the card of that product shows,
and they buy it at list price; the chat replays in order as the video plays
and is rebuilt after a seek back; no serious axe violations."""

from __future__ import annotations

from datetime import timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import pytest
from django.utils import timezone

from checkout.models import Order
from shows import services
from shows.models import ChatMessage, Pin, Show
from tests.frontend.test_a11y import axe_problems, axe_script

__all__ = ["axe_script"]  # the fixture, used by name

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]

SECONDS = 12
FPS = 10


def make_recording(path: Path) -> None:
    """A WebM (VP8) of ``SECONDS`` seconds: frames of changing grey."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libvpx", rate=FPS)
        stream.width, stream.height = 160, 90
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, FPS)
        for index in range(SECONDS * FPS):
            frame = av.VideoFrame(160, 90, "yuv420p")
            for plane in frame.planes:
                plane.update(bytes([index * 2 % 256]) * plane.buffer_size)
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@pytest.fixture
def recorded(settings: Any, tmp_path: Path) -> Path:
    """The recordings directory the server reads, set before it starts."""
    folder = tmp_path / "recordings"
    folder.mkdir()
    settings.SHOWFLOOR_RECORDINGS_DIR = folder
    settings.SHOWFLOOR_RESERVATIONS_PER_MINUTE = 0
    make_recording(folder / "launch.webm")
    return folder


@pytest.fixture
def replayed(recorded, show, products, host, make_user) -> Show:
    """Launch night, over, with its recording: the headphones pinned at 0:02
    (until 0:05), the mic at 0:06; chat at 0:01, 0:03 and 0:08."""
    services.show_start(show=show)
    services.show_end(show=show)
    started = timezone.now() - timedelta(hours=1)
    Show.objects.filter(pk=show.pk).update(
        started_at=started,
        ended_at=started + timedelta(seconds=SECONDS),
        recording_file="launch.webm",
    )
    show.refresh_from_db()
    for product, at, until in [(products[0], 2, 5), (products[1], 6, None)]:
        Pin.objects.create(
            show=show,
            product=product,
            pinned_at=started + timedelta(seconds=at),
            unpinned_at=None if until is None else started + timedelta(seconds=until),
            pinned_by=host,
        )
    viewer = make_user("Vera Viewer")
    # Written out of order on purpose: the replay orders them by time.
    for at, text in [(8, "third"), (1, "first"), (3, "second")]:
        message = ChatMessage.objects.create(show=show, author=viewer, text=text)
        ChatMessage.objects.filter(pk=message.pk).update(
            created_at=started + timedelta(seconds=at)
        )
    return show


def chat_texts(page: Any) -> list[str]:
    return page.eval_on_selector_all(
        "#replay-chat .room-text", "nodes => nodes.map(n => n.textContent)"
    )


def test_a_viewer_jumps_to_a_chapter_and_buys_from_the_replay(
    stripe_settings, replayed, asgi_server, page, axe_script, products
):
    mic = products[1].variants.get()
    page.goto(f"{asgi_server}/shows/{replayed.slug}/")
    page.wait_for_function(
        "document.querySelector('[data-player] video').readyState >= 1",
        timeout=15000,
    )
    assert page.locator(".badge-replay").count() == 1
    assert page.locator("#room-chat-input, #room-viewers, #room-heart").count() == 0
    chapters = page.locator(".replay-chapter")
    assert chapters.count() == 2
    assert "0:06" in chapters.nth(1).inner_text()
    assert "Desk Mic" in chapters.nth(1).inner_text()
    # Nothing is shown before the first pin; no chat before 0:01.
    assert page.locator("#replay-cards .room-pin").count() == 0
    assert chat_texts(page) == []

    page.evaluate("document.querySelector('[data-player] video').muted = true")
    chapters.nth(1).focus()
    page.keyboard.press("Enter")  # the second chapter, by keyboard
    page.wait_for_function(
        "document.querySelector('[data-player] video').currentTime >= 6",
        timeout=10000,
    )
    page.wait_for_selector(f"#replay-cards .room-pin[data-product='{products[1].pk}']")
    assert page.locator("#replay-cards .room-pin").count() == 1
    assert chapters.nth(1).get_attribute("aria-current") == "true"
    assert chat_texts(page)[:2] == ["first", "second"]

    # The chat goes on in order as the video plays.
    page.wait_for_function(
        "document.querySelectorAll('#replay-chat .room-msg').length === 3",
        timeout=15000,
    )
    assert chat_texts(page) == ["first", "second", "third"]

    # Buy the mic from its card: the sheet sells at list price.
    page.evaluate("document.querySelector('[data-player] video').pause()")
    page.click(f"#replay-buy-{products[1].pk}")
    page.wait_for_selector("#buy-sheet[open]")
    assert page.inner_text("#buy-product") == "Desk Mic"
    assert page.input_value("#buy-variant") == str(mic.pk)
    page.fill("#buy-email", "guest@example.test")
    page.click("#buy-primary")
    page.wait_for_selector("#buy-sheet[data-order-id]", timeout=10000)
    page.click("#buy-primary")
    page.wait_for_selector("#buy-sheet[data-order-status='paid']", timeout=15000)
    order = Order.objects.get()
    assert order.status == Order.Status.PAID
    assert order.source == "replay"
    assert order.lines.get().unit_price_minor == mic.price_minor
    mic.refresh_from_db()
    assert mic.stock_available == 9
    page.keyboard.press("Escape")
    page.wait_for_selector("#buy-sheet:not([open])", state="attached")

    # One more for later: into the bag, whose button appears.
    page.click(f"#replay-add-{products[1].pk}")
    page.wait_for_selector("#room-bag-wrap:not([hidden])", timeout=10000)
    assert page.inner_text("#room-bag-n") == "1"
    mic.refresh_from_db()
    assert mic.stock_available == 8

    # Seeking back rebuilds the chat and shows the card of that moment.
    page.evaluate("document.querySelector('[data-player] video').currentTime = 2.5")
    page.wait_for_function(
        "document.querySelectorAll('#replay-chat .room-msg').length === 1",
        timeout=10000,
    )
    assert chat_texts(page) == ["first"]
    page.wait_for_selector(f"#replay-cards .room-pin[data-product='{products[0].pk}']")

    problems = axe_problems(page, axe_script, "replay")
    page.set_viewport_size({"width": 1280, "height": 900})
    problems += axe_problems(page, axe_script, "replay, desktop")
    assert problems == []
