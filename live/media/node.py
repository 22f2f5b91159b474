"""This process as a media node: its live broadcasts and their WHIP/WHEP sessions.

The HTTP views (``live/views.py``) call ``get_node()`` and then ``publish``,
``subscribe``, ``stop_viewer`` or ``end``; every peer connection is created and
closed here or in ``broadcast``.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack
from aiortc.sdp import SessionDescription
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from live.media import aiortc_patches
from live.media.broadcast import Broadcast, PacketTrack, Viewer, rendition_track
from live.media.codecs import VideoSettings
from live.media.edge import EdgeRefused, RelayBroadcast
from live.media.network import read_ingest_eagerly, rtc_configuration
from live.media.registry import (
    ORIGIN_SHARE,
    Heartbeat,
    Load,
    NodeReport,
    RouteLimits,
    new_registry,
    node_id,
    node_load,
    route_viewer,
    with_pending,
)

logger = logging.getLogger(__name__)

MAX_OFFER_BYTES = 64 * 1024


class MediaError(Exception):
    status = 400
    code = "media_error"

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class InvalidOffer(MediaError):
    status = 400
    code = "invalid_offer"


class PublisherConflict(MediaError):
    status = 409
    code = "already_publishing"


class PublisherElsewhere(MediaError):
    status = 409
    code = "publisher_elsewhere"


class NotLiveHere(MediaError):
    status = 409
    code = "not_live"


class ViewerLimit(MediaError):
    status = 503
    code = "webrtc_full"


class UnknownSession(MediaError):
    status = 404
    code = "unknown_session"


@dataclass(frozen=True)
class Session:
    id: str
    answer: str


StateReporter = Callable[[int, str], Awaitable[None]]


@dataclass(frozen=True)
class ShowHooks:
    """How the node talks to the rest of the app about one show (the node
    itself imports no models): report the publisher's state, ask whether the
    show is still live, and hand over the recording once the broadcast closed
    because the show was ended elsewhere (admin, another node, the sweeper)."""

    report: StateReporter
    still_live: Callable[[int], Awaitable[bool]]
    closed: Callable[[int, Path | None], Awaitable[None]]


# How often a broadcast checks that its show is still live.
WATCH_SECONDS = 10.0


def parse_offer(sdp: str, *, need_video: bool) -> SessionDescription:
    """Check that ``sdp`` is an offer aiortc can answer; ``InvalidOffer`` says why."""
    if not sdp.strip():
        raise InvalidOffer(_("The request body must be an SDP offer."))
    if len(sdp.encode()) > MAX_OFFER_BYTES:
        raise InvalidOffer(_("The SDP offer is too large."))
    if not sdp.startswith("v=0"):
        raise InvalidOffer(_("The SDP offer must start with “v=0”."))
    try:
        parsed = SessionDescription.parse(sdp)
    except Exception as exc:
        raise InvalidOffer(
            _("The SDP offer could not be parsed: %(error)s") % {"error": exc}
        ) from exc
    kinds = [m.kind for m in parsed.media]
    if need_video and "video" not in kinds:
        raise InvalidOffer(_("The SDP offer has no video section."))
    if not {"audio", "video"} & set(kinds):
        raise InvalidOffer(_("The SDP offer has no audio or video section."))
    for media in parsed.media:
        if media.kind in ("audio", "video") and not media.rtp.codecs:
            raise InvalidOffer(
                _("The %(kind)s section lists no codec.") % {"kind": media.kind}
            )
        ice = media.ice
        if (
            ice is None
            or not ice.usernameFragment
            or not ice.password
            or not media.dtls
        ):
            raise InvalidOffer(
                _("The SDP offer lacks ICE credentials or a DTLS fingerprint.")
            )
    return parsed


def _h264_first(kind: str) -> list[Any]:
    codecs = RTCRtpSender.getCapabilities(kind).codecs
    if kind != "video":
        return list(codecs)
    # Our shared encoder produces H.264 only (plus RTX for retransmissions).
    return [c for c in codecs if c.mimeType.lower() in ("video/h264", "video/rtx")]


class MediaNode:
    """The live broadcasts this process serves, by show slug."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.broadcasts: dict[str, Broadcast] = {}
        # Shows this node serves as an edge, pulled from their origin.
        self.relays: dict[str, RelayBroadcast] = {}
        # The viewer sessions of this node's broadcasts that are edges' pulls.
        self.links: dict[str, set[str]] = {}
        # Viewers this node sent to each node since that node's last report.
        self._routed: dict[str, list[int]] = {}
        self._lock = asyncio.Lock()
        self._relay_lock = asyncio.Lock()
        self._watchers: dict[str, asyncio.Task[None]] = {}
        # Shared with the other media nodes: the publisher locks, the loads.
        self.registry = new_registry()
        self.heartbeat = Heartbeat(
            self.registry,
            held=lambda: list(self.broadcasts),
            load=self.load,
            lost=self._lost,
        )

    def _link_ids(self, slug: str) -> set[str]:
        broadcast = self.broadcasts.get(slug)
        links = self.links.get(slug, set())
        links &= broadcast.viewers.keys() if broadcast else set()
        return links

    def load(self) -> Load:
        links = sum(len(self._link_ids(slug)) for slug in self.broadcasts)
        return Load(
            viewers=sum(len(b.viewers) for b in self.broadcasts.values())
            - links
            + sum(len(r.viewers) for r in self.relays.values()),
            broadcasts=len(self.broadcasts),
            links=links,
        )

    def _own_report(self) -> NodeReport:
        load = self.load()
        return NodeReport(
            node=node_id(),
            url=str(settings.SHOWFLOOR_MEDIA_NODE_URL),
            viewers=load.viewers,
            broadcasts=load.broadcasts,
            cpu=self.heartbeat.last_cpu,
            at=int(time.time() * 1000),
            links=load.links,
        )

    async def route(self, slug: str, *, pinned: str = "") -> NodeReport | None:
        """Where a new WebRTC viewer of ``slug`` plays: None for this node,
        or another node's report (the view redirects there). ``pinned``: the
        node routing already chose (the redirect's ``?node=``): this node
        serves without routing again when it is the one.

        Raises ``NotLiveHere`` when no live node holds the show."""
        self.heartbeat.start()
        me = node_id()
        if pinned == me:
            return None
        here = self.broadcasts.get(slug)
        origin = me if here is not None else await self.registry.holder(slug)
        if origin is None:
            raise NotLiveHere(_("This show is not being broadcast right now."))
        own = self._own_report()
        limits = RouteLimits.from_settings()
        if here is not None and node_load(own, limits) < ORIGIN_SHARE:
            # The origin keeps the viewer whatever the others report.
            return None
        now = int(time.time() * 1000)
        reports = [own] + [
            with_pending(r, self._pending(r))
            for r in await self.registry.nodes()
            if r.node != me and r.url
        ]
        chosen = route_viewer(
            origin=origin,
            reports=reports,
            now_ms=now,
            limits=limits,
        )
        if chosen is None:
            if here is not None:
                return None
            raise NotLiveHere(_("This show is not being broadcast right now."))
        if chosen.node == me:
            return None
        self._routed.setdefault(chosen.node, []).append(now)
        return chosen

    def _pending(self, report: NodeReport) -> int:
        """Viewers sent to ``report``'s node since it made the report (it
        counts them in its next one)."""
        sent = [at for at in self._routed.get(report.node, []) if at > report.at]
        self._routed[report.node] = sent
        return len(sent)

    async def _lost(self, slug: str) -> None:
        # Another node took the show while this one could not reach Redis: the
        # show goes on there, so only this node's copy closes (not the show).
        await self.end(slug)

    def get(self, slug: str) -> Broadcast | None:
        return self.broadcasts.get(slug)

    def _new_broadcast(
        self,
        *,
        show_id: int,
        slug: str,
        with_audio: bool,
        record: bool,
        report: StateReporter,
    ) -> Broadcast:
        hls_dir = Path(settings.SHOWFLOOR_HLS_DIR) / slug
        shutil.rmtree(hls_dir, ignore_errors=True)
        stamp = timezone.now().strftime("%Y%m%dT%H%M%S")
        recording = Path(settings.SHOWFLOOR_RECORDINGS_DIR) / f"{slug}-{stamp}.mp4"

        async def on_state(state: str) -> None:
            await report(show_id, state)

        return Broadcast(
            show_id=show_id,
            slug=slug,
            config=VideoSettings.from_settings(),
            with_audio=with_audio,
            hls_dir=hls_dir,
            recording_path=recording,
            segment_seconds=settings.SHOWFLOOR_HLS_SEGMENT_SECONDS,
            grace_seconds=settings.SHOWFLOOR_PUBLISHER_GRACE_SECONDS,
            on_publisher_state=on_state,
            record=record,
        )

    async def publish(
        self,
        *,
        show_id: int,
        slug: str,
        offer: str,
        hooks: ShowHooks,
        record: bool = True,
    ) -> tuple[Session, Broadcast]:
        """Accept a WHIP offer: the answer and a new publisher session. A new
        broadcast records only if ``record`` (not while the show rehearses).

        Raises ``InvalidOffer``, ``PublisherConflict`` (a publisher is
        connected) or ``PublisherElsewhere`` (another node holds the show).
        """
        parsed = parse_offer(offer, need_video=True)
        self.heartbeat.start()
        async with self._lock:
            broadcast = self.broadcasts.get(slug)
            if broadcast is not None and broadcast.publisher_active:
                raise PublisherConflict(
                    _("Another publisher is already live for this show; end it first.")
                )
            if not await self.registry.hold(slug):
                raise PublisherElsewhere(
                    _("This show is being published to another media node.")
                )
            pc = RTCPeerConnection(configuration=rtc_configuration())
            created = broadcast is None
            try:
                if broadcast is None:
                    with_audio = any(m.kind == "audio" for m in parsed.media)
                    broadcast = self._new_broadcast(
                        show_id=show_id,
                        slug=slug,
                        with_audio=with_audio,
                        record=record,
                        report=hooks.report,
                    )
                publisher_id = secrets.token_urlsafe(12)
                await broadcast.attach_publisher(publisher_id, pc)
                target = broadcast

                @pc.on("track")
                def on_track(track: MediaStreamTrack) -> None:
                    target.add_publisher_track(pc, track)

                answer = await self._answer(pc, offer)
                read_ingest_eagerly(pc)
            except BaseException:
                await pc.close()
                if created and broadcast is not None:
                    await broadcast.close()
                if created:
                    await self.registry.release(slug)
                raise
            self.broadcasts[slug] = broadcast
            if created:
                self._watchers[slug] = asyncio.create_task(
                    self._watch(slug, broadcast, hooks)
                )
        return Session(publisher_id, answer), broadcast

    async def _watch(self, slug: str, broadcast: Broadcast, hooks: ShowHooks) -> None:
        """Close the broadcast when its show stops being live (or rehearsing)
        without us."""
        while self.broadcasts.get(slug) is broadcast:
            await asyncio.sleep(WATCH_SECONDS)
            try:
                live = await hooks.still_live(broadcast.show_id)
            except Exception:
                logger.exception("could not check whether %s is live", slug)
                continue
            if not live and self.broadcasts.get(slug) is broadcast:
                self._watchers.pop(slug, None)
                recording = await self.end(slug)
                await hooks.closed(broadcast.show_id, recording)
                return

    async def _answer(self, pc: RTCPeerConnection, offer: str) -> str:
        try:
            await pc.setRemoteDescription(
                RTCSessionDescription(sdp=offer, type="offer")
            )
        except Exception as exc:
            raise InvalidOffer(
                _("The SDP offer cannot be answered: %(error)s") % {"error": exc}
            ) from exc
        answer = await pc.createAnswer()
        await pc.setLocalDescription(answer)
        return str(pc.localDescription.sdp)

    async def subscribe(
        self, *, slug: str, offer: str, link: bool = False, low_start: bool = False
    ) -> Session:
        """Accept a WHEP offer: a viewer fed from the shared packets, of this
        node's broadcast (the origin) or of the show pulled from its origin
        (an edge). ``link``: the viewer is an edge pulling the show (only
        from the origin; not counted against the viewer limit).
        ``low_start``: the viewer starts on the lowest rendition (its player
        says its link is slow) instead of the highest.

        Raises ``InvalidOffer``, ``NotLiveHere`` or ``ViewerLimit``.
        """
        kinds = [m.kind for m in parse_offer(offer, need_video=False).media]
        self.heartbeat.start()
        source: Broadcast | RelayBroadcast
        broadcast = self.broadcasts.get(slug)
        if broadcast is not None and not broadcast.closed:
            source = broadcast
            viewers = len(broadcast.viewers) - len(self._link_ids(slug))
        elif link:
            raise NotLiveHere(_("This show is not being broadcast right now."))
        else:
            source = await self._relay(slug)
            viewers = len(source.viewers)
        if not link and viewers >= settings.SHOWFLOOR_WEBRTC_MAX_VIEWERS:
            raise ViewerLimit(_("The WebRTC tier is full; use the HLS stream."))
        pc = RTCPeerConnection(configuration=rtc_configuration())
        video, audio = source.new_viewer_tracks()
        # An edge's pull offers a video m-line per rendition it can take
        # after its first two (video, audio): each gets one of the lower
        # renditions, idle until the edge asks for it (``link_renditions``).
        lower: tuple[PacketTrack, ...] = ()
        if link and isinstance(source, Broadcast):
            extra = kinds.count("video") - 1
            lower = tuple(
                rendition_track() for _ in range(min(extra, source.rendition_count - 1))
            )
        try:
            for track in (video, audio, *lower):
                transceiver = pc.addTransceiver(track, direction="sendonly")
                transceiver.setCodecPreferences(_h264_first(track.kind))
                # NACKs on a lossy or capped link: each packet resent at most
                # once a round trip, within a budget, and none of a rendition
                # the viewer has left (docs/video.md).
                forget = aiortc_patches.limit_retransmissions(transceiver.sender)
                if track is video:
                    track.on_switch = forget
            answer = await self._answer(pc, offer)
        except BaseException:
            for track in (video, audio, *lower):
                track.stop()
            await pc.close()
            raise
        if low_start and not link:
            levels = (
                source.rendition_count
                if isinstance(source, Broadcast)
                else source.levels
            )
            video.rendition = levels - 1
        viewer = Viewer(
            id=secrets.token_urlsafe(12),
            pc=pc,
            video=video,
            audio=audio,
            # An edge steers its own viewers; its pull's rendition 0 is fixed.
            adaptive=not link,
            lower=lower,
        )
        if source.closed:
            # The pull ended while this viewer negotiated.
            for track in viewer.tracks():
                track.stop()
            await pc.close()
            raise NotLiveHere(_("This show is not being broadcast right now."))
        source.add_viewer(viewer)
        if link:
            self.links.setdefault(slug, set()).add(viewer.id)
        return Session(viewer.id, answer)

    async def _relay(self, slug: str) -> RelayBroadcast:
        """The show pulled from its origin onto this node, started if need be
        (one pull per show however many viewers ask at once)."""
        async with self._relay_lock:
            relay = self.relays.get(slug)
            if relay is not None and not relay.closed:
                return relay
            holder = await self.registry.holder(slug)
            origin = next(
                (r for r in await self.registry.nodes() if r.node == holder),
                None,
            )
            if holder == node_id() or origin is None or not origin.url:
                raise NotLiveHere(_("This show is not being broadcast right now."))
            relay = RelayBroadcast(
                slug=slug,
                origin=origin,
                registry=self.registry,
                node=node_id(),
                on_closed=self._relay_closed,
            )
            try:
                await relay.start()
            except EdgeRefused as exc:
                logger.warning("cannot pull %s from %s: %s", slug, holder, exc)
                raise NotLiveHere(
                    _("This show is not being broadcast right now.")
                ) from exc
            self.relays[slug] = relay
            return relay

    def _relay_closed(self, relay: RelayBroadcast) -> None:
        if self.relays.get(relay.slug) is relay:
            del self.relays[relay.slug]

    def link_renditions(self, *, slug: str, session_id: str, wanted: set[int]) -> None:
        """An edge's pull of ``slug`` (``session_id``) asks for the lower
        renditions in ``wanted`` and no others. Raises ``UnknownSession``."""
        broadcast = self.broadcasts.get(slug)
        if (
            broadcast is None
            or session_id not in self._link_ids(slug)
            or not broadcast.set_link_renditions(session_id, wanted)
        ):
            raise UnknownSession(_("There is no such playback session."))

    async def stop_viewer(self, *, slug: str, session_id: str) -> None:
        source: Broadcast | RelayBroadcast | None = self.broadcasts.get(slug)
        if source is None or session_id not in source.viewers:
            source = self.relays.get(slug)
        if source is None or not await source.remove_viewer(session_id):
            raise UnknownSession(_("There is no such playback session."))

    def publisher_session(self, slug: str, session_id: str) -> Broadcast:
        broadcast = self.broadcasts.get(slug)
        if broadcast is None or broadcast.publisher_id != session_id:
            raise UnknownSession(_("There is no such publishing session."))
        return broadcast

    async def stop_publisher(self, slug: str, session_id: str) -> None:
        """End the publisher's session ``session_id`` but keep the show's
        broadcast for its return. Raises ``UnknownSession``."""
        broadcast = self.publisher_session(slug, session_id)
        await broadcast.detach_publisher()

    async def end(self, slug: str) -> Path | None:
        """Close the show's broadcast; the recording's path if one was written."""
        broadcast = self.broadcasts.pop(slug, None)
        self.links.pop(slug, None)
        watcher = self._watchers.pop(slug, None)
        if watcher is not None and watcher is not asyncio.current_task():
            watcher.cancel()
        if broadcast is None:
            return None
        try:
            await broadcast.close()
        finally:
            await self.registry.release(slug)
        path = broadcast.recording_path
        return path if path.exists() and path.stat().st_size > 0 else None

    async def close_all(self) -> None:
        await self.heartbeat.stop()
        for relay in list(self.relays.values()):
            await relay.close()
        for slug in list(self.broadcasts):
            await self.end(slug)


class StartsMediaNode:
    """ASGI middleware for a media node: any HTTP request (the health check
    will do) starts this node's heartbeat, so a node no viewer has reached
    yet reports its load and routing can choose it."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> Any:
        get_node().heartbeat.start()
        return await self.app(scope, receive, send)


_node: MediaNode | None = None


def get_node() -> MediaNode:
    """This process's node, bound to the running event loop (Daphne has one)."""
    global _node
    loop = asyncio.get_running_loop()
    if _node is None or _node.loop is not loop:
        _node = MediaNode()
    return _node
