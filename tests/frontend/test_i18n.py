"""Languages: complete catalogues that match the code, pages and answers in the
viewer's language, prices and dates formatted for it with Babel."""

from __future__ import annotations

import gettext
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import translation

from checkout.exceptions import EmailRequired, SoldOut
from frontend.templatetags.dates import format_datetime
from frontend.templatetags.money import format_money
from shows import services
from shows.exceptions import LoginRequired

ROOT = Path(__file__).resolve().parents[2]
LANGUAGES = ["en", "de", "fr", "fy"]
PLACEHOLDER = re.compile(r"%%\(\w+\)[sdi]|%\(\w+\)[sdi]|%%|%[sdi]")
TAG = re.compile(r"<[^>]+>")
IGNORED = [".venv", "venv", "tests", "bench", "var", "node_modules"]


def catalogue(language: str) -> Catalog:
    with (ROOT / "locale" / language / "LC_MESSAGES" / "django.po").open("rb") as f:
        return read_po(f, locale=language)


def forms(value: Any) -> tuple[str, ...]:
    """A message's id or string as a tuple (one item unless plural)."""
    return tuple(value) if isinstance(value, list | tuple) else (value or "",)


def key(message: Any) -> tuple[str | None, str]:
    return message.context, forms(message.id)[0]


# --- The catalogues -----------------------------------------------------------


def test_the_settings_offer_the_four_languages():
    """English, German, French and West Frisian, from ``locale/``."""
    assert [code for code, _ in settings.LANGUAGES] == LANGUAGES
    assert Path(settings.LOCALE_PATHS[0]) == ROOT / "locale"


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_message_is_translated_with_its_placeholders(language):
    """No untranslated or fuzzy entry; every translation keeps the message's
    placeholders and HTML tags; plurals have the language's number of forms."""
    catalog = catalogue(language)
    assert not catalog.fuzzy
    assert catalog.num_plurals == 2
    checked = 0
    for message in catalog:
        if not message.id:
            continue
        assert not message.fuzzy, message.id
        ids, strings = forms(message.id), forms(message.string)
        assert len(strings) == (catalog.num_plurals if len(ids) > 1 else 1)
        for index, string in enumerate(strings):
            assert string, f"untranslated in {language}: {message.id!r}"
            source = ids[min(index, len(ids) - 1)]
            assert Counter(PLACEHOLDER.findall(string)) == Counter(
                PLACEHOLDER.findall(source)
            ), (language, source, string)
            assert sorted(TAG.findall(string)) == sorted(TAG.findall(source))
        checked += 1
    assert checked > 300
    assert not list(catalog.obsolete)


def test_the_catalogues_hold_the_same_messages():
    """Each language translates the same set of messages."""
    keys = {
        language: {key(m) for m in catalogue(language) if m.id}
        for language in LANGUAGES
    }
    assert keys["de"] == keys["en"] == keys["fr"] == keys["fy"]


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_compiled_catalogue_matches_its_source(language):
    """The committed ``.mo`` says exactly what the ``.po`` says (a fresh clone
    needs no gettext tools to run)."""
    expected: dict[Any, str] = {}
    for message in catalogue(language):
        if not message.id:
            continue
        prefix = f"{message.context}\x04" if message.context else ""
        ids, strings = forms(message.id), forms(message.string)
        if len(ids) > 1:
            for index, form in enumerate(strings):
                expected[(prefix + ids[0], index)] = form
        else:
            expected[prefix + ids[0]] = strings[0]
    mo = ROOT / "locale" / language / "LC_MESSAGES" / "django.mo"
    with mo.open("rb") as f:
        compiled = dict(gettext.GNUTranslations(f)._catalog)  # type: ignore[attr-defined]
    compiled.pop("", None)
    assert compiled == expected


def test_the_catalogue_covers_the_code(tmp_path):
    """``makemessages`` over a copy of the code finds no message the catalogue
    lacks and none it keeps for nothing."""
    if not shutil.which("xgettext"):
        if os.environ.get("CI"):
            pytest.fail("CI needs GNU gettext (xgettext) to check the catalogue")
        pytest.skip("GNU gettext (xgettext) is not installed")
    # The code that ships (pyproject's packages), the catalogues, manage.py.
    with (ROOT / "pyproject.toml").open("rb") as f:
        shipped = tomllib.load(f)["tool"]["setuptools"]["packages"]["find"]["include"]
    copy = tmp_path / "src"
    copy.mkdir()
    for pattern in shipped:
        for package in ROOT.glob(pattern.rstrip("*")):
            shutil.copytree(
                package,
                copy / package.name,
                ignore=shutil.ignore_patterns("__pycache__", "static", "migrations"),
            )
    shutil.copytree(ROOT / "locale", copy / "locale")
    shutil.copy(ROOT / "manage.py", copy)
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"}
    subprocess.run(
        [sys.executable, "manage.py", "makemessages", "-l", "de"]
        + [f"--ignore={name}" for name in IGNORED],
        cwd=copy,
        env=environment,
        check=True,
        capture_output=True,
        timeout=120,
    )
    with (copy / "locale/de/LC_MESSAGES/django.po").open("rb") as f:
        fresh = read_po(f, locale="de")
    current = {key(m) for m in fresh if m.id}
    assert current - {key(m) for m in catalogue("de") if m.id} == set()
    assert [m.id for m in fresh.obsolete.values()] == []
    untranslated = [m.id for m in fresh if m.id and not all(forms(m.string))]
    assert untranslated == []


def test_scripts_take_their_words_from_the_page():
    """No script translates for itself: its words come from the templates'
    JSON blocks, so there is no ``djangojs`` catalogue to keep."""
    for script in (ROOT / "frontend/static/frontend").glob("*.js"):
        text = script.read_text()
        assert not re.search(r"\b(n|p|np)?gettext\(|\binterpolate\(", text), script


# --- Pages -------------------------------------------------------------------

EXPECTED = {
    "en": ("In this show", "Sold out", "€1,234.50", "€149.00"),
    "de": ("In dieser Show", "Ausverkauft", "1.234,50\xa0€", "149,00\xa0€"),
    "fr": ("Dans cette émission", "Épuisé", "1\u202f234,50\xa0€", "149,00\xa0€"),
    "fy": ("Yn dizze show", "Útferkocht", "€\xa01.234,50", "€\xa0149,00"),
}


@pytest.fixture
def priced_show(show, products):
    """The scheduled show with a four-figure price in its line-up."""
    services.variant_create(
        product=products[0],
        sku="SKU-BIG",
        name="Deluxe",
        price_minor=123450,
        currency="EUR",
        stock_available=3,
    )
    return show


def json_block(html: str, element_id: str) -> Any:
    match = re.search(
        rf'<script id="{element_id}" type="application/json">(.*?)</script>',
        html,
        re.S,
    )
    assert match, element_id
    return json.loads(match.group(1))


@pytest.mark.django_db
@pytest.mark.parametrize("language", LANGUAGES)
def test_the_show_page_follows_the_browsers_language(client, priced_show, language):
    """Accept-Language picks the page's language: its words, its prices and
    its start date (Babel), the countdown's words and the scripts' formats."""
    html = client.get(
        reverse("show_detail", args=[priced_show.slug]),
        HTTP_ACCEPT_LANGUAGE=f"{language},en;q=0.5",
    ).content.decode()
    heading, sold_out, big, small = EXPECTED[language]
    assert f'<html lang="{language}">' in html
    assert heading in html
    assert sold_out in html
    assert big in html
    assert small in html
    assert big == format_money(123450, "EUR", language)
    assert format_datetime(priced_show.scheduled_at, language) in html
    with translation.override(language):
        countdown = json_block(html, "countdown-i18n")
        assert countdown["startsIn"] == translation.gettext("Starts in %(time)s")
        assert countdown["h"] == translation.pgettext("hours", "h")
    money = json_block(html, "money-format")["EUR"]
    assert money["digits"] == 2
    assert money["decimal"] == ("." if language == "en" else ",")


@pytest.mark.django_db
def test_dates_and_words_differ_by_language(priced_show):
    """The start date is written the language's way, not only translated."""
    when = priced_show.scheduled_at
    written = {language: format_datetime(when, language) for language in LANGUAGES}
    assert len(set(written.values())) == 4
    assert str(when.year) in written["fy"]


@pytest.mark.django_db
def test_the_language_switcher_sets_the_language_and_keeps_the_page(priced_show):
    """The header's switcher posts to ``set_language`` with a CSRF token and the
    current page; the choice then wins over the browser's language."""
    client = Client(enforce_csrf_checks=True)
    url = reverse("show_detail", args=[priced_show.slug])
    html = client.get(url, HTTP_ACCEPT_LANGUAGE="de").content.decode()
    header = html.split('<header class="site-header">', 1)[1].split("</header>")[0]
    assert f'action="{reverse("set_language")}"' in header
    assert f'<input name="next" type="hidden" value="{url}">' in header
    assert '<label for="language-select">' in header
    assert '<option value="fy" lang="fy">Frysk</option>' in header
    assert '<option value="de" lang="de" selected>Deutsch</option>' in header
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', header)
    assert token
    refused = client.post(reverse("set_language"), {"language": "fy", "next": url})
    assert refused.status_code == 403
    switched = client.post(
        reverse("set_language"),
        {"language": "fy", "next": url, "csrfmiddlewaretoken": token.group(1)},
    )
    assert switched.status_code == 302
    assert switched["Location"] == url
    again = client.get(url, HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert '<html lang="fy">' in again
    assert "Yn dizze show" in again
    assert "€\xa01.234,50" in again


# --- Answers of the API and the room socket ------------------------------------


def order(client: Client, slug: str, body: dict[str, Any], **headers: str) -> Any:
    return client.post(
        f"/api/shows/{slug}/orders",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="i18n-test-key-0001",
        **headers,
    )


@pytest.fixture
def pinned_show(live_show, products, host):
    from shows.services import room

    room.product_pin(show=live_show, actor=host, product_id=products[2].pk)
    return live_show


@pytest.mark.django_db
def test_order_refusals_speak_the_buyers_language(settings, pinned_show, products):
    """A sold-out answer and a validation answer come back in German and
    French, with their stable codes."""
    settings.SHOWFLOOR_RESERVATIONS_PER_MINUTE = 0
    cable = products[2].variants.get()  # none in stock
    sold_out = order(
        Client(),
        pinned_show.slug,
        {"variant_id": cable.pk, "email": "g@example.test"},
        HTTP_ACCEPT_LANGUAGE="de",
    )
    assert sold_out.status_code == 409
    assert sold_out.json() == {
        "code": "sold_out",
        "message": "Ausverkauft: Alle Stück sind verkauft oder von anderen "
        "Käufern reserviert.",
    }
    with translation.override("de"):
        assert sold_out.json()["message"] == str(SoldOut.default_message)
    no_email = order(
        Client(),
        pinned_show.slug,
        {"variant_id": cable.pk},
        HTTP_ACCEPT_LANGUAGE="fr-CH, fr;q=0.9",
    )
    assert no_email.status_code == 400
    assert no_email.json()["code"] == "email_required"
    with translation.override("fr"):
        assert no_email.json()["message"] == str(EmailRequired.default_message)
    assert no_email.json()["message"].startswith("Saisissez votre adresse e-mail")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([(b"accept-language", b"de-DE,de;q=0.9,en;q=0.5")], "de"),
        ([(b"accept-language", b"de"), (b"cookie", b"django_language=fy")], "fy"),
        ([], "en"),
    ],
)
async def test_room_errors_speak_the_viewers_language(live_show, headers, expected):
    """The room socket's error frames follow the language cookie, else the
    browser's Accept-Language."""
    from config.asgi import application
    from live.hub import get_hub

    communicator = WebsocketCommunicator(
        application,
        f"/ws/shows/{live_show.slug}/",
        headers=[(b"origin", b"http://testserver"), *headers],
    )
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    try:
        snapshot = json.loads(await communicator.receive_from(timeout=5))
        assert snapshot[0]["type"] == "snapshot"
        await communicator.send_json_to({"type": "chat.send", "text": "hoi", "ref": 1})
        error: dict[str, Any] = {}
        while error.get("ref") != 1:
            frame = json.loads(await communicator.receive_from(timeout=5))
            error = next((e for e in frame if e.get("type") == "error"), error)
    finally:
        await communicator.disconnect()
        await get_hub().stop()
    assert error["code"] == "login_required"
    with translation.override(expected):
        assert error["message"] == str(LoginRequired.default_message)
    english = "Sign up or log in to take part."
    assert (error["message"] == english) == (expected == "en")


# --- In the browser ------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.slow
def test_scripts_format_prices_and_counts_like_the_server(
    asgi_server, browser, priced_show, live_show, products, host
):
    """A Frisian browser (which ``Intl`` formats as US English) gets the pinned
    card's prices as Babel writes them, and the room's counts in Frisian."""
    from shows.services import room

    room.product_pin(show=live_show, actor=host, product_id=products[0].pk)
    context = browser.new_context(locale="fy", viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        page.goto(f"{asgi_server}/shows/{live_show.slug}/")
        assert page.locator("html").get_attribute("lang") == "fy"
        card = page.locator(".room-pin")
        card.wait_for()
        options = card.locator("option").all_inner_texts()
        assert f"Deluxe · {format_money(123450, 'EUR', 'fy')}" in options
        assert f"Standard · {format_money(14900, 'EUR', 'fy')}" in options
        amounts = [0, 5, 99900, 123450, 100000000]
        written = page.evaluate(
            """async (amounts) => {
                const { formatPrice } = await import("/static/frontend/room.js");
                return amounts.map((minor) => formatPrice(minor, "EUR"));
            }""",
            amounts,
        )
        assert written == [format_money(a, "EUR", "fy") for a in amounts]
        page.wait_for_function(
            "document.getElementById('room-viewers').textContent === '1 sjocht ta'"
        )
    finally:
        context.close()


@pytest.mark.django_db
def test_form_errors_speak_frisian_where_django_does_not(client, make_user):
    """Log-in and sign-up errors, including Django's own form and password
    messages (Django's Frisian catalogue is nearly empty), come from ours."""
    make_user(email="fenna@example.test", password="right-password-1")
    login = client.post(
        reverse("login"),
        {"username": "fenna@example.test", "password": "wrong"},
        HTTP_ACCEPT_LANGUAGE="fy",
    ).content.decode()
    assert "Fier in korrekt e-mailadres en wachtwurd yn." in login
    assert "Wachtwurd" in login
    signup = client.post(
        reverse("signup"),
        {"email": "", "display_name": "Fenna", "password": "12345678"},
        HTTP_ACCEPT_LANGUAGE="fy",
    ).content.decode()
    assert "Dit fjild is ferplichte." in signup
    weak = client.post(
        reverse("signup"),
        {"email": "new@example.test", "display_name": "Fenna", "password": "12345678"},
        HTTP_ACCEPT_LANGUAGE="fy",
    ).content.decode()
    assert "Dit wachtwurd bestiet allinnich út sifers." in weak
    assert "entirely numeric" not in weak
