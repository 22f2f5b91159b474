"""The demo: idempotent seeding, the command serving the seeded show, and its
background worker sending the buyer's emails."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import pytest
from django.core import mail

from checkout import emails
from checkout.models import Order, OrderEmail
from frontend import demo
from frontend.management.commands.demo import _task_worker
from shows.models import Brand, Membership, Product, Show, User, Variant
from tests.conftest import ROOT, free_port


@pytest.mark.django_db
def test_seeding_twice_reuses_everything():
    """A second run finds the brand, staff, products and shows of the first."""
    first = demo.seed_demo()
    counts = [
        m.objects.count() for m in (Brand, Membership, Product, Variant, Show, User)
    ]
    second = demo.seed_demo()
    assert second.show.pk == first.show.pk
    assert second.host.pk == first.host.pk
    assert counts == [
        m.objects.count() for m in (Brand, Membership, Product, Variant, Show, User)
    ]
    assert first.show.status == Show.Status.SCHEDULED
    assert first.show.lineup.count() == 3
    assert Membership.objects.get(user=first.host, brand=first.brand).role == "host"
    assert first.private_show.is_private
    assert Variant.objects.filter(product__brand=first.brand).count() == 6
    assert first.host.check_password(demo.DEMO_PASSWORD)


@pytest.mark.django_db
def test_a_demo_started_again_after_its_show_ended_has_a_new_one_to_go_live():
    """Once the launch night has ended, the next run schedules an encore with
    the same line-up (and finds that encore again until it ends too)."""
    from shows import services

    first = demo.seed_demo()
    services.show_start(show=first.show)
    services.show_end(show=first.show)
    second = demo.seed_demo()
    assert second.show.pk != first.show.pk
    assert second.show.status == Show.Status.SCHEDULED
    assert second.show.slug == f"{demo.SHOW_SLUG}-encore-1"
    assert list(second.show.lineup.values_list("product__slug", flat=True)) == list(
        first.show.lineup.values_list("product__slug", flat=True)
    )
    assert demo.seed_demo().show.pk == second.show.pk
    services.show_start(show=second.show)
    services.show_end(show=second.show)
    assert demo.seed_demo().show.slug == f"{demo.SHOW_SLUG}-encore-2"


@pytest.mark.django_db(transaction=True)
def test_the_demos_worker_thread_sends_the_emails_and_stops(show):
    """The worker thread started with the demo sends an email asked for while
    it runs, and stops with the block."""
    order = Order.objects.create(
        show=show,
        email="buyer@example.test",
        status=Order.Status.PAID,
        total_minor=14900,
        currency="EUR",
        idempotency_key="demo-worker",
    )
    with _task_worker(interval=0.05):
        assert emails.order_email_send(order_id=order.pk) is True
        deadline = time.monotonic() + 20
        while not mail.outbox and time.monotonic() < deadline:
            time.sleep(0.05)
    assert [m.to for m in mail.outbox] == [["buyer@example.test"]]
    assert OrderEmail.objects.get(order=order).sent_at is not None
    assert not any(t.name == "showfloor-tasks" for t in threading.enumerate())


def _sigint_as_in_a_terminal() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.mark.slow
def test_demo_command_serves_the_seeded_show_and_stops_cleanly(tmp_path):
    """``manage.py demo`` prints the viewer URL, serves the show page there and
    its static files, and Ctrl-C stops it together with localstripe."""
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        "REDIS_URL": "",
    }
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "demo", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # Ctrl-C as in a terminal: a suite started in the background (``cmd &``)
        # ignores SIGINT, its children inherit that, and then neither Python
        # nor Twisted installs a handler, so the demo would never hear it.
        preexec_fn=_sigint_as_in_a_terminal,
    )
    output: list[str] = []
    try:
        deadline = time.monotonic() + 90
        viewer_url = ""
        assert proc.stdout is not None
        while time.monotonic() < deadline and not viewer_url:
            line = proc.stdout.readline()
            if not line:
                break
            output.append(line)
            if "Viewer page:" in line:
                viewer_url = line.split("Viewer page:")[1].strip()
        assert viewer_url == f"http://127.0.0.1:{port}/shows/{demo.SHOW_SLUG}/", output
        stripe_line = ""
        while "Press Ctrl-C" not in stripe_line:
            stripe_line = proc.stdout.readline()
            output.append(stripe_line)
        stripe_port = int(
            next(x for x in output if "localstripe at" in x)
            .split("127.0.0.1:")[1]
            .split()[0]
        )
        deadline = time.monotonic() + 20
        while not _listening(port) and time.monotonic() < deadline:
            time.sleep(0.1)
        with urllib.request.urlopen(viewer_url, timeout=10) as response:
            page = response.read().decode()
        assert "Launch night: Aurora headphones" in page
        assert "€149.00" in page
        css = f"http://127.0.0.1:{port}/static/frontend/app.css"
        with urllib.request.urlopen(css, timeout=10) as response:
            assert response.status == 200
        assert _listening(stripe_port)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            # Every thread's stack (the demo registers SIGUSR1 for it), then
            # what it printed: what it was waiting on.
            proc.send_signal(signal.SIGUSR1)
            time.sleep(1)
            proc.kill()
            rest = proc.communicate()[0] or ""
            pytest.fail("the demo did not stop on Ctrl-C:\n" + "".join(output) + rest)
    assert proc.returncode == 0, "".join(output)
    deadline = time.monotonic() + 5
    while _listening(stripe_port) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _listening(stripe_port), "localstripe outlived the demo"


def test_the_port_of_a_demo_just_stopped_counts_as_free_despite_time_wait():
    """Restarting the demo at once used to fail for a minute ("Port 8000 … in
    use") while only TIME-WAIT sockets of the last run remained."""
    import socket
    import subprocess

    from frontend.management.commands.demo import _port_is_free

    port = free_port()
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen()
    assert not _port_is_free(port), "a listening port is in use"
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = server.accept()
    accepted.close()  # the server side closes first: its end waits in TIME-WAIT
    client.close()
    server.close()
    states = subprocess.run(  # nosec B603 - fixed arguments
        ["ss", "-tan", f"sport = :{port}"],  # nosec B607 - ss from PATH
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    assert "TIME-WAIT" in states, states
    assert _port_is_free(port)
