//! Deposit load scenario: N concurrent callers each leave a voicemail of `--secs` seconds.
//!
//! A standalone load generator (`harness = false`, no criterion). It writes a temporary
//! configuration, starts the coda **release** binary as a child process (`coda serve`), waits
//! until it answers OPTIONS, then runs N SIP/RTP user agents against it on 127.0.0.1 — ramped
//! up at `--rate` calls per second — each of which:
//!
//! 1. sends INVITE with an SDP offer (PCMU/PCMA), ACKs the 200;
//! 2. sends PCMU every 20 ms (a 300 Hz + 1200 Hz mix, amplitude-modulated at 3 Hz, always
//!    well above coda's silence threshold) while listening to the greeting;
//! 3. notices the start of recording (coda's audio turns to digital silence for 1 s after the
//!    greeting and beep), keeps talking for `--secs` more seconds, then sends BYE.
//!
//! Every RTP packet coda sends is time-stamped on arrival twice: by the kernel
//! (`SO_TIMESTAMPNS`, which on loopback is essentially coda's `sendto` time and so measures
//! coda's pacing, not the load generator's scheduling) and by the application after the task
//! woke up. Intervals between consecutive packets (sequence +1, timestamp +160) give the
//! pacing error |interval − 20 ms|.
//!
//! It prints one Markdown table row (and details) on stdout; progress goes to stderr.
//! Linux only (it reads `/proc`).
//!
//! ```text
//! cargo build --release
//! cargo bench --bench deposit_load -- --calls 500 --secs 30 --coda target/release/coda
//! ```
//!
//! Options: `--calls N` (100), `--secs S` (30), `--coda PATH` (target/release/coda),
//! `--rate CALLS_PER_S` (50; each call starts at a random phase within its 1/rate slot),
//! `--aligned` (start calls exactly 1/rate apart: at 50 calls/s all calls then share one
//! 20 ms phase, a worst case), `--greeting-max S` (40), `--wait-idle S` (first wait up to S
//! seconds for the machine to be idle), `--coda-nice N` (nice value for coda), `--timeline`
//! (per-second table), `--header` (print the table header first), `--keep` (keep the
//! temporary directory with coda's data and log).
//!
//! Every call is bounded (INVITE and BYE 32 s each, greeting `--greeting-max`, message
//! `--secs`) and the whole run has a hard deadline; only 127.0.0.1 is used.

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("deposit_load needs Linux (/proc, SO_TIMESTAMPNS)");
}

#[cfg(target_os = "linux")]
fn main() {
    linux::main();
}

#[cfg(target_os = "linux")]
mod sys {
    //! The few libc calls std does not expose: kernel receive timestamps, SIGTERM, CLK_TCK.

    use std::ffi::c_void;
    use std::io;
    use std::mem::{size_of, size_of_val};
    use std::os::fd::RawFd;
    use std::ptr::null_mut;

    const SOL_SOCKET: i32 = 1;
    /// `SO_TIMESTAMPNS` (= `SCM_TIMESTAMPNS`), the same number on x86_64 and aarch64.
    const SO_TIMESTAMPNS: i32 = 35;
    const MSG_DONTWAIT: i32 = 0x40;
    const SIGTERM: i32 = 15;
    const SC_CLK_TCK: i32 = 2;

    #[repr(C)]
    struct IoVec {
        base: *mut c_void,
        len: usize,
    }

    #[repr(C)]
    struct MsgHdr {
        name: *mut c_void,
        namelen: u32,
        iov: *mut IoVec,
        iovlen: usize,
        control: *mut c_void,
        controllen: usize,
        flags: i32,
    }

    #[repr(C)]
    struct CmsgHdr {
        len: usize,
        level: i32,
        kind: i32,
    }

    #[repr(C)]
    struct TimeSpec {
        sec: i64,
        nsec: i64,
    }

    extern "C" {
        fn setsockopt(fd: i32, level: i32, name: i32, value: *const c_void, len: u32) -> i32;
        fn recvmsg(fd: i32, msg: *mut MsgHdr, flags: i32) -> isize;
        fn kill(pid: i32, sig: i32) -> i32;
        fn sysconf(name: i32) -> i64;
        fn setpriority(which: i32, who: u32, prio: i32) -> i32;
    }

    /// Sets the nice value of the calling thread (PRIO_PROCESS, 0). Lowering it needs
    /// CAP_SYS_NICE. Only async-signal-safe work: usable in `pre_exec`.
    pub fn set_nice(nice: i32) -> io::Result<()> {
        // SAFETY: setpriority(2) has no memory-safety preconditions.
        if unsafe { setpriority(0, 0, nice) } == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// Asks the kernel to time-stamp every datagram received on `fd`.
    pub fn enable_rx_timestamps(fd: RawFd) -> io::Result<()> {
        let on: i32 = 1;
        // SAFETY: `on` lives across the call and the length given is its size.
        let r = unsafe {
            setsockopt(
                fd,
                SOL_SOCKET,
                SO_TIMESTAMPNS,
                (&on as *const i32).cast(),
                size_of::<i32>() as u32,
            )
        };
        if r == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// Receives one datagram without blocking. Returns its length and, when the kernel
    /// attached one, its receive time in nanoseconds since the Unix epoch.
    pub fn recv_with_timestamp(fd: RawFd, buf: &mut [u8]) -> io::Result<(usize, Option<i128>)> {
        let mut iov = IoVec {
            base: buf.as_mut_ptr().cast(),
            len: buf.len(),
        };
        // 64 bytes, 8-aligned: room for one cmsghdr (16) + timespec (16) and then some.
        let mut control = [0u64; 8];
        let mut msg = MsgHdr {
            name: null_mut(),
            namelen: 0,
            iov: &mut iov,
            iovlen: 1,
            control: control.as_mut_ptr().cast(),
            controllen: size_of_val(&control),
            flags: 0,
        };
        // SAFETY: every pointer in `msg` points at live, writable memory of the stated length
        // (`buf` through `iov`, `control`), all of which outlive the call.
        let n = unsafe { recvmsg(fd, &mut msg, MSG_DONTWAIT) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let total = msg.controllen.min(size_of_val(&control));
        let base = control.as_ptr().cast::<u8>();
        let hdr = size_of::<CmsgHdr>();
        let mut off = 0usize;
        let mut stamp = None;
        while off + hdr <= total {
            // SAFETY: off + hdr <= total <= size of `control`; read_unaligned has no alignment
            // requirement.
            let h = unsafe { base.add(off).cast::<CmsgHdr>().read_unaligned() };
            if h.len < hdr {
                break;
            }
            if h.level == SOL_SOCKET
                && h.kind == SO_TIMESTAMPNS
                && off + hdr + size_of::<TimeSpec>() <= total
            {
                // SAFETY: the timespec lies within `control` (checked just above).
                let t = unsafe { base.add(off + hdr).cast::<TimeSpec>().read_unaligned() };
                stamp = Some(i128::from(t.sec) * 1_000_000_000 + i128::from(t.nsec));
            }
            off += (h.len + 7) & !7;
        }
        Ok((usize::try_from(n).unwrap_or(0), stamp))
    }

    /// Sends SIGTERM to `pid`.
    pub fn terminate(pid: u32) -> bool {
        let Ok(pid) = i32::try_from(pid) else {
            return false;
        };
        // SAFETY: kill(2) has no memory-safety preconditions; `pid` is our own child.
        unsafe { kill(pid, SIGTERM) == 0 }
    }

    /// Clock ticks per second of `/proc/<pid>/stat` times.
    pub fn clock_ticks() -> u64 {
        // SAFETY: sysconf(3) has no memory-safety preconditions.
        let v = unsafe { sysconf(SC_CLK_TCK) };
        u64::try_from(v).ok().filter(|v| *v > 0).unwrap_or(100)
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::collections::{BTreeMap, HashMap};
    use std::io::{self, Write};
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    use std::os::fd::AsRawFd;
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, Stdio};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

    use coda::rtp::{is_rtcp, Pacer, RtpPacket, RtpSender, SenderConfig, SeqNo, Ssrc};
    use coda::sdp::{self, Codec, LocalMedia, SessionDescription};
    use coda::sip::{self, Host, Message, Method, Request, Response, Uri, Via};
    use codecs::Law;
    use tokio::io::Interest;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpStream, UdpSocket};
    use tokio::task::JoinSet;

    use super::sys;

    const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
    /// RFC 3261 T1.
    const T1: Duration = Duration::from_millis(500);
    /// Nominal packet interval.
    const PTIME_NS: i128 = 20_000_000;
    /// Digital silence after the greeting that marks the start of recording.
    const REC_SILENCE: Duration = Duration::from_secs(1);
    /// Decoded peak below which a frame of coda's audio counts as silent.
    const SILENT_PEAK: i16 = 64;
    /// coda's RTP port range: below the kernel's ephemeral range (32768–60999 by default) so
    /// the load generator's own sockets never take coda's ports.
    const RTP_PORTS: (u16, u16) = (20000, 29999);
    const MAILBOX: &str = "77513";

    /// Command-line arguments.
    #[derive(Debug, Clone)]
    struct Args {
        calls: usize,
        secs: u64,
        coda: PathBuf,
        rate: f64,
        greeting_max: u64,
        header: bool,
        keep: bool,
        wait_idle: u64,
        timeline: bool,
        coda_nice: Option<i32>,
        aligned: bool,
    }

    const USAGE: &str =
        "usage: deposit_load [--calls N] [--secs S] [--coda PATH] [--rate CALLS_PER_S] \
                         [--greeting-max S] [--wait-idle S] [--header] [--keep] [--timeline] [--coda-nice N] [--aligned]";

    fn parse_args() -> Result<Args, String> {
        let mut a = Args {
            calls: 100,
            secs: 30,
            coda: PathBuf::from("target/release/coda"),
            rate: 50.0,
            greeting_max: 40,
            header: false,
            keep: false,
            wait_idle: 0,
            timeline: false,
            coda_nice: None,
            aligned: false,
        };
        let mut it = std::env::args().skip(1);
        while let Some(arg) = it.next() {
            let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
            match arg.as_str() {
                "--calls" => a.calls = number(&value("--calls")?, "--calls", 1.0, 5000.0)? as usize,
                "--secs" => a.secs = number(&value("--secs")?, "--secs", 1.0, 600.0)? as u64,
                "--rate" => a.rate = number(&value("--rate")?, "--rate", 0.1, 1000.0)?,
                "--greeting-max" => {
                    a.greeting_max =
                        number(&value("--greeting-max")?, "--greeting-max", 1.0, 120.0)? as u64
                }
                "--coda" => a.coda = PathBuf::from(value("--coda")?),
                "--wait-idle" => {
                    a.wait_idle = number(&value("--wait-idle")?, "--wait-idle", 0.0, 3600.0)? as u64
                }
                "--header" => a.header = true,
                "--keep" => a.keep = true,
                "--timeline" => a.timeline = true,
                "--aligned" => a.aligned = true,
                "--coda-nice" => {
                    a.coda_nice =
                        Some(number(&value("--coda-nice")?, "--coda-nice", -20.0, 19.0)? as i32)
                }
                // `cargo bench` passes `--bench` to harness-less benches.
                "--bench" => {}
                "-h" | "--help" => {
                    println!("{USAGE}");
                    std::process::exit(0);
                }
                other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
            }
        }
        Ok(a)
    }

    fn number(s: &str, name: &str, min: f64, max: f64) -> Result<f64, String> {
        s.parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= min && *v <= max)
            .ok_or_else(|| format!("{name}: expected a number in {min}..={max}, got {s:?}"))
    }

    pub fn main() {
        let args = match parse_args() {
            Ok(a) => a,
            Err(e) => {
                eprintln!("deposit_load: {e}");
                std::process::exit(2);
            }
        };
        let rt = match tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                eprintln!("deposit_load: runtime: {e}");
                std::process::exit(1);
            }
        };
        match rt.block_on(run(&args)) {
            Ok(report) => {
                report.print(&args);
                // Exit status tells scripts whether the run itself went through, not whether
                // the target was met.
            }
            Err(e) => {
                eprintln!("deposit_load: {e}");
                std::process::exit(1);
            }
        }
    }

    // ---------------------------------------------------------------- server process

    /// The coda child; killed on drop if still running.
    struct Server {
        child: Child,
        pid: u32,
    }

    impl Server {
        /// SIGTERM, then up to `grace` for a clean exit, then SIGKILL.
        fn stop(&mut self, grace: Duration) -> String {
            if let Ok(Some(st)) = self.child.try_wait() {
                return format!("had already exited ({st})");
            }
            sys::terminate(self.pid);
            let until = Instant::now() + grace;
            while Instant::now() < until {
                if let Ok(Some(st)) = self.child.try_wait() {
                    return format!("exited on SIGTERM ({st})");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
            format!(
                "did not exit within {}s of SIGTERM; killed",
                grace.as_secs()
            )
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            if matches!(self.child.try_wait(), Ok(None)) {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }

    fn free_port(udp_too: bool) -> Result<u16, String> {
        for _ in 0..50 {
            let t = std::net::TcpListener::bind((LOCALHOST, 0)).map_err(|e| e.to_string())?;
            let port = t.local_addr().map_err(|e| e.to_string())?.port();
            if !udp_too || std::net::UdpSocket::bind((LOCALHOST, port)).is_ok() {
                return Ok(port);
            }
        }
        Err("no free port found".into())
    }

    fn write_config(
        dir: &Path,
        sip_port: u16,
        admin_port: u16,
        a: &Args,
    ) -> Result<PathBuf, String> {
        let data = dir.join("data");
        let data_str = data.to_str().ok_or("temporary directory is not UTF-8")?;
        let text = format!(
            "[sip]\nlisten = \"127.0.0.1:{sip_port}\"\n\n\
             [rtp]\naddress = \"127.0.0.1\"\nport_min = {}\nport_max = {}\n\n\
             [storage]\ndata_dir = {data_str:?}\n\n\
             [admin]\nenabled = true\nlisten = \"127.0.0.1:{admin_port}\"\n\n\
             [limits]\nmax_calls = {}\n\n\
             [voicemail]\nmax_message_secs = {}\nsilence_secs = 60\nmax_messages = 100000\n\
             media_timeout_secs = 30\n\n\
             [mail]\ntransport = \"file\"\n\n\
             [[mailbox]]\nextension = \"{MAILBOX}\"\nemail = \"load@example.invalid\"\nname = \"Load test\"\n",
            RTP_PORTS.0,
            RTP_PORTS.1,
            (a.calls + 100).max(1000),
            a.secs + 120,
        );
        let path = dir.join("coda.toml");
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(path)
    }

    /// Sends OPTIONS every 250 ms until a 200 comes back (or `limit` passes).
    async fn wait_ready(
        server: SocketAddr,
        child: &mut Child,
        limit: Duration,
    ) -> Result<Duration, String> {
        let start = Instant::now();
        let sock = UdpSocket::bind((LOCALHOST, 0))
            .await
            .map_err(|e| e.to_string())?;
        let local = sock.local_addr().map_err(|e| e.to_string())?;
        let call_id = format!("ready-{:016x}", rand::random::<u64>());
        let mut buf = vec![0u8; sip::MAX_MESSAGE_SIZE];
        let mut cseq = 0;
        while start.elapsed() < limit {
            if let Ok(Some(st)) = child.try_wait() {
                return Err(format!("coda exited during start-up ({st}); see its log"));
            }
            cseq += 1;
            let target = Uri::parse(&format!("sip:{server}")).map_err(|e| e.to_string())?;
            let mut req = request(
                Method::Options,
                target,
                local,
                &branch(),
                &format!("<sip:load@{local}>;tag=ready"),
                &format!("<sip:{server}>"),
                &call_id,
                cseq,
            );
            req.headers.push("Accept", "application/sdp");
            let _ = sock.send_to(&req.to_bytes(), server).await;
            if let Ok(Ok((n, _))) =
                tokio::time::timeout(Duration::from_millis(250), sock.recv_from(&mut buf)).await
            {
                if let Ok(Message::Response(r)) = sip::parse(buf.get(..n).unwrap_or_default()) {
                    if r.status == 200 {
                        return Ok(start.elapsed());
                    }
                }
            }
        }
        Err(format!(
            "coda did not answer OPTIONS within {}s",
            limit.as_secs()
        ))
    }

    // ---------------------------------------------------------------- /proc and /metrics

    /// Nanoseconds the threads of `pid` spent runnable but waiting for a CPU
    /// (`/proc/<pid>/task/*/schedstat`, second field), summed over live threads.
    fn proc_runqueue_wait_ns(pid: &str) -> Option<u64> {
        let mut total = 0u64;
        for t in std::fs::read_dir(format!("/proc/{pid}/task"))
            .ok()?
            .flatten()
        {
            let Ok(st) = std::fs::read_to_string(t.path().join("schedstat")) else {
                continue;
            };
            total += st
                .split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
        Some(total)
    }

    fn proc_cpu_ticks(pid: &str) -> Option<u64> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let (_, rest) = stat.rsplit_once(')')?;
        let mut f = rest.split_whitespace();
        // After the command: state(3) ... utime(14) stime(15) → indexes 11 and 12.
        let utime: u64 = f.nth(11)?.parse().ok()?;
        let stime: u64 = f.next()?.parse().ok()?;
        Some(utime + stime)
    }

    fn proc_status_kib(pid: &str, key: &str) -> Option<u64> {
        let st = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        st.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// GET /metrics → name → value (bounded in time and size).
    async fn scrape(admin: SocketAddr) -> Option<HashMap<String, f64>> {
        let fut = async {
            let mut s = TcpStream::connect(admin).await.ok()?;
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                .await
                .ok()?;
            let mut body = Vec::new();
            s.take(1 << 20).read_to_end(&mut body).await.ok()?;
            let text = String::from_utf8_lossy(&body).into_owned();
            let (_, payload) = text.split_once("\r\n\r\n")?;
            let mut out = HashMap::new();
            for line in payload.lines().filter(|l| !l.starts_with('#')) {
                if let Some((k, v)) = line.split_once(' ') {
                    if let Ok(v) = v.trim().parse::<f64>() {
                        out.insert(k.to_owned(), v);
                    }
                }
            }
            Some(out)
        };
        tokio::time::timeout(Duration::from_secs(3), fut)
            .await
            .ok()
            .flatten()
    }

    fn metric(m: &Option<HashMap<String, f64>>, name: &str) -> Option<u64> {
        m.as_ref().and_then(|m| m.get(name)).map(|v| *v as u64)
    }

    /// One per-second sample of both processes.
    #[derive(Debug, Clone, Copy)]
    struct Sample {
        at: Instant,
        coda_ticks: u64,
        own_ticks: u64,
        /// Busy ticks of the whole machine (all CPUs), from /proc/stat.
        sys_busy_ticks: u64,
        /// Run-queue wait of coda's and our threads (ns).
        coda_wait_ns: u64,
        own_wait_ns: u64,
        active: Option<u64>,
    }

    /// (busy, total) ticks summed over all CPUs.
    fn sys_ticks() -> Option<(u64, u64)> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let line = stat.lines().find(|l| l.starts_with("cpu "))?;
        let v: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .filter_map(|x| x.parse().ok())
            .collect();
        let total: u64 = v.iter().take(8).sum();
        // idle (4th) and iowait (5th) are not busy.
        let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
        Some((total.saturating_sub(idle), total))
    }

    /// Waits until the machine's CPU use stays below 15 % of one core for 3 s in a row (other
    /// builds or tests distort the figures), at most `limit`. Returns a note for the report.
    async fn wait_idle(limit: Duration) -> String {
        if limit.is_zero() {
            return "not waited for".into();
        }
        let tck = sys::clock_ticks() as f64;
        let start = Instant::now();
        let mut quiet = 0;
        let mut prev = sys_ticks();
        while start.elapsed() < limit {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let now = sys_ticks();
            let busy = match (prev, now) {
                (Some((b0, _)), Some((b1, _))) => (b1.saturating_sub(b0)) as f64 / tck * 100.0,
                _ => 0.0,
            };
            prev = now;
            quiet = if busy < 15.0 { quiet + 1 } else { 0 };
            if quiet >= 3 {
                return format!("machine idle after {} s", start.elapsed().as_secs());
            }
        }
        format!("machine not idle within {} s; ran anyway", limit.as_secs())
    }

    async fn sample(pid: &str, admin: SocketAddr) -> Option<Sample> {
        let m = scrape(admin).await;
        Some(Sample {
            at: Instant::now(),
            coda_ticks: proc_cpu_ticks(pid)?,
            own_ticks: proc_cpu_ticks("self")?,
            sys_busy_ticks: sys_ticks()?.0,
            coda_wait_ns: proc_runqueue_wait_ns(pid).unwrap_or(0),
            own_wait_ns: proc_runqueue_wait_ns("self").unwrap_or(0),
            active: metric(&m, "coda_active_calls"),
        })
    }

    // ---------------------------------------------------------------- SIP helpers

    fn branch() -> String {
        format!("z9hG4bK{:016x}", rand::random::<u64>())
    }

    #[allow(clippy::too_many_arguments)]
    fn request(
        method: Method,
        ruri: Uri,
        local: SocketAddr,
        branch: &str,
        from: &str,
        to: &str,
        call_id: &str,
        cseq: u32,
    ) -> Request {
        let mut r = Request::new(method.clone(), ruri);
        let mut via = Via::new("UDP", Host::from(local.ip()), Some(local.port()), branch);
        via.params.push("rport", None);
        r.headers.push("Via", via.to_string());
        r.headers.push("Max-Forwards", "70");
        r.headers.push("From", from);
        r.headers.push("To", to);
        r.headers.push("Call-ID", call_id);
        r.headers.push("CSeq", format!("{cseq} {method}"));
        r
    }

    fn is_response_to(resp: &Response, call_id: &str, method: &Method) -> bool {
        resp.headers.call_id().is_ok_and(|c| c.as_str() == call_id)
            && resp.headers.cseq().is_ok_and(|c| &c.method == method)
    }

    /// What arrived on a UA's SIP socket.
    enum SipIn {
        Response(Response),
        /// coda hung up (BYE answered with 200).
        Bye,
        Other,
    }

    /// Parses a datagram and answers requests: BYE/OPTIONS → 200, anything else → 501.
    async fn sip_in(sock: &UdpSocket, bytes: &[u8], from: SocketAddr, call_id: &str) -> SipIn {
        match sip::parse(bytes) {
            Ok(Message::Response(r)) => SipIn::Response(r),
            Ok(Message::Request(req)) => {
                if req.method == Method::Ack {
                    return SipIn::Other;
                }
                let ours = req.headers.call_id().is_ok_and(|c| c.as_str() == call_id);
                let status = match req.method {
                    Method::Bye if ours => 200,
                    Method::Bye => 481,
                    Method::Options => 200,
                    _ => 501,
                };
                let resp = Response::for_request(&req, status, "").with_to_tag("load");
                let _ = sock.send_to(&resp.to_bytes(), from).await;
                if status == 200 && req.method == Method::Bye {
                    SipIn::Bye
                } else {
                    SipIn::Other
                }
            }
            Err(_) => SipIn::Other,
        }
    }

    /// A client transaction over UDP: sends `bytes`, retransmits at T1 doubling (capped at
    /// 4 s), and returns the final response or an error after `give_up`.
    async fn transact(
        sock: &UdpSocket,
        server: SocketAddr,
        bytes: &[u8],
        call_id: &str,
        method: &Method,
        give_up: Duration,
        remote_bye: &mut bool,
    ) -> Result<Response, String> {
        sock.send_to(bytes, server)
            .await
            .map_err(|e| format!("send {method}: {e}"))?;
        let start = Instant::now();
        let mut interval = T1;
        let mut next = start + interval;
        let mut buf = vec![0u8; sip::MAX_MESSAGE_SIZE];
        loop {
            let end = start + give_up;
            tokio::select! {
                r = sock.recv_from(&mut buf) => {
                    let Ok((n, from)) = r else { continue };
                    match sip_in(sock, buf.get(..n).unwrap_or_default(), from, call_id).await {
                        SipIn::Response(resp) if is_response_to(&resp, call_id, method) => {
                            if resp.status >= 200 {
                                return Ok(resp);
                            }
                            next = end; // provisional: stop retransmitting
                        }
                        SipIn::Bye => *remote_bye = true,
                        _ => {}
                    }
                }
                _ = tokio::time::sleep_until(next.min(end).into()) => {
                    let now = Instant::now();
                    if now >= end {
                        return Err(format!("no final response to {method} within {}s", give_up.as_secs()));
                    }
                    let _ = sock.send_to(bytes, server).await;
                    interval = (interval * 2).min(Duration::from_secs(4));
                    next = now + interval;
                }
            }
        }
    }

    // ---------------------------------------------------------------- one caller

    /// Everything the UAs share.
    struct Shared {
        server: SocketAddr,
        secs: Duration,
        greeting_max: Duration,
        /// Start of the ramp (timeline reference).
        t0: Instant,
        /// One second of the test signal, 50 PCMU frames of 160 bytes.
        voice: Vec<[u8; 160]>,
    }

    /// The test signal: 0.6·sin(300 Hz) + 0.4·sin(1200 Hz), amplitude-modulated at 3 Hz
    /// between 20 % and 100 % of 8000 (about −12 dBFS peak; never near the −50 dBFS silence
    /// threshold). One second holds whole periods of all three, so it loops seamlessly.
    fn voice_frames() -> Vec<[u8; 160]> {
        use std::f64::consts::TAU;
        let pcm: Vec<i16> = (0..8000)
            .map(|n| {
                let t = f64::from(n) / 8000.0;
                let carrier = 0.6 * (TAU * 300.0 * t).sin() + 0.4 * (TAU * 1200.0 * t).sin();
                let envelope = 0.6 + 0.4 * (TAU * 3.0 * t).sin();
                (8000.0 * carrier * envelope) as i16
            })
            .collect();
        pcm.chunks_exact(160)
            .map(|c| {
                let mut f = [0u8; 160];
                Law::Ulaw.encode_slice(c, &mut f);
                f
            })
            .collect()
    }

    /// Per-call outcome.
    #[derive(Debug, Default)]
    struct CallResult {
        /// Final INVITE status (0: none).
        status: u16,
        answered: bool,
        error: Option<String>,
        /// coda sent BYE before we did.
        remote_bye: bool,
        bye_ok: bool,
        greeting: Option<Duration>,
        /// RTP packets we sent.
        sent: u64,
        /// Frames our own pacer skipped (load generator late by > 2 frames).
        own_skipped: u64,
        rx: RxStats,
    }

    /// Reception statistics of coda's RTP stream.
    #[derive(Debug, Default)]
    struct RxStats {
        received: u64,
        /// Highest extended sequence number seen and the first one.
        first_ext: Option<u64>,
        highest_ext: u64,
        last: Option<(u16, u32, Option<i128>, Instant)>,
        /// Frames coda's pacer skipped (timestamp advanced by more than one frame between
        /// consecutive sequence numbers).
        coda_skipped: u64,
        late_or_dup: u64,
        /// |interval − 20 ms| in µs, from kernel receive timestamps.
        dev_kernel_us: Vec<u32>,
        /// |interval − 20 ms| in µs, from the application's clock after wake-up.
        dev_app_us: Vec<u32>,
        no_kernel_stamp: u64,
        /// (second since the ramp started, |Δ| µs) of every kernel-stamped interval.
        timeline: Vec<(u32, u32)>,
    }

    fn dev_us(interval_ns: i128) -> u32 {
        u32::try_from((interval_ns - PTIME_NS).unsigned_abs() / 1000).unwrap_or(u32::MAX)
    }

    impl RxStats {
        fn on_packet(
            &mut self,
            seq: u16,
            ts: u32,
            kernel_ns: Option<i128>,
            app: Instant,
            sec: u32,
        ) {
            self.received += 1;
            if kernel_ns.is_none() {
                self.no_kernel_stamp += 1;
            }
            let Some((pseq, pts, pk, papp)) = self.last else {
                self.first_ext = Some(u64::from(seq) + (1 << 16));
                self.highest_ext = u64::from(seq) + (1 << 16);
                self.last = Some((seq, ts, kernel_ns, app));
                return;
            };
            let d = seq.wrapping_sub(pseq) as i16;
            if d <= 0 {
                self.late_or_dup += 1;
                return;
            }
            self.highest_ext += u64::from(d.unsigned_abs());
            if d == 1 {
                let frames = ts.wrapping_sub(pts) / 160;
                if frames > 1 {
                    self.coda_skipped += u64::from(frames - 1);
                } else if ts.wrapping_sub(pts) == 160 {
                    if let (Some(k), Some(pk)) = (kernel_ns, pk) {
                        let d = dev_us(k - pk);
                        self.dev_kernel_us.push(d);
                        self.timeline.push((sec, d));
                    }
                    let a = app.saturating_duration_since(papp).as_nanos() as i128;
                    self.dev_app_us.push(dev_us(a));
                }
            }
            self.last = Some((seq, ts, kernel_ns, app));
        }

        /// RFC 3550 A.3: expected − received (late duplicates excluded).
        fn lost(&self) -> u64 {
            let Some(first) = self.first_ext else {
                return 0;
            };
            let expected = self.highest_ext - first + 1;
            expected.saturating_sub(self.received - self.late_or_dup)
        }
    }

    async fn caller(i: usize, sh: Arc<Shared>) -> CallResult {
        let mut r = CallResult::default();
        if let Err(e) = caller_inner(i, &sh, &mut r).await {
            r.error = Some(e);
        }
        r
    }

    async fn caller_inner(i: usize, sh: &Shared, r: &mut CallResult) -> Result<(), String> {
        let e = |what: &str| {
            let what = what.to_owned();
            move |err: io::Error| format!("{what}: {err}")
        };
        let sock = UdpSocket::bind((LOCALHOST, 0))
            .await
            .map_err(e("bind SIP"))?;
        let rtp = UdpSocket::bind((LOCALHOST, 0))
            .await
            .map_err(e("bind RTP"))?;
        let stamps = sys::enable_rx_timestamps(rtp.as_raw_fd()).is_ok();
        let local = sock.local_addr().map_err(e("SIP address"))?;
        let rtp_port = rtp.local_addr().map_err(e("RTP address"))?.port();
        let call_id = format!("load{i}-{:016x}@127.0.0.1", rand::random::<u64>());
        let from = format!(
            "<sip:caller{i}@127.0.0.1>;tag={:08x}",
            rand::random::<u32>()
        );
        let target =
            Uri::parse(&format!("sip:{MAILBOX}@{}", sh.server)).map_err(|e| e.to_string())?;
        let to = format!("<{target}>");

        // INVITE.
        let offer = sdp::offer(
            &LocalMedia::new(LOCALHOST, rtp_port),
            u64::from(rand::random::<u32>()),
            1,
        );
        let inv_branch = branch();
        let mut inv = request(
            Method::Invite,
            target.clone(),
            local,
            &inv_branch,
            &from,
            &to,
            &call_id,
            1,
        );
        inv.headers
            .push("Contact", format!("<sip:caller{i}@{local}>"));
        inv.headers.push("Content-Type", "application/sdp");
        inv.body = offer.to_bytes();
        let resp = transact(
            &sock,
            sh.server,
            &inv.to_bytes(),
            &call_id,
            &Method::Invite,
            64 * T1,
            &mut r.remote_bye,
        )
        .await?;
        r.status = resp.status;
        let to_tagged = resp.headers.get("To").unwrap_or(&to).to_owned();
        if resp.class() != 2 {
            // RFC 3261 §17.1.1.3: ACK on the INVITE's branch.
            let ack = request(
                Method::Ack,
                target,
                local,
                &inv_branch,
                &from,
                &to_tagged,
                &call_id,
                1,
            );
            let _ = sock.send_to(&ack.to_bytes(), sh.server).await;
            return Err(format!("INVITE answered {} {}", resp.status, resp.reason));
        }
        r.answered = true;
        let answered = Instant::now();
        let remote_target = resp
            .headers
            .contacts()
            .ok()
            .and_then(|c| c.into_iter().next())
            .map(|c| c.uri)
            .unwrap_or(target);
        let ack = request(
            Method::Ack,
            remote_target.clone(),
            local,
            &branch(),
            &from,
            &to_tagged,
            &call_id,
            1,
        )
        .to_bytes();
        let _ = sock.send_to(&ack, sh.server).await;
        let answer =
            SessionDescription::parse(&resp.body).map_err(|e| format!("SDP answer: {e}"))?;
        let neg = sdp::accept_answer(&offer, &answer).map_err(|e| format!("SDP answer: {e}"))?;
        let law = match neg.codec {
            Codec::Pcmu => Law::Ulaw,
            Codec::Pcma => Law::Alaw,
        };

        // Media.
        let mut cfg =
            SenderConfig::new(Ssrc(rand::random()), SeqNo(rand::random()), rand::random());
        cfg.payload_type = neg.pt;
        let mut sender = RtpSender::new(cfg);
        let mut pacer = Pacer::new_20ms(answered);
        let mut frame_no = 0usize;
        let mut out = Vec::with_capacity(256);
        let mut alaw = [0u8; 160];
        let mut pcm = [0i16; 160];
        let mut buf = vec![0u8; 2048];
        let mut sbuf = vec![0u8; sip::MAX_MESSAGE_SIZE];
        let greeting_limit = answered + sh.greeting_max;
        let hard_end = greeting_limit + sh.secs;
        let mut end_at: Option<Instant> = None;
        let mut heard_audio = false;
        let mut silent_since: Option<Instant> = None;
        loop {
            let wake = end_at.unwrap_or(greeting_limit).min(hard_end);
            tokio::select! {
                res = sock.recv_from(&mut sbuf) => {
                    let Ok((n, from)) = res else { continue };
                    match sip_in(&sock, sbuf.get(..n).unwrap_or_default(), from, &call_id).await {
                        SipIn::Bye => {
                            r.remote_bye = true;
                            break;
                        }
                        SipIn::Response(resp) if resp.class() == 2 && is_response_to(&resp, &call_id, &Method::Invite) => {
                            // 2xx retransmitted: our ACK was lost; send it again.
                            let _ = sock.send_to(&ack, sh.server).await;
                        }
                        _ => {}
                    }
                }
                ready = rtp.readable() => {
                    if ready.is_err() {
                        continue;
                    }
                    loop {
                        let got = rtp.try_io(Interest::READABLE, || sys::recv_with_timestamp(rtp.as_raw_fd(), &mut buf));
                        let (n, kernel_ns) = match got {
                            Ok(v) => v,
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                            Err(_) => break,
                        };
                        let app = Instant::now();
                        let data = buf.get(..n).unwrap_or_default();
                        if is_rtcp(data) {
                            continue;
                        }
                        let Ok(p) = RtpPacket::parse(data) else { continue };
                        if p.payload_type != neg.pt {
                            continue;
                        }
                        let sec = app.saturating_duration_since(sh.t0).as_secs() as u32;
                        r.rx.on_packet(
                            p.seq.0,
                            p.timestamp,
                            if stamps { kernel_ns } else { None },
                            app,
                            sec,
                        );
                        if end_at.is_none() {
                            let k = p.payload.len().min(pcm.len());
                            law.decode_slice(p.payload.get(..k).unwrap_or_default(), &mut pcm[..k]);
                            let peak = pcm[..k].iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
                            if peak >= SILENT_PEAK.unsigned_abs() {
                                heard_audio = true;
                                silent_since = None;
                            } else if heard_audio {
                                let since = *silent_since.get_or_insert(app);
                                if app.duration_since(since) >= REC_SILENCE {
                                    end_at = Some(since + sh.secs);
                                    r.greeting = Some(since.duration_since(answered));
                                }
                            }
                        }
                    }
                }
                _ = tokio::time::sleep_until(pacer.next_deadline().into()) => {
                    let now = Instant::now();
                    while pacer.is_due(now) {
                        let voice = &sh.voice[frame_no % sh.voice.len()];
                        let payload: &[u8] = if law == Law::Ulaw {
                            voice
                        } else {
                            // Only if coda ever chose PCMA: transcode the frame.
                            Law::Ulaw.decode_slice(voice, &mut pcm);
                            Law::Alaw.encode_slice(&pcm, &mut alaw);
                            &alaw
                        };
                        out.clear();
                        sender.write_frame(payload, &mut out);
                        if rtp.send_to(&out, neg.remote_addr).await.is_ok() {
                            r.sent += 1;
                        }
                        let skipped = pacer.on_sent(now);
                        sender.skip_frames(skipped);
                        r.own_skipped += skipped;
                        frame_no = frame_no.wrapping_add(1 + skipped as usize);
                    }
                }
                _ = tokio::time::sleep_until(wake.into()) => {
                    let now = Instant::now();
                    if now >= hard_end || end_at.is_some_and(|t| now >= t) {
                        break;
                    }
                    if end_at.is_none() && now >= greeting_limit {
                        // Greeting end not recognised: talk for --secs from here.
                        end_at = Some(now + sh.secs);
                    }
                }
            }
        }
        if r.remote_bye {
            return Err("coda hung up first".into());
        }

        // BYE.
        let bye = request(
            Method::Bye,
            remote_target,
            local,
            &branch(),
            &from,
            &to_tagged,
            &call_id,
            2,
        );
        let mut ignored = false;
        let resp = transact(
            &sock,
            sh.server,
            &bye.to_bytes(),
            &call_id,
            &Method::Bye,
            64 * T1,
            &mut ignored,
        )
        .await?;
        if resp.class() == 2 {
            r.bye_ok = true;
            Ok(())
        } else {
            Err(format!("BYE answered {} {}", resp.status, resp.reason))
        }
    }

    // ---------------------------------------------------------------- the run

    /// Everything measured in one run.
    struct Report {
        calls: usize,
        secs: u64,
        results: Vec<CallResult>,
        aborted: usize,
        samples: Vec<Sample>,
        t0: Instant,
        clk_tck: u64,
        metrics_end: Option<HashMap<String, f64>>,
        coda_hwm_kib: Option<u64>,
        own_hwm_kib: Option<u64>,
        ready_after: Duration,
        wall: Duration,
        drain_note: String,
        stop_note: String,
        idle_note: String,
        db: Option<(u64, f64, u64, u64)>,
        log_warn: usize,
        log_error: usize,
        log_samples: Vec<String>,
    }

    fn make_temp_dir() -> Result<PathBuf, String> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!("coda-load-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(dir)
    }

    async fn run(a: &Args) -> Result<Report, String> {
        if !a.coda.is_file() {
            return Err(format!(
                "{} not found: run `cargo build --release` first (or pass --coda)",
                a.coda.display()
            ));
        }
        let dir = make_temp_dir()?;
        let result = run_in(a, &dir).await;
        if a.keep {
            eprintln!("kept {}", dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&dir);
        }
        result
    }

    async fn run_in(a: &Args, dir: &Path) -> Result<Report, String> {
        let sip_port = free_port(true)?;
        let admin_port = free_port(false)?;
        let server = SocketAddr::new(LOCALHOST, sip_port);
        let admin = SocketAddr::new(LOCALHOST, admin_port);
        let cfg = write_config(dir, sip_port, admin_port, a)?;
        let log_path = dir.join("coda.log");
        let log =
            std::fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
        let mut cmd = Command::new(&a.coda);
        if let Some(n) = a.coda_nice {
            use std::os::unix::process::CommandExt;
            // SAFETY: the hook only calls setpriority(2), which is async-signal-safe.
            unsafe {
                cmd.pre_exec(move || sys::set_nice(n));
            }
        }
        let child = cmd
            .arg("serve")
            .arg("--config")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", a.coda.display()))?;
        let pid = child.id();
        let mut srv = Server { child, pid };
        let pid_s = pid.to_string();
        let ready_after = wait_ready(server, &mut srv.child, Duration::from_secs(20)).await?;
        eprintln!(
            "coda pid {pid} ready after {} ms; {} calls, {} s messages, {} calls/s",
            ready_after.as_millis(),
            a.calls,
            a.secs,
            a.rate
        );

        let idle_note = wait_idle(Duration::from_secs(a.wait_idle)).await;
        eprintln!("{idle_note}");
        let shared = Arc::new(Shared {
            server,
            secs: Duration::from_secs(a.secs),
            greeting_max: Duration::from_secs(a.greeting_max),
            voice: voice_frames(),
            t0: Instant::now() + Duration::from_millis(50),
        });

        // Per-second sampler.
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = {
            let stop = stop.clone();
            let pid_s = pid_s.clone();
            tokio::spawn(async move {
                let mut out = Vec::new();
                let t0 = Instant::now();
                let mut tick = tokio::time::interval(Duration::from_secs(1));
                let mut last_print = 0;
                while !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    if let Some(s) = sample(&pid_s, admin).await {
                        let el = s.at.duration_since(t0).as_secs();
                        if el >= last_print + 10 {
                            last_print = el;
                            eprintln!("  t={el:>3}s active calls {:?}", s.active.unwrap_or(0));
                        }
                        out.push(s);
                    }
                }
                out
            })
        };

        // Ramp up, then wait for every caller (hard-bounded).
        let t0 = shared.t0;
        let ramp = Duration::from_secs_f64(a.calls as f64 / a.rate);
        let per_call_bound = 64 * T1 + shared.greeting_max + shared.secs + 64 * T1;
        let hard = t0 + ramp + per_call_bound + Duration::from_secs(30);
        let mut set = JoinSet::new();
        for i in 0..a.calls {
            // Random arrival phase within each 1/rate slot, so the calls' 20 ms clocks are
            // spread like real arrivals; `--aligned` starts them exactly 1/rate apart (with
            // the default 50 calls/s every call then has the same 20 ms phase: a worst case).
            let jitter = if a.aligned {
                0.0
            } else {
                rand::random::<f64>()
            };
            let at = t0 + Duration::from_secs_f64((i as f64 + jitter) / a.rate);
            tokio::time::sleep_until(at.into()).await;
            set.spawn(caller(i, shared.clone()));
        }
        let mut results = Vec::with_capacity(a.calls);
        let mut aborted = 0;
        loop {
            match tokio::time::timeout_at(hard.into(), set.join_next()).await {
                Ok(Some(Ok(r))) => results.push(r),
                Ok(Some(Err(_))) => aborted += 1,
                Ok(None) => break,
                Err(_) => {
                    aborted += set.len();
                    eprintln!("hard timeout: aborting {} callers", set.len());
                    set.abort_all();
                    break;
                }
            }
        }
        let wall = t0.elapsed();

        // Let coda finish saving (active calls back to 0), bounded.
        let drain_start = Instant::now();
        let mut drain_note = String::from("active calls did not return to 0 within 60 s");
        while drain_start.elapsed() < Duration::from_secs(60) {
            let m = scrape(admin).await;
            if metric(&m, "coda_active_calls") == Some(0) {
                drain_note = format!(
                    "active calls 0 after {} ms",
                    drain_start.elapsed().as_millis()
                );
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        // Mails are sent in the background after the save; give them a moment.
        tokio::time::sleep(Duration::from_secs(2)).await;
        stop.store(true, Ordering::Relaxed);
        let mut samples = sampler.await.unwrap_or_default();
        samples.retain(|s| s.at <= t0 + wall);
        let metrics_end = scrape(admin).await;
        let coda_hwm_kib = proc_status_kib(&pid_s, "VmHWM:");
        let own_hwm_kib = proc_status_kib("self", "VmHWM:");
        let stop_note = srv.stop(Duration::from_secs(15));

        let db = query_db(&dir.join("data").join("coda.db"));
        let (log_warn, log_error, log_samples) = scan_log(&log_path);
        Ok(Report {
            calls: a.calls,
            secs: a.secs,
            results,
            aborted,
            samples,
            t0,
            clk_tck: sys::clock_ticks(),
            metrics_end,
            coda_hwm_kib,
            own_hwm_kib,
            ready_after,
            wall,
            drain_note,
            stop_note,
            idle_note,
            db,
            log_warn,
            log_error,
            log_samples,
        })
    }

    /// (count, mean, min, max) of stored message durations in ms.
    fn query_db(path: &Path) -> Option<(u64, f64, u64, u64)> {
        let conn =
            rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .ok()?;
        conn.query_row(
            "SELECT COUNT(*), COALESCE(AVG(duration_ms), 0), COALESCE(MIN(duration_ms), 0), \
             COALESCE(MAX(duration_ms), 0) FROM messages",
            [],
            |row| {
                Ok((
                    row.get::<_, i64>(0)? as u64,
                    row.get::<_, f64>(1)?,
                    row.get::<_, i64>(2)? as u64,
                    row.get::<_, i64>(3)? as u64,
                ))
            },
        )
        .ok()
    }

    fn strip_ansi(s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        let mut esc = false;
        for c in s.chars() {
            match (esc, c) {
                (false, '\u{1b}') => esc = true,
                (true, c) if c.is_ascii_alphabetic() => esc = false,
                (true, _) => {}
                (false, c) => out.push(c),
            }
        }
        out
    }

    /// Counts WARN/ERROR lines in coda's log; returns a few distinct messages (timestamps and
    /// call ids cut off).
    fn scan_log(path: &Path) -> (usize, usize, Vec<String>) {
        let Ok(text) = std::fs::read_to_string(path) else {
            return (0, 0, Vec::new());
        };
        let (mut warn, mut error) = (0, 0);
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for line in text.lines().map(strip_ansi) {
            let level = line.split_whitespace().nth(1).unwrap_or("");
            let is_warn = level == "WARN";
            let is_error = level == "ERROR";
            if !(is_warn || is_error) {
                continue;
            }
            if is_warn {
                warn += 1;
            } else {
                error += 1;
            }
            let msg: String = line
                .split_whitespace()
                .skip(1)
                .filter(|w| !w.starts_with("call_id="))
                .collect::<Vec<_>>()
                .join(" ");
            *seen.entry(msg.chars().take(160).collect()).or_default() += 1;
        }
        let mut v: Vec<(String, usize)> = seen.into_iter().collect();
        v.sort_by_key(|e| std::cmp::Reverse(e.1));
        (
            warn,
            error,
            v.into_iter()
                .take(5)
                .map(|(m, n)| format!("{n}× {m}"))
                .collect(),
        )
    }

    fn percentile(sorted: &[u32], q: f64) -> Option<u32> {
        if sorted.is_empty() {
            return None;
        }
        let idx = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
        sorted.get(idx).copied()
    }

    fn ms(us: Option<u32>) -> String {
        us.map_or("–".into(), |v| format!("{:.2}", f64::from(v) / 1000.0))
    }

    /// Whose CPU time.
    #[derive(Clone, Copy)]
    enum Who {
        Coda,
        LoadGen,
        /// Everything else on the machine.
        Others,
    }

    /// Run-queue wait in ms per second (coda's or ours) between two samples.
    fn rq_wait(a: &Sample, b: &Sample, own: bool) -> Option<f64> {
        let dt = b.at.checked_duration_since(a.at)?.as_secs_f64();
        let (x, y) = if own {
            (a.own_wait_ns, b.own_wait_ns)
        } else {
            (a.coda_wait_ns, b.coda_wait_ns)
        };
        (dt > 0.0).then(|| y.saturating_sub(x) as f64 / 1e6 / dt)
    }

    /// CPU % of one core between two samples.
    fn cpu(a: &Sample, b: &Sample, tck: u64, who: Who) -> Option<f64> {
        let dt = b.at.checked_duration_since(a.at)?.as_secs_f64();
        if dt <= 0.0 {
            return None;
        }
        let d = |x: u64, y: u64| y.saturating_sub(x) as f64 / tck as f64 / dt * 100.0;
        let coda = d(a.coda_ticks, b.coda_ticks);
        let own = d(a.own_ticks, b.own_ticks);
        Some(match who {
            Who::Coda => coda,
            Who::LoadGen => own,
            Who::Others => (d(a.sys_busy_ticks, b.sys_busy_ticks) - coda - own).max(0.0),
        })
    }

    impl Report {
        /// Per second since the ramp started: active calls, CPU of coda / load generator /
        /// others, and the pacing error of the intervals that ended in that second.
        fn print_timeline(&self) {
            let mut per_sec: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
            for r in &self.results {
                for (sec, d) in &r.rx.timeline {
                    per_sec.entry(*sec).or_default().push(*d);
                }
            }
            println!();
            println!(
                "| s | active | coda CPU % | load-gen CPU % | others CPU % | coda run-queue wait ms/s \
                 | load-gen run-queue wait ms/s | intervals | > 5 ms | p99 ms | max ms |"
            );
            println!("|---|---|---|---|---|---|---|---|---|---|---|");
            let s = &self.samples;
            for (sec, mut v) in per_sec {
                v.sort_unstable();
                let at = self.t0 + Duration::from_secs(u64::from(sec) + 1);
                // The sample pair that brackets the end of this second.
                let pair = s.windows(2).find(|w| w[1].at >= at).map(|w| (w[0], w[1]));
                let c = |who| pair.and_then(|(x, y)| cpu(&x, &y, self.clk_tck, who));
                let pct = |v: Option<f64>| v.map_or("–".into(), |v| format!("{v:.0}"));
                println!(
                    "| {sec} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    pair.and_then(|p| p.1.active)
                        .map_or("–".into(), |v| v.to_string()),
                    pct(c(Who::Coda)),
                    pct(c(Who::LoadGen)),
                    pct(c(Who::Others)),
                    pct(pair.and_then(|(x, y)| rq_wait(&x, &y, false))),
                    pct(pair.and_then(|(x, y)| rq_wait(&x, &y, true))),
                    v.len(),
                    v.iter().filter(|d| **d > 5000).count(),
                    ms(percentile(&v, 0.99)),
                    ms(v.last().copied()),
                );
            }
        }

        fn print(&self, a: &Args) {
            let res = &self.results;
            let answered = res.iter().filter(|r| r.answered).count();
            let ok = res.iter().filter(|r| r.bye_ok && r.error.is_none()).count();
            let sent: u64 = res.iter().map(|r| r.sent).sum();
            let own_skipped: u64 = res.iter().map(|r| r.own_skipped).sum();
            let received: u64 = res.iter().map(|r| r.rx.received).sum();
            let lost_from_coda: u64 = res.iter().map(|r| r.rx.lost()).sum();
            let coda_skipped: u64 = res.iter().map(|r| r.rx.coda_skipped).sum();
            let late: u64 = res.iter().map(|r| r.rx.late_or_dup).sum();
            let no_stamp: u64 = res.iter().map(|r| r.rx.no_kernel_stamp).sum();
            let mut dk: Vec<u32> = res
                .iter()
                .flat_map(|r| r.rx.dev_kernel_us.iter().copied())
                .collect();
            let mut da: Vec<u32> = res
                .iter()
                .flat_map(|r| r.rx.dev_app_us.iter().copied())
                .collect();
            dk.sort_unstable();
            da.sort_unstable();
            let greetings: Vec<Duration> = res.iter().filter_map(|r| r.greeting).collect();
            let no_greeting = res
                .iter()
                .filter(|r| r.answered && r.greeting.is_none())
                .count();
            let m = &self.metrics_end;
            let coda_in = metric(m, "coda_rtp_packets_in_total");
            let coda_out = metric(m, "coda_rtp_packets_out_total");
            let saved = metric(m, "coda_messages_saved_total");
            let lost_to_coda = coda_in.map(|i| sent as i64 - i as i64);

            // CPU: whole run and the full-load window (samples at the peak of active calls).
            let s = &self.samples;
            let whole = |w| {
                s.first()
                    .zip(s.last())
                    .and_then(|(x, y)| cpu(x, y, self.clk_tck, w))
            };
            let (whole_coda, whole_own, whole_other) =
                (whole(Who::Coda), whole(Who::LoadGen), whole(Who::Others));
            let peak = s.iter().filter_map(|x| x.active).max();
            let at_peak: Vec<&Sample> = s
                .iter()
                .filter(|x| x.active.is_some() && x.active == peak)
                .collect();
            let window = at_peak
                .first()
                .zip(at_peak.last())
                .filter(|(x, y)| y.at > x.at);
            let full = |w| window.and_then(|(x, y)| cpu(x, y, self.clk_tck, w));
            let (full_coda, full_own, full_other) =
                (full(Who::Coda), full(Who::LoadGen), full(Who::Others));
            let rq_coda = window.and_then(|(x, y)| rq_wait(x, y, false));
            let rq_own = window.and_then(|(x, y)| rq_wait(x, y, true));
            let window_secs = window.map_or(0.0, |(x, y)| y.at.duration_since(x.at).as_secs_f64());
            let pct = |v: Option<f64>| v.map_or("–".into(), |v| format!("{v:.0}"));
            let mib =
                |v: Option<u64>| v.map_or("–".into(), |v| format!("{:.0}", v as f64 / 1024.0));

            if a.header {
                println!(
                    "| N | answered / completed | msgs saved | peak active | coda CPU % of 1 core (full load / whole run) \
                     | coda peak RSS MiB | load-gen CPU % (full load / whole run) | other processes CPU % (full load / whole run) \
                     | lost coda→UA | lost UA→coda | frames skipped by coda | pacing \\|Δ\\| p50 / p99 / max ms (kernel ts) | p99 ms (app ts) |"
                );
                println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
            }
            println!(
                "| {} | {answered} / {ok} | {} | {} | {} / {} | {} | {} / {} | {} / {} | {lost_from_coda} | {} | {coda_skipped} | {} / {} / {} | {} |",
                self.calls,
                saved.map_or("–".into(), |v| v.to_string()),
                peak.map_or("–".into(), |v| v.to_string()),
                pct(full_coda),
                pct(whole_coda),
                mib(self.coda_hwm_kib),
                pct(full_own),
                pct(whole_own),
                pct(full_other),
                pct(whole_other),
                lost_to_coda.map_or("–".into(), |v| v.to_string()),
                ms(percentile(&dk, 0.5)),
                ms(percentile(&dk, 0.99)),
                ms(dk.last().copied()),
                ms(percentile(&da, 0.99)),
            );
            println!();
            println!("details (N = {}, {} s messages):", self.calls, self.secs);
            println!(
                "- wall {:.1} s; {}; coda ready after {} ms; full-load window {:.0} s at {} active calls; {}; coda {}",
                self.wall.as_secs_f64(),
                self.idle_note,
                self.ready_after.as_millis(),
                window_secs,
                peak.unwrap_or(0),
                self.drain_note,
                self.stop_note
            );
            println!(
                "- RTP: we sent {sent}, coda counted in {}, coda counted out {}, we received {received} \
                 (late/duplicate {late}, without kernel stamp {no_stamp}); our own pacer skipped {own_skipped} frames",
                coda_in.map_or("–".into(), |v| v.to_string()),
                coda_out.map_or("–".into(), |v| v.to_string()),
            );
            println!(
                "- pacing |Δ| over {} intervals: kernel ts p50 {} / p90 {} / p99 {} / p99.9 {} / max {} ms; \
                 app ts p50 {} / p99 {} / max {} ms",
                dk.len(),
                ms(percentile(&dk, 0.5)),
                ms(percentile(&dk, 0.9)),
                ms(percentile(&dk, 0.99)),
                ms(percentile(&dk, 0.999)),
                ms(dk.last().copied()),
                ms(percentile(&da, 0.5)),
                ms(percentile(&da, 0.99)),
                ms(da.last().copied()),
            );
            println!(
                "- run-queue wait in the full-load window (threads runnable but not on a CPU): coda {} ms/s, \
                 load generator {} ms/s; coda nice {}",
                rq_coda.map_or("–".into(), |v| format!("{v:.0}")),
                rq_own.map_or("–".into(), |v| format!("{v:.0}")),
                a.coda_nice.map_or("inherited".into(), |n| n.to_string()),
            );
            println!(
                "- arrivals: {}",
                if a.aligned {
                    "aligned (exactly 1/rate apart)"
                } else {
                    "random phase within each 1/rate slot"
                }
            );
            if !greetings.is_empty() {
                let mean = greetings.iter().map(Duration::as_secs_f64).sum::<f64>()
                    / greetings.len() as f64;
                println!("- greeting+beep heard: mean {mean:.2} s; recording start not recognised in {no_greeting} calls");
            }
            println!(
                "- coda metrics: calls_total {}, rejected {}, saved {}, discarded {}, mails sent {}, mail failures {}, \
                 foreign RTP {}, malformed SIP {}",
                metric(m, "coda_calls_total").map_or("–".into(), |v| v.to_string()),
                metric(m, "coda_calls_rejected_total").map_or("–".into(), |v| v.to_string()),
                saved.map_or("–".into(), |v| v.to_string()),
                metric(m, "coda_messages_discarded_total").map_or("–".into(), |v| v.to_string()),
                metric(m, "coda_mails_sent_total").map_or("–".into(), |v| v.to_string()),
                metric(m, "coda_mail_failures_total").map_or("–".into(), |v| v.to_string()),
                metric(m, "coda_rtp_foreign_total").map_or("–".into(), |v| v.to_string()),
                metric(m, "coda_sip_malformed_total").map_or("–".into(), |v| v.to_string()),
            );
            if let Some((n, avg, min, max)) = self.db {
                println!(
                    "- stored messages: {n}, duration mean {:.2} s (min {:.2}, max {:.2})",
                    avg / 1000.0,
                    min as f64 / 1000.0,
                    max as f64 / 1000.0
                );
            }
            println!(
                "- memory: coda VmHWM {} MiB, load generator VmHWM {} MiB",
                mib(self.coda_hwm_kib),
                mib(self.own_hwm_kib)
            );
            let mut errors: BTreeMap<String, usize> = BTreeMap::new();
            for r in res.iter().filter_map(|r| r.error.as_ref()) {
                *errors.entry(r.clone()).or_default() += 1;
            }
            if self.aborted > 0 {
                errors.insert("aborted by the hard timeout".into(), self.aborted);
            }
            if errors.is_empty() {
                println!("- caller errors: none");
            } else {
                for (e, n) in errors {
                    println!("- caller errors: {n}× {e}");
                }
            }
            println!(
                "- coda log: {} WARN, {} ERROR lines",
                self.log_warn, self.log_error
            );
            for l in &self.log_samples {
                println!("  - {l}");
            }
            if a.timeline {
                self.print_timeline();
            }
            let _ = io::stdout().flush();
        }
    }
}
