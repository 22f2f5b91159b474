"""The media endpoints' HTTP contract apart from the media itself: studio
controls, authorization, methods and content types."""

from __future__ import annotations

import pytest

from shows.models import Show

pytestmark = pytest.mark.django_db


@pytest.fixture
def host_client(client, host):
    client.force_login(host)
    return client


def test_host_rotates_stream_key_and_old_key_stops_working(host_client, show):
    """Rotate gives a new key; WHIP with the old one is refused with 401."""
    old = show.stream_key
    response = host_client.post(f"/live/{show.slug}/stream/key")
    assert response.status_code == 200
    show.refresh_from_db()
    assert response.json()["stream_key"] == show.stream_key != old
    refused = host_client.post(
        f"/live/{show.slug}/whip",
        data="v=0\r\n",
        content_type="application/sdp",
        headers={"Authorization": f"Bearer {old}"},
    )
    assert refused.status_code == 401
    assert refused["WWW-Authenticate"].startswith("Bearer")


def test_stream_controls_are_for_the_brands_staff_only(client, make_user, show):
    """A viewer (or anonymous visitor) cannot read the stream state, rotate the
    key or end the show: the show's studio routes answer 404."""
    key = show.stream_key
    assert client.get(f"/live/{show.slug}/stream").status_code == 404
    client.force_login(make_user("Vera Viewer"))
    assert client.post(f"/live/{show.slug}/stream/key").status_code == 404
    assert client.post(f"/live/{show.slug}/stream/end").status_code == 404
    show.refresh_from_db()
    assert show.stream_key == key
    assert show.status == Show.Status.SCHEDULED


def test_host_ends_a_live_show_from_the_studio(host_client, live_show):
    """End show ends a live show even with nobody publishing, and the status
    endpoint says so."""
    response = host_client.post(f"/live/{live_show.slug}/stream/end")
    assert response.status_code == 200
    assert response.json()["status"] == "ended"
    live_show.refresh_from_db()
    assert live_show.status == Show.Status.ENDED
    state = host_client.get(f"/live/{live_show.slug}/stream").json()
    assert state["status"] == "ended"
    assert state["publisher"] == "none"


def test_whip_methods_and_content_type(client, show):
    """OPTIONS advertises SDP, GET is refused, a non-SDP body is a 400 with a
    reason, trickle PATCH is 405 and an unknown session is 404."""
    options = client.options(f"/live/{show.slug}/whip")
    assert options.status_code == 204
    assert options["Accept-Post"] == "application/sdp"
    assert client.get(f"/live/{show.slug}/whip").status_code == 405
    wrong_type = client.post(
        f"/live/{show.slug}/whip",
        data={"sdp": "v=0"},
        headers={"Authorization": f"Bearer {show.stream_key}"},
    )
    assert wrong_type.status_code == 400
    assert "application/sdp" in wrong_type.json()["message"]
    session = f"/live/{show.slug}/whip/nope"
    assert client.patch(session).status_code == 405
    gone = client.delete(
        session, headers={"Authorization": f"Bearer {show.stream_key}"}
    )
    assert gone.status_code == 404
    assert client.delete(session).status_code == 401
    show.refresh_from_db()
    assert show.status == Show.Status.SCHEDULED


def test_whip_on_an_ended_show_is_refused(client, live_show):
    """An ended show cannot go live again."""
    from shows import services

    services.show_end(show=live_show)
    response = client.post(
        f"/live/{live_show.slug}/whip",
        data="v=0\r\n",
        content_type="application/sdp",
        headers={"Authorization": f"Bearer {live_show.stream_key}"},
    )
    assert response.status_code == 409
    assert response.json()["code"] == "show_ended"


def test_private_show_hls_and_recording_need_the_code(client, show):
    """The HLS files and the recording of a private show need its access code;
    names outside the playlist's pattern are 404."""
    Show.objects.filter(pk=show.pk).update(access_code="sesame")
    assert client.get(f"/live/{show.slug}/hls/index.m3u8").status_code == 401
    assert client.get(f"/live/{show.slug}/recording.mp4").status_code == 401
    with_code = client.get(
        f"/live/{show.slug}/hls/index.m3u8", headers={"Authorization": "Bearer sesame"}
    )
    assert with_code.status_code == 404  # right code, nothing written yet
    assert client.get(f"/live/{show.slug}/hls/settings.py").status_code == 404


def test_show_page_renders_player_config_and_studio_the_publisher(host_client, show):
    """The show page carries the player's endpoints (no stream key); the studio
    carries the stream key and the WHIP URL for OBS."""
    page = host_client.get(f"/shows/{show.slug}/").content.decode()
    assert 'id="player-config"' in page
    assert f"/live/{show.slug}/whep" in page
    assert show.stream_key not in page
    studio = host_client.get(f"/shows/{show.slug}/studio/").content.decode()
    assert show.stream_key in studio
    assert f"http://testserver/live/{show.slug}/whip" in studio
    assert 'id="publish-i18n"' in studio
