"""A brand's shows as its team runs them from the workspace: schedule one in
the brand's time zone, change it, order its line-up, read and rotate its
stream key for OBS, and start a new show from a past one.

Every function takes the acting user and checks the role policy first
(``require(..., SHOWS_MANAGE)``: owners and hosts); changes are written to
the brand's audit log. The lifecycle itself (going live, ending) stays in
``shows.services.lifecycle`` and the studio.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from shows import images
from shows.exceptions import InvalidInput, NotFound
from shows.models import Brand, LineupItem, Pin, Product, Show, User
from shows.services import audit, catalog, lifecycle, stream
from shows.services.workspace import Capability, require

TITLE_MAX = 200
CODE_MAX = 64


class ShowInputError(InvalidInput):
    """Input refused field by field: ``fields`` maps a form field to its
    message, for the form to show next to it."""

    code = "invalid_show"

    def __init__(self, fields: dict[str, str]) -> None:
        self.fields = fields
        super().__init__(next(iter(fields.values())))


@dataclass(frozen=True)
class ShowInput:
    title: str
    day: date
    at: time
    description: str = ""
    access_code: str = ""
    product_ids: Sequence[int] = ()


def brand_zone(brand: Brand) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(brand.time_zone or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def local_start(brand: Brand, show: Show) -> datetime:
    """The show's start on the brand's clock."""
    return show.scheduled_at.astimezone(brand_zone(brand))


def _checked(
    brand: Brand, data: ShowInput, *, now: datetime
) -> tuple[datetime, list[Product]]:
    errors: dict[str, str] = {}
    title = data.title.strip()
    if not title:
        errors["title"] = _("Give the show a title.")
    elif len(title) > TITLE_MAX:
        errors["title"] = _("At most %(limit)s characters.") % {"limit": TITLE_MAX}
    if len(data.access_code.strip()) > CODE_MAX:
        errors["access_code"] = _("At most %(limit)s characters.") % {"limit": CODE_MAX}
    starts = datetime.combine(data.day, data.at, tzinfo=brand_zone(brand))
    if starts <= now:
        errors["day"] = _("Choose a start in the future.")
    products = list(Product.objects.filter(brand=brand, pk__in=list(data.product_ids)))
    by_id = {product.pk: product for product in products}
    if len(by_id) != len(set(data.product_ids)):
        errors["products"] = _("Choose products of this brand.")
    if errors:
        raise ShowInputError(errors)
    # The order the member ticked them in.
    ordered = [by_id[pk] for pk in dict.fromkeys(data.product_ids)]
    return starts.astimezone(timezone.get_default_timezone()), ordered


def _free_slug(brand: Brand, title: str) -> str:
    base = slugify(f"{brand.slug}-{title}")[:70].strip("-") or brand.slug
    slug, number = base, 1
    while Show.objects.filter(slug=slug).exists():
        number += 1
        slug = f"{base}-{number}"
    return slug


def show_schedule(*, user: User, brand: Brand, data: ShowInput) -> Show:
    """Schedule a new show starting at ``data.day`` and ``data.at`` on the
    brand's clock, with its line-up in the order given. Raises
    ``ShowInputError`` (nothing is written then)."""
    require(user, brand, Capability.SHOWS_MANAGE)
    starts, products = _checked(brand, data, now=timezone.now())
    with transaction.atomic():
        show = lifecycle.show_create(
            brand=brand,
            slug=_free_slug(brand, data.title),
            title=data.title.strip(),
            description=data.description.strip(),
            scheduled_at=starts,
            products=products,
            access_code=data.access_code.strip(),
        )
        audit.audit_record(
            brand=brand,
            actor=user,
            action="show.schedule",
            target=show.title,
            after={"starts": starts.isoformat(), "slug": show.slug},
        )
    return show


def brand_show(*, user: User, brand: Brand, slug: str) -> Show:
    """One of the brand's shows; ``NotFound`` for any other."""
    require(user, brand, Capability.SHOWS_MANAGE)
    show = Show.objects.filter(brand=brand, slug=slug).first()
    if show is None:
        raise NotFound()
    return show


def show_edit(*, user: User, brand: Brand, show: Show, data: ShowInput) -> Show:
    """Change a show that has not started yet: title, start, description,
    access code and line-up. Raises ``ShowInputError`` or ``InvalidInput``
    (the show is live or over)."""
    require(user, brand, Capability.SHOWS_MANAGE)
    if show.brand_id != brand.pk:
        raise NotFound()
    if show.status != Show.Status.SCHEDULED:
        raise InvalidInput(_("Only a show that has not started can be changed."))
    starts, products = _checked(brand, data, now=timezone.now())
    before = {"title": show.title, "starts": show.scheduled_at.isoformat()}
    with transaction.atomic():
        changed = Show.objects.filter(pk=show.pk, status=Show.Status.SCHEDULED).update(
            title=data.title.strip(),
            description=data.description.strip(),
            scheduled_at=starts,
            access_code=data.access_code.strip(),
        )
        if not changed:
            raise InvalidInput(_("Only a show that has not started can be changed."))
        lifecycle.lineup_set(show=show, products=products)
        audit.audit_record(
            brand=brand,
            actor=user,
            action="show.edit",
            target=data.title.strip(),
            before=before,
            after={"title": data.title.strip(), "starts": starts.isoformat()},
        )
    show.refresh_from_db()
    return show


def lineup_move(
    *, user: User, brand: Brand, show: Show, product_id: int, step: int
) -> list[int]:
    """Move a product one place up (``step=-1``) or down (``+1``) in the
    line-up; returns the product ids in their new order. A move past either
    end changes nothing."""
    require(user, brand, Capability.SHOWS_MANAGE)
    if show.brand_id != brand.pk:
        raise NotFound()
    with transaction.atomic():
        items = list(
            LineupItem.objects.select_for_update()
            .filter(show=show)
            .order_by("position", "id")
        )
        ids = [item.product_id for item in items]
        if product_id not in ids or step not in (-1, 1):
            raise NotFound()
        index = ids.index(product_id)
        other = index + step
        if 0 <= other < len(ids):
            ids[index], ids[other] = ids[other], ids[index]
            for position, item in enumerate(
                sorted(items, key=lambda i: ids.index(i.product_id))
            ):
                if item.position != position:
                    LineupItem.objects.filter(pk=item.pk).update(position=position)
    return ids


def show_duplicate(*, user: User, brand: Brand, show: Show) -> Show:
    """A new scheduled show like ``show`` (title, description, access code,
    line-up in order), a week after it at the same time on the brand's clock,
    or the same time next week if that has passed."""
    require(user, brand, Capability.SHOWS_MANAGE)
    if show.brand_id != brand.pk:
        raise NotFound()
    zone = brand_zone(brand)
    start = show.scheduled_at.astimezone(zone) + timedelta(days=7)
    now = timezone.now().astimezone(zone)
    while start <= now:
        start += timedelta(days=7)
    product_ids = list(
        LineupItem.objects.filter(show=show)
        .order_by("position", "id")
        .values_list("product_id", flat=True)
    )
    data = ShowInput(
        title=show.title,
        day=start.date(),
        at=start.time().replace(tzinfo=None),
        description=show.description,
        access_code=show.access_code,
        product_ids=product_ids,
    )
    return show_schedule(user=user, brand=brand, data=data)


def stream_key_rotate(*, user: User, brand: Brand, show: Show) -> str:
    """A new stream key for OBS; the old one stops working at once."""
    require(user, brand, Capability.SHOWS_MANAGE)
    if show.brand_id != brand.pk:
        raise NotFound()
    key = stream.stream_key_rotate(show=show)
    audit.audit_record(
        brand=brand, actor=user, action="show.stream_key", target=show.title
    )
    return key


def show_cover_set(
    *, user: User, brand: Brand, show: Show, upload: catalog.ImageUpload
) -> Show:
    """Give the show a cover picture (checked and thumbnailed at upload, the
    old one deleted once the new one is saved). Raises ``ImageInvalid``."""
    require(user, brand, Capability.SHOWS_MANAGE)
    if show.brand_id != brand.pk:
        raise NotFound()
    replaced = images.image_store(
        show.cover,
        upload.file,
        size=upload.size,
        folder=f"{brand.pk}",
        kinds=("cover", "card"),
    )
    show.save(update_fields=["cover"])
    transaction.on_commit(lambda: images.image_forget(show.cover, replaced))
    audit.audit_record(brand=brand, actor=user, action="show.cover", target=show.title)
    return show


@dataclass(frozen=True)
class ReplayInput:
    """The host's trim of the replay, in seconds of the recording (``end``
    None: to its end), and the pins whose chapters are hidden."""

    start: int
    end: int | None
    hidden_pin_ids: Sequence[int] = ()


def show_replay_update(
    *,
    user: User,
    brand: Brand,
    show: Show,
    data: ReplayInput,
    duration: int | None = None,
) -> Show:
    """Trim the ended show's replay and hide chapters (docs/replay.md). The
    start comes before the end and both lie within the recording's
    ``duration`` in seconds when it is known. Raises ``ShowInputError`` with
    the ``start`` or ``end`` field's message, or ``InvalidInput`` (the show
    has not ended)."""
    require(user, brand, Capability.SHOWS_MANAGE)
    if show.brand_id != brand.pk:
        raise NotFound()
    if show.status != Show.Status.ENDED:
        raise InvalidInput(_("Only an ended show has a replay to trim."))
    errors: dict[str, str] = {}
    if data.start < 0:
        errors["start"] = _("The start cannot be before the recording.")
    elif duration is not None and data.start >= duration:
        errors["start"] = _("The start must be before the recording ends.")
    if data.end is not None:
        if duration is not None and data.end > duration:
            errors["end"] = _("The end cannot be after the recording ends.")
        elif data.end <= data.start:
            errors["end"] = _("The end must come after the start.")
    if errors:
        raise ShowInputError(errors)
    pins = Pin.objects.filter(show=show)
    hidden = sorted(
        set(pins.filter(pk__in=data.hidden_pin_ids).values_list("pk", flat=True))
    )
    before = {
        "start": show.replay_start_seconds,
        "end": show.replay_end_seconds,
        "hidden": sorted(
            pins.filter(hidden_in_replay=True).values_list("pk", flat=True)
        ),
    }
    with transaction.atomic():
        show.replay_start_seconds = data.start
        show.replay_end_seconds = data.end
        show.save(update_fields=["replay_start_seconds", "replay_end_seconds"])
        pins.update(hidden_in_replay=False)
        pins.filter(pk__in=hidden).update(hidden_in_replay=True)
        audit.audit_record(
            brand=brand,
            actor=user,
            action="show.replay",
            target=show.title,
            before=before,
            after={"start": data.start, "end": data.end, "hidden": hidden},
        )
    return show
