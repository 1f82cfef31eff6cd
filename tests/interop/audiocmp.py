"""Audio helpers for the interop tests: WAV I/O, G.711, resampling and comparison.

The comparison answers "is the recorded audio the speech we sent?":

* ``align(ref, rec)`` finds where ``ref`` occurs inside ``rec`` with an
  FFT cross-correlation, normalised per lag by the energy of the overlapping
  parts (so the value is a Pearson-like correlation in [-1, 1], independent of
  gain). G.711 coding keeps this above ~0.95 for the same speech; unrelated
  speech or noise stays well below 0.4.
* ``spectral_similarity(ref, rec)`` compares log band-energy envelopes frame by
  frame (per-band mean removed, so the long-term spectral tilt every voice shares
  does not count). It survives phase changes a codec or resampler might
  introduce, and is reported alongside the correlation.

Only numpy and the standard library are used.
"""

from __future__ import annotations

import dataclasses
import struct
from pathlib import Path

import numpy as np

RATE = 8000

# --------------------------------------------------------------------------- WAV


@dataclasses.dataclass
class Wav:
    """Mono float samples in [-1, 1) and their sample rate."""

    samples: np.ndarray
    rate: int

    @property
    def duration(self) -> float:
        return len(self.samples) / float(self.rate)


def read_wav_bytes(data: bytes) -> Wav:
    """Parses a RIFF/WAVE file (PCM 8/16/24/32-bit, float32, extensible); mixes to mono."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("not a RIFF/WAVE file")
    pos = 12
    fmt = None
    pcm = None
    while pos + 8 <= len(data):
        cid, size = struct.unpack_from("<4sI", data, pos)
        body = data[pos + 8 : pos + 8 + size]
        if cid == b"fmt ":
            tag, channels, rate, _brate, _align, bits = struct.unpack_from("<HHIIHH", body, 0)
            if tag == 0xFFFE and len(body) >= 26:
                tag = struct.unpack_from("<H", body, 24)[0]
            fmt = (tag, channels, rate, bits)
        elif cid == b"data":
            pcm = body
        pos += 8 + size + (size & 1)
    if fmt is None or pcm is None:
        raise ValueError("WAV without fmt or data chunk")
    tag, channels, rate, bits = fmt
    if channels < 1:
        raise ValueError("WAV with no channels")
    if tag == 1 and bits == 16:
        x = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2").astype(np.float64) / 32768.0
    elif tag == 1 and bits == 8:
        x = (np.frombuffer(pcm, dtype=np.uint8).astype(np.float64) - 128.0) / 128.0
    elif tag == 1 and bits == 24:
        n = len(pcm) // 3
        b = np.frombuffer(pcm[: n * 3], dtype=np.uint8).reshape(n, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        v = np.where(v >= 1 << 23, v - (1 << 24), v)
        x = v.astype(np.float64) / float(1 << 23)
    elif tag == 1 and bits == 32:
        x = np.frombuffer(pcm[: len(pcm) // 4 * 4], dtype="<i4").astype(np.float64) / 2.0**31
    elif tag == 3 and bits == 32:
        x = np.frombuffer(pcm[: len(pcm) // 4 * 4], dtype="<f4").astype(np.float64)
    elif tag == 7 and bits == 8:
        x = ulaw_decode(np.frombuffer(pcm, dtype=np.uint8))
    elif tag == 6 and bits == 8:
        x = alaw_decode(np.frombuffer(pcm, dtype=np.uint8))
    else:
        raise ValueError(f"unsupported WAV format tag={tag} bits={bits}")
    frames = len(x) // channels
    x = x[: frames * channels].reshape(frames, channels).mean(axis=1)
    return Wav(x, rate)


def read_wav(path: str | Path) -> Wav:
    return read_wav_bytes(Path(path).read_bytes())


def wav_format(path: str | Path) -> tuple[int, int, int, int]:
    """(format tag, channels, rate, bits) of a WAV file, for asserting the stored format."""
    data = Path(path).read_bytes()
    pos = 12
    while pos + 8 <= len(data):
        cid, size = struct.unpack_from("<4sI", data, pos)
        if cid == b"fmt ":
            tag, channels, rate, _b, _a, bits = struct.unpack_from("<HHIIHH", data, pos + 8)
            return tag, channels, rate, bits
        pos += 8 + size + (size & 1)
    raise ValueError("no fmt chunk")


def write_wav(path: str | Path, samples: np.ndarray, rate: int = RATE) -> None:
    """Writes mono 16-bit PCM."""
    pcm = np.clip(np.round(np.asarray(samples) * 32768.0), -32768, 32767).astype("<i2").tobytes()
    hdr = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF", 36 + len(pcm), b"WAVE", b"fmt ", 16, 1, 1, rate, rate * 2, 2, 16, b"data", len(pcm),
    )
    Path(path).write_bytes(hdr + pcm)


def resample(x: np.ndarray, src: int, dst: int = RATE) -> np.ndarray:
    """Band-limited (FFT) resampling; good enough for comparisons."""
    if src == dst or len(x) == 0:
        return np.asarray(x, dtype=np.float64)
    n_out = max(1, int(round(len(x) * dst / float(src))))
    spec = np.fft.rfft(x)
    keep = n_out // 2 + 1
    out = np.zeros(keep, dtype=complex)
    m = min(keep, len(spec))
    out[:m] = spec[:m]
    return np.fft.irfft(out, n_out) * (n_out / float(len(x)))


def load(path: str | Path, rate: int = RATE) -> np.ndarray:
    """Reads a WAV and returns mono float samples at ``rate``."""
    w = read_wav(path)
    return resample(w.samples, w.rate, rate)


def pad(x: np.ndarray, lead_s: float = 0.0, trail_s: float = 0.0, rate: int = RATE) -> np.ndarray:
    return np.concatenate([np.zeros(int(lead_s * rate)), x, np.zeros(int(trail_s * rate))])


# ------------------------------------------------------------------------- G.711
# ITU-T G.711 mu-law / A-law, vectorised. Encoders take float in [-1, 1).

_ULAW_BIAS = 0x84
_ULAW_CLIP = 32635


def ulaw_encode(x: np.ndarray) -> np.ndarray:
    s = np.clip(np.round(np.asarray(x) * 32768.0), -32768, 32767).astype(np.int32)
    sign = np.where(s < 0, 0x80, 0x00)
    mag = np.minimum(np.abs(s), _ULAW_CLIP) + _ULAW_BIAS
    exp = np.floor(np.log2(mag)).astype(np.int32) - 7
    exp = np.clip(exp, 0, 7)
    mant = (mag >> (exp + 3)) & 0x0F
    return (~(sign | (exp << 4) | mant) & 0xFF).astype(np.uint8)


def _ulaw_table() -> np.ndarray:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    sign = u & 0x80
    exp = (u >> 4) & 0x07
    mant = u & 0x0F
    mag = (((mant << 3) + _ULAW_BIAS) << exp) - _ULAW_BIAS
    return np.where(sign != 0, -mag, mag).astype(np.float64) / 32768.0


_ULAW_TABLE = _ulaw_table()


def ulaw_decode(b: np.ndarray) -> np.ndarray:
    return _ULAW_TABLE[np.asarray(b, dtype=np.uint8)]


def alaw_encode(x: np.ndarray) -> np.ndarray:
    s = np.clip(np.round(np.asarray(x) * 32768.0), -32768, 32767).astype(np.int32) >> 3  # 13-bit
    sign = np.where(s >= 0, 0x80, 0x00)
    mag = np.where(s >= 0, s, -s - 1)
    mag = np.minimum(mag, 0xFFF)
    exp = np.where(mag < 32, 0, np.floor(np.log2(np.maximum(mag, 1))).astype(np.int32) - 4)
    exp = np.clip(exp, 0, 7)
    mant = np.where(exp == 0, mag >> 1, mag >> exp) & 0x0F
    return ((sign | (exp << 4) | mant) ^ 0x55).astype(np.uint8)


def _alaw_table() -> np.ndarray:
    a = np.arange(256, dtype=np.int32) ^ 0x55
    exp = (a >> 4) & 0x07
    mant = a & 0x0F
    mag = np.where(exp == 0, (mant << 4) + 8, ((mant << 4) + 0x108) << np.maximum(exp - 1, 0))
    return np.where(a & 0x80, mag, -mag).astype(np.float64) / 32768.0


_ALAW_TABLE = _alaw_table()


def alaw_decode(b: np.ndarray) -> np.ndarray:
    return _ALAW_TABLE[np.asarray(b, dtype=np.uint8)]


# -------------------------------------------------------------------- analysis


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x)))) if len(x) else 0.0


def frame_rms(x: np.ndarray, frame: int = 160) -> np.ndarray:
    n = len(x) // frame
    if n == 0:
        return np.zeros(0)
    return np.sqrt(np.mean(np.square(x[: n * frame].reshape(n, frame)), axis=1))


def active_span(x: np.ndarray, rate: int = RATE, threshold: float = 0.01) -> tuple[float, float] | None:
    """(first, last) time in seconds of 20 ms frames with RMS above ``threshold``; None if silent."""
    frame = rate // 50
    r = frame_rms(x, frame)
    idx = np.nonzero(r > threshold)[0]
    if len(idx) == 0:
        return None
    return idx[0] * frame / rate, (idx[-1] + 1) * frame / rate


@dataclasses.dataclass
class Alignment:
    lag: int  # rec[lag + n] ~ ref[n]; may be negative
    corr: float  # normalised correlation over the overlap

    def lag_s(self, rate: int = RATE) -> float:
        return self.lag / float(rate)


def align(
    ref: np.ndarray,
    rec: np.ndarray,
    min_lag: int | None = None,
    max_lag: int | None = None,
    min_overlap: float = 0.5,
) -> Alignment:
    """Best lag of ``ref`` inside ``rec`` by normalised cross-correlation.

    Lags are limited to [min_lag, max_lag] (default: any lag leaving at least
    ``min_overlap`` of ``ref`` overlapping ``rec``).
    """
    ref = np.asarray(ref, dtype=np.float64)
    rec = np.asarray(rec, dtype=np.float64)
    n, m = len(ref), len(rec)
    if n == 0 or m == 0:
        return Alignment(0, 0.0)
    size = 1 << int(np.ceil(np.log2(n + m)))
    # c[k] = sum_i ref[i] * rec[i + k] for k in -(n-1)..(m-1)
    c = np.fft.irfft(np.fft.rfft(rec, size) * np.conj(np.fft.rfft(ref, size)), size)
    lags = np.arange(-(n - 1), m)
    cc = np.concatenate([c[size - (n - 1) :], c[:m]]) if n > 1 else c[:m]
    # overlap of ref[i] with rec[i+k]: i in [max(0,-k), min(n, m-k))
    i0 = np.maximum(0, -lags)
    i1 = np.minimum(n, m - lags)
    ref_cum = np.concatenate([[0.0], np.cumsum(ref * ref)])
    rec_cum = np.concatenate([[0.0], np.cumsum(rec * rec)])
    e_ref = ref_cum[i1] - ref_cum[i0]
    e_rec = rec_cum[i1 + lags] - rec_cum[i0 + lags]
    overlap = i1 - i0
    ok = overlap >= max(1, int(min_overlap * n))
    if min_lag is not None:
        ok &= lags >= min_lag
    if max_lag is not None:
        ok &= lags <= max_lag
    # Ignore overlaps where either side is (near) silent: their correlation is noise.
    ok &= e_ref > 1e-6 * max(ref_cum[-1], 1e-12)
    ok &= e_rec > 1e-9
    if not np.any(ok):
        return Alignment(0, 0.0)
    ncc = np.zeros_like(cc)
    ncc[ok] = cc[ok] / np.sqrt(e_ref[ok] * e_rec[ok])
    best = int(np.argmax(np.where(ok, ncc, -np.inf)))
    return Alignment(int(lags[best]), float(ncc[best]))


def _band_envelope(x: np.ndarray, rate: int, bands: int = 16) -> np.ndarray:
    frame, hop = 256, 80
    if len(x) < frame:
        return np.zeros((0, bands))
    n = 1 + (len(x) - frame) // hop
    idx = np.arange(frame)[None, :] + hop * np.arange(n)[:, None]
    spec = np.abs(np.fft.rfft(x[idx] * np.hanning(frame), axis=1)) ** 2
    freqs = np.fft.rfftfreq(frame, 1.0 / rate)
    edges = np.linspace(100.0, min(3800.0, rate / 2 - 100), bands + 1)
    env = np.stack(
        [spec[:, (freqs >= lo) & (freqs < hi)].sum(axis=1) for lo, hi in zip(edges[:-1], edges[1:])],
        axis=1,
    )
    return np.log10(env + 1e-10)


def spectral_similarity(ref: np.ndarray, rec: np.ndarray, lag: int = 0, rate: int = RATE) -> float:
    """Correlation of per-band-mean-removed log band energies over the frames where ``ref`` is active."""
    ref = np.asarray(ref, dtype=np.float64)
    rec = np.asarray(rec, dtype=np.float64)
    if lag >= 0:
        rec = rec[lag:]
    else:
        ref = ref[-lag:]
    n = min(len(ref), len(rec))
    ref, rec = ref[:n], rec[:n]
    a, b = _band_envelope(ref, rate), _band_envelope(rec, rate)
    if len(a) == 0:
        return 0.0
    frame_energy = a.max(axis=1)
    active = frame_energy > frame_energy.max() - 4.0  # within 40 dB of the loudest frame
    if active.sum() < 5:
        return 0.0
    a, b = a[active], b[active]
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    den = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / den) if den > 0 else 0.0


@dataclasses.dataclass
class Comparison:
    corr: float
    spectral: float
    lag_s: float
    ref_duration: float
    rec_duration: float

    def __str__(self) -> str:
        return (
            f"corr={self.corr:.3f} spectral={self.spectral:.3f} lag={self.lag_s:.3f}s "
            f"ref={self.ref_duration:.2f}s rec={self.rec_duration:.2f}s"
        )


def compare(
    ref: np.ndarray,
    rec: np.ndarray,
    rate: int = RATE,
    min_lag_s: float | None = None,
    max_lag_s: float | None = None,
    min_overlap: float = 0.5,
) -> Comparison:
    """Aligns ``ref`` within ``rec`` and reports correlation and spectral similarity."""
    al = align(
        ref,
        rec,
        None if min_lag_s is None else int(min_lag_s * rate),
        None if max_lag_s is None else int(max_lag_s * rate),
        min_overlap,
    )
    spec = spectral_similarity(ref, rec, al.lag, rate)
    return Comparison(al.corr, spec, al.lag_s(rate), len(ref) / rate, len(rec) / rate)


CORR_MIN = 0.6
"""Threshold for "same speech" used by the deposit tests."""
