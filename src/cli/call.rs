//! `coda call`: a small SIP user agent for operators and tests.
//!
//! Dials a SIP URI over UDP (or TCP with `--tcp`), offers PCMU/PCMA + telephone-event, plays a
//! WAV paced at 20 ms, sends RFC 4733 digits at given offsets, records what it hears through
//! the jitter buffer, hangs up after `--duration` (or when the far end sends BYE), and prints
//! a one-line JSON summary on stdout.
//!
//! This is a shell over the sans-IO layers (`sip`, `sdp`, `rtp`, `codecs`): it owns the
//! sockets and the clock. Transaction handling is the minimum a UAC needs (RFC 3261 §17.1):
//! INVITE retransmitted at T1 doubling until a response, Timer B (64·T1) → 408; CANCEL on
//! answer timeout; ACK for 2xx (new branch, re-sent for retransmitted 2xx) and for non-2xx
//! (same branch, §17.1.1.3); BYE retransmitted at T1 doubling capped at T2, for up to 64·T1.
//! Over TCP nothing is retransmitted (§17.1.1.2).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use codecs::resample::{f32_to_i16, resample_linear};
use codecs::Law;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use crate::rtp::pacer::{EventError, SentFrame};
use crate::rtp::{
    is_rtcp, DtmfReceiver, Frame, JitterBuffer, JitterConfig, Pacer, RtpPacket, RtpSender,
    SenderConfig, SeqNo, Ssrc, SAMPLES_PER_FRAME,
};
use crate::sdp::{self, Codec, LocalMedia, SessionDescription};
use crate::sip::{self, Host, Message, Method, NameAddr, Request, Response, Uri, Via};

use super::CliError;

/// RFC 3261 §17.1.1.1 round-trip estimate.
const T1: Duration = Duration::from_millis(500);
/// RFC 3261 §17.1.2.2 cap on non-INVITE retransmit intervals.
const T2: Duration = Duration::from_secs(4);
/// How long each sent DTMF digit lasts.
const DIGIT_LEN: Duration = Duration::from_millis(100);
/// Most `t:digits` entries in `--dtmf`.
const MAX_DTMF_ENTRIES: usize = 64;
/// Most received digits kept for the summary.
const MAX_DIGITS_REPORTED: usize = 256;
/// Longest call (and `--timeout`) accepted, in seconds.
const MAX_SECS: f64 = 24.0 * 3600.0;
/// Samples per second of G.711.
const RATE: u32 = 8000;

/// Arguments of `coda call`.
#[derive(Args, Debug)]
pub struct CallArgs {
    /// SIP URI to dial, e.g. sip:77513@127.0.0.1:5060.
    pub uri: String,
    /// WAV to play after answer (any rate/channels; converted to 8 kHz mono).
    #[arg(long)]
    pub play: Option<PathBuf>,
    /// Where to write what the far end sent (8 kHz mono 16-bit WAV).
    #[arg(long)]
    pub record: Option<PathBuf>,
    /// DTMF schedule: comma-separated `seconds-after-answer:digits`, e.g. "3.5:#,10:123".
    #[arg(long)]
    pub dtmf: Option<String>,
    /// Hang up this many seconds after answer.
    #[arg(long, default_value_t = 30.0)]
    pub duration: f64,
    /// Local SIP address (RTP binds the same IP on an ephemeral port).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub local: SocketAddr,
    /// Use TCP for SIP instead of UDP.
    #[arg(long)]
    pub tcp: bool,
    /// User part of the From URI (or a full sip: URI).
    #[arg(long, default_value = "coda-call")]
    pub from: String,
    /// Extra INVITE header, "Name: value" (repeatable), e.g. "Diversion: <sip:1@x>;reason=busy".
    #[arg(long = "header")]
    pub headers: Vec<String>,
    /// Seconds to wait for an answer before CANCEL.
    #[arg(long, default_value_t = 32.0)]
    pub timeout: f64,
}

/// The JSON printed on stdout.
#[derive(Debug, Default, Serialize)]
struct Summary {
    status: u16,
    reason: String,
    answered: bool,
    duration_s: f64,
    packets_sent: u64,
    packets_received: u64,
    hangup_by: Option<&'static str>,
    dtmf_sent: String,
    dtmf_received: String,
    codec: Option<&'static str>,
    remote_rtp: Option<String>,
    notes: Vec<String>,
}

/// `coda call`: runs the call on its own runtime, writes `--record`, prints the summary.
/// Setup failures (bad arguments, unreadable WAV, unreachable host) are errors; any SIP
/// outcome, including a failure status, is reported in the JSON.
pub fn run(args: CallArgs) -> Result<(), CliError> {
    let schedule = match &args.dtmf {
        Some(s) => parse_dtmf_schedule(s)?,
        None => Vec::new(),
    };
    let headers = args
        .headers
        .iter()
        .map(|h| parse_header_arg(h))
        .collect::<Result<Vec<_>, _>>()?;
    let duration = secs_arg("--duration", args.duration, true)?;
    let timeout = secs_arg("--timeout", args.timeout, false)?;
    let audio = match &args.play {
        Some(p) => load_wav(p, duration.as_secs_f64())?,
        None => Vec::new(),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let plan = Plan {
        duration,
        timeout,
        schedule,
        headers,
        audio,
    };
    let (summary, heard) = rt.block_on(call(&args, plan))?;
    if let Some(path) = &args.record {
        let path = std::path::absolute(path)?;
        crate::store::write_wav_durably(&path, &heard)
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    println!("{}", serde_json::to_string(&summary)?);
    Ok(())
}

fn secs_arg(name: &str, v: f64, zero_ok: bool) -> Result<Duration, CliError> {
    if !v.is_finite() || v < 0.0 || (v == 0.0 && !zero_ok) || v > MAX_SECS {
        return Err(format!("{name} must be a number of seconds in 0..{MAX_SECS}").into());
    }
    Ok(Duration::from_secs_f64(v))
}

/// Parses `--dtmf`: comma-separated `t:digits` (t in seconds after answer, digits from
/// `0-9 * # A-D`), returned sorted by time.
pub fn parse_dtmf_schedule(s: &str) -> Result<Vec<(Duration, String)>, String> {
    let mut out = Vec::new();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (t, digits) = item
            .split_once(':')
            .ok_or_else(|| format!("--dtmf entry {item:?}: expected seconds:digits"))?;
        let secs: f64 = t
            .trim()
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite() && *v >= 0.0 && *v <= MAX_SECS)
            .ok_or_else(|| format!("--dtmf entry {item:?}: bad time {t:?}"))?;
        let digits = digits.trim().to_ascii_uppercase();
        if digits.is_empty() || digits.len() > crate::rtp::pacer::MAX_QUEUED_DIGITS {
            return Err(format!("--dtmf entry {item:?}: 1 to 32 digits expected"));
        }
        if let Some(bad) = digits.chars().find(|c| !"0123456789*#ABCD".contains(*c)) {
            return Err(format!(
                "--dtmf entry {item:?}: {bad:?} is not a DTMF digit"
            ));
        }
        out.push((Duration::from_secs_f64(secs), digits));
    }
    if out.len() > MAX_DTMF_ENTRIES {
        return Err(format!("--dtmf: at most {MAX_DTMF_ENTRIES} entries"));
    }
    out.sort_by_key(|(t, _)| *t);
    Ok(out)
}

/// Headers the UA writes itself; `--header` may not set them.
const OWN_HEADERS: &[&str] = &[
    "Via",
    "From",
    "To",
    "Call-ID",
    "CSeq",
    "Contact",
    "Max-Forwards",
    "Content-Type",
    "Content-Length",
];

/// Parses `--header "Name: value"`: the name must be a token and not one the UA writes; the
/// value may not contain control characters (no header injection).
pub fn parse_header_arg(s: &str) -> Result<(String, String), String> {
    let (name, value) = s
        .split_once(':')
        .ok_or_else(|| format!("--header {s:?}: expected \"Name: value\""))?;
    let (name, value) = (name.trim(), value.trim());
    if !sip::header::is_token(name) {
        return Err(format!("--header {s:?}: {name:?} is not a header name"));
    }
    if OWN_HEADERS.iter().any(|h| sip::same_header(h, name)) {
        return Err(format!("--header {s:?}: {name} is set by coda call itself"));
    }
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Err(format!("--header {s:?}: control characters in the value"));
    }
    Ok((name.to_owned(), value.to_owned()))
}

/// Reads a WAV (PCM int 8–32 bit or float, any rate/channels), mixes down to mono and
/// converts to 8 kHz 16-bit. Only the first `max_secs` (+1) seconds are read.
fn load_wav(path: &Path, max_secs: f64) -> Result<Vec<i16>, CliError> {
    let err = |e: hound::Error| format!("{}: {e}", path.display());
    let mut reader = hound::WavReader::open(path).map_err(err)?;
    let spec = reader.spec();
    let ch = usize::from(spec.channels.max(1));
    // Bounded by MAX_SECS × rate × channels, well within usize.
    let limit = ((max_secs + 1.0) * f64::from(spec.sample_rate)) as usize * ch;
    let interleaved: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => reader
            .samples::<f32>()
            .take(limit)
            .collect::<Result<_, _>>()
            .map_err(err)?,
        hound::SampleFormat::Int => {
            if !(1..=32).contains(&spec.bits_per_sample) {
                return Err(format!("{}: unsupported sample size", path.display()).into());
            }
            let scale = 1.0 / (1u64 << (spec.bits_per_sample - 1)) as f32;
            reader
                .samples::<i32>()
                .take(limit)
                .map(|s| s.map(|v| v as f32 * scale))
                .collect::<Result<_, _>>()
                .map_err(err)?
        }
    };
    let mono: Vec<f32> = interleaved
        .chunks(ch)
        .map(|c| c.iter().sum::<f32>() / c.len() as f32)
        .collect();
    let at8k = if spec.sample_rate == RATE {
        mono
    } else {
        let r = resample_linear(&mono, spec.sample_rate, RATE);
        if r.is_empty() && !mono.is_empty() {
            return Err(
                format!("{}: unsupported rate {}", path.display(), spec.sample_rate).into(),
            );
        }
        r
    };
    Ok(at8k.into_iter().map(f32_to_i16).collect())
}

/// Everything `call` needs besides the raw arguments.
struct Plan {
    duration: Duration,
    timeout: Duration,
    schedule: Vec<(Duration, String)>,
    headers: Vec<(String, String)>,
    audio: Vec<i16>,
}

/// SIP transport: a UDP socket, or one TCP connection with its framing buffer.
enum Transport {
    Udp(UdpSocket),
    Tcp {
        stream: TcpStream,
        buf: Vec<u8>,
        peer: SocketAddr,
    },
}

impl Transport {
    async fn send(&mut self, bytes: &[u8], to: SocketAddr) -> io::Result<()> {
        match self {
            Transport::Udp(s) => s.send_to(bytes, to).await.map(drop),
            Transport::Tcp { stream, .. } => stream.write_all(bytes).await,
        }
    }

    /// The next message's bytes and sender. Cancel-safe (used in `select!`).
    async fn recv(&mut self) -> io::Result<(Vec<u8>, SocketAddr)> {
        match self {
            Transport::Udp(s) => {
                let mut buf = vec![0u8; sip::MAX_MESSAGE_SIZE];
                loop {
                    match s.recv_from(&mut buf).await {
                        Ok((n, from)) => {
                            buf.truncate(n);
                            return Ok((buf, from));
                        }
                        // ICMP errors surfacing on the socket: not fatal for UDP.
                        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
                        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => continue,
                        Err(e) => return Err(e),
                    }
                }
            }
            Transport::Tcp { stream, buf, peer } => loop {
                let ka = sip::keepalive_len(buf);
                buf.drain(..ka);
                match sip::frame(buf) {
                    Ok(Some(n)) => return Ok((buf.drain(..n).collect(), *peer)),
                    Ok(None) => {}
                    Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
                }
                let mut chunk = [0u8; 4096];
                let n = stream.read(&mut chunk).await?;
                if n == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
            },
        }
    }
}

/// Retransmission schedule of one client transaction (UDP only).
struct Retrans {
    next: Instant,
    interval: Duration,
    cap: Duration,
}

impl Retrans {
    fn new(now: Instant, cap: Duration) -> Self {
        Retrans {
            next: now + T1,
            interval: T1,
            cap,
        }
    }

    fn fired(&mut self, now: Instant) {
        self.interval = self.interval.saturating_mul(2).min(self.cap);
        self.next = now + self.interval;
    }
}

/// Sleeps until `at`, or forever when `None`.
async fn sleep_opt(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}

fn random_token() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// What a SIP datagram turned out to be, relative to our dialog.
enum Incoming {
    Response(Response),
    /// A BYE, already answered with 200.
    Bye,
    Other,
}

/// The UA's SIP side: transport, identifiers and (after 2xx) the dialog.
struct Ua {
    tr: Transport,
    local: SocketAddr,
    next_hop: SocketAddr,
    target: Uri,
    from: String,
    from_tag: String,
    call_id: String,
    contact: String,
    remote_tag: Option<String>,
    remote_target: Option<Uri>,
    route_set: Vec<String>,
    /// The ACK for the 2xx, re-sent whenever the 2xx is retransmitted.
    ack: Option<Vec<u8>>,
}

impl Ua {
    fn transport_name(&self) -> &'static str {
        match self.tr {
            Transport::Udp(_) => "UDP",
            Transport::Tcp { .. } => "TCP",
        }
    }

    fn is_udp(&self) -> bool {
        matches!(self.tr, Transport::Udp(_))
    }

    /// A request within the (possibly not yet established) dialog (RFC 3261 §12.2.1.1).
    fn request(&self, method: Method, cseq: u32, branch: &str) -> Request {
        let uri = self.remote_target.clone().unwrap_or(self.target.clone());
        let mut r = Request::new(method.clone(), uri);
        let host = Host::from(self.local.ip());
        let mut via = Via::new(self.transport_name(), host, Some(self.local.port()), branch);
        via.params.push("rport", None);
        r.headers.push("Via", via.to_string());
        r.headers.push("Max-Forwards", "70");
        for route in &self.route_set {
            r.headers.push("Route", route.as_str());
        }
        r.headers
            .push("From", format!("{};tag={}", self.from, self.from_tag));
        let mut to = NameAddr::new(self.target.clone());
        if let Some(tag) = &self.remote_tag {
            to.set_tag(tag);
        }
        r.headers.push("To", to.to_string());
        r.headers.push("Call-ID", self.call_id.as_str());
        r.headers.push("CSeq", format!("{cseq} {method}"));
        r
    }

    async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        let to = self.next_hop;
        self.tr.send(bytes, to).await
    }

    /// Receives one message and does what is due without the caller: re-ACKs a retransmitted
    /// 2xx, answers BYE/OPTIONS/INFO with 200, re-INVITEs with 488, anything else with 501.
    async fn recv(&mut self) -> io::Result<Incoming> {
        let (bytes, from) = self.tr.recv().await?;
        let msg = match sip::parse(&bytes) {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!("ignoring unparseable SIP message: {e}");
                return Ok(Incoming::Other);
            }
        };
        let req = match msg {
            Message::Response(resp) => {
                let h = &resp.headers;
                let is_2xx_invite = resp.class() == 2
                    && h.cseq().is_ok_and(|c| c.method == Method::Invite)
                    && h.call_id().is_ok_and(|c| c.as_str() == self.call_id);
                if let (true, Some(ack)) = (is_2xx_invite, self.ack.clone()) {
                    self.send(&ack).await?;
                    return Ok(Incoming::Other);
                }
                return Ok(Incoming::Response(resp));
            }
            Message::Request(req) => req,
        };
        if req.method == Method::Ack || sip::validate_request(&req).is_err() {
            return Ok(Incoming::Other);
        }
        let ours = req
            .headers
            .call_id()
            .is_ok_and(|c| c.as_str() == self.call_id);
        let (status, bye) = match &req.method {
            _ if !ours => (481, false),
            Method::Bye => (200, true),
            Method::Options | Method::Info => (200, false),
            Method::Invite => (488, false),
            _ => (501, false),
        };
        let resp = Response::for_request(&req, status, "").with_to_tag(&self.from_tag);
        self.tr.send(&resp.to_bytes(), from).await?;
        Ok(if bye { Incoming::Bye } else { Incoming::Other })
    }
}

/// Whether `resp` belongs to the client transaction with `branch` and `method`.
fn matches(resp: &Response, branch: &str, method: &Method) -> bool {
    resp.headers
        .top_via()
        .is_ok_and(|v| v.branch() == Some(branch))
        && resp.headers.cseq().is_ok_and(|c| &c.method == method)
}

/// How the INVITE transaction ended.
enum InviteOutcome {
    Answered { resp: Response, cancelled: bool },
    Failed { status: u16, reason: String },
}

/// Resolves `host:port` of a SIP URI (default port 5060).
async fn resolve(uri: &Uri) -> Result<SocketAddr, CliError> {
    let sip_uri = uri
        .as_sip()
        .filter(|u| !u.secure)
        .ok_or("only sip: URIs can be dialled")?;
    let port = sip_uri.port.unwrap_or(5060);
    if let Some(ip) = sip_uri.host.ip() {
        return Ok(SocketAddr::new(ip, port));
    }
    let name = format!("{}:{port}", sip_uri.host);
    let mut addrs = tokio::net::lookup_host(name.as_str())
        .await
        .map_err(|e| format!("{name}: {e}"))?;
    addrs
        .next()
        .ok_or_else(|| format!("{name}: no address").into())
}

/// The local IP used to reach `peer` (for an unspecified `--local`).
fn route_ip(peer: SocketAddr) -> io::Result<IpAddr> {
    let any: SocketAddr = if peer.is_ipv6() {
        "[::]:0".parse().map_err(io::Error::other)?
    } else {
        "0.0.0.0:0".parse().map_err(io::Error::other)?
    };
    let s = std::net::UdpSocket::bind(any)?;
    s.connect(peer)?;
    Ok(s.local_addr()?.ip())
}

/// Places the call; returns the summary and the recorded samples.
async fn call(args: &CallArgs, plan: Plan) -> Result<(Summary, Vec<i16>), CliError> {
    let target = Uri::parse(&args.uri).map_err(|e| format!("{}: {e}", args.uri))?;
    let peer = resolve(&target).await?;
    let mut local = args.local;
    if local.ip().is_unspecified() {
        local.set_ip(route_ip(peer)?);
    }
    let tr = if args.tcp {
        let sock = if local.is_ipv6() {
            tokio::net::TcpSocket::new_v6()?
        } else {
            tokio::net::TcpSocket::new_v4()?
        };
        sock.bind(local)?;
        let stream = sock
            .connect(peer)
            .await
            .map_err(|e| format!("connecting to {peer}: {e}"))?;
        local = stream.local_addr()?;
        Transport::Tcp {
            stream,
            buf: Vec::new(),
            peer,
        }
    } else {
        let s = UdpSocket::bind(local).await?;
        local = s.local_addr()?;
        Transport::Udp(s)
    };
    let rtp = UdpSocket::bind(SocketAddr::new(local.ip(), 0)).await?;
    let rtp_port = rtp.local_addr()?.port();
    let host = Host::from(local.ip());
    let from = match Uri::parse(&args.from) {
        Ok(u @ Uri::Sip(_)) => format!("<{u}>"),
        _ => format!("<sip:{}@{host}>", sip::pct_encode_user(&args.from)),
    };
    let tp = if args.tcp { ";transport=tcp" } else { "" };
    let mut ua = Ua {
        tr,
        local,
        next_hop: peer,
        target,
        from,
        from_tag: random_token(),
        call_id: format!("{}@{host}", random_token()),
        contact: format!("<sip:coda-call@{host}:{}{tp}>", local.port()),
        remote_tag: None,
        remote_target: None,
        route_set: Vec::new(),
        ack: None,
    };
    let interrupt = Arc::new(tokio::sync::Notify::new());
    let notify = interrupt.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            notify.notify_one();
        }
    });
    let offer = sdp::offer(
        &LocalMedia::new(local.ip(), rtp_port),
        u64::from(rand::random::<u32>()),
        1,
    );
    let mut summary = Summary::default();
    let (resp, cancelled) = match invite(&mut ua, &offer, &plan, &interrupt).await? {
        InviteOutcome::Failed { status, reason } => {
            summary.status = status;
            summary.reason = reason;
            return Ok((summary, Vec::new()));
        }
        InviteOutcome::Answered { resp, cancelled } => (resp, cancelled),
    };
    summary.status = resp.status;
    summary.reason = resp.reason.clone();
    summary.answered = true;
    // RFC 3261 §12.1.2: the dialog's remote tag, remote target and route set.
    ua.remote_tag = resp
        .headers
        .to()
        .ok()
        .and_then(|t| t.tag().map(str::to_owned));
    ua.remote_target = resp
        .headers
        .contacts()
        .ok()
        .and_then(|c| c.first().map(|c| c.uri.clone()));
    let mut routes = resp.headers.record_routes().unwrap_or_default();
    routes.reverse();
    ua.route_set = routes.iter().map(ToString::to_string).collect();
    if ua.is_udp() {
        let hop = routes.first().map(|r| &r.uri).or(ua.remote_target.as_ref());
        if let Some(hop) = hop {
            match resolve(hop).await {
                Ok(a) => ua.next_hop = a,
                Err(e) => summary
                    .notes
                    .push(format!("next hop {hop}: {e}; using {peer}")),
            }
        }
    }
    let ack = ua
        .request(Method::Ack, 1, &format!("z9hG4bK{}", random_token()))
        .to_bytes();
    ua.send(&ack).await?;
    ua.ack = Some(ack);
    let negotiated = SessionDescription::parse(&resp.body)
        .map_err(|e| e.to_string())
        .and_then(|a| sdp::accept_answer(&offer, &a).map_err(|e| e.to_string()));
    let mut heard = Vec::new();
    let mut hangup_by = "local";
    let started = Instant::now();
    match negotiated {
        Ok(neg) if !cancelled => {
            summary.codec = Some(neg.codec.encoding_name());
            summary.remote_rtp = Some(neg.remote_addr.to_string());
            let remote = media(&mut ua, &rtp, neg, &plan, &interrupt, &mut summary).await?;
            heard = remote.0;
            hangup_by = remote.1;
        }
        Ok(_) => summary
            .notes
            .push("answered after CANCEL; hanging up".into()),
        Err(e) => summary.notes.push(format!("unusable SDP answer: {e}")),
    }
    summary.duration_s = (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
    summary.hangup_by = Some(hangup_by);
    if hangup_by == "local" {
        bye(&mut ua, &mut summary, &interrupt).await?;
    }
    Ok((summary, heard))
}

/// The INVITE client transaction, plus CANCEL on answer timeout or Ctrl-C.
async fn invite(
    ua: &mut Ua,
    offer: &SessionDescription,
    plan: &Plan,
    interrupt: &tokio::sync::Notify,
) -> Result<InviteOutcome, CliError> {
    let branch = format!("z9hG4bK{}", random_token());
    let mut req = ua.request(Method::Invite, 1, &branch);
    req.headers.push("Contact", ua.contact.as_str());
    for (n, v) in &plan.headers {
        req.headers.push(n.as_str(), v.as_str());
    }
    req.headers.push("Content-Type", "application/sdp");
    req.body = offer.to_bytes();
    let bytes = req.to_bytes();
    ua.send(&bytes).await?;
    let start = Instant::now();
    let udp = ua.is_udp();
    let mut retrans = udp.then(|| Retrans::new(start, Duration::MAX));
    let timer_b = start + 64 * T1;
    let answer_by = start + plan.timeout;
    let mut provisional = false;
    // The CANCEL: its bytes, retransmission, and when to give up on a final response.
    let mut cancel: Option<(Vec<u8>, Option<Retrans>, Instant)> = None;
    loop {
        let wake = [
            retrans.as_ref().map(|r| r.next),
            (!provisional).then_some(timer_b),
            cancel.is_none().then_some(answer_by),
            cancel.as_ref().and_then(|c| c.1.as_ref().map(|r| r.next)),
            cancel.as_ref().map(|c| c.2),
        ]
        .into_iter()
        .flatten()
        .min();
        let mut give_up = false;
        tokio::select! {
            m = ua.recv() => {
                let Incoming::Response(resp) = m? else { continue };
                if matches(&resp, &branch, &Method::Cancel) {
                    if let Some(c) = cancel.as_mut() {
                        c.1 = None;
                    }
                    continue;
                }
                if !matches(&resp, &branch, &Method::Invite) {
                    continue;
                }
                retrans = None;
                if resp.is_provisional() {
                    provisional = true;
                    tracing::debug!("{} {}", resp.status, resp.reason);
                    continue;
                }
                if resp.class() == 2 {
                    return Ok(InviteOutcome::Answered { resp, cancelled: cancel.is_some() });
                }
                // RFC 3261 §17.1.1.3: ACK a non-2xx on the INVITE's branch, To from the response.
                let mut ack = ua.request(Method::Ack, 1, &branch);
                if let Some(to) = resp.headers.get("To") {
                    ack.headers.set("To", to);
                }
                ua.send(&ack.to_bytes()).await?;
                return Ok(InviteOutcome::Failed { status: resp.status, reason: resp.reason });
            }
            _ = sleep_opt(wake) => {
                let now = Instant::now();
                if let Some(r) = retrans.as_mut().filter(|r| now >= r.next) {
                    ua.send(&bytes).await?;
                    r.fired(now);
                }
                if let Some((c, Some(r), _)) = cancel.as_mut() {
                    if now >= r.next {
                        let c = c.clone();
                        ua.send(&c).await?;
                        r.fired(now);
                    }
                }
                // RFC 3261 §9.1: CANCEL only once a provisional response has arrived.
                let timed_out = cancel.is_none() && now >= answer_by;
                if timed_out && provisional {
                    cancel = Some(send_cancel(ua, &branch, now).await?);
                }
                give_up = (!provisional && (now >= timer_b || timed_out))
                    || cancel.as_ref().is_some_and(|c| now >= c.2);
            }
            _ = interrupt.notified() => {
                if provisional && cancel.is_none() {
                    cancel = Some(send_cancel(ua, &branch, Instant::now()).await?);
                } else {
                    return Ok(InviteOutcome::Failed {
                        status: 487,
                        reason: "Request Terminated (interrupted)".into(),
                    });
                }
            }
        }
        if give_up {
            let reason = if cancel.is_some() {
                "Request Timeout (no final response after CANCEL)"
            } else {
                "Request Timeout (no response)"
            };
            return Ok(InviteOutcome::Failed {
                status: 408,
                reason: reason.into(),
            });
        }
    }
}

/// Sends CANCEL for the INVITE on `branch` (RFC 3261 §9.1) and returns its transaction state.
async fn send_cancel(
    ua: &mut Ua,
    branch: &str,
    now: Instant,
) -> Result<(Vec<u8>, Option<Retrans>, Instant), CliError> {
    let bytes = ua.request(Method::Cancel, 1, branch).to_bytes();
    ua.send(&bytes).await?;
    let r = ua.is_udp().then(|| Retrans::new(now, T2));
    Ok((bytes, r, now + 64 * T1))
}

/// The media phase. Returns the recorded samples and who hung up.
async fn media(
    ua: &mut Ua,
    rtp: &UdpSocket,
    neg: sdp::Negotiated,
    plan: &Plan,
    interrupt: &tokio::sync::Notify,
    summary: &mut Summary,
) -> Result<(Vec<i16>, &'static str), CliError> {
    let law = match neg.codec {
        Codec::Pcmu => Law::Ulaw,
        Codec::Pcma => Law::Alaw,
    };
    let mut cfg = SenderConfig::new(Ssrc(rand::random()), SeqNo(rand::random()), rand::random());
    cfg.payload_type = neg.pt;
    cfg.event_payload_type = neg.telephone_event_pt;
    let mut sender = RtpSender::new(cfg);
    let can_send = neg.direction.sends() && !neg.remote_addr.ip().is_unspecified();
    if !can_send {
        summary
            .notes
            .push("far end does not receive; not sending RTP".into());
    }
    let mut jb = JitterBuffer::new(JitterConfig {
        audio_payload_type: Some(neg.pt),
        ..JitterConfig::default()
    });
    let mut dtmf_rx = DtmfReceiver::new();
    let max_record = (plan.duration.as_secs_f64() + 10.0) as usize * RATE as usize;
    let mut heard: Vec<i16> = Vec::new();
    let answered = Instant::now();
    let end_at = answered + plan.duration;
    let mut pacer = Pacer::new_20ms(answered);
    let mut next_digit = 0;
    let mut pos = 0usize;
    let frame_len = SAMPLES_PER_FRAME as usize;
    let mut pcm = vec![0i16; frame_len];
    let mut enc = vec![0u8; frame_len];
    let mut out = Vec::with_capacity(crate::rtp::MAX_PACKET_LEN);
    let mut rbuf = vec![0u8; 2048];
    let hangup_by = loop {
        tokio::select! {
            m = ua.recv() => match m {
                Ok(Incoming::Bye) => break "remote",
                Ok(_) => {}
                Err(e) => {
                    summary.notes.push(format!("SIP transport failed: {e}"));
                    break "remote";
                }
            },
            r = rtp.recv_from(&mut rbuf) => {
                let Ok((n, _)) = r else { continue };
                let data = rbuf.get(..n).unwrap_or_default();
                let Ok(pkt) = RtpPacket::parse(data) else { continue };
                if is_rtcp(data) {
                    continue;
                }
                summary.packets_received += 1;
                let now = Instant::now();
                if Some(pkt.payload_type) == neg.telephone_event_pt {
                    if let Some(d) = dtmf_rx.handle_packet(now, &pkt) {
                        if summary.dtmf_received.len() < MAX_DIGITS_REPORTED {
                            summary.dtmf_received.push(d);
                        }
                    }
                    let _ = jb.push_packet(now, &pkt);
                } else if pkt.payload_type == neg.pt {
                    let _ = jb.push_packet(now, &pkt);
                }
            }
            _ = tokio::time::sleep_until(pacer.next_deadline().into()) => {
                let now = Instant::now();
                while let Some((at, digits)) = plan.schedule.get(next_digit) {
                    if now < answered + *at {
                        break;
                    }
                    next_digit += 1;
                    for d in digits.chars() {
                        match sender.send_digit(d, DIGIT_LEN, 10) {
                            Ok(()) => {}
                            Err(EventError::NotNegotiated) => {
                                let note = "telephone-event not negotiated; DTMF skipped";
                                if !summary.notes.iter().any(|n| n == note) {
                                    summary.notes.push(note.into());
                                }
                            }
                            Err(e) => summary.notes.push(format!("DTMF {d}: {e}")),
                        }
                    }
                }
                while pacer.is_due(now) {
                    for (i, s) in pcm.iter_mut().enumerate() {
                        *s = plan.audio.get(pos + i).copied().unwrap_or(0);
                    }
                    law.encode_slice(&pcm, &mut enc);
                    out.clear();
                    if let SentFrame::Event { digit, start: true, .. } =
                        sender.write_frame(&enc, &mut out)
                    {
                        summary.dtmf_sent.push(digit);
                    }
                    if can_send && rtp.send_to(&out, neg.remote_addr).await.is_ok() {
                        summary.packets_sent += 1;
                    }
                    let skipped = pacer.on_sent(now);
                    sender.skip_frames(skipped);
                    let frames = usize::try_from(skipped).unwrap_or(usize::MAX).saturating_add(1);
                    pos = pos.saturating_add(frames.saturating_mul(frame_len));
                }
                while let Some(f) = jb.pop(now) {
                    record(&mut heard, f, law, max_record, &mut jb);
                }
            }
            _ = tokio::time::sleep_until(end_at.into()) => break "local",
            _ = interrupt.notified() => break "local",
        }
    };
    jb.flush();
    while let Some(f) = jb.pop(Instant::now()) {
        record(&mut heard, f, law, max_record, &mut jb);
    }
    Ok((heard, hangup_by))
}

/// Appends one jitter-buffer frame to the recording (gaps as silence), up to `max` samples.
fn record(heard: &mut Vec<i16>, f: Frame, law: Law, max: usize, jb: &mut JitterBuffer) {
    let room = max.saturating_sub(heard.len());
    match f {
        Frame::Audio { payload, .. } => {
            let start = heard.len();
            let n = payload.len().min(room);
            heard.resize(start + n, 0);
            if let (Some(dst), Some(src)) = (heard.get_mut(start..), payload.get(..n)) {
                law.decode_slice(src, dst);
            }
            jb.recycle(payload);
        }
        Frame::Gap { samples, .. } => {
            let n = (samples as usize).min(room);
            heard.resize(heard.len() + n, 0);
        }
    }
}

/// Sends BYE (CSeq 2) and waits for its final response, retransmitting on UDP (at most 64·T1).
async fn bye(
    ua: &mut Ua,
    summary: &mut Summary,
    interrupt: &tokio::sync::Notify,
) -> Result<(), CliError> {
    let branch = format!("z9hG4bK{}", random_token());
    let bytes = ua.request(Method::Bye, 2, &branch).to_bytes();
    ua.send(&bytes).await?;
    let start = Instant::now();
    let give_up = start + 64 * T1;
    let mut retrans = ua.is_udp().then(|| Retrans::new(start, T2));
    loop {
        let wake = retrans.as_ref().map_or(give_up, |r| r.next.min(give_up));
        tokio::select! {
            m = ua.recv() => match m {
                Ok(Incoming::Response(resp)) if matches(&resp, &branch, &Method::Bye) => {
                    if !resp.is_provisional() {
                        if resp.class() != 2 {
                            summary.notes.push(format!("BYE answered {} {}", resp.status, resp.reason));
                        }
                        return Ok(());
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    summary.notes.push(format!("SIP transport failed during BYE: {e}"));
                    return Ok(());
                }
            },
            _ = interrupt.notified() => {
                summary.notes.push("interrupted while waiting for the BYE response".into());
                return Ok(());
            }
            _ = sleep_opt(Some(wake)) => {
                let now = Instant::now();
                if now >= give_up {
                    summary.notes.push("no response to BYE".into());
                    return Ok(());
                }
                if let Some(r) = retrans.as_mut().filter(|r| now >= r.next) {
                    ua.send(&bytes).await?;
                    r.fired(now);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtmf_schedule_parses_and_sorts() {
        let s = parse_dtmf_schedule("10:123, 3.5:#,0:a*").unwrap();
        assert_eq!(
            s,
            vec![
                (Duration::from_millis(0), "A*".to_owned()),
                (Duration::from_millis(3500), "#".to_owned()),
                (Duration::from_secs(10), "123".to_owned()),
            ]
        );
        assert!(parse_dtmf_schedule("").unwrap().is_empty());
    }

    #[test]
    fn dtmf_schedule_rejects_bad_entries() {
        for bad in ["3.5", "x:1", "-1:1", "NaN:1", "1:", "1:12E", "inf:1"] {
            assert!(parse_dtmf_schedule(bad).is_err(), "{bad:?} accepted");
        }
        let long = format!("1:{}", "1".repeat(33));
        assert!(parse_dtmf_schedule(&long).is_err());
    }

    #[test]
    fn header_arg_parses_name_and_value() {
        assert_eq!(
            parse_header_arg("Diversion: <sip:100@x>;reason=no-answer").unwrap(),
            (
                "Diversion".to_owned(),
                "<sip:100@x>;reason=no-answer".to_owned()
            )
        );
        assert_eq!(
            parse_header_arg("X-Test:a:b").unwrap(),
            ("X-Test".to_owned(), "a:b".to_owned())
        );
    }

    #[test]
    fn header_arg_rejects_injection_and_own_headers() {
        for bad in [
            "NoColon",
            "Bad Name: x",
            ": x",
            "X: a\r\nVia: evil",
            "Call-ID: x",
            "i: x",
            "content-length: 0",
        ] {
            assert!(parse_header_arg(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn rfc3261_17_1_1_2_timer_a_doubles_and_non_invite_caps_at_t2() {
        let t0 = Instant::now();
        let mut r = Retrans::new(t0, T2);
        assert_eq!(r.next, t0 + T1);
        let mut intervals = Vec::new();
        for _ in 0..5 {
            let now = r.next;
            r.fired(now);
            intervals.push(r.interval);
        }
        let ms: Vec<u128> = intervals.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [1000, 2000, 4000, 4000, 4000]);
        let mut inv = Retrans::new(t0, Duration::MAX);
        for _ in 0..4 {
            let now = inv.next;
            inv.fired(now);
        }
        assert_eq!(inv.interval, T1 * 16);
    }

    #[test]
    fn rfc3261_17_1_3_response_matching_uses_branch_and_cseq_method() {
        let raw = "SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKabc;rport=5070\r\n\
                   From: <sip:a@x>;tag=1\r\nTo: <sip:b@y>;tag=2\r\nCall-ID: c@x\r\nCSeq: 1 INVITE\r\n\
                   Content-Length: 0\r\n\r\n";
        let Ok(Message::Response(resp)) = sip::parse(raw.as_bytes()) else {
            panic!("test response must parse");
        };
        assert!(matches(&resp, "z9hG4bKabc", &Method::Invite));
        assert!(!matches(&resp, "z9hG4bKabc", &Method::Cancel));
        assert!(!matches(&resp, "z9hG4bKother", &Method::Invite));
    }

    #[test]
    fn recording_fills_gaps_and_respects_the_cap() {
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let mut heard = Vec::new();
        let audio = Frame::Audio {
            timestamp: 0,
            payload: vec![0xFF; 160],
        };
        record(&mut heard, audio, Law::Ulaw, 1000, &mut jb);
        let gap = Frame::Gap {
            timestamp: 160,
            samples: 320,
            lost_packets: 2,
        };
        record(&mut heard, gap, Law::Ulaw, 1000, &mut jb);
        assert_eq!(heard.len(), 480);
        let big = Frame::Gap {
            timestamp: 480,
            samples: 40_000,
            lost_packets: 0,
        };
        record(&mut heard, big, Law::Ulaw, 1000, &mut jb);
        assert_eq!(heard.len(), 1000);
    }
}
