"""SMTP over STARTTLS (issue 4): certificates are verified by default; a relay whose
certificate coda cannot verify gets nothing, and the mail waits in the outbox; trusting the
relay's CA (`ca_file`) delivers it. The CA and server certificate are made per test with
openssl (test-only keys, never committed)."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

from conftest import MAILBOX, SmtpSink, free_port, wait_until
from test_mail_outage import caller_wav, leave_messages


def make_certs(d: Path) -> tuple[Path, Path, Path]:
    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d, timeout=60)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=coda test CA",
        "-keyout", "ca.key", "-out", "ca.pem")
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", "srv.key", "-out", "srv.csr")
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n")
    run("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-days", "2", "-extfile", "ext.cnf", "-out", "srv.pem")
    return d / "ca.pem", d / "srv.pem", d / "srv.key"


def start_tls_sink(port: int, cert: Path, key: Path):
    from aiosmtpd.controller import Controller

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    sink = SmtpSink(port)
    ctl = Controller(sink, hostname="127.0.0.1", port=port, tls_context=ctx, require_starttls=True)
    ctl.start()
    return sink, ctl


def test_starttls_untrusted_certificate_is_refused(make_coda, tmp_path):
    _ca, cert, key = make_certs(tmp_path)
    port = free_port(udp=False)
    sink, ctl = start_tls_sink(port, cert, key)
    try:
        coda = make_coda(mail={"transport": "smtp", "smtp": {
            "host": "127.0.0.1", "port": port, "security": "starttls", "timeout_secs": 5}})
        leave_messages(coda, caller_wav(tmp_path), 1)
        wait_until(lambda: coda.metrics().get("coda_mail_failures_total", 0) >= 1, 30, "a refused TLS handshake")
        assert sink.messages == []
        assert coda.metrics()["coda_outbox_pending"] == 1, "the mail must wait in the outbox"
        assert "certificate" in coda.stderr_text().lower() or "tls" in coda.stderr_text().lower()
    finally:
        ctl.stop()


def test_starttls_with_trusted_ca_delivers(make_coda, tmp_path):
    ca, cert, key = make_certs(tmp_path)
    port = free_port(udp=False)
    sink, ctl = start_tls_sink(port, cert, key)
    try:
        coda = make_coda(mail={"transport": "smtp", "smtp": {
            "host": "127.0.0.1", "port": port, "security": "starttls", "ca_file": str(ca),
            "timeout_secs": 5}})
        leave_messages(coda, caller_wav(tmp_path), 1)
        msgs = wait_until(lambda: sink.messages, 30, "the mail over STARTTLS")
        assert len(msgs) == 1 and len(coda.messages(MAILBOX)) == 1
        assert coda.metrics()["coda_outbox_pending"] == 0
    finally:
        ctl.stop()
