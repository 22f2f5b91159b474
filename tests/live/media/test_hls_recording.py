"""The HLS tier and the recording, both written from the one encode."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import av
import pytest
from asgiref.sync import sync_to_async
from django.conf import settings

from live.media.clients import StampedVideoTrack, publish
from shows.models import Show

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


async def _playlist(http, slug: str, segments: int, timeout: float = 15) -> str:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    text = ""
    while loop.time() < deadline:
        response = await http.get(f"/live/{slug}/hls/index.m3u8")
        if response.status_code == 200:
            text = response.content.decode()
            if text.count("#EXTINF") >= segments:
                return text
        await asyncio.sleep(0.2)
    raise AssertionError(f"playlist never had {segments} segments: {text!r}")


async def test_hls_playlist_and_recording_from_the_same_packets(node, http, show, host):
    """While live, a sliding playlist of ~1 s fMP4 segments with program date
    times is served; once the encoder stopped (DELETE) and the host ended the
    show, the recording is kept, served and decodable."""
    publisher = await publish(
        http.post,
        f"/live/{show.slug}/whip",
        show.stream_key,
        video=StampedVideoTrack(320, 240),
    )
    try:
        assert publisher.status == 201
        playlist = await _playlist(http, show.slug, 3)
        assert "#EXT-X-PROGRAM-DATE-TIME:" in playlist
        assert '#EXT-X-MAP:URI="init.mp4"' in playlist
        durations = [float(d) for d in re.findall(r"#EXTINF:([\d.]+),", playlist)]
        assert all(0.5 <= d <= 1.6 for d in durations), durations
        segment = re.findall(r"^(seg-\d+\.m4s)$", playlist, re.M)[-1]
        response = await http.get(f"/live/{show.slug}/hls/{segment}")
        assert response.status_code == 200
        assert response["Content-Type"] == "video/iso.segment"
        assert len(response.content) > 1000
        init = await http.get(f"/live/{show.slug}/hls/init.mp4")
        assert init.status_code == 200
        assert (await http.get(f"/live/{show.slug}/hls/..%2Fsecret")).status_code == 404

        assert (
            await http.delete(publisher.location, show.stream_key)
        ).status_code == 200
        assert (await http.end_show(show.slug, host)).status_code == 200
    finally:
        await publisher.close()

    await sync_to_async(show.refresh_from_db)()
    assert show.status == Show.Status.ENDED
    assert show.recording_file.endswith(".mp4")
    path = Path(settings.SHOWFLOOR_RECORDINGS_DIR) / show.recording_file
    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        assert len(container.streams.audio) == 1
        frames = sum(1 for _ in container.decode(video=0))
    assert frames >= 30

    response = await http.get(f"/live/{show.slug}/recording.mp4")
    assert response.status_code == 200
    assert response["Content-Type"] == "video/mp4"
