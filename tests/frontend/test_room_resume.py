"""The room socket in Chromium: a viewer whose socket drops gets what it missed
from the server's resume backlog, each event once and in order."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from shows.services import room
from tests.live.conftest import login_cookie

pytestmark = [pytest.mark.browser]

ROOM_JS = (
    Path(__file__).resolve().parents[2] / "frontend/static/frontend/room.js"
).read_bytes()

# Every event the page's room socket hands on, as it hands it on.
RECORD_EVENTS = """
window.__room = [];
document.addEventListener("showfloor:event", (e) => window.__room.push(e.detail));
"""


def seen(page, kind):
    """The events of ``kind`` the page applied so far."""
    return page.evaluate(f"window.__room.filter((e) => e.type === '{kind}')")


def chat_ids_on_page(page):
    return page.eval_on_selector_all(
        "#room-chat li.room-msg", "nodes => nodes.map((n) => n.id)"
    )


def wait_until(page, condition, what, timeout=10.0):
    """Let the browser run (and Playwright dispatch its handlers) until
    ``condition()`` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        page.wait_for_timeout(50)


@pytest.fixture
def fresh_redis(redis_client, settings):
    """Redis without this worker's keys from an earlier run: the new test
    database numbers its shows (and their seqs) from 1 again, and the bus
    skips a seq it remembers publishing."""
    keys = list(redis_client.scan_iter(f"{settings.REDIS_PREFIX}:*", count=1000))
    if keys:
        redis_client.delete(*keys)
    return redis_client


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_reconnecting_viewer_gets_every_missed_event_once_and_in_order(
    fresh_redis, asgi_server, page, live_show, products, make_user, host
):
    """The viewer's socket is dropped; chat messages, a question and a pin
    posted meanwhile arrive in the ``resumed`` backlog when it reconnects with
    ``?since=``, and each shows on the page exactly once, in order, as do the
    messages posted after the reconnect."""
    asker = make_user("Quinn Asker")
    viewer = make_user("Watcher")
    page.context.add_cookies(
        [{"name": "sessionid", "value": login_cookie(viewer), "url": asgi_server}]
    )
    page.add_init_script(RECORD_EVENTS)

    # The first socket goes straight to the server; later ones wait for the
    # test, so everything posted before that is missed and must be resumed.
    sockets: list = []
    servers: list = []

    def route(socket):
        sockets.append(socket)
        if len(sockets) == 1:
            servers.append(socket.connect_to_server())

    page.route_web_socket(re.compile(r"/ws/shows/"), route)

    before = room.chat_send(show=live_show, user=host, text="before the drop")
    page.goto(f"{asgi_server}/shows/{live_show.slug}/")
    page.wait_for_selector(f"#msg-{before.pk}", timeout=10_000)
    live = room.chat_send(show=live_show, user=host, text="live before the drop")
    page.wait_for_selector(f"#msg-{live.pk}", timeout=10_000)
    last_seq = max(e["seq"] for e in seen(page, "chat.message"))

    # The connection drops (as when the server gives up on a slow reader).
    sockets[0].close(code=4008, reason="dropped by the test")
    servers[0].close()
    wait_until(page, lambda: len(sockets) == 2, "the page to reconnect")
    assert sockets[1].url.endswith(f"?since={last_seq}")

    missed = [
        room.chat_send(show=live_show, user=host, text=f"missed {n}") for n in range(4)
    ]
    question = room.question_ask(show=live_show, user=asker, text="Wireless?")
    missed.append(room.chat_send(show=live_show, user=host, text="missed 4"))
    pinned = products[1]
    room.product_pin(show=live_show, actor=host, product_id=pinned.pk)
    missed.append(room.chat_send(show=live_show, user=host, text="missed 5"))

    sockets[1].connect_to_server()
    page.wait_for_function(
        "window.__room.some((e) => e.type === 'resumed')", timeout=10_000
    )
    (resumed,) = seen(page, "resumed")
    assert resumed["since"] == last_seq
    assert resumed["seq"] == last_seq + 8
    assert not seen(page, "snapshot")[1:], "the reconnect got a snapshot"

    after = [
        room.chat_send(show=live_show, user=host, text=f"after {n}") for n in range(3)
    ]
    page.wait_for_selector(f"#msg-{after[-1].pk}", timeout=10_000)

    expected = [before, live, *missed, *after]
    ids = chat_ids_on_page(page)
    for message in expected:
        count = ids.count(f"msg-{message.pk}")
        assert count == 1, f"{message.text!r} shows {count} times"
    assert ids == [f"msg-{m.pk}" for m in expected]
    assert page.locator(f"#q-{question.pk}").count() == 1
    assert [e["product"]["id"] for e in seen(page, "product.pinned")] == [pinned.pk]
    applied = [
        e["seq"]
        for e in page.evaluate("window.__room")
        if "seq" in e and e["type"] not in ("snapshot", "resumed")
    ]
    assert applied == list(range(last_seq, last_seq + 12))


# RoomSocket alone, on a page of its own, with a stand-in for WebSocket.
SOCKET_PAGE = """<!doctype html><script type="module">
class FakeSocket extends EventTarget {
  static OPEN = 1;
  constructor(url) {
    super();
    this.url = url;
    this.readyState = 0;
    window.__sockets.push(this);
  }
  emit(type, props = {}) {
    if (type === "open") this.readyState = 1;
    this.dispatchEvent(Object.assign(new Event(type), props));
  }
}
window.__sockets = [];
window.WebSocket = FakeSocket;
const { RoomSocket } = await import("/room.js");
window.makeRoom = () => {
  const log = { events: [], states: [] };
  const socket = new RoomSocket("/ws/shows/s/", {
    onEvents: (events) => log.events.push(...events.map((e) => e.type + ":" + e.seq)),
    onState: (state, code) => log.states.push(code ? `${state}:${code}` : state),
  });
  return { socket, log };
};
window.roomReady = true;
</script>"""


@pytest.fixture
def socket_page(page):
    def serve(route):
        if route.request.url.endswith("/room.js"):
            route.fulfill(body=ROOM_JS, content_type="text/javascript")
        else:
            route.fulfill(body=SOCKET_PAGE, content_type="text/html")

    page.route("http://room.test/**", serve)
    page.goto("http://room.test/")
    page.wait_for_function("window.roomReady === true")
    return page


def test_room_socket_applies_a_resume_backlog_once_and_skips_duplicates(
    socket_page,
):
    """Frames as the server sends them, through ``accept``: the backlog after
    ``resumed`` is applied event by event, duplicates (at or below the highest
    applied seq) are skipped, ``resumed.seq`` is reached at the end of its
    frame and a snapshot sets seq, even back."""

    def ev(kind, seq=None, **fields):
        return {"type": kind, **({"seq": seq} if seq is not None else {}), **fields}

    frames = [
        [ev("snapshot", 5)],
        [ev("resumed", 5, since=5)],
        [ev("resumed", 9, since=5), *(ev("chat.message", n) for n in range(6, 10))],
        [ev("chat.message", 9), ev("viewers.count", count=3), ev("chat.message", 10)],
        # A backlog overlapping what was applied (since below our seq).
        [ev("resumed", 12, since=8), *(ev("chat.message", n) for n in range(9, 13))],
        # Kept events end below resumed.seq: seq still reaches it.
        [ev("resumed", 15, since=12), ev("chat.message", 13)],
        [ev("chat.message", 15), ev("chat.message", 16)],
        [ev("snapshot", 3), ev("chat.message", 3), ev("chat.message", 4)],
    ]
    result = socket_page.evaluate(
        """(frames) => {
            const { socket } = makeRoom();
            return frames.map((frame) => ({
                applied: socket.accept(frame).map((e) => e.type + ":" + (e.seq ?? "")),
                seq: socket.seq,
            }));
        }""",
        json.loads(json.dumps(frames)),
    )
    assert result == [
        {"applied": ["snapshot:5"], "seq": 5},
        {"applied": ["resumed:5"], "seq": 5},
        {
            "applied": ["resumed:9", *(f"chat.message:{n}" for n in range(6, 10))],
            "seq": 9,
        },
        {"applied": ["viewers.count:", "chat.message:10"], "seq": 10},
        {"applied": ["resumed:12", "chat.message:11", "chat.message:12"], "seq": 12},
        {"applied": ["resumed:15", "chat.message:13"], "seq": 15},
        {"applied": ["chat.message:16"], "seq": 16},
        {"applied": ["snapshot:3", "chat.message:4"], "seq": 4},
    ]


def test_room_socket_reconnects_or_stays_closed_by_close_code(socket_page):
    """Refusals stay closed; 4000 reconnects at once without ``since`` (the
    server lost the sequence); anything else waits for the backoff."""
    codes = [4001, 4003, 4029, 4400, 4404, 4413, 1008, 1009, 4000, 4503, 4008, 1006]
    result = socket_page.evaluate(
        """async (codes) => {
            const snapshot = JSON.stringify([{ type: "snapshot", seq: 7 }]);
            const rooms = codes.map((code) => {
                const { socket, log } = makeRoom();
                socket.open();
                const first = window.__sockets.at(-1);
                first.emit("open");
                first.emit("message", { data: snapshot });
                first.emit("close", { code });
                return { code, log, socket, first };
            });
            const wait = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
            const next = ({ socket, first }) =>
                socket.ws === first ? null : socket.ws.url;
            await wait(100);
            const soon = rooms.map((room) => [room.log.states.at(-1), next(room)]);
            await wait(1100); // the first backoff is 0.5-1 s
            return Object.fromEntries(rooms.map((room, i) => [
                room.code, { soon: soon[i], later: next(room) },
            ]));
        }""",
        codes,
    )
    resume = "ws://room.test/ws/shows/s/?since=7"
    backoff = {"soon": ["reconnecting", None], "later": resume}
    assert result == {
        **{
            str(code): {"soon": [f"closed:{code}", None], "later": None}
            for code in codes[:8]
        },
        "4000": {
            "soon": ["reconnecting", "ws://room.test/ws/shows/s/"],
            "later": "ws://room.test/ws/shows/s/",
        },
        "4503": backoff,
        "4008": backoff,
        "1006": backoff,
    }
