"""Where a show's audience comes from: share links, the embed, campaigns and
other sites, first-party and server-side only (docs/audience.md).

A visit of the show page (``note_visit``) is given a *source key*:

==========================  ==============================================
``share.<channel>``         a share link (``?via=<code>&ch=<channel>``) of
                            this show; the channel is one of ``CHANNELS``
                            or ``link``
``embed.<host>``            the player embedded on the brand's site
``utm.<source>.<medium>.<campaign>``  campaign parameters (``-`` if absent)
``ref.<domain>``            a link on another site (the Referer's host)
``direct``                  none of these
``replay``                  an order placed from the show's replay (set by
                            ``checkout.services.orders``, docs/replay.md)
``comment``                 an order a chat claim placed (comment to buy,
                            ``checkout.services.claims``)
``other``                   past ``SOURCES_PER_SHOW`` distinct keys
==========================  ==============================================

Keys are lower case ``[a-z0-9._-]``, at most ``KEY_MAX`` characters, so the
metrics made of them fit the counting store's 64. The visit is counted in
``realtime.counting`` (``visits`` and ``src.<key>``: nothing per visit goes to
PostgreSQL), and a non-direct source is kept in a signed, HttpOnly,
SameSite=Lax cookie of this site for the show for ``COOKIE_MAX_AGE`` (the last
non-direct touch wins). What follows (a reminder, an order, a sign-up) takes
its source from there (``source_for``, ``attribution_for``, ``note_signup``).
A request that says ``DNT: 1`` or ``Sec-GPC: 1`` is counted but gets no cookie.
"""

from __future__ import annotations

import re
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.translation import gettext as _

from realtime import counting
from realtime import redis as rclient
from shows.models import Show, User
from shows.services import sharing

# The channels a share link names; any other is counted as ``link``.
CHANNELS = ("app", "copy", "whatsapp", "telegram", "email")
KEY_MAX = 56  # "signups." + key fits the store's 64 characters
# Distinct campaign, referrer and embed keys one show may get; past it,
# ``other``. Share channels, ``direct`` and ``other`` are not in the count.
SOURCES_PER_SHOW = 100
# How long the set of a show's keys is kept after its last new key: longer
# than the counts (48 h) so a show seen again later cannot grow past it.
SOURCES_KEEP_SECONDS = 30 * 86400
COOKIE_PREFIX = "sf_src_"
COOKIE_SALT = "showfloor.attribution"
COOKIE_MAX_AGE = timedelta(days=7)
# Cookies read at sign-up (the shows visited most recently are enough).
SIGNUP_COOKIES_MAX = 10

_UNSAFE = re.compile(r"[^a-z0-9_-]+")
_UNSAFE_HOST = re.compile(r"[^a-z0-9.-]+")
_KEY = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_CODE = re.compile(r"^[A-Za-z0-9_-]{1,16}$")

# KEYS: the show's set of keys. ARGV: key, bound, seconds to keep.
# 1 when the key is (now) one of the show's, 0 past the bound.
ADMIT_SCRIPT = """
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then
  return 1
end
if redis.call('SCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('SADD', KEYS[1], ARGV[1])
  redis.call('EXPIRE', KEYS[1], ARGV[3])
  return 1
end
return 0
"""


@dataclass(frozen=True)
class Attribution:
    """What an order or a reminder records: the source key, and the share
    link when it came through one."""

    source: str
    share_link_id: int | None = None


# --- Source keys ------------------------------------------------------------


def _part(value: str, limit: int) -> str:
    cleaned = _UNSAFE.sub("-", value.strip().lower()).strip("-")[:limit]
    return cleaned or "-"


def _host(value: str, limit: int) -> str:
    host = _UNSAFE_HOST.sub("-", value.strip().lower()).strip(".-")
    host = host.removeprefix("www.")
    # The end of a long name says more (the registrable domain) than its start.
    return host[-limit:].lstrip(".-")


def share_key(channel: str) -> str:
    return f"share.{channel if channel in CHANNELS else 'link'}"


def embed_key(host: str) -> str:
    return f"embed.{_host(host.split(':')[0], KEY_MAX - 6) or '-'}"


def campaign_key(source: str, medium: str, campaign: str) -> str:
    return f"utm.{_part(source, 16)}.{_part(medium, 12)}.{_part(campaign, 22)}"


def referrer_key(domain: str) -> str:
    return f"ref.{_host(domain, KEY_MAX - 4) or '-'}"


def valid_key(key: str) -> bool:
    return len(key) <= KEY_MAX and bool(_KEY.match(key))


def kind_of(key: str) -> str:
    """``share``, ``embed``, ``campaign``, ``referrer``, ``direct``,
    ``replay``, ``comment`` or ``other``."""
    prefix = key.split(".", 1)[0]
    return {
        "share": "share",
        "embed": "embed",
        "utm": "campaign",
        "ref": "referrer",
        "direct": "direct",
        "replay": "replay",
        "comment": "comment",
    }.get(prefix, "other")


# --- The bound on a show's keys ---------------------------------------------


@dataclass
class _Known:
    """Keys known to be admitted, per show, in this process: the common case
    answers without a round trip (and is the whole truth without Redis)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    keys: dict[int, set[str]] = field(default_factory=lambda: defaultdict(set))
    size: int = 0


_known = _Known()
_KNOWN_MAX = 20_000


def _remember(show_id: int, key: str) -> None:
    with _known.lock:
        if _known.size >= _KNOWN_MAX:
            _known.keys.clear()
            _known.size = 0
        if key not in _known.keys[show_id]:
            _known.keys[show_id].add(key)
            _known.size += 1


def _admitted(show_id: int, key: str) -> str:
    """``key`` if the show may have it (one of its first ``SOURCES_PER_SHOW``
    bounded keys), else ``other``. A flood of made-up referrers or campaigns
    adds at most that many keys per show to the store."""
    if kind_of(key) in ("share", "direct", "replay", "comment", "other"):
        return key
    with _known.lock:
        if key in _known.keys.get(show_id, ()):
            return key
        local = len(_known.keys.get(show_id, ()))
    if not rclient.url():
        if local >= SOURCES_PER_SHOW:
            return "other"
        _remember(show_id, key)
        return key
    if rclient.is_down():
        return "other"
    try:
        admit = rclient.sync_client().register_script(ADMIT_SCRIPT)
        admitted = admit(
            keys=[rclient.key("attr", show_id, "keys")],
            args=[key, SOURCES_PER_SHOW, SOURCES_KEEP_SECONDS],
        )
    except rclient.ERRORS:
        rclient.mark_down()
        return "other"
    if not admitted:
        return "other"
    _remember(show_id, key)
    return key


# --- A visit ----------------------------------------------------------------


def _own_hosts(request: HttpRequest) -> set[str]:
    hosts = {request.get_host().split(":")[0].lower()}
    public = urlsplit(str(settings.SHOWFLOOR_PUBLIC_URL)).hostname
    if public:
        hosts.add(public.lower())
    return hosts


_UTM = ("source", "medium", "campaign")
# Link previews (the messenger fetching the shared link to draw its card) and
# crawlers: not a visit, so neither counted nor given a cookie.
_ROBOT = re.compile(
    r"bot\b|bot/|crawler|spider|preview|facebookexternalhit|whatsapp/|"
    r"telegrambot|slack|discord|embedly|curl/|wget/|python-requests",
    re.IGNORECASE,
)


def _touch(request: HttpRequest, show: Show) -> tuple[str, str] | None:
    """The visit's source key and share code ("" if none), or None for a
    direct visit (or a link from one of our own pages)."""
    embed = str(getattr(request, "embed_host", "") or "")
    if embed:
        return embed_key(embed), ""
    code = str(request.GET.get("via") or "")
    if _CODE.match(code) and sharing.share_link_find(show_id=show.pk, code=code):
        return share_key(str(request.GET.get("ch") or "")), code
    utm = [str(request.GET.get(f"utm_{name}") or "") for name in _UTM]
    if any(utm):
        return campaign_key(*utm), ""
    referer = str(request.headers.get("Referer") or "")
    try:
        host = urlsplit(referer).hostname or ""
    except ValueError:
        host = ""
    if host and host.lower() not in _own_hosts(request):
        return referrer_key(host), ""
    return None


def _untracked(request: HttpRequest) -> bool:
    return "1" in (request.headers.get("DNT"), request.headers.get("Sec-GPC"))


def _cookie_name(show_id: int) -> str:
    return f"{COOKIE_PREFIX}{show_id}"


def note_visit(request: HttpRequest, response: HttpResponse, show: Show) -> None:
    """Count a visit of the show page under its source, and keep a non-direct
    source in the show's attribution cookie (the last one wins). A link
    preview or crawler (by its User-Agent) is not a visit."""
    if _ROBOT.search(str(request.headers.get("User-Agent") or "")):
        return
    touch = _touch(request, show)
    key = _admitted(show.pk, touch[0]) if touch else "direct"
    counting.add(show.pk, "visits")
    counting.add(show.pk, f"src.{key}")
    if touch is None or _untracked(request):
        return
    code = touch[1] if key.startswith("share.") else ""
    response.set_signed_cookie(
        _cookie_name(show.pk),
        f"{key}|{code}" if code else key,
        salt=COOKIE_SALT,
        max_age=int(COOKIE_MAX_AGE.total_seconds()),
        secure=request.is_secure(),
        httponly=True,
        samesite="Lax",
    )


def _cookie(request: HttpRequest, show_id: int) -> tuple[str, str] | None:
    """The (key, share code) the show's cookie keeps, if it is ours, unaltered
    and younger than ``COOKIE_MAX_AGE``."""
    value = request.get_signed_cookie(
        _cookie_name(show_id),
        default=None,
        salt=COOKIE_SALT,
        max_age=COOKIE_MAX_AGE,
    )
    if not value:
        return None
    key, _sep, code = value.partition("|")
    if not valid_key(key) or (code and not _CODE.match(code)):
        return None
    return key, code


def source_for(request: HttpRequest, show: Show) -> str:
    """The source key to record with what the visitor does next: the embed
    they are in, else the show's cookie, else ``direct``."""
    return attribution_for(request, show).source


def attribution_for(request: HttpRequest, show: Show) -> Attribution:
    """``source_for`` and the share link it came through, if any (a link
    deleted since, or one of another show, is not named)."""
    embed = str(getattr(request, "embed_host", "") or "")
    if embed:
        return Attribution(_admitted(show.pk, embed_key(embed)))
    kept = _cookie(request, show.pk)
    if kept is None:
        return Attribution("direct")
    key, code = kept
    link = sharing.share_link_find(show_id=show.pk, code=code) if code else None
    return Attribution(key, link.pk if link else None)


def note_signup(request: HttpRequest) -> None:
    """Count a new account under the source of each show the person came to
    (``signups.<key>``), from the attribution cookies they carry."""
    names = [name for name in request.COOKIES if name.startswith(COOKIE_PREFIX)]
    for name in names[:SIGNUP_COOKIES_MAX]:
        show_id = name.removeprefix(COOKIE_PREFIX)
        if not show_id.isdigit():
            continue
        kept = _cookie(request, int(show_id))
        if kept is not None:
            counting.add(int(show_id), f"signups.{kept[0]}")


# --- Share links ------------------------------------------------------------


def share_urls(request: HttpRequest, show: Show, user: User | None) -> dict[str, str]:
    """The show's address as ``user`` shares it, one per channel."""
    link = sharing.share_link_get(show=show, user=user)
    base = request.build_absolute_uri(reverse("show_detail", args=[show.slug]))
    return {
        channel: f"{base}?{urlencode({'via': link.code, 'ch': channel})}"
        for channel in CHANNELS
    }


# --- The source in words ------------------------------------------------------


def label_of(key: str) -> str:
    """The source in words, in the current language."""
    kind = kind_of(key)
    rest = key.split(".", 1)[1] if "." in key else ""
    if kind == "share":
        return {
            "app": _("Shared from a phone's share menu"),
            "copy": _("Shared link (copied)"),
            "whatsapp": _("Shared on WhatsApp"),
            "telegram": _("Shared on Telegram"),
            "email": _("Shared by email"),
        }.get(rest, _("Shared link"))
    if kind == "embed":
        return _("Player embedded on %(host)s") % {"host": rest}
    if kind == "campaign":
        source, medium, campaign = [*rest.split("."), "-", "-", "-"][:3]
        return _("Campaign “%(campaign)s” (%(source)s, %(medium)s)") % {
            "campaign": campaign,
            "source": source,
            "medium": medium,
        }
    if kind == "referrer":
        return _("Link on %(domain)s") % {"domain": rest}
    if kind == "direct":
        return _("Direct (typed, bookmarked or unknown)")
    if kind == "replay":
        return _("Replay")
    if kind == "comment":
        return _("Claimed in the chat (comment to buy)")
    return _("Other sources")
