"""Polls through the room socket: who may ask and close, voting once as a
member or a guest, and the live counts coalesced (never a frame per vote)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from shows.models import Poll, PollVote
from tests.live.conftest import ORIGIN, Socket

pytestmark = [pytest.mark.django_db(transaction=True)]


def _guest_session() -> str:
    from django.contrib.sessions.backends.db import SessionStore

    session = SessionStore()
    session["guest"] = True
    session.create()
    return str(session.session_key)


@pytest.fixture
async def guest():
    """``await guest(show)`` → a socket of a visitor with a session, not
    signed in."""
    from config.asgi import application

    opened: list[Socket] = []

    async def open_socket(show) -> Socket:
        key = await database_sync_to_async(_guest_session)()
        headers = [(b"origin", ORIGIN), (b"cookie", f"sessionid={key}".encode())]
        socket = Socket(
            WebsocketCommunicator(application, f"/ws/shows/{show.slug}/", headers)
        )
        opened.append(socket)
        connected, _code = await socket.comm.connect(timeout=5)
        assert connected
        await socket.read(timeout=5)
        return socket

    yield open_socket
    for socket in opened:
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await socket.comm.disconnect(timeout=2)


@pytest.fixture
def owner(make_user, brand):
    from shows import services

    user = make_user("Olive Owner")
    services.membership_set(brand=brand, user=user, role="owner")
    return user


async def _ask(socket: Socket, *options: str) -> dict:
    ref = await socket.send(
        "poll.open",
        question="Which colour next?",
        options=list(options or ("Red", "Blue")),
    )
    reply = await socket.reply(ref)
    assert reply["type"] == "ack", reply
    return await socket.wait_for("poll.opened")


@pytest.mark.parametrize("who", ["owner", "host", "moderator"])
async def test_owners_hosts_and_moderators_may_ask_and_close(
    connect, live_show, viewer, owner, host, moderator, who
):
    staff = {"owner": owner, "host": host, "moderator": moderator}[who]
    socket = await connect(live_show, staff)
    watcher = await connect(live_show, viewer)
    opened = await _ask(socket, "Red", "Blue", "Green")
    poll_id = opened["poll"]["id"]
    assert (await watcher.wait_for("poll.opened"))["poll"]["options"] == [
        "Red",
        "Blue",
        "Green",
    ]
    ref = await socket.send("poll.show_results", poll_id=poll_id)
    assert (await socket.reply(ref))["type"] == "ack"
    shown = await watcher.wait_for("poll.results_shown", poll_id=poll_id)
    assert (shown["counts"], shown["total"]) == ([0, 0, 0], 0)
    ref = await socket.send("poll.close", poll_id=poll_id)
    assert (await socket.reply(ref))["type"] == "ack"
    closed = await watcher.wait_for("poll.closed", poll_id=poll_id)
    assert closed["counts"] == [0, 0, 0]
    assert closed["winners"] == []


@pytest.mark.parametrize("who", ["anonymous", "viewer", "other_brand_host"])
async def test_everyone_else_is_refused_asking_and_closing(
    connect, live_show, host, viewer, other_brand_host, who
):
    user = {"anonymous": None, "viewer": viewer, "other_brand_host": other_brand_host}[
        who
    ]
    socket = await connect(live_show, user)
    ref = await socket.send("poll.open", question="Colour?", options=["Red", "Blue"])
    error = await socket.reply(ref)
    assert (error["type"], error["code"]) == ("error", "forbidden")
    assert not await database_sync_to_async(Poll.objects.exists)()
    hosting = await connect(live_show, host)
    poll_id = (await _ask(hosting))["poll"]["id"]
    for kind in ("poll.close", "poll.show_results"):
        ref = await socket.send(kind, poll_id=poll_id)
        assert (await socket.reply(ref))["code"] == "forbidden"
    poll = await database_sync_to_async(Poll.objects.get)(pk=poll_id)
    assert poll.closed_at is None


async def test_bad_answers_are_refused_with_a_clear_message(connect, live_show, host):
    socket = await connect(live_show, host)
    ref = await socket.send("poll.open", question="Colour?", options=["Red"])
    error = await socket.reply(ref)
    assert error["code"] == "invalid"
    assert "2 to 4 answers" in error["message"]
    ref = await socket.send("poll.open", question="Colour?", options="Red")
    assert (await socket.reply(ref))["code"] == "invalid"


async def test_a_guest_and_a_member_vote_once_and_their_tabs_hear_it(
    connect, guest, live_show, host, viewer
):
    hosting = await connect(live_show, host)
    poll_id = (await _ask(hosting))["poll"]["id"]
    member = await connect(live_show, viewer)
    member_tab = await connect(live_show, viewer)
    visitor = await guest(live_show)

    ref = await member.send("poll.vote", poll_id=poll_id, option=1)
    assert (await member.reply(ref))["type"] == "ack"
    voted = await member_tab.wait_for("poll.voted")
    assert (voted["poll_id"], voted["option"]) == (poll_id, 1)
    ref = await member_tab.send("poll.vote", poll_id=poll_id, option=0)
    assert (await member_tab.reply(ref))["code"] == "already_voted"

    ref = await visitor.send("poll.vote", poll_id=poll_id, option=0)
    assert (await visitor.reply(ref))["type"] == "ack"
    ref = await visitor.send("poll.vote", poll_id=poll_id, option=0)
    assert (await visitor.reply(ref))["code"] == "already_voted"

    results = await hosting.wait_for("poll.results", total=2)
    assert results["counts"] == [1, 1]
    votes = await database_sync_to_async(
        lambda: sorted(PollVote.objects.values_list("option", flat=True))
    )()
    assert votes == [0, 1]
    # A guest's page asks which answer it gave (its snapshot is shared).
    again = await guest(live_show)
    ref = await again.send("poll.mine", poll_id=poll_id)
    assert (await again.reply(ref))["type"] == "ack"
    assert not again.of_type("poll.voted")  # another session: no answer yet
    ref = await visitor.send("poll.mine", poll_id=poll_id)
    await visitor.reply(ref)
    assert visitor.of_type("poll.voted")[-1]["option"] == 0


async def test_a_member_reconnecting_gets_the_poll_with_their_answer(
    connect, live_show, host, viewer
):
    hosting = await connect(live_show, host)
    poll_id = (await _ask(hosting, "Red", "Blue", "Green"))["poll"]["id"]
    member = await connect(live_show, viewer)
    ref = await member.send("poll.vote", poll_id=poll_id, option=2)
    await member.reply(ref)
    back = await connect(live_show, viewer)
    card = back.events[0]["poll"]
    assert (card["id"], card["my_option"], card["counts"]) == (poll_id, 2, [0, 0, 1])


async def test_a_closed_poll_refuses_votes(connect, live_show, host, viewer):
    hosting = await connect(live_show, host)
    poll_id = (await _ask(hosting))["poll"]["id"]
    ref = await hosting.send("poll.close")
    assert (await hosting.reply(ref))["type"] == "ack"
    member = await connect(live_show, viewer)
    ref = await member.send("poll.vote", poll_id=poll_id, option=0)
    assert (await member.reply(ref))["code"] == "poll_closed"


async def test_a_burst_of_votes_reaches_each_socket_as_a_couple_of_frames(
    connect, live_show, host, make_user
):
    """Twenty viewers vote at once: each socket in the room gets at most
    three ``poll.results`` (about one a second, not twenty), and the last
    one carries the exact counts."""
    hosting = await connect(live_show, host)
    poll_id = (await _ask(hosting, "Red", "Blue", "Green"))["poll"]["id"]
    voters = [
        await connect(live_show, await database_sync_to_async(make_user)())
        for _ in range(20)
    ]
    refs = await asyncio.gather(
        *(
            socket.send("poll.vote", poll_id=poll_id, option=index % 3)
            for index, socket in enumerate(voters)
        )
    )
    for socket, ref in zip(voters, refs, strict=True):
        assert (await socket.reply(ref))["type"] == "ack"
    final = await hosting.wait_for("poll.results", total=20)
    assert final["counts"] == [7, 7, 6]
    # Whatever was still to come leaves within a tick.
    await asyncio.sleep(1.5)
    for socket in [hosting, *voters]:
        with_results = socket.of_type("poll.results")
        while True:
            try:
                await socket.read(timeout=0.05)
            except TimeoutError:
                break
        with_results = socket.of_type("poll.results")
        assert 1 <= len(with_results) <= 3, len(with_results)
        assert with_results[-1]["total"] == 20
        assert with_results[-1]["counts"] == [7, 7, 6]


class Remote:
    """A socket to a Daphne process and every event it received."""

    def __init__(self, ws: Any, events: list[dict[str, Any]]) -> None:
        self.ws = ws
        self.events = events

    async def send(self, text: str) -> None:
        await self.ws.send(text)

    async def close(self) -> None:
        await self.ws.close()


async def _open_on(base, show, user) -> Remote:
    import json

    import websockets

    from tests.live.conftest import login_cookie

    cookie = await database_sync_to_async(login_cookie)(user)
    ws = await websockets.connect(
        f"{base}/ws/shows/{show.slug}/",
        origin="http://127.0.0.1",
        additional_headers={"Cookie": f"sessionid={cookie}"},
        open_timeout=10,
    )
    return Remote(ws, json.loads(await asyncio.wait_for(ws.recv(), 10)))


async def _drain(socket: Remote, seconds: float) -> None:
    import json

    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (left := deadline - loop.time()) > 0:
        try:
            frame = await asyncio.wait_for(socket.ws.recv(), left)
        except TimeoutError:
            return
        socket.events.extend(json.loads(frame))


@pytest.mark.slow
async def test_votes_on_two_processes_reach_the_viewers_of_both_with_the_totals(
    daphne_pair, live_show, host, make_user
):
    """Ten viewers vote at once, half through each of two Daphne processes:
    the watchers on both see the exact totals, in a few ``poll.results``
    (the processes share each window through Redis, not one frame each)."""
    import json

    one, two = daphne_pair
    hosting = await _open_on(one, live_show, host)
    people = [await database_sync_to_async(make_user)() for _ in range(12)]
    watchers = [
        await _open_on(one, live_show, people[0]),
        await _open_on(two, live_show, people[1]),
    ]
    voters = [
        await _open_on((one, two)[i % 2], live_show, person)
        for i, person in enumerate(people[2:])
    ]
    sockets = [hosting, *watchers, *voters]
    try:
        await hosting.send(
            json.dumps(
                {
                    "type": "poll.open",
                    "ref": "ask",
                    "question": "Which colour next?",
                    "options": ["Red", "Blue"],
                }
            )
        )
        await _drain(hosting, 1.0)
        [opened] = [e for e in hosting.events if e.get("type") == "poll.opened"]
        poll_id = opened["poll"]["id"]
        await asyncio.gather(
            *(
                socket.send(
                    json.dumps(
                        {
                            "type": "poll.vote",
                            "ref": "v",
                            "poll_id": poll_id,
                            "option": index % 2,
                        }
                    )
                )
                for index, socket in enumerate(voters)
            )
        )
        await asyncio.gather(*(_drain(socket, 4.0) for socket in sockets))
        for socket in sockets:
            results = [e for e in socket.events if e.get("type") == "poll.results"]
            assert results, socket.events
            assert (results[-1]["counts"], results[-1]["total"]) == ([5, 5], 10)
            assert len(results) <= 4, results
    finally:
        for socket in sockets:
            await socket.close()
