"""The show room socket (docs/protocol.md): parse, authorize, call one service.

Outgoing room events never pass through this consumer: the process's hub writes
them straight to the socket, batched per tick. The consumer only handles the
connect (snapshot or resume), the client's messages and the disconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple
from urllib.parse import parse_qs

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.utils import await_many_dispatch
from django.conf import settings
from django.db import DatabaseError, connections
from django.utils import translation
from django.utils.translation import gettext as _

from checkout import selectors as checkout_selectors
from live import games
from live.hub.collector import collector
from live.hub.core import Viewer, get_hub
from live.hub.writers import AsgiWriter, make_writer
from live.i18n import scope_language
from live.protocol import Refusal
from live.protocol import id_field as _id
from live.protocol import text_field as _text
from realtime import counting
from realtime.bus import json_body
from realtime.limiter import Bucket
from shows import selectors
from shows.exceptions import (
    Banned,
    InvalidInput,
    LoginRequired,
    NotAHost,
    ShowfloorError,
    Throttled,
)
from shows.models import Restriction, Show, User
from shows.services import moderation, room

MAX_FRAME_BYTES = 16 * 1024
MAX_REF_LENGTH = 64
REACTIONS = frozenset({"❤️", "🔥", "👏", "😂", "😮", "🛍️"})
STAFF_ROLES = frozenset(selectors.STAFF_ROLES)
# A socket that sends this many unparseable frames within the window is closed.
MALFORMED_LIMIT = 10
MALFORMED_WINDOW_SECONDS = 10.0
REACTION_BURST = 20
REACTION_RATE = 10.0
# Beacons (``beacon.send``): what a viewer's page saw or did, counted only.
BEACONS = {"buy_tap": "buy_taps", "sheet_open": "sheet_opens"}
BEACON_BURST = 10
BEACON_RATE = 1.0
# The line-up each process checks beacons against, per show: (read at, ids).
LINEUPS: dict[int, tuple[float, frozenset[int]]] = {}
LINEUP_SECONDS = 60.0

# Per-process cache of the anonymous snapshot (see ``_anonymous_snapshot``):
# (show id, created) → (built at, the build).
ANONYMOUS_SNAPSHOTS: dict[tuple[int, float], tuple[float, asyncio.Task[Snapshot]]] = {}
ANONYMOUS_SNAPSHOT_SECONDS = 2.0
# Seconds a client is asked to wait when the database does not answer.
UNAVAILABLE_RETRY_SECONDS = 2
# How long a connecting socket keeps trying the database before it is closed
# with 4503: the pool's wait is short (a request answers 503 within a second
# during an outage), and a crowd connecting at once can hold every pooled
# connection for longer than that.
CONNECT_DATABASE_SECONDS = 3.0
# After the database failed to answer, sockets do not ask it again for this
# long: they answer "unavailable" at once instead of each waiting out the pool.
DATABASE_DOWN_SECONDS = 1.0
# Sockets' database calls have threads of their own (as many as the pool has
# connections), so a crowd of them waiting on a stopped database never holds
# the threads Django's HTTP handling uses.
ROOM_DATABASE_THREADS = 8
_room_database = ThreadPoolExecutor(
    max_workers=ROOM_DATABASE_THREADS, thread_name_prefix="room-db"
)
_database_down_until = 0.0


def _fresh_room_database_after_fork() -> None:
    # A forked child (a test server) has none of the executor's threads, and
    # an executor that thinks it has idle ones never starts new ones.
    global _room_database
    _room_database = ThreadPoolExecutor(
        max_workers=ROOM_DATABASE_THREADS, thread_name_prefix="room-db"
    )


os.register_at_fork(after_in_child=_fresh_room_database_after_fork)


class DatabaseDown(DatabaseError):
    """The database failed to answer a moment ago; not asked again yet."""


def _database_failed() -> None:
    global _database_down_until
    _database_down_until = time.monotonic() + DATABASE_DOWN_SECONDS


def _database_known_down() -> bool:
    return time.monotonic() < _database_down_until


# Close codes (docs/protocol.md). Daphne's autobahn refuses application codes
# outside 1000 and 3000-4999 (it sends 1011 instead), so every one is 4xxx.
CLOSE_FORBIDDEN = 4001
CLOSE_BANNED = 4003
CLOSE_TOO_MANY = 4029
CLOSE_MALFORMED = 4400
CLOSE_NOT_FOUND = 4404
CLOSE_TOO_BIG = 4413
CLOSE_UNAVAILABLE = 4503


def _call_and_audit(
    service: Callable[..., Any],
    action: str,
    actor: User | None,
    show: Show,
    /,
    **kw: Any,
) -> ShowfloorError | None:
    """Run ``service`` in this worker thread; on a domain refusal, audit it and
    return the error (one thread hop for both)."""
    try:
        service(show=show, **kw)
    except ShowfloorError as exc:
        audit_refusal(exc, action, actor, show)
        return exc
    return None


def _in_parallel(func: Callable[..., Any]) -> Callable[..., Any]:
    """``database_sync_to_async(func)`` that, on PostgreSQL, runs in a thread
    of its own rather than on Channels' single database thread: the connects
    and actions of different sockets overlap, and one slow query or WAL flush
    no longer queues every room behind it. SQLite takes one writer at a time,
    so there calls stay on that one thread."""
    if connections["default"].vendor == "sqlite":
        return database_sync_to_async(func)  # type: ignore[no-any-return]
    wrapped: Callable[..., Any] = database_sync_to_async(
        func, thread_sensitive=False, executor=_room_database
    )
    return wrapped


async def in_room_database(func: Callable[..., Any], /, *args: Any, **kw: Any) -> Any:
    """Await ``func`` on the room's database threads (``_in_parallel``), as a
    socket's service call does: at once ``DatabaseDown`` while the database
    is known to be down, and a failure is remembered for the next calls."""
    if _database_known_down():
        raise DatabaseDown()
    try:
        return await _in_parallel(func)(*args, **kw)
    except DatabaseError as exc:
        if not isinstance(exc, DatabaseDown):
            _database_failed()
        raise


def audit_refusal(
    error: ShowfloorError, action: str, actor: User | None, show: Show
) -> None:
    """Keep a socket's refusal in the audit log (in a worker thread), unless
    its kind is not audited."""
    if error.audited:
        moderation.refusal_audit(
            show=show, user=actor, action=action, code=error.code, detail=error.message
        )


def _room_entry(
    slug: str, user: User | None, session: Any
) -> tuple[selectors.RoomAccess | None, bool]:
    """The show at ``slug`` with the user's role and ban, and whether this
    session may enter its room (one thread hop for the whole connect check)."""
    access = selectors.room_access(slug=slug, user=user)
    if access is None or access.banned:
        return access, False
    granted = selectors.show_access_granted(
        show=access.show, session=session, user=user
    )
    return access, granted


class Snapshot(NamedTuple):
    """A room snapshot as sent: the seq it is consistent with, the frame, and
    the products pinned in it (a viewer who gets it sees their cards)."""

    seq: int
    frame: str
    pinned: tuple[int, ...]


async def _snapshot_frame(show: Show, user: User | None, viewers: int) -> Snapshot:
    """The snapshot, read in one database snapshot
    (``selectors.room_snapshot_now``), with checkout's open sales."""
    # A copy: the build refreshes fields of the show it is given.
    snapshot = await _patiently(
        _in_parallel(selectors.room_snapshot_now),
        show=copy.copy(show),
        user=user,
        viewers=viewers,
        parts=(
            checkout_selectors.room_sales,
            checkout_selectors.room_ratings,
            *games.SNAPSHOT_PARTS,
        ),
    )
    return Snapshot(
        int(snapshot["seq"]),
        json_body(snapshot),
        tuple(int(card["id"]) for card in snapshot["pinned"]),
    )


async def _patiently(call: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """Await a database call for a connecting socket, trying again for up to
    ``CONNECT_DATABASE_SECONDS`` while the database does not answer."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + CONNECT_DATABASE_SECONDS
    while True:
        if _database_known_down():
            raise DatabaseDown()
        try:
            return await call(*args, **kwargs)
        except DatabaseError:
            if loop.time() >= deadline:
                _database_failed()
                raise
            await asyncio.sleep(0.25)


class ShowConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    """One viewer's socket at ``/ws/shows/<slug>/``."""

    viewer: Viewer | None = None
    show: Show
    user: User | None = None
    role: str | None = None
    slots: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        # No channel layer: a per-socket layer channel costs a Redis reader per
        # viewer and nothing is sent to it (the hub delivers).
        self.scope = scope
        self.channel_layer = None
        self.base_send = send
        # Refusals and error frames speak the viewer's language, also those
        # raised by services in database_sync_to_async (the context follows).
        # The socket's whole life: the garbage collector's policy counts them.
        collector.socket_opened()
        try:
            with (
                translation.override(scope_language(scope)),
                contextlib.suppress(StopConsumer),
            ):
                await await_many_dispatch([receive], self.dispatch)
        finally:
            collector.socket_closed()

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels runs close_old_connections in a thread before every handler;
        # here every database call already goes through database_sync_to_async,
        # which does that itself, so the extra thread hop per frame is skipped.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    # -- connect ----------------------------------------------------------

    async def connect(self) -> None:
        slug = self.scope["url_route"]["kwargs"]["slug"]
        scope_user = self.scope.get("user")
        self.user = scope_user if scope_user and scope_user.is_authenticated else None
        session = self.scope.get("session")
        session_key = getattr(session, "session_key", None)
        # Accepted first: a browser sees a close code only after the handshake
        # (a refused handshake is an anonymous failure it would retry), and a
        # slow database cannot outlast the server's handshake timeout.
        await self.accept()
        try:
            access, granted = await _patiently(
                _in_parallel(_room_entry),
                slug,
                self.user,
                session if session is not None else {},
            )
        except DatabaseError:
            await self._close_unavailable()
            return
        if access is None:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        self.show, self.role = access.show, access.role
        if access.banned:
            await self._refuse_on_connect(Banned.code, str(Banned.default_message))
            await self.close(code=CLOSE_BANNED)
            return
        # A private show's room opens only to sessions that entered its access
        # code on the show page (and to the brand's staff).
        if not granted:
            await self._refuse_on_connect(
                "access_code", _("This show needs its access code.")
            )
            await self.close(code=CLOSE_FORBIDDEN)
            return
        hub = get_hub()
        self.viewer = Viewer(
            show_id=self.show.pk,
            brand_id=self.show.brand_id,
            user_id=self.user.pk if self.user else None,
            session_key=session_key,
            writer=make_writer(self.base_send),
            close=self._close_from_hub,
            audience=self.role not in STAFF_ROLES,
            private=counting.wants_privacy(self.scope.get("headers", ())),
        )
        if not await self._take_slots(hub, session_key):
            self.viewer.writer.stop()
            self.viewer = None
            await self._refuse_on_connect(
                "too_many_connections",
                _("You have this show open in too many windows."),
            )
            await self.close(code=CLOSE_TOO_MANY)
            return
        await hub.attach(self.viewer)
        try:
            await self._send_initial(self._since())
        except Show.DoesNotExist:
            # The show was deleted between the access check and the snapshot.
            await self.close(code=CLOSE_NOT_FOUND)
        except DatabaseError:
            await self._close_unavailable()

    async def _take_slots(self, hub: Any, session_key: str | None) -> bool:
        """At most N sockets per show for a user (or a guest's session), and
        for visitors who are not signed in, at most M per client address."""
        if self.viewer is None:
            return False
        wanted: list[tuple[str, int]] = []
        per_user = int(settings.SHOWFLOOR_ROOM_MAX_SOCKETS_PER_USER)
        if self.user is not None:
            wanted.append((f"user:{self.user.pk}", per_user))
        else:
            if session_key:
                wanted.append((f"session:{session_key}", per_user))
            per_address = int(settings.SHOWFLOOR_ROOM_MAX_ANONYMOUS_PER_ADDRESS)
            address = (self.scope.get("client") or [None])[0]
            if per_address > 0 and address:
                wanted.append((f"addr:{address}", per_address))
        for who, limit in wanted:
            if not await hub.acquire_slot(self.viewer, who, limit):
                for taken in self.slots:
                    await hub.release_slot(self.viewer, taken)
                self.slots = []
                return False
            self.slots = [*self.slots, who]
        return True

    async def _close_unavailable(self) -> None:
        """The database did not answer: accept, say so, close with a code the
        client retries after a pause."""
        if self.viewer is not None:
            hub = get_hub()
            hub.detach(self.viewer)
            for who in self.slots:
                await hub.release_slot(self.viewer, who)
            self.viewer, self.slots = None, []
        frame = {
            "type": "error",
            "code": "unavailable",
            "message": _("The show is briefly unavailable. Reconnecting…"),
            "ref": None,
            "retry_after": UNAVAILABLE_RETRY_SECONDS,
        }
        await self.send(text_data="[" + json_body(frame) + "]")
        await self.close(code=CLOSE_UNAVAILABLE)

    def _since(self) -> int | None:
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        raw = (query.get("since") or [""])[0]
        return int(raw) if raw.isdigit() and len(raw) < 19 else None

    async def _send_initial(self, since: int | None) -> None:
        if self.viewer is None:
            return
        hub = get_hub()
        if since is not None:
            missed = await _patiently(hub.events_since, self.show.pk, since)
            if missed is not None:
                items, last = missed
                resumed = json_body({"type": "resumed", "since": since, "seq": last})
                self.viewer.send_events([resumed, *(payload for _, payload in items)])
                hub.release(self.viewer, after_seq=last)
                return
        floor = hub.floor_seq(self.show.pk)
        viewers = await hub.viewer_count(self.show.pk)
        if self.user is None:
            snapshot = await self._anonymous_snapshot(floor, viewers)
        else:
            snapshot = await _snapshot_frame(self.show, self.user, viewers)
        self.viewer.send_events([snapshot.frame])
        hub.release(self.viewer, after_seq=snapshot.seq)
        if snapshot.pinned and self.viewer.audience:
            # Joining while products are pinned is seeing their cards (a
            # resumed socket kept its page, and is not counted again).
            count = dict.fromkeys(snapshot.pinned, 1)
            counting.add(self.show.pk, "impressions", len(count), products=count)
            counting.unique_key(self.show.pk, "saw_card", self.viewer.visitor)

    async def _anonymous_snapshot(self, floor: int, viewers: int) -> Snapshot:
        """The snapshot anonymous viewers of this show get, and its seq.

        They all get the same one, so each process builds it at most every
        ``ANONYMOUS_SNAPSHOT_SECONDS`` and a crowd (re)connecting at once waits
        for that one build instead of starting one per socket. A build is
        shared only while it covers ``floor``, the events the room passed on
        before this viewer joined (later ones are held for it).
        """
        loop = asyncio.get_running_loop()
        key = (self.show.pk, self.show.created_at.timestamp())
        now = time.monotonic()
        cached = ANONYMOUS_SNAPSHOTS.get(key)
        if (
            cached is None
            or now - cached[0] >= ANONYMOUS_SNAPSHOT_SECONDS
            or cached[1].get_loop() is not loop
            or (
                cached[1].done()
                and not cached[1].exception()
                and cached[1].result()[0] < floor
            )
        ):
            if len(ANONYMOUS_SNAPSHOTS) > 1000:
                ANONYMOUS_SNAPSHOTS.clear()
            build = loop.create_task(_snapshot_frame(self.show, None, viewers))
            cached = ANONYMOUS_SNAPSHOTS[key] = (now, build)
        try:
            # Shielded: a socket that goes away does not cancel the others' build.
            snapshot = await asyncio.shield(cached[1])
        except Exception:
            if ANONYMOUS_SNAPSHOTS.get(key) is cached:
                del ANONYMOUS_SNAPSHOTS[key]  # the next connect tries again
            raise
        if snapshot.seq < floor:  # a build that started before the room moved on
            return await _snapshot_frame(self.show, None, viewers)
        return snapshot

    async def _refuse_on_connect(self, code: str, message: str) -> None:
        await self._audit("connect", code, message)
        frame = {"type": "error", "code": code, "message": message, "ref": None}
        await self.send(text_data="[" + json_body(frame) + "]")

    async def _close_from_hub(self, code: int) -> None:
        if self.viewer is not None and isinstance(self.viewer.writer, AsgiWriter):
            await self.viewer.writer.drain()  # the error frame leaves first
        await self.close(code=code)

    async def disconnect(self, code: int) -> None:
        if self.viewer is None:
            return
        hub = get_hub()
        hub.detach(self.viewer)
        for who in self.slots:
            await hub.release_slot(self.viewer, who)
        self.viewer, self.slots = None, []

    # -- client messages --------------------------------------------------

    malformed: list[float]
    reactions: Bucket
    beacons: Bucket

    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None
    ) -> None:
        if self.viewer is None:
            return
        raw = text_data if text_data is not None else bytes_data or b""
        size = len(raw.encode() if isinstance(raw, str) else raw)
        if size > MAX_FRAME_BYTES:
            await self._audit("frame", "too_big", f"{size} bytes")
            await self.close(code=CLOSE_TOO_BIG)
            return
        try:
            if text_data is None:
                raise ValueError("binary")
            content = json.loads(text_data)
            if not isinstance(content, dict) or not isinstance(
                content.get("type"), str
            ):
                raise ValueError("not an object with a type")
        except ValueError:
            await self._malformed()
            return
        await self.receive_json(content)

    async def _malformed(self) -> None:
        now = time.monotonic()
        recent = [
            t
            for t in getattr(self, "malformed", [])
            if now - t < MALFORMED_WINDOW_SECONDS
        ]
        recent.append(now)
        self.malformed = recent
        await self._audit("frame", "malformed", "")
        if len(recent) > MALFORMED_LIMIT:
            await self.close(code=CLOSE_MALFORMED)
            return
        self._error(None, "malformed", _("A message is a JSON object with a “type”."))

    async def receive_json(self, content: dict[str, Any], **kwargs: Any) -> None:
        kind = content["type"]
        ref = content.get("ref")
        if (
            not (ref is None or isinstance(ref, int | str))
            or len(str(ref)) > MAX_REF_LENGTH
        ):
            ref = None
        handler = HANDLERS.get(kind)
        try:
            if handler is None:
                raise Refusal(
                    "unknown_type",
                    _("Unknown message type “%(t)s”.") % {"t": kind[:40]},
                )
            staff_only, method = handler
            if staff_only and self.role not in STAFF_ROLES:
                exc = NotAHost()
                raise Refusal(exc.code, exc.message)
            await method(self, content, ref)
        except Refusal as refusal:
            await self._audit(kind, refusal.code, refusal.message)
            self._error(ref, refusal.code, refusal.message)

    async def _audit(self, action: str, code: str, detail: str) -> None:
        # Without the database the refusal itself still reaches the client.
        with contextlib.suppress(DatabaseError):
            await database_sync_to_async(moderation.refusal_audit)(
                show=self.show.pk,
                user=self.user,
                action=action[:40],
                code=code,
                detail=detail,
            )

    def _frame(self, event: dict[str, Any]) -> None:
        if self.viewer is not None:
            self.viewer.send_events([json_body(event)])

    def _error(
        self, ref: Any, code: str, message: str, retry_after: float | None = None
    ) -> None:
        frame: dict[str, Any] = {
            "type": "error",
            "code": code,
            "message": message,
            "ref": ref,
        }
        if retry_after is not None:
            frame["retry_after"] = retry_after
        self._frame(frame)

    async def _service(
        self, action: str, ref: Any, service: Callable[..., Any], **kwargs: Any
    ) -> bool:
        """Call ``service`` and answer ``ack`` or ``error``; True when it went
        through."""
        try:
            error = await in_room_database(
                _call_and_audit, service, action, self.user, self.show, **kwargs
            )
        except DatabaseError:
            self._unavailable(ref)
            return False
        return self._answer(ref, error)

    def _answer(self, ref: Any, error: ShowfloorError | None) -> bool:
        """``ack``, or the refusal as an ``error``; True for the ack."""
        if error is None:
            self._frame({"type": "ack", "ref": ref})
            return True
        retry = error.retry_after if isinstance(error, Throttled) else None
        self._error(ref, error.code, error.message, retry)
        return False

    def _unavailable(self, ref: Any) -> None:
        # Nothing was stored and nothing acknowledged: the client may send it
        # again, on this same socket.
        self._error(
            ref,
            "unavailable",
            _("That did not go through: the show is briefly unavailable."),
            UNAVAILABLE_RETRY_SECONDS,
        )

    def _require_login(self) -> None:
        if self.user is None:
            raise Refusal(LoginRequired.code, str(LoginRequired.default_message))

    # -- handlers (one per client message type) ---------------------------

    async def chat_send(self, msg: dict[str, Any], ref: Any) -> None:
        self._require_login()
        text = _text(msg, "text", 500)
        if await self._service(
            "chat.send", ref, room.chat_send, user=self.user, text=text
        ):
            counting.add(self.show.pk, "chat")
            for hook in games.CHAT_HOOKS:
                await hook(self, text, ref)

    async def reaction_send(self, msg: dict[str, Any], ref: Any) -> None:
        emoji = msg.get("emoji")
        if emoji not in REACTIONS:
            raise Refusal("invalid", _("That reaction is not available."))
        bucket = self.__dict__.get("reactions")
        if bucket is None:
            bucket = self.reactions = Bucket(REACTION_BURST)
        if bucket.take(capacity=REACTION_BURST, rate=REACTION_RATE):
            return  # Reactions past the limit are coalesced away, not refused.
        get_hub().react(self.show.pk, str(emoji))
        counting.add(self.show.pk, "reactions")

    async def beacon_send(self, msg: dict[str, Any], ref: Any) -> None:
        """A viewer's page tapped Buy or opened the buy sheet on a product of
        the line-up: counted, not answered; past the limit, dropped."""
        metric = BEACONS.get(msg.get("event"))  # type: ignore[arg-type]
        product_id = _id(msg, "product_id")
        if metric is None:
            raise Refusal("invalid", _("Unknown beacon."))
        bucket = self.__dict__.get("beacons")
        if bucket is None:
            bucket = self.beacons = Bucket(BEACON_BURST)
        if bucket.take(capacity=BEACON_BURST, rate=BEACON_RATE):
            return
        if product_id in await self._lineup():
            counting.add(self.show.pk, metric, products={int(product_id or 0): 1})
            if metric == "buy_taps" and self.viewer is not None:
                # The funnel's third step: people who tapped Buy.
                counting.unique_key(self.show.pk, "tapped_buy", self.viewer.visitor)

    async def _lineup(self) -> frozenset[int]:
        """The show's line-up product ids, read at most once a minute per
        process (a beacon never waits on the database after that)."""
        cached = LINEUPS.get(self.show.pk)
        if cached is not None and time.monotonic() - cached[0] < LINEUP_SECONDS:
            return cached[1]
        try:
            items = await _in_parallel(selectors.show_lineup)(show=self.show)
        except DatabaseError:
            return cached[1] if cached else frozenset()
        ids = frozenset(item.product_id for item in items)
        if len(LINEUPS) > 1000:
            LINEUPS.clear()
        LINEUPS[self.show.pk] = (time.monotonic(), ids)
        return ids

    async def question_ask(self, msg: dict[str, Any], ref: Any) -> None:
        self._require_login()
        text = _text(msg, "text", 300)
        product_id = _id(msg, "product_id", required=False)
        if await self._service(
            "question.ask",
            ref,
            room.question_ask,
            user=self.user,
            text=text,
            product_id=product_id,
        ):
            counting.add(self.show.pk, "questions")

    async def question_vote(self, msg: dict[str, Any], ref: Any) -> None:
        self._require_login()
        await self._service(
            "question.vote",
            ref,
            room.question_vote,
            user=self.user,
            question_id=_id(msg, "question_id"),
        )

    async def question_answer(self, msg: dict[str, Any], ref: Any) -> None:
        text = _text(msg, "text", 500, required=False)
        await self._service(
            "question.answer",
            ref,
            room.question_answer,
            actor=self.user,
            question_id=_id(msg, "question_id"),
            text=text,
        )

    async def question_dismiss(self, msg: dict[str, Any], ref: Any) -> None:
        await self._service(
            "question.dismiss",
            ref,
            room.question_dismiss,
            actor=self.user,
            question_id=_id(msg, "question_id"),
        )

    async def question_split(self, msg: dict[str, Any], ref: Any) -> None:
        await self._service(
            "question.split",
            ref,
            room.question_split,
            actor=self.user,
            question_id=_id(msg, "question_id"),
        )

    async def product_pin(self, msg: dict[str, Any], ref: Any) -> None:
        await self._service(
            "product.pin",
            ref,
            room.product_pin,
            actor=self.user,
            product_id=_id(msg, "product_id"),
        )

    async def product_unpin(self, msg: dict[str, Any], ref: Any) -> None:
        await self._service(
            "product.unpin",
            ref,
            room.product_unpin,
            actor=self.user,
            product_id=_id(msg, "product_id"),
        )

    async def chat_delete(self, msg: dict[str, Any], ref: Any) -> None:
        await self._service(
            "chat.delete",
            ref,
            moderation.chat_delete,
            actor=self.user,
            message_id=_id(msg, "message_id"),
        )

    async def user_restrict(self, msg: dict[str, Any], ref: Any) -> None:
        kind = msg.get("kind")
        if kind not in Restriction.Kind.values:
            raise Refusal(InvalidInput.code, _("“kind” is “timeout” or “ban”."))
        seconds = msg.get("seconds")
        if kind == Restriction.Kind.TIMEOUT and (
            isinstance(seconds, bool) or not isinstance(seconds, int)
        ):
            raise Refusal(InvalidInput.code, _("A time-out needs “seconds”."))
        await self._service(
            "user.restrict",
            ref,
            moderation.user_restrict,
            actor=self.user,
            user_id=_id(msg, "user_id"),
            kind=kind,
            seconds=seconds,
        )

    async def show_slow_mode(self, msg: dict[str, Any], ref: Any) -> None:
        seconds = msg.get("seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, int):
            raise Refusal(InvalidInput.code, _("“seconds” must be a whole number."))
        await self._service(
            "show.slow_mode",
            ref,
            moderation.slow_mode_set,
            actor=self.user,
            seconds=seconds,
        )


Handler = Callable[[ShowConsumer, dict[str, Any], Any], Any]

# type → (hosts and moderators only, handler)
HANDLERS: dict[str, tuple[bool, Handler]] = {
    "chat.send": (False, ShowConsumer.chat_send),
    "reaction.send": (False, ShowConsumer.reaction_send),
    "beacon.send": (False, ShowConsumer.beacon_send),
    "question.ask": (False, ShowConsumer.question_ask),
    "question.vote": (False, ShowConsumer.question_vote),
    "question.answer": (True, ShowConsumer.question_answer),
    "question.dismiss": (True, ShowConsumer.question_dismiss),
    "question.split": (True, ShowConsumer.question_split),
    "product.pin": (True, ShowConsumer.product_pin),
    "product.unpin": (True, ShowConsumer.product_unpin),
    "chat.delete": (True, ShowConsumer.chat_delete),
    "user.restrict": (True, ShowConsumer.user_restrict),
    "show.slow_mode": (True, ShowConsumer.show_slow_mode),
}
HANDLERS.update(games.HANDLERS)
HOST_ONLY_TYPES = tuple(kind for kind, (staff, _h) in HANDLERS.items() if staff)
