"""RTP for the interop tests: packets (RFC 3550), DTMF events (RFC 4733), a paced
UDP peer, and a pcap writer/reader for SIPp's ``play_pcap_audio``.

The pcap writer is struct-based (no scapy): classic libpcap format, link type 1
(Ethernet), IPv4 + UDP headers around each RTP packet, with per-packet
timestamps that SIPp uses for pacing. SIPp replaces addresses and ports when it
replays, so the ones written here are placeholders.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import struct
import time
from pathlib import Path

import numpy as np

import audiocmp as A

FRAME = 160  # 20 ms at 8 kHz
PTIME = 0.02

# RFC 4733 §3.2 event codes
DTMF_EVENTS = {**{str(d): d for d in range(10)}, "*": 10, "#": 11, "A": 12, "B": 13, "C": 14, "D": 15}


def rtp_packet(pt: int, seq: int, ts: int, ssrc: int, payload: bytes, marker: bool = False) -> bytes:
    return struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | (pt & 0x7F), seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc) + payload


@dataclasses.dataclass
class Rtp:
    pt: int
    seq: int
    ts: int
    ssrc: int
    marker: bool
    payload: bytes


def parse_rtp(data: bytes) -> Rtp | None:
    if len(data) < 12 or data[0] >> 6 != 2:
        return None
    b0, b1, seq, ts, ssrc = struct.unpack("!BBHII", data[:12])
    off = 12 + 4 * (b0 & 0x0F)
    if b0 & 0x10:  # header extension
        if len(data) < off + 4:
            return None
        off += 4 + 4 * struct.unpack("!H", data[off + 2 : off + 4])[0]
    end = len(data)
    if b0 & 0x20 and end > off:  # padding
        end -= data[-1]
    if off > end:
        return None
    return Rtp(b1 & 0x7F, seq, ts, ssrc, bool(b1 & 0x80), data[off:end])


def event_payload(digit: str, end: bool, duration: int, volume: int = 10) -> bytes:
    """RFC 4733 §2.3 payload: event, E|R|volume, duration (in timestamp units)."""
    return struct.pack("!BBH", DTMF_EVENTS[digit], (0x80 if end else 0) | (volume & 0x3F), duration & 0xFFFF)


def encode(samples: np.ndarray, pt: int) -> bytes:
    if pt == 0:
        return A.ulaw_encode(samples).tobytes()
    if pt == 8:
        return A.alaw_encode(samples).tobytes()
    raise ValueError(f"test peer cannot encode payload type {pt}")


def decode(payload: bytes, pt: int) -> np.ndarray:
    b = np.frombuffer(payload, dtype=np.uint8)
    if pt == 0:
        return A.ulaw_decode(b)
    if pt == 8:
        return A.alaw_decode(b)
    raise ValueError(f"cannot decode payload type {pt}")


class StreamBuilder:
    """Builds a timed RTP packet list: audio in 20 ms frames, then DTMF events, ..."""

    def __init__(self, audio_pt: int = 0, event_pt: int = 101, ssrc: int | None = None):
        self.audio_pt = audio_pt
        self.event_pt = event_pt
        self.ssrc = ssrc if ssrc is not None else struct.unpack("!I", os.urandom(4))[0]
        self.seq = struct.unpack("!H", os.urandom(2))[0] & 0x7FFF
        self.ts = struct.unpack("!I", os.urandom(4))[0] & 0x7FFFFFFF
        self.t = 0.0
        self.packets: list[tuple[float, bytes]] = []
        self._first = True

    def _add(self, pt: int, payload: bytes, marker: bool, ts: int | None = None) -> None:
        self.packets.append((self.t, rtp_packet(pt, self.seq, self.ts if ts is None else ts, self.ssrc, payload, marker)))
        self.seq = (self.seq + 1) & 0xFFFF

    def audio(self, samples: np.ndarray) -> "StreamBuilder":
        n = (len(samples) + FRAME - 1) // FRAME
        samples = np.concatenate([samples, np.zeros(n * FRAME - len(samples))])
        for i in range(n):
            self._add(self.audio_pt, encode(samples[i * FRAME : (i + 1) * FRAME], self.audio_pt), self._first)
            self._first = False
            self.ts += FRAME
            self.t += PTIME
        return self

    def take(self) -> list[tuple[float, bytes]]:
        """Returns the packets built so far and starts a new batch at t = 0 (same stream)."""
        out, self.packets, self.t = self.packets, [], 0.0
        return out

    def next_silence_packet(self) -> bytes:
        """One 20 ms silent audio packet continuing this stream (for live sending)."""
        pkt = rtp_packet(self.audio_pt, self.seq, self.ts, self.ssrc, encode(np.zeros(FRAME), self.audio_pt), self._first)
        self._first = False
        self.seq = (self.seq + 1) & 0xFFFF
        self.ts += FRAME
        return pkt

    def silence(self, seconds: float) -> "StreamBuilder":
        return self.audio(np.zeros(int(round(seconds * A.RATE))))

    def event(self, digit: str, seconds: float = 0.2, volume: int = 10) -> "StreamBuilder":
        """RFC 4733 §2.5.1: first packet with M bit, same timestamp throughout, growing
        duration, end packet sent three times (§2.5.1.4)."""
        start = self.ts
        n = max(1, int(round(seconds / PTIME)))
        for i in range(1, n + 1):
            self._add(self.event_pt, event_payload(digit, False, i * FRAME, volume), i == 1, ts=start)
            self.t += PTIME
        for _ in range(3):
            self._add(self.event_pt, event_payload(digit, True, n * FRAME, volume), False, ts=start)
        self.ts += n * FRAME
        return self


# ------------------------------------------------------------------------ pcap

PCAP_MAGIC = 0xA1B2C3D4
LINKTYPE_ETHERNET = 1


def _ip_checksum(hdr: bytes) -> int:
    s = sum(struct.unpack("!%dH" % (len(hdr) // 2), hdr))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def udp_frame(payload: bytes, src: tuple[str, int], dst: tuple[str, int], ident: int = 0) -> bytes:
    udp = struct.pack("!HHHH", src[1], dst[1], 8 + len(payload), 0) + payload
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), ident & 0xFFFF, 0x4000, 64, 17, 0,
        socket.inet_aton(src[0]), socket.inet_aton(dst[0]),
    )
    ip = ip[:10] + struct.pack("!H", _ip_checksum(ip)) + ip[12:]
    eth = b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + struct.pack("!H", 0x0800)
    return eth + ip + udp


def write_pcap(
    path: str | Path,
    packets: list[tuple[float, bytes]],
    src: tuple[str, int] = ("127.0.0.1", 6000),
    dst: tuple[str, int] = ("127.0.0.1", 6002),
    start: float = 1_700_000_000.0,
) -> None:
    out = [struct.pack("<IHHiIII", PCAP_MAGIC, 2, 4, 0, 0, 65535, LINKTYPE_ETHERNET)]
    for i, (t, payload) in enumerate(packets):
        frame = udp_frame(payload, src, dst, i)
        ts = start + t
        sec = int(ts)
        usec = int(round((ts - sec) * 1e6))
        if usec >= 1_000_000:
            sec, usec = sec + 1, usec - 1_000_000
        out.append(struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame)
    Path(path).write_bytes(b"".join(out))


@dataclasses.dataclass
class PcapPacket:
    time: float
    src: tuple[str, int]
    dst: tuple[str, int]
    payload: bytes


def read_pcap(path: str | Path) -> list[PcapPacket]:
    """Reads a classic little-endian Ethernet/IPv4/UDP pcap (what ``write_pcap`` and SIPp use)."""
    data = Path(path).read_bytes()
    magic, _maj, _min, _tz, _sig, _snap, link = struct.unpack_from("<IHHiIII", data, 0)
    if magic != PCAP_MAGIC or link != LINKTYPE_ETHERNET:
        raise ValueError("unsupported pcap")
    out = []
    off = 24
    while off + 16 <= len(data):
        sec, usec, incl, _orig = struct.unpack_from("<IIII", data, off)
        frame = data[off + 16 : off + 16 + incl]
        off += 16 + incl
        if len(frame) < 42 or frame[12:14] != b"\x08\x00" or frame[23] != 17:
            continue
        ihl = (frame[14] & 0x0F) * 4
        src_ip = socket.inet_ntoa(frame[26:30])
        dst_ip = socket.inet_ntoa(frame[30:34])
        sport, dport, ulen, _ck = struct.unpack_from("!HHHH", frame, 14 + ihl)
        payload = frame[14 + ihl + 8 : 14 + ihl + ulen]
        out.append(PcapPacket(sec + usec / 1e6, (src_ip, sport), (dst_ip, dport), payload))
    return out


# ------------------------------------------------------------------- live peer


@dataclasses.dataclass
class Received:
    time: float
    src: tuple[str, int]
    rtp: Rtp


class RtpPeer:
    """A UDP RTP endpoint on 127.0.0.1 that sends paced packets and keeps what it receives."""

    def __init__(self, ip: str = "127.0.0.1"):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((ip, 0))
        self.sock.setblocking(False)
        self.addr = self.sock.getsockname()
        self.remote: tuple[str, int] | None = None
        self.received: list[Received] = []
        self.t0 = time.monotonic()

    def close(self) -> None:
        self.sock.close()

    def drain(self) -> None:
        while True:
            try:
                data, src = self.sock.recvfrom(2048)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # e.g. ICMP port unreachable reported on a later recv
            r = parse_rtp(data)
            if r is not None:
                self.received.append(Received(time.monotonic(), src, r))

    def _pace_until(self, deadline: float) -> None:
        """Receives until ``deadline`` (monotonic)."""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.drain()
                return
            self.sock.settimeout(min(left, 0.005))
            try:
                data, src = self.sock.recvfrom(2048)
                r = parse_rtp(data)
                if r is not None:
                    self.received.append(Received(time.monotonic(), src, r))
            except (socket.timeout, BlockingIOError):
                pass
            except OSError:
                pass
            finally:
                self.sock.setblocking(False)

    def keep_alive(self, builder: StreamBuilder, seconds: float) -> None:
        """Sends ``seconds`` of silence at the real pace, receiving meanwhile."""
        self.play([(i * PTIME, builder.next_silence_packet()) for i in range(int(round(seconds / PTIME)))])

    def play(self, packets: list[tuple[float, bytes]], extra=None) -> None:
        """Sends ``packets`` at their times (relative to now), receiving meanwhile.

        ``extra(i)`` is called after each send (the flood test uses it)."""
        assert self.remote is not None
        start = time.monotonic()
        for i, (t, pkt) in enumerate(packets):
            self._pace_until(start + t)
            try:
                self.sock.sendto(pkt, self.remote)
            except OSError:
                pass
            if extra is not None:
                extra(i)
        self._pace_until(time.monotonic())

    def wait_prompt_end(self, builder: StreamBuilder | None, quiet_s: float = 1.0, timeout: float = 40.0,
                        threshold: float = 0.01) -> float:
        """Keeps sending silence (as a real phone does; nothing if ``builder`` is None)
        until coda's audio has been loud and then quiet (or absent) for ``quiet_s``.
        Returns the monotonic time of the last loud packet (the end of the beep)."""
        start = time.monotonic()
        last_loud = None
        seen = len(self.received)
        i = 0
        while time.monotonic() - start < timeout:
            self._pace_until(start + i * PTIME)
            if builder is not None and self.remote is not None:
                try:
                    self.sock.sendto(builder.next_silence_packet(), self.remote)
                except OSError:
                    pass
            i += 1
            for r in self.received[seen:]:
                if r.rtp.pt in (0, 8) and A.rms(decode(r.rtp.payload, r.rtp.pt)) > threshold:
                    last_loud = r.time
            seen = len(self.received)
            if last_loud is not None and time.monotonic() - last_loud >= quiet_s:
                return last_loud
        raise AssertionError(f"coda's greeting did not end within {timeout}s (loud audio seen: {last_loud is not None})")

    def audio_received(self, pt: int | None = None) -> np.ndarray:
        """Received audio in arrival order (telephone-event packets skipped)."""
        chunks = [decode(r.rtp.payload, r.rtp.pt) for r in self.received if r.rtp.pt in (0, 8) and (pt is None or r.rtp.pt == pt)]
        return np.concatenate(chunks) if chunks else np.zeros(0)



def deposit_stream(
    speech: np.ndarray,
    lead_s: float,
    gap_s: float = 1.0,
    digit: str | None = "#",
    tail_s: float = 3.0,
    audio_pt: int = 0,
    event_pt: int = 101,
    after: np.ndarray | None = None,
) -> tuple[list[tuple[float, bytes]], float]:
    """silence(lead) + speech + silence(gap) + digit event + silence(tail) [+ after].

    Returns the packets and the time (from the first packet) at which the digit starts."""
    b = StreamBuilder(audio_pt, event_pt)
    b.silence(lead_s).audio(speech).silence(gap_s)
    digit_at = b.t
    if digit:
        b.event(digit)
    b.silence(tail_s)
    if after is not None:
        b.audio(after)
    return b.packets, digit_at
