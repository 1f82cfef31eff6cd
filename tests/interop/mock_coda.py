#!/usr/bin/env python3
"""A deliberately small stand-in for ``coda serve``, used ONLY to self-test this
harness (fixtures, peers, timing arithmetic) before/independently of the real
binary:

    CODA_BIN="venv/bin/python tests/interop/mock_coda.py" venv/bin/pytest tests/interop

It follows the contract in the test fixtures (config TOML, SQLite ``messages``
table, spool WAVs, mail via SMTP or .eml files, /metrics) with a synthetic
3.5 s greeting (tone + beep). It is not a SIP implementation to learn from.
"""

from __future__ import annotations

import email.message
import http.server
import os
import signal
import smtplib
import socket
import sqlite3
import sys
import threading
import time
import tomllib
import uuid
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import audiocmp as A  # noqa: E402
import rtpkit  # noqa: E402
import sipkit  # noqa: E402

STOP = threading.Event()
# Deliberate faults to prove the tests catch them, e.g. MOCK_BUGS=ignore_hash,any_source
BUGS = set(filter(None, os.environ.get("MOCK_BUGS", "").split(",")))


class State:
    def __init__(self, cfg: dict):
        self.cfg = cfg
        self.data = Path(cfg["storage"]["data_dir"])
        (self.data / "spool").mkdir(parents=True, exist_ok=True)
        self.db = self.data / "coda.db"
        with sqlite3.connect(self.db) as con:
            con.execute(
                "CREATE TABLE IF NOT EXISTS messages(id INTEGER PRIMARY KEY, mailbox TEXT, caller TEXT, "
                "caller_display TEXT, received_utc TEXT, duration_ms INTEGER, reason TEXT, audio_path TEXT, folder TEXT)"
            )
        self.mailboxes = {m["extension"]: m for m in cfg.get("mailbox", [])}
        self.calls: dict[str, "CallThread"] = {}
        self.saved = 0
        self.lock = threading.Lock()
        lo, hi = cfg["rtp"]["port_min"], cfg["rtp"]["port_max"]
        self.rtp_ports = list(range(lo, hi + 1, 2))


def respond(sock, addr, req: sipkit.Msg, status: int, reason: str, body: bytes = b"", to_tag: str = "mock", contact: str = "") -> bytes:
    to = req.get("to") or ""
    if status > 100 and ";tag=" not in to:
        to += f";tag={to_tag}"
    lines = [f"SIP/2.0 {status} {reason}"] + [f"Via: {v}" for v in req.get_all("via")]
    lines += [f"From: {req.get('from')}", f"To: {to}", f"Call-ID: {req.get('call-id')}", f"CSeq: {req.get('cseq')}"]
    if contact:
        lines.append(f"Contact: <{contact}>")
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body)}")
    data = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
    sock.sendto(data, addr)
    return data


class CallThread(threading.Thread):
    def __init__(self, st: State, sip, addr, invite: sipkit.Msg, mailbox: str, offer: sipkit.Sdp, pt: int):
        super().__init__(daemon=True)
        self.st, self.sip, self.addr, self.invite, self.mailbox, self.pt = st, sip, addr, invite, mailbox, pt
        self.remote = (offer.ip, offer.port)
        self.rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for p in st.rtp_ports:
            try:
                self.rtp.bind((st.cfg["rtp"]["address"], p))
                break
            except OSError:
                continue
        self.port = self.rtp.getsockname()[1]
        self.bye_received = threading.Event()
        self.last_response = b""

    def send_audio(self, x: np.ndarray, b: rtpkit.StreamBuilder) -> None:
        start = time.monotonic()
        b.take()
        b.audio(x)
        for t, pkt in b.take():
            while time.monotonic() < start + t:
                if self.bye_received.is_set():
                    return
                time.sleep(0.002)
            self.rtp.sendto(pkt, self.remote)

    def run(self) -> None:
        try:
            self._run()
        finally:
            self.rtp.close()
            with self.st.lock:
                self.st.calls.pop(self.invite.get("call-id"), None)

    def _run(self) -> None:
        t = np.arange(int(3.0 * 8000)) / 8000.0
        greeting = 0.3 * np.sin(2 * np.pi * 440 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
        beep = 0.3 * np.sin(2 * np.pi * 1000 * np.arange(4000) / 8000.0)
        b = rtpkit.StreamBuilder(self.pt)
        self.send_audio(np.concatenate([greeting, np.zeros(800), beep]), b)
        if self.bye_received.is_set():
            return
        vm = self.st.cfg.get("voicemail", {})
        silence_limit = vm.get("silence_secs", 10)
        max_secs = vm.get("max_message_secs", 180)
        chunks: list[np.ndarray] = []
        reason = "hangup"
        silent_since = time.monotonic()
        start = time.monotonic()
        self.rtp.setblocking(False)
        while True:  # audio sent during the greeting is not part of the message
            try:
                self.rtp.recvfrom(2048)
            except OSError:
                break
        self.rtp.settimeout(0.02)
        while not self.bye_received.is_set():
            try:
                data, src = self.rtp.recvfrom(2048)
            except socket.timeout:
                data, src = None, None
            now = time.monotonic()
            if data is not None and (src == self.remote or "any_source" in BUGS):
                r = rtpkit.parse_rtp(data)
                if r is not None and r.pt == self.pt:
                    x = rtpkit.decode(r.payload, r.pt)
                    chunks.append(x)
                    if A.rms(x) > 0.003:
                        silent_since = now
                elif r is not None and r.pt not in (0, 8) and len(r.payload) >= 4 and r.payload[0] == 11 \
                        and "ignore_hash" not in BUGS:
                    reason = "hash"
                    break
            if now - silent_since > silence_limit:
                reason = "silence"
                break
            if now - start > max_secs:
                reason = "max"
                break
        audio = np.concatenate(chunks) if chunks else np.zeros(0)
        # keep at most 0.5 s after the last frame above -50 dBFS (as coda does)
        r = A.frame_rms(audio, 160)
        voiced = np.nonzero(r > 10 ** (-50 / 20))[0]
        keep = 0 if len(voiced) == 0 else (voiced[-1] + 1) * 160 + 4000
        audio = audio[: min(len(audio), keep)]
        if len(audio) >= vm.get("min_message_secs", 1) * 8000:
            self.save(audio, reason)
        if reason != "hangup":
            self.send_audio(0.2 * np.sin(2 * np.pi * 600 * np.arange(6000) / 8000.0), b)
            self.send_bye()

    def send_bye(self) -> None:
        inv = self.invite
        target = sipkit.uri_of(inv.get("contact")) or sipkit.uri_of(inv.get("from"))
        lines = [
            f"BYE {target} SIP/2.0",
            f"Via: SIP/2.0/UDP {self.sip.getsockname()[0]}:{self.sip.getsockname()[1]};branch={sipkit.new_branch()}",
            "Max-Forwards: 70",
            f"From: {inv.get('to')};tag=mock",
            f"To: {inv.get('from')}",
            f"Call-ID: {inv.get('call-id')}",
            "CSeq: 1 BYE",
            "Content-Length: 0",
        ]
        self.sip.sendto(("\r\n".join(lines) + "\r\n\r\n").encode(), self.addr)

    def save(self, audio: np.ndarray, reason: str) -> None:
        st = self.st
        d = st.data / "spool" / self.mailbox
        d.mkdir(parents=True, exist_ok=True)
        path = d / f"{uuid.uuid4()}.wav"
        A.write_wav(path, audio)
        now = datetime.now(timezone.utc)
        caller = sipkit.uri_of(self.invite.get("from"))
        dur = int(len(audio) / 8)
        with sqlite3.connect(st.db) as con:
            con.execute(
                "INSERT INTO messages(mailbox, caller, caller_display, received_utc, duration_ms, reason, audio_path, folder) "
                "VALUES (?,?,?,?,?,?,?,?)",
                (self.mailbox, caller, "", now.isoformat(), dur, reason, str(path), "INBOX"),
            )
        with st.lock:
            st.saved += 1
        mb = st.mailboxes[self.mailbox]
        m = email.message.EmailMessage()
        m["From"] = st.cfg.get("mail", {}).get("from", "Voicemail <voicemail@localhost>")
        m["To"] = mb["email"]
        m["Subject"] = f"Voicemail from {caller} ({dur // 1000}s)"
        m.set_content("New voicemail.")
        m.add_attachment(path.read_bytes(), maintype="audio", subtype="wav", filename=f"msg-{now:%Y%m%d-%H%M%S}.wav")
        mail = st.cfg.get("mail", {})
        if mail.get("transport") == "smtp":
            s = mail["smtp"]
            with smtplib.SMTP(s["host"], s["port"]) as c:
                c.send_message(m)
        else:
            out = st.data / "outbox"
            out.mkdir(exist_ok=True)
            (out / f"{uuid.uuid4()}.eml").write_bytes(bytes(m))


def sip_loop(st: State, sock: socket.socket) -> None:
    sock.settimeout(0.2)
    answered: dict[str, bytes] = {}
    while not STOP.is_set():
        try:
            data, addr = sock.recvfrom(70000)
        except socket.timeout:
            continue
        except OSError:
            continue
        m = sipkit.parse(data)
        if m is None or m.is_response or not m.get("call-id") or not m.get("via") or not m.get("cseq"):
            continue
        cid = m.get("call-id")
        if m.method == "OPTIONS":
            respond(sock, addr, m, 200, "OK")
        elif m.method == "INVITE":
            if cid in answered:
                sock.sendto(answered[cid], addr)
                continue
            user = sipkit.uri_of(m.start.split(" ")[1]).split("@")[0].replace("sip:", "")
            if user not in st.mailboxes:
                answered[cid] = respond(sock, addr, m, 404, "Not Found")
                continue
            try:
                offer = sipkit.parse_sdp(m.body)
                pt = next(p for p in offer.payloads if p in (0, 8))
            except (StopIteration, ValueError):
                answered[cid] = respond(sock, addr, m, 488, "Not Acceptable Here")
                continue
            call = CallThread(st, sock, addr, m, user, offer, pt)
            body = sipkit.make_sdp("127.0.0.1", call.port, [(pt, "PCMU/8000" if pt == 0 else "PCMA/8000"), (101, "telephone-event/8000")])
            lh, lp = sock.getsockname()
            answered[cid] = respond(sock, addr, m, 200, "OK", body, contact=f"sip:{user}@{lh}:{lp}")
            with st.lock:
                st.calls[cid] = call
            call.start()
        elif m.method == "CANCEL":
            respond(sock, addr, m, 200 if cid in answered else 481, "OK" if cid in answered else "No Transaction")
        elif m.method == "BYE":
            with st.lock:
                call = st.calls.get(cid)
            respond(sock, addr, m, 200 if call else 481, "OK" if call else "No Dialog")
            if call:
                call.bye_received.set()
        elif m.method != "ACK":
            respond(sock, addr, m, 405, "Method Not Allowed")


def tcp_loop(srv: socket.socket) -> None:
    srv.settimeout(0.2)
    while not STOP.is_set():
        try:
            c, _ = srv.accept()
        except (socket.timeout, OSError):
            continue
        c.settimeout(2)
        buf = b""
        try:
            while b"\r\n\r\n" not in buf and len(buf) < 65536:
                d = c.recv(65536)
                if not d:
                    break
                buf += d
            if len(buf) >= 65536:
                c.sendall(b"SIP/2.0 513 Message Too Large\r\nContent-Length: 0\r\n\r\n")
        except OSError:
            pass
        c.close()


def main() -> int:
    args = sys.argv[1:]
    if not args or args[0] != "serve" or "--config" not in args:
        print("mock_coda: only `serve --config FILE` is supported", file=sys.stderr)
        return 2
    cfg = tomllib.loads(Path(args[args.index("--config") + 1]).read_text())
    st = State(cfg)
    host, port = cfg["sip"]["listen"].rsplit(":", 1)
    sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sip.bind((host, int(port)))
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind((host, int(port)))
    tcp.listen(16)

    class Admin(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            if self.path == "/health":
                body = b"ok"
            elif self.path == "/metrics":
                with st.lock:
                    body = f"coda_active_calls {len(st.calls)}\ncoda_messages_saved_total {st.saved}\n".encode()
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    ah, ap = cfg["admin"]["listen"].rsplit(":", 1)
    admin = http.server.ThreadingHTTPServer((ah, int(ap)), Admin)
    threading.Thread(target=admin.serve_forever, daemon=True).start()
    threading.Thread(target=tcp_loop, args=(tcp,), daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: STOP.set())
    print(f"mock coda listening on {host}:{port}", file=sys.stderr, flush=True)
    sip_loop(st, sip)
    admin.shutdown()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
