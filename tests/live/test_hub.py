"""The hub on its own: batching per tick and dropping a viewer that stopped reading."""

from __future__ import annotations

import asyncio

from django.test import override_settings

from live.hub.core import Hub, Viewer


class FakeWriter:
    def __init__(self, *, stuck: bool = False) -> None:
        self.frames: list[str] = []
        self.stuck = stuck
        self.aborted = False
        self.waiting = 0

    def buffered(self) -> int:
        return self.waiting

    def unsent(self) -> int:
        return self.waiting

    def write(self, text: str, data: bytes) -> None:
        self.frames.append(text)
        if self.stuck:
            self.waiting += len(data)

    def abort(self) -> None:
        self.aborted = True

    def stop(self) -> None:
        pass


async def _closed(code: int) -> None:
    pass


def _viewer(writer: FakeWriter) -> Viewer:
    return Viewer(
        show_id=1,
        brand_id=1,
        user_id=None,
        session_key=None,
        writer=writer,
        close=_closed,
    )


@override_settings(REDIS_URL="", SHOWFLOOR_ROOM_TICK_MS=20)
async def test_events_of_one_tick_leave_as_one_frame_serialized_once():
    hub = Hub(asyncio.get_running_loop())
    writers = [FakeWriter() for _ in range(3)]
    viewers = [_viewer(w) for w in writers]
    try:
        for viewer in viewers:
            await hub.attach(viewer)
            viewer.release(after_seq=0)
        room = hub.rooms[1]
        for seq in (1, 2, 3):
            room.on_data(f'E{{"seq":{seq},"type":"chat.message","id":{seq}}}')
        await asyncio.sleep(0.1)
        # (The hub's own viewer count may share the frame.)
        frames = [[f for f in w.frames if '"seq"' in f] for w in writers]
        assert all(len(f) == 1 for f in frames)
        assert '{"seq":1,' in frames[0][0]
        assert frames[0][0].index('"seq":1,') < frames[0][0].index('"seq":3,')
        assert frames[0][0] is frames[1][0]  # the same string object for everyone
    finally:
        await hub.stop()


@override_settings(
    REDIS_URL="", SHOWFLOOR_ROOM_TICK_MS=10, SHOWFLOOR_ROOM_MAX_BUFFER_KIB=4
)
async def test_a_viewer_that_stops_reading_is_dropped_and_the_others_keep_receiving():
    hub = Hub(asyncio.get_running_loop())
    stuck, healthy = FakeWriter(stuck=True), FakeWriter()
    slow, fast = _viewer(stuck), _viewer(healthy)
    try:
        for viewer in (slow, fast):
            await hub.attach(viewer)
            viewer.release(after_seq=0)
        room = hub.rooms[1]
        text = "x" * 500
        for seq in range(1, 41):
            room.on_data(f'E{{"seq":{seq},"type":"chat.message","text":"{text}"}}')
            await asyncio.sleep(0.015)
        assert slow.dropped
        assert stuck.aborted
        assert stuck.waiting <= 4 * 1024
        delivered = "".join(healthy.frames)
        assert delivered.count('"type":"chat.message"') == 40
        assert not fast.dropped
    finally:
        await hub.stop()


@override_settings(REDIS_URL="", SHOWFLOOR_ROOM_TICK_MS=10)
async def test_a_room_passes_each_seq_on_once_in_order():
    """A second publish of a seq (two relays swept the same event) and an
    older one are dropped; the room does not ask its sockets to start again."""
    hub = Hub(asyncio.get_running_loop())
    writer = FakeWriter()
    viewer = _viewer(writer)
    try:
        await hub.attach(viewer)
        hub.release(viewer, after_seq=6)
        room = hub.rooms[1]
        room.on_data('E{"seq":7,"type":"chat.deleted","message_id":1}')
        room.on_data('E{"seq":7,"type":"chat.deleted","message_id":1}')
        room.on_data('E{"seq":5,"type":"chat.deleted","message_id":2}')
        room.on_data('E{"seq":8,"type":"chat.deleted","message_id":3}')
        await asyncio.sleep(0.05)
        delivered = "".join(writer.frames)
        assert delivered.count('"seq":7') == 1
        assert '"seq":5' not in delivered
        assert delivered.index('"seq":7') < delivered.index('"seq":8')
        assert not viewer.dropped
    finally:
        await hub.stop()


async def test_viewers_of_a_process_that_stopped_heartbeating_leave_the_count(
    redis_client,
):
    """Presence sums every process's count while its liveness key lives; a
    crashed process stops refreshing it and its viewers drop out."""
    from django.conf import settings

    hub = Hub(asyncio.get_running_loop())
    viewer = _viewer(FakeWriter())
    prefix = settings.REDIS_PREFIX
    # Written before this hub's first heartbeat, which may run at any point of
    # the attach, so the count it computes includes the other process.
    redis_client.hset(f"{prefix}:presence:1", "crashed", 5)
    redis_client.set(f"{prefix}:proc:crashed", 1, px=1500)
    try:
        await hub.attach(viewer)
        viewer.release(after_seq=0)
        assert await hub.viewer_count(1) == 6
        while redis_client.exists(f"{prefix}:proc:crashed"):
            await asyncio.sleep(0.1)
        hub.rooms[1].count = -1
        assert await hub.viewer_count(1) == 1
    finally:
        await hub.stop()


async def test_a_crowd_connecting_at_once_waits_for_a_redis_connection(
    redis_client, transactional_db
):
    """Far more simultaneous connects than Redis connections in the pool: each
    waits its turn for a connection and none fails (redis-py's default pool
    raises "Too many connections" past 100 in use, which closed those sockets)."""
    from realtime.bus import published_key
    from realtime.lifetime import acurrent
    from realtime.redis import ASYNC_COMMAND_CONNECTIONS

    redis_client.set(published_key(1, await acurrent()), 7)
    hub = Hub(asyncio.get_running_loop())
    try:
        await hub.start()
        crowd = 10 * ASYNC_COMMAND_CONNECTIONS + 100
        seqs = await asyncio.gather(
            *(hub.backend.published_seq(1) for _ in range(crowd))
        )
        assert seqs == [7] * crowd
    finally:
        await hub.stop()


async def test_a_process_subscribes_to_more_shows_than_the_command_pool_holds(
    redis_client,
):
    """Subscriptions have their own connections: rooms for more shows than the
    command pool's size (and redis-py's default limit of 100) all subscribe."""
    from realtime.redis import ASYNC_COMMAND_CONNECTIONS

    hub = Hub(asyncio.get_running_loop())
    shows = range(1, max(110, ASYNC_COMMAND_CONNECTIONS + 10))
    viewers = [
        Viewer(
            show_id=show_id,
            brand_id=1,
            user_id=None,
            session_key=None,
            writer=FakeWriter(),
            close=_closed,
        )
        for show_id in shows
    ]
    try:
        await asyncio.wait_for(
            asyncio.gather(*(hub.attach(viewer) for viewer in viewers)), 30
        )
        assert all(hub.rooms[show_id].ready.done() for show_id in shows)
        assert all(not hub.rooms[show_id].bus_lost for show_id in shows)
    finally:
        await hub.stop()


@override_settings(REDIS_URL="", SHOWFLOOR_ROOM_TICK_MS=10)
async def test_a_skipped_seq_is_fetched_from_postgresql_before_what_follows(
    transactional_db,
):
    """The bus delivers 9 after 6 (7 and 8 were published while this room was
    not listening): the room fetches 7 and 8 from the outbox and passes on
    7, 8, 9 in order, each once."""
    from channels.db import database_sync_to_async

    from realtime.models import OutboxEvent

    def stored() -> None:
        for seq in (7, 8):
            OutboxEvent.objects.create(
                show_id=1,
                seq=seq,
                data=f'E{{"seq":{seq},"type":"chat.deleted","message_id":{seq}}}',
            )

    await database_sync_to_async(stored)()
    hub = Hub(asyncio.get_running_loop())
    writer = FakeWriter()
    viewer = _viewer(writer)
    try:
        await hub.attach(viewer)
        hub.release(viewer, after_seq=6)
        room = hub.rooms[1]
        room.on_data('E{"seq":9,"type":"chat.deleted","message_id":9}')
        room.on_data('E{"seq":10,"type":"chat.deleted","message_id":10}')
        for _ in range(100):
            if '"seq":10' in "".join(writer.frames):
                break
            await asyncio.sleep(0.02)
        delivered = "".join(writer.frames)
        seqs = [int(part.split(",")[0]) for part in delivered.split('"seq":')[1:]]
        assert seqs == [7, 8, 9, 10]
    finally:
        await hub.stop()
