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

from live.media.broadcast import Broadcast, Viewer
from live.media.codecs import VideoSettings
from live.media.network import read_ingest_eagerly, rtc_configuration
from live.media.registry import Heartbeat, Load, new_registry

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
        self._lock = asyncio.Lock()
        self._watchers: dict[str, asyncio.Task[None]] = {}
        # Shared with the other media nodes: the publisher locks, the loads.
        self.registry = new_registry()
        self.heartbeat = Heartbeat(
            self.registry,
            held=lambda: list(self.broadcasts),
            load=self.load,
            lost=self._lost,
        )

    def load(self) -> Load:
        return Load(
            viewers=sum(len(b.viewers) for b in self.broadcasts.values()),
            broadcasts=len(self.broadcasts),
        )

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

    async def subscribe(self, *, slug: str, offer: str) -> Session:
        """Accept a WHEP offer: a viewer fed from the shared packets.

        Raises ``InvalidOffer``, ``NotLiveHere`` or ``ViewerLimit``.
        """
        parse_offer(offer, need_video=False)
        self.heartbeat.start()
        broadcast = self.broadcasts.get(slug)
        if broadcast is None or broadcast.closed:
            raise NotLiveHere(_("This show is not being broadcast right now."))
        if len(broadcast.viewers) >= settings.SHOWFLOOR_WEBRTC_MAX_VIEWERS:
            raise ViewerLimit(_("The WebRTC tier is full; use the HLS stream."))
        pc = RTCPeerConnection(configuration=rtc_configuration())
        video, audio = broadcast.new_viewer_tracks()
        try:
            for track in (video, audio):
                transceiver = pc.addTransceiver(track, direction="sendonly")
                transceiver.setCodecPreferences(_h264_first(track.kind))
            answer = await self._answer(pc, offer)
        except BaseException:
            video.stop()
            audio.stop()
            await pc.close()
            raise
        viewer = Viewer(id=secrets.token_urlsafe(12), pc=pc, video=video, audio=audio)
        broadcast.add_viewer(viewer)
        return Session(viewer.id, answer)

    async def stop_viewer(self, *, slug: str, session_id: str) -> None:
        broadcast = self.broadcasts.get(slug)
        if broadcast is None or not await broadcast.remove_viewer(session_id):
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
        for slug in list(self.broadcasts):
            await self.end(slug)


_node: MediaNode | None = None


def get_node() -> MediaNode:
    """This process's node, bound to the running event loop (Daphne has one)."""
    global _node
    loop = asyncio.get_running_loop()
    if _node is None or _node.loop is not loop:
        _node = MediaNode()
    return _node
