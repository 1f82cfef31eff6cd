"""Unit tests of the RTP/RFC 4733 stream builder and the pcap writer (no coda needed)."""

import os
import struct

import numpy as np
import pytest

import audiocmp as A
import rtpkit
from conftest import FIXTURES

SHIPPED_POUND = "/usr/share/sip-tester/dtmf_2833_pound.pcap"


def test_stream_audio_then_hash_event():
    speech = A.load(FIXTURES / "caller-message.wav")[:8000]
    packets, digit_at = rtpkit.deposit_stream(speech, lead_s=0.4, gap_s=0.2, tail_s=0.2)
    rtps = [rtpkit.parse_rtp(p) for _, p in packets]
    assert all(r is not None for r in rtps)
    audio = [r for r in rtps if r.pt == 0]
    events = [r for r in rtps if r.pt == 101]
    # 0.4 + 1.0 + 0.2 + 0.2 s of 20 ms audio frames
    assert len(audio) == 20 + 50 + 10 + 10
    assert all(len(r.payload) == 160 for r in audio)
    assert abs(digit_at - 1.6) < 1e-9
    # RFC 3550: consecutive sequence numbers, audio timestamps advance by 160 per frame,
    # one SSRC, marker only on the first packet of the talkspurt.
    seqs = [r.seq for r in rtps]
    assert all((b - a) & 0xFFFF == 1 for a, b in zip(seqs, seqs[1:]))
    assert len({r.ssrc for r in rtps}) == 1
    assert rtps[0].marker and not any(r.marker for r in audio[1:])
    assert all(b.ts - a.ts == 160 for a, b in zip(audio[:79], audio[1:80]))
    # RFC 4733 §2.5.1: '#' is event 11, the first event packet has M, all share the
    # event's start timestamp, duration grows, the end packet (E bit) is sent 3 times.
    assert events[0].marker
    assert {r.ts for r in events} == {audio[79].ts + 160}
    codes = {r.payload[0] for r in events}
    assert codes == {11}
    durations = [struct.unpack("!H", r.payload[2:4])[0] for r in events]
    assert durations == sorted(durations) and durations[0] == 160
    ends = [r for r in events if r.payload[1] & 0x80]
    assert len(ends) == 3
    # audio after the event resumes after the event's duration
    assert audio[80].ts == events[0].ts + durations[-1]
    # decoded speech is the speech
    dec = np.concatenate([rtpkit.decode(r.payload, 0) for r in audio])
    assert A.compare(speech, dec, max_lag_s=1.0).corr > 0.95


def test_pcap_round_trip(tmp_path):
    packets, _ = rtpkit.deposit_stream(np.zeros(800), lead_s=0.1, gap_s=0.0, tail_s=0.0)
    path = tmp_path / "x.pcap"
    rtpkit.write_pcap(path, packets, src=("127.0.0.1", 7000), dst=("127.0.0.1", 7002))
    back = rtpkit.read_pcap(path)
    assert [p.payload for p in back] == [p for _, p in packets]
    assert all(p.src == ("127.0.0.1", 7000) and p.dst == ("127.0.0.1", 7002) for p in back)
    t0 = back[0].time
    assert [round(p.time - t0, 6) for p in back] == [round(t, 6) for t, _ in packets]
    raw = path.read_bytes()
    # libpcap global header: magic, v2.4, snaplen, DLT_EN10MB (what SIPp reads)
    assert struct.unpack("<IHHiIII", raw[:24]) == (0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    # IPv4 header checksum verifies (sums to 0xFFFF)
    ip = raw[24 + 16 + 14 : 24 + 16 + 34]
    s = sum(struct.unpack("!10H", ip))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    assert s == 0xFFFF


@pytest.mark.skipif(not os.path.exists(SHIPPED_POUND), reason="sip-tester not installed")
def test_reader_understands_sipp_shipped_pcap():
    # The shipped pcap is the reference for the layout SIPp accepts.
    back = rtpkit.read_pcap(SHIPPED_POUND)
    rtps = [rtpkit.parse_rtp(p.payload) for p in back]
    assert rtps and all(r is not None and r.pt == 101 for r in rtps)
    assert {r.payload[0] for r in rtps} == {11}
