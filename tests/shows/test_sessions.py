"""The session engine (shows/sessions.py): one write for a session created
and saved in the same request, and every real change still written."""

from __future__ import annotations

import pytest
from django.contrib.sessions.models import Session
from django.db import connection
from django.test.utils import CaptureQueriesContext

from shows.sessions import SessionStore

pytestmark = pytest.mark.django_db


def session_writes(queries):
    return [
        q["sql"].split()[0]
        for q in queries
        if "django_session" in q["sql"] and not q["sql"].startswith("SELECT")
    ]


def test_a_new_session_saved_twice_unchanged_is_written_once():
    session = SessionStore()
    with CaptureQueriesContext(connection) as queries:
        session.save()  # the view needs its key now
        session.save()  # SessionMiddleware, for the answer
    assert session_writes(queries.captured_queries) == ["INSERT"]
    # No "is this key taken?" query either: the INSERT's primary key tells.
    assert [q for q in queries.captured_queries if "django_session" in q["sql"]] == [
        q for q in queries.captured_queries if q["sql"].startswith("INSERT")
    ]
    assert Session.objects.filter(session_key=session.session_key).exists()


def test_a_change_after_the_first_write_is_written():
    session = SessionStore()
    session["cart"] = []
    session.save()
    session["cart"].append("SKU-1")  # changed in place
    session.modified = True
    session.save()
    session.set_expiry(60)
    session.save()
    stored = SessionStore(session_key=session.session_key)
    assert stored["cart"] == ["SKU-1"]
    assert stored.get_expiry_age() == 60


def test_a_loaded_session_is_written_when_saved():
    first = SessionStore()
    first["n"] = 1
    first.save()
    again = SessionStore(session_key=first.session_key)
    again["n"] = 2
    with CaptureQueriesContext(connection) as queries:
        again.save()
    assert "UPDATE" in session_writes(queries.captured_queries)
    assert SessionStore(session_key=first.session_key)["n"] == 2


def test_a_colliding_new_key_is_replaced(monkeypatch):
    taken = SessionStore()
    taken.save()
    keys = iter([taken.session_key, "k" * 32])
    monkeypatch.setattr(SessionStore, "_get_new_session_key", lambda self: next(keys))
    fresh = SessionStore()
    fresh.save()
    assert fresh.session_key == "k" * 32
    assert Session.objects.count() == 2
