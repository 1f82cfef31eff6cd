"""A fax peer for coda's interop tests, built on Debian's libspandsp (0.0.6,
``/usr/lib/x86_64-linux-gnu/libspandsp.so.2``) through ctypes — a different spandsp
build from the one vendored in coda's ``spandsp-sys``.

Layers (all in one file so that it can run as a separate process):

* ctypes bindings for what is used of libspandsp 0.0.6 (``Spandsp``), wrapped as
  ``T30`` (shared T.30 setup, phase E result), ``AudioFax`` (``fax_init``/``fax_rx``/
  ``fax_tx``) and ``T38Fax`` (``t38_terminal_init`` and friends);
* UDPTL framing (ITU-T T.38 §9.1 / Annex A): ``UdptlSender`` (primary IFP plus the
  last N IFPs as redundancy, newest first, trimmed to the far end's
  T38FaxMaxDatagram), ``UdptlReceiver`` (recovers lost IFPs from redundancy, drops
  duplicates and late datagrams; FEC datagrams deliver their primary only);
* ``Loss``: deterministic spread loss of outgoing UDPTL datagrams (``--loss``) or RTP
  packets (``--audio-loss``);
* SIP on top of ``sipkit`` (``FaxSip`` subclasses ``sipkit.SipUdp`` with a
  non-blocking ``poll``, UAS answers, in-dialog requests and re-INVITE handling);
* ``Session``: the 20 ms real-time loop (monotonic deadlines, sample-count clocked)
  that runs G.711 audio fax over RTP and switches to a T.38 terminal on re-INVITE.

CLI::

    python faxpeer.py send --to sip:5000@127.0.0.1:5060 --tiff pages.tif [--codec pcmu|pcma]
        [--t38 none|accept|request] [--t38-version 0|3] [--loss 0.2] [--audio-loss F] [--ecm|--no-ecm]
        [--ident "+1 555 0100"] --result result.json
    python faxpeer.py listen --port 5070 --rx rx.tif [same options] --result result.json

``result.json``: ``completion_code``, ``text``, ``pages_sent``, ``pages_received``,
``mode_used`` ("audio"/"t38"), ``remote_ident`` and more (see ``Session.result``).
Exit status 0 only if T.30 completed with code 0 (and, when sending, ≥ 1 page went).
"""

from __future__ import annotations

import argparse
import ctypes
import dataclasses
import json
import os
import random
import select
import signal
import socket
import struct
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import rtpkit  # noqa: E402
import sipkit  # noqa: E402

LIBSPANDSP = "libspandsp.so.2"
SAMPLES_PER_TICK = 160  # 20 ms at 8 kHz
TICK = 0.02

# t30.h (0.0.6)
T30_SUPPORT_V27TER = 0x01
T30_SUPPORT_V29 = 0x02
T30_SUPPORT_V17 = 0x04
T30_SUPPORT_T4_1D_COMPRESSION = 0x02
T30_SUPPORT_T4_2D_COMPRESSION = 0x04
T30_SUPPORT_T6_COMPRESSION = 0x08
T30_SUPPORT_STANDARD_RESOLUTION = 0x01
T30_SUPPORT_FINE_RESOLUTION = 0x02
T30_SUPPORT_SUPERFINE_RESOLUTION = 0x04
T30_SUPPORT_R8_RESOLUTION = 0x20000
T30_SUPPORT_R16_RESOLUTION = 0x40000
T30_SUPPORT_215MM_WIDTH = 0x01
T30_SUPPORT_255MM_WIDTH = 0x02
T30_SUPPORT_303MM_WIDTH = 0x04
T30_SUPPORT_UNLIMITED_LENGTH = 0x10000
T30_SUPPORT_A4_LENGTH = 0x20000
T30_SUPPORT_B4_LENGTH = 0x40000
T30_SUPPORT_US_LETTER_LENGTH = 0x80000
T30_SUPPORT_US_LEGAL_LENGTH = 0x100000
T30_ERR_OK = 0
T30_ERR_CALLDROPPED = 49  # only used as a fallback code when T.30 never reached phase E
# t4_rx.h (0.0.6): file compression of received pages
T4_COMPRESSION_ITU_T4_2D = 2
T4_COMPRESSION_ITU_T6 = 3
# t38_core.h
T38_DATA_RATE_MANAGEMENT_TRANSFERRED_TCF = 2
# logging.h
SPAN_LOG_SHOW_SEVERITY = 0x0400
SPAN_LOG_SHOW_PROTOCOL = 0x0800
SPAN_LOG_SHOW_TAG = 0x2000
SPAN_LOG_FLOW = 5


def log(msg: str) -> None:
    sys.stderr.write(f"[faxpeer {os.getpid()} {time.monotonic():.3f}] {msg}\n")
    sys.stderr.flush()


# ============================================================== libspandsp

P = ctypes.c_void_p
I = ctypes.c_int
PHASE_BD_HANDLER = ctypes.CFUNCTYPE(I, P, P, I)  # int (t30_state_t *, void *, int)
PHASE_E_HANDLER = ctypes.CFUNCTYPE(None, P, P, I)  # void (t30_state_t *, void *, int)
# int (t38_core_state_t *, void *, const uint8_t *, int len, int count)
TX_PACKET_HANDLER = ctypes.CFUNCTYPE(I, P, P, ctypes.POINTER(ctypes.c_uint8), I, I)
MESSAGE_HANDLER = ctypes.CFUNCTYPE(None, I, ctypes.c_char_p)  # void (int level, const char *text)


class T30Stats(ctypes.Structure):
    """``t30_stats_t`` exactly as in 0.0.6's t30.h (15 ints; rtp/rtn_events are #if 0)."""

    _fields_ = [
        ("bit_rate", I),
        ("error_correcting_mode", I),
        ("pages_tx", I),
        ("pages_rx", I),
        ("pages_in_file", I),
        ("x_resolution", I),
        ("y_resolution", I),
        ("width", I),
        ("length", I),
        ("image_size", I),
        ("encoding", I),
        ("bad_rows", I),
        ("longest_bad_row_run", I),
        ("error_correcting_mode_retries", I),
        ("current_status", I),
    ]


_SIGNATURES: dict[str, tuple] = {
    # fax.h
    "fax_init": (P, [P, I]),
    "fax_free": (I, [P]),
    "fax_rx": (I, [P, ctypes.POINTER(ctypes.c_int16), I]),
    "fax_rx_fillin": (I, [P, I]),
    "fax_tx": (I, [P, ctypes.POINTER(ctypes.c_int16), I]),
    "fax_get_t30_state": (P, [P]),
    "fax_get_logging_state": (P, [P]),
    "fax_set_transmit_on_idle": (None, [P, I]),
    "fax_set_tep_mode": (None, [P, I]),
    # t30_api.h / t30.h
    "t30_set_tx_ident": (I, [P, ctypes.c_char_p]),
    "t30_get_rx_ident": (ctypes.c_char_p, [P]),
    "t30_set_tx_file": (None, [P, ctypes.c_char_p, I, I]),
    "t30_set_rx_file": (None, [P, ctypes.c_char_p, I]),
    "t30_set_ecm_capability": (I, [P, I]),
    "t30_set_rx_encoding": (I, [P, I]),
    "t30_set_supported_modems": (I, [P, I]),
    "t30_set_supported_compressions": (I, [P, I]),
    "t30_set_supported_resolutions": (I, [P, I]),
    "t30_set_supported_image_sizes": (I, [P, I]),
    "t30_set_phase_b_handler": (None, [P, PHASE_BD_HANDLER, P]),
    "t30_set_phase_d_handler": (None, [P, PHASE_BD_HANDLER, P]),
    "t30_set_phase_e_handler": (None, [P, PHASE_E_HANDLER, P]),
    "t30_get_transfer_statistics": (None, [P, ctypes.POINTER(T30Stats)]),
    "t30_completion_code_to_str": (ctypes.c_char_p, [I]),
    "t30_call_active": (I, [P]),
    "t30_terminate": (None, [P]),
    "t30_get_logging_state": (P, [P]),
    # t38_terminal.h
    "t38_terminal_init": (P, [P, I, TX_PACKET_HANDLER, P]),
    "t38_terminal_free": (I, [P]),
    "t38_terminal_send_timeout": (I, [P, I]),
    "t38_terminal_set_config": (None, [P, I]),
    "t38_terminal_set_tep_mode": (None, [P, I]),
    "t38_terminal_set_fill_bit_removal": (None, [P, I]),
    "t38_terminal_get_t30_state": (P, [P]),
    "t38_terminal_get_t38_core_state": (P, [P]),
    "t38_terminal_get_logging_state": (P, [P]),
    # t38_core.h
    "t38_core_rx_ifp_packet": (I, [P, ctypes.POINTER(ctypes.c_uint8), I, ctypes.c_uint16]),
    "t38_set_t38_version": (None, [P, I]),
    "t38_set_max_datagram_size": (None, [P, I]),
    "t38_set_max_buffer_size": (None, [P, I]),
    "t38_set_data_rate_management_method": (None, [P, I]),
    "t38_set_fastest_image_data_rate": (None, [P, I]),
    "t38_set_fill_bit_removal": (None, [P, I]),
    "t38_set_mmr_transcoding": (None, [P, I]),
    "t38_set_jbig_transcoding": (None, [P, I]),
    "t38_core_get_logging_state": (P, [P]),
    # logging.h
    "span_log_set_level": (I, [P, I]),
    "span_set_message_handler": (None, [MESSAGE_HANDLER]),
}


class Spandsp:
    """The loaded library with typed functions (attribute access: ``lib.fax_init``)."""

    def __init__(self, path: str = LIBSPANDSP):
        self.dll = ctypes.CDLL(path)
        for name, (restype, argtypes) in _SIGNATURES.items():
            f = getattr(self.dll, name)
            f.restype = restype
            f.argtypes = argtypes
            setattr(self, name, f)
        self._msg_handler = MESSAGE_HANDLER(self._on_message)
        self.span_set_message_handler(self._msg_handler)

    @staticmethod
    def _on_message(level: int, text: bytes | None) -> None:
        if text:
            sys.stderr.write("  spandsp: " + text.decode("utf-8", "replace"))
            sys.stderr.flush()

    def verbose(self, logging_state: int | None) -> None:
        if logging_state:
            self.span_log_set_level(logging_state, SPAN_LOG_SHOW_SEVERITY | SPAN_LOG_SHOW_PROTOCOL | SPAN_LOG_SHOW_TAG | SPAN_LOG_FLOW)

    def completion_text(self, code: int) -> str:
        s = self.t30_completion_code_to_str(code)
        return s.decode("utf-8", "replace") if s else f"code {code}"


_LIB: Spandsp | None = None


def spandsp() -> Spandsp:
    global _LIB
    if _LIB is None:
        _LIB = Spandsp()
    return _LIB


@dataclasses.dataclass
class FaxConfig:
    ident: str = "+1 555 0100"
    ecm: bool = True
    tx_file: str | None = None  # sending: a TIFF
    rx_file: str | None = None  # receiving: where to write the TIFF
    verbose: bool = False
    modems: int = T30_SUPPORT_V27TER | T30_SUPPORT_V29 | T30_SUPPORT_V17


class T30:
    """The T.30 part of either engine: setup, handlers kept alive, results."""

    def __init__(self, lib: Spandsp, ptr: int, cfg: FaxConfig):
        self.lib = lib
        self.ptr = ptr
        self.phase_e: int | None = None
        self.phase_b_events: list[int] = []
        self.phase_d_events: list[int] = []
        lib.t30_set_tx_ident(ptr, cfg.ident.encode())
        lib.t30_set_ecm_capability(ptr, 1 if cfg.ecm else 0)
        lib.t30_set_supported_modems(ptr, cfg.modems)
        comp = T30_SUPPORT_T4_1D_COMPRESSION | T30_SUPPORT_T4_2D_COMPRESSION
        if cfg.ecm:
            comp |= T30_SUPPORT_T6_COMPRESSION  # T.6 on the line needs ECM
        lib.t30_set_supported_compressions(ptr, comp)
        lib.t30_set_supported_resolutions(
            ptr,
            T30_SUPPORT_STANDARD_RESOLUTION | T30_SUPPORT_FINE_RESOLUTION | T30_SUPPORT_SUPERFINE_RESOLUTION
            | T30_SUPPORT_R8_RESOLUTION | T30_SUPPORT_R16_RESOLUTION,
        )
        lib.t30_set_supported_image_sizes(
            ptr,
            T30_SUPPORT_215MM_WIDTH | T30_SUPPORT_255MM_WIDTH | T30_SUPPORT_303MM_WIDTH | T30_SUPPORT_UNLIMITED_LENGTH
            | T30_SUPPORT_A4_LENGTH | T30_SUPPORT_B4_LENGTH | T30_SUPPORT_US_LETTER_LENGTH | T30_SUPPORT_US_LEGAL_LENGTH,
        )
        self._b = PHASE_BD_HANDLER(self._on_phase_b)
        self._d = PHASE_BD_HANDLER(self._on_phase_d)
        self._e = PHASE_E_HANDLER(self._on_phase_e)
        lib.t30_set_phase_b_handler(ptr, self._b, None)
        lib.t30_set_phase_d_handler(ptr, self._d, None)
        lib.t30_set_phase_e_handler(ptr, self._e, None)
        if cfg.tx_file:
            lib.t30_set_tx_file(ptr, cfg.tx_file.encode(), -1, -1)
        if cfg.rx_file:
            lib.t30_set_rx_encoding(ptr, T4_COMPRESSION_ITU_T6)
            lib.t30_set_rx_file(ptr, cfg.rx_file.encode(), -1)
        if cfg.verbose:
            lib.verbose(lib.t30_get_logging_state(ptr))

    def _on_phase_b(self, _s, _ud, result: int) -> int:
        self.phase_b_events.append(result)
        return T30_ERR_OK

    def _on_phase_d(self, _s, _ud, result: int) -> int:
        self.phase_d_events.append(result)
        return T30_ERR_OK

    def _on_phase_e(self, _s, _ud, code: int) -> None:
        if self.phase_e is None:
            self.phase_e = code
            log(f"phase E: {code} ({self.lib.completion_text(code)})")

    def stats(self) -> T30Stats:
        st = T30Stats()
        self.lib.t30_get_transfer_statistics(self.ptr, ctypes.byref(st))
        return st

    def remote_ident(self) -> str:
        s = self.lib.t30_get_rx_ident(self.ptr)
        return s.decode("utf-8", "replace").strip() if s else ""

    def active(self) -> bool:
        return bool(self.lib.t30_call_active(self.ptr))

    def terminate(self) -> None:
        self.lib.t30_terminate(self.ptr)


class AudioFax:
    """spandsp's audio (G.711 passthrough) fax terminal: 16-bit linear at 8 kHz."""

    def __init__(self, calling: bool, cfg: FaxConfig, lib: Spandsp | None = None):
        self.lib = lib or spandsp()
        self.ptr = self.lib.fax_init(None, 1 if calling else 0)
        if not self.ptr:
            raise RuntimeError("fax_init failed")
        self.lib.fax_set_transmit_on_idle(self.ptr, 1)
        self.lib.fax_set_tep_mode(self.ptr, 0)
        if cfg.verbose:
            self.lib.verbose(self.lib.fax_get_logging_state(self.ptr))
        self.t30 = T30(self.lib, self.lib.fax_get_t30_state(self.ptr), cfg)
        self._out = (ctypes.c_int16 * SAMPLES_PER_TICK)()

    def rx(self, samples: np.ndarray) -> None:
        buf = np.ascontiguousarray(samples, dtype=np.int16).copy()  # fax_rx filters in place
        self.lib.fax_rx(self.ptr, buf.ctypes.data_as(ctypes.POINTER(ctypes.c_int16)), len(buf))

    def rx_fillin(self, n: int = SAMPLES_PER_TICK) -> None:
        self.lib.fax_rx_fillin(self.ptr, n)

    def tx(self) -> np.ndarray:
        n = self.lib.fax_tx(self.ptr, self._out, SAMPLES_PER_TICK)
        out = np.frombuffer(bytes(self._out), dtype=np.int16).copy()
        if n < SAMPLES_PER_TICK:
            out[max(n, 0):] = 0
        return out

    def close(self) -> None:
        if self.ptr:
            self.lib.fax_free(self.ptr)
            self.ptr = None


class T38Fax:
    """spandsp's T.38 terminal. ``send_ifp(ifp, count)`` is called for every IFP
    spandsp wants sent (``count`` = how many times to repeat the datagram)."""

    def __init__(self, calling: bool, cfg: FaxConfig, send_ifp: Callable[[bytes, int], None], version: int = 0,
                 max_ifp: int = 100, lib: Spandsp | None = None):
        self.lib = lib or spandsp()
        self.send_ifp = send_ifp
        self.errors: list[str] = []
        self._cb = TX_PACKET_HANDLER(self._on_tx)
        self.ptr = self.lib.t38_terminal_init(None, 1 if calling else 0, self._cb, None)
        if not self.ptr:
            raise RuntimeError("t38_terminal_init failed")
        core = self.lib.t38_terminal_get_t38_core_state(self.ptr)
        self.core = core
        self.lib.t38_set_t38_version(core, version)
        self.lib.t38_set_max_datagram_size(core, max_ifp)
        self.lib.t38_set_max_buffer_size(core, 2000)
        self.lib.t38_set_fastest_image_data_rate(core, 14400)
        self.lib.t38_set_data_rate_management_method(core, T38_DATA_RATE_MANAGEMENT_TRANSFERRED_TCF)
        self.lib.t38_set_fill_bit_removal(core, 0)
        self.lib.t38_set_mmr_transcoding(core, 0)
        self.lib.t38_set_jbig_transcoding(core, 0)
        self.lib.t38_terminal_set_config(self.ptr, 0)  # paced, for UDP
        self.lib.t38_terminal_set_tep_mode(self.ptr, 0)
        self.lib.t38_terminal_set_fill_bit_removal(self.ptr, 0)
        if cfg.verbose:
            self.lib.verbose(self.lib.t38_terminal_get_logging_state(self.ptr))
            self.lib.verbose(self.lib.t38_core_get_logging_state(core))
        self.t30 = T30(self.lib, self.lib.t38_terminal_get_t30_state(self.ptr), cfg)

    def _on_tx(self, _core, _ud, buf, length: int, count: int) -> int:
        try:
            self.send_ifp(ctypes.string_at(buf, length), max(1, count))
        except Exception as e:  # noqa: BLE001 - never raise into C
            self.errors.append(repr(e))
        return 0

    def tick(self, samples: int = SAMPLES_PER_TICK) -> None:
        self.lib.t38_terminal_send_timeout(self.ptr, samples)

    def rx_ifp(self, ifp: bytes, seq: int) -> None:
        buf = (ctypes.c_uint8 * max(1, len(ifp))).from_buffer_copy(ifp or b"\0")
        self.lib.t38_core_rx_ifp_packet(self.core, buf, len(ifp), seq & 0xFFFF)

    def close(self) -> None:
        if self.ptr:
            self.lib.t38_terminal_free(self.ptr)
            self.ptr = None


# ================================================================== UDPTL


def encode_length(n: int) -> bytes:
    """X.691 unconstrained length determinant (fragmentation, ≥ 16384, not supported)."""
    if n < 0x80:
        return bytes([n])
    if n < 0x4000:
        return bytes([0x80 | (n >> 8), n & 0xFF])
    raise ValueError(f"length {n} needs fragmentation")


def decode_length(buf: bytes, pos: int) -> tuple[int, int]:
    """→ (length, new position); ValueError on truncation or fragments."""
    if pos >= len(buf):
        raise ValueError("truncated length")
    b = buf[pos]
    if b & 0x80 == 0:
        return b, pos + 1
    if b & 0xC0 == 0x80:
        if pos + 1 >= len(buf):
            raise ValueError("truncated length")
        return ((b & 0x3F) << 8) | buf[pos + 1], pos + 2
    raise ValueError("fragmented length not supported")


def _take(buf: bytes, pos: int) -> tuple[bytes, int]:
    n, pos = decode_length(buf, pos)
    if pos + n > len(buf):
        raise ValueError("truncated field")
    return buf[pos : pos + n], pos + n


@dataclasses.dataclass
class UdptlPacket:
    seq: int
    primary: bytes
    secondary: list[bytes]  # newest first: seq-1, seq-2, ...
    fec: bool = False


def build_udptl(seq: int, primary: bytes, secondary: list[bytes]) -> bytes:
    out = bytearray(struct.pack("!H", seq & 0xFFFF))
    out += encode_length(len(primary)) + primary
    out.append(0x00)  # error-recovery: secondary-ifp-packets
    out += encode_length(len(secondary))
    for ifp in secondary:
        out += encode_length(len(ifp)) + ifp
    return bytes(out)


def parse_udptl(data: bytes) -> UdptlPacket:
    if len(data) < 4:
        raise ValueError("short UDPTL datagram")
    seq = struct.unpack("!H", data[:2])[0]
    primary, pos = _take(data, 2)
    if pos >= len(data):
        raise ValueError("no error-recovery field")
    choice = data[pos]
    pos += 1
    if choice & 0x80 == 0:
        count, pos = decode_length(data, pos)
        sec = []
        for _ in range(count):
            ifp, pos = _take(data, pos)
            sec.append(ifp)
        return UdptlPacket(seq, primary, sec)
    return UdptlPacket(seq, primary, [], fec=True)  # FEC: parity not used here


class UdptlSender:
    """Numbers IFPs and adds up to ``depth`` previous IFPs as redundancy, as many as
    fit into ``max_datagram`` bytes."""

    def __init__(self, depth: int = 3, max_datagram: int = 400, start_seq: int = 0):
        self.depth = depth
        self.max_datagram = max_datagram
        self.seq = start_seq & 0xFFFF
        self.history: list[bytes] = []  # newest first

    def build(self, ifp: bytes) -> bytes:
        sec = self.history[: self.depth]
        while True:
            dg = build_udptl(self.seq, ifp, sec)
            if len(dg) <= self.max_datagram or not sec:
                break
            sec = sec[:-1]
        self.history = ([ifp] + self.history)[: max(self.depth, 1)]
        self.seq = (self.seq + 1) & 0xFFFF
        return dg


class UdptlReceiver:
    """Delivers IFPs in sequence order: recovers missing ones from the redundancy of
    later datagrams, drops repeats and datagrams older than what was delivered."""

    def __init__(self):
        self.expected: int | None = None
        self.received = 0
        self.duplicates = 0
        self.recovered = 0
        self.lost = 0
        self.bad = 0

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        try:
            p = parse_udptl(data)
        except ValueError:
            self.bad += 1
            return []
        self.received += 1
        if self.expected is None:
            self.expected = (p.seq + 1) & 0xFFFF
            return [(p.seq, p.primary)]
        ahead = (p.seq - self.expected) & 0xFFFF
        if ahead >= 0x8000:  # older than expected: a repeat or a late datagram
            self.duplicates += 1
            return []
        out = []
        for k in range(ahead, 0, -1):  # the missing seqs expected .. seq-1, oldest first
            if k <= len(p.secondary):
                out.append(((p.seq - k) & 0xFFFF, p.secondary[k - 1]))
                self.recovered += 1
            else:
                self.lost += 1
        out.append((p.seq, p.primary))
        self.expected = (p.seq + 1) & 0xFFFF
        return out


def tone_ratio(x: np.ndarray, freq: float, rate: int = 8000) -> tuple[float, float]:
    """(share of the frame's power at ``freq``, RMS): a single-bin DFT (Goertzel)."""
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    ms = float(np.mean(x * x)) if n else 0.0
    if ms <= 0:
        return 0.0, 0.0
    k = np.exp(-2j * np.pi * freq * np.arange(n) / rate)
    p = 2.0 * abs(np.dot(x, k)) ** 2 / (n * n)
    return p / ms, ms ** 0.5


class ToneDetector:
    """Reports a tone (CED 2100 Hz, CNG 1100 Hz) present for ``min_s`` in 20 ms frames."""

    def __init__(self, freq: float, min_s: float):
        self.freq = freq
        self.need = max(1, int(round(min_s / TICK)))
        self.run = 0

    def feed(self, frame: np.ndarray) -> bool:
        ratio, rms = tone_ratio(frame, self.freq)
        self.run = self.run + 1 if ratio > 0.6 and rms > 100 else 0
        return self.run >= self.need


class Loss:
    """Deterministic loss spread evenly: datagram i is dropped when floor((i+1)·rate)
    > floor(i·rate) (rate 0.2 drops every 5th)."""

    def __init__(self, rate: float = 0.0):
        self.rate = max(0.0, min(1.0, rate))
        self.n = 0
        self.dropped = 0

    def drop(self) -> bool:
        i = self.n
        self.n += 1
        d = int((i + 1) * self.rate) > int(i * self.rate)
        self.dropped += d
        return d


# ==================================================================== SDP


@dataclasses.dataclass
class MediaOffer:
    """What a peer's SDP says: audio (ip, port, payload types) and/or T.38 image."""

    audio: sipkit.Sdp | None
    image_addr: tuple[str, int] | None
    t38: dict[str, str]

    @property
    def t38_version(self) -> int:
        try:
            return int(self.t38.get("t38faxversion", "0"))
        except ValueError:
            return 0

    @property
    def max_datagram(self) -> int:
        for key in ("t38faxmaxdatagram", "t38maxdatagram"):
            try:
                v = int(self.t38[key])
                if v > 0:
                    return v
            except (KeyError, ValueError):
                pass
        return 400  # unspecified: the common default (Asterisk, FreeSWITCH)


def parse_offer(body: bytes) -> MediaOffer:
    audio = None
    session_c = ""
    media = ""
    image_port = 0
    image_c = ""
    t38: dict[str, str] = {}
    for line in body.decode("utf-8", "replace").splitlines():
        line = line.strip()
        if line.startswith("m="):
            parts = line[2:].split()
            media = parts[0] if parts else ""
            if media == "image" and len(parts) >= 4 and parts[2].lower() == "udptl" and parts[3].lower() == "t38":
                image_port = int(parts[1])
            elif media == "image":
                media = "other"
        elif line.startswith("c="):
            if not media:
                session_c = line.split()[-1]
            elif media == "image":
                image_c = line.split()[-1]
        elif media == "image" and line.startswith("a="):
            k, _, v = line[2:].partition(":")
            t38[k.strip().lower()] = v.strip()
    if "m=audio" in body.decode("utf-8", "replace"):
        a = sipkit.parse_sdp(body)
        if a.port:
            audio = a
    image = (image_c or session_c, image_port) if image_port else None
    return MediaOffer(audio, image, t38)


class SdpMaker:
    """Our SDP bodies; the o= version grows with every new offer/answer (RFC 3264 §8)."""

    def __init__(self, ip: str):
        self.ip = ip
        self.sid = random.randint(1_000_000, 9_999_999)
        self.version = self.sid

    def _head(self) -> list[str]:
        self.version += 1
        return ["v=0", f"o=faxpeer {self.sid} {self.version} IN IP4 {self.ip}", "s=faxpeer",
                f"c=IN IP4 {self.ip}", "t=0 0"]

    def audio(self, port: int, pts: list[int]) -> bytes:
        names = {0: "PCMU/8000", 8: "PCMA/8000"}
        lines = self._head() + [f"m=audio {port} RTP/AVP {' '.join(map(str, pts))}"]
        lines += [f"a=rtpmap:{pt} {names[pt]}" for pt in pts]
        lines += ["a=ptime:20", "a=sendrecv"]
        return ("\r\n".join(lines) + "\r\n").encode()

    def image(self, port: int, version: int, max_datagram: int = 400) -> bytes:
        lines = self._head() + [
            f"m=image {port} udptl t38",
            f"a=T38FaxVersion:{version}",
            "a=T38MaxBitRate:14400",
            "a=T38FaxRateManagement:transferredTCF",
            "a=T38FaxMaxBuffer:2000",
            f"a=T38FaxMaxDatagram:{max_datagram}",
            "a=T38FaxUdpEC:t38UDPRedundancy",
        ]
        return ("\r\n".join(lines) + "\r\n").encode()


# ==================================================================== SIP


@dataclasses.dataclass
class Dialog:
    call_id: str
    local_uri: str
    local_tag: str
    remote_uri: str
    remote_tag: str
    remote_target: str
    local_cseq: int
    local_display: str = "faxpeer"


@dataclasses.dataclass
class ClientTxn:
    """A non-blocking client transaction (RFC 3261 §17.1: timers A/E doubling from
    T1 = 0.5 s; INVITE retransmission stops at a provisional; gives up after 32 s)."""

    method: str
    cseq: int
    data: bytes
    next_send: float
    interval: float = 0.5
    deadline: float = 0.0
    provisional: bool = False
    final: sipkit.Msg | None = None
    branch: str = ""


class FaxSip(sipkit.SipUdp):
    """sipkit's UDP user agent plus what a fax call needs: a fixed listening port, a
    non-blocking ``poll`` that learns the peer's address, responses with SDP (for
    an initial INVITE or a re-INVITE), 2xx retransmission until ACK, and in-dialog
    requests from either side."""

    def __init__(self, server: tuple[str, int] | None, local_ip: str = "127.0.0.1", port: int = 0):
        super().__init__(server or ("0.0.0.0", 0), local_ip)
        if port:
            self.sock.close()
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind((local_ip, port))
            self.local = self.sock.getsockname()
        self.sent_responses: dict[tuple[str, str], bytes] = {}  # (branch, method) → response
        self.unacked: dict[int, tuple[bytes, float, float, float]] = {}  # cseq → (2xx, next, interval, deadline)

    def contact(self) -> str:
        return f"<sip:faxpeer@{self.local[0]}:{self.local[1]}>"

    def poll(self, timeout: float = 0.0) -> list[tuple[sipkit.Msg, tuple[str, int]]]:
        """All datagrams waiting now (or within ``timeout`` for the first one)."""
        out = []
        self.sock.settimeout(timeout if timeout > 0 else None)
        if timeout <= 0:
            self.sock.setblocking(False)
        while True:
            try:
                data, addr = self.sock.recvfrom(70000)
            except (BlockingIOError, socket.timeout, InterruptedError):
                break
            except OSError:
                break
            self.sock.setblocking(False)
            m = sipkit.parse(data)
            if m is None:
                continue
            self.inbox.append(m)
            if not m.is_response:
                self.requests.append(m)
                key = (m.branch, m.method)
                if key in self.sent_responses and m.method != "ACK":
                    self.sock.sendto(self.sent_responses[key], addr)  # retransmitted request
                    continue
                if m.method == "ACK":
                    try:
                        self.unacked.pop(int((m.get("cseq") or "0").split()[0]), None)
                    except ValueError:
                        pass
            out.append((m, addr))
        return out

    def respond(self, req: sipkit.Msg, status: int, reason: str, to_tag: str = "", body: bytes = b"",
                addr: tuple[str, int] | None = None) -> None:
        lines = [f"SIP/2.0 {status} {reason}"]
        lines += [f"Via: {v}" for v in req.get_all("via")]
        lines.append(f"From: {req.get('from')}")
        to = req.get("to") or ""
        if to_tag and not sipkit.tag_of(to):
            to += f";tag={to_tag}"
        lines.append(f"To: {to}")
        lines.append(f"Call-ID: {req.get('call-id')}")
        lines.append(f"CSeq: {req.get('cseq')}")
        if req.method == "INVITE" and status < 300:
            lines.append(f"Contact: {self.contact()}")
        lines.append("User-Agent: coda-faxpeer")
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body)}")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
        self.sock.sendto(data, addr or self.server)
        if status >= 200:
            self.sent_responses[(req.branch, req.method)] = data
        if req.method == "INVITE" and 200 <= status < 300:
            try:
                cseq = int((req.get("cseq") or "0").split()[0])
            except ValueError:
                cseq = 0
            now = time.monotonic()
            self.unacked[cseq] = (data, now + 0.5, 0.5, now + 32)

    def retransmit_2xx(self, now: float) -> None:
        for cseq, (data, nxt, interval, deadline) in list(self.unacked.items()):
            if now >= deadline:
                del self.unacked[cseq]
            elif now >= nxt:
                self.sock.sendto(data, self.server)
                interval = min(interval * 2, 4.0)
                self.unacked[cseq] = (data, now + interval, interval, deadline)

    def request(self, d: Dialog, method: str, body: bytes = b"", cseq: int | None = None, branch: str = "",
                to_tag: str | None = None) -> bytes:
        """An in-dialog request; a new CSeq unless ``cseq`` is given (ACK), a new branch
        unless ``branch`` is given (ACK for a non-2xx final, RFC 3261 §17.1.1.3)."""
        if cseq is None:
            d.local_cseq += 1
            cseq = d.local_cseq
        host, port = self.local
        tag = d.remote_tag if to_tag is None else to_tag
        lines = [
            f"{method} {d.remote_target} SIP/2.0",
            f"Via: SIP/2.0/UDP {host}:{port};branch={branch or sipkit.new_branch()};rport",
            "Max-Forwards: 70",
            f"From: \"{d.local_display}\" <{d.local_uri}>;tag={d.local_tag}",
            f"To: <{d.remote_uri}>" + (f";tag={tag}" if tag else ""),
            f"Call-ID: {d.call_id}",
            f"CSeq: {cseq} {method}",
            f"Contact: {self.contact()}",
            "User-Agent: coda-faxpeer",
        ]
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


# ================================================================ session


class SessionError(Exception):
    pass


class Session:
    """One fax call after the SIP dialog is up: audio over RTP, optionally switched
    to T.38/UDPTL, until T.30 phase E (then ``linger`` seconds more), a BYE, or the
    deadline."""

    def __init__(self, args: argparse.Namespace, role: str, sip: FaxSip, dialog: Dialog, sdp: SdpMaker,
                 rtp_sock: socket.socket, offer: MediaOffer, deadline: float):
        self.args = args
        self.role = role  # "send" or "receive"
        self.sip = sip
        self.dialog = dialog
        self.sdp = sdp
        self.rtp_sock = rtp_sock
        self.deadline = deadline
        self.cfg = FaxConfig(ident=args.ident, ecm=args.ecm, verbose=args.verbose,
                             tx_file=args.tiff if role == "send" else None,
                             rx_file=args.rx if role == "receive" else None)
        self.calling = role == "send"
        self.loss = Loss(args.loss)  # UDPTL datagrams
        self.audio_loss = Loss(args.audio_loss)  # RTP packets
        self.mode = "audio"
        self.audio: AudioFax | None = None
        self.t38: T38Fax | None = None
        self.t30: T30 | None = None
        self.t38_version: int | None = None
        self.rtp_remote: tuple[str, int] | None = None
        self.pt = 0
        self.rtp_out = None
        self.rx_queue: list[np.ndarray] = []
        self.starved = 0
        self.last_rtp_seq: int | None = None
        self.udptl_sock: socket.socket | None = None
        self.udptl_remote: tuple[str, int] | None = None
        self.udptl_tx: UdptlSender | None = None
        self.udptl_rx = UdptlReceiver()
        self.udptl_early: list[bytes] = []
        self.udptl_sent = 0
        self.txns: list[ClientTxn] = []
        self.reinvite_at: float | None = None
        self.reinvite_txn: ClientTxn | None = None
        self.reinvite_tries = 0
        self.remote_bye = False
        self.bye_txn: ClientTxn | None = None
        self.end_at: float | None = None
        self.t0 = time.monotonic()
        self.events: list[str] = []
        self.error: str | None = None
        self.ifps_in = 0
        self.ifps_out = 0
        if offer.audio is not None and offer.audio.port:
            self.rtp_remote = (offer.audio.ip, offer.audio.port)
            self.pt = args.pt if args.pt in offer.audio.payloads else next(
                (p for p in offer.audio.payloads if p in (0, 8)), args.pt)
            self.audio = AudioFax(self.calling, self.cfg)
            self.t30 = self.audio.t30
            self.rtp_out = rtpkit.StreamBuilder(self.pt)
        elif offer.image_addr is not None:
            self.udptl_sock = self._new_udptl_socket()
            self._switch_to_t38(offer)
        else:
            raise SessionError("no usable media in the SDP")
        self.tone: ToneDetector | None = None
        if args.t38 == "request":
            self.reinvite_at = time.monotonic() + args.t38_delay
            # or earlier, on hearing the far end's fax tone: CED (answerer) / CNG (caller)
            self.tone = ToneDetector(2100.0, 0.3) if self.calling else ToneDetector(1100.0, 0.4)

    # --- media helpers ---------------------------------------------------------

    def _event(self, what: str) -> None:
        self.events.append(f"{time.monotonic() - self.t0:.2f} {what}")
        log(what)

    def _new_udptl_socket(self) -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((self.sip.local[0], 0))
        s.setblocking(False)
        return s

    def _send_ifp(self, ifp: bytes, count: int) -> None:
        assert self.udptl_tx is not None and self.udptl_sock is not None and self.udptl_remote is not None
        dg = self.udptl_tx.build(ifp)
        self.ifps_out += 1
        for _ in range(count):
            if self.loss.drop():
                continue
            try:
                self.udptl_sock.sendto(dg, self.udptl_remote)
                self.udptl_sent += 1
            except OSError:
                pass

    def _switch_to_t38(self, offer: MediaOffer) -> None:
        assert offer.image_addr is not None
        version = min(offer.t38_version, self.args.t38_version)
        max_dg = offer.max_datagram
        depth = self.args.redundancy
        self.udptl_remote = offer.image_addr
        self.udptl_tx = UdptlSender(depth, max_dg)
        max_ifp = max(32, min(1400, (max_dg - 8) // (depth + 1)))
        if self.audio is not None:
            self.audio.close()
            self.audio = None
        self.t38 = T38Fax(self.calling, self.cfg, self._send_ifp, version=version, max_ifp=max_ifp)
        self.t30 = self.t38.t30
        self.t38_version = version
        self.mode = "t38"
        self._event(f"switched to T.38 v{version} → {offer.image_addr} (far max datagram {max_dg}, IFP ≤ {max_ifp})")
        for dg in self.udptl_early:
            self._udptl_in(dg)
        self.udptl_early.clear()

    def _udptl_in(self, dg: bytes) -> None:
        if self.t38 is None:
            self.udptl_early.append(dg)
            return
        for seq, ifp in self.udptl_rx.feed(dg):
            self.ifps_in += 1
            self.t38.rx_ifp(ifp, seq)

    def _rtp_in(self, data: bytes) -> None:
        r = rtpkit.parse_rtp(data)
        if r is None or r.pt not in (0, 8) or self.audio is None:
            return
        if self.last_rtp_seq is not None and ((r.seq - self.last_rtp_seq) & 0xFFFF) >= 0x8000:
            return  # duplicate or late
        self.last_rtp_seq = r.seq
        pcm = np.round(rtpkit.decode(r.payload, r.pt) * 32768.0).clip(-32768, 32767).astype(np.int16)
        self.rx_queue.append(pcm)

    def _audio_tick(self) -> None:
        assert self.audio is not None
        # receive: one frame per tick; a backlog is worked off two frames per tick;
        # fill-in only once the far end has been silent for 200 ms (not sending).
        if self.rx_queue:
            self.starved = 0
            for _ in range(2 if len(self.rx_queue) > 2 else 1):
                frame = self.rx_queue.pop(0)
                self.audio.rx(frame)
                if self.tone is not None and self.reinvite_at is not None and self.tone.feed(frame):
                    self._event(f"heard {self.tone.freq:.0f} Hz tone")
                    self.reinvite_at = time.monotonic()
                    self.tone = None
        else:
            self.starved += 1
            if self.starved >= 10:
                self.audio.rx_fillin(SAMPLES_PER_TICK)
        # transmit
        pcm = self.audio.tx()
        if self.rtp_remote is not None and self.rtp_out is not None:
            pkt = self.rtp_out.audio(pcm.astype(np.float64) / 32768.0).take()[0][1]
            if not self.audio_loss.drop():
                try:
                    self.rtp_sock.sendto(pkt, self.rtp_remote)
                except OSError:
                    pass

    def _tick(self) -> None:
        if self.remote_bye:
            if self.audio is not None:
                self.audio.rx_fillin(SAMPLES_PER_TICK)
            elif self.t38 is not None:
                self.t38.tick()
            return
        if self.audio is not None:
            self._audio_tick()
        elif self.t38 is not None:
            self.t38.tick()

    # --- SIP inside the call ---------------------------------------------------

    def _start_txn(self, method: str, body: bytes = b"") -> ClientTxn:
        branch = sipkit.new_branch()
        data = self.sip.request(self.dialog, method, body, branch=branch)
        now = time.monotonic()
        t = ClientTxn(method, self.dialog.local_cseq, data, now + 0.5, deadline=now + 32, branch=branch)
        self.sip.send_raw(data)
        self.txns.append(t)
        return t

    def _retransmit(self, now: float) -> None:
        for t in self.txns:
            if t.final is not None or (t.method == "INVITE" and t.provisional) or now > t.deadline:
                continue
            if now >= t.next_send:
                self.sip.send_raw(t.data)
                t.interval = min(t.interval * 2, 4.0)
                t.next_send = now + t.interval
        self.sip.retransmit_2xx(now)

    def _send_reinvite(self) -> None:
        if self.udptl_sock is None:
            self.udptl_sock = self._new_udptl_socket()
        body = self.sdp.image(self.udptl_sock.getsockname()[1], self.args.t38_version)
        self.reinvite_txn = self._start_txn("INVITE", body)
        self.reinvite_tries += 1
        self._event(f"re-INVITE to T.38 sent (CSeq {self.reinvite_txn.cseq})")

    def _on_response(self, m: sipkit.Msg) -> None:
        if m.get("call-id") != self.dialog.call_id:
            return
        try:
            cseq = int((m.get("cseq") or "0").split()[0])
        except ValueError:
            return
        for t in self.txns:
            if t.cseq != cseq or t.method != m.cseq_method:
                continue
            if m.status < 200:
                t.provisional = True
                return
            if t.method == "INVITE":
                # ACK every final, retransmissions too: a 2xx in a new transaction
                # (§13.2.2.4), a non-2xx in the INVITE's own (§17.1.1.3)
                if m.status < 300:
                    ack = self.sip.request(self.dialog, "ACK", cseq=cseq)
                else:
                    ack = self.sip.request(self.dialog, "ACK", cseq=cseq, branch=t.branch,
                                           to_tag=sipkit.tag_of(m.get("to")))
                self.sip.send_raw(ack)
            if t.final is not None:
                return
            t.final = m
            if t is self.reinvite_txn:
                self._on_reinvite_final(m)
            return

    def _on_reinvite_final(self, m: sipkit.Msg) -> None:
        self._event(f"re-INVITE answered {m.status}")
        if 200 <= m.status < 300 and m.body:
            offer = parse_offer(m.body)
            if offer.image_addr is not None and self.mode == "audio":
                self._switch_to_t38(offer)
                return
        if m.status == 491 and self.reinvite_tries < 3 and self.mode == "audio":
            self.reinvite_at = time.monotonic() + random.uniform(0.5, 1.5)  # §14.1 glare back-off
        # otherwise stay with audio

    def _on_request(self, m: sipkit.Msg, addr: tuple[str, int]) -> None:
        if m.method == "ACK":
            return
        if m.get("call-id") != self.dialog.call_id and m.method != "OPTIONS":
            self.sip.respond(m, 481, "Call/Transaction Does Not Exist", addr=addr)
            return
        if m.method == "BYE":
            self.sip.respond(m, 200, "OK", addr=addr)
            self.remote_bye = True
            self._event("BYE received")
            if self.end_at is None or self.end_at > time.monotonic() + 2.0:
                self.end_at = time.monotonic() + 2.0  # let phase E arrive from what is buffered
            return
        if m.method == "INVITE":
            self._on_reinvite(m, addr)
            return
        self.sip.respond(m, 200, "OK", addr=addr)

    def _on_reinvite(self, m: sipkit.Msg, addr: tuple[str, int]) -> None:
        offer = parse_offer(m.body) if m.body else MediaOffer(None, None, {})
        pending = self.reinvite_txn is not None and self.reinvite_txn.final is None
        if pending:
            self.sip.respond(m, 491, "Request Pending", addr=addr)
            self._event("re-INVITE glare: 491")
            return
        if offer.image_addr is not None:
            if self.args.t38 == "none":
                self.sip.respond(m, 488, "Not Acceptable Here", addr=addr)
                self._event("T.38 re-INVITE refused (488)")
                return
            if self.udptl_sock is None:
                self.udptl_sock = self._new_udptl_socket()
            version = min(offer.t38_version, self.args.t38_version)
            body = self.sdp.image(self.udptl_sock.getsockname()[1], version)
            self.sip.respond(m, 200, "OK", body=body, addr=addr)
            self._event(f"T.38 re-INVITE accepted (offered v{offer.t38_version})")
            if self.mode == "audio":
                self._switch_to_t38(offer)
            else:
                self.udptl_remote = offer.image_addr
            return
        if offer.audio is not None:
            # an audio refresh, or the far end going back to audio after T.38 (Asterisk
            # does at the end): accepted; the T.38 engine (if any) keeps running
            self.rtp_remote = (offer.audio.ip, offer.audio.port)
            self.sip.respond(m, 200, "OK", body=self.sdp.audio(self.rtp_sock.getsockname()[1], [self.pt]), addr=addr)
            if self.mode == "t38":
                self._event("re-INVITE back to audio accepted")
            return
        self.sip.respond(m, 488, "Not Acceptable Here", addr=addr)

    # --- the loop ----------------------------------------------------------------

    def run(self) -> None:
        socks = [self.sip.sock, self.rtp_sock]
        next_tick = time.monotonic()
        while True:
            now = time.monotonic()
            if now >= self.deadline:
                self.error = "call deadline reached"
                self._event(self.error)
                break
            if self.end_at is not None and now >= self.end_at:
                break
            if self.t30 is not None and self.t30.phase_e is not None and self.end_at is None:
                self.end_at = now + self.args.linger
            if self.reinvite_at is not None and now >= self.reinvite_at and self.mode == "audio":
                self.reinvite_at = None
                self._send_reinvite()
            want = socks + ([self.udptl_sock] if self.udptl_sock is not None else [])
            try:
                ready, _, _ = select.select(want, [], [], max(0.0, min(next_tick, self.deadline) - now))
            except InterruptedError:
                ready = []
            for s in ready:
                if s is self.sip.sock:
                    for m, addr in self.sip.poll():
                        if m.is_response:
                            self._on_response(m)
                        else:
                            self._on_request(m, addr)
                else:
                    self._drain(s)
            now = time.monotonic()
            if now - next_tick > 1.0:  # stalled for a second: do not burst a second of media
                self._event(f"loop stalled {now - next_tick:.2f}s")
                next_tick = now
            while now >= next_tick:
                self._tick()
                next_tick += TICK
            self._retransmit(now)
        self.finish()

    def _drain(self, s: socket.socket) -> None:
        while True:
            try:
                data, _ = s.recvfrom(4096)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            if s is self.rtp_sock:
                self._rtp_in(data)
            else:
                self._udptl_in(data)

    def finish(self) -> None:
        """Hangs up (BYE unless the far end did) and closes media."""
        if self.t30 is not None and self.t30.phase_e is None:
            self.t30.terminate()
        if not self.remote_bye:
            if self.role == "receive":
                # the sender normally hangs up: give it a moment
                end = time.monotonic() + 3.0
                while time.monotonic() < end and not self.remote_bye:
                    for m, addr in self.sip.poll(timeout=max(0.01, end - time.monotonic())):
                        if not m.is_response:
                            self._on_request(m, addr)
            if not self.remote_bye:
                self.bye_txn = self._start_txn("BYE")
                end = time.monotonic() + 5.0
                while time.monotonic() < end and self.bye_txn.final is None:
                    for m, addr in self.sip.poll(timeout=0.05):
                        if m.is_response:
                            self._on_response(m)
                        else:
                            self._on_request(m, addr)
                    self._retransmit(time.monotonic())
                self._event(f"BYE answered {self.bye_txn.final.status if self.bye_txn.final else 'never'}")

    def result(self) -> dict:
        code = self.t30.phase_e if self.t30 is not None and self.t30.phase_e is not None else T30_ERR_CALLDROPPED
        st = self.t30.stats() if self.t30 is not None else T30Stats()
        lib = spandsp()
        return {
            "role": self.role,
            "completion_code": code,
            "text": lib.completion_text(code),
            "pages_sent": st.pages_tx,
            "pages_received": st.pages_rx,
            "pages_in_file": st.pages_in_file,
            "mode_used": self.mode,
            "remote_ident": self.t30.remote_ident() if self.t30 is not None else "",
            "local_ident": self.cfg.ident,
            "bit_rate": st.bit_rate,
            "ecm": bool(st.error_correcting_mode),
            "bad_rows": st.bad_rows,
            "x_resolution": st.x_resolution,
            "y_resolution": st.y_resolution,
            "width": st.width,
            "length": st.length,
            "codec": {0: "pcmu", 8: "pcma"}.get(self.pt, str(self.pt)),
            "t38_version": self.t38_version,
            "udptl_dropped": self.loss.dropped,
            "rtp_dropped": self.audio_loss.dropped,
            "udptl": {
                "datagrams_sent": self.udptl_sent,
                "ifps_sent": self.ifps_out,
                "datagrams_received": self.udptl_rx.received,
                "ifps_delivered": self.ifps_in,
                "recovered": self.udptl_rx.recovered,
                "lost": self.udptl_rx.lost,
                "duplicates": self.udptl_rx.duplicates,
            },
            "remote_bye": self.remote_bye,
            "duration_s": round(time.monotonic() - self.t0, 2),
            "events": self.events,
            "error": self.error or (self.t38.errors[0] if self.t38 is not None and self.t38.errors else None),
        }

    def close(self) -> None:
        if self.audio is not None:
            self.audio.close()
        if self.t38 is not None:
            self.t38.close()
        if self.udptl_sock is not None:
            self.udptl_sock.close()


# ==================================================================== CLI


def _rtp_socket(ip: str) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((ip, 0))
    s.setblocking(False)
    return s


def _host_port(uri: str) -> tuple[str, int]:
    hp = uri.split(":", 1)[1] if uri.startswith("sip:") else uri
    hp = hp.split(";")[0].split("@")[-1]
    host, _, port = hp.partition(":")
    return host, int(port or 5060)


def run_send(args: argparse.Namespace, deadline: float) -> dict:
    if not Path(args.tiff).is_file():
        raise SessionError(f"no such TIFF: {args.tiff}")
    server = _host_port(args.to)
    sip = FaxSip(server, args.ip)
    rtp = _rtp_socket(args.ip)
    sdp = SdpMaker(args.ip)
    try:
        call = sipkit.Call(sip, args.to, sdp.audio(rtp.getsockname()[1], [args.pt]))
        log(f"INVITE {args.to} from {sip.local}")
        final = call.wait_final(timeout=min(30.0, deadline - time.monotonic()), ack=True)
        log(f"INVITE answered {final.status}")
        if final.status != 200:
            return {"role": "send", "completion_code": -1, "text": f"INVITE failed: {final.start}", "pages_sent": 0,
                    "mode_used": None, "remote_ident": "", "sip_status": final.status}
        dialog = Dialog(call.call_id, f"sip:tester@{sip.local[0]}:{sip.local[1]}", call.from_tag,
                        call.uri.split(";")[0], call.to_tag, call.remote_target, call.cseq)
        offer = parse_offer(final.body) if final.body else MediaOffer(None, None, {})
        sess = Session(args, "send", sip, dialog, sdp, rtp, offer, deadline)
        try:
            sess.run()
            res = sess.result()
        finally:
            sess.close()
        res["sip_status"] = final.status
        return res
    finally:
        rtp.close()
        sip.close()


def run_listen(args: argparse.Namespace, deadline: float) -> dict:
    sip = FaxSip(None, args.ip, args.port)
    rtp = _rtp_socket(args.ip)
    sdp = SdpMaker(args.ip)
    log(f"listening on {sip.local}")
    try:
        invite = None
        wait_end = min(deadline, time.monotonic() + args.wait)
        while invite is None:
            left = wait_end - time.monotonic()
            if left <= 0:
                raise SessionError(f"no INVITE within {args.wait}s")
            for m, addr in sip.poll(timeout=min(left, 0.5)):
                if m.is_response:
                    continue
                sip.server = addr
                if m.method == "INVITE" and not sipkit.tag_of(m.get("to")):
                    invite = m
                    break
                if m.method == "OPTIONS":
                    sip.respond(m, 200, "OK", addr=addr)
                elif m.method != "ACK":
                    sip.respond(m, 481, "Call/Transaction Does Not Exist", addr=addr)
        addr = sip.server
        local_tag = sipkit.new_token(4)
        sip.respond(invite, 100, "Trying", addr=addr)
        offer = parse_offer(invite.body) if invite.body else MediaOffer(None, None, {})
        if offer.audio is not None and offer.audio.port:
            pts = [p for p in offer.audio.payloads if p in (0, 8)]
            if not pts:
                sip.respond(invite, 488, "Not Acceptable Here", to_tag=local_tag, addr=addr)
                raise SessionError("offer has neither PCMU nor PCMA")
            pt = args.pt if args.pt in pts else pts[0]
            answer = sdp.audio(rtp.getsockname()[1], [pt])
            offer.audio.payloads = [pt]
        elif offer.image_addr is not None and args.t38 != "none":
            answer = None  # T.38 in the initial offer: answered once the UDPTL socket exists
        else:
            sip.respond(invite, 488, "Not Acceptable Here", to_tag=local_tag, addr=addr)
            raise SessionError("offer has no usable media")
        dialog = Dialog(invite.get("call-id") or "", sipkit.uri_of(invite.get("to")), local_tag,
                        sipkit.uri_of(invite.get("from")), sipkit.tag_of(invite.get("from")),
                        sipkit.uri_of(invite.get("contact")) or sipkit.uri_of(invite.get("from")), random.randint(1, 9999))
        sess = Session(args, "receive", sip, dialog, sdp, rtp, offer, deadline)
        try:
            if answer is None:
                assert sess.udptl_sock is not None and sess.t38_version is not None
                answer = sdp.image(sess.udptl_sock.getsockname()[1], sess.t38_version)
            sip.respond(invite, 200, "OK", to_tag=local_tag, body=answer, addr=addr)
            log("call answered")
            sess.run()
            res = sess.result()
        finally:
            sess.close()
        return res
    finally:
        rtp.close()
        sip.close()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--codec", choices=["pcmu", "pcma"], default="pcmu")
        p.add_argument("--t38", choices=["none", "accept", "request"], default="accept",
                       help="none: refuse T.38 re-INVITEs (488); accept: answer them; request: re-INVITE to T.38 "
                            "after --t38-delay seconds of audio or on hearing CED (send) / CNG (listen)")
        p.add_argument("--t38-version", type=int, choices=[0, 1, 2, 3], default=0)
        p.add_argument("--t38-delay", type=float, default=2.0)
        p.add_argument("--redundancy", type=int, default=3, help="UDPTL redundancy depth")
        p.add_argument("--loss", type=float, default=0.0,
                       help="drop this fraction of outgoing UDPTL datagrams (every copy counts), evenly spread")
        p.add_argument("--audio-loss", type=float, default=0.0,
                       help="drop this fraction of outgoing RTP packets, evenly spread (audio fax will not survive it)")
        p.add_argument("--ecm", dest="ecm", action="store_true", default=True)
        p.add_argument("--no-ecm", dest="ecm", action="store_false")
        p.add_argument("--ident", default="+1 555 0100")
        p.add_argument("--ip", default="127.0.0.1")
        p.add_argument("--timeout", type=float, default=180.0, help="whole call cap, seconds")
        p.add_argument("--linger", type=float, default=1.0, help="seconds of media after phase E before hanging up")
        p.add_argument("--result", required=True)
        p.add_argument("--verbose", "-v", action="store_true", help="spandsp protocol log on stderr")

    s = sub.add_parser("send", help="call and send a TIFF")
    s.add_argument("--to", required=True)
    s.add_argument("--tiff", required=True)
    common(s)
    r = sub.add_parser("listen", help="answer one call and receive")
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--rx", required=True, help="received TIFF path")
    r.add_argument("--wait", type=float, default=60.0, help="seconds to wait for the INVITE")
    common(r)
    args = ap.parse_args(argv)
    args.pt = 8 if args.codec == "pcma" else 0
    if len(args.ident) > 20:
        ap.error("--ident: at most 20 characters (T30_MAX_IDENT_LEN)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    deadline = time.monotonic() + args.timeout

    def on_alarm(_sig, _frm):
        raise SystemExit(3)

    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(int(args.timeout) + 30)  # hard cap even if something blocks
    t0 = time.monotonic()
    try:
        res = run_send(args, deadline) if args.cmd == "send" else run_listen(args, deadline)
    except (SessionError, sipkit.SipError, OSError) as e:
        res = {"role": args.cmd, "completion_code": -1, "text": str(e), "pages_sent": 0, "pages_received": 0,
               "mode_used": None, "remote_ident": "", "error": str(e)}
    res["wall_s"] = round(time.monotonic() - t0, 2)
    Path(args.result).write_text(json.dumps(res, indent=2) + "\n")
    log(f"result: {res.get('completion_code')} {res.get('text')} mode={res.get('mode_used')} "
        f"sent={res.get('pages_sent')} rx={res.get('pages_received')}")
    ok = res.get("completion_code") == 0 and (args.cmd != "send" or res.get("pages_sent", 0) >= 1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
