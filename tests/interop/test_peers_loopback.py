"""Proves the test peers and SIPp scenarios work on loopback, without coda: each
peer calls FakeUas (peers.py), a Python stand-in that answers, records RTP and
hangs up on an RFC 4733 '#'. If these fail, the coda tests cannot be trusted."""

import pytest

import audiocmp as A
import peers
import rtpkit
from conftest import FIXTURES

SPEECH = FIXTURES / "caller-message.wav"


@pytest.fixture
def fake_uas():
    started = []

    def make(**kw):
        u = peers.FakeUas(**kw)
        u.start()
        started.append(u)
        return u

    yield make
    for u in started:
        u.stop_flag.set()
        u.join(5)


@pytest.mark.skipif(not peers.have("sipp"), reason="sipp (sip-tester) not installed")
def test_sipp_deposit_scenario_plays_pcap_and_hash(tmp_path, fake_uas, artifacts):
    speech = A.load(SPEECH)[: 3 * 8000]
    packets, _ = rtpkit.deposit_stream(speech, lead_s=0.5, gap_s=0.5, tail_s=1.0)
    rtpkit.write_pcap(tmp_path / "deposit.pcap", packets)
    uas = fake_uas(status=200, bye_on_digit="#")
    r = peers.run_sipp(tmp_path, "deposit_dtmf", ("127.0.0.1", uas.port), "77513", timeout=30)
    artifacts("sipp", tmp_path / "sipp-deposit_dtmf.out")
    uas.join(10)
    assert uas.error is None, uas.error
    assert r.returncode == 0, peers.sipp_logs(tmp_path)
    assert uas.bye_sent
    assert (11, True) in uas.events  # RFC 4733 '#' end
    c = A.compare(speech, uas.audio(), max_lag_s=2.0)
    assert c.corr > 0.9, c


@pytest.mark.skipif(not peers.have("sipp"), reason="sipp (sip-tester) not installed")
@pytest.mark.parametrize("scenario,status,service", [("bad_sdp", 488, "77513"), ("unknown_extension", 404, "99999")])
def test_sipp_reject_scenarios(tmp_path, fake_uas, scenario, status, service):
    uas = fake_uas(status=status, bye_on_digit=None, duration=10)
    r = peers.run_sipp(tmp_path, scenario, ("127.0.0.1", uas.port), service, timeout=20)
    assert r.returncode == 0, peers.sipp_logs(tmp_path)
    methods = [m.method for m in uas.requests]
    assert methods[:2] == ["INVITE", "ACK"], methods
    ack = uas.requests[1]
    assert ack.branch == uas.requests[0].branch  # RFC 3261 §17.1.1.3


@pytest.mark.skipif(not peers.have("sipp"), reason="sipp (sip-tester) not installed")
def test_sipp_deposit_scenario_fails_without_bye(tmp_path, fake_uas):
    """The scenario must fail when the far end never hangs up (so a coda that
    ignores '#' is caught)."""
    packets, _ = rtpkit.deposit_stream(A.load(SPEECH)[:4000], lead_s=0.2, gap_s=0.2, tail_s=0.2)
    rtpkit.write_pcap(tmp_path / "deposit.pcap", packets)
    uas = fake_uas(status=200, bye_on_digit=None, duration=15)
    r = peers.run_sipp(tmp_path, "deposit_dtmf", ("127.0.0.1", uas.port), "77513", timeout=6)
    assert r.returncode != 0


@pytest.mark.skipif(not peers.have("baresip"), reason="baresip not installed")
def test_baresip_caller_plays_wav_and_hangs_up(tmp_path, fake_uas, artifacts):
    speech = A.load(SPEECH)[: 3 * 8000]
    src = tmp_path / "src.wav"
    A.write_wav(src, A.pad(speech, 0.5, 0.3))
    uas = fake_uas(status=200, bye_on_digit=None, duration=30)
    bs = peers.Baresip(tmp_path / "baresip", src)
    artifacts("baresip", bs.log_path)
    try:
        bs.start()
        bs.command("dial", f"sip:77513@127.0.0.1:{uas.port}")
        bs.wait_event("CALL_ESTABLISHED", 10)
        bs.wait_event("CALL_CLOSED", 20)  # the WAV ended: baresip hangs up
    finally:
        bs.stop()
    uas.join(10)
    assert any(m.method == "BYE" for m in uas.requests)
    c = A.compare(speech, uas.audio(), max_lag_s=3.0)
    assert c.corr > 0.9, c
    enc, _dec = bs.dumps()
    assert enc is not None and A.compare(speech, A.load(enc), max_lag_s=3.0).corr > 0.95


def test_pjsua2_peer_plays_sends_hash_and_sees_remote_hangup(tmp_path, fake_uas, artifacts):
    pytest.importorskip("pjsua2")
    speech = A.load(SPEECH)[: 3 * 8000]
    src = tmp_path / "src.wav"
    A.write_wav(src, A.pad(speech, 0.5, 2.0))
    uas = fake_uas(status=200, bye_on_digit="#", duration=30)
    artifacts("pjsua2", tmp_path / "pjsua2.log")
    res = peers.run_pjsua2_peer(
        tmp_path,
        ["--call", f"sip:77513@127.0.0.1:{uas.port}", "--play", str(src), "--record", str(tmp_path / "rx.wav"),
         "--dtmf", "4.0:#", "--duration", "20"],
    )
    uas.join(10)
    assert res["connected"] and res["hangup_by"] == "remote", res
    assert res["dtmf"] and res["dtmf"][0][0] == "#" and abs(res["dtmf"][0][1] - 4.0) < 0.2, res
    assert (11, True) in uas.events
    c = A.compare(speech, uas.audio(), max_lag_s=3.0)
    assert c.corr > 0.9, c
    assert (tmp_path / "rx.wav").exists()
