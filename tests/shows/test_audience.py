"""Bringing the audience back (shows/services/audience.py, shows/notices.py,
frontend/audience.py): follow, "Remind me" with a guest's confirmation, the
"starting soon" and "live now" emails once per person even when the worker
dies mid-batch, one-click unsubscribe, and the calendar file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core import mail
from django.db import connection
from django.test import Client
from django.utils import timezone
from icalendar import Calendar

from shows import notices, services
from shows.models import Follow, Notice, Reminder, Show
from shows.services import audience
from tests.checkout.conftest import run_tasks  # noqa: F401
from tests.conftest import ROOT

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def outbox(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    mail.outbox = []
    return mail.outbox


def fresh(name: str) -> str:
    """An address no earlier run has used."""
    return f"{name}-{uuid.uuid4().hex[:8]}@example.test"


def addressed(messages) -> list[str]:
    return sorted(address for message in messages for address in message.to)


def guest_confirms(client: Client, outbox, address: str) -> None:
    (message,) = [m for m in outbox if address in m.to]
    link = next(line for line in message.body.splitlines() if "/confirm/" in line)
    path = link[link.index("/reminders/") :].strip()
    assert "Confirm the reminder" in client.get(path).content.decode()
    assert not Reminder.objects.get(email=address).confirmed_at, "GET confirms nothing"
    page = client.post(path)
    assert page.status_code == 200
    assert "Reminder confirmed" in page.content.decode()


def test_live_now_reaches_the_reminded_and_followers_once_each(
    show,
    brand,
    make_user,
    outbox,
    run_tasks,  # noqa: F811
):
    """Going live emails everyone who asked (a guest only once confirmed) and
    the brand's followers, one email per address, in their language, with
    one-click unsubscribe headers; running the batch again sends nothing."""
    ann = make_user("Ann", email="ann@example.test")
    ben = make_user("Ben", email="ben@example.test")
    quiet = make_user("Quiet", email="quiet@example.test")
    audience.reminder_ask(show=show, user=ann, language="de")
    audience.follow_set(user=ann, brand=brand, following=True)  # reminded and follows
    audience.follow_set(user=ben, brand=brand, following=True)
    audience.follow_set(user=quiet, brand=brand, following=True)
    audience.settings_set(user=quiet, before_start=True, live_now=False)
    # Guests' addresses of this run: the confirmation emails' rate limit
    # lives in Redis for an hour and must not carry over from an earlier run.
    gus, never = fresh("gus"), fresh("never")
    client = Client()
    client.post(f"/shows/{show.slug}/remind/", {"email": gus.replace("gus", "Gus")})
    client.post(f"/shows/{show.slug}/remind/", {"email": never})
    run_tasks()
    assert addressed(outbox) == sorted([gus, never])
    guest_confirms(client, outbox, gus)
    outbox.clear()

    services.show_start(show=show)
    assert run_tasks() == 1
    assert addressed(outbox) == sorted(["ann@example.test", "ben@example.test", gus])
    to_ann = next(m for m in outbox if m.to == ["ann@example.test"])
    assert to_ann.subject == "Acme Audio ist jetzt live: Launch night"
    assert to_ann.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert to_ann.extra_headers["List-Unsubscribe"].startswith("<http")
    assert f"/shows/{show.slug}/" in to_ann.body

    outbox.clear()
    notices.notices_deliver_batch(show_id=show.pk, kind=Notice.Kind.LIVE_NOW)
    assert notices.notices_request(show_id=show.pk, kind=Notice.Kind.LIVE_NOW) is False
    assert notices.notices_due(now=timezone.now() + timedelta(hours=1)) == 0
    run_tasks()
    assert outbox == []
    assert Notice.objects.filter(sent_at__isnull=False).count() == 3


def test_starting_soon_goes_out_once_within_the_lead_time(
    brand,
    products,
    make_user,
    outbox,
    run_tasks,  # noqa: F811
):
    soon = services.show_create(
        brand=brand,
        slug="soon",
        title="Soon",
        scheduled_at=timezone.now() + timedelta(minutes=40),
        products=products,
    )
    audience.reminder_ask(show=soon, user=make_user(email="r@example.test"))
    assert notices.notices_due() == 0, "40 minutes ahead is not yet within 15"
    later = timezone.now() + timedelta(minutes=30)
    assert notices.notices_due(now=later) == 1
    assert notices.notices_due(now=later) == 0
    run_tasks()
    (message,) = outbox
    assert message.subject == "Starting soon: Soon by Acme Audio"
    assert "starts soon" in message.body


def test_one_click_unsubscribe_stops_the_next_email(
    show,
    brand,
    make_user,
    outbox,
    run_tasks,  # noqa: F811
):
    """The mail client's POST (no CSRF token, RFC 8058 body) turns an
    account's reminders off and drops a guest's; the next show mails them
    nothing. A broken token is refused."""
    fan = make_user(email="fan@example.test")
    audience.follow_set(user=fan, brand=brand, following=True)
    guest = Reminder.objects.create(
        show=show, email="g@example.test", confirmed_at=timezone.now()
    )
    client = Client(enforce_csrf_checks=True)
    for address in ("fan@example.test", guest.email):
        url = audience.unsubscribe_url(address)
        path = url[url.index("/unsubscribe/") :]
        assert client.get(path).status_code == 200
        answer = client.post(
            path,
            data="List-Unsubscribe=One-Click",
            content_type="application/x-www-form-urlencoded",
        )
        assert answer.status_code == 200, answer.content
        assert client.post(path).status_code == 200, "twice is fine"
    assert client.post("/unsubscribe/not-a-token/").status_code == 400
    assert not Reminder.objects.filter(email=guest.email).exists()
    services.show_start(show=show)
    run_tasks()
    assert outbox == []
    assert Follow.objects.filter(user=fan).exists(), "still follows, not emailed"


def test_a_guest_must_give_a_valid_email_and_cannot_flood_an_inbox(
    show,
    outbox,
    run_tasks,  # noqa: F811
):
    client = Client()
    page = client.post(f"/shows/{show.slug}/remind/", {"email": "nope"}, follow=True)
    assert "Enter a valid email address." in page.content.decode()
    assert not Reminder.objects.exists()
    viewer = fresh("v")
    for _ in range(6):
        client.post(f"/shows/{show.slug}/remind/", {"email": viewer})
    run_tasks()
    assert len(outbox) == audience.CONFIRMATIONS_BURST
    assert Reminder.objects.filter(email=viewer).count() == 1
    broken = client.post("/reminders/confirm/not-a-token/")
    assert broken.status_code == 400
    assert "This link does not work" in broken.content.decode()
    assert not Reminder.objects.filter(confirmed_at__isnull=False).exists()


def test_following_needs_an_account_and_settings_are_per_user(client, brand, make_user):
    assert (
        client.post(f"/brands/{brand.slug}/follow/", {"follow": "1"}).status_code == 302
    )
    assert not Follow.objects.exists()
    user = make_user()
    client.force_login(user)
    client.post(f"/brands/{brand.slug}/follow/", {"follow": "1"})
    client.post(f"/brands/{brand.slug}/follow/", {"follow": "1"})
    assert Follow.objects.filter(user=user, brand=brand).count() == 1
    page = client.get("/account/notifications/").content.decode()
    assert "Acme Audio" in page
    client.post("/account/notifications/", {"live_now": "on"})
    found = audience.settings_for(user=user)
    assert (found.before_start, found.live_now) == (False, True)
    client.post(f"/brands/{brand.slug}/follow/", {"follow": "0"})
    assert not Follow.objects.exists()


def test_the_calendar_file_has_the_start_in_utc_and_follows_a_reschedule(client, show):
    first = Calendar.from_ical(client.get(f"/shows/{show.slug}/calendar.ics").content)
    (event,) = first.walk("VEVENT")
    assert event.decoded("dtstart") == show.scheduled_at.replace(microsecond=0)
    assert event.decoded("dtstart").utcoffset() == timedelta(0)
    assert str(event["url"]).endswith(f"/shows/{show.slug}/")
    Show.objects.filter(pk=show.pk).update(
        scheduled_at=show.scheduled_at + timedelta(days=1),
        created_at=show.created_at - timedelta(minutes=5),
    )
    again = Calendar.from_ical(client.get(f"/shows/{show.slug}/calendar.ics").content)
    (moved,) = again.walk("VEVENT")
    assert str(moved["uid"]) == str(event["uid"])
    assert moved.decoded("dtstart") == show.scheduled_at.replace(
        microsecond=0
    ) + timedelta(days=1)
    assert int(moved["sequence"]) > int(event["sequence"])
    links = audience.calendar_links(show)
    assert links["google"].startswith("https://calendar.google.com/")
    assert "outlook.live.com" in links["outlook"]


def test_a_private_shows_calendar_and_reminder_need_its_code(client, brand, products):
    private = services.show_create(
        brand=brand,
        slug="vip",
        title="VIP",
        scheduled_at=timezone.now() + timedelta(days=1),
        products=products[:1],
        access_code="Club-2026",
    )
    assert client.get(f"/shows/{private.slug}/calendar.ics").status_code == 404
    assert (
        client.post(
            f"/shows/{private.slug}/remind/", {"email": "x@example.test"}
        ).status_code
        == 404
    )
    assert not Reminder.objects.exists()


def _sent_to(directory: Path) -> list[str]:
    found = []
    for path in directory.iterdir():
        found += [
            line[4:].strip()
            for line in path.read_text().splitlines()
            if line.startswith("To: ")
        ]
    return found


def test_a_worker_killed_mid_batch_and_restarted_sends_each_email_once(
    postgres, show, tmp_path
):
    """Forty people wait for "live now". The worker process is killed (SIGKILL)
    after some emails; the sweeper enqueues the batch again, a new worker
    finishes it: everybody gets one email, nobody two (the one being sent at
    the kill may be lost, or delivered but not marked: at most once, and its
    claim shows it)."""
    for index in range(40):
        Reminder.objects.create(
            show=show, email=f"p{index}@example.test", confirmed_at=timezone.now()
        )
    services.show_start(show=show)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE")
        or settings.SETTINGS_MODULE,
        "NOTICE_DB_NAME": connection.settings_dict["NAME"],
        "NOTICE_MAIL_DIR": str(tmp_path),
        "NOTICE_MAIL_DELAY": "0.1",
    }

    def worker() -> subprocess.Popen[bytes]:
        return subprocess.Popen(  # nosec B603 - this interpreter, fixed arguments
            [sys.executable, "-m", "tests.shows.notice_worker"], cwd=ROOT, env=env
        )

    first = worker()
    deadline = time.monotonic() + 60
    while len(_sent_to(tmp_path)) < 10 and time.monotonic() < deadline:
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    before = _sent_to(tmp_path)
    assert 10 <= len(before) < 40, len(before)

    assert notices.notices_due() == 0, "not before RESUME_AFTER"
    assert notices.notices_due(now=timezone.now() + notices.RESUME_AFTER) == 1
    second = worker()
    assert second.wait(timeout=120) == 0
    sent = _sent_to(tmp_path)
    assert len(sent) == len(set(sent)), "nobody got two"
    # The one email under way at the kill is the only doubt: lost before the
    # mail server had it, or delivered before it was marked sent. Either way
    # it is not sent again (at most once), and its claim says so.
    lost = {f"p{i}@example.test" for i in range(40)} - set(sent)
    marked = set(
        Notice.objects.filter(sent_at__isnull=False).values_list("address", flat=True)
    )
    assert marked <= set(sent)
    unmarked = set(sent) - marked
    assert len(lost | unmarked) <= 1, (lost, unmarked)
    for address in lost | unmarked:
        assert Notice.objects.get(address=address).last_error == notices.SENDING


def test_a_brand_page_lists_its_public_shows_and_follows_in_one_tap(
    client, show, brand, products, make_user
):
    from django.utils import timezone as tz

    services.show_create(
        brand=brand,
        slug="secret",
        title="Secret club",
        scheduled_at=tz.now() + timedelta(days=2),
        products=products[:1],
        access_code="Club-2026",
    )
    page = client.get(f"/brands/{brand.slug}/").content.decode()
    assert "Launch night" in page
    assert "Secret club" not in page
    assert 'property="og:title" content="Acme Audio"' in page
    assert "Log in to follow" in page
    assert client.get("/brands/nope/").status_code == 404
    user = make_user()
    client.force_login(user)
    followed = client.post(
        f"/brands/{brand.slug}/follow/",
        {"follow": "1", "next": f"/brands/{brand.slug}/"},
        follow=True,
    ).content.decode()
    assert 'aria-pressed="true"' in followed
    assert "1 follower" in followed
    assert "You follow Acme Audio" in followed
    evil = client.post(
        f"/brands/{brand.slug}/follow/",
        {"follow": "0", "next": "https://evil.example/"},
    )
    assert evil["Location"] == f"/brands/{brand.slug}/"


def test_the_show_page_offers_remind_me_the_calendar_and_link_previews(
    client, show, make_user
):
    page = client.get(f"/shows/{show.slug}/").content.decode()
    assert 'property="og:title" content="Launch night · Acme Audio"' in page
    assert f'href="/brands/{show.brand.slug}/"' in page
    assert f"/shows/{show.slug}/calendar.ics" in page
    assert "calendar.google.com" in page
    assert 'name="email"' in page  # a guest gives an email
    user = make_user()
    client.force_login(user)
    assert "Remind me" in client.get(f"/shows/{show.slug}/").content.decode()
    done = client.post(
        f"/shows/{show.slug}/remind/", {"next": f"/shows/{show.slug}/"}, follow=True
    ).content.decode()
    assert "Reminder set" in done
    assert "We will email you before it starts" in done
    assert Reminder.objects.get(user=user).confirmed_at is not None
    client.post(f"/shows/{show.slug}/remind/", {"cancel": "1"})
    assert not Reminder.objects.filter(user=user).exists()
