"""Shared constants and raw-socket call helpers for the coda tests."""

from __future__ import annotations

import numpy as np

import audiocmp as A
import rtpkit
import sipkit
from conftest import FIXTURES, MAILBOX

SPEECH_WAV = FIXTURES / "caller-message.wav"
OTHER_WAV = FIXTURES / "other-message.wav"

# coda records only after its greeting and beep. For mailbox 77513 the en-GB deposit
# greeting is "The person at extension" (1.7 s) + five digits (3.0 s) + "is not
# available to take your call." (2.3 s) + "Please leave your message after the
# tone..." (5.9 s) + beep: about 13.3 s. Peers that cannot listen (baresip, SIPp)
# start talking after LEAD_S of silence so the speech falls after the beep.
LEAD_S = 16.0

# How far a measured recording length may be from the expected one (packet timing
# on loopback, G.711 frame boundaries, BYE processing).
DURATION_TOL_S = 0.4


def speech() -> np.ndarray:
    return A.load(SPEECH_WAV)


class RawCall:
    """A call from a raw SIP socket plus a Python RTP peer (see sipkit/rtpkit)."""

    def __init__(self, coda, ext: str = MAILBOX, payloads=None):
        self.ua = sipkit.SipUdp(coda.sip_addr)
        self.rtp = rtpkit.RtpPeer()
        sdp = sipkit.make_sdp("127.0.0.1", self.rtp.addr[1], payloads)
        self.call = sipkit.Call(self.ua, coda.uri(ext), sdp)
        self.stream: rtpkit.StreamBuilder | None = None

    def invite(self, timeout: float = 10.0) -> sipkit.Msg:
        final = self.call.wait_final(timeout)
        if final.status == 200:
            ans = self.call.answer_sdp()
            self.rtp.remote = (ans.ip, ans.port)
            self.stream = rtpkit.StreamBuilder(ans.audio_pt, ans.event_pt or 101)
        return final

    def close(self) -> None:
        self.ua.close()
        self.rtp.close()

    def __enter__(self) -> "RawCall":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# coda ends a message at hang-up or '#' but keeps at most KEEP_TAIL_S of the silence
# after the last voiced 20 ms frame (louder than VOICE_DBFS); see KEEP_TAIL and
# silence_threshold_dbfs in src/apps/deposit.rs.
KEEP_TAIL_S = 0.5
VOICE_DBFS = -50.0


def voiced_end(x: np.ndarray) -> float:
    """End (s) of the last 20 ms frame of ``x`` louder than VOICE_DBFS."""
    r = A.frame_rms(x, A.RATE // 50)
    idx = np.nonzero(r > 10 ** (VOICE_DBFS / 20.0))[0]
    return 0.0 if len(idx) == 0 else (idx[-1] + 1) * 0.02


def expected_length(untrimmed_s: float, lag_s: float, ref: np.ndarray) -> float:
    """Length of a stored message whose speech ``ref`` starts at ``lag_s`` and which
    would be ``untrimmed_s`` long without trimming of the silent tail."""
    return min(untrimmed_s, lag_s + voiced_end(ref) + KEEP_TAIL_S)
