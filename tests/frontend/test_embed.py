"""The embedded show (frontend/embed.py, docs/embed.md): which origins may
frame it, the loader, and the guest token that stands in for cookies."""

from __future__ import annotations

import json
import re
import time

import pytest
from channels.testing import WebsocketCommunicator
from django.core import signing
from django.core.exceptions import ValidationError
from django.test import Client, RequestFactory
from django.utils import timezone

from checkout.models import Order
from frontend import embed
from shows import services
from shows.models import AuditEntry, Brand
from shows.origins import parse_origins
from shows.services import brand_settings
from shows.services.workspace import NotAllowed
from tests.checkout.conftest import new_key

pytestmark = pytest.mark.django_db

SHOP = "http://127.0.0.2:8001"


@pytest.fixture
def owner(make_user, brand):
    user = make_user("Olga Owner")
    services.membership_set(brand=brand, user=user, role="owner")
    return user


@pytest.fixture
def allowed(brand):
    Brand.objects.filter(pk=brand.pk).update(
        embed_origins=[SHOP, "https://shop.example"]
    )
    brand.refresh_from_db()
    return brand


@pytest.fixture
def pinned(live_show, products, host):
    """The live show with "Desk Mic" (10 in stock, €89.00) pinned."""
    from shows.services import room

    room.product_pin(show=live_show, actor=host, product_id=products[1].pk)
    return live_show


@pytest.fixture
def mic(products):
    return products[1].variants.get()


@pytest.fixture
def viewer(make_user):
    return make_user("Vera Viewer")


def _directives(header: str) -> dict[str, list[str]]:
    parts = (part.split() for part in header.split(";"))
    return {words[0]: words[1:] for words in parts if words}


def _token(response) -> str:
    found = re.search(
        rb'<meta name="showfloor-embed" content="([^"]+)">', response.content
    )
    assert found, "no embed token on the page"
    return found.group(1).decode()


def _buy(client, slug, variant, token, **headers):
    return client.post(
        f"/api/shows/{slug}/orders",
        data=json.dumps({"variant_id": variant.pk, "email": "e@example.test"}),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=new_key(),
        **({"HTTP_X_SHOWFLOOR_EMBED": token} if token is not None else {}),
        **headers,
    )


# --- Allowed origins -------------------------------------------------------


def test_origins_are_bare_scheme_host_and_port_written_one_way():
    assert parse_origins(
        "https://Shop.Example/\n\nhttp://127.0.0.2:8001\nhttps://shop.example:443\n"
    ) == ["https://shop.example", "http://127.0.0.2:8001"]
    for bad in (
        "https://shop.example/embed",
        "https://*.shop.example",
        "*",
        "shop.example",
        "ftp://shop.example",
        "https://user@shop.example",
        "https://shop.example?x=1",
        "javascript:alert(1)",
        "https://sh op.example",
    ):
        with pytest.raises(ValidationError):
            parse_origins(bad)


def test_the_model_keeps_only_canonical_origins(brand):
    brand.embed_origins = ["https://shop.example"]
    brand.full_clean()
    for bad in (["https://Shop.example/"], ["https://*.example"], "https://x.example"):
        brand.embed_origins = bad
        with pytest.raises(ValidationError):
            brand.full_clean()


def test_the_owner_sets_the_origins_on_the_settings_page_and_it_is_audited(
    client, brand, owner
):
    client.force_login(owner)
    url = f"/brand/{brand.slug}/settings/"
    page = client.get(url)
    assert b'name="embed_origins"' in page.content
    assert b"/embed.js" in page.content  # the line to copy
    saved = client.post(
        url, {"action": "embed", "embed_origins": "https://shop.example/\n"}
    )
    assert saved.status_code == 302
    brand.refresh_from_db()
    assert brand.embed_origins == ["https://shop.example"]
    entry = AuditEntry.objects.get(action="brand.embed_origins")
    assert entry.actor == owner
    assert entry.detail["after"] == {"embed_origins": ["https://shop.example"]}

    refused = client.post(
        url,
        {"action": "embed", "embed_origins": "https://ok.example\nhttps://*.evil"},
    )
    assert refused.status_code == 400
    assert "https://*.evil" in refused.content.decode()
    brand.refresh_from_db()
    assert brand.embed_origins == ["https://shop.example"]  # nothing saved


def test_only_owners_set_the_origins(brand, host):
    with pytest.raises(NotAllowed):
        brand_settings.brand_embed_origins_set(
            user=host, brand=brand, text="https://shop.example"
        )


# --- The framed page -------------------------------------------------------


def test_the_embed_page_may_be_framed_by_the_brands_origins_only(
    client, allowed, live_show
):
    answer = client.get(f"/embed/{live_show.slug}/?host={SHOP}")
    assert answer.status_code == 200
    policy = _directives(answer.headers["Content-Security-Policy"])
    assert policy["frame-ancestors"] == [SHOP, "https://shop.example"]
    assert "X-Frame-Options" not in answer.headers
    # The rest of the policy is the site's.
    assert policy["script-src"][0] == "'self'"
    assert "'unsafe-inline'" not in answer.headers["Content-Security-Policy"]
    assert "no-store" in answer.headers["Cache-Control"]
    # The guest is the token's: no session cookie is set for it.
    assert "sessionid" not in answer.cookies
    config = re.search(
        rb'<script id="embed-config" type="application/json">(.*?)</script>',
        answer.content,
    )
    assert config
    assert json.loads(config.group(1))["parent"] == SHOP
    # The show page itself still refuses every frame.
    page = client.get(f"/shows/{live_show.slug}/")
    assert _directives(page.headers["Content-Security-Policy"])["frame-ancestors"] == [
        "'none'"
    ]
    assert page.headers["X-Frame-Options"] == "DENY"
    assert b"embed-frame.js" not in page.content


def test_a_brand_with_no_origins_is_framed_by_no_one(client, live_show):
    answer = client.get(f"/embed/{live_show.slug}/")
    assert _directives(answer.headers["Content-Security-Policy"])[
        "frame-ancestors"
    ] == ["'none'"]


def test_a_host_the_brand_does_not_list_gets_no_messages(client, allowed, live_show):
    answer = client.get(f"/embed/{live_show.slug}/?host=https://evil.example")
    config = re.search(
        rb'<script id="embed-config" type="application/json">(.*?)</script>',
        answer.content,
    )
    assert config
    assert json.loads(config.group(1))["parent"] == ""


def test_the_loader_is_cacheable_javascript(client):
    answer = client.get("/embed.js")
    assert answer.status_code == 200
    assert answer["Content-Type"].startswith("text/javascript")
    assert "public" in answer["Cache-Control"]
    assert answer["Cross-Origin-Resource-Policy"] == "cross-origin"
    assert b"/embed/" in answer.content
    again = client.get("/embed.js", HTTP_IF_NONE_MATCH=answer["ETag"])
    assert again.status_code == 304


# --- The token -------------------------------------------------------------


def test_a_guest_buys_with_the_token_and_no_cookie_or_csrf(
    stripe_settings, allowed, pinned, mic
):
    page = Client().get(f"/embed/{pinned.slug}/?host={SHOP}")
    token = _token(page)
    claims = embed.token_read(token)
    assert claims is not None
    assert claims.host == "127.0.0.2:8001"
    buyer = Client(enforce_csrf_checks=True)  # no cookies, no CSRF token
    answer = _buy(buyer, pinned.slug, mic, token)
    assert answer.status_code == 201, answer.content
    order = Order.objects.get(public_id=answer.json()["id"])
    assert order.session_key == claims.session_key
    assert order.buyer is None
    # Attributed to the page that framed it (shows/attribution.py).
    assert order.source == "embed.127.0.0.2"
    assert "sessionid" not in answer.cookies
    # The same guest reads its order back with the token.
    read = buyer.get(f"/api/orders/{order.public_id}", HTTP_X_SHOWFLOOR_EMBED=token)
    assert read.status_code == 200
    # Without the token there is no guest, and no CSRF token either.
    assert _buy(buyer, pinned.slug, mic, None).status_code == 403

    # The signed link to the order (the email's), for this guest only.
    link_path = f"/api/embed/orders/{order.public_id}/link"
    link = buyer.get(link_path, HTTP_X_SHOWFLOOR_EMBED=token)
    assert link.status_code == 200
    assert link.json()["url"].startswith("/orders/link/")
    assert Client().get(link.json()["url"]).status_code == 200
    other_guest = _token(Client().get(f"/embed/{pinned.slug}/?host={SHOP}"))
    assert buyer.get(link_path, HTTP_X_SHOWFLOOR_EMBED=other_guest).status_code == 404
    assert buyer.get(link_path).status_code == 404


def test_a_forged_expired_or_foreign_token_is_refused(
    stripe_settings, allowed, pinned, mic, monkeypatch, make_user, brand
):
    token = _token(Client().get(f"/embed/{pinned.slug}/?host={SHOP}"))
    forged = token[:-3] + ("aaa" if not token.endswith("aaa") else "bbb")
    made_up = signing.dumps(
        {"k": "x" * 32, "s": pinned.slug, "o": SHOP}, salt="another.salt"
    )
    client = Client(enforce_csrf_checks=True)
    for bad in (forged, made_up, "nonsense"):
        answer = _buy(client, pinned.slug, mic, bad)
        assert answer.status_code == 401, bad
        assert answer.json()["code"] == "embed_token"
    # Seven hours old: past EMBED_TOKEN_MAX_AGE.
    real_time = time.time
    monkeypatch.setattr("django.core.signing.time.time", lambda: real_time() - 7 * 3600)
    old = embed.token_mint(session_key="k" * 32, show=pinned, origin=SHOP)
    monkeypatch.setattr("django.core.signing.time.time", real_time)
    assert embed.token_read(old) is None
    assert _buy(client, pinned.slug, mic, old).status_code == 401
    # A token of one show does not buy in another.
    other = services.show_create(
        brand=brand, title="Other", slug="other-show", scheduled_at=timezone.now()
    )
    assert _buy(client, other.slug, mic, token).status_code == 401
    assert not Order.objects.exists()


def test_the_token_guest_is_never_the_signed_in_user(
    stripe_settings, allowed, pinned, mic, viewer
):
    token = _token(Client().get(f"/embed/{pinned.slug}/?host={SHOP}"))
    client = Client()
    client.force_login(viewer)
    answer = _buy(client, pinned.slug, mic, token)
    assert answer.status_code == 201, answer.content
    assert Order.objects.get().buyer is None


def test_requests_with_the_token_name_the_framing_host(viewer):
    seen = {}

    def view(request):
        seen["host"] = getattr(request, "embed_host", None)
        seen["user"] = request.user
        from django.http import HttpResponse

        return HttpResponse()

    store = embed._session_store()
    store.create()
    show = type("S", (), {"slug": "s1"})()
    token = embed.token_mint(session_key=str(store.session_key), show=show, origin=SHOP)
    request = RequestFactory().get("/api/shows/s1/bag", HTTP_X_SHOWFLOOR_EMBED=token)
    request.session = embed._session_store()
    request.user = viewer  # signed in by cookie: the token wins
    embed.EmbedTokenMiddleware(view)(request)
    assert seen["host"] == "127.0.0.2:8001"
    assert not seen["user"].is_authenticated


@pytest.mark.django_db(transaction=True)
async def test_the_socket_takes_the_token_and_refuses_a_bad_one(live_show):
    from channels.db import database_sync_to_async

    from config.asgi import application
    from live.hub import get_hub

    page = await database_sync_to_async(Client().get)(f"/embed/{live_show.slug}/")
    token = _token(page)
    headers = [(b"origin", b"http://testserver")]
    good = WebsocketCommunicator(
        application, f"/ws/shows/{live_show.slug}/?embed={token}", headers=headers
    )
    connected, _ = await good.connect(timeout=5)
    assert connected
    frame = json.loads(await good.receive_from(timeout=5))
    assert frame[0]["type"] == "snapshot"
    await good.disconnect()
    bad = WebsocketCommunicator(
        application, f"/ws/shows/{live_show.slug}/?embed=forged", headers=headers
    )
    connected, _ = await bad.connect(timeout=5)
    assert connected  # accepted, then closed: browsers retry refused handshakes
    closed = await bad.receive_output(timeout=5)
    assert closed == {"type": "websocket.close", "code": 4003}
    # A page on another origin still cannot open the socket.
    foreign = WebsocketCommunicator(
        application,
        f"/ws/shows/{live_show.slug}/?embed={token}",
        headers=[(b"origin", b"http://127.0.0.2:8001")],
    )
    connected, _ = await foreign.connect(timeout=5)
    assert not connected
    await get_hub().stop()


def test_a_private_show_is_not_embedded(client, private_live_show):
    Brand.objects.filter(pk=private_live_show.brand_id).update(embed_origins=[SHOP])
    answer = client.get(f"/embed/{private_live_show.slug}/?host={SHOP}")
    assert answer.status_code == 404
    assert b"showfloor-embed" not in answer.content
    # Said in the brand's frame, not refused by the browser.
    assert _directives(answer.headers["Content-Security-Policy"])[
        "frame-ancestors"
    ] == [SHOP]


def test_a_view_of_the_embed_is_a_visit_from_the_framing_site(
    client, allowed, live_show
):
    from checkout.traffic import traffic_sources
    from realtime import counting

    client.get(f"/embed/{live_show.slug}/?host={SHOP}")
    counting.flush()
    sources = {source.key: source for source in traffic_sources(live_show)}
    assert sources["embed.127.0.0.2"].visits == 1
