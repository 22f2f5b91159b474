"""Accessibility in Chromium: axe-core finds no serious or critical WCAG 2.2 A/AA
violation on the pages (light and dark schemes), the live regions announce chat
and order status, the buy sheet works by keyboard alone, and reduced-motion
viewers get no floating hearts.

axe-core comes from the npm registry, pinned in ``tests/frontend/axe``; the
session installs it there with ``npm ci`` the first time.
"""

from __future__ import annotations

import fcntl
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from frontend import demo
from shows import services
from shows.services import room
from tests.conftest import missing_service
from tests.live.conftest import login_cookie

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]

AXE_DIR = Path(__file__).resolve().parent / "axe"
AXE_SCRIPT = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]
RUN_AXE = """async (tags) => {
  const result = await axe.run(document, {
    runOnly: { type: "tag", values: tags },
    resultTypes: ["violations"],
  });
  return result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.map((n) => `${n.target.join(" ")}: ${n.failureSummary}`),
    }));
}"""


@pytest.fixture(scope="session")
def axe_script() -> Path:
    """axe.min.js, installed from ``package-lock.json`` once (under a file lock:
    two xdist workers may get here together)."""
    if AXE_SCRIPT.exists():
        return AXE_SCRIPT
    npm = shutil.which("npm")
    if npm is None:
        missing_service("npm (installs axe-core into tests/frontend/axe)")
    with open(AXE_DIR / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not AXE_SCRIPT.exists():
            done = subprocess.run(
                [str(npm), "ci", "--silent", "--no-audit", "--no-fund"],
                cwd=AXE_DIR,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            if done.returncode or not AXE_SCRIPT.exists():
                pytest.fail(f"npm ci in {AXE_DIR} failed:\n{done.stderr[-2000:]}")
    return AXE_SCRIPT


def axe_problems(page: Any, axe: Path, where: str) -> list[str]:
    """The serious and critical violations on the page as it is now, in the
    light and the dark colour scheme, one readable line per failing node."""
    if not page.evaluate("typeof window.axe === 'object'"):
        page.add_script_tag(path=str(axe))
    problems: list[str] = []
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        for violation in page.evaluate(RUN_AXE, AXE_TAGS):
            problems.extend(
                f"{where} [{scheme}] {violation['id']} ({violation['impact']}): {node}"
                for node in violation["nodes"]
            )
    page.emulate_media(color_scheme="light")
    return problems


def signed_in(page: Any, base: str, user: Any) -> None:
    page.context.add_cookies(
        [{"name": "sessionid", "value": login_cookie(user), "url": base}]
    )


def open_live_room(page: Any, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("#room-conn[data-state='live']", timeout=15_000)


@pytest.fixture
def busy_show(live_show, host, make_user, products):
    """The live show with a pinned product, a few chat lines and questions."""
    viewer = make_user("Vera Viewer")
    room.product_pin(show=live_show, actor=host, product_id=products[1].pk)
    room.chat_send(show=live_show, user=host, text="Welcome to the launch!")
    room.chat_send(show=live_show, user=viewer, text="Hello from Leeuwarden")
    asked = room.question_ask(show=live_show, user=viewer, text="Does it fold?")
    room.question_ask(show=live_show, user=viewer, text="Battery life?")
    room.question_answer(
        show=live_show, actor=host, question_id=asked.pk, text="Yes, flat."
    )
    return live_show


# --- axe-core ----------------------------------------------------------------


def test_public_pages_have_no_serious_axe_violations(asgi_server, page, axe_script):
    """Home, log-in, sign-up (also with errors), the access-code page (also
    after a wrong code), 403 and 404."""
    data = demo.seed_demo()
    services.show_start(show=data.show)
    problems: list[str] = []

    def check(path: str, where: str) -> None:
        page.goto(asgi_server + path)
        problems.extend(axe_problems(page, axe_script, where))

    check("/", "home")
    page.set_viewport_size({"width": 1280, "height": 800})
    problems.extend(axe_problems(page, axe_script, "home, desktop"))
    page.set_viewport_size({"width": 390, "height": 844})
    check(f"/brands/{data.brand.slug}/", "brand page")
    check("/login/", "log in")
    check("/signup/", "sign up")
    page.get_by_role("button", name="Create account").click()
    page.wait_for_selector(".errorlist")
    problems.extend(axe_problems(page, axe_script, "sign up with errors"))
    check(f"/shows/{data.private_show.slug}/", "access code")
    page.get_by_label("Access code").fill("wrong")
    page.get_by_role("button", name="Enter the show").click()
    page.wait_for_selector(".errorlist")
    problems.extend(axe_problems(page, axe_script, "access code refused"))
    # A signed-in viewer is refused the studio (a signed-out one is sent to log in).
    page.context.add_cookies(
        [{"name": "sessionid", "value": login_cookie(data.viewer), "url": asgi_server}]
    )
    check(f"/shows/{data.show.slug}/studio/", "403")
    assert page.locator(".notice-code").inner_text() == "403"
    check("/shows/no-such-show/", "404")
    assert page.locator(".notice-code").inner_text() == "404"
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("member", [False, True], ids=["anonymous", "signed-in"])
def test_scheduled_show_page_has_no_serious_axe_violations(
    asgi_server, page, axe_script, show, make_user, member
):
    if member:
        signed_in(page, asgi_server, make_user("Vera Viewer"))
    open_live_room(page, f"{asgi_server}/shows/{show.slug}/")
    page.locator(".countdown-left").wait_for(state="visible")
    problems = axe_problems(page, axe_script, "scheduled show")
    page.set_viewport_size({"width": 1280, "height": 800})
    problems += axe_problems(page, axe_script, "scheduled show, desktop")
    assert not problems, "\n".join(problems)


def test_ended_show_page_has_no_serious_axe_violations(
    asgi_server, page, axe_script, busy_show
):
    """The replay: the video has controls, the chat is out of the frame."""
    services.show_end(show=busy_show)
    open_live_room(page, f"{asgi_server}/shows/{busy_show.slug}/")
    page.wait_for_selector("[data-player][data-mode='replay']")
    problems = axe_problems(page, axe_script, "ended show")
    page.set_viewport_size({"width": 1280, "height": 800})
    problems += axe_problems(page, axe_script, "ended show, desktop")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("member", [False, True], ids=["anonymous", "signed-in"])
def test_live_show_page_and_buy_sheet_have_no_serious_axe_violations(
    asgi_server, page, axe_script, busy_show, make_user, member
):
    """The live page with chat, pinned product and both room tabs, at phone and
    desktop width, then with the buy sheet open."""
    if member:
        signed_in(page, asgi_server, make_user("Bea Buyer"))
    open_live_room(page, f"{asgi_server}/shows/{busy_show.slug}/")
    page.wait_for_selector(".room-pin .room-buy")
    page.wait_for_function("document.querySelectorAll('#room-chat li').length >= 2")
    problems = axe_problems(page, axe_script, "live show, chat")
    page.click("#room-tab-qa")
    page.wait_for_selector("#room-questions li")
    problems += axe_problems(page, axe_script, "live show, Q&A")
    page.click("#room-tab-chat")
    page.set_viewport_size({"width": 1280, "height": 800})
    problems += axe_problems(page, axe_script, "live show, desktop")
    page.set_viewport_size({"width": 390, "height": 844})
    page.click(".room-pin .room-buy")
    page.wait_for_selector("#buy-sheet[open]")
    page.click(".buy-extras summary")
    problems += axe_problems(page, axe_script, "buy sheet")
    assert not problems, "\n".join(problems)


def test_studio_has_no_serious_axe_violations(
    asgi_server, page, axe_script, busy_show, host
):
    signed_in(page, asgi_server, host)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{asgi_server}/shows/{busy_show.slug}/studio/")
    page.wait_for_selector("#studio-conn[data-state='live']", timeout=15_000)
    page.wait_for_selector("#studio-questions li")
    page.click(".publish-obs summary")
    problems = axe_problems(page, axe_script, "studio")
    page.set_viewport_size({"width": 390, "height": 844})
    problems += axe_problems(page, axe_script, "studio, phone")
    assert not problems, "\n".join(problems)


# --- Live regions, keyboard, captions, motion ----------------------------------


def test_chat_and_order_status_are_live_regions(
    asgi_server, page, busy_show, host, make_user
):
    """New chat lines land in a polite log; a vote changes only its question in
    the Q&A region; the buy sheet's order status is a status region inside the
    dialog."""
    from shows.models import Question

    open_live_room(page, f"{asgi_server}/shows/{busy_show.slug}/")
    log = page.locator("[role='log']")
    assert log.get_attribute("aria-live") == "polite"
    assert log.get_attribute("aria-label") == "Chat messages"
    room.chat_send(show=busy_show, user=host, text="Fresh from the studio")
    log.get_by_text("Fresh from the studio").wait_for()
    assert log.locator("#room-chat li").count() == 3

    # A vote updates its question in place: the others are not re-announced.
    page.click("#room-tab-qa")
    page.wait_for_selector("#room-questions li")
    page.evaluate(
        "document.querySelectorAll('#room-questions li')"
        ".forEach((li) => { li.dataset.seen = li.id; })"
    )
    battery = Question.objects.get(text="Battery life?")
    room.question_vote(
        show=busy_show, user=make_user("Otto Other"), question_id=battery.pk
    )
    page.wait_for_function(
        "(id) => document.querySelector(`#q-${id} .room-vote-count`)"
        ".textContent === '1'",
        arg=battery.pk,
    )
    kept = page.eval_on_selector_all(
        "#room-questions li[data-seen]", "items => items.map((li) => li.id)"
    )
    assert kept == [f"q-{q.pk}" for q in Question.objects.exclude(pk=battery.pk)]

    status = page.locator("#buy-sheet [role='status']")
    assert status.get_attribute("id") == "buy-status"
    assert status.get_attribute("aria-live") == "polite"


FOCUS_SHOWN = """() => {
  const el = document.activeElement;
  const style = getComputedStyle(el);
  return {
    id: el.id, tag: el.tagName, cls: el.className,
    shown: el.matches(":focus-visible") && style.outlineStyle !== "none"
      && parseFloat(style.outlineWidth) >= 2,
  };
}"""


def test_buy_sheet_opens_from_the_pinned_card_and_closes_by_keyboard_alone(
    asgi_server, page, busy_show, products
):
    """Tab to the pinned card's Buy (every stop shows a focus ring), Enter opens
    the sheet with focus inside, Tab stays inside it, Escape closes it and the
    focus is back on Buy."""
    open_live_room(page, f"{asgi_server}/shows/{busy_show.slug}/")
    page.wait_for_selector(".room-pin .room-buy")
    stops = []
    for _ in range(60):
        page.keyboard.press("Tab")
        focus = page.evaluate(FOCUS_SHOWN)
        stops.append(focus)
        if "room-buy" in str(focus["cls"]):
            break
    else:
        pytest.fail(f"Tab never reached the pinned card's Buy: {stops}")
    assert all(stop["shown"] for stop in stops), [s for s in stops if not s["shown"]]

    page.keyboard.press("Enter")
    page.wait_for_selector("#buy-sheet[open]")
    assert page.inner_text("#buy-product") == products[1].name
    assert page.evaluate("document.activeElement.id") == "buy-primary"
    for _ in range(12):
        page.keyboard.press("Tab")
        assert page.evaluate(
            "document.getElementById('buy-sheet').contains(document.activeElement)"
        )
        assert page.evaluate(FOCUS_SHOWN)["shown"]

    page.keyboard.press("Escape")
    page.wait_for_selector("#buy-sheet:not([open])", state="attached")
    assert page.evaluate(
        "(id) => document.activeElement"
        ".matches(`.room-pin[data-product='${id}'] .room-buy`)",
        products[1].pk,
    )


def test_room_actions_work_from_the_keyboard(asgi_server, page, busy_show, make_user):
    """A signed-in viewer chats with Enter, switches to Q&A with the arrow key,
    votes with Enter and sends a heart with Space."""
    from shows.models import Question

    viewer = make_user("Kim Keyboard")
    signed_in(page, asgi_server, viewer)
    open_live_room(page, f"{asgi_server}/shows/{busy_show.slug}/")
    page.focus("#room-chat-input")
    page.keyboard.type("Typed, not clicked")
    page.keyboard.press("Enter")
    page.locator("#room-chat").get_by_text("Typed, not clicked").wait_for()

    page.focus("#room-tab-chat")
    page.keyboard.press("ArrowRight")
    assert page.evaluate("document.activeElement.id") == "room-tab-qa"
    assert page.is_visible("#room-questions")
    open_question = Question.objects.get(text="Battery life?")
    vote = page.locator(f"#q-{open_question.pk} .room-vote")
    assert vote.inner_text().split() == ["▲", "Vote", "0", "votes"]
    vote.focus()
    page.keyboard.press("Enter")
    page.wait_for_function(
        "(id) => document.querySelector(`#q-${id} .room-vote-count`)"
        ".textContent === '1'",
        arg=open_question.pk,
    )
    open_question.refresh_from_db()
    assert open_question.votes == 1
    # The vote button is gone (voted): the focus stays on its question.
    assert page.evaluate("document.activeElement.id") == f"q-{open_question.pk}"

    page.evaluate(
        """() => { window.__bursts = 0; document.addEventListener("showfloor:event",
        (e) => { if (e.detail.type === "reactions.burst") window.__bursts++; }); }"""
    )
    page.focus("#room-heart")
    page.keyboard.press(" ")
    page.wait_for_function("window.__bursts > 0", timeout=10_000)


def test_studio_pins_a_product_from_the_keyboard(asgi_server, page, busy_show, host):
    from shows.models import Pin

    signed_in(page, asgi_server, host)
    page.goto(f"{asgi_server}/shows/{busy_show.slug}/studio/")
    page.wait_for_selector("#studio-conn[data-state='live']", timeout=15_000)
    button = page.locator(".studio-pin[aria-pressed='false']").first
    product = int(button.get_attribute("data-product") or 0)
    button.focus()
    page.keyboard.press("Enter")
    page.wait_for_selector(
        f".studio-pin[data-product='{product}'][aria-pressed='true']"
    )
    assert Pin.objects.filter(show=busy_show, product_id=product).exists()


def test_studio_keeps_a_typed_answer_and_the_focus_when_votes_arrive(
    asgi_server, page, busy_show, host, make_user
):
    """A vote updates the host's question queue; the answer being typed and
    the keyboard focus stay where they were."""
    from shows.models import Question

    signed_in(page, asgi_server, host)
    page.goto(f"{asgi_server}/shows/{busy_show.slug}/studio/")
    page.wait_for_selector("#studio-conn[data-state='live']", timeout=15_000)
    battery = Question.objects.get(text="Battery life?")
    field = f"#sq-answer-{battery.pk}"
    page.wait_for_selector(field)
    page.focus(field)
    page.keyboard.type("About 40 h")
    room.question_vote(show=busy_show, user=make_user("Otto"), question_id=battery.pk)
    page.wait_for_function(
        "(id) => document.querySelector(`#sq-${id}`).dataset.votes === '1'",
        arg=battery.pk,
    )
    assert page.input_value(field) == "About 40 h"
    assert page.evaluate("document.activeElement.id") == field[1:]


HEART_WATCH = """() => {
  window.__hearts = [];
  window.__bursts = 0;
  const seen = (node) => window.__hearts.push(getComputedStyle(node).animationName);
  new MutationObserver((changes) => changes.forEach((c) => c.addedNodes.forEach(seen)))
    .observe(document.getElementById("room-hearts"), { childList: true });
  document.addEventListener("showfloor:event", (e) => {
    if (e.detail.type === "reactions.burst") window.__bursts++;
  });
}"""


@pytest.mark.parametrize("motion", ["reduce", "no-preference"])
def test_hearts_float_only_without_reduced_motion(asgi_server, page, live_show, motion):
    """With ``prefers-reduced-motion: reduce`` neither the viewer's own heart
    nor the room's burst adds an animated heart; without it both do."""
    page.emulate_media(reduced_motion=motion)
    open_live_room(page, f"{asgi_server}/shows/{live_show.slug}/")
    page.evaluate(HEART_WATCH)
    page.click("#room-heart")
    page.wait_for_function("window.__bursts > 0", timeout=10_000)
    hearts = page.evaluate("window.__hearts")
    if motion == "reduce":
        assert hearts == []
    else:
        assert len(hearts) >= 2  # one at the tap, more with the burst
        assert set(hearts) == {"room-float"}


def test_player_has_a_labelled_captions_track(asgi_server, page, live_show):
    """The video carries a captions text track in the page's language that
    cues can be added to, and the player still starts (it asks for WebRTC)."""
    # The player's WHEP offer goes out after ICE gathering, some time after
    # the page is ready: wait for the request itself, not for a page flag.
    with page.expect_request(lambda r: r.url.endswith("/whep"), timeout=15_000) as whep:
        open_live_room(page, f"{asgi_server}/shows/{live_show.slug}/")
        track = page.locator(".player-video track")
        assert track.get_attribute("kind") == "captions"
        assert track.get_attribute("label") == "Captions"
        assert track.get_attribute("srclang") == "en"
        added = page.evaluate(
            """() => {
              const track = document.querySelector(".player-video").textTracks[0];
              track.mode = "hidden";
              track.addCue(new VTTCue(0, 5, "Hello"));
              return [track.kind, track.label, track.cues.length];
            }"""
        )
        assert added == ["captions", "Captions", 1]
    assert whep.value.method == "POST"


OVERLAY_CONTRAST = """() => {
  const parse = (css) => {
    const inner = css.match(/rgba?\\(([^)]*)\\)/)[1];
    const parts = inner.split(/[\\s,/]+/).filter(Boolean).map(Number);
    return [parts[0], parts[1], parts[2], parts.length > 3 ? parts[3] : 1];
  };
  const channel = (v) => (
    (v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
  const lum = ([r, g, b]) => (
    0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b));
  const ratio = (a, b) => {
    const [hi, lo] = [lum(a), lum(b)].sort((x, y) => y - x);
    return (hi + 0.05) / (lo + 0.05);
  };
  const over = (top, under) => (
    [0, 1, 2].map((i) => top[i] * top[3] + under[i] * (1 - top[3])));
  const stage = document.querySelector(".show-stage");
  const texts = [...document.querySelectorAll(".room-talk *")].filter(
    (node) => !node.closest(".sr-only") && node.getClientRects().length
      && [...node.childNodes].some((c) => c.nodeType === 3 && c.textContent.trim()),
  );
  return texts.map((node) => {
    const layers = [];
    for (let n = node; n && n !== stage; n = n.parentElement) {
      const style = getComputedStyle(n);
      const bg = parse(style.backgroundColor);
      if (bg[3] > 0) layers.unshift(bg);
      if (bg[3] === 1 || n.tagName === "VIDEO") break;
    }
    const color = parse(getComputedStyle(node).color);
    // The picture behind is unknown: the worst of a white and a black frame.
    const worst = Math.min(...[[255, 255, 255], [0, 0, 0]].map((backdrop) => {
      const bg = layers.reduce((under, layer) => over(layer, under), backdrop);
      return ratio(over(color, bg), bg);
    }));
    const text = node.textContent.trim().slice(0, 40);
    return { text, ratio: Math.round(worst * 100) / 100 };
  });
}"""


@pytest.mark.parametrize("member", [False, True], ids=["anonymous", "signed-in"])
def test_text_over_the_video_keeps_aa_contrast_on_any_picture(
    asgi_server, page, busy_show, make_user, member
):
    """On a phone the chat and Q&A lie over the video, where axe cannot tell
    the background: every line keeps 4.5:1 over a white or a black frame."""
    if member:
        signed_in(page, asgi_server, make_user("Bea Buyer"))
    open_live_room(page, f"{asgi_server}/shows/{busy_show.slug}/")
    page.wait_for_function("document.querySelectorAll('#room-chat li').length >= 2")
    measured = page.evaluate(OVERLAY_CONTRAST)
    page.click("#room-tab-qa")
    page.wait_for_selector("#room-questions li")
    measured += page.evaluate(OVERLAY_CONTRAST)
    texts = {m["text"] for m in measured}
    assert {"Hello from Leeuwarden", "Does it fold?", "Yes, flat."} <= texts
    page.emulate_media(color_scheme="dark")
    measured += page.evaluate(OVERLAY_CONTRAST)
    low = [m for m in measured if m["ratio"] < 4.5]
    assert not low, low


PLACEHOLDER_CONTRAST = """() => {
  const rgb = (css) => css.match(/[\\d.]+/g).slice(0, 3).map(Number);
  const channel = (v) => (
    (v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
  const lum = ([r, g, b]) => (
    0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b));
  return [...document.querySelectorAll("input[placeholder]")]
    .filter((input) => input.getClientRects().length)
    .map((input) => {
      const text = lum(rgb(getComputedStyle(input, "::placeholder").color));
      const back = lum(rgb(getComputedStyle(input).backgroundColor));
      const [hi, lo] = [text, back].sort((a, b) => b - a);
      const ratio = Math.round(((hi + 0.05) / (lo + 0.05)) * 100) / 100;
      return [input.id || input.name, ratio];
    });
}"""


def test_placeholder_text_keeps_aa_contrast(asgi_server, page, busy_show, host):
    """axe does not check placeholders: the chat, question and studio fields'
    placeholders keep 4.5:1 on their field in both colour schemes."""
    signed_in(page, asgi_server, host)
    measured = []

    def measure() -> None:
        for scheme in ("light", "dark"):
            page.emulate_media(color_scheme=scheme)
            measured.extend(page.evaluate(PLACEHOLDER_CONTRAST))

    open_live_room(page, f"{asgi_server}/shows/{busy_show.slug}/")
    measure()
    page.click("#room-tab-qa")
    measure()
    page.goto(f"{asgi_server}/shows/{busy_show.slug}/studio/")
    page.wait_for_selector("#studio-conn[data-state='live']", timeout=15_000)
    measure()
    fields = {name for name, _ in measured}
    assert {"room-chat-input", "room-ask-input", "studio-chat-input", "price"} <= fields
    low = [(name, ratio) for name, ratio in measured if ratio < 4.5]
    assert not low, low


def test_delivery_form_and_order_pages_have_no_serious_axe_violations(
    stripe_settings, asgi_server, page, axe_script, busy_show, products, make_user
):
    """The buy sheet asking for an address (with a field refused), My orders
    with a saved card, and an order's page with its timeline and tracking."""
    from checkout import services as checkout
    from checkout.services import delivery, fulfilment
    from tests.checkout.conftest import new_key

    delivery.shipping_zone_set(
        brand=busy_show.brand,
        name="EU",
        countries=["DE"],
        rate_minor=490,
        currency="EUR",
    )
    buyer = make_user("Bea Buyer")
    placed = checkout.order_create(
        show=busy_show,
        buyer=checkout.Buyer(user=buyer),
        variant_id=products[1].variants.get().pk,
        quantity=1,
        idempotency_key=new_key(),
        save_card=True,
        address={
            "name": "Bea Buyer",
            "line1": "Torstraße 1",
            "postal_code": "10119",
            "city": "Berlin",
            "country": "DE",
        },
    ).order
    checkout.order_pay(order=placed, buyer=checkout.Buyer(user=buyer), method="test")
    fulfilment.order_ship(
        order=placed, carrier="DHL", tracking_url="https://track.example/1"
    )
    signed_in(page, asgi_server, make_user("Nia New"))
    open_live_room(page, f"{asgi_server}/shows/{busy_show.slug}/")
    page.click(".room-pin .room-buy")
    page.wait_for_selector("#buy-address:not([hidden])")
    problems = axe_problems(page, axe_script, "buy sheet, address")
    page.fill("#buy-addr-name", "Nia New")
    page.fill("#buy-addr-line1", "Torstraße 1")
    page.fill("#buy-addr-postal", "101")
    page.fill("#buy-addr-city", "Berlin")
    page.click("#buy-primary")
    page.wait_for_selector("#buy-addr-postal-error")
    problems += axe_problems(page, axe_script, "buy sheet, address refused")
    signed_in(page, asgi_server, buyer)
    page.goto(f"{asgi_server}/orders/")
    problems += axe_problems(page, axe_script, "my orders")
    page.goto(f"{asgi_server}/orders/{placed.public_id}/")
    problems += axe_problems(page, axe_script, "order page")
    assert not problems, "\n".join(problems)
