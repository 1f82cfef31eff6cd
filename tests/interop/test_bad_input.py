"""Hostile and odd input from raw sockets. After each test coda must have no call
left (``coda_active_calls 0`` in /metrics) and still answer OPTIONS."""

from __future__ import annotations

import os
import socket
import time

import numpy as np
import pytest

import audiocmp as A
import rtpkit
import sipkit
from common import DURATION_TOL_S, RawCall, expected_length, speech
from conftest import MAILBOX, audio_path, wait_until


def _invite_bytes(coda, ua: sipkit.SipUdp, body: bytes | None = None) -> bytes:
    sdp = body if body is not None else sipkit.make_sdp("127.0.0.1", 40000)
    return ua.build("INVITE", coda.uri(MAILBOX), sipkit.new_token(), sipkit.new_token(4), 1, sipkit.new_branch(), body=sdp)


def test_garbage_datagrams_are_ignored(coda):
    rng = np.random.default_rng(1)
    junk = [
        b"",
        b"\x00" * 100,
        b"\r\n\r\n",
        b"SIP/2.0",
        b"INVITE",
        b"INVITE sip:77513@127.0.0.1 SIP/2.0\r\n\r\n",  # no mandatory headers
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"\xff\xfe" + bytes(rng.integers(0, 256, 500, dtype=np.uint8)),
        "OPTIONS sip:é@127.0.0.1 SIP/2.0\r\nVia: \udcff\r\n\r\n".encode("utf-8", "surrogateescape"),
        b"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\n" + b"X-A: b\r\n" * 5000 + b"\r\n",
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bKnope\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
        b"INVITE sip:77513@127.0.0.1 SIP/2.0\r\nContent-Length: -5\r\n\r\n",
        b"INVITE sip:77513@127.0.0.1 SIP/2.0\r\nContent-Length: 99999999999999999999\r\n\r\n",
        b"INVITE sip:77513@127.0.0.1 SIP/2.0\r\nCSeq: 99999999999999999999 INVITE\r\n\r\n",
        b"INVITE \x00\x01 SIP/2.0\r\n\r\n",
    ]
    junk += [bytes(rng.integers(0, 256, int(n), dtype=np.uint8)) for n in rng.integers(1, 1400, 200)]
    with sipkit.SipUdp(coda.sip_addr) as ua:
        for j in junk:
            ua.send_raw(j)
        # Whatever coda answered (it may send 400 to parseable requests), it never
        # accepted a call.
        while (m := ua.recv(0.5)) is not None:
            assert not (m.is_response and 200 <= m.status < 300 and m.cseq_method == "INVITE"), m.start
    coda.assert_idle()
    assert coda.messages() == []


def test_truncated_sip_messages(coda):
    with sipkit.SipUdp(coda.sip_addr) as ua:
        full = _invite_bytes(coda, ua)
        head_end = full.index(b"\r\n\r\n")
        cuts = [10, 40, full.index(b"Call-ID"), head_end, head_end + 2, head_end + 4 + 20, len(full) - 1]
        for cut in cuts:
            ua.send_raw(full[:cut])
        # RFC 3261 §18.3: a UDP message whose body is shorter than Content-Length is discarded
        # (or answered with 400); it must never set up a call.
        while (m := ua.recv(1.0)) is not None:
            if m.is_response and m.cseq_method == "INVITE":
                assert m.status < 200 or m.status >= 400, m.start
    coda.assert_idle()


def test_oversized_messages(coda):
    # UDP: the largest IPv4 datagram (65507 bytes), a syntactically valid OPTIONS.
    with sipkit.SipUdp(coda.sip_addr) as ua:
        base = ua.build("OPTIONS", f"sip:{coda.sip_addr[0]}:{coda.sip_port}", sipkit.new_token(), "t", 1, sipkit.new_branch())
        head, _, _ = base.partition(b"\r\n\r\n")
        filler = b"X-Filler: " + b"a" * (65507 - len(head) - 16) + b"\r\n"
        big = head + b"\r\n" + filler + b"\r\n"
        big = big[:65507]
        ua.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        ua.send_raw(big)
        ua.recv(1.0)  # an answer (e.g. 513) or silence are both fine
    # TCP: a 70 KB message; coda must answer with an error or close, not wait forever.
    with socket.create_connection(coda.sip_addr, timeout=5) as s:
        req = (
            f"INVITE {coda.uri(MAILBOX)} SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch={sipkit.new_branch()}\r\n"
            f"From: <sip:x@127.0.0.1>;tag=1\r\nTo: <{coda.uri(MAILBOX)}>\r\nCall-ID: {sipkit.new_token()}\r\n"
            "CSeq: 1 INVITE\r\nMax-Forwards: 70\r\n"
        ).encode() + b"X-Big: " + b"b" * 70_000 + b"\r\nContent-Length: 0\r\n\r\n"
        try:
            s.sendall(req)
        except OSError:
            pass  # coda may close the connection while we are still writing
        s.settimeout(10)
        data = b""
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
                if b"\r\n\r\n" in data:
                    break
        except socket.timeout:
            pytest.fail("coda neither answered nor closed the connection for a 70 KB message")
        except ConnectionResetError:
            data = b""
        if data:
            m = sipkit.parse(data)
            assert m is not None and m.is_response and m.status >= 400, data[:200]
    coda.assert_idle()
    assert coda.messages() == []


def test_invite_without_common_codec_gets_488(coda):
    with RawCall(coda, payloads=[(18, "G729/8000"), (97, "iLBC/8000")]) as c:
        final = c.invite()
        assert final.status == 488, final.start  # RFC 3261 §21.4.26 Not Acceptable Here
    coda.assert_idle()
    assert coda.messages() == []


def test_invite_without_sdp_is_not_accepted_silently(coda):
    """An INVITE with no offer: coda either offers in the 200 (RFC 3261 §13.2.1
    offer/answer in 200/ACK) or rejects it; it must not crash."""
    with sipkit.SipUdp(coda.sip_addr) as ua:
        call = sipkit.Call(ua, coda.uri(MAILBOX), None)
        final = call.wait_final(10)
        if final.status == 200:
            assert final.body, "200 to an offer-less INVITE must carry an offer"
            # Our ACK carried no answer, so coda may already have hung up (481).
            assert call.bye().status in (200, 481)
    coda.assert_idle()


def test_unknown_extension_gets_404(coda):
    with RawCall(coda, ext="99999") as c:
        final = c.invite()
        assert final.status == 404, final.start
    coda.assert_idle()


def test_cancel_before_answer(coda):
    """RFC 3261 §9.2: a CANCEL matching a pending INVITE gets 200 and the INVITE 487;
    if coda had already answered (it answers at once), the CANCEL has no effect (200
    or 481) and the caller ends the call with BYE."""
    with RawCall(coda) as c:
        c.call.send_invite()
        c.call.cancel()
        final = None
        cancel_resp = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (final is None or cancel_resp is None):
            m = c.ua.recv(deadline - time.monotonic())
            if m is None or not m.is_response or m.get("call-id") != c.call.call_id:
                continue
            if m.cseq_method == "CANCEL":
                cancel_resp = m
            elif m.cseq_method == "INVITE" and m.status >= 200 and final is None:
                final = m
        assert final is not None, "no final response to the INVITE"
        assert cancel_resp is not None, "no response to the CANCEL"
        c.call.final = final
        c.call.to_tag = sipkit.tag_of(final.get("to"))
        c.call.remote_target = sipkit.uri_of(final.get("contact")) or c.call.uri
        c.call.ack()
        if final.status == 487:
            assert cancel_resp.status == 200, cancel_resp.start
        else:
            assert final.status == 200, final.start
            assert cancel_resp.status in (200, 481), cancel_resp.start
            assert c.call.bye().status == 200
    coda.assert_idle()
    assert coda.messages() == []


def test_rtp_flood_from_wrong_source_does_not_corrupt_message(coda):
    ref = speech()
    flooders = [rtpkit.RtpPeer() for _ in range(2)]
    rng = np.random.default_rng(3)
    with RawCall(coda) as c:
        assert c.invite().status == 200
        beep = c.rtp.wait_prompt_end(c.stream, quiet_s=1.0)
        c.stream.take()
        c.stream.audio(ref).silence(1.0)
        ssrc = 0x0BADBAD0

        def flood(i: int) -> None:
            for k, f in enumerate(flooders):
                for _ in range(2):
                    noise = bytes(rng.integers(0, 256, 160, dtype=np.uint8))
                    f.sock.sendto(rtpkit.rtp_packet(0, i * 3 + k, i * 160, ssrc + k, noise), c.rtp.remote)
                if i % 10 == 0:
                    f.sock.sendto(os.urandom(40), c.rtp.remote)  # not even RTP

        c.rtp.play(c.stream.take(), extra=flood)
        bye_at = time.monotonic()
        assert c.call.bye().status == 200
    for f in flooders:
        f.close()
    rows = wait_until(lambda: coda.messages(MAILBOX), 20, "the message in coda.db")
    assert len(rows) == 1
    rec = A.load(audio_path(coda, rows[0]))
    cmp = A.compare(ref, rec, min_lag_s=0.0, min_overlap=0.9)
    print("stored vs sent:", cmp)
    assert cmp.corr >= 0.9, f"flood leaked into the recording: {cmp}"
    expected = expected_length(bye_at - beep, cmp.lag_s, ref)
    assert abs(len(rec) / A.RATE - expected) <= DURATION_TOL_S, (len(rec) / A.RATE, expected)
    coda.assert_idle()


def test_caller_sending_no_audio_leaves_no_message(coda):
    """No RTP at all; hang up 0.6 s after the beep: shorter than min_message_secs (1 s)."""
    with RawCall(coda) as c:
        assert c.invite().status == 200
        c.rtp.wait_prompt_end(None, quiet_s=0.6)
        assert c.call.bye().status == 200
    coda.assert_idle()
    assert coda.messages() == []
    assert coda.outbox() == []


def test_bye_during_greeting(coda):
    with RawCall(coda) as c:
        assert c.invite().status == 200
        c.rtp.keep_alive(c.stream, 2.0)
        heard = c.rtp.audio_received()
        assert A.rms(heard) > 0.005, "no greeting audio from coda in the first 2 s"
        assert c.call.bye().status == 200
    coda.assert_idle()
    assert coda.messages() == []
    assert coda.outbox() == []


def test_coda_hangs_up_on_silent_caller(make_coda):
    """A caller that sends only silence after the beep: coda ends the call (BYE)
    after silence_secs (here 3 s). Whether a silent message is kept is coda's policy;
    if one is, it is not longer than the silence limit."""
    coda = make_coda(voicemail={"silence_secs": 3})
    with RawCall(coda) as c:
        assert c.invite().status == 200
        c.rtp.wait_prompt_end(c.stream, quiet_s=0.5)
        deadline = time.monotonic() + 20
        bye = None
        while bye is None and time.monotonic() < deadline:
            c.rtp.keep_alive(c.stream, 0.2)
            c.ua.recv(0.01)
            bye = next((m for m in c.ua.requests if m.method == "BYE"), None)
        assert bye is not None, "coda did not hang up on 3 s of silence"
    coda.assert_idle()
    for row in coda.messages():
        assert row["duration_ms"] <= 3000 + 1000 * DURATION_TOL_S + 500, row
