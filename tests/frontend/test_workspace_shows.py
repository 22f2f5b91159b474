"""Shows in the workspace (frontend/workspace_shows.py over
shows/services/brand_shows.py): scheduled on the brand's clock, errors next
to the field with nothing written, line-up order, the stream key for OBS, a
copy a week later, and who may do it."""

from __future__ import annotations

import zoneinfo
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from shows import services
from shows.exceptions import InvalidInput
from shows.models import AuditEntry, Brand, LineupItem, Show
from shows.services import brand_shows
from shows.services.workspace import NotAllowed

pytestmark = pytest.mark.django_db

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")


@pytest.fixture
def berlin_brand(brand):
    Brand.objects.filter(pk=brand.pk).update(time_zone="Europe/Berlin")
    brand.refresh_from_db()
    return brand


def next_week() -> datetime:
    return (timezone.now() + timedelta(days=7)).astimezone(BERLIN)


def test_a_host_schedules_a_show_on_the_brands_clock(
    client, berlin_brand, host, products
):
    day = next_week().date()
    client.force_login(host)
    answer = client.post(
        f"/brand/{berlin_brand.slug}/shows/new/",
        {
            "title": "Winter drop",
            "day": day.isoformat(),
            "at": "19:30",
            "description": "Coats.",
            "products": [products[2].pk, products[0].pk],
        },
    )
    assert answer.status_code == 302, answer.content.decode()[-2000:]
    show = Show.objects.get(title="Winter drop")
    assert show.scheduled_at == datetime(
        day.year, day.month, day.day, 19, 30, tzinfo=BERLIN
    )
    assert list(
        LineupItem.objects.filter(show=show)
        .order_by("position")
        .values_list("product_id", flat=True)
    ) == [products[2].pk, products[0].pk]
    page = client.get(answer["Location"]).content.decode()
    assert f"/live/{show.slug}/whip" in page
    assert show.stream_key in page
    assert "19:30 (Europe/Berlin)" in page
    assert AuditEntry.objects.get(action="show.schedule").actor == host


def test_bad_input_is_shown_next_to_its_field_and_nothing_is_written(
    client, berlin_brand, host, products
):
    client.force_login(host)
    past = (timezone.now() - timedelta(days=1)).astimezone(BERLIN).date()
    other = services.brand_create(name="Other", slug="other")
    foreign = services.product_create(brand=other, name="Foreign")
    answer = client.post(
        f"/brand/{berlin_brand.slug}/shows/new/",
        {"title": "", "day": past.isoformat(), "at": "25:00"},
    )
    assert answer.status_code == 400
    page = answer.content.decode()
    assert "This field is required." in page
    assert "Enter a time." in page
    answer = client.post(
        f"/brand/{berlin_brand.slug}/shows/new/",
        {"title": "Late", "day": past.isoformat(), "at": "10:00"},
    )
    assert "Choose a start in the future." in answer.content.decode()
    answer = client.post(
        f"/brand/{berlin_brand.slug}/shows/new/",
        {
            "title": "Mixed",
            "day": next_week().date().isoformat(),
            "at": "10:00",
            "products": [foreign.pk],
        },
    )
    assert answer.status_code == 400
    assert "Choose products of this brand." in answer.content.decode()
    assert not Show.objects.filter(title__in=["Late", "Mixed", ""]).exists()


def test_line_up_order_stream_key_and_a_copy_a_week_later(
    client, berlin_brand, host, show, products
):
    client.force_login(host)
    do = f"/brand/{berlin_brand.slug}/shows/{show.slug}/do/"

    def order() -> list[int]:
        return list(
            LineupItem.objects.filter(show=show)
            .order_by("position", "id")
            .values_list("product_id", flat=True)
        )

    first = order()
    client.post(do, {"action": "down", "product": first[0]})
    assert order() == [first[1], first[0], *first[2:]]
    client.post(do, {"action": "up", "product": first[0]})
    assert order() == first
    client.post(do, {"action": "up", "product": first[0]})  # already first
    assert order() == first
    old_key = show.stream_key
    client.post(do, {"action": "rotate_key"})
    show.refresh_from_db()
    assert show.stream_key != old_key
    copied = client.post(do, {"action": "duplicate"})
    copy = Show.objects.exclude(pk=show.pk).get(title=show.title)
    assert copied["Location"].endswith(f"/shows/{copy.slug}/")
    assert copy.scheduled_at.astimezone(BERLIN) == show.scheduled_at.astimezone(
        BERLIN
    ) + timedelta(days=7)
    assert (
        list(
            LineupItem.objects.filter(show=copy)
            .order_by("position")
            .values_list("product_id", flat=True)
        )
        == first
    )
    assert copy.stream_key != show.stream_key


def test_a_live_show_cannot_be_rescheduled_and_moderators_may_not_touch_shows(
    client, berlin_brand, host, moderator, show, products
):
    services.show_start(show=show)
    client.force_login(host)
    url = f"/brand/{berlin_brand.slug}/shows/{show.slug}/"
    page = client.get(url).content.decode()
    assert "Change the show" not in page
    data = brand_shows.ShowInput(
        title="Renamed", day=next_week().date(), at=next_week().time()
    )
    with pytest.raises(InvalidInput):
        brand_shows.show_edit(user=host, brand=berlin_brand, show=show, data=data)
    client.force_login(moderator)
    assert client.get(url).status_code == 403
    assert client.get(f"/brand/{berlin_brand.slug}/shows/new/").status_code == 403
    assert client.post(f"{url}do/", {"action": "rotate_key"}).status_code == 403
    with pytest.raises(NotAllowed):
        brand_shows.show_schedule(user=moderator, brand=berlin_brand, data=data)
    show.refresh_from_db()
    assert show.title == "Launch night"


def test_a_cover_picture_is_checked_stored_and_shown_on_the_home_card(
    client, berlin_brand, host, show, settings, tmp_path
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests.frontend.test_workspace_catalogue import png

    settings.MEDIA_ROOT = tmp_path
    client.force_login(host)
    url = f"/brand/{berlin_brand.slug}/shows/{show.slug}/"
    refused = client.post(
        url,
        {
            "action": "cover",
            "cover": SimpleUploadedFile("x.png", b"not an image", "image/png"),
        },
    )
    assert refused.status_code == 400
    assert 'id="cover-error"' in refused.content.decode()
    show.refresh_from_db()
    assert not show.cover
    saved = client.post(
        url,
        {
            "action": "cover",
            "cover": SimpleUploadedFile("c.png", png((1280, 720)), "image/png"),
        },
    )
    assert saved.status_code == 302
    show.refresh_from_db()
    assert show.cover.name.startswith(f"covers/{berlin_brand.pk}/")
    assert show.cover_url
    home = client.get("/").content.decode()
    assert f'src="{show.cover_url}"' in home
    page = client.get(f"/shows/{show.slug}/").content.decode()
    assert 'property="og:image"' in page
    assert AuditEntry.objects.filter(action="show.cover").exists()
