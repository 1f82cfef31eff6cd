"""Proves the libspandsp fax peer (faxpeer.py) and the document helpers (faxdoc.py)
against themselves, without coda: if these fail, the coda fax tests cannot be
trusted.

* fast unit checks: UDPTL framing (T.38 §9.1, Annex A) and redundancy recovery,
  the loss pattern, TIFF write/read, PDF rendering, and an in-process spandsp
  loopback (simulated time) through the ctypes bindings;
* real-time loopback calls between two faxpeer processes over SIP/RTP/UDPTL on
  127.0.0.1: G.711 audio, and T.38 via the accept path (the receiver re-INVITEs,
  the sender answers), also with 20 % UDPTL loss and T.38 version 3.

Run alone with ``venv/bin/pytest tests/interop/test_faxpeer_selftest.py``.
"""

from __future__ import annotations

import ctypes
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import faxdoc
import faxpeer as FP
import rtpkit
import sipkit
from conftest import free_port

HERE = Path(__file__).resolve().parent
FAXPEER = HERE / "faxpeer.py"


def _have_libspandsp() -> bool:
    try:
        ctypes.CDLL("libspandsp.so.2")
        return True
    except OSError:
        return False


pytestmark = [
    pytest.mark.skipif(not _have_libspandsp(), reason="libspandsp2 (Debian) not installed"),
    pytest.mark.skipif(not all(shutil.which(t) for t in ("tiffcp", "tiff2pdf", "pdftoppm", "pdfinfo")),
                       reason="libtiff-tools / poppler-utils not installed"),
]

# --------------------------------------------------------------- unit checks


def test_udptl_t38_annex_a_length_determinant_one_and_two_octets():
    assert FP.encode_length(0) == b"\x00"
    assert FP.encode_length(127) == b"\x7f"
    assert FP.encode_length(128) == b"\x80\x80"
    assert FP.encode_length(300) == b"\x81\x2c"
    for n in (0, 1, 127, 128, 300, 16383):
        enc = FP.encode_length(n) + b"tail"
        assert FP.decode_length(enc, 0) == (n, len(enc) - 4)
    with pytest.raises(ValueError):
        FP.decode_length(b"\xc1", 0)  # fragments are not supported
    with pytest.raises(ValueError):
        FP.decode_length(b"\x81", 0)


def test_udptl_t38_sec9_1_datagram_layout_and_redundancy_newest_first():
    tx = FP.UdptlSender(depth=3, max_datagram=400, start_seq=0xFFFE)
    ifps = [bytes([0x80 | i]) * (i + 1) for i in range(6)]
    dgs = [tx.build(i) for i in ifps]
    # first datagram: seq, primary with its length, choice 0 (redundancy), 0 entries
    assert dgs[0] == b"\xff\xfe" + b"\x01\x80" + b"\x00\x00"
    p = FP.parse_udptl(dgs[4])
    assert p.seq == 2  # wrapped 0xFFFE, 0xFFFF, 0, 1, 2
    assert p.primary == ifps[4]
    assert p.secondary == [ifps[3], ifps[2], ifps[1]]


def test_udptl_redundancy_trimmed_to_far_max_datagram():
    tx = FP.UdptlSender(depth=3, max_datagram=60)
    for _ in range(4):
        dg = tx.build(b"x" * 25)
    assert len(dg) <= 60
    assert len(FP.parse_udptl(dg).secondary) == 1


def test_udptl_receiver_recovers_losses_drops_repeats_and_late():
    tx = FP.UdptlSender(depth=3)
    ifps = [bytes([i]) * 3 for i in range(20)]
    dgs = [tx.build(i) for i in ifps]
    rx = FP.UdptlReceiver()
    got = []
    for k, dg in enumerate(dgs):
        if k in (3, 4, 5, 10):  # a burst of 3 (= depth) and a single loss
            continue
        got += rx.feed(dg)
        got += rx.feed(dg)  # every datagram twice (spandsp's repeat count)
    got += rx.feed(dgs[10])  # late: already recovered
    assert [s for s, _ in got] == list(range(20))
    assert [i for _, i in got] == ifps
    assert rx.recovered == 4 and rx.lost == 0 and rx.duplicates == 16 + 1  # 16 repeats, 1 late


def test_udptl_receiver_burst_longer_than_depth_is_reported_lost():
    tx = FP.UdptlSender(depth=2)
    dgs = [tx.build(bytes([i])) for i in range(10)]
    rx = FP.UdptlReceiver()
    got = []
    for k, dg in enumerate(dgs):
        if k not in (2, 3, 4, 5):
            got += rx.feed(dg)
    assert [s for s, _ in got] == [0, 1, 4, 5, 6, 7, 8, 9]
    assert rx.lost == 2


def test_loss_pattern_is_evenly_spread():
    loss = FP.Loss(0.2)
    pattern = [loss.drop() for _ in range(20)]
    assert pattern == [False, False, False, False, True] * 4
    assert FP.Loss(0.0).drop() is False


def test_faxdoc_tiff_roundtrip_uncompressed_g4_g3(tmp_path):
    pages = faxdoc.make_pages(["memo", "blank", "numbered"])
    for p in pages:
        assert p.shape == (faxdoc.A4_ROWS_STANDARD, 1728)
    assert np.count_nonzero(pages[0]) > 20 * np.count_nonzero(pages[1])
    for comp, code in (("none", 1), ("g4", 4), ("g3", 3)):
        path = faxdoc.write_tiff(tmp_path / f"{comp}.tif", pages, compression=comp)
        got = faxdoc.read_tiff(path)
        assert [g.compression for g in got] == [code] * 3
        assert [(g.x_dpi, g.y_dpi) for g in got] == [(204.0, 98.0)] * 3
        assert faxdoc.compare_pages(pages, [g.bitmap for g in got]) == [0, 0, 0]


@pytest.mark.parametrize("fine", [False, True])
def test_faxdoc_pdf_render_at_fax_resolution_is_pixel_exact(tmp_path, fine):
    pages = faxdoc.make_pages(["memo", "numbered"], fine=fine)
    tif = faxdoc.write_tiff(tmp_path / "p.tif", pages, fine=fine, compression="g4")
    pdf = faxdoc.tiff_to_pdf(tif, tmp_path / "p.pdf")
    y = faxdoc.Y_DPI_FINE if fine else faxdoc.Y_DPI_STANDARD
    assert len(faxdoc.pdf_page_sizes(pdf)) == 2
    rendered = faxdoc.render_pdf(pdf, faxdoc.X_DPI, y)
    assert [r.shape for r in rendered] == [p.shape for p in pages]
    assert faxdoc.compare_pages(pages, rendered) == [0, 0]
    # and compare() does see a difference
    assert faxdoc.compare(pages[0], np.roll(rendered[0], 1, axis=0)) > 1000


@pytest.mark.parametrize("mode,ecm,source", [("audio", True, "g4"), ("audio", False, "none"), ("t38", True, "none"),
                                             ("t38", False, "g4")])
def test_spandsp_bindings_in_process_loopback(tmp_path, mode, ecm, source):
    """Both ends in one process, time simulated (20 ms steps as fast as possible):
    the ctypes bindings, the TIFF the library accepts, UDPTL with 20 % loss."""
    pages = faxdoc.make_pages(["numbered", "blank"])
    src = faxdoc.write_tiff(tmp_path / "src.tif", pages, compression=source)
    rx_path = tmp_path / "rx.tif"
    a_cfg = FP.FaxConfig(ident="LOOP-TX", ecm=ecm, tx_file=str(src))
    b_cfg = FP.FaxConfig(ident="LOOP-RX", ecm=ecm, rx_file=str(rx_path))
    steps = 0
    if mode == "audio":
        a, b = FP.AudioFax(True, a_cfg), FP.AudioFax(False, b_cfg)

        def g711(x):
            return np.round(rtpkit.decode(rtpkit.encode(x / 32768.0, 8), 8) * 32768).astype(np.int16)

        while steps < 50 * 120 and (a.t30.phase_e is None or b.t30.phase_e is None):
            xa, xb = a.tx(), b.tx()
            b.rx(g711(xa))
            a.rx(g711(xb))
            steps += 1
    else:
        to_a, to_b = [], []
        senders = (FP.UdptlSender(3), FP.UdptlSender(3))
        rxs = (FP.UdptlReceiver(), FP.UdptlReceiver())
        losses = (FP.Loss(0.2), FP.Loss(0.2))

        def out(q, sender, loss):
            def send(ifp, count):
                dg = sender.build(ifp)
                q.extend(dg for _ in range(count) if not loss.drop())
            return send

        a = FP.T38Fax(True, a_cfg, out(to_b, senders[0], losses[0]), version=3)
        b = FP.T38Fax(False, b_cfg, out(to_a, senders[1], losses[1]), version=3)
        while steps < 50 * 120 and (a.t30.phase_e is None or b.t30.phase_e is None):
            a.tick()
            b.tick()
            for q, rx, t in ((to_b, rxs[1], b), (to_a, rxs[0], a)):
                while q:
                    for seq, ifp in rx.feed(q.pop(0)):
                        t.rx_ifp(ifp, seq)
            steps += 1
        assert rxs[1].recovered > 10 and rxs[1].lost == 0
    sa, sb = a.t30.stats(), b.t30.stats()
    assert (a.t30.phase_e, b.t30.phase_e) == (0, 0), (a.t30.phase_e, b.t30.phase_e)
    assert (sa.pages_tx, sb.pages_rx) == (2, 2)
    assert bool(sb.error_correcting_mode) == ecm and sb.bad_rows == 0
    assert (a.t30.remote_ident(), b.t30.remote_ident()) == ("LOOP-RX", "LOOP-TX")
    assert (sb.width, sb.x_resolution, sb.y_resolution) == (1728, 8031, 3850)  # pixels per metre
    a.close()
    b.close()
    got = faxdoc.read_tiff(rx_path)
    assert faxdoc.compare_pages(pages, [g.bitmap for g in got]) == [0, 0]


# ------------------------------------------------------ real-time SIP calls


class PeerRun:
    def __init__(self, tmp: Path, name: str, args: list[str]):
        self.name = name
        self.result_path = tmp / f"{name}.json"
        self.stderr_path = tmp / f"{name}.stderr"
        self.err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen([sys.executable, str(FAXPEER), *args, "--result", str(self.result_path)],
                                     stdin=subprocess.DEVNULL, stdout=self.err, stderr=self.err, cwd=HERE)

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(5)
            self.err.close()

    def result(self) -> dict:
        return json.loads(self.result_path.read_text())


def _wait_listening(port: int, proc: subprocess.Popen, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    with sipkit.SipUdp(("127.0.0.1", port)) as ua:
        while time.monotonic() < deadline:
            assert proc.poll() is None, "faxpeer listen exited early"
            r = ua.options(timeout=0.5)
            if r is not None and r.status == 200:
                return
    raise AssertionError(f"faxpeer listen on {port} did not answer OPTIONS")


def run_call(tmp_path: Path, artifacts, pages_kinds: list[str], send_opts: list[str], listen_opts: list[str],
             compression: str = "g4") -> tuple[dict, dict, list[np.ndarray], Path, float]:
    pages = faxdoc.make_pages(pages_kinds)
    src = faxdoc.write_tiff(tmp_path / "src.tif", pages, compression=compression)
    rx = tmp_path / "rx.tif"
    port = free_port()
    t0 = time.monotonic()
    listener = PeerRun(tmp_path, "listen", ["listen", "--port", str(port), "--rx", str(rx), "--ident", "RX PEER 2",
                                            "--timeout", "120", "--wait", "20", *listen_opts])
    artifacts("faxpeer listen stderr", listener.stderr_path)
    _wait_listening(port, listener.proc)
    sender = PeerRun(tmp_path, "send", ["send", "--to", f"sip:5000@127.0.0.1:{port}", "--tiff", str(src),
                                        "--ident", "+1 555 0100", "--timeout", "120", *send_opts])
    artifacts("faxpeer send stderr", sender.stderr_path)
    rc_send = sender.wait(150)
    rc_listen = listener.wait(30)
    elapsed = time.monotonic() - t0
    s, r = sender.result(), listener.result()
    assert (rc_send, rc_listen) == (0, 0), (s.get("text"), r.get("text"))
    return s, r, pages, rx, elapsed


def _check(s: dict, r: dict, pages: list[np.ndarray], rx: Path, mode: str) -> None:
    assert s["completion_code"] == 0 and r["completion_code"] == 0, (s["text"], r["text"])
    assert s["pages_sent"] == len(pages) and r["pages_received"] == len(pages)
    assert s["mode_used"] == mode and r["mode_used"] == mode
    assert s["remote_ident"] == "RX PEER 2" and r["remote_ident"] == "+1 555 0100"
    assert r["bad_rows"] == 0 and r["width"] == 1728
    got = faxdoc.read_tiff(rx)
    assert [(g.x_dpi, g.y_dpi) for g in got] == [(204.0, 98.0)] * len(pages)
    assert faxdoc.compare_pages(pages, [g.bitmap for g in got]) == [0] * len(pages)


def test_faxpeer_audio_g711_two_pages(tmp_path, artifacts):
    s, r, pages, rx, elapsed = run_call(tmp_path, artifacts, ["memo", "numbered"],
                                        ["--codec", "pcma", "--t38", "none"], ["--t38", "none"])
    _check(s, r, pages, rx, "audio")
    assert s["codec"] == r["codec"] == "pcma" and s["ecm"] is True
    # the received (T.6, LSB-first) TIFF → tiff2pdf → pdftoppm gives the source back
    pdf = faxdoc.tiff_to_pdf(rx, tmp_path / "rx.pdf")
    assert faxdoc.compare_pages(pages, faxdoc.render_pdf(pdf, 204, 98)) == [0, 0]
    print(f"audio fax, 2 pages: {elapsed:.1f} s")


def test_faxpeer_t38_accept_path_two_pages(tmp_path, artifacts):
    """The receiver re-INVITEs to T.38 (as coda will), the sender accepts."""
    s, r, pages, rx, elapsed = run_call(tmp_path, artifacts, ["memo", "blank"],
                                        ["--t38", "accept"], ["--t38", "request"])
    _check(s, r, pages, rx, "t38")
    assert s["t38_version"] == r["t38_version"] == 0
    assert any("T.38 re-INVITE accepted" in e for e in s["events"])
    assert r["udptl"]["ifps_delivered"] > 100 and r["udptl"]["lost"] == 0
    print(f"T.38 fax, 2 pages: {elapsed:.1f} s")


def test_faxpeer_t38_v3_no_ecm_survives_20_percent_loss(tmp_path, artifacts):
    s, r, pages, rx, elapsed = run_call(
        tmp_path, artifacts, ["numbered", "blank"],
        ["--t38", "accept", "--t38-version", "3", "--loss", "0.2", "--no-ecm"],
        ["--t38", "request", "--t38-version", "3", "--loss", "0.2", "--no-ecm"], compression="none")
    _check(s, r, pages, rx, "t38")
    assert s["t38_version"] == r["t38_version"] == 3
    assert s["ecm"] is False and r["ecm"] is False
    assert s["udptl_dropped"] > 20 and r["udptl"]["recovered"] > 20 and r["udptl"]["lost"] == 0
    print(f"T.38 v3 fax with 20 % loss, 2 pages: {elapsed:.1f} s")
