"""The benchmark's user-space network (``bench/netshim.py``) and a viewer
playing through it: loss, jitter and a rate cap as specified, and WebRTC
recovering what 2 % loss takes (NACK and retransmission, PLI and keyframes)."""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time

import pytest

from bench.netshim import Impairment, open_relay, rewrite_candidates
from live.media.clients import StampedVideoTrack, play, publish

ANSWER = (
    "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
    "a=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host\r\n"
    "a=candidate:2 1 tcp 1518280447 127.0.0.1 9 typ host tcptype active\r\n"
    "a=end-of-candidates\r\n"
)


class Sink(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.arrivals: list[tuple[bytes, float]] = []

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.arrivals.append((data, time.monotonic()))


async def _endpoint() -> tuple[asyncio.DatagramTransport, Sink]:
    loop = asyncio.get_running_loop()
    transport, sink = await loop.create_datagram_endpoint(
        Sink, local_addr=("127.0.0.1", 0)
    )
    return transport, sink


def test_candidates_are_pointed_at_the_relay_and_tcp_ones_dropped():
    rewritten = rewrite_candidates(ANSWER, ("127.0.0.1", 5555))
    assert "a=candidate:1 1 udp 2130706431 127.0.0.1 5555 typ host\r\n" in rewritten
    assert "tcp" not in rewritten
    assert rewritten.endswith("a=end-of-candidates\r\n")


async def test_relay_loses_delays_and_caps_as_configured():
    """2 % loss over 2000 datagrams lands near 2 %; every delay is drawn
    within 30 ± 10 ms and kept (plus the loop's lateness); a 200 kbit/s cap
    with a 200 ms queue lets a burst through at that rate and drops what
    overflows."""
    viewer, _viewer_sink = await _endpoint()
    node, node_sink = await _endpoint()
    relay = await open_relay(
        Impairment(loss=0.02, delay_ms=30, jitter_ms=10), seed=7, keep_delays=True
    )
    capped = await open_relay(Impairment(rate_kbit=200, burst_bytes=2000), seed=1)
    try:
        relay.node = node.get_extra_info("sockname")
        for index in range(2000):
            viewer.sendto(index.to_bytes(4, "big"), relay.address)
            if index % 20 == 19:
                await asyncio.sleep(0.002)
        await asyncio.sleep(0.3)
        stats = relay.up.stats
        # A busy machine's socket buffers may drop a few before the relay.
        assert stats.received >= 1900
        assert stats.lost + stats.delivered == stats.received
        assert 0.01 <= stats.lost / stats.received <= 0.03
        assert len(node_sink.arrivals) == stats.delivered
        assert min(stats.drawn) >= 0.020
        assert max(stats.drawn) <= 0.040
        assert 0.029 <= statistics.mean(stats.drawn) <= 0.031
        # Held at least that long; late only by what a busy loop adds.
        assert min(stats.delays) >= 0.0195
        assert statistics.median(stats.delays) <= 0.040
        order = [int.from_bytes(data, "big") for data, _at in node_sink.arrivals]
        assert order != sorted(order)  # jitter reorders neighbours

        capped.node = node.get_extra_info("sockname")
        node_sink.arrivals.clear()
        began = time.monotonic()
        for _ in range(40):  # 40 kB at once; 200 kbit/s is 25 kB/s
            viewer.sendto(b"x" * 1000, capped.address)
        await asyncio.sleep(0.5)
        cap = capped.up.stats
        # The burst (2 kB) and the queue (200 ms: 5 kB) pass, the rest is dropped.
        assert cap.queue_dropped == 40 - cap.delivered
        assert 6 <= cap.delivered <= 8
        last = node_sink.arrivals[-1][1] - began
        assert 0.15 <= last <= 0.35
    finally:
        relay.close()
        capped.close()
        viewer.close()
        node.close()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
async def test_a_viewer_through_2_percent_loss_and_jitter_keeps_its_frame_rate(
    node, http, show
):
    """Through 2 % loss (both ways) and 30 ± 10 ms jitter the viewer's lost
    packets are asked for again and resent, so it decodes close to every
    frame, with no gap near a freeze (without retransmission a lost packet
    holds aiortc's jitter buffer until 512 packets have passed, seconds)."""
    publisher = await publish(
        http.post,
        f"/live/{show.slug}/whip",
        show.stream_key,
        video=StampedVideoTrack(320, 240),
    )
    relay = await open_relay(Impairment(loss=0.02, delay_ms=30, jitter_ms=10), seed=3)
    player = None
    try:
        assert publisher.status == 201, publisher.body
        player = await play(relay.wrap(http.post), f"/live/{show.slug}/whep")
        assert player.status == 201, player.body
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 15
        while player.frames < 10 and loop.time() < deadline:
            await asyncio.sleep(0.05)
        assert player.frames >= 10
        start = len(player.arrivals)
        await asyncio.sleep(4)
        arrivals = player.arrivals[start:]
        gaps = [b - a for a, b in itertools.pairwise(arrivals)]
        assert relay.down.stats.lost > 0  # loss did happen on the way
        assert len(arrivals) >= 4 * 20  # 30 fps sent; a busy machine encodes less
        assert max(gaps) < 0.5
    finally:
        if player is not None:
            await player.close()
        await publisher.close()
        relay.close()


async def test_a_sender_resends_a_packet_once_a_round_trip_within_a_budget(
    media_settings,
):
    """The node's senders (``limit_retransmissions``): a packet named by
    several NACKs within a round trip is resent once, again after a round
    trip; a flood of NACKs is resent only up to the budget."""
    from aiortc import RTCPeerConnection

    from live.media.aiortc_patches import limit_retransmissions
    from live.media.network import rtc_configuration

    pc = RTCPeerConnection(configuration=rtc_configuration())
    try:
        sender = pc.addTransceiver("video", direction="sendonly").sender
        resent: list[int] = []

        async def record(sequence_number: int) -> None:
            resent.append(sequence_number)

        sender._retransmit = record  # type: ignore[method-assign]
        assert limit_retransmissions(sender, per_second=20, default_rtt=0.05)
        for _ in range(3):
            await sender._retransmit(7)
        assert resent == [7]
        await asyncio.sleep(0.06)
        await sender._retransmit(7)
        assert resent == [7, 7]
        for seq in range(100, 140):
            await sender._retransmit(seq)
        # Half a second of budget (10) less the two spent, plus what refilled.
        assert 8 <= len(resent) - 2 <= 10
        assert resent[2:] == list(range(100, 100 + len(resent) - 2))
    finally:
        await pc.close()


async def test_a_sender_resends_nothing_of_a_rendition_its_viewer_left(media_settings):
    """``forget`` (called as a viewer's first packet of another rendition
    leaves for its sender): packets sent before it are no longer resent,
    packets sent after it are, across the RTP timestamp's wrap."""
    from aiortc import RTCPeerConnection
    from aiortc.rtp import RTP_HISTORY_SIZE, RtpPacket

    from live.media.aiortc_patches import limit_retransmissions
    from live.media.network import rtc_configuration

    pc = RTCPeerConnection(configuration=rtc_configuration())
    try:
        sender = pc.addTransceiver("video", direction="sendonly").sender
        resent: list[int] = []

        async def record(sequence_number: int) -> None:
            resent.append(sequence_number)

        sender._retransmit = record  # type: ignore[method-assign]
        forget = limit_retransmissions(sender, per_second=1000)
        assert forget is not None
        history = sender._RTCRtpSender__rtp_history  # type: ignore[attr-defined]
        sent = {1: 2**32 - 3000, 2: 2**32 - 1, 3: 2999, 4: 6000}  # seq: timestamp
        for seq, timestamp in sent.items():
            history[seq % RTP_HISTORY_SIZE] = RtpPacket(
                sequence_number=seq, timestamp=timestamp
            )
        await sender._retransmit(1)
        assert resent == [1]  # nothing forgotten yet
        sender._RTCRtpSender__rtp_timestamp = 2**32 - 1  # type: ignore[attr-defined]
        forget()  # the old rendition's last packet was seq 2
        for seq in (1, 2, 3, 4, 99):  # 99: not in the history (aiortc's call)
            await sender._retransmit(seq)
        assert resent == [1, 3, 4, 99]
    finally:
        await pc.close()


async def test_a_track_says_when_its_first_packet_of_another_rendition_leaves():
    """``PacketTrack.on_switch`` is called as ``recv()`` returns the first
    packet pushed after ``switch()``, not before: the sender has sent all of
    the old rendition by then."""
    import av

    from live.media.broadcast import viewer_tracks

    video, _audio = viewer_tracks()
    calls: list[int] = []
    video.on_switch = lambda: calls.append(video.delivered)

    def packet(pts: int, keyframe: bool) -> av.Packet:
        nal = b"\x65" if keyframe else b"\x41"  # IDR or not
        made = av.Packet(b"\x00\x00\x00\x01" + nal)
        made.pts, made.is_keyframe = pts, keyframe
        return made

    video.push(packet(1, True))
    video.push(packet(2, False))
    video.switch_to = 1
    video.switch()
    video.push(packet(3, True))  # the new rendition's keyframe
    video.push(packet(4, False))
    await video.recv()
    await video.recv()
    assert calls == []
    await video.recv()
    assert calls == [3]
    await video.recv()
    assert calls == [3]
    assert video.rendition == 1
