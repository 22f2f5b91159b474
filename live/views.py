"""Media HTTP endpoints (docs/video.md): WHIP ingest, WHEP playback, HLS files,
the recording, and the studio's stream controls.

Thin async views: parse, authorize, call the media node or a stream service,
answer. WHIP and WHEP authenticate with a Bearer token (stream key, access
code), not cookies, so they are CSRF-exempt; the studio controls use the
session and CSRF.
"""

from __future__ import annotations

import json
import logging
import math
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from asgiref.sync import sync_to_async
from django import db
from django.conf import settings
from django.db.models import Q
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    JsonResponse,
)
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

from live.media.edge import EDGE_HEADER, edge_token_valid
from live.media.muxing import HLS_FILE
from live.media.node import MediaError, ShowHooks, get_node
from live.media.registry import ROUTED_PARAM, START_PARAM, routed_whep_url
from shows import selectors
from shows.exceptions import ShowfloorError, TooManyAttempts
from shows.models import Show, User
from shows.services import access, lifecycle, stream, workspace

logger = logging.getLogger(__name__)

SDP = "application/sdp"
HLS_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".mp4": "video/mp4",
    ".m4s": "video/iso.segment",
}
RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
RANGE_CHUNK = 4 * 1024 * 1024


def _problem(status: int, code: str, message: str, **headers: str) -> HttpResponse:
    response = JsonResponse({"code": code, "message": message}, status=status)
    for name, value in headers.items():
        response[name] = value
    return response


def _bearer(request: HttpRequest) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _sep, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


async def _show(slug: str) -> Show:
    try:
        return await sync_to_async(selectors.show_get)(slug=slug)
    except Show.DoesNotExist as exc:
        raise Http404(_("There is no show at this address.")) from exc


def _sdp_body(request: HttpRequest) -> str:
    if request.content_type != SDP:
        raise MediaError(_("Send the SDP offer with Content-Type: application/sdp."))
    try:
        return request.body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MediaError(_("The SDP offer is not valid UTF-8.")) from exc


def _created(answer: str, location: str) -> HttpResponse:
    response = HttpResponse(answer, status=201, content_type=SDP)
    response["Location"] = location
    response["Cache-Control"] = "no-store"
    return response


def _options(methods: str) -> HttpResponse:
    response = HttpResponse(status=204)
    response["Allow"] = methods
    response["Accept-Post"] = SDP
    return response


def _report_state_sync(show_id: int, state: str) -> None:
    try:
        stream.stream_publisher_state(show_id=show_id, state=state)
    finally:
        db.connection.close()


async def _report_state(show_id: int, state: str) -> None:
    # Runs long after the WHIP request that set it up has finished, so not in
    # that request's thread (``thread_sensitive=False``); the thread's database
    # connection is closed right after.
    await sync_to_async(_report_state_sync, thread_sensitive=False)(show_id, state)


def _still_live_sync(show_id: int) -> bool:
    try:
        return Show.objects.filter(
            Q(status=Show.Status.LIVE)
            | Q(status=Show.Status.SCHEDULED, rehearsing_since__isnull=False),
            pk=show_id,
        ).exists()
    finally:
        db.connection.close()


def _closed_sync(show_id: int, recording: Path | None) -> None:
    try:
        stream.stream_end(show=Show.objects.get(pk=show_id), recording=recording)
    finally:
        db.connection.close()


SHOW_HOOKS = ShowHooks(
    report=_report_state,
    still_live=sync_to_async(_still_live_sync, thread_sensitive=False),
    closed=sync_to_async(_closed_sync, thread_sensitive=False),
)


# --- WHIP -----------------------------------------------------------------


@csrf_exempt
async def whip(request: HttpRequest, slug: str) -> HttpResponseBase:
    """``POST`` an SDP offer with the stream key as Bearer token → ``201``."""
    if request.method == "OPTIONS":
        return _options("OPTIONS, POST")
    if request.method != "POST":
        return _problem(
            405, "method_not_allowed", _("Use POST."), Allow="OPTIONS, POST"
        )
    show = await _show(slug)
    if not stream.stream_key_matches(show=show, key=_bearer(request)):
        return _problem(
            401,
            "bad_stream_key",
            _("The stream key is missing or wrong."),
            **{"WWW-Authenticate": 'Bearer realm="showfloor"'},
        )
    if show.status == Show.Status.ENDED:
        return _problem(409, "show_ended", _("The show has ended."))
    node = get_node()
    try:
        offer = _sdp_body(request)
        session, broadcast = await node.publish(
            show_id=show.pk,
            slug=slug,
            offer=offer,
            hooks=SHOW_HOOKS,
            record=not show.is_rehearsing,
        )
    except MediaError as exc:
        return _problem(exc.status, exc.code, exc.message)
    try:
        await sync_to_async(stream.stream_go_live)(
            show=show,
            media_node=settings.SHOWFLOOR_MEDIA_NODE,
            recording=broadcast.recording_path,
        )
    except ShowfloorError as exc:
        await node.end(slug)
        return _problem(409, exc.code, exc.message)
    if show.status == Show.Status.LIVE and not broadcast.record:
        # The rehearsal went live while this publisher was connecting.
        broadcast.start_recording()
    location = reverse("live:whip_session", args=[slug, session.id])
    return _created(session.answer, location)


@csrf_exempt
async def whip_session(
    request: HttpRequest, slug: str, session_id: str
) -> HttpResponseBase:
    """``DELETE`` ends the stream, not the show: OBS sends it on "Stop
    streaming", and the show waits for the encoder's return (a rehearsal
    ends, and the show stays scheduled). The host ends the show in the studio,
    or the sweeper once nobody has streamed for
    ``SHOWFLOOR_ABANDONED_SHOW_SECONDS``. Trickle ICE (``PATCH``) is not
    supported (every candidate is in the offer and the answer)."""
    if request.method == "PATCH":
        return _problem(
            405, "no_trickle", _("Trickle ICE is not supported."), Allow="DELETE"
        )
    if request.method != "DELETE":
        return _problem(405, "method_not_allowed", _("Use DELETE."), Allow="DELETE")
    show = await _show(slug)
    if not stream.stream_key_matches(show=show, key=_bearer(request)):
        return _problem(401, "bad_stream_key", _("The stream key is missing or wrong."))
    node = get_node()
    try:
        node.publisher_session(slug, session_id)
    except MediaError as exc:
        return _problem(exc.status, exc.code, exc.message)
    if show.is_rehearsing:
        await _end_stream(show)
    else:
        await node.stop_publisher(slug, session_id)
    return HttpResponse(status=200)


async def _end_stream(show: Show) -> Show:
    recording = await get_node().end(show.slug)
    return await sync_to_async(stream.stream_end)(show=show, recording=recording)


# --- WHEP -----------------------------------------------------------------


def _may_watch(request: HttpRequest, show: Show, user: User | None) -> bool:
    """A private show's access code as Bearer token (under the same limit as the
    show page's form: raises ``TooManyAttempts``), or an unlocked session."""
    code = _bearer(request)
    if show.is_private and code:
        return access.access_code_check(
            show=show, code=code, client=request.META.get("REMOTE_ADDR", "")
        )
    return selectors.show_access_granted(show=show, session=request.session, user=user)


def _watch_refused(
    request: HttpRequest, show: Show, user: User | None
) -> HttpResponse | None:
    """The answer to a viewer who may not watch (401, or 429 after too many
    wrong codes), or None."""
    try:
        if _may_watch(request, show, user):
            return None
    except TooManyAttempts as exc:
        return _problem(
            429,
            exc.code,
            exc.message,
            **{"Retry-After": str(max(1, math.ceil(exc.retry_after)))},
        )
    return _problem(401, "access_code", _("This show needs its access code."))


def _private_no_store(response: HttpResponseBase, show: Show) -> None:
    # A private show's media must never sit in a shared cache, which would
    # hand it to anybody asking for the same URL.
    if show.is_private:
        response["Cache-Control"] = "private, no-store"


async def _user(request: HttpRequest) -> User | None:
    user = await request.auser()
    return user if isinstance(user, User) else None


async def _may_see_stream(show: Show, user: User | None) -> bool:
    """Whether the show's stream plays for ``user``: a live show for whoever
    may watch it, a rehearsal for the brand's staff only."""
    if show.status == Show.Status.LIVE:
        return True
    if not show.is_rehearsing:
        return False
    return bool(await sync_to_async(selectors.user_is_show_staff)(user=user, show=show))


@csrf_exempt
async def whep(request: HttpRequest, slug: str) -> HttpResponseBase:
    """``POST`` an SDP offer (recvonly) → ``201`` with the answer. Private shows
    need the access code as Bearer token or an unlocked session.

    The node picks the node that serves the viewer from the nodes' load
    (``MediaNode.route``): itself (the show's origin, or an edge pulling the
    show from it), or another node, to which it answers ``307`` with
    ``?node=<that node>`` (the client repeats the same POST there, and that
    node serves without routing again). An edge's own pull, signed in the
    ``X-Showfloor-Edge`` header, is served by the origin without the viewers'
    checks (the edge made them) and outside the viewer limit."""
    if request.method == "OPTIONS":
        return _options("OPTIONS, POST")
    if request.method != "POST":
        return _problem(
            405, "method_not_allowed", _("Use POST."), Allow="OPTIONS, POST"
        )
    show = await _show(slug)
    node = get_node()
    link = request.headers.get(EDGE_HEADER)
    if link is not None:
        if not edge_token_valid(link, slug):
            # Between media nodes only: nobody reads it in a language.
            return _problem(403, "edge_refused", "This edge token is not valid.")
        try:
            session = await node.subscribe(
                slug=slug, offer=_sdp_body(request), link=True
            )
        except MediaError as exc:
            return _problem(exc.status, exc.code, exc.message)
        return _created(
            session.answer, reverse("live:whep_session", args=[slug, session.id])
        )
    user = await _user(request)
    refused = await sync_to_async(_watch_refused)(request, show, user)
    if refused is not None:
        return refused
    if not await _may_see_stream(show, user):
        return _problem(409, "not_live", _("The show is not live."))
    try:
        offer = _sdp_body(request)
        target = await node.route(slug, pinned=request.GET.get(ROUTED_PARAM, ""))
        # ``start=low``: the player's network says the viewer is on a slow
        # link (docs/video.md, "Rendition ladder").
        start = {START_PARAM: "low"} if request.GET.get(START_PARAM) == "low" else {}
        if target is not None:
            redirect = HttpResponse(status=307)
            redirect["Location"] = routed_whep_url(target, slug, **start)
            redirect["Cache-Control"] = "no-store"
            return redirect
        session = await node.subscribe(slug=slug, offer=offer, low_start=bool(start))
    except MediaError as exc:
        return _problem(exc.status, exc.code, exc.message)
    return _created(
        session.answer, reverse("live:whep_session", args=[slug, session.id])
    )


@csrf_exempt
async def whep_session(
    request: HttpRequest, slug: str, session_id: str
) -> HttpResponseBase:
    link = request.headers.get(EDGE_HEADER)
    if request.method == "PATCH" and link is not None:
        return _link_renditions(request, slug, session_id, link)
    if request.method == "PATCH":
        return _problem(
            405, "no_trickle", _("Trickle ICE is not supported."), Allow="DELETE"
        )
    if request.method != "DELETE":
        return _problem(405, "method_not_allowed", _("Use DELETE."), Allow="DELETE")
    try:
        await get_node().stop_viewer(slug=slug, session_id=session_id)
    except MediaError as exc:
        return _problem(exc.status, exc.code, exc.message)
    return HttpResponse(status=200)


def _link_renditions(
    request: HttpRequest, slug: str, session_id: str, token: str
) -> HttpResponseBase:
    """``PATCH`` from an edge on its pull's session, ``{"renditions": [1]}``:
    the lower renditions its viewers need now (rendition 0 always flows).
    Between media nodes only, so in English."""
    if not edge_token_valid(token, slug):
        return _problem(403, "edge_refused", "This edge token is not valid.")
    try:
        wanted = json.loads(request.body)["renditions"]
    except (ValueError, KeyError, TypeError):
        wanted = None
    if not isinstance(wanted, list) or not all(
        isinstance(r, int) and not isinstance(r, bool) and 0 <= r < 16 for r in wanted
    ):
        return _problem(400, "invalid_renditions", 'Send {"renditions": [<index>, …]}.')
    try:
        get_node().link_renditions(slug=slug, session_id=session_id, wanted=set(wanted))
    except MediaError as exc:
        return _problem(exc.status, exc.code, exc.message)
    return HttpResponse(status=204)


# --- HLS and the recording -----------------------------------------------


async def hls_file(request: HttpRequest, slug: str, name: str) -> HttpResponseBase:
    """The live playlist and its segments (the same packets as WebRTC)."""
    if not HLS_FILE.match(name):
        raise Http404(_("No such HLS file."))
    show = await _show(slug)
    user = await _user(request)
    refused = await sync_to_async(_watch_refused)(request, show, user)
    if refused is not None:
        return refused
    if show.is_rehearsing and not await _may_see_stream(show, user):
        # A rehearsal is not public: its files do not exist for a viewer.
        raise Http404(_("No such HLS file."))
    path = Path(settings.SHOWFLOOR_HLS_DIR) / slug / name
    try:
        data = await sync_to_async(path.read_bytes, thread_sensitive=False)()
    except FileNotFoundError as exc:
        raise Http404(_("No such HLS file.")) from exc
    response = HttpResponse(data, content_type=HLS_TYPES[path.suffix])
    response["Cache-Control"] = (
        "no-cache" if name.endswith(".m3u8") else "public, max-age=60, immutable"
    )
    _private_no_store(response, show)
    return response


# How long nginx may reuse an auth answer for the same show and credentials.
HLS_AUTH_CACHE_SECONDS = 5


@never_cache
async def hls_auth(request: HttpRequest, slug: str) -> HttpResponseBase:
    """nginx's ``auth_request`` for the HLS files it serves from the shared
    volume (``deploy/nginx.conf``): ``204`` when the request's credentials
    (the access code as Bearer token, a session that entered it, the brand's
    staff) may fetch ``slug``'s files, under the same rules and the same
    wrong-code limit as ``hls_file``; ``403`` otherwise (auth_request passes
    only 401 and 403 on; a missing show, a rehearsal and too many wrong codes
    are 403 too). ``X-Showfloor-Access`` tells nginx whether the show is
    ``public`` (its files may sit in shared caches) or ``private``."""
    denied = HttpResponse(status=403)
    try:
        show = await sync_to_async(selectors.show_get)(slug=slug)
    except Show.DoesNotExist:
        return denied
    user = await _user(request)
    refused = await sync_to_async(_watch_refused)(request, show, user)
    if refused is not None:
        return denied
    if show.is_rehearsing and not await _may_see_stream(show, user):
        return denied
    allowed = HttpResponse(status=204)
    allowed["X-Showfloor-Access"] = "private" if show.is_private else "public"
    # nginx's auth cache (keyed by show and credentials) honours this ahead
    # of never_cache's Cache-Control.
    allowed["X-Accel-Expires"] = str(HLS_AUTH_CACHE_SECONDS)
    return allowed


def _range_response(path: Path, header: str) -> HttpResponseBase:
    size = path.stat().st_size
    match = RANGE.match(header.strip())
    if not match or (not match[1] and not match[2]):
        return FileResponse(path.open("rb"), content_type="video/mp4")
    if match[1]:
        start = int(match[1])
        end = int(match[2]) if match[2] else size - 1
    else:
        start, end = max(0, size - int(match[2])), size - 1
    end = min(end, size - 1, start + RANGE_CHUNK - 1)
    if start > end:
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        return response
    with path.open("rb") as handle:
        handle.seek(start)
        data = handle.read(end - start + 1)
    response = HttpResponse(data, status=206, content_type="video/mp4")
    response["Content-Range"] = f"bytes {start}-{end}/{size}"
    return response


def recording(request: HttpRequest, slug: str) -> HttpResponseBase:
    """The show's recording for replay (byte ranges, so the player can seek)."""
    try:
        show = selectors.show_get(slug=slug)
    except Show.DoesNotExist as exc:
        raise Http404(_("There is no show at this address.")) from exc
    user = request.user if isinstance(request.user, User) else None
    refused = _watch_refused(request, show, user)
    if refused is not None:
        return refused
    path = stream.stream_recording_path(show=show)
    if path is None:
        raise Http404(_("This show has no recording."))
    response = _range_response(path, request.headers.get("Range", ""))
    response["Accept-Ranges"] = "bytes"
    _private_no_store(response, show)
    return response


# --- Studio controls (session + CSRF) ------------------------------------


async def _staff_show(request: HttpRequest, slug: str) -> Show:
    show = await _show(slug)
    user = await _user(request)
    allowed = await sync_to_async(selectors.user_is_show_staff)(user=user, show=show)
    if not allowed:
        raise Http404(_("There is no show at this address."))
    return show


def _stream_state(show: Show) -> dict[str, Any]:
    broadcast = get_node().get(show.slug)
    state: dict[str, Any] = {
        # Staff only: the studio tells a rehearsal from a scheduled show.
        "status": "rehearsal" if show.is_rehearsing else show.status,
        "started_at": int(show.started_at.timestamp() * 1000)
        if show.started_at
        else None,
        "publisher": "none",
        "viewers_webrtc": 0,
        # When the sweeper will end a live show nobody streams to (epoch ms).
        "auto_end_at": int(
            (
                show.publisher_gone_since
                + timedelta(seconds=settings.SHOWFLOOR_ABANDONED_SHOW_SECONDS)
            ).timestamp()
            * 1000
        )
        if show.publisher_gone_since and show.status == Show.Status.LIVE
        else None,
    }
    if broadcast is not None:
        state.update(broadcast.status())
        state["started_at"] = state["started_at"] or broadcast.status()["started_at"]
    return state


@never_cache
async def stream_status(request: HttpRequest, slug: str) -> HttpResponseBase:
    """The studio's view of the stream: show status, publisher state, viewers."""
    show = await _staff_show(request, slug)
    return JsonResponse(_stream_state(show))


async def stream_key_rotate(request: HttpRequest, slug: str) -> HttpResponseBase:
    if request.method != "POST":
        return _problem(405, "method_not_allowed", _("Use POST."), Allow="POST")
    show = await _staff_show(request, slug)
    key = await sync_to_async(stream.stream_key_rotate)(show=show)
    return JsonResponse({"stream_key": key})


async def stream_end(request: HttpRequest, slug: str) -> HttpResponseBase:
    """The host's End show: closes the stream (whoever publishes) and the show."""
    if request.method != "POST":
        return _problem(405, "method_not_allowed", _("Use POST."), Allow="POST")
    show = await _staff_show(request, slug)
    show = await _end_stream(show)
    return JsonResponse(_stream_state(show))


def _host_refused(exc: ShowfloorError) -> HttpResponse:
    if isinstance(exc, workspace.NotAMember):
        raise Http404(_("There is no show at this address."))
    status = 403 if isinstance(exc, workspace.NotAllowed) else 409
    return _problem(status, exc.code, str(exc.message))


async def stream_rehearse(request: HttpRequest, slug: str) -> HttpResponseBase:
    """The host's Start rehearsal: publishing from now on reaches the staff
    only (owners and hosts may start it)."""
    if request.method != "POST":
        return _problem(405, "method_not_allowed", _("Use POST."), Allow="POST")
    show = await _staff_show(request, slug)
    user = await _user(request)
    try:
        show = await sync_to_async(lifecycle.show_rehearsal_start)(show=show, user=user)
    except ShowfloorError as exc:
        return _host_refused(exc)
    return JsonResponse(_stream_state(show))


async def stream_go_live(request: HttpRequest, slug: str) -> HttpResponseBase:
    """The host's Go live after a rehearsal: the show becomes public and the
    recording starts; the publisher's connection is not touched."""
    if request.method != "POST":
        return _problem(405, "method_not_allowed", _("Use POST."), Allow="POST")
    show = await _staff_show(request, slug)
    user = await _user(request)
    broadcast = get_node().get(slug)
    if broadcast is None or broadcast.closed or not broadcast.publisher_active:
        return _problem(
            409, "no_stream", _("Start the camera first: nothing is being streamed.")
        )
    try:
        show = await sync_to_async(stream.stream_go_public)(
            show=show, user=user, recording=broadcast.recording_path
        )
    except ShowfloorError as exc:
        return _host_refused(exc)
    broadcast.start_recording()
    return JsonResponse(_stream_state(show))


@never_cache
async def preview(request: HttpRequest, slug: str) -> HttpResponseBase:
    """The staff's preview of the stream: plays a rehearsal (or the live show)
    over WHEP/HLS with the staff check; 404 for anybody else."""
    show = await _staff_show(request, slug)
    return await sync_to_async(render)(
        request, "frontend/studio/preview.html", {"show": show}
    )
