"""A small raw SIP-over-UDP user agent for black-box tests of coda.

Just enough RFC 3261 to drive calls and odd inputs from Python: building
requests, parsing responses, INVITE retransmission before a provisional
(timer A, T1 = 0.5 s), ACK for non-2xx finals in the same transaction (§17.1.1.3)
and for 2xx as a new transaction (§13.2.2.4), CANCEL (§9.1), and answering an
incoming BYE with 200. No threads: everything happens inside ``recv``.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time

COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact", "l": "content-length", "c": "content-type"}


def new_token(n: int = 8) -> str:
    return os.urandom(n).hex()


def new_branch() -> str:
    return "z9hG4bK" + new_token()


@dataclasses.dataclass
class Msg:
    start: str
    headers: list[tuple[str, str]]
    body: bytes
    raw: bytes

    @property
    def is_response(self) -> bool:
        return self.start.startswith("SIP/2.0 ")

    @property
    def status(self) -> int:
        return int(self.start.split(" ", 2)[1]) if self.is_response else 0

    @property
    def method(self) -> str:
        return "" if self.is_response else self.start.split(" ", 1)[0]

    def get(self, name: str, default: str | None = None) -> str | None:
        name = name.lower()
        for k, v in self.headers:
            if k == name:
                return v
        return default

    def get_all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self.headers if k == name]

    @property
    def cseq_method(self) -> str:
        v = self.get("cseq") or ""
        parts = v.split()
        return parts[1] if len(parts) > 1 else ""

    @property
    def branch(self) -> str:
        via = self.get("via") or ""
        for p in via.split(";")[1:]:
            if p.strip().lower().startswith("branch="):
                return p.strip()[7:]
        return ""


def parse(data: bytes) -> Msg | None:
    """Parses a SIP message; returns None for anything that does not look like one."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return None
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return None
    lines = text.split("\r\n")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:
            k, v = headers[-1]
            headers[-1] = (k, v + " " + line.strip())
            continue
        k, _, v = line.partition(":")
        k = k.strip().lower()
        headers.append((COMPACT.get(k, k), v.strip()))
    return Msg(lines[0], headers, body, data)


def tag_of(header: str | None) -> str:
    if not header:
        return ""
    for p in header.split(";")[1:]:
        p = p.strip()
        if p.lower().startswith("tag="):
            return p[4:]
    return ""


def uri_of(header: str | None) -> str:
    """The URI inside <...> of a From/To/Contact value (or the value up to ';')."""
    if not header:
        return ""
    if "<" in header and ">" in header:
        return header[header.index("<") + 1 : header.index(">")]
    return header.split(";")[0].strip()


# ----------------------------------------------------------------------- SDP


def make_sdp(ip: str, port: int, payloads: list[tuple[int, str]] | None = None, extra: str = "") -> bytes:
    """An audio offer; ``payloads`` as (pt, "encoding/rate") pairs."""
    if payloads is None:
        payloads = [(0, "PCMU/8000"), (8, "PCMA/8000"), (101, "telephone-event/8000")]
    sid = str(int(time.time()))
    lines = [
        "v=0",
        f"o=tester {sid} {sid} IN IP4 {ip}",
        "s=coda-test",
        f"c=IN IP4 {ip}",
        "t=0 0",
        f"m=audio {port} RTP/AVP {' '.join(str(p) for p, _ in payloads)}",
    ]
    for pt, enc in payloads:
        lines.append(f"a=rtpmap:{pt} {enc}")
        if enc.lower().startswith("telephone-event"):
            lines.append(f"a=fmtp:{pt} 0-16")
    lines.append("a=ptime:20")
    lines.append("a=sendrecv")
    if extra:
        lines.append(extra)
    return ("\r\n".join(lines) + "\r\n").encode()


@dataclasses.dataclass
class Sdp:
    ip: str
    port: int
    payloads: list[int]
    rtpmap: dict[int, str]

    def encoding(self, pt: int) -> str:
        static = {0: "PCMU/8000", 8: "PCMA/8000", 9: "G722/8000", 18: "G729/8000"}
        return self.rtpmap.get(pt, static.get(pt, "?"))

    @property
    def audio_pt(self) -> int:
        """First payload type that is not telephone-event."""
        for pt in self.payloads:
            if not self.encoding(pt).lower().startswith("telephone-event"):
                return pt
        raise ValueError("no audio codec in SDP")

    @property
    def event_pt(self) -> int | None:
        for pt in self.payloads:
            if self.encoding(pt).lower().startswith("telephone-event"):
                return pt
        return None


def parse_sdp(body: bytes) -> Sdp:
    ip, port, pts, rtpmap = "", 0, [], {}
    media_c = ""
    in_audio = False
    for line in body.decode("utf-8", "replace").splitlines():
        line = line.strip()
        if line.startswith("c=") and not in_audio:
            ip = line.split()[-1]
        elif line.startswith("m="):
            parts = line[2:].split()
            in_audio = parts[0] == "audio"
            if in_audio:
                port = int(parts[1])
                pts = [int(p) for p in parts[3:]]
        elif in_audio and line.startswith("c="):
            media_c = line.split()[-1]
        elif in_audio and line.startswith("a=rtpmap:"):
            k, _, v = line[9:].partition(" ")
            rtpmap[int(k)] = v.strip()
    return Sdp(media_c or ip, port, pts, rtpmap)


# --------------------------------------------------------------------- client


class SipError(AssertionError):
    pass


class SipUdp:
    """One UDP socket talking SIP to coda."""

    def __init__(self, server: tuple[str, int], local_ip: str = "127.0.0.1"):
        self.server = server
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((local_ip, 0))
        self.local = self.sock.getsockname()
        self.inbox: list[Msg] = []  # everything received, in order
        self.requests: list[Msg] = []  # requests coda sent us (BYE, ...)
        self._pending: list[Msg] = []

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "SipUdp":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def send_raw(self, data: bytes) -> None:
        self.sock.sendto(data, self.server)

    def build(
        self,
        method: str,
        uri: str,
        call_id: str,
        from_tag: str,
        cseq: int,
        branch: str,
        to_tag: str = "",
        body: bytes = b"",
        extra: list[str] | None = None,
        cseq_method: str | None = None,
    ) -> bytes:
        host, port = self.local
        to_uri = uri.split(";")[0]
        lines = [
            f"{method} {uri} SIP/2.0",
            f"Via: SIP/2.0/UDP {host}:{port};branch={branch};rport",
            "Max-Forwards: 70",
            f"From: \"Tester\" <sip:tester@{host}:{port}>;tag={from_tag}",
            f"To: <{to_uri}>" + (f";tag={to_tag}" if to_tag else ""),
            f"Call-ID: {call_id}",
            f"CSeq: {cseq} {cseq_method or method}",
            f"Contact: <sip:tester@{host}:{port}>",
            "User-Agent: coda-interop-tests",
        ]
        if body:
            lines.append("Content-Type: application/sdp")
        lines += extra or []
        lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    def _answer_request(self, m: Msg) -> None:
        """Replies 200 to BYE (and anything else coda may send us) and remembers it."""
        if m.method == "ACK":
            self.requests.append(m)
            return
        self.requests.append(m)
        lines = ["SIP/2.0 200 OK"]
        for v in m.get_all("via"):
            lines.append(f"Via: {v}")
        for h in ("from", "to", "call-id", "cseq"):
            v = m.get(h)
            if v is not None:
                name = {"call-id": "Call-ID", "cseq": "CSeq"}.get(h, h.capitalize())
                lines.append(f"{name}: {v}")
        lines.append("Content-Length: 0")
        self.sock.sendto(("\r\n".join(lines) + "\r\n\r\n").encode(), self.server)

    def recv(self, timeout: float) -> Msg | None:
        """Next message within ``timeout`` (requests are answered and also returned)."""
        if self._pending:
            return self._pending.pop(0)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data, _addr = self.sock.recvfrom(70000)
            except socket.timeout:
                return None
            m = parse(data)
            if m is None:
                continue
            self.inbox.append(m)
            if not m.is_response:
                self._answer_request(m)
            return m

    def wait_request(self, method: str, timeout: float) -> Msg | None:
        """Waits for a request from coda (e.g. BYE), answering it."""
        for m in self.requests:
            if m.method == method:
                return m
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = self.recv(deadline - time.monotonic())
            if m is not None and not m.is_response and m.method == method:
                return m
        return None

    def options(self, timeout: float = 2.0, uri: str | None = None) -> Msg | None:
        host, port = self.server
        req = self.build("OPTIONS", uri or f"sip:{host}:{port}", new_token(), new_token(4), 1, new_branch())
        deadline = time.monotonic() + timeout
        interval = 0.1
        while time.monotonic() < deadline:
            self.send_raw(req)
            end = min(deadline, time.monotonic() + interval)
            while time.monotonic() < end:
                m = self.recv(end - time.monotonic())
                if m is not None and m.is_response and m.cseq_method == "OPTIONS":
                    return m
            interval = min(interval * 2, 0.5)
        return None


class Call:
    """A UAC INVITE dialog driven from the test."""

    def __init__(self, ua: SipUdp, uri: str, sdp: bytes | None):
        self.ua = ua
        self.uri = uri
        self.call_id = new_token() + "@coda-test"
        self.from_tag = new_token(4)
        self.to_tag = ""
        self.cseq = 1
        self.branch = new_branch()
        self.sdp = sdp
        self.responses: list[Msg] = []
        self.final: Msg | None = None
        self.remote_target = uri
        self.invite_bytes = ua.build("INVITE", uri, self.call_id, self.from_tag, self.cseq, self.branch, body=sdp or b"")

    def send_invite(self) -> None:
        self.ua.send_raw(self.invite_bytes)

    def _ack_bytes(self, resp: Msg) -> bytes:
        if 200 <= resp.status < 300:
            # §13.2.2.4: new transaction to the remote target.
            return self.ua.build("ACK", self.remote_target, self.call_id, self.from_tag, self.cseq, new_branch(), self.to_tag)
        # §17.1.1.3: same branch, To from the response.
        return self.ua.build("ACK", self.uri, self.call_id, self.from_tag, self.cseq, self.branch, tag_of(resp.get("to")))

    def wait_final(self, timeout: float = 10.0, ack: bool = True) -> Msg:
        """Sends the INVITE (retransmitting until a provisional, timer A) and waits for a final response."""
        self.send_invite()
        deadline = time.monotonic() + timeout
        retrans = 0.5
        next_retrans = time.monotonic() + retrans
        provisional = False
        while time.monotonic() < deadline:
            wait = deadline - time.monotonic()
            if not provisional:
                wait = min(wait, max(0.0, next_retrans - time.monotonic()))
            m = self.ua.recv(wait)
            if m is None:
                if not provisional and time.monotonic() >= next_retrans:
                    self.send_invite()
                    retrans = min(retrans * 2, 4.0)
                    next_retrans = time.monotonic() + retrans
                continue
            if not m.is_response or m.get("call-id") != self.call_id:
                continue
            self.responses.append(m)
            if m.cseq_method != "INVITE":
                continue
            if m.status < 200:
                provisional = True
                continue
            self.final = m
            self.to_tag = tag_of(m.get("to"))
            contact = uri_of(m.get("contact"))
            if contact:
                self.remote_target = contact
            if ack:
                self.ack()
            return m
        raise SipError(f"no final response to INVITE {self.uri} within {timeout}s; got {[r.start for r in self.responses]}")

    def ack(self) -> None:
        assert self.final is not None
        self.ua.send_raw(self._ack_bytes(self.final))

    def answer_sdp(self) -> Sdp:
        assert self.final is not None and self.final.body, "final response carries no SDP"
        return parse_sdp(self.final.body)

    def cancel(self) -> None:
        """§9.1: same Request-URI, Call-ID, From, CSeq number and branch as the INVITE."""
        self.ua.send_raw(
            self.ua.build("CANCEL", self.uri, self.call_id, self.from_tag, self.cseq, self.branch, cseq_method="CANCEL")
        )

    def bye(self, timeout: float = 5.0) -> Msg:
        self.cseq += 1
        req = self.ua.build("BYE", self.remote_target, self.call_id, self.from_tag, self.cseq, new_branch(), self.to_tag)
        deadline = time.monotonic() + timeout
        interval = 0.5
        while time.monotonic() < deadline:
            self.ua.send_raw(req)
            end = min(deadline, time.monotonic() + interval)
            while time.monotonic() < end:
                m = self.ua.recv(end - time.monotonic())
                if m is not None and m.is_response and m.cseq_method == "BYE" and m.get("call-id") == self.call_id:
                    return m
            interval = min(interval * 2, 4.0)
        raise SipError("no response to BYE")

    def wait_response(self, method: str, timeout: float) -> Msg | None:
        """Waits for a response to ``method`` in this call (e.g. CANCEL's 200)."""
        for m in self.responses:
            if m.cseq_method == method:
                return m
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = self.ua.recv(deadline - time.monotonic())
            if m is not None and m.is_response and m.get("call-id") == self.call_id:
                self.responses.append(m)
                if m.cseq_method == method:
                    return m
        return None
