"""baresip leaves a voicemail for 77513 and hangs up; coda stores and mails it.

Timeline (seconds from answer; G = coda's greeting + beep, about 13.3 s):

    caller file:  |---- LEAD_S = 16 s silence ----|--- speech 9.2 s ---|0.5 s|
    coda:         |--- greeting + beep (G) ---|====== recording ==================|
                                              ^ beep end              BYE ^

baresip hangs up when its aufile source ends, and keeps sending for a moment
after the file's last sample (it was ~0.8 s in trials), so the end of the
recording is taken from baresip's own dump of what it sent (``*-enc.wav``):

    expected recording length = lag + (len(enc) - speech start in enc)

where ``lag`` is where the speech starts inside coda's recording (found by
cross-correlation, ~16 - G ≈ 2.7 s). This needs no knowledge of G. coda keeps
at most 0.5 s of silence after the last voiced frame (common.KEEP_TAIL_S), so

    expected = min(untrimmed, lag + end of voice in the speech + 0.5 s)

within DURATION_TOL_S. The stored
audio must contain the whole speech (lag >= 0, 90 % overlap) with normalised
correlation >= 0.6, and the mail sent to the SMTP sink must carry the same WAV.
"""

import audiocmp as A
import peers
import pytest
from common import DURATION_TOL_S, LEAD_S, expected_length, speech
from conftest import MAILBOX, MAILBOX_EMAIL, audio_path, wait_until, wav_attachments

pytestmark = pytest.mark.skipif(not peers.have("baresip"), reason="baresip not installed (Debian baresip-core)")

TRAIL_S = 0.5


def test_baresip_leaves_message_and_hangs_up(make_coda, smtp, tmp_path, artifacts):
    coda = make_coda(smtp=smtp)
    ref = speech()
    src = tmp_path / "caller.wav"
    A.write_wav(src, A.pad(ref, LEAD_S, TRAIL_S))

    bs = peers.Baresip(tmp_path / "baresip", src)
    artifacts("baresip log", bs.log_path)
    try:
        bs.start()
        bs.command("dial", coda.uri(MAILBOX))
        bs.wait_event("CALL_ESTABLISHED", 15)
        closed = bs.wait_event("CALL_CLOSED", LEAD_S + len(ref) / A.RATE + 30)
    finally:
        bs.stop()
    # baresip ended the call because its file ended, not because coda hung up.
    assert "end of file" in str(closed.get("param", "")), closed

    rows = wait_until(lambda: coda.messages(MAILBOX), 20, "the message in coda.db")
    assert len(rows) == 1, rows
    row = rows[0]
    wav = audio_path(coda, row)
    assert wav.exists(), row
    assert A.wav_format(wav) == (1, 1, 8000, 16)
    rec = A.load(wav)
    rec_s = len(rec) / A.RATE
    assert abs(row["duration_ms"] / 1000.0 - rec_s) < 0.1, (row, rec_s)
    assert "caller" in (row.get("caller") or ""), row

    cmp = A.compare(ref, rec, min_lag_s=0.0, min_overlap=0.9)
    print("stored vs sent speech:", cmp)
    assert cmp.corr >= A.CORR_MIN, f"recording does not match the speech: {cmp}"

    enc, dec = bs.dumps()
    assert enc is not None, "baresip wrote no -enc.wav dump"
    sent = A.load(enc)
    in_enc = A.compare(ref, sent, min_lag_s=0.0)
    untrimmed = cmp.lag_s + (len(sent) / A.RATE - in_enc.lag_s)
    expected = expected_length(untrimmed, cmp.lag_s, ref)
    print(f"recorded {rec_s:.2f}s expected {expected:.2f}s (untrimmed {untrimmed:.2f}s, lag {cmp.lag_s:.2f}s, enc {len(sent) / A.RATE:.2f}s, "
          f"speech in enc at {in_enc.lag_s:.2f}s)")
    if dec is not None:
        heard = A.load(dec)
        span = A.active_span(heard)
        print(f"caller heard {len(heard) / A.RATE:.2f}s, loud until {span[1] if span else None}")
    assert abs(rec_s - expected) <= DURATION_TOL_S, f"recorded {rec_s:.2f}s, expected {expected:.2f}s"

    # The mail: one message to Alice with the WAV attached.
    wait_until(lambda: smtp.messages, 30, "a mail at the SMTP sink")
    assert len(smtp.messages) == 1
    msg = smtp.messages[0]
    assert MAILBOX_EMAIL in msg["To"], msg["To"]
    assert "Voicemail from" in msg["Subject"], msg["Subject"]
    assert any(MAILBOX_EMAIL in r for r in smtp.envelopes[0].rcpt_tos)
    atts = wav_attachments(msg)
    assert len(atts) == 1, [a[0] for a in atts]
    name, data = atts[0]
    assert name.startswith("msg-") and name.endswith(".wav"), name
    att = A.read_wav_bytes(data)
    assert att.rate == 8000
    assert abs(att.duration - rec_s) < 0.05
    assert A.compare(rec, att.samples, max_lag_s=0.1).corr > 0.99
    assert A.compare(ref, att.samples, min_lag_s=0.0, min_overlap=0.9).corr >= A.CORR_MIN

    coda.assert_idle()
