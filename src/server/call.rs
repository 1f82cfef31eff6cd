//! One voicemail call: its RTP socket, the jitter buffer, DTMF, the 20 ms sender clock and the
//! deposit machine, driven by a single tokio task. The task owns everything it touches; the SIP
//! endpoint talks to it through a channel.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use codecs::Law;

use crate::admin::Metrics;
use crate::apps::deposit::{Deposit, Event};
use crate::apps::retrieval::{Event as RetrievalEvent, LoginResult, MessageInfo, Retrieval};
use crate::apps::FRAME;
use crate::media::dtmf_detect::DtmfDetector;
use crate::rtp::rtcp::{parse_compound, write_report, LastSr, NtpTime, RtcpPacket, RtcpTimer};
use crate::rtp::{
    DtmfReceiver, Frame, JitterBuffer, JitterConfig, Pacer, RtpPacket, RtpSender, SenderConfig,
    SeqNo, Ssrc,
};
use crate::store::{Mailbox, MailboxId, NewMessage};

use super::Shared;

/// Messages from the SIP endpoint to a call.
#[derive(Debug)]
pub enum CallCtl {
    /// The caller sent BYE (or CANCEL after answer, or the dialog died).
    Hangup,
    /// The service is shutting down.
    Shutdown,
    /// T.38 was agreed (the far end's re-INVITE, or the answer to ours).
    T38(crate::sdp::t38::NegotiatedT38),
    /// Our re-INVITE to T.38 was refused.
    T38Refused,
}

/// What the call tells the endpoint.
#[derive(Debug)]
pub enum CallReport {
    /// Please send BYE in this dialog.
    Bye { call_id: String },
    /// The call task ended; forget the dialog.
    Ended { call_id: String },
    /// Please re-INVITE the far end to T.38.
    RequestT38 { call_id: String },
}

/// Everything a call needs from the INVITE.
pub struct CallSetup {
    pub call_id: String,
    pub socket: UdpSocket,
    /// RTCP socket on the RTP port + 1 (RFC 3550 §11).
    pub rtcp_socket: UdpSocket,
    pub remote: SocketAddr,
    pub law: Law,
    pub pt: u8,
    pub te_pt: Option<u8>,
    pub flow: Flow,
    /// Set when this call may turn into a fax reception (a voicemail call hearing CNG, or a
    /// T.38 re-INVITE from the far end): where that fax goes.
    pub fax_job: Option<super::fax_call::FaxJob>,
}

/// The call flow a call runs.
pub enum Flow {
    /// Leaving a message in `mailbox`; `message` is the template of what gets stored.
    Deposit {
        deposit: Box<Deposit>,
        mailbox: Mailbox,
        message: NewMessage,
    },
    /// A mailbox owner listening to messages.
    Retrieval(Box<Retrieval>),
}

impl Flow {
    /// For logs.
    pub fn name(&self) -> &'static str {
        match self {
            Flow::Deposit { .. } => "deposit",
            Flow::Retrieval(_) => "retrieval",
        }
    }

    fn poll_audio(&mut self, now: Instant) -> [i16; FRAME] {
        match self {
            Flow::Deposit { deposit, .. } => deposit.poll_audio(now),
            Flow::Retrieval(r) => r.poll_audio(now),
        }
    }

    fn handle_audio(&mut self, now: Instant, samples: &[i16]) {
        match self {
            Flow::Deposit { deposit, .. } => deposit.handle_audio(now, samples),
            Flow::Retrieval(r) => r.handle_audio(now, samples),
        }
    }

    fn handle_dtmf(&mut self, now: Instant, digit: char) {
        match self {
            Flow::Deposit { deposit, .. } => deposit.handle_dtmf(now, digit),
            Flow::Retrieval(r) => r.handle_dtmf(now, digit),
        }
    }

    fn handle_hangup(&mut self, now: Instant) {
        match self {
            Flow::Deposit { deposit, .. } => deposit.handle_hangup(now),
            Flow::Retrieval(r) => r.handle_hangup(now),
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match self {
            Flow::Deposit { deposit, .. } => deposit.poll_timeout(),
            Flow::Retrieval(r) => r.poll_timeout(),
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        match self {
            Flow::Deposit { deposit, .. } => deposit.handle_timeout(now),
            Flow::Retrieval(r) => r.handle_timeout(now),
        }
    }

    fn is_done(&self) -> bool {
        match self {
            Flow::Deposit { deposit, .. } => deposit.is_done(),
            Flow::Retrieval(r) => r.is_done(),
        }
    }

    fn apply(&mut self, now: Instant, reply: Reply) {
        match (self, reply) {
            (Flow::Deposit { deposit, .. }, Reply::Saved(ok)) => deposit.handle_saved(now, ok),
            (Flow::Retrieval(r), Reply::Login(res)) => r.handle_login_result(now, res),
            (Flow::Retrieval(r), Reply::Mailbox(list)) => r.handle_mailbox(now, list),
            (Flow::Retrieval(r), Reply::Audio(id, audio)) => r.handle_message_audio(now, id, audio),
            (Flow::Retrieval(r), Reply::PinChanged(ok)) => r.handle_pin_changed(now, ok),
            _ => {}
        }
    }
}

/// The shell's answers to a flow's requests.
pub enum Reply {
    Saved(bool),
    Login(LoginResult),
    Mailbox(Vec<MessageInfo>),
    Audio(i64, Arc<[i16]>),
    PinChanged(bool),
}

/// Drives one call to its end.
pub async fn run(
    setup: CallSetup,
    shared: Arc<Shared>,
    mut ctl: mpsc::Receiver<CallCtl>,
    report: mpsc::Sender<CallReport>,
) {
    let CallSetup {
        call_id,
        socket,
        rtcp_socket,
        remote,
        law,
        pt,
        te_pt,
        mut flow,
        fax_job,
    } = setup;
    // Listen for a calling fax machine only while a deposit may become a fax.
    let mut cng = fax_job
        .as_ref()
        .and_then(|_| crate::fax::engine::CngDetector::new().ok());
    let mut handoff: Option<super::fax_call::FaxStart> = None;
    let metrics: &Metrics = &shared.metrics;
    let start = Instant::now();
    // A random phase inside the first 20 ms, so that calls arriving in step (a PBX
    // releasing a batch) do not all send in the same millisecond (BENCHMARKS.md, aligned case).
    let phase = Duration::from_micros(rand::random::<u64>() % 20_000);
    let mut pacer = Pacer::new_20ms(start + phase);
    let mut sender_cfg =
        SenderConfig::new(Ssrc(rand::random()), SeqNo(rand::random()), rand::random());
    sender_cfg.payload_type = pt;
    sender_cfg.event_payload_type = te_pt;
    let mut sender = RtpSender::new(sender_cfg);
    let mut jitter = JitterBuffer::new(JitterConfig::default());
    let mut dtmf = DtmfReceiver::new();
    let mut inband = DtmfDetector::new();
    let media_timeout = Duration::from_secs(u64::from(shared.cfg.voicemail.media_timeout_secs));
    let mut last_rx = start;
    let mut buf = vec![0u8; 2048];
    let mut out = Vec::with_capacity(256);
    let mut pcm = [0i16; FRAME * 4];
    let mut enc = [0u8; FRAME];
    let (reply_tx, mut reply_rx) = mpsc::channel::<Reply>(8);
    // The mailbox a retrieval caller logged in to (set by the shell, never by the machine).
    let session = Arc::new(std::sync::Mutex::new(None::<MailboxId>));
    let mut rtcp_timer = RtcpTimer::with_default_interval(start);
    let mut last_sr = LastSr::new();
    let remote_rtcp = SocketAddr::new(remote.ip(), remote.port().wrapping_add(1));
    let cname = format!(
        "coda@{}",
        socket
            .local_addr()
            .map(|a| a.ip().to_string())
            .unwrap_or_default()
    );
    let mut rtcp_buf = vec![0u8; 1500];
    let mut hung_up = false;
    let mut bye_sent = false;

    loop {
        // Drain what the machine wants before waiting again.
        let mut wants_bye = false;
        let mut switch_to_login: Option<String> = None;
        match &mut flow {
            Flow::Deposit {
                deposit,
                mailbox,
                message,
            } => {
                while let Some(ev) = deposit.poll_event() {
                    match ev {
                        Event::Save { audio, cause } => {
                            debug!(call_id, ?cause, samples = audio.len(), "saving message");
                            let msg = NewMessage {
                                audio,
                                ..message.clone()
                            };
                            let shared2 = shared.clone();
                            let mb = mailbox.clone();
                            let tx = reply_tx.clone();
                            tokio::spawn(async move {
                                let ok = super::save_and_notify(shared2, mb, msg).await;
                                let _ = tx.send(Reply::Saved(ok)).await;
                            });
                        }
                        Event::Discarded { cause } => {
                            debug!(call_id, ?cause, "recording too short, discarded");
                            Metrics::inc(&metrics.messages_discarded_total);
                        }
                        Event::Login => switch_to_login = Some(mailbox.id.to_string()),
                        Event::Hangup => wants_bye = true,
                    }
                }
            }
            Flow::Retrieval(r) => {
                while let Some(ev) = r.poll_event() {
                    if matches!(ev, RetrievalEvent::Hangup) {
                        wants_bye = true;
                        continue;
                    }
                    let (shared2, tx, session) =
                        (shared.clone(), reply_tx.clone(), session.clone());
                    tokio::spawn(async move {
                        if let Some(reply) = super::retrieval_ops::run(&shared2, ev, &session).await
                        {
                            let _ = tx.send(reply).await;
                        }
                    });
                }
            }
        }
        if let Some(mb) = switch_to_login {
            // `*` during the greeting (only with `voicemail.star_to_login`): the same call
            // continues as a login to this mailbox; the PIN is asked as always.
            debug!(call_id, "deposit switches to mailbox login");
            flow = super::retrieval_ops::new_flow(&shared, Some(mb));
            continue;
        }
        if wants_bye && !bye_sent && !hung_up {
            bye_sent = true;
            let _ = report
                .send(CallReport::Bye {
                    call_id: call_id.clone(),
                })
                .await;
        }
        if flow.is_done() || handoff.is_some() {
            break;
        }

        let next_audio = pacer.next_deadline();
        let media_deadline = last_rx + media_timeout;
        let mut wake = next_audio
            .min(media_deadline)
            .min(rtcp_timer.poll_timeout());
        if let Some(t) = flow.poll_timeout() {
            wake = wake.min(t);
        }
        if let Some(t) = jitter.poll_timeout() {
            wake = wake.min(t);
        }

        tokio::select! {
            _ = tokio::time::sleep_until(wake.into()) => {}
            r = socket.recv_from(&mut buf) => {
                let now = Instant::now();
                match r {
                    Ok((n, from)) => {
                        if from != remote {
                            Metrics::inc(&metrics.rtp_foreign_total);
                        } else if crate::rtp::is_rtcp(&buf[..n]) {
                            // RTCP on the RTP port (rtcp-mux peers).
                            on_rtcp(&buf[..n], now, &mut last_sr);
                        } else if let Ok(p) = RtpPacket::parse(&buf[..n]) {
                            last_rx = now;
                            Metrics::inc(&metrics.rtp_packets_in_total);
                            if Some(p.payload_type) == te_pt {
                                // Events share the audio sequence space: tell the jitter
                                // buffer so they do not count as lost audio.
                                jitter.push_non_audio(now, p.ssrc, p.seq);
                                if let Some(d) = dtmf.handle_packet(now, &p) {
                                    debug!(call_id, "dtmf event");
                                    flow.handle_dtmf(now, d);
                                }
                            } else if p.payload_type == pt {
                                jitter.push_packet(now, &p);
                            } else {
                                Metrics::inc(&metrics.rtp_foreign_total);
                            }
                        } else {
                            Metrics::inc(&metrics.rtp_foreign_total);
                        }
                    }
                    Err(e) => {
                        // ICMP port unreachable surfaces here on Linux; keep going.
                        debug!(call_id, error = %e, "rtp recv error");
                    }
                }
            }
            c = ctl.recv() => {
                let now = Instant::now();
                match c {
                    Some(CallCtl::Hangup) | None => {
                        hung_up = true;
                        drain_jitter(&mut jitter, now, true, law, &mut pcm, &mut inband, &mut flow);
                        flow.handle_hangup(now);
                    }
                    Some(CallCtl::T38(neg)) => {
                        if fax_job.is_some() && matches!(flow, Flow::Deposit { .. }) && !hung_up {
                            debug!(call_id, "T.38 re-INVITE: voicemail call becomes a fax");
                            handoff = Some(super::fax_call::FaxStart::T38(neg));
                        }
                    }
                    Some(CallCtl::T38Refused) => {}
                    Some(CallCtl::Shutdown) => {
                        drain_jitter(&mut jitter, now, true, law, &mut pcm, &mut inband, &mut flow);
                        flow.handle_hangup(now);
                        if !bye_sent && !hung_up {
                            bye_sent = true;
                            let _ = report.send(CallReport::Bye { call_id: call_id.clone() }).await;
                        }
                        hung_up = true;
                    }
                }
            }
            r = rtcp_socket.recv_from(&mut rtcp_buf) => {
                if let Ok((n, from)) = r {
                    if from.ip() == remote.ip() {
                        on_rtcp(&rtcp_buf[..n], Instant::now(), &mut last_sr);
                    }
                }
            }
            Some(reply) = reply_rx.recv() => {
                flow.apply(Instant::now(), reply);
            }
        }

        let now = Instant::now();
        let heard_cng = drain_jitter_with_cng(
            &mut jitter,
            now,
            law,
            &mut pcm,
            &mut inband,
            &mut flow,
            &mut cng,
        );
        if heard_cng && handoff.is_none() && !hung_up && matches!(flow, Flow::Deposit { .. }) {
            debug!(
                call_id,
                "fax tone (CNG) heard: voicemail call becomes a fax"
            );
            handoff = Some(super::fax_call::FaxStart::Audio {
                remote,
                law,
                pt,
                sender: None,
            });
            continue;
        }
        if let Some(t) = flow.poll_timeout() {
            if now >= t {
                flow.handle_timeout(now);
            }
        }
        if !hung_up && now >= last_rx + media_timeout {
            warn!(
                call_id,
                "no RTP for {}s, ending call",
                media_timeout.as_secs()
            );
            flow.handle_hangup(now);
            hung_up = true;
            if !bye_sent {
                bye_sent = true;
                let _ = report
                    .send(CallReport::Bye {
                        call_id: call_id.clone(),
                    })
                    .await;
            }
        }
        if rtcp_timer.handle_timeout(now) && !hung_up {
            // Sender report with a reception block for what we received (RFC 3550 §6.4).
            let since_epoch = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            let info = sender.sender_info(NtpTime::from_unix(since_epoch));
            let block = jitter
                .reception_report()
                .map(|r| last_sr.report_block(now, &r));
            out.clear();
            write_report(&mut out, sender.ssrc(), Some(&info), block.as_ref(), &cname);
            let _ = rtcp_socket.send_to(&out, remote_rtcp).await;
        }
        while pacer.is_due(now) && !hung_up {
            let frame = flow.poll_audio(now);
            law.encode_slice(&frame, &mut enc);
            out.clear();
            sender.write_frame(&enc, &mut out);
            if socket.send_to(&out, remote).await.is_ok() {
                Metrics::inc(&metrics.rtp_packets_out_total);
            }
            let skipped = pacer.on_sent(now);
            if skipped > 0 {
                // After a stall, keep RTP time in step with real time (the machine's audio
                // is simply not heard for the skipped frames).
                sender.skip_frames(skipped);
            }
        }
    }
    if let (Some(mut start), Some(job)) = (handoff, fax_job) {
        if let super::fax_call::FaxStart::Audio { sender: s, .. } = &mut start {
            *s = Some(Box::new(sender));
        }
        let setup = super::fax_call::FaxCallSetup {
            call_id,
            socket,
            start,
            job,
        };
        super::fax_call::run(setup, shared, ctl, report).await;
        return;
    }
    let _ = report.send(CallReport::Ended { call_id }).await;
}

/// Notes the peer's sender reports (for LSR/DLSR in ours); anything else is ignored.
fn on_rtcp(datagram: &[u8], now: Instant, last_sr: &mut LastSr) {
    for pkt in parse_compound(datagram).flatten() {
        if let RtcpPacket::SenderReport { info, .. } = pkt {
            last_sr.on_sender_report(now, &info);
        }
    }
}

/// Like [`drain_jitter`], also feeding the fax tone detector; true once CNG was heard.
fn drain_jitter_with_cng(
    jitter: &mut JitterBuffer,
    now: Instant,
    law: Law,
    pcm: &mut [i16],
    inband: &mut DtmfDetector,
    flow: &mut Flow,
    cng: &mut Option<crate::fax::engine::CngDetector>,
) -> bool {
    let Some(det) = cng.as_mut() else {
        drain_jitter(jitter, now, false, law, pcm, inband, flow);
        return false;
    };
    let mut heard = false;
    while let Some(f) = jitter.pop(now) {
        match f {
            Frame::Audio { payload, .. } => {
                let n = payload.len().min(pcm.len());
                law.decode_slice(&payload[..n], &mut pcm[..n]);
                heard |= det.process(&pcm[..n]);
                inband.process(&pcm[..n], |hit| flow.handle_dtmf(now, hit.digit));
                flow.handle_audio(now, &pcm[..n]);
                jitter.recycle(payload);
            }
            Frame::Gap { samples, .. } => {
                let silence = [0i16; FRAME];
                let mut left = samples as usize;
                while left > 0 {
                    let k = left.min(FRAME);
                    flow.handle_audio(now, &silence[..k]);
                    left -= k;
                }
            }
        }
        if heard {
            break;
        }
    }
    heard
}

/// Moves decoded audio from the jitter buffer into the machine (and the in-band detector).
fn drain_jitter(
    jitter: &mut JitterBuffer,
    now: Instant,
    flush: bool,
    law: Law,
    pcm: &mut [i16],
    inband: &mut DtmfDetector,
    flow: &mut Flow,
) {
    if flush {
        jitter.flush();
    }
    while let Some(f) = jitter.pop(now) {
        match f {
            Frame::Audio { payload, .. } => {
                let n = payload.len().min(pcm.len());
                law.decode_slice(&payload[..n], &mut pcm[..n]);
                inband.process(&pcm[..n], |hit| flow.handle_dtmf(now, hit.digit));
                flow.handle_audio(now, &pcm[..n]);
                jitter.recycle(payload);
            }
            Frame::Gap { samples, .. } => {
                let silence = [0i16; FRAME];
                let mut left = samples as usize;
                while left > 0 {
                    let k = left.min(FRAME);
                    flow.handle_audio(now, &silence[..k]);
                    left -= k;
                }
            }
        }
    }
}
