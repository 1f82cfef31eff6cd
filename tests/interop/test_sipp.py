"""SIPp against coda: a deposit ended by an RFC 4733 '#' replayed from a pcap, a
bad-SDP INVITE (488) and an unknown extension (404). Scenarios: tests/sipp/.

deposit_dtmf: the pcap (written here by rtpkit) is, from the ACK on,
    LEAD_S silence | speech (9.2 s) | 1.0 s silence | '#' (0.2 s event) | 0.3 s | other speech
SIPp replays it with its own timing and waits for coda's BYE. coda records from the
beep to the '#' (less the silent tail beyond 0.5 s, common.KEEP_TAIL_S), so the
stored message is  min(lag + 9.2 + 1.0, lag + end of voice + 0.5)  long (lag = where
the speech starts inside the recording). Had '#' been ignored, the other speech
after it would be in the recording, and coda would not send the BYE the scenario
waits for.
"""

import email
import email.policy

import pytest

import audiocmp as A
import peers
import rtpkit
from common import DURATION_TOL_S, LEAD_S, OTHER_WAV, expected_length, speech
from conftest import MAILBOX, audio_path, wait_until, wav_attachments

pytestmark = pytest.mark.skipif(not peers.have("sipp"), reason="sipp not installed (Debian sip-tester)")

GAP_S = 1.0


def test_sipp_deposit_ended_by_rfc4733_hash(coda, tmp_path, artifacts):
    ref = speech()
    after = A.load(OTHER_WAV)
    packets, _digit_at = rtpkit.deposit_stream(ref, lead_s=LEAD_S, gap_s=GAP_S, tail_s=0.3, after=after)
    rtpkit.write_pcap(tmp_path / "deposit.pcap", packets)
    r = peers.run_sipp(tmp_path, "deposit_dtmf", coda.sip_addr, MAILBOX, timeout=90)
    artifacts("sipp", tmp_path / "sipp-deposit_dtmf.out")
    assert r.returncode == 0, peers.sipp_logs(tmp_path)

    rows = wait_until(lambda: coda.messages(MAILBOX), 20, "the message in coda.db")
    assert len(rows) == 1, rows
    rec = A.load(audio_path(coda, rows[0]))
    rec_s = len(rec) / A.RATE
    cmp = A.compare(ref, rec, min_lag_s=0.0, min_overlap=0.9)
    print("stored vs sent:", cmp)
    assert cmp.corr >= A.CORR_MIN, cmp
    expected = expected_length(cmp.lag_s + len(ref) / A.RATE + GAP_S, cmp.lag_s, ref)
    assert abs(rec_s - expected) <= DURATION_TOL_S, f"recorded {rec_s:.2f}s, expected {expected:.2f}s"
    leak = A.compare(after, rec, min_overlap=0.5)
    assert leak.corr < 0.35, f"audio sent after '#' was recorded: {leak}"

    # file mail transport: one .eml in <data>/outbox with the WAV
    emls = wait_until(coda.outbox, 20, "an .eml in the outbox")
    assert len(emls) == 1
    msg = email.message_from_bytes(emls[0].read_bytes(), policy=email.policy.default)
    assert "Voicemail from" in msg["Subject"]
    (name, data), = wav_attachments(msg)
    assert A.compare(rec, A.read_wav_bytes(data).samples, max_lag_s=0.1).corr > 0.99

    coda.assert_idle()


@pytest.mark.parametrize(
    "scenario,service",
    [("bad_sdp", MAILBOX), ("unknown_extension", "99999")],
    ids=["488-no-common-codec", "404-unknown-extension"],
)
def test_sipp_rejections(coda, tmp_path, scenario, service):
    r = peers.run_sipp(tmp_path, scenario, coda.sip_addr, service, timeout=20)
    assert r.returncode == 0, peers.sipp_logs(tmp_path)
    assert coda.messages() == []
    coda.assert_idle()
