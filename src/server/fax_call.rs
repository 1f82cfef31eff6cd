//! One fax reception call: RTP (G.711) or UDPTL (T.38) on the call's media socket, the 20 ms
//! clock, and the [`FaxReceive`] machine; at the end the received TIFF becomes a PDF, the fax
//! is recorded and its mail queued (on the blocking pool), then the task reports `Ended`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tracing::{debug, error, info, warn};

use codecs::Law;

use crate::admin::Metrics;
use crate::apps::fax_rx::{Event, FaxReceive, FaxRxConfig, FaxRxResult};
use crate::fax::{pdf, tiff};
use crate::mail::fax::{fax_mail, FaxMailFacts};
use crate::mail::to_queued;
use crate::rtp::{Frame, JitterBuffer, JitterConfig, Pacer, RtpPacket, RtpSender, SenderConfig};
use crate::rtp::{SeqNo, Ssrc};
use crate::sdp::t38::NegotiatedT38;
use crate::store::{Mailbox, NewFax};

use super::call::{CallCtl, CallReport};
use super::Shared;

/// Where a fax number's faxes go.
#[derive(Clone, Debug)]
pub enum FaxTarget {
    /// A mailbox: its owner's addresses and name.
    Mailbox(Mailbox),
    /// A plain mail address.
    Address(String),
}

/// What the endpoint knows about the fax call.
#[derive(Clone, Debug)]
pub struct FaxJob {
    /// The fax number called.
    pub number: String,
    pub target: FaxTarget,
    /// Caller as stored (digits) and as shown.
    pub caller: String,
    pub caller_display: String,
}

/// How the call's media starts.
pub enum FaxStart {
    /// G.711 audio to this RTP address.
    Audio {
        remote: SocketAddr,
        law: Law,
        pt: u8,
        /// The RTP stream of a voicemail call that turned into a fax: the fax audio continues
        /// it (same SSRC, sequence and timestamps), as one source should (RFC 3550 §8).
        sender: Option<Box<RtpSender>>,
    },
    /// T.38 agreed in the INVITE itself.
    T38(NegotiatedT38),
}

/// Everything the task needs.
pub struct FaxCallSetup {
    pub call_id: String,
    pub socket: UdpSocket,
    pub start: FaxStart,
    pub job: FaxJob,
}

/// The machine's configuration from the service configuration.
pub fn rx_config(shared: &Shared) -> FaxRxConfig {
    let f = &shared.cfg.fax;
    FaxRxConfig {
        ident: f.ident.clone(),
        ecm: f.ecm,
        v17: f.v17,
        t38_request: f.t38 && f.t38_request,
        t38_request_after_ms: f.t38_request_delay_ms,
        udptl_redundancy: f.udptl_redundancy,
        max_duration_secs: f.max_duration_secs,
        max_pages: f.max_pages,
        page_header: None,
    }
}

/// Drives one fax call to its end.
pub async fn run(
    setup: FaxCallSetup,
    shared: Arc<Shared>,
    mut ctl: mpsc::Receiver<CallCtl>,
    report: mpsc::Sender<CallReport>,
) {
    let FaxCallSetup {
        call_id,
        socket,
        start,
        job,
    } = setup;
    let metrics: &Metrics = &shared.metrics;
    let dir = shared.cfg.storage.data_dir.join("spool").join("fax-rx");
    if let Err(e) = std::fs::create_dir_all(&dir) {
        error!(call_id, error = %e, "cannot create the fax spool");
    }
    let tiff_path = dir.join(format!("{:016x}.tif", rand::random::<u64>()));
    let started_unix = unix_now();
    let mut udptl_remote: Option<SocketAddr> = None;
    let (mut rtp_remote, law, pt) = match &start {
        FaxStart::Audio {
            remote, law, pt, ..
        } => (Some(*remote), *law, *pt),
        FaxStart::T38(n) => {
            udptl_remote = Some(n.remote);
            (None, Law::Ulaw, 0)
        }
    };
    let made = match &start {
        FaxStart::Audio { .. } => FaxReceive::new(rx_config(&shared), &tiff_path),
        FaxStart::T38(n) => FaxReceive::new_t38(rx_config(&shared), &tiff_path, n),
    };
    let mut fax = match made {
        Ok(f) => f,
        Err(e) => {
            error!(call_id, error = %e, "cannot start fax reception");
            let _ = report
                .send(CallReport::Bye {
                    call_id: call_id.clone(),
                })
                .await;
            let _ = report.send(CallReport::Ended { call_id }).await;
            return;
        }
    };
    info!(call_id, t38 = !fax.is_audio(), "fax reception started");
    Metrics::inc(&metrics.fax_rx_total);

    let now0 = Instant::now();
    let mut pacer = Pacer::new_20ms(now0);
    let mut sender = match start {
        FaxStart::Audio {
            sender: Some(s), ..
        } => *s,
        _ => {
            let mut cfg =
                SenderConfig::new(Ssrc(rand::random()), SeqNo(rand::random()), rand::random());
            cfg.payload_type = pt;
            RtpSender::new(cfg)
        }
    };
    // Fax needs steady timing, not low delay: a fixed 100 ms playout delay, no stretching.
    let mut jitter = JitterBuffer::new(JitterConfig {
        delay: Duration::from_millis(100),
        audio_payload_type: Some(pt),
        ..JitterConfig::default()
    });
    let media_timeout = Duration::from_secs(u64::from(shared.cfg.voicemail.media_timeout_secs));
    let mut last_rx = now0;
    let mut buf = vec![0u8; 4096];
    let mut out = Vec::with_capacity(256);
    let mut enc = [0u8; 160];
    let mut pcm = [0i16; 640];
    let mut hung_up = false;
    let mut bye_sent = false;
    let mut finalize: Option<tokio::task::JoinHandle<()>> = None;
    let max_bytes = u64::from(shared.cfg.fax.max_document_mb) * 1024 * 1024;
    let mut steps: u64 = 0;

    loop {
        while let Some(ev) = fax.poll_event() {
            match ev {
                Event::RequestT38 => {
                    debug!(call_id, "asking the far end for T.38");
                    let _ = report
                        .send(CallReport::RequestT38 {
                            call_id: call_id.clone(),
                        })
                        .await;
                }
                Event::Finished(result) => {
                    finalize = Some(spawn_store(
                        &shared,
                        &job,
                        &tiff_path,
                        &call_id,
                        started_unix,
                        result,
                    ));
                }
                Event::Hangup => {
                    if !bye_sent && !hung_up {
                        bye_sent = true;
                        let _ = report
                            .send(CallReport::Bye {
                                call_id: call_id.clone(),
                            })
                            .await;
                    }
                }
            }
        }
        if fax.is_done() {
            break;
        }
        let wake = pacer
            .next_deadline()
            .min(last_rx + media_timeout)
            .min(jitter.poll_timeout().unwrap_or(last_rx + media_timeout));
        tokio::select! {
            _ = tokio::time::sleep_until(wake.into()) => {}
            r = socket.recv_from(&mut buf) => {
                let now = Instant::now();
                if let Ok((n, from)) = r {
                    let data = &buf[..n];
                    if fax.is_audio() {
                        if Some(from) == rtp_remote {
                            if let Ok(p) = RtpPacket::parse(data) {
                                last_rx = now;
                                Metrics::inc(&metrics.rtp_packets_in_total);
                                if p.payload_type == pt {
                                    jitter.push_packet(now, &p);
                                } else {
                                    jitter.push_non_audio(now, p.ssrc, p.seq);
                                }
                            }
                        } else {
                            Metrics::inc(&metrics.rtp_foreign_total);
                        }
                    } else if udptl_remote.is_some_and(|u| u.ip() == from.ip()) {
                        last_rx = now;
                        // Late RTP after the switch is not UDPTL: skip what parses as our
                        // audio stream's packets.
                        let late_rtp = RtpPacket::parse(data)
                            .is_ok_and(|p| p.payload_type == pt && p.payload.len() == 160);
                        if !late_rtp {
                            Metrics::inc(&metrics.udptl_datagrams_in_total);
                            fax.handle_datagram(data);
                        }
                    } else {
                        Metrics::inc(&metrics.rtp_foreign_total);
                    }
                }
            }
            c = ctl.recv() => {
                match c {
                    Some(CallCtl::Hangup) | None => {
                        hung_up = true;
                        fax.handle_hangup();
                    }
                    Some(CallCtl::Shutdown) => {
                        fax.handle_hangup();
                    }
                    Some(CallCtl::T38(neg)) => {
                        match fax.switch_to_t38(&neg) {
                            Ok(()) => {
                                info!(call_id, version = neg.version, "fax switched to T.38");
                                udptl_remote = Some(neg.remote);
                                rtp_remote = None;
                                last_rx = Instant::now();
                            }
                            Err(e) => warn!(call_id, error = %e, "T.38 switch refused"),
                        }
                    }
                    Some(CallCtl::T38Refused) => fax.t38_refused(),
                }
            }
        }
        let now = Instant::now();
        if fax.is_audio() {
            while let Some(f) = jitter.pop(now) {
                match f {
                    Frame::Audio { payload, .. } => {
                        let n = payload.len().min(pcm.len());
                        law.decode_slice(&payload[..n], &mut pcm[..n]);
                        fax.handle_audio(&pcm[..n]);
                        jitter.recycle(payload);
                    }
                    Frame::Gap { samples, .. } => fax.handle_audio_gap(samples as usize),
                }
            }
        }
        if !hung_up && now >= last_rx + media_timeout {
            warn!(
                call_id,
                "no media for {}s, ending the fax call",
                media_timeout.as_secs()
            );
            fax.handle_hangup();
        }
        while pacer.is_due(now) && !fax.is_done() {
            steps += 1;
            if steps.is_multiple_of(50) {
                // Once a second: the document spandsp is writing must stay under the limit.
                let size = std::fs::metadata(&tiff_path).map(|m| m.len()).unwrap_or(0);
                if size > max_bytes {
                    warn!(
                        call_id,
                        size, "received fax document too large; cutting it off"
                    );
                    fax.handle_too_large();
                    break;
                }
            }
            if let Some(frame) = fax.step() {
                if let Some(to) = rtp_remote.filter(|_| !hung_up) {
                    law.encode_slice(&frame, &mut enc);
                    out.clear();
                    sender.write_frame(&enc, &mut out);
                    if socket.send_to(&out, to).await.is_ok() {
                        Metrics::inc(&metrics.rtp_packets_out_total);
                    }
                }
            }
            let skipped = pacer.on_sent(now);
            if skipped > 0 {
                // After a stall: RTP time follows real time; T.30 will likely fail (audio
                // fax does not survive gaps) and say so.
                sender.skip_frames(skipped);
            }
        }
        while let Some(d) = fax.poll_datagram() {
            if let Some(to) = udptl_remote.filter(|_| !hung_up) {
                if socket.send_to(&d, to).await.is_ok() {
                    Metrics::inc(&metrics.udptl_datagrams_out_total);
                }
            }
        }
    }
    // Drain the last events (Finished comes with the final step).
    while let Some(ev) = fax.poll_event() {
        if let Event::Finished(result) = ev {
            finalize = Some(spawn_store(
                &shared,
                &job,
                &tiff_path,
                &call_id,
                started_unix,
                result,
            ));
        } else if matches!(ev, Event::Hangup) && !bye_sent && !hung_up {
            bye_sent = true;
            let _ = report
                .send(CallReport::Bye {
                    call_id: call_id.clone(),
                })
                .await;
        }
    }
    if let Some(f) = finalize {
        let _ = f.await;
    }
    let _ = report.send(CallReport::Ended { call_id }).await;
}

/// Runs [`store_fax`] on the blocking pool.
fn spawn_store(
    shared: &Arc<Shared>,
    job: &FaxJob,
    tiff_path: &std::path::Path,
    call_id: &str,
    started_unix: i64,
    result: Box<FaxRxResult>,
) -> tokio::task::JoinHandle<()> {
    let (shared, job, path, cid) = (
        shared.clone(),
        job.clone(),
        tiff_path.to_path_buf(),
        call_id.to_owned(),
    );
    tokio::task::spawn_blocking(move || {
        store_fax(&shared, &job, &path, &cid, started_unix, &result)
    })
}

/// Turns the received TIFF into a PDF, records the fax and queues its mail. Failures here are
/// ours (disk, database): logged as errors; the TIFF is kept for the coordinator then.
fn store_fax(
    shared: &Shared,
    job: &FaxJob,
    tiff_path: &PathBuf,
    call_id: &str,
    started_unix: i64,
    result: &FaxRxResult,
) {
    let metrics = &shared.metrics;
    let pages = std::fs::read(tiff_path)
        .ok()
        .and_then(|b| tiff::read_pages(&b).ok())
        .unwrap_or_default();
    let meta = pdf::PdfMeta {
        title: format!("Fax from {}", job.caller_display),
        producer: "coda".into(),
        creation_date: chrono::DateTime::from_timestamp(started_unix, 0)
            .map(|t| t.format("D:%Y%m%d%H%M%SZ").to_string()),
    };
    let pdf_bytes = if pages.is_empty() {
        None
    } else {
        match pdf::pages_to_pdf(&pages, &meta) {
            Ok(b) => Some(b),
            Err(e) => {
                error!(call_id, error = %e, "received pages could not be converted to PDF");
                None
            }
        }
    };
    let pages_n = u32::try_from(pages.len()).unwrap_or(u32::MAX);
    let clean = result.clean() && pages_n > 0;
    let mut text = result.explanation.clone();
    if result.outcome.ok() && pages_n < result.pages {
        text.push_str(" Some pages could not be read back from the fax store.");
    }
    let fax = NewFax {
        number: job.number.clone(),
        mailbox: match &job.target {
            FaxTarget::Mailbox(m) => Some(m.id.clone()),
            FaxTarget::Address(_) => None,
        },
        caller: job.caller.clone(),
        remote_ident: result.outcome.remote_ident.clone(),
        received_unix: started_unix,
        duration_ms: i64::try_from(result.duration_ms).unwrap_or(i64::MAX),
        pages: pages_n,
        result_code: result.outcome.code,
        result_text: text,
        degraded: result.degraded,
        transport: match result.transport {
            crate::apps::fax_rx::FaxTransport::Audio => "audio".into(),
            crate::apps::fax_rx::FaxTransport::T38 => "t38".into(),
        },
        bit_rate: result.outcome.stats.bit_rate,
        ecm: result.outcome.stats.ecm,
        call_id: call_id.to_owned(),
    };
    let (to, name): (Vec<String>, Option<String>) = match &job.target {
        FaxTarget::Mailbox(m) => (m.recipients().map(str::to_owned).collect(), m.name.clone()),
        FaxTarget::Address(a) => (vec![a.clone()], None),
    };
    let facts = FaxMailFacts {
        to: &to,
        name: name.as_deref(),
        caller_display: &job.caller_display,
        transport: result.transport.as_str(),
        clean,
        note: None,
    };
    let mail_cfg = &shared.cfg.mail;
    let build_mail = |fax: &NewFax, facts: &FaxMailFacts<'_>| match fax_mail(
        mail_cfg,
        fax,
        facts,
        pdf_bytes.as_deref(),
    ) {
        Ok(m) => Some(to_queued("fax", &m)),
        Err(e) => {
            warn!(call_id, error = %e, "fax mail could not be built");
            None
        }
    };
    let mut saved = shared
        .store
        .save_fax_with_mail(&fax, pdf_bytes.as_deref(), |_| build_mail(&fax, &facts));
    if let (Err(e), Some(_)) = (&saved, &pdf_bytes) {
        // The spool would not take the PDF (disk full, permissions): still record the fax and
        // send the owner the PDF by mail, saying it is not kept on the server.
        error!(call_id, error = %e, "fax PDF could not be written to the spool");
        const NOTE: &str =
            "The fax server could not keep a copy of this fax: the attached PDF is the only one.";
        let mut fax2 = fax.clone();
        fax2.result_text.push(' ');
        fax2.result_text.push_str(NOTE);
        let facts2 = FaxMailFacts {
            note: Some(NOTE),
            ..facts
        };
        saved = shared
            .store
            .save_fax_with_mail(&fax2, None, |_| build_mail(&fax2, &facts2));
    }
    match saved {
        Ok(rec) => {
            info!(
                call_id,
                fax = rec.id,
                pages = pages_n,
                code = result.outcome.code,
                clean,
                "fax stored"
            );
            if clean {
                Metrics::inc(&metrics.fax_rx_ok_total);
            } else {
                Metrics::inc(&metrics.fax_rx_failed_total);
            }
            if rec.pdf_path.is_some() || pages.is_empty() {
                let _ = std::fs::remove_file(tiff_path);
            }
            shared.outbox_wake.notify_one();
        }
        Err(e) => {
            Metrics::inc(&metrics.fax_rx_failed_total);
            error!(call_id, error = %e, tiff = %tiff_path.display(),
                   "fax could not be stored; the received TIFF is kept");
        }
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
