"""Unit tests of the audio comparison used by the deposit tests (no coda needed).

They prove the check can fail: the same speech through G.711 at an offset and a
different gain scores high, other speech or noise scores low.
"""

import numpy as np
import pytest

import audiocmp as A
from conftest import FIXTURES

SPEECH = FIXTURES / "caller-message.wav"
OTHER = FIXTURES / "other-message.wav"


@pytest.fixture(scope="module")
def speech():
    return A.load(SPEECH)


@pytest.fixture(scope="module")
def other():
    return A.load(OTHER)


def test_fixture_format():
    for f in (SPEECH, OTHER):
        assert A.wav_format(f) == (1, 1, 8000, 16)
    assert 7.0 < A.read_wav(SPEECH).duration < 11.0
    assert A.read_wav(OTHER).duration > 5.0


def test_g711_ulaw_round_trip_is_close():
    x = np.linspace(-1, 1, 65536, endpoint=False)
    err = np.abs(A.ulaw_decode(A.ulaw_encode(x)) - x)
    assert err.max() < 0.02
    codes = np.array([c for c in range(256) if c != 0x7F])  # 0x7F and 0xFF both decode to 0
    assert np.array_equal(A.ulaw_encode(A.ulaw_decode(codes)), codes)


def test_g711_alaw_round_trip_is_close():
    x = np.linspace(-1, 1, 65536, endpoint=False)
    assert np.abs(A.alaw_decode(A.alaw_encode(x)) - x).max() < 0.02
    codes = np.arange(256)
    assert np.array_equal(A.alaw_encode(A.alaw_decode(codes)), codes)


def test_g711_known_values():
    # G.711: mu-law 0xFF and A-law 0xD5 are the codes for (positive) zero.
    assert A.ulaw_encode(np.array([0.0]))[0] == 0xFF
    assert A.alaw_encode(np.array([0.0]))[0] == 0xD5


def test_wav_write_read_round_trip(tmp_path, speech):
    p = tmp_path / "x.wav"
    A.write_wav(p, speech)
    back = A.load(p)
    assert len(back) == len(speech)
    assert np.abs(back - speech).max() < 1e-4


def test_same_speech_through_g711_with_offset_and_gain_scores_high(speech):
    rec = A.pad(0.6 * A.ulaw_decode(A.ulaw_encode(speech)), lead_s=0.8, trail_s=0.5)
    c = A.compare(speech, rec, max_lag_s=1.0)
    assert c.corr > 0.95, c
    assert c.spectral > 0.9, c
    assert abs(c.lag_s - 0.8) < 0.01, c


def test_same_speech_found_after_long_leading_silence(speech):
    rec = A.pad(A.alaw_decode(A.alaw_encode(speech)), lead_s=4.25, trail_s=1.0)
    c = A.compare(speech, rec)
    assert c.corr > 0.95 and abs(c.lag_s - 4.25) < 0.01, c


def test_resampled_speech_scores_high(speech):
    rec = A.resample(A.resample(speech, 8000, 16000), 16000, 8000)
    c = A.compare(speech, rec, max_lag_s=1.0)
    assert c.corr > 0.95 and c.spectral > 0.9, c


def test_different_speech_scores_low(speech, other):
    for ref, rec in ((speech, A.pad(other, 1.0, 1.0)), (other, A.pad(speech, 1.0, 1.0))):
        c = A.compare(ref, rec)
        assert c.corr < A.CORR_MIN, c
        assert c.corr < 0.35, c
        assert c.spectral < 0.5, c


def test_noise_and_silence_score_low(speech):
    rng = np.random.default_rng(7)
    noise = rng.normal(0.0, 0.1, len(speech) + 8000)
    c = A.compare(speech, noise)
    assert c.corr < 0.2 and c.spectral < 0.3, c
    c = A.compare(speech, np.zeros(len(speech)))
    assert c.corr == 0.0, c


def test_time_reversed_speech_scores_low(speech):
    c = A.compare(speech, speech[::-1].copy())
    assert c.corr < 0.35, c


def test_active_span_finds_speech(speech):
    rec = A.pad(speech, lead_s=2.0, trail_s=3.0)
    first, last = A.active_span(rec)
    s_first, s_last = A.active_span(speech)
    assert abs(first - (2.0 + s_first)) < 0.03
    assert abs(last - (2.0 + s_last)) < 0.03
    assert A.active_span(np.zeros(8000)) is None
