"""External test peers on 127.0.0.1: baresip (driven over ctrl_tcp), SIPp, the
pjsua2 peer script, and a tiny fake UAS used to prove the harness without coda."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

import rtpkit
import sipkit
from conftest import free_port, free_port_range, wait_until

HERE = Path(__file__).resolve().parent
SIPP_DIR = HERE.parent / "sipp"
BARESIP_MODULES = Path("/usr/lib/baresip/modules")


def stop_process(proc: subprocess.Popen, grace: float = 5.0) -> int | None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode


# ------------------------------------------------------------------- baresip


class Baresip:
    """A headless baresip UA: ``aufile`` plays a WAV as the microphone, ``sndfile``
    dumps what it sends (``*-enc.wav``) and receives (``*-dec.wav``)."""

    def __init__(self, workdir: Path, source_wav: Path, user: str = "caller", auto_answer: bool = False):
        if shutil.which("baresip") is None:
            raise RuntimeError("baresip not installed (Debian package baresip-core)")
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.rec_dir = self.dir / "rec"
        self.rec_dir.mkdir(exist_ok=True)
        self.sip_port = free_port()
        self.ctrl_port = free_port(udp=False)
        lo, hi = free_port_range(40)
        self.user = user
        (self.dir / "config").write_text(
            "\n".join(
                [
                    "poll_method epoll",
                    f"sip_listen 127.0.0.1:{self.sip_port}",
                    "audio_player aubridge,nil",
                    f"audio_source aufile,{source_wav}",
                    "audio_alert aubridge,nil",
                    f"rtp_ports {lo}-{hi}",
                    f"module_path {BARESIP_MODULES}",
                    "module g711.so",
                    "module aufile.so",
                    "module aubridge.so",
                    "module sndfile.so",
                    "module ctrl_tcp.so",
                    "module_app account.so",
                    "module_app menu.so",
                    f"ctrl_tcp_listen 127.0.0.1:{self.ctrl_port}",
                    f"snd_path {self.rec_dir}",
                    "",
                ]
            )
        )
        params = ";regint=0" + (";answermode=auto" if auto_answer else "")
        (self.dir / "accounts").write_text(f"<sip:{user}@127.0.0.1>{params}\n")
        self.log_path = self.dir / "baresip.log"
        self.proc: subprocess.Popen | None = None
        self.sock: socket.socket | None = None
        self.events: list[dict] = []
        self._buf = b""

    @property
    def uri(self) -> str:
        return f"sip:{self.user}@127.0.0.1:{self.sip_port}"

    def start(self, quit_after: int = 120) -> "Baresip":
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                ["baresip", "-f", str(self.dir), "-n", "127.0.0.1", "-t", str(quit_after)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=self.dir,
            )

        def connect():
            if self.proc.poll() is not None:
                raise AssertionError(f"baresip exited with {self.proc.returncode}")
            try:
                return socket.create_connection(("127.0.0.1", self.ctrl_port), timeout=1)
            except OSError:
                return None

        self.sock = wait_until(connect, 15, "baresip ctrl_tcp")
        return self

    def command(self, name: str, params: str = "") -> None:
        assert self.sock is not None
        body = json.dumps({"command": name, "params": params, "token": str(len(self.events))}).encode()
        self.sock.sendall(b"%d:%s," % (len(body), body))

    def _read(self, timeout: float) -> None:
        assert self.sock is not None
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return
        if not data:
            raise EOFError("baresip closed ctrl_tcp")
        self._buf += data
        while True:
            n, sep, rest = self._buf.partition(b":")
            if not sep or not n.isdigit() or len(rest) < int(n) + 1:
                return
            size = int(n)
            self.events.append(json.loads(rest[:size]))
            self._buf = rest[size + 1 :]

    def wait_event(self, type_: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for ev in self.events[seen:]:
                if ev.get("type") == type_:
                    return ev
            seen = len(self.events)
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"baresip: no {type_} within {timeout}s; events: {[e.get('type') for e in self.events]}")
            self._read(min(left, 0.5))

    def dumps(self) -> tuple[Path | None, Path | None]:
        """(enc, dec) WAV dumps of the last call, if any."""
        enc = sorted(self.rec_dir.glob("*-enc.wav"))
        dec = sorted(self.rec_dir.glob("*-dec.wav"))
        return (enc[-1] if enc else None, dec[-1] if dec else None)

    def stop(self) -> None:
        if self.sock is not None:
            try:
                self.command("quit")
            except OSError:
                pass
        if self.proc is not None:
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                stop_process(self.proc)
        if self.sock is not None:
            self.sock.close()
            self.sock = None


# ---------------------------------------------------------------------- SIPp


def run_sipp(
    workdir: Path,
    scenario: str,
    target: tuple[str, int],
    service: str,
    timeout: float = 90,
    extra: list[str] | None = None,
) -> subprocess.CompletedProcess:
    """Runs one SIPp call of ``tests/sipp/<scenario>.xml`` from ``workdir`` (pcap paths
    in scenarios are relative to it). Returns the completed process; exit code 0 means
    the call succeeded."""
    if shutil.which("sipp") is None:
        raise RuntimeError("sipp not installed (Debian package sip-tester)")
    sip_port = free_port(tcp=False)
    media_port = free_port_range(4)[0]
    cmd = [
        "sipp", f"{target[0]}:{target[1]}",
        "-sf", str(SIPP_DIR / f"{scenario}.xml"),
        "-s", service,
        "-i", "127.0.0.1", "-p", str(sip_port),
        "-mi", "127.0.0.1", "-mp", str(media_port),
        "-m", "1", "-l", "1",
        "-nostdin",
        "-timeout", f"{int(timeout)}s", "-timeout_error",
        "-max_recv_loops", "1000",
        "-trace_msg", "-trace_err",
    ] + (extra or [])
    r = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout + 30, stdin=subprocess.DEVNULL)
    (workdir / f"sipp-{scenario}.out").write_text(f"$ {' '.join(cmd)}\nexit {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r


def sipp_logs(workdir: Path) -> str:
    out = []
    for p in sorted(workdir.glob("*_messages.log")) + sorted(workdir.glob("*_errors.log")):
        out.append(f"==== {p.name}\n{p.read_text(errors='replace')[-20000:]}")
    return "\n".join(out)


# ------------------------------------------------------------------- pjsua2


def run_pjsua2_peer(workdir: Path, args: list[str], timeout: float = 120) -> dict:
    """Runs tests/interop/pjsua2_peer.py in the venv's Python; returns its JSON summary."""
    log = workdir / "pjsua2.log"
    r = subprocess.run(
        [sys.executable, str(HERE / "pjsua2_peer.py"), "--log", str(log)] + args,
        cwd=workdir, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
    )
    (workdir / "pjsua2.out").write_text(f"exit {r.returncode}\n{r.stdout}\n{r.stderr}")
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    assert r.returncode == 0 and lines, f"pjsua2 peer failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return json.loads(lines[-1])


# --------------------------------------------------------- fake UAS (harness)


class FakeUas(threading.Thread):
    """Stands in for coda to prove peers and scenarios work: answers INVITE with
    ``status`` (200 with a PCMU+telephone-event answer, or an error), records RTP,
    and when ``bye_on_digit`` arrives as an RFC 4733 end event, sends BYE."""

    def __init__(self, status: int = 200, bye_on_digit: str | None = "#", duration: float = 60.0):
        super().__init__(daemon=True)
        self.status = status
        self.bye_on_digit = bye_on_digit
        self.duration = duration
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.rtp = rtpkit.RtpPeer()
        self.requests: list[sipkit.Msg] = []
        self.events: list[tuple[int, bool]] = []  # (event code, end)
        self._scanned = 0
        self.bye_sent = False
        self.bye_answered = False
        self.stop_flag = threading.Event()
        self.error: BaseException | None = None

    def _respond(self, req: sipkit.Msg, status: int, reason: str, addr, body: bytes = b"", to_tag: str = "fake") -> None:
        to = req.get("to") or ""
        if status > 100 and ";tag=" not in to:
            to += f";tag={to_tag}"
        lines = [f"SIP/2.0 {status} {reason}"]
        lines += [f"Via: {v}" for v in req.get_all("via")]
        lines += [f"From: {req.get('from')}", f"To: {to}", f"Call-ID: {req.get('call-id')}", f"CSeq: {req.get('cseq')}"]
        if status == 200 and req.method == "INVITE":
            lines.append(f"Contact: <sip:fake@127.0.0.1:{self.port}>")
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body)}")
        self.sock.sendto(("\r\n".join(lines) + "\r\n\r\n").encode() + body, addr)

    def run(self) -> None:
        try:
            self._run()
        except BaseException as e:  # noqa: BLE001 - reported by the test
            self.error = e

    def _run(self) -> None:
        invite = None
        peer = None
        end = time.monotonic() + self.duration
        self.sock.settimeout(0.01)
        while not self.stop_flag.is_set() and time.monotonic() < end:
            try:
                data, addr = self.sock.recvfrom(65535)
                m = sipkit.parse(data)
            except socket.timeout:
                m = None
            if m is not None and not m.is_response:
                self.requests.append(m)
                if m.method == "INVITE" and invite is None:
                    invite, peer = m, addr
                    self._respond(m, 100, "Trying", addr)
                    if self.status == 200:
                        sdp = sipkit.parse_sdp(m.body)
                        self.rtp.remote = (sdp.ip, sdp.port)
                        body = sipkit.make_sdp("127.0.0.1", self.rtp.addr[1], [(0, "PCMU/8000"), (101, "telephone-event/8000")])
                        self._respond(m, 200, "OK", addr, body)
                    else:
                        self._respond(m, self.status, "Rejected", addr)
                elif m.method == "BYE":
                    self._respond(m, 200, "OK", addr)
                    self.stop_flag.set()
            elif m is not None and m.is_response and m.cseq_method == "BYE":
                self.bye_answered = True
                self.stop_flag.set()
            self.rtp.drain()
            self._check_events(invite, peer)
        self.sock.close()

    def _check_events(self, invite, peer) -> None:
        for r in self.rtp.received[self._scanned :]:
            if r.rtp.pt == 101 and len(r.rtp.payload) >= 4:
                self.events.append((r.rtp.payload[0], bool(r.rtp.payload[1] & 0x80)))
        self._scanned = len(self.rtp.received)
        evs = self.events
        code = rtpkit.DTMF_EVENTS.get(self.bye_on_digit or "", -1)
        if self.bye_on_digit and not self.bye_sent and (code, True) in evs and invite is not None:
            self.bye_sent = True
            contact = sipkit.uri_of(invite.get("contact")) or sipkit.uri_of(invite.get("from"))
            lines = [
                f"BYE {contact} SIP/2.0",
                f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch={sipkit.new_branch()}",
                "Max-Forwards: 70",
                f"From: <sip:fake@127.0.0.1:{self.port}>;tag=fake",
                f"To: {invite.get('from')}",
                f"Call-ID: {invite.get('call-id')}",
                "CSeq: 1 BYE",
                "Content-Length: 0",
            ]
            self.sock.sendto(("\r\n".join(lines) + "\r\n\r\n").encode(), peer)

    def audio(self) -> np.ndarray:
        return self.rtp.audio_received()


def have(cmd: str) -> bool:
    return shutil.which(cmd) is not None


def env_flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0", "false")
