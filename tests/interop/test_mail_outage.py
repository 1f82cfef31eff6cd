"""Notifications survive a mail-server outage and a restart (issue 4).

Twenty callers leave short messages while the SMTP server is down (each caller skips the
greeting with '#', speaks, and ends with '#', using `coda call`); coda is restarted while
the server is still down; then the server comes up. Every mail must arrive exactly once
(distinct Message-IDs, one per stored message) with its WAV attachment byte-identical to
the stored message. A 5xx refusal must not be retried forever and must produce the
administrators' warning.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import audiocmp as A
from common import speech
from conftest import CODA_CMD, MAILBOX, SmtpSink, audio_path, free_port, wait_until, wav_attachments

N_CALLS = 20


def caller_wav(tmp_path: Path) -> Path:
    """1 s of silence, 2 s of speech, silence: '#' at 0.3 s skips the greeting, '#' at 3.6 s ends."""
    ref = speech()[: 2 * A.RATE]
    out = tmp_path / "short.wav"
    A.write_wav(out, A.pad(ref, 1.0, 4.0))
    return out


def leave_messages(coda, wav: Path, n: int) -> list[dict]:
    procs = [
        subprocess.Popen(
            CODA_CMD + ["call", coda.uri(MAILBOX), "--play", str(wav), "--dtmf", "0.3:#,3.6:#",
                        "--duration", "12", "--from", f"0186527{7600 + i}"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
        )
        for i in range(n)
    ]
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=60)
        assert p.returncode == 0, stderr
        out.append(json.loads(stdout))
    return out


def start_sink(port: int):
    from aiosmtpd.controller import Controller

    sink = SmtpSink(port)
    ctl = Controller(sink, hostname="127.0.0.1", port=port)
    ctl.start()
    return sink, ctl


def test_outage_and_restart_lose_no_mail(make_coda, tmp_path):
    port = free_port(udp=False)  # nothing listens here yet: the relay is "down"
    coda = make_coda(
        mail={"transport": "smtp", "smtp": {"host": "127.0.0.1", "port": port, "security": "none",
                                            "timeout_secs": 5}},
        limits={"max_calls": 50},
    )
    results = leave_messages(coda, caller_wav(tmp_path), N_CALLS)
    assert all(r["status"] == 200 and r["hangup_by"] == "remote" for r in results), results
    rows = wait_until(lambda: len(coda.messages(MAILBOX)) == N_CALLS and coda.messages(MAILBOX), 30,
                      f"{N_CALLS} stored messages")
    wait_until(lambda: coda.metrics().get("coda_mail_failures_total", 0) >= 1, 30, "a failed send attempt")
    assert coda.metrics()["coda_outbox_pending"] == N_CALLS

    # Restart while the relay is still down: the queue is on disk, not in memory.
    coda.stop()
    coda.start()
    sink, ctl = start_sink(port)
    try:
        # The first retry comes 30 s after the first attempt (back-off), so allow two minutes.
        wait_until(lambda: len(sink.messages) >= N_CALLS, 150, f"{N_CALLS} mails at the relay", interval=0.5)
        time.sleep(2)  # anything beyond N would be a duplicate: give it a moment to show
        assert len(sink.messages) == N_CALLS
        ids = {m["Message-ID"] for m in sink.messages}
        assert len(ids) == N_CALLS, "a mail was sent twice"
        stored = {audio_path(coda, r).read_bytes() for r in rows}
        for m in sink.messages:
            atts = wav_attachments(m)
            assert len(atts) == 1
            assert atts[0][1] in stored, "attachment differs from the stored message"
        rec = A.load(audio_path(coda, rows[0]))
        cmp = A.compare(speech()[: 2 * A.RATE], rec, min_lag_s=0.0, min_overlap=0.9)
        assert cmp.corr >= A.CORR_MIN, cmp
        wait_until(lambda: coda.metrics()["coda_outbox_pending"] == 0, 30, "an empty outbox")
    finally:
        ctl.stop()


class Refusing(SmtpSink):
    """Refuses the owner's mail permanently; accepts the administrators' warning."""

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address.startswith("admin@"):
            envelope.rcpt_tos.append(address)
            return "250 OK"
        return "550 5.1.1 mailbox unavailable"


def test_permanent_refusal_warns_admin_and_is_not_retried(make_coda, tmp_path):
    from aiosmtpd.controller import Controller

    port = free_port(udp=False)
    sink = Refusing(port)
    ctl = Controller(sink, hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        coda = make_coda(
            mail={"transport": "smtp", "admin_email": "admin@example.test",
                  "smtp": {"host": "127.0.0.1", "port": port, "security": "none"}},
        )
        [r] = leave_messages(coda, caller_wav(tmp_path), 1)
        assert r["status"] == 200
        warn = wait_until(lambda: sink.messages, 30, "the administrators' warning")
        assert len(warn) == 1
        assert "could not be delivered" in warn[0]["Subject"]
        body = warn[0].get_body(preferencelist=("plain",)).get_content()
        assert "550" in body, body
        m = coda.metrics()
        assert m["coda_outbox_failed"] == 1 and m["coda_outbox_pending"] == 0, m
        # The message itself is still in the mailbox.
        assert len(coda.messages(MAILBOX)) == 1
        q = subprocess.run(CODA_CMD + ["mail", "queue", "--json", "--data-dir", str(coda.data_dir)],
                           capture_output=True, text=True, timeout=30)
        items = [json.loads(line) for line in q.stdout.splitlines()]
        assert [i["state"] for i in items if i["kind"] == "voicemail"] == ["failed"], items
    finally:
        ctl.stop()


def test_relay_that_accepts_and_stalls_is_timed_out_and_retried(make_coda, tmp_path):
    """A relay that accepts the TCP connection and then says nothing: the attempt times out
    (smtp.timeout_secs), counts as a temporary failure, and the mail stays queued."""
    import socket
    import threading

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    port = srv.getsockname()[1]
    held = []
    stop = threading.Event()

    def accept_and_hold():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
                held.append(conn)  # never greet
            except OSError:
                continue

    t = threading.Thread(target=accept_and_hold, daemon=True)
    t.start()
    try:
        coda = make_coda(mail={"transport": "smtp", "smtp": {"host": "127.0.0.1", "port": port,
                                                            "security": "none", "timeout_secs": 2}})
        leave_messages(coda, caller_wav(tmp_path), 1)
        wait_until(lambda: coda.metrics().get("coda_mail_failures_total", 0) >= 1, 30, "a timed-out attempt")
        assert held, "coda never connected"
        m = coda.metrics()
        assert m["coda_outbox_pending"] == 1 and m["coda_outbox_failed"] == 0, m
        assert coda.options_ok() and len(coda.messages(MAILBOX)) == 1
    finally:
        stop.set()
        t.join(2)
        for c in held:
            c.close()
        srv.close()
