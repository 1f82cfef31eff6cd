"""A pjsua2 caller leaves a message and ends it with '#' (RFC 4733); coda stops
recording at the digit, says goodbye and hangs up.

Timeline (seconds from media start, the common origin of pjsua2's playback,
recording and DTMF timer; G = greeting + beep ≈ 13.3 s):

    caller file:  |---- LEAD_S = 16 s ----|--- speech 9.2 s ---|-- 1 s --|#|0.3 s|other speech|
    coda:         |--- greeting+beep ---|====== recording ================|saved, goodbye, BYE
                                        ^ B = beep end (heard by pjsua2)   ^ H = '#' sent

    untrimmed recording length = H - B          (B read from pjsua2's recording: the
                                                 end of the last loud audio before H)
    cross-check:                = lag + 9.2 + 1 (lag = speech start inside the recording)
    expected = min(untrimmed, lag + end of voice + 0.5 s)   (coda drops the silent
                                                 tail beyond common.KEEP_TAIL_S)

Both within DURATION_TOL_S. Had '#' been ignored, the other speech after it would be
in the recording (checked by correlation) and coda would not have hung up.
"""

import numpy as np
import pytest

import audiocmp as A
import peers
from common import DURATION_TOL_S, LEAD_S, OTHER_WAV, expected_length, speech
from conftest import MAILBOX, MAILBOX_EMAIL, audio_path, wait_until, wav_attachments

pjsua2 = pytest.importorskip("pjsua2", reason="pjsua2-python not installed in the venv")

GAP_S = 1.0  # silence between the end of speech and '#'
AFTER_HASH_S = 0.3  # silence after '#' before the other speech


def beep_end(heard: np.ndarray, before_s: float) -> float:
    """End (s) of the last 20 ms frame louder than -40 dBFS before ``before_s``."""
    r = A.frame_rms(heard[: int(before_s * A.RATE)])
    loud = np.nonzero(r > 0.01)[0]
    assert len(loud), "the caller heard no greeting"
    return (loud[-1] + 1) * 0.02


def test_pjsua2_leaves_message_ended_by_hash(make_coda, smtp, tmp_path, artifacts):
    coda = make_coda(smtp=smtp)
    ref = speech()
    speech_s = len(ref) / A.RATE
    after = A.load(OTHER_WAV)
    hash_at = LEAD_S + speech_s + GAP_S
    src = tmp_path / "caller.wav"
    A.write_wav(src, np.concatenate([A.pad(ref, LEAD_S, GAP_S + AFTER_HASH_S), after, np.zeros(5 * A.RATE)]))
    rx = tmp_path / "heard.wav"
    artifacts("pjsua2 log", tmp_path / "pjsua2.log")

    res = peers.run_pjsua2_peer(
        tmp_path,
        ["--call", coda.uri(MAILBOX), "--play", str(src), "--record", str(rx),
         "--dtmf", f"{hash_at:.2f}:#", "--duration", f"{hash_at + 25:.0f}"],
        timeout=hash_at + 60,
    )
    print("pjsua2:", res)
    assert res["connected"], res
    assert res["dtmf"] and res["dtmf"][0][0] == "#", res
    assert res["hangup_by"] == "remote", f"coda did not hang up after '#': {res}"
    hash_sent = res["dtmf"][0][1]

    rows = wait_until(lambda: coda.messages(MAILBOX), 20, "the message in coda.db")
    assert len(rows) == 1, rows
    row = rows[0]
    rec = A.load(audio_path(coda, row))
    rec_s = len(rec) / A.RATE
    assert abs(row["duration_ms"] / 1000.0 - rec_s) < 0.1, (row, rec_s)
    assert "pjsua" in (row.get("caller") or ""), row

    cmp = A.compare(ref, rec, min_lag_s=0.0, min_overlap=0.9)
    print("stored vs sent speech:", cmp)
    assert cmp.corr >= A.CORR_MIN, f"recording does not match the speech: {cmp}"

    b = beep_end(A.load(rx), hash_sent)
    expected = expected_length(hash_sent - b, cmp.lag_s, ref)
    expected_by_lag = expected_length(cmp.lag_s + speech_s + GAP_S, cmp.lag_s, ref)
    print(f"recorded {rec_s:.2f}s; '#' at {hash_sent:.2f}s, beep ended {b:.2f}s -> expected {expected:.2f}s; "
          f"by lag {expected_by_lag:.2f}s")
    assert abs(rec_s - expected) <= DURATION_TOL_S, f"recorded {rec_s:.2f}s, expected {expected:.2f}s (# - beep end)"
    assert abs(rec_s - expected_by_lag) <= DURATION_TOL_S, f"recorded {rec_s:.2f}s, expected {expected_by_lag:.2f}s"
    # Nothing said after the '#' was recorded.
    leak = A.compare(after, rec, min_overlap=0.5)
    assert leak.corr < 0.35, f"audio sent after '#' was recorded: {leak}"

    wait_until(lambda: smtp.messages, 30, "a mail at the SMTP sink")
    msg = smtp.messages[0]
    assert MAILBOX_EMAIL in msg["To"]
    (name, data), = wav_attachments(msg)
    assert A.compare(rec, A.read_wav_bytes(data).samples, max_lag_s=0.1).corr > 0.99

    coda.assert_idle()
