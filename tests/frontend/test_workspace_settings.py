"""The brand's settings and audit in the workspace (owners only)."""

from __future__ import annotations

import pytest

from checkout.models import ShippingZone, TaxRate
from shows import services
from shows.models import AuditEntry, BlockedWord, Brand
from shows.services import brand_settings
from shows.services.workspace import NotAllowed

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner(make_user, brand):
    user = make_user("Olga Owner")
    services.membership_set(brand=brand, user=user, role="owner")
    return user


def test_an_owner_saves_the_brand_and_its_delivery_and_it_is_audited(
    client, brand, owner
):
    client.force_login(owner)
    url = f"/brand/{brand.slug}/settings/"
    assert client.get(url).status_code == 200
    saved = client.post(
        url,
        {
            "action": "brand",
            "name": "Acme Audio GmbH",
            "description": "Speakers.",
            "time_zone": "Europe/Vienna",
            "blocked_words": "spam\nscam\n",
        },
    )
    assert saved.status_code == 302
    brand.refresh_from_db()
    assert (brand.name, brand.time_zone, brand.prices_include_tax) == (
        "Acme Audio GmbH",
        "Europe/Vienna",
        False,
    )
    assert sorted(BlockedWord.objects.values_list("word", flat=True)) == [
        "scam",
        "spam",
    ]
    client.post(
        url,
        {
            "action": "zone",
            "zone_name": "DACH",
            "countries": "DE, AT CH",
            "rate": "4.90",
            "free_from": "100",
            "currency": "EUR",
        },
    )
    zone = ShippingZone.objects.get(brand=brand)
    assert (zone.rate_minor, zone.free_from_minor) == (490, 10000)
    assert zone.country_codes == {"DE", "AT", "CH"}
    client.post(url, {"action": "tax", "country": "at", "percent": "20"})
    assert TaxRate.objects.get(brand=brand, country="AT").rate_bp == 2000
    actions = set(AuditEntry.objects.values_list("action", flat=True))
    assert {"brand.settings", "brand.shipping", "brand.tax"} <= actions
    page = client.get(f"/brand/{brand.slug}/audit/").content.decode()
    assert "brand.shipping" in page
    assert "DACH" in page


def test_bad_settings_are_refused_next_to_the_field_and_nothing_changes(
    client, brand, owner
):
    client.force_login(owner)
    url = f"/brand/{brand.slug}/settings/"
    answer = client.post(
        url, {"action": "brand", "name": " ", "time_zone": "Mars/Base"}
    )
    assert answer.status_code == 400
    page = answer.content.decode()
    assert 'id="s-name-error"' in page
    assert 'id="s-zone-error"' in page
    brand.refresh_from_db()
    assert brand.name == "Acme Audio"
    bad_zone = client.post(
        url, {"action": "zone", "zone_name": "X", "countries": "", "rate": "abc"}
    )
    assert bad_zone.status_code == 400
    assert not ShippingZone.objects.exists()
    assert not AuditEntry.objects.exists()


def test_hosts_and_moderators_may_not_open_settings_or_audit(
    client, brand, host, moderator
):
    data = brand_settings.BrandInput(
        name="Taken", description="", time_zone="UTC", prices_include_tax=True
    )
    for user in (host, moderator):
        client.force_login(user)
        assert client.get(f"/brand/{brand.slug}/settings/").status_code == 403
        assert client.get(f"/brand/{brand.slug}/audit/").status_code == 403
        assert (
            client.post(
                f"/brand/{brand.slug}/settings/", {"action": "brand", "name": "X"}
            ).status_code
            == 403
        )
        with pytest.raises(NotAllowed):
            brand_settings.brand_settings_save(user=user, brand=brand, data=data)
    assert Brand.objects.get(pk=brand.pk).name == "Acme Audio"


def test_a_logo_is_checked_and_shown_on_the_brand_page(
    client, brand, owner, settings, tmp_path
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests.frontend.test_workspace_catalogue import png

    settings.MEDIA_ROOT = tmp_path
    client.force_login(owner)
    url = f"/brand/{brand.slug}/settings/"
    bad = client.post(
        url,
        {"action": "logo", "logo": SimpleUploadedFile("l.png", b"GIF89a", "image/png")},
    )
    assert bad.status_code == 400
    assert 'id="logo-error"' in bad.content.decode()
    good = client.post(
        url, {"action": "logo", "logo": SimpleUploadedFile("l.png", png(), "image/png")}
    )
    assert good.status_code == 302
    brand.refresh_from_db()
    assert brand.logo_url
    assert (
        f'src="{brand.logo_url}"'
        in client.get(f"/brands/{brand.slug}/").content.decode()
    )


def test_the_brand_colour_must_carry_white_text_and_reaches_its_pages(
    client, brand, owner, show
):
    client.force_login(owner)
    url = f"/brand/{brand.slug}/settings/"
    base = {"action": "brand", "name": "Acme Audio", "time_zone": "UTC"}
    pale = client.post(url, {**base, "accent_colour": "#ffeeaa"})
    assert pale.status_code == 400
    assert "Too light to read white text on" in pale.content.decode()
    assert client.post(url, {**base, "accent_colour": "red"}).status_code == 400
    brand.refresh_from_db()
    assert brand.accent_colour == ""
    assert "theme.css" not in client.get(f"/shows/{show.slug}/").content.decode()
    assert client.post(url, {**base, "accent_colour": "#0B5D1E"}).status_code == 302
    brand.refresh_from_db()
    assert brand.accent_colour == "#0b5d1e"
    page = client.get(f"/shows/{show.slug}/").content.decode()
    assert f"/brands/{brand.slug}/theme.css?c=0b5d1e" in page
    theme = client.get(f"/brands/{brand.slug}/theme.css")
    assert theme["Content-Type"].startswith("text/css")
    assert "--accent: #0b5d1e" in theme.content.decode()
    assert brand_settings.contrast_with_white("#0b5d1e") >= 4.5
