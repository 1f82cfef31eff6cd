"""SIP edges of issue 2 not covered elsewhere: 481 for a request outside any dialog, 503 with
Retry-After at the call limit, and an INVITE without SDP answered with coda's offer in the
200 and the caller's answer in the ACK (RFC 3264 §4, RFC 3261 §13.2.1)."""

from __future__ import annotations

import time

import rtpkit
import sipkit
from common import RawCall
from conftest import MAILBOX, wait_until


def test_rfc3261_12_2_2_bye_outside_a_dialog_gets_481(coda):
    with sipkit.SipUdp(coda.sip_addr) as ua:
        ua.send_raw(ua.build("BYE", coda.uri(MAILBOX), "nosuchcall@test", "ft", 2, sipkit.new_branch(),
                             to_tag="nosuchtag"))
        m = ua.recv(5)
        assert m is not None and m.is_response and m.status == 481, m and m.start
    assert coda.options_ok()


def test_call_limit_answers_503_with_retry_after(make_coda):
    coda = make_coda(limits={"max_calls": 1, "retry_after_secs": 17})
    with RawCall(coda) as first:
        assert first.invite().status == 200
        wait_until(lambda: coda.active_calls() == 1, 5, "one active call")
        with RawCall(coda) as second:
            final = second.invite()
            assert final.status == 503, final.start
            assert final.get("retry-after") == "17"
        assert first.call.bye().status == 200
    coda.assert_idle()


def test_rfc3264_4_offer_in_200_answer_in_ack(coda):
    with sipkit.SipUdp(coda.sip_addr) as ua:
        rtp = rtpkit.RtpPeer()
        try:
            call = sipkit.Call(ua, coda.uri(MAILBOX), None)
            final = call.wait_final(10, ack=False)
            assert final.status == 200 and final.get("content-type") == "application/sdp"
            offer = sipkit.parse_sdp(final.body)
            # Answer PCMA if offered (coda offers PCMU and PCMA), else PCMU.
            answer = sipkit.make_sdp("127.0.0.1", rtp.addr[1], [(8, "PCMA/8000")])
            ack = ua.build("ACK", call.remote_target, call.call_id, call.from_tag, call.cseq,
                           sipkit.new_branch(), call.to_tag, body=answer)
            ua.send_raw(ack)
            rtp.remote = (offer.ip, offer.port)
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline and len(rtp.received) < 25:
                time.sleep(0.05)
                rtp.drain()
            assert len(rtp.received) >= 25, "coda sent no media after the answer in the ACK"
            assert {r.rtp.pt for r in rtp.received} == {8}, "coda must send the answered codec"
            assert call.bye().status == 200
        finally:
            rtp.close()
    coda.assert_idle()
