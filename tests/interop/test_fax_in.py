"""Fax in, end to end and in real time: a fax peer in another process (Debian's own
libspandsp through ctypes, faxpeer.py) calls coda over SIP and sends pages by G.711
or T.38; coda mails a PDF through a real SMTP server (aiosmtpd), and the PDF is rendered
back with poppler's pdftoppm and compared pixel for pixel with the pages the peer sent.

Few and short on purpose (1-2 pages each): the many variants (loss, versions, limits,
bad input) run in virtual time in the Rust tests (src/apps/fax_rx/tests.rs).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import faxdoc
import rtpkit
import sipkit
from conftest import MAILBOX, MAILBOX_EMAIL, wait_until

HERE = Path(__file__).resolve().parent
FAXPEER = HERE / "faxpeer.py"
FAX_NUMBER = "5000"
FAX_ADDR_NUMBER = "5001"
FAX_ADDR = "fax-office@example.ac.uk"


def fax_config(**fax) -> dict:
    return {"fax": {"numbers": {FAX_NUMBER: MAILBOX, FAX_ADDR_NUMBER: FAX_ADDR}, **fax}}


def send_fax(tmp_path: Path, to: str, pages: list[np.ndarray], *args: str, timeout: float = 150.0) -> dict:
    tif = faxdoc.write_tiff(tmp_path / "tx.tif", pages)
    result = tmp_path / "result.json"
    cmd = [sys.executable, str(FAXPEER), "send", "--to", to, "--tiff", str(tif), "--result", str(result),
           "--ident", "+44 20 7946 0000", *args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    (tmp_path / "faxpeer.stderr").write_text(r.stderr)
    assert result.exists(), f"faxpeer wrote no result ({r.returncode}):\n{r.stderr[-3000:]}"
    res = json.loads(result.read_text())
    res["exit"] = r.returncode
    return res


def fax_mails(smtp) -> list:
    return [m for m in list(smtp.messages) if "fax" in (m["Subject"] or "").lower()]


def pdf_of(msg, tmp_path: Path) -> Path | None:
    for part in msg.walk():
        if part.get_content_type() == "application/pdf":
            p = tmp_path / (part.get_filename() or "fax.pdf")
            p.write_bytes(part.get_payload(decode=True))
            return p
    return None


def assert_pdf_matches(pdf: Path, pages: list[np.ndarray], fine: bool = False) -> None:
    dpi_y = faxdoc.Y_DPI_FINE if fine else faxdoc.Y_DPI_STANDARD
    got = faxdoc.render_pdf(pdf, faxdoc.X_DPI, dpi_y)
    mism = faxdoc.compare_pages(pages, got)
    assert mism == [0] * len(pages), f"pixel mismatches per page: {mism}"


def fax_rows(coda) -> list[dict]:
    import sqlite3

    con = sqlite3.connect(f"file:{coda.data_dir / 'coda.db'}?mode=ro", uri=True, timeout=5)
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute("SELECT * FROM faxes ORDER BY id")]
    finally:
        con.close()


def test_g711_fax_arrives_as_pdf_mail_pixel_exact(make_coda, smtp, tmp_path, artifacts):
    coda = make_coda(smtp=smtp, **fax_config(t38=False))
    artifacts("coda", coda.stderr_path)
    artifacts("faxpeer", tmp_path / "faxpeer.stderr")
    pages = faxdoc.make_pages(["memo", "numbered"])
    res = send_fax(tmp_path, coda.uri(FAX_NUMBER), pages, "--codec", "pcma", "--t38", "none")
    assert res["exit"] == 0 and res["completion_code"] == 0, res
    assert res["mode_used"] == "audio"
    wait_until(lambda: fax_mails(smtp), 30, "fax mail")
    msg = fax_mails(smtp)[0]
    assert msg["Subject"].startswith("Fax from "), msg["Subject"]
    assert "(2 pages)" in msg["Subject"]
    assert MAILBOX_EMAIL in msg["To"]
    body = msg.get_body(("plain",)).get_content()
    assert "Sender's fax ID: +44 20 7946 0000" in body, body
    assert "audio (G.711)" in body
    pdf = pdf_of(msg, tmp_path)
    assert pdf is not None
    assert_pdf_matches(pdf, pages)
    rows = fax_rows(coda)
    assert len(rows) == 1 and rows[0]["pages"] == 2 and rows[0]["result_code"] == 0
    assert rows[0]["transport"] == "audio"
    coda.assert_idle()


def test_t38_peer_reinvite_v0_with_20_percent_loss(make_coda, smtp, tmp_path, artifacts):
    coda = make_coda(smtp=smtp, **fax_config())
    artifacts("coda", coda.stderr_path)
    artifacts("faxpeer", tmp_path / "faxpeer.stderr")
    pages = faxdoc.make_pages(["memo", "blank"])
    res = send_fax(tmp_path, coda.uri(FAX_NUMBER), pages, "--t38", "request", "--t38-version", "0",
                   "--t38-delay", "1.0", "--loss", "0.2")
    assert res["exit"] == 0 and res["completion_code"] == 0, res
    assert res["mode_used"] == "t38", res
    wait_until(lambda: fax_mails(smtp), 30, "fax mail")
    msg = fax_mails(smtp)[0]
    assert "T.38" in msg.get_body(("plain",)).get_content()
    assert_pdf_matches(pdf_of(msg, tmp_path), pages)
    rows = fax_rows(coda)
    assert rows[0]["transport"] == "t38" and rows[0]["pages"] == 2
    m = coda.metrics()
    assert m["coda_udptl_datagrams_in_total"] > 0 and m["coda_fax_rx_ok_total"] == 1
    coda.assert_idle()


def test_t38_coda_reinvite_v3_to_an_address(make_coda, smtp, tmp_path, artifacts):
    coda = make_coda(smtp=smtp, **fax_config(t38_request=True))
    artifacts("coda", coda.stderr_path)
    artifacts("faxpeer", tmp_path / "faxpeer.stderr")
    pages = faxdoc.make_pages(["numbered"])
    res = send_fax(tmp_path, coda.uri(FAX_ADDR_NUMBER), pages, "--t38", "accept", "--t38-version", "3")
    assert res["exit"] == 0 and res["completion_code"] == 0, res
    assert res["mode_used"] == "t38", res
    wait_until(lambda: fax_mails(smtp), 30, "fax mail")
    msg = fax_mails(smtp)[0]
    assert FAX_ADDR in msg["To"]
    assert_pdf_matches(pdf_of(msg, tmp_path), pages)
    coda.assert_idle()


def test_voicemail_call_that_hears_cng_becomes_a_fax(make_coda, smtp, tmp_path, artifacts):
    coda = make_coda(smtp=smtp, **fax_config(t38=False))
    artifacts("coda", coda.stderr_path)
    artifacts("faxpeer", tmp_path / "faxpeer.stderr")
    pages = faxdoc.make_pages(["numbered"])
    res = send_fax(tmp_path, coda.uri(MAILBOX), pages, "--t38", "none")
    assert res["exit"] == 0 and res["completion_code"] == 0, res
    wait_until(lambda: fax_mails(smtp), 30, "fax mail")
    msg = fax_mails(smtp)[0]
    assert MAILBOX_EMAIL in msg["To"]
    assert_pdf_matches(pdf_of(msg, tmp_path), pages)
    assert coda.messages(MAILBOX) == [], "no voicemail left for a fax call"
    coda.assert_idle()


def test_caller_that_is_not_a_fax_gets_a_failure_mail(make_coda, smtp, tmp_path, artifacts):
    """A person (or a broken ATA) calls the fax number, says nothing useful and hangs up:
    the owner is told in words that no page arrived; nothing is attached."""
    coda = make_coda(smtp=smtp, **fax_config())
    artifacts("coda", coda.stderr_path)
    with sipkit.SipUdp(coda.sip_addr) as ua:
        rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rtp.bind(("127.0.0.1", 0))
        call = sipkit.Call(ua, coda.uri(FAX_ADDR_NUMBER), sipkit.make_sdp("127.0.0.1", rtp.getsockname()[1]))
        call.send_invite()
        final = call.wait_final(10)
        assert final.status == 200
        sdp = call.answer_sdp()
        sb = rtpkit.StreamBuilder(audio_pt=0).silence(3.0)
        t0 = time.monotonic()
        for at, pkt in sb.take():
            delay = t0 + at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            rtp.sendto(pkt, (sdp.ip, sdp.port))
        assert call.bye().status == 200
        rtp.close()
    wait_until(lambda: fax_mails(smtp), 30, "failure mail")
    msg = fax_mails(smtp)[0]
    assert msg["Subject"].startswith("Failed fax from"), msg["Subject"]
    assert "no page arrived" in msg.get_body(("plain",)).get_content()
    assert pdf_of(msg, tmp_path) is None
    assert fax_rows(coda)[0]["pages"] == 0
    coda.assert_idle()


def test_unknown_fax_mailbox_is_404(make_coda, tmp_path):
    coda = make_coda(fax={"numbers": {"5009": "99999"}})
    with sipkit.SipUdp(coda.sip_addr) as ua:
        call = sipkit.Call(ua, coda.uri("5009"), sipkit.make_sdp("127.0.0.1", 40000))
        call.send_invite()
        assert call.wait_final(10).status == 404
    coda.assert_idle()


def test_spool_that_refuses_the_pdf_still_mails_it(make_coda, smtp, tmp_path, artifacts):
    """Bad input from the machine itself: the fax spool cannot be written (here a file stands
    where the directory should be, as a full or read-only disk would refuse it). The fax is
    still recorded, and the owner gets the PDF by mail with a note that it is the only copy."""
    coda = make_coda(smtp=smtp, start=False, **fax_config(t38=False))
    artifacts("coda", coda.stderr_path)
    artifacts("faxpeer", tmp_path / "faxpeer.stderr")
    spool = coda.data_dir / "spool"
    spool.mkdir(parents=True, exist_ok=True)
    (spool / "fax").write_text("not a directory")
    coda.start()
    pages = faxdoc.make_pages(["numbered"])
    res = send_fax(tmp_path, coda.uri(FAX_NUMBER), pages, "--codec", "pcmu", "--t38", "none")
    assert res["exit"] == 0, res
    wait_until(lambda: fax_mails(smtp), 30, "fax mail")
    msg = fax_mails(smtp)[0]
    body = msg.get_body(("plain",)).get_content()
    assert "the attached PDF is the only one" in body, body
    assert_pdf_matches(pdf_of(msg, tmp_path), pages)
    rows = fax_rows(coda)
    assert rows[0]["pdf_path"] is None and rows[0]["pages"] == 1
    assert "could not be written" in coda.stderr_text()
    coda.assert_idle()


T38_SDP = (
    "v=0\r\no=tester 1 {ver} IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=image {port} udptl t38\r\na=T38FaxVersion:0\r\na=T38MaxBitRate:14400\r\n"
    "a=T38FaxRateManagement:transferredTCF\r\na=T38FaxMaxBuffer:2000\r\na=T38FaxMaxDatagram:400\r\n"
    "a=T38FaxUdpEC:t38UDPRedundancy\r\n"
)


def _reply(ua, req, status: int, reason: str, body: bytes = b"") -> None:
    lines = [f"SIP/2.0 {status} {reason}"]
    lines += [f"Via: {v}" for v in req.get_all("via")]
    lines += [f"From: {req.get('from')}", f"To: {req.get('to')}", f"Call-ID: {req.get('call-id')}",
              f"CSeq: {req.get('cseq')}"]
    if body:
        lines += [f"Contact: <sip:tester@{ua.local[0]}:{ua.local[1]}>", "Content-Type: application/sdp"]
    lines.append(f"Content-Length: {len(body)}")
    ua.sock.sendto(("\r\n".join(lines) + "\r\n\r\n").encode() + body, ua.server)


def _next(ua, pred, timeout: float):
    """Raw receive (no auto-answer) until ``pred(msg)``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ua.sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data, _ = ua.sock.recvfrom(70000)
        except socket.timeout:
            break
        m = sipkit.parse(data)
        if m is not None and pred(m):
            return m
    return None


def test_rfc3261_14_glare_491_both_ways_then_t38_and_a_session_refresh_keeps_it(make_coda, tmp_path, artifacts):
    """coda re-INVITEs to T.38; the peer crosses it with its own re-INVITE (coda answers 491,
    §14.2), then answers coda's with 491; coda retries after 0-2 s (§14.1, not the Call-ID
    owner), gets 200 with T.38, ACKs, and UDPTL flows. A later re-INVITE with the same T.38
    offer (a session-timer refresh) is answered 200 and the UDPTL stream goes on unbroken."""
    coda = make_coda(**fax_config(t38_request=True, t38_request_delay_ms=300))
    artifacts("coda", coda.stderr_path)
    udptl = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udptl.bind(("127.0.0.1", 0))
    uport = udptl.getsockname()[1]
    with sipkit.SipUdp(coda.sip_addr) as ua:
        call = sipkit.Call(ua, coda.uri(FAX_NUMBER), sipkit.make_sdp("127.0.0.1", uport))
        assert call.wait_final(10).status == 200
        is_reinvite = lambda m: (not m.is_response) and m.method == "INVITE"  # noqa: E731
        first = _next(ua, is_reinvite, 5)
        assert first is not None and b"m=image" in first.body and b"udptl t38" in first.body, first
        # Cross it with our own re-INVITE: coda must refuse it with 491.
        cseq = 2
        branch = sipkit.new_branch()
        ours = ua.build("INVITE", call.remote_target, call.call_id, call.from_tag, cseq, branch, call.to_tag,
                        body=T38_SDP.format(ver=2, port=uport).encode())
        ua.send_raw(ours)
        r491 = _next(ua, lambda m: m.is_response and m.cseq_method == "INVITE" and m.status >= 200, 5)
        assert r491 is not None and r491.status == 491, r491
        ua.send_raw(ua.build("ACK", call.remote_target, call.call_id, call.from_tag, cseq, branch, call.to_tag))
        # Now refuse coda's with 491 too; its INVITE client transaction ACKs that.
        _reply(ua, first, 491, "Request Pending")
        t491 = time.monotonic()
        ack = _next(ua, lambda m: (not m.is_response) and m.method == "ACK", 3)
        assert ack is not None
        retry = _next(ua, is_reinvite, 4)
        waited = time.monotonic() - t491
        assert retry is not None, "coda did not retry its re-INVITE"
        assert waited <= 2.6, waited
        assert retry.get("cseq") != first.get("cseq")
        _reply(ua, retry, 200, "OK", T38_SDP.format(ver=3, port=uport).encode())
        ack2 = _next(ua, lambda m: (not m.is_response) and m.method == "ACK", 3)
        assert ack2 is not None, "no ACK for our 200"
        # UDPTL from coda's T.38 terminal (answering side: CED/indicators). The port also
        # holds coda's RTP from before the switch: skip those (V=2, 160-byte G.711 payload).
        udptl.settimeout(5)

        def recv_udptl():
            while True:
                d, _ = udptl.recvfrom(2000)
                if not (len(d) == 172 and d[0] == 0x80):
                    return d

        before = [int.from_bytes(recv_udptl()[:2], "big")]
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            udptl.settimeout(max(0.01, end - time.monotonic()))
            try:
                before.append(int.from_bytes(recv_udptl()[:2], "big"))
            except socket.timeout:
                break
        udptl.settimeout(5)
        seq1 = max(before)
        assert seq1 > 0, before
        # Session refresh with the same T.38 offer: 200 with T.38, stream continues.
        cseq = 3
        branch = sipkit.new_branch()
        ua.send_raw(ua.build("INVITE", call.remote_target, call.call_id, call.from_tag, cseq, branch, call.to_tag,
                             body=T38_SDP.format(ver=4, port=uport).encode()))
        ok = _next(ua, lambda m: m.is_response and m.cseq_method == "INVITE" and m.status >= 200, 5)
        assert ok is not None and ok.status == 200 and b"udptl t38" in ok.body, ok
        ua.send_raw(ua.build("ACK", call.remote_target, call.call_id, call.from_tag, cseq, sipkit.new_branch(),
                             call.to_tag))
        seqs = []
        end = time.monotonic() + 3
        while time.monotonic() < end and len(seqs) < 5:
            try:
                seqs.append(int.from_bytes(recv_udptl()[:2], "big"))
            except socket.timeout:
                break
        # The same terminal goes on: no restart at sequence 0.
        assert seqs and all(s >= seq1 for s in seqs) and seqs == sorted(seqs), (before, seqs)
        call.cseq = cseq
        assert call.bye().status == 200
    udptl.close()
    log = coda.stderr_text()
    assert "re-INVITE crosses ours: 491" in log and "491 to our re-INVITE; retrying" in log
    coda.assert_idle()
