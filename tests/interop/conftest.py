"""Fixtures for coda's black-box interop tests.

* ``coda`` / ``make_coda``: start ``target/release/coda serve --config <tmp>`` on free
  127.0.0.1 ports with a temporary data dir, wait until SIP answers OPTIONS, stop it
  (SIGTERM, then SIGKILL) at teardown. Its stderr is kept in the test's tmp dir and
  shown in the report when the test fails.
* ``smtp``: an aiosmtpd sink on a free port collecting parsed messages.
* helpers: ``wait_until``, ``free_port``, ``free_port_range``, ``add_mailbox``,
  ``messages``, ``wav_attachments``.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import random
import shlex
import signal
import socket
import sqlite3
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable

import pytest

import sipkit

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "fixtures" / "audio"
# CODA_BIN may be a command line (e.g. "venv/bin/python tests/interop/mock_coda.py",
# the harness self-test); by default the release binary.
CODA_CMD = shlex.split(os.environ.get("CODA_BIN", str(REPO / "target" / "release" / "coda")))
CODA_BIN = Path(CODA_CMD[0])
MAILBOX = "77513"
MAILBOX_EMAIL = "alice@example.test"

# ------------------------------------------------------------------ waiting


def wait_until(pred: Callable[[], Any], timeout: float, what: str = "condition", interval: float = 0.05) -> Any:
    """Polls ``pred`` until it returns something truthy (returned) or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while True:
        try:
            v = pred()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - the predicate may race with startup
            last_exc = e
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}" + (f" (last error: {last_exc!r})" if last_exc else ""))
        time.sleep(interval)


# -------------------------------------------------------------------- ports

_reserved: set[int] = set()


def _can_bind(port: int, kinds=(socket.SOCK_DGRAM, socket.SOCK_STREAM)) -> bool:
    socks = []
    try:
        for k in kinds:
            s = socket.socket(socket.AF_INET, k)
            socks.append(s)
            if k == socket.SOCK_STREAM:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        for s in socks:
            s.close()


def free_port(udp: bool = True, tcp: bool = True) -> int:
    """A loopback port free for UDP and/or TCP (asked from the kernel with port 0)."""
    kinds = tuple(k for k, on in ((socket.SOCK_DGRAM, udp), (socket.SOCK_STREAM, tcp)) if on)
    for _ in range(200):
        s = socket.socket(socket.AF_INET, kinds[0])
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        if port not in _reserved and _can_bind(port, kinds):
            _reserved.add(port)
            return port
    raise RuntimeError("no free port")


def free_port_range(n: int = 200) -> tuple[int, int]:
    """``n`` consecutive free UDP ports below the kernel's ephemeral range (so
    sockets bound to port 0 during the test cannot collide with them)."""
    for _ in range(100):
        lo = random.randrange(12000, 32000 - n, 2)
        ports = range(lo, lo + n)
        if any(p in _reserved for p in ports):
            continue
        if all(_can_bind(p, (socket.SOCK_DGRAM,)) for p in ports):
            _reserved.update(ports)
            return lo, lo + n - 1
    raise RuntimeError("no free port range")


# --------------------------------------------------------------------- TOML


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a valid TOML basic string
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} as TOML")


def toml_dumps(cfg: dict[str, Any]) -> str:
    """Enough TOML for coda's config: [section], [section.sub] and [[array]] of tables."""
    out: list[str] = []

    def table(prefix: str, d: dict[str, Any]) -> None:
        scalars = {k: v for k, v in d.items() if not isinstance(v, dict)}
        out.append(f"[{prefix}]")
        out.extend(f"{k} = {_toml_value(v)}" for k, v in scalars.items())
        out.append("")
        for k, v in d.items():
            if isinstance(v, dict):
                table(f"{prefix}.{k}", v)

    for key, val in cfg.items():
        if isinstance(val, dict):
            table(key, val)
        elif isinstance(val, list) and val and all(isinstance(x, dict) for x in val):
            for item in val:
                out.append(f"[[{key}]]")
                out.extend(f"{k} = {_toml_value(v)}" for k, v in item.items())
                out.append("")
        else:
            out.insert(0, f"{key} = {_toml_value(val)}")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------- coda


class Coda:
    """One running ``coda serve``."""

    def __init__(self, workdir: Path, config: dict[str, Any], name: str = "coda"):
        self.name = name
        self.workdir = workdir
        self.data_dir = Path(config["storage"]["data_dir"])
        self.sip_port = int(config["sip"]["listen"].rsplit(":", 1)[1])
        self.admin_port = int(config["admin"]["listen"].rsplit(":", 1)[1])
        self.rtp_range = (config["rtp"]["port_min"], config["rtp"]["port_max"])
        self.config = config
        self.config_path = workdir / f"{name}.toml"
        self.config_path.write_text(toml_dumps(config))
        self.stderr_path = workdir / f"{name}.stderr"
        self.proc: subprocess.Popen | None = None
        self.exit_code: int | None = None

    @property
    def sip_addr(self) -> tuple[str, int]:
        return ("127.0.0.1", self.sip_port)

    def uri(self, user: str = MAILBOX) -> str:
        return f"sip:{user}@127.0.0.1:{self.sip_port}"

    def start(self, timeout: float = 30.0) -> "Coda":
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "info,coda=debug")
        env.setdefault("RUST_BACKTRACE", "1")
        with open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(
                CODA_CMD + ["serve", "--config", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                cwd=REPO if len(CODA_CMD) > 1 else self.workdir,
                env=env,
            )
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with sipkit.SipUdp(self.sip_addr) as ua:
            while time.monotonic() < deadline:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    raise AssertionError(f"{self.name} exited with {self.proc.returncode} during startup:\n{self.stderr_tail()}")
                if ua.options(timeout=0.5) is not None:
                    return
        raise AssertionError(f"{self.name} did not answer OPTIONS on {self.sip_addr} within {timeout}s:\n{self.stderr_tail()}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def options_ok(self, timeout: float = 2.0) -> bool:
        with sipkit.SipUdp(self.sip_addr) as ua:
            r = ua.options(timeout=timeout)
            return r is not None and r.status == 200

    def stop(self, grace: float = 10.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.exit_code = self.proc.returncode
        return self.exit_code

    def stderr_text(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stderr_tail(self, lines: int = 150) -> str:
        return "\n".join(self.stderr_text().splitlines()[-lines:])

    # --- admin HTTP -------------------------------------------------------

    def http_get(self, path: str, timeout: float = 2.0) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}{path}", timeout=timeout) as r:
            return r.read().decode()

    def metrics(self) -> dict[str, float]:
        """Prometheus text → {series: value} (series with labels keep them in the key)."""
        out: dict[str, float] = {}
        for line in self.http_get("/metrics").splitlines():
            if not line or line.startswith("#"):
                continue
            name, _, value = line.rpartition(" ")
            try:
                out[name.strip()] = float(value)
            except ValueError:
                continue
        return out

    def active_calls(self) -> float:
        return self.metrics().get("coda_active_calls", -1.0)

    def assert_idle(self, timeout: float = 15.0) -> None:
        """After a test: no call left and SIP still answering."""
        wait_until(lambda: self.active_calls() == 0, timeout, "coda_active_calls 0")
        assert self.alive(), f"{self.name} died:\n{self.stderr_tail()}"
        assert self.options_ok(), "coda stopped answering OPTIONS"

    # --- storage -----------------------------------------------------------

    def messages(self, mailbox: str | None = None) -> list[dict[str, Any]]:
        return messages(self.data_dir, mailbox)

    def outbox(self) -> list[Path]:
        d = self.data_dir / "outbox"
        return sorted(d.glob("*.eml")) if d.exists() else []


def messages(data_dir: Path, mailbox: str | None = None) -> list[dict[str, Any]]:
    """Rows of the ``messages`` table (empty if the db or table does not exist yet)."""
    db = Path(data_dir) / "coda.db"
    if not db.exists():
        return []
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    con.row_factory = sqlite3.Row
    try:
        q = "SELECT * FROM messages" + (" WHERE mailbox = ?" if mailbox else "") + " ORDER BY id"
        rows = con.execute(q, (mailbox,) if mailbox else ()).fetchall()
    except sqlite3.OperationalError as e:
        if "no such table" in str(e):
            return []
        raise
    finally:
        con.close()
    return [dict(r) for r in rows]


def audio_path(coda: Coda, row: dict[str, Any]) -> Path:
    """Absolute path of a message's WAV (``audio_path`` may be relative to the data dir)."""
    p = Path(row["audio_path"])
    return p if p.is_absolute() else coda.data_dir / p


def add_mailbox(data_dir: Path, ext: str, email_addr: str, name: str | None = None) -> None:
    cmd = CODA_CMD + ["mailbox", "add", ext, "--email", email_addr, "--data-dir", str(data_dir)]
    if name:
        cmd += ["--name", name]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"coda mailbox add failed ({r.returncode}): {r.stdout}\n{r.stderr}"


def default_config(workdir: Path, **sections: dict[str, Any]) -> dict[str, Any]:
    lo, hi = free_port_range(200)
    cfg: dict[str, Any] = {
        "sip": {"listen": f"127.0.0.1:{free_port()}"},
        "rtp": {"address": "127.0.0.1", "port_min": lo, "port_max": hi},
        "storage": {"data_dir": str(workdir / "data")},
        "admin": {"listen": f"127.0.0.1:{free_port(udp=False)}"},
        "limits": {"max_calls": 50},
        # silence_secs is high so that peers which wait out the greeting in silence
        # (LEAD_S in common.py) are never cut off, whatever the greeting length.
        "voicemail": {"max_message_secs": 120, "min_message_secs": 1, "silence_secs": 30, "max_messages": 100},
        "mail": {"from": "Voicemail <voicemail@localhost>", "transport": "file"},
        "mailbox": [{"extension": MAILBOX, "email": MAILBOX_EMAIL, "name": "Alice"}],
    }
    for k, v in sections.items():
        if isinstance(v, dict) and isinstance(cfg.get(k), dict):
            cfg[k] = {**cfg[k], **v}
        else:
            cfg[k] = v
    return cfg


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="session")
def coda_bin() -> Path:
    if not CODA_BIN.exists():
        pytest.fail(f"{CODA_BIN} does not exist: build it first (`cargo build --release`; `bash run.sh test` does)", pytrace=False)
    return CODA_BIN


@pytest.fixture
def artifacts(request):
    """Registers extra log files to show in the report when the test fails."""
    files: list[tuple[str, Path]] = []
    request.node._coda_artifacts = files

    def add(name: str, path: Path) -> None:
        files.append((name, Path(path)))

    return add


@pytest.fixture
def make_coda(coda_bin, tmp_path, request):
    """Factory: ``make_coda(smtp=sink, voicemail={...}, mailbox=[...])`` → started Coda."""
    started: list[Coda] = []
    request.node._coda_procs = started

    def make(smtp: "SmtpSink | None" = None, start: bool = True, **sections: dict[str, Any]) -> Coda:
        workdir = tmp_path / f"coda{len(started)}"
        workdir.mkdir()
        if smtp is not None:
            sections.setdefault("mail", {})
            sections["mail"] = {
                "from": "Voicemail <voicemail@localhost>",
                "transport": "smtp",
                "smtp": {"host": "127.0.0.1", "port": smtp.port, "security": "none"},
                **sections["mail"],
            }
        c = Coda(workdir, default_config(workdir, **sections), name=f"coda{len(started)}")
        started.append(c)
        if start:
            c.start()
        return c

    yield make
    for c in started:
        c.stop()


@pytest.fixture
def coda(make_coda) -> Coda:
    """coda with mailbox 77513 (Alice) and file mail transport."""
    return make_coda()


class SmtpSink:
    """aiosmtpd handler keeping every message, parsed."""

    def __init__(self, port: int):
        self.port = port
        self.messages: list[email.message.EmailMessage] = []
        self.envelopes: list[Any] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._lock:
            self.envelopes.append(envelope)
            self.messages.append(msg)
        return "250 OK"


@pytest.fixture
def smtp():
    from aiosmtpd.controller import Controller

    port = free_port(udp=False)
    sink = SmtpSink(port)
    ctl = Controller(sink, hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        yield sink
    finally:
        ctl.stop()


def wav_attachments(msg: email.message.EmailMessage) -> list[tuple[str, bytes]]:
    out = []
    for part in msg.walk():
        name = part.get_filename()
        ctype = part.get_content_type()
        if part.is_multipart():
            continue
        if (name and name.lower().endswith(".wav")) or ctype in ("audio/wav", "audio/x-wav", "audio/wave"):
            out.append((name or "", part.get_payload(decode=True)))
    return out


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and rep.when in ("setup", "call", "teardown"):
        for c in getattr(item, "_coda_procs", []):
            rep.sections.append((f"{c.name} stderr (last 150 lines; full: {c.stderr_path})", c.stderr_tail()))
        for name, path in getattr(item, "_coda_artifacts", []):
            try:
                text = "\n".join(path.read_text(errors="replace").splitlines()[-100:])
            except OSError as e:
                text = f"<{e}>"
            rep.sections.append((f"{name} (last 100 lines; {path})", text))
