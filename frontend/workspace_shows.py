"""Scheduling and preparing shows in the workspace, ``/brand/<slug>/shows/``:
a new show on the brand's clock, a scheduled show's details and line-up
order, the stream key and WHIP address for OBS, and a new show from an old
one. The rules are ``shows.services.brand_shows``'s (owners and hosts)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from frontend import workspace
from frontend.forms import TEXT_ERRORS
from frontend.replay import clock
from frontend.workspace import workspace_page
from shows import replay
from shows.exceptions import ImageInvalid, InvalidInput
from shows.models import LineupItem, Product, Show
from shows.services import brand_shows, catalog
from shows.services.brand_shows import ShowInput, ShowInputError
from shows.services.workspace import Capability, Seat, require


class ShowForm(forms.Form):
    title = forms.CharField(
        label=gettext_lazy("Title"), max_length=200, error_messages=TEXT_ERRORS
    )
    day = forms.DateField(
        label=gettext_lazy("Day"),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        error_messages={**TEXT_ERRORS, "invalid": gettext_lazy("Enter a date.")},
    )
    at = forms.TimeField(
        label=gettext_lazy("Time"),
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        error_messages={**TEXT_ERRORS, "invalid": gettext_lazy("Enter a time.")},
    )
    description = forms.CharField(
        label=gettext_lazy("Description"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    access_code = forms.CharField(
        label=gettext_lazy("Access code"),
        required=False,
        max_length=64,
        help_text=gettext_lazy("Leave empty for a public show."),
    )
    products = forms.MultipleChoiceField(
        label=gettext_lazy("Line-up"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        error_messages={
            "invalid_choice": gettext_lazy("Choose products of this brand.")
        },
    )

    def __init__(self, *args: Any, products: list[Product], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["products"].choices = [(str(p.pk), p.name) for p in products]  # type: ignore[attr-defined]

    def show_input(self) -> ShowInput:
        data = self.cleaned_data
        return ShowInput(
            title=data["title"],
            day=data["day"],
            at=data["at"],
            description=data["description"],
            access_code=data["access_code"],
            product_ids=[int(pk) for pk in data["products"]],
        )


def parse_clock(value: str) -> int:
    """ "90", "1:30" or "1:02:03" as seconds; raises ``ValueError``."""
    parts = value.strip().split(":")
    if not 1 <= len(parts) <= 3 or not all(p.strip().isdigit() for p in parts):
        raise ValueError(value)
    numbers = [int(p) for p in parts]
    if any(n >= 60 for n in numbers[1:]):
        raise ValueError(value)
    seconds = 0
    for number in numbers:
        seconds = seconds * 60 + number
    return seconds


class ClockField(forms.CharField):
    """A moment of the recording as mm:ss (or h:mm:ss, or seconds)."""

    def clean(self, value: Any) -> int | None:
        text = super().clean(value)
        if not text:
            return None
        try:
            return parse_clock(text)
        except ValueError as exc:
            raise forms.ValidationError(
                _("Write a time as minutes:seconds, such as 1:30."), code="invalid"
            ) from exc


class ReplayForm(forms.Form):
    """The host's trim of the replay and its hidden chapters (docs/replay.md)."""

    start = ClockField(
        label=gettext_lazy("Replay starts at"),
        required=False,
        max_length=9,
        help_text=gettext_lazy("Minutes:seconds into the recording; empty: 0:00."),
    )
    end = ClockField(
        label=gettext_lazy("Replay ends at"),
        required=False,
        max_length=9,
        help_text=gettext_lazy("Empty: the end of the recording."),
    )
    hidden = forms.MultipleChoiceField(
        label=gettext_lazy("Hide these chapters"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    def __init__(
        self, *args: Any, chapters: list[replay.Chapter], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["hidden"].choices = [  # type: ignore[attr-defined]
            (str(c.pin_id), f"{clock(c.at)} {c.name}") for c in chapters
        ]

    def replay_input(self) -> brand_shows.ReplayInput:
        data = self.cleaned_data
        return brand_shows.ReplayInput(
            start=data["start"] or 0,
            end=data["end"],
            hidden_pin_ids=[int(pk) for pk in data["hidden"]],
        )


def _replay_initial(show: Show, chapters: list[replay.Chapter]) -> dict[str, Any]:
    end = show.replay_end_seconds
    return {
        "start": clock(show.replay_start_seconds),
        "end": "" if end is None else clock(end),
        "hidden": [str(c.pin_id) for c in chapters if c.hidden],
    }


def _replay_part(
    request: HttpRequest, seat: Seat, show: Show
) -> tuple[ReplayForm | None, int | None, bool]:
    """The replay's form for an ended show with a recording (else None), the
    recording's length when known, and whether a POST of it was saved."""
    if not replay.has_replay(show):
        return None, None, False
    duration = replay.recording_duration(show)
    # The chapters as the recording has them, untrimmed, so any can be hidden.
    chapters = replay.chapters(show, include_hidden=True, untrimmed=True)
    posted = request.method == "POST" and request.POST.get("action") == "replay"
    form = ReplayForm(
        request.POST if posted else None,
        initial=_replay_initial(show, chapters),
        chapters=chapters,
        prefix="replay",
    )
    if posted and form.is_valid():
        try:
            brand_shows.show_replay_update(
                user=seat.user,
                brand=seat.brand,
                show=show,
                data=form.replay_input(),
                duration=duration,
            )
        except ShowInputError as error:
            for field, message in error.fields.items():
                form.add_error(field if field in form.fields else None, message)
        except InvalidInput as error:
            form.add_error(None, error.message)
        else:
            return form, duration, True
    return form, duration, False


def _context(seat: Seat, **extra: Any) -> dict[str, Any]:
    return workspace._context(
        seat, "home", zone=brand_shows.brand_zone(seat.brand), **extra
    )


def _products(seat: Seat) -> list[Product]:
    return list(Product.objects.filter(brand=seat.brand).order_by("name"))


def _refusal_on(form: ShowForm, error: ShowInputError) -> None:
    for field, message in error.fields.items():
        form.add_error(field if field in form.fields else None, message)


@workspace_page
@require_http_methods(["GET", "POST"])
def show_new(request: HttpRequest, seat: Seat) -> HttpResponse:
    # The form itself is for those who may schedule (the service checks again).
    require(seat.user, seat.brand, Capability.SHOWS_MANAGE)
    products = _products(seat)
    form = ShowForm(request.POST or None, products=products)
    if request.method == "POST" and form.is_valid():
        try:
            show = brand_shows.show_schedule(
                user=seat.user, brand=seat.brand, data=form.show_input()
            )
        except ShowInputError as error:
            _refusal_on(form, error)
        else:
            messages.success(request, _("The show is scheduled."))
            return redirect("workspace_show", slug=seat.brand.slug, show_slug=show.slug)
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "frontend/workspace/show_new.html",
        _context(seat, form=form),
        status=status,
    )


@workspace_page
@require_http_methods(["GET", "POST"])
def show_page(request: HttpRequest, seat: Seat, show_slug: str) -> HttpResponse:
    show = brand_shows.brand_show(user=seat.user, brand=seat.brand, slug=show_slug)
    lineup = list(
        LineupItem.objects.filter(show=show)
        .select_related("product")
        .order_by("position", "id")
    )
    products = _products(seat)
    start = brand_shows.local_start(seat.brand, show)
    initial = {
        "title": show.title,
        "day": start.date(),
        "at": start.time().replace(second=0, microsecond=0, tzinfo=None),
        "description": show.description,
        "access_code": show.access_code,
        "products": [str(item.product_id) for item in lineup],
    }
    form = ShowForm(
        request.POST if request.method == "POST" else None,
        initial=initial,
        products=products,
    )
    status = 200
    cover_error = ""
    replay_form, duration, replay_saved = _replay_part(request, seat, show)
    if replay_saved:
        messages.success(request, _("The replay is saved."))
        return redirect("workspace_show", slug=seat.brand.slug, show_slug=show.slug)
    if request.method == "POST" and request.POST.get("action") == "replay":
        form = ShowForm(initial=initial, products=products)
        status = 400
    elif request.method == "POST" and request.POST.get("action") == "cover":
        upload = request.FILES.get("cover")
        if upload is None:
            cover_error = _("Choose an image file.")
        else:
            try:
                brand_shows.show_cover_set(
                    user=seat.user,
                    brand=seat.brand,
                    show=show,
                    upload=catalog.ImageUpload(file=upload, size=upload.size),
                )
            except ImageInvalid as error:
                cover_error = error.message
            else:
                messages.success(request, _("The cover is saved."))
                return redirect(
                    "workspace_show", slug=seat.brand.slug, show_slug=show.slug
                )
        form = ShowForm(initial=initial, products=products)
        status = 400
    elif request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                brand_shows.show_edit(
                    user=seat.user, brand=seat.brand, show=show, data=form.show_input()
                )
            except ShowInputError as error:
                _refusal_on(form, error)
            except InvalidInput as error:
                form.add_error(None, error.message)
            else:
                messages.success(request, _("Saved."))
                return redirect(
                    "workspace_show", slug=seat.brand.slug, show_slug=show.slug
                )
    whip = request.build_absolute_uri(reverse("live:whip", args=[show.slug]))
    return render(
        request,
        "frontend/workspace/show.html",
        _context(
            seat,
            show=show,
            form=form,
            lineup=lineup,
            start=start,
            editable=show.status == Show.Status.SCHEDULED,
            whip_url=whip,
            cover=show.cover_url,
            cover_error=cover_error,
            replay_form=replay_form,
            replay_duration=None if duration is None else clock(duration),
        ),
        status=status,
    )


@workspace_page
@require_POST
def show_action(request: HttpRequest, seat: Seat, show_slug: str) -> HttpResponse:
    """The line-up's up and down, the stream key's rotation, and Duplicate."""
    show = brand_shows.brand_show(user=seat.user, brand=seat.brand, slug=show_slug)
    action = request.POST.get("action", "")
    target = show
    if action in ("up", "down"):
        try:
            product_id = int(request.POST.get("product", ""))
        except ValueError:
            product_id = 0
        brand_shows.lineup_move(
            user=seat.user,
            brand=seat.brand,
            show=show,
            product_id=product_id,
            step=-1 if action == "up" else 1,
        )
        messages.success(request, _("Line-up order saved."))
    elif action == "rotate_key":
        brand_shows.stream_key_rotate(user=seat.user, brand=seat.brand, show=show)
        messages.success(
            request, _("New stream key: the old one no longer works in OBS.")
        )
    elif action == "duplicate":
        target = brand_shows.show_duplicate(user=seat.user, brand=seat.brand, show=show)
        messages.success(
            request, _("A new show is scheduled a week later: check and change it.")
        )
    else:
        messages.error(request, _("That is not something this page can do."))
    return redirect("workspace_show", slug=seat.brand.slug, show_slug=target.slug)
