//! The SIP endpoint: one task owns the dialogs and server-side transaction state, parses what
//! the UDP reader and TCP connections deliver, answers, and starts a call task per INVITE.
//!
//! Responses go back where the request came from (RFC 3261 §18.2.2 with `rport`, RFC 3581):
//! for UDP the source address, for TCP the same connection.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, trace, warn};

use crate::admin::Metrics;
use crate::apps::deposit::{Deposit, DepositConfig, DepositSetup, Greetings};
use crate::apps::{mwi, routing};
use crate::numbering::Caller;
use crate::sdp::{self, Codec, LocalMedia, SessionDescription};
use crate::sip::transaction::{
    TimerConfig, Transaction, TransactionKey, TransactionTable, TxEvent, Uas2xxRetransmitter,
};
use crate::sip::{self, Message, Method, NameAddr, Request, Response, Uri};
use crate::store::{GreetingKind, MailboxId, NewMessage};

use super::call::{self, CallCtl, CallReport, CallSetup, Flow};
use super::fax_call::{self, FaxCallSetup, FaxJob, FaxStart, FaxTarget};
use super::Shared;
use crate::sdp::t38::{self as t38sdp, NegotiatedT38, T38Local};

/// Where a message came from, and how to answer.
#[derive(Clone, Debug)]
pub enum Transport {
    Udp,
    Tcp(mpsc::Sender<Vec<u8>>),
}

impl Transport {
    fn name(&self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp(_) => "TCP",
        }
    }
}

/// Inputs of the endpoint task.
pub enum Input {
    Packet {
        bytes: Vec<u8>,
        from: SocketAddr,
        transport: Transport,
    },
}

/// Reads SIP datagrams.
pub async fn udp_reader(sock: Arc<UdpSocket>, tx: mpsc::Sender<Input>) {
    let mut buf = vec![0u8; 65536];
    loop {
        match sock.recv_from(&mut buf).await {
            Ok((n, from)) => {
                let input = Input::Packet {
                    bytes: buf[..n].to_vec(),
                    from,
                    transport: Transport::Udp,
                };
                if tx.send(input).await.is_err() {
                    return;
                }
            }
            Err(e) => debug!(error = %e, "SIP/UDP recv error"),
        }
    }
}

/// Accepts SIP/TCP connections.
pub async fn tcp_acceptor(listener: TcpListener, tx: mpsc::Sender<Input>) {
    loop {
        match listener.accept().await {
            Ok((stream, from)) => {
                tokio::spawn(tcp_connection(stream, from, tx.clone()));
            }
            Err(e) => {
                warn!(error = %e, "SIP/TCP accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Frames messages on one TCP connection (Content-Length framing) and writes answers back.
async fn tcp_connection(stream: TcpStream, from: SocketAddr, tx: mpsc::Sender<Input>) {
    let (mut rd, mut wr) = stream.into_split();
    let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(64);
    tokio::spawn(async move {
        while let Some(b) = out_rx.recv().await {
            if wr.write_all(&b).await.is_err() {
                break;
            }
        }
    });
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    let mut chunk = vec![0u8; 8192];
    loop {
        loop {
            let skip = sip::message::keepalive_len(&buf);
            if skip > 0 {
                buf.drain(..skip);
            }
            match sip::frame(&buf) {
                Ok(Some(n)) => {
                    let bytes: Vec<u8> = buf.drain(..n).collect();
                    let input = Input::Packet {
                        bytes,
                        from,
                        transport: Transport::Tcp(out_tx.clone()),
                    };
                    if tx.send(input).await.is_err() {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    debug!(error = %e, "SIP/TCP framing error, closing connection");
                    let _ = out_tx
                        .send(b"SIP/2.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n".to_vec())
                        .await;
                    return;
                }
            }
        }
        match tokio::time::timeout(Duration::from_secs(300), rd.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// A confirmed or early dialog where coda is the UAS.
struct Dialog {
    local_tag: String,
    /// The INVITE's From (our To in requests we send).
    remote_party: String,
    /// The INVITE's To with our tag (our From in requests we send).
    local_party: String,
    remote_target: Uri,
    route_set: Vec<String>,
    peer: SocketAddr,
    transport: Transport,
    next_cseq: u32,
    ctl: mpsc::Sender<CallCtl>,
    /// 200 OK still being retransmitted until ACK (RFC 3261 §13.3.1.4).
    pending_2xx: Option<Uas2xxRetransmitter>,
    /// Our last SDP, re-sent on re-INVITE.
    local_sdp: Vec<u8>,
    sdp_version: u64,
    sdp_session: u64,
    /// A call whose INVITE had no SDP: coda offered in the 200, media waits for the ACK.
    pending: Option<PendingCall>,
    /// Our media port (RTP, and UDPTL after a switch to T.38).
    media_port: u16,
    /// The call may switch to T.38 (a fax call, or a voicemail call allowed to become one).
    fax_ok: bool,
    /// Our own re-INVITE is in progress (a crossing one from the peer gets 491).
    reinvite_pending: bool,
    /// When to retry our re-INVITE after a 491 (RFC 3261 §14.1).
    reinvite_retry_at: Option<Instant>,
    /// The SDP of our re-INVITE in flight (becomes `local_sdp` on 2xx).
    reinvite_offer: Option<Vec<u8>>,
}

impl Dialog {
    /// Where requests we send in this dialog go (RFC 3261 §12.2.1.1).
    fn route(&self, call_id: &str) -> DialogRoute {
        DialogRoute {
            call_id: call_id.to_owned(),
            local_party: self.local_party.clone(),
            remote_party: self.remote_party.clone(),
            remote_target: self.remote_target.clone(),
            route_set: self.route_set.clone(),
            peer: self.peer,
            transport: self.transport.clone(),
        }
    }
}

/// Where requests inside a dialog go and what they carry.
#[derive(Clone)]
struct DialogRoute {
    call_id: String,
    local_party: String,
    remote_party: String,
    remote_target: Uri,
    route_set: Vec<String>,
    peer: SocketAddr,
    transport: Transport,
}

/// A message-summary subscription's dialog.
struct SubDialog {
    route: DialogRoute,
    next_cseq: u32,
}

/// What a call task needs besides the negotiated media.
struct CallParts {
    call_id: String,
    socket: UdpSocket,
    rtcp_socket: UdpSocket,
    job: Job,
    ctl_rx: mpsc::Receiver<CallCtl>,
}

/// What an answered call does.
enum Job {
    /// Voicemail deposit or retrieval (audio).
    Voice(Flow),
    /// Fax reception.
    Fax(FaxJob),
}

impl Job {
    fn name(&self) -> &'static str {
        match self {
            Job::Voice(f) => f.name(),
            Job::Fax(_) => "fax",
        }
    }
}

struct PendingCall {
    parts: CallParts,
    offer: SessionDescription,
}

pub struct Endpoint {
    shared: Arc<Shared>,
    udp: Arc<UdpSocket>,
    report_tx: mpsc::Sender<CallReport>,
    report_rx: Option<mpsc::Receiver<CallReport>>,
    dialogs: HashMap<String, Dialog>,
    /// RFC 3261 §17 transactions (sans-IO machines) and where each one's messages go.
    txs: TransactionTable,
    tx_dest: HashMap<TransactionKey, (SocketAddr, Transport)>,
    timers: TimerConfig,
    /// Message-waiting subscriptions and the channel that says a mailbox changed.
    mwi: mwi::Registry<SubDialog>,
    changed_rx: Option<mpsc::UnboundedReceiver<MailboxId>>,
    next_rtp_port: u16,
    stopping: bool,
    /// Our re-INVITE client transactions and the dialog each belongs to.
    reinvites: HashMap<TransactionKey, String>,
}

impl Endpoint {
    pub fn new(
        shared: Arc<Shared>,
        udp: Arc<UdpSocket>,
        changed_rx: mpsc::UnboundedReceiver<MailboxId>,
    ) -> Self {
        let (report_tx, report_rx) = mpsc::channel(1024);
        let start = shared.cfg.rtp.port_min;
        Self {
            shared,
            udp,
            report_tx,
            report_rx: Some(report_rx),
            dialogs: HashMap::new(),
            txs: TransactionTable::default(),
            tx_dest: HashMap::new(),
            timers: TimerConfig::DEFAULT,
            mwi: mwi::Registry::new(16),
            changed_rx: Some(changed_rx),
            next_rtp_port: start,
            stopping: false,
            reinvites: HashMap::new(),
        }
    }

    pub async fn run(mut self, mut rx: mpsc::Receiver<Input>, mut stop: watch::Receiver<bool>) {
        let mut reports = self.report_rx.take().expect("taken once at start");
        let mut changed = self.changed_rx.take().expect("taken once at start");
        loop {
            let wake = self
                .next_timer()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
            tokio::select! {
                Some(Input::Packet { bytes, from, transport }) = rx.recv() => {
                    self.on_packet(&bytes, from, transport).await
                }
                Some(r) = reports.recv() => self.on_report(r).await,
                Some(mb) = changed.recv() => self.on_mailbox_changed(mb).await,
                _ = tokio::time::sleep_until(wake.into()) => {},
                Ok(()) = stop.changed(), if !self.stopping => {
                    self.stopping = true;
                    for d in self.dialogs.values() {
                        let _ = d.ctl.send(CallCtl::Shutdown).await;
                    }
                }
            }
            self.on_timers(Instant::now()).await;
        }
    }

    fn next_timer(&self) -> Option<Instant> {
        let dialogs = self
            .dialogs
            .values()
            .filter_map(|d| {
                let a = d.pending_2xx.as_ref().and_then(|r| r.poll_timeout());
                [a, d.reinvite_retry_at].into_iter().flatten().min()
            })
            .min();
        [dialogs, self.txs.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    async fn on_timers(&mut self, now: Instant) {
        self.txs.handle_timeout(now);
        for (_key, sub) in self.mwi.handle_timeout(now) {
            // RFC 6665 §4.2.2: a subscription that ran out gets a final NOTIFY.
            self.notify_final(&sub.mailbox, sub.dialog, "terminated;reason=timeout")
                .await;
        }
        let mut sends: Vec<(Vec<u8>, SocketAddr, Transport)> = Vec::new();
        let mut dead_dialogs = Vec::new();
        for (cid, d) in self.dialogs.iter_mut() {
            if let Some(r) = d.pending_2xx.as_mut() {
                if r.poll_timeout().is_some_and(|t| t <= now) {
                    r.handle_timeout(now);
                }
                while let Some(m) = r.poll_transmit() {
                    sends.push((m.to_bytes(), d.peer, d.transport.clone()));
                }
                while let Some(ev) = r.poll_event() {
                    if ev == TxEvent::Timeout {
                        // RFC 3261 §13.3.1.4: no ACK within 64*T1 -> end the dialog with BYE.
                        dead_dialogs.push(cid.clone());
                    }
                }
                if r.is_terminated() {
                    d.pending_2xx = None;
                }
            }
        }
        for (b, to, t) in sends {
            self.send(&b, to, &t).await;
        }
        let retries: Vec<String> = self
            .dialogs
            .iter()
            .filter(|(_, d)| d.reinvite_retry_at.is_some_and(|t| t <= now))
            .map(|(c, _)| c.clone())
            .collect();
        for cid in retries {
            if let Some(d) = self.dialogs.get_mut(&cid) {
                d.reinvite_retry_at = None;
            }
            self.send_t38_reinvite(&cid).await;
        }
        for cid in dead_dialogs {
            warn!(call_id = %cid, "no ACK for 200 OK; ending the call");
            if let Some(d) = self.dialogs.get(&cid) {
                let _ = d.ctl.send(CallCtl::Hangup).await;
            }
            self.send_bye(&cid).await;
        }
        self.flush_transactions().await;
    }

    /// Sends what the transaction machines queued and forgets finished transactions.
    async fn flush_transactions(&mut self) {
        for (key, msg) in self.txs.drain_transmits() {
            if let Some((to, t)) = self.tx_dest.get(&key).cloned() {
                self.send(&msg.to_bytes(), to, &t).await;
            }
        }
        let mut results = Vec::new();
        for (key, ev) in self.txs.drain_events() {
            let reinvite = self.reinvites.get(&key).cloned();
            match ev {
                TxEvent::Response(r) if reinvite.is_some() => {
                    results.push((reinvite.unwrap_or_default(), Some(r)))
                }
                TxEvent::Timeout | TxEvent::TransportError if reinvite.is_some() => {
                    results.push((reinvite.unwrap_or_default(), None))
                }
                TxEvent::Timeout => debug!("transaction timed out"),
                TxEvent::TransportError => debug!("transaction transport error"),
                _ => {}
            }
        }
        for key in self.txs.remove_terminated() {
            self.tx_dest.remove(&key);
            self.reinvites.remove(&key);
        }
        for (call_id, resp) in results {
            Box::pin(self.on_reinvite_result(&call_id, resp)).await;
        }
    }

    async fn send(&self, bytes: &[u8], to: SocketAddr, transport: &Transport) {
        match transport {
            Transport::Udp => {
                if let Err(e) = self.udp.send_to(bytes, to).await {
                    debug!(error = %e, "SIP/UDP send failed");
                }
            }
            Transport::Tcp(tx) => {
                let _ = tx.send(bytes.to_vec()).await;
            }
        }
    }

    async fn on_packet(&mut self, bytes: &[u8], from: SocketAddr, transport: Transport) {
        if bytes.iter().all(|b| matches!(b, b'\r' | b'\n' | 0)) {
            return; // keep-alive
        }
        let msg = match sip::parse(bytes) {
            Ok(m) => m,
            Err(e) => {
                Metrics::inc(&self.shared.metrics.sip_malformed_total);
                trace!(error = %e, "unparseable SIP message dropped");
                // Answer 400 only when enough of a request survives to address a response.
                if let Some(resp) = bad_request_from_fragments(bytes, &e.to_string()) {
                    self.send(&resp, from, &transport).await;
                }
                return;
            }
        };
        match msg {
            Message::Request(req) => self.on_request(req, from, transport).await,
            Message::Response(resp) => self.on_response(resp),
        }
    }

    fn on_response(&mut self, resp: Response) {
        // Responses to our BYEs: the client transaction stops retransmitting.
        if let Err(e) = self.txs.route_response(Instant::now(), resp) {
            trace!(error = %e, "response without a usable Via dropped");
        }
    }

    /// Hands a response to the request's server transaction, which sends it (and re-sends
    /// it for retransmitted requests). Requests without a transaction are answered directly.
    async fn respond(
        &mut self,
        req: &Request,
        resp: Response,
        from: SocketAddr,
        transport: &Transport,
    ) {
        let tx = TransactionKey::server(req)
            .ok()
            .and_then(|k| self.txs.get_mut(&k));
        match tx {
            Some(tx) => tx.send_response(Instant::now(), resp),
            None => self.send(&resp.to_bytes(), from, transport).await,
        }
        self.flush_transactions().await;
    }

    fn base_response(&self, req: &Request, status: u16) -> Response {
        let mut r = Response::for_request(req, status, "");
        r.headers
            .push("Server", self.shared.cfg.sip.server_name.clone());
        r
    }

    async fn reject(&mut self, req: &Request, status: u16, from: SocketAddr, t: &Transport) {
        if req.method == Method::Invite {
            Metrics::inc(&self.shared.metrics.calls_rejected_total);
        }
        let mut r = self
            .base_response(req, status)
            .with_to_tag(&random_token(8));
        if status == 405 || status == 501 {
            r.headers.push("Allow", ALLOW);
        }
        if status == 503 {
            r.headers.push(
                "Retry-After",
                self.shared.cfg.limits.retry_after_secs.to_string(),
            );
        }
        self.respond(req, r, from, t).await;
    }

    async fn on_request(&mut self, req: Request, from: SocketAddr, transport: Transport) {
        let now = Instant::now();
        // RFC 3261 §17.2.3: a request that matches a server transaction (a retransmission, or
        // the ACK of a non-2xx) belongs to the machine, not to the TU.
        if let Ok(key) = TransactionKey::server(&req) {
            if let Some(tx) = self.txs.get_mut(&key) {
                tx.handle_request(now, req);
                self.flush_transactions().await;
                return;
            }
            if req.method != Method::Ack {
                let reliable = matches!(transport, Transport::Tcp(_));
                self.txs.insert(
                    key.clone(),
                    Transaction::server(now, req.clone(), reliable, self.timers),
                );
                self.tx_dest.insert(key, (from, transport.clone()));
            }
        }
        if let Err(e) = sip::validate_request(&req) {
            debug!(error = %e, "invalid request");
            Metrics::inc(&self.shared.metrics.sip_malformed_total);
            if req.method != Method::Ack {
                let status = e.status_code();
                let r = self.base_response(&req, status);
                self.respond(&req, r, from, &transport).await;
            }
            return;
        }
        let call_id = req
            .headers
            .call_id()
            .map(|c| c.as_str().to_owned())
            .unwrap_or_default();
        match req.method {
            Method::Invite => {
                let to_tag = req
                    .headers
                    .to()
                    .ok()
                    .and_then(|t| t.tag().map(str::to_owned));
                let in_dialog = self
                    .dialogs
                    .get(&call_id)
                    .is_some_and(|d| to_tag.as_deref() == Some(d.local_tag.as_str()));
                if in_dialog {
                    return self.on_reinvite(req, call_id, from, transport).await;
                }
                self.on_invite(req, call_id, from, transport).await;
            }
            Method::Ack => {
                let pending = match self.dialogs.get_mut(&call_id) {
                    Some(d) => {
                        if let Some(r) = d.pending_2xx.as_mut() {
                            r.handle_ack(now);
                        }
                        d.pending_2xx = None;
                        d.pending.take()
                    }
                    None => None,
                };
                if let Some(p) = pending {
                    let neg = SessionDescription::parse(&req.body)
                        .ok()
                        .and_then(|answer| sdp::accept_answer(&p.offer, &answer).ok());
                    match neg {
                        Some(neg) => self.start_call(p.parts, neg),
                        None => {
                            debug!(call_id, "ACK without an acceptable answer; ending the call");
                            self.send_bye(&call_id).await;
                        }
                    }
                }
            }
            Method::Bye => {
                if let Some(d) = self.dialogs.remove(&call_id) {
                    let _ = d.ctl.send(CallCtl::Hangup).await;
                    let r = self.base_response(&req, 200);
                    self.respond(&req, r, from, &transport).await;
                } else {
                    self.reject(&req, 481, from, &transport).await;
                }
            }
            Method::Cancel => {
                // RFC 3261 §9.2: coda answers INVITEs at once, so a CANCEL that matches finds a
                // transaction with a final response already sent and has no effect; 200 anyway.
                let matched = TransactionKey::server(&req)
                    .ok()
                    .map(|k| k.cancel_target())
                    .is_some_and(|k| self.txs.get(&k).is_some());
                let status = if matched { 200 } else { 481 };
                let r = self.base_response(&req, status);
                self.respond(&req, r, from, &transport).await;
            }
            Method::Options => {
                let mut r = self.base_response(&req, 200).with_to_tag(&random_token(8));
                r.headers.push("Allow", ALLOW);
                r.headers.push("Accept", "application/sdp");
                self.respond(&req, r, from, &transport).await;
            }
            Method::Info | Method::Update if self.dialogs.contains_key(&call_id) => {
                let r = self.base_response(&req, 200);
                self.respond(&req, r, from, &transport).await;
            }
            Method::Subscribe => self.on_subscribe(req, from, transport).await,
            Method::Register
            | Method::Publish
            | Method::Message
            | Method::Refer
            | Method::Notify
            | Method::Prack
            | Method::Info
            | Method::Update => {
                self.reject(&req, 405, from, &transport).await;
            }
            Method::Other(_) => self.reject(&req, 501, from, &transport).await,
        }
    }

    /// A re-INVITE in one of our dialogs (RFC 3261 §14.2). A T.38 offer switches a fax
    /// (or fax-capable voicemail) call to T.38; anything else keeps the media as it is and
    /// gets our current SDP again (session-timer refreshes, hold attempts).
    async fn on_reinvite(
        &mut self,
        req: Request,
        call_id: String,
        from: SocketAddr,
        transport: Transport,
    ) {
        let t38_ok = self.shared.cfg.fax.t38;
        let local = self.t38_local();
        let media_ip = self.shared.cfg.media_address();
        let Some(d) = self.dialogs.get_mut(&call_id) else {
            return;
        };
        if d.reinvite_pending {
            // Glare: our own re-INVITE is in progress (RFC 3261 §14.2).
            debug!(call_id, "re-INVITE crosses ours: 491");
            return self.reject(&req, 491, from, &transport).await;
        }
        let offer = if req.body.is_empty() {
            None
        } else {
            match SessionDescription::parse(&req.body) {
                Ok(o) => Some(o),
                Err(_) => return self.reject(&req, 400, from, &transport).await,
            }
        };
        let local_is_t38 = SessionDescription::parse(&d.local_sdp)
            .map(|s| has_t38(&s))
            .unwrap_or(false);
        let mut switch: Option<NegotiatedT38> = None;
        let body = match &offer {
            Some(o) if has_t38(o) => {
                if !(t38_ok && d.fax_ok) {
                    return self.reject(&req, 488, from, &transport).await;
                }
                let our = SocketAddr::new(media_ip, d.media_port);
                match t38sdp::answer_t38(o, &local, our) {
                    Ok((answer, neg)) => {
                        switch = Some(neg);
                        d.sdp_version += 1;
                        let bytes = answer.to_bytes();
                        bump_sdp_version(&bytes, d.sdp_session, d.sdp_version)
                    }
                    Err(e) => {
                        debug!(call_id, error = %e, "T.38 re-INVITE refused");
                        return self.reject(&req, 488, from, &transport).await;
                    }
                }
            }
            Some(_) if local_is_t38 => {
                // Back to audio after T.38 is not supported: the fax call keeps T.38.
                return self.reject(&req, 488, from, &transport).await;
            }
            _ => {
                d.sdp_version += 1;
                bump_sdp_version(&d.local_sdp, d.sdp_session, d.sdp_version)
            }
        };
        d.local_sdp = body.clone();
        let ctl = d.ctl.clone();
        let mut r = self.base_response(&req, 200);
        r.headers.push("Contact", self.contact(&transport));
        r.headers.push("Content-Type", "application/sdp");
        r.body = body;
        if let Some(d) = self.dialogs.get_mut(&call_id) {
            // The 2xx is retransmitted until the ACK (RFC 3261 §13.3.1.4).
            d.pending_2xx = Some(Uas2xxRetransmitter::new(
                Instant::now(),
                r.clone(),
                self.timers,
            ));
        }
        self.respond(&req, r, from, &transport).await;
        if let Some(neg) = switch {
            info!(
                call_id,
                version = neg.version,
                "far end switched the call to T.38"
            );
            let _ = ctl.send(CallCtl::T38(neg)).await;
        }
    }

    /// Re-INVITEs the far end to T.38 (coda-initiated switch; RFC 3261 §14.1).
    async fn send_t38_reinvite(&mut self, call_id: &str) {
        let local = self.t38_local();
        let media_ip = self.shared.cfg.media_address();
        let contact_udp = self.contact(&Transport::Udp);
        let Some(d) = self.dialogs.get_mut(call_id) else {
            return;
        };
        if d.reinvite_pending || d.pending_2xx.is_some() {
            // Still waiting for the ACK of a previous INVITE: try again shortly.
            d.reinvite_retry_at = Some(Instant::now() + Duration::from_millis(500));
            return;
        }
        d.sdp_version += 1;
        let offer = t38sdp::offer_t38(
            &local,
            SocketAddr::new(media_ip, d.media_port),
            d.sdp_session,
            d.sdp_version,
        )
        .to_bytes();
        d.reinvite_pending = true;
        d.reinvite_retry_at = None;
        d.reinvite_offer = Some(offer.clone());
        let cseq = d.next_cseq;
        d.next_cseq += 1;
        let route = d.route(call_id);
        let mut req = self.in_dialog_request(Method::Invite, &route, cseq);
        let contact = match route.transport {
            Transport::Udp => contact_udp,
            ref t => self.contact(t),
        };
        req.headers.push("Contact", contact);
        req.headers.push("Allow", ALLOW);
        req.headers.push("Content-Type", "application/sdp");
        req.body = offer;
        if let Ok(key) = TransactionKey::client(&req) {
            self.reinvites.insert(key, call_id.to_owned());
        }
        debug!(call_id, "sending T.38 re-INVITE");
        self.send_client_request(req, &route).await;
    }

    /// A final response (or timeout) for our re-INVITE.
    async fn on_reinvite_result(&mut self, call_id: &str, resp: Option<Response>) {
        let Some(d) = self.dialogs.get_mut(call_id) else {
            return;
        };
        let status = resp.as_ref().map(|r| r.status).unwrap_or(408);
        if status < 200 {
            return;
        }
        let ctl = d.ctl.clone();
        if (200..300).contains(&status) {
            let Some(resp) = resp else { return };
            // ACK for a 2xx is the TU's, in a transaction of its own (RFC 3261 §13.2.2.4),
            // with the INVITE's CSeq number. Retransmitted 2xx are ACKed again.
            let cseq = resp
                .headers
                .get("CSeq")
                .and_then(|c| c.split_whitespace().next())
                .and_then(|n| n.parse::<u32>().ok())
                .unwrap_or(d.next_cseq.saturating_sub(1));
            let route = d.route(call_id);
            let first = d.reinvite_pending;
            d.reinvite_pending = false;
            let offer = d.reinvite_offer.take();
            if let Some(o) = &offer {
                d.local_sdp = o.clone();
            }
            let mut ack = self.in_dialog_request(Method::Ack, &route, cseq);
            ack.headers.push("Content-Length", "0");
            self.send(&ack.to_bytes(), route.peer, &route.transport)
                .await;
            if !first {
                return;
            }
            let neg = offer
                .and_then(|o| SessionDescription::parse(&o).ok())
                .zip(SessionDescription::parse(&resp.body).ok())
                .and_then(|(o, a)| t38sdp::accept_t38_answer(&o, &a).ok());
            match neg {
                Some(neg) => {
                    info!(call_id, version = neg.version, "far end accepted T.38");
                    let _ = ctl.send(CallCtl::T38(neg)).await;
                }
                None => {
                    debug!(call_id, "T.38 answer unusable; staying on audio");
                    let _ = ctl.send(CallCtl::T38Refused).await;
                }
            }
        } else if status == 491 {
            // Glare: we are not the Call-ID owner (the caller is), so wait 0..2 s (§14.1).
            d.reinvite_pending = false;
            d.reinvite_offer = None;
            let wait = Duration::from_millis(rand::random::<u64>() % 2000);
            debug!(
                call_id,
                wait_ms = wait.as_millis() as u64,
                "491 to our re-INVITE; retrying"
            );
            d.reinvite_retry_at = Some(Instant::now() + wait);
        } else {
            d.reinvite_pending = false;
            d.reinvite_offer = None;
            debug!(call_id, status, "T.38 re-INVITE refused; staying on audio");
            let _ = ctl.send(CallCtl::T38Refused).await;
        }
    }

    fn contact(&self, transport: &Transport) -> String {
        let addr = self.shared.cfg.sip.listen;
        let host = match self.shared.cfg.sip.public_address {
            Some(ip) => SocketAddr::new(ip, addr.port()),
            None => addr,
        };
        match transport {
            Transport::Udp => format!("<sip:coda@{host}>"),
            Transport::Tcp(_) => format!("<sip:coda@{host};transport=tcp>"),
        }
    }

    async fn on_invite(
        &mut self,
        req: Request,
        call_id: String,
        from: SocketAddr,
        transport: Transport,
    ) {
        // 100 Trying at once (RFC 3261 §8.2.6.1): the mailbox lookup goes to the blocking pool.
        let trying = self.base_response(&req, 100);
        self.respond(&req, trying, from, &transport).await;
        if self.stopping {
            return self.reject(&req, 503, from, &transport).await;
        }
        let limits = &self.shared.cfg.limits;
        if self.shared.metrics.active_calls.load(Ordering::Relaxed) as usize >= limits.max_calls {
            return self.reject(&req, 503, from, &transport).await;
        }
        let fax_number = self.fax_number(&req);
        let job = if let Some((number, target)) = fax_number {
            match self.fax_job(&req, number, target).await {
                Some(j) => Job::Fax(j),
                None => return self.reject(&req, 404, from, &transport).await,
            }
        } else if self.is_pilot(&req) {
            Job::Voice(self.retrieval_flow(&req, from))
        } else {
            match self.deposit_flow(&req).await {
                Some(f) => Job::Voice(f),
                None => return self.reject(&req, 404, from, &transport).await,
            }
        };
        let fax_ok = self.shared.cfg.fax.t38
            && match &job {
                Job::Fax(_) => true,
                Job::Voice(Flow::Deposit { .. }) => self.shared.cfg.fax.detect_on_voicemail,
                Job::Voice(_) => false,
            };

        // Offer/answer. No SDP in the INVITE would need the offer in the 200 and the answer in
        // the ACK; coda requires an offer for now and says so with 488.
        let Some((socket, rtcp_socket, port)) = self.bind_rtp().await else {
            warn!("no free RTP port");
            return self.reject(&req, 503, from, &transport).await;
        };
        let local = LocalMedia {
            prefer: vec![Codec::Pcmu, Codec::Pcma],
            ..LocalMedia::new(self.shared.cfg.media_address(), port)
        };
        let session_id = u64::from(rand::random::<u32>());
        // A fax call whose INVITE offers T.38 first (an ATA or gateway already in fax mode)
        // is answered with T.38 directly.
        let mut t38_start: Option<(SessionDescription, NegotiatedT38)> = None;
        if matches!(job, Job::Fax(_)) && self.shared.cfg.fax.t38 && !req.body.is_empty() {
            if let Ok(offer) = SessionDescription::parse(&req.body) {
                if t38_first(&offer) {
                    let our = SocketAddr::new(self.shared.cfg.media_address(), port);
                    match t38sdp::answer_t38_versioned(
                        &offer,
                        &self.t38_local(),
                        our,
                        session_id,
                        1,
                    ) {
                        Ok(pair) => t38_start = Some(pair),
                        Err(e) => {
                            debug!(error = %e, "T.38 offer refused");
                            return self.reject(&req, 488, from, &transport).await;
                        }
                    }
                }
            }
        }
        // RFC 3264 §4 / RFC 3261 §13.2.1: an INVITE without a body gets coda's offer in the
        // 200; the answer comes in the ACK and the media starts then.
        let (local_sdp, neg, our_offer) = if let Some((answer, _)) = &t38_start {
            (answer.clone(), None, None)
        } else if req.body.is_empty() {
            let offer = sdp::offer(&local, session_id, 1);
            (offer.clone(), None, Some(offer))
        } else {
            let offer = match SessionDescription::parse(&req.body) {
                Ok(o) => o,
                Err(e) => {
                    debug!(error = %e, "unparseable SDP offer");
                    return self.reject(&req, 400, from, &transport).await;
                }
            };
            match sdp::answer(&offer, &local, session_id, 1) {
                Ok((answer, neg)) => (answer, Some(neg), None),
                Err(e) => {
                    debug!(error = %e, "offer refused");
                    return self.reject(&req, e.status_code(), from, &transport).await;
                }
            }
        };

        // Answer.
        let local_tag = random_token(10);
        let answer_bytes = local_sdp.to_bytes();
        let mut ok = self.base_response(&req, 200).with_to_tag(&local_tag);
        ok.headers.push("Contact", self.contact(&transport));
        ok.headers.push("Allow", ALLOW);
        ok.headers.push("Content-Type", "application/sdp");
        ok.body = answer_bytes.clone();
        for rr in req.headers.get_all("Record-Route") {
            ok.headers.push("Record-Route", rr);
        }
        let (ctl_tx, ctl_rx) = mpsc::channel(8);
        let remote_party = req.headers.get("From").unwrap_or_default().to_owned();
        let local_party = ok.headers.get("To").unwrap_or_default().to_owned();
        let remote_target = req
            .headers
            .contacts()
            .ok()
            .and_then(|c| c.into_iter().next())
            .map(|c| c.uri)
            .unwrap_or_else(|| req.headers.from().map(|f| f.uri).unwrap_or(req.uri.clone()));
        let route_set: Vec<String> = req
            .headers
            .get_list("Record-Route")
            .into_iter()
            .map(str::to_owned)
            .collect();
        let now = Instant::now();
        self.dialogs.insert(
            call_id.clone(),
            Dialog {
                local_tag,
                remote_party,
                local_party,
                remote_target,
                route_set,
                peer: from,
                transport: transport.clone(),
                next_cseq: 1,
                ctl: ctl_tx,
                pending_2xx: Some(Uas2xxRetransmitter::new(now, ok.clone(), self.timers)),
                local_sdp: answer_bytes,
                sdp_version: 1,
                sdp_session: session_id,
                pending: None,
                media_port: port,
                fax_ok,
                reinvite_pending: false,
                reinvite_retry_at: None,
                reinvite_offer: None,
            },
        );
        self.respond(&req, ok, from, &transport).await;
        Metrics::inc(&self.shared.metrics.calls_total);
        let parts = CallParts {
            call_id: call_id.clone(),
            socket,
            rtcp_socket,
            job,
            ctl_rx,
        };
        match (neg, our_offer, t38_start) {
            (_, _, Some((_, t38))) => self.start_t38_fax(parts, t38),
            (Some(neg), _, None) => self.start_call(parts, neg),
            (None, Some(offer), None) => {
                if let Some(d) = self.dialogs.get_mut(&call_id) {
                    d.pending = Some(PendingCall { parts, offer });
                }
            }
            (None, None, None) => {}
        }
    }

    /// The fax number an INVITE is for, and where its faxes go: the Request-URI user (or
    /// the To user) looked up in `fax.numbers`.
    fn fax_number(&self, req: &Request) -> Option<(String, String)> {
        let numbers = &self.shared.cfg.fax.numbers;
        if numbers.is_empty() {
            return None;
        }
        let user_of = |u: &Uri| match u {
            Uri::Tel(t) => t.number.clone(),
            other => other.user().map(decode_user).unwrap_or_default(),
        };
        let mut users = vec![user_of(&req.uri)];
        if let Ok(to) = req.headers.to() {
            users.push(user_of(&to.uri));
        }
        users.into_iter().find_map(|u| {
            numbers
                .get_key_value(u.as_str())
                .map(|(k, v)| (k.clone(), v.clone()))
        })
    }

    /// Resolves a fax number's target (a mailbox from the store, or an address) into a job.
    async fn fax_job(&self, req: &Request, number: String, target: String) -> Option<FaxJob> {
        let target = if target.contains('@') {
            FaxTarget::Address(target)
        } else {
            let id = MailboxId::parse(&target).ok()?;
            let store = self.shared.store.clone();
            let found = tokio::task::spawn_blocking(move || store.mailbox(&id).ok().flatten())
                .await
                .ok()
                .flatten();
            match found {
                Some(m) => FaxTarget::Mailbox(m),
                None => {
                    warn!(number, "fax number maps to a mailbox that does not exist");
                    return None;
                }
            }
        };
        let plan = &self.shared.cfg.numbering;
        let caller: Caller = plan.classify(&self.caller_of(req, None));
        debug!(number, "fax call");
        Some(FaxJob {
            number,
            target,
            caller: caller.stored(),
            caller_display: plan.display(&caller),
        })
    }

    /// A deposit may become a fax for its mailbox (`fax.detect_on_voicemail`).
    fn voicemail_fax_job(&self, flow: &Flow) -> Option<FaxJob> {
        if !self.shared.cfg.fax.detect_on_voicemail {
            return None;
        }
        match flow {
            Flow::Deposit {
                mailbox, message, ..
            } => Some(FaxJob {
                number: mailbox.id.to_string(),
                target: FaxTarget::Mailbox(mailbox.clone()),
                caller: message.caller.clone(),
                caller_display: message.caller_display.clone(),
            }),
            _ => None,
        }
    }

    /// Our T.38 capabilities from the configuration.
    fn t38_local(&self) -> T38Local {
        T38Local {
            version: self.shared.cfg.fax.t38_version,
            ..T38Local::default()
        }
    }

    /// Starts a fax call whose INVITE agreed on T.38 straight away.
    fn start_t38_fax(&mut self, parts: CallParts, t38: NegotiatedT38) {
        let Job::Fax(job) = parts.job else {
            return;
        };
        info!(call_id = parts.call_id, "fax call started (T.38)");
        self.spawn_fax(
            parts.call_id,
            parts.socket,
            FaxStart::T38(t38),
            job,
            parts.ctl_rx,
        );
    }

    fn spawn_fax(
        &mut self,
        call_id: String,
        socket: UdpSocket,
        start: FaxStart,
        job: FaxJob,
        ctl_rx: mpsc::Receiver<CallCtl>,
    ) {
        self.shared
            .metrics
            .active_calls
            .fetch_add(1, Ordering::Relaxed);
        let setup = FaxCallSetup {
            call_id,
            socket,
            start,
            job,
        };
        let shared = self.shared.clone();
        let report = self.report_tx.clone();
        tokio::spawn(async move {
            fax_call::run(setup, shared.clone(), ctl_rx, report).await;
            shared.metrics.active_calls.fetch_sub(1, Ordering::Relaxed);
        });
    }

    /// Whether the INVITE is for mailbox login (the voicemail pilot number).
    fn is_pilot(&self, req: &Request) -> bool {
        let user = match &req.uri {
            Uri::Tel(t) => t.number.clone(),
            other => other.user().map(decode_user).unwrap_or_default(),
        };
        self.shared
            .cfg
            .voicemail
            .pilot_numbers
            .iter()
            .any(|p| p.eq_ignore_ascii_case(&user))
    }

    /// Who called: the user of P-Asserted-Identity (trusted sources only) or From.
    fn caller_of(&self, req: &Request, from: Option<SocketAddr>) -> String {
        let trusted = from.is_none_or(|a| self.shared.cfg.sip.is_trusted(a.ip()));
        req.headers
            .get("P-Asserted-Identity")
            .filter(|_| trusted)
            .and_then(|v| NameAddr::parse(v).ok())
            .or_else(|| req.headers.from().ok())
            .map(|n| match &n.uri {
                Uri::Tel(t) => t.number.clone(),
                other => other.user().map(decode_user).unwrap_or_default(),
            })
            .unwrap_or_default()
    }

    /// Mailbox login. The caller's own extension is offered as the mailbox only when the call
    /// comes from a trusted address (PBX or phone subnet); the PIN is always asked.
    fn retrieval_flow(&self, req: &Request, from: SocketAddr) -> Flow {
        let cfg = &self.shared.cfg;
        let mailbox = match cfg.numbering.classify(&self.caller_of(req, Some(from))) {
            Caller::Extension { extension, .. } if cfg.sip.is_trusted(from.ip()) => Some(extension),
            _ => None,
        };
        super::retrieval_ops::new_flow(&self.shared, mailbox)
    }

    /// Leaving a message: the mailbox from the diversion headers, its greetings and fullness.
    async fn deposit_flow(&self, req: &Request) -> Option<Flow> {
        let candidates = routing::mailbox_candidates(req, &self.shared.cfg.numbering);
        let store = self.shared.store.clone();
        let (mailbox, reason, count, greetings) =
            tokio::task::spawn_blocking(move || -> Option<_> {
                // The first candidate that is a mailbox wins.
                let (mb, reason) = candidates.into_iter().find_map(|(id, reason)| {
                    store.mailbox(&id).ok().flatten().map(|m| (m, reason))
                })?;
                let mb_id = mb.id.clone();
                let count = store.message_count(&mb_id).ok()?;
                let g = |k| super::load_greeting(&store.greeting_path(&mb_id, k));
                let greetings = Greetings {
                    unavailable: g(GreetingKind::Unavailable),
                    busy: g(GreetingKind::Busy),
                    temporary: g(GreetingKind::Temporary),
                    name: g(GreetingKind::Name),
                };
                Some((mb, reason, count, greetings))
            })
            .await
            .ok()
            .flatten()?;
        let plan = &self.shared.cfg.numbering;
        let caller: Caller = plan.classify(&self.caller_of(req, None));
        let vm = &self.shared.cfg.voicemail;
        let cfg = DepositConfig {
            max_message: Duration::from_secs(u64::from(vm.max_message_secs)),
            min_message: Duration::from_secs_f32(vm.min_message_secs.max(0.0)),
            silence: Duration::from_secs(u64::from(vm.silence_secs)),
            silence_threshold_dbfs: vm.silence_threshold_dbfs,
            star_to_login: vm.star_to_login,
        };
        let setup = DepositSetup {
            extension: mailbox.id.to_string(),
            reason,
            greetings,
            mailbox_full: count >= vm.max_messages,
        };
        let deposit = Deposit::new(cfg, &setup, self.shared.prompts.as_ref());
        let message = NewMessage {
            mailbox: mailbox.id.clone(),
            caller: caller.stored(),
            caller_display: plan.display(&caller),
            received_unix: unix_now(),
            reason,
            audio: Vec::new(),
        };
        debug!(mailbox = %mailbox.id, reason = reason.as_str(), "deposit");
        Some(Flow::Deposit {
            deposit: Box::new(deposit),
            mailbox,
            message,
        })
    }

    /// Starts the media task of an answered call.
    fn start_call(&mut self, parts: CallParts, neg: sdp::Negotiated) {
        let law = match neg.codec {
            Codec::Pcmu => codecs::Law::Ulaw,
            Codec::Pcma => codecs::Law::Alaw,
        };
        info!(call_id = parts.call_id, codec = ?neg.codec, flow = parts.job.name(), "call started");
        let flow = match parts.job {
            Job::Voice(flow) => flow,
            Job::Fax(job) => {
                let start = FaxStart::Audio {
                    remote: neg.remote_addr,
                    law,
                    pt: neg.pt,
                    sender: None,
                };
                self.spawn_fax(parts.call_id, parts.socket, start, job, parts.ctl_rx);
                return;
            }
        };
        self.shared
            .metrics
            .active_calls
            .fetch_add(1, Ordering::Relaxed);
        let setup = CallSetup {
            call_id: parts.call_id,
            socket: parts.socket,
            rtcp_socket: parts.rtcp_socket,
            remote: neg.remote_addr,
            law,
            pt: neg.pt,
            te_pt: neg.telephone_event_pt,
            fax_job: self.voicemail_fax_job(&flow),
            flow,
        };
        let shared = self.shared.clone();
        let report = self.report_tx.clone();
        let ctl_rx = parts.ctl_rx;
        tokio::spawn(async move {
            call::run(setup, shared.clone(), ctl_rx, report).await;
            shared.metrics.active_calls.fetch_sub(1, Ordering::Relaxed);
        });
    }

    /// An even RTP port and the RTCP port above it (RFC 3550 §11).
    async fn bind_rtp(&mut self) -> Option<(UdpSocket, UdpSocket, u16)> {
        let cfg = &self.shared.cfg.rtp;
        let (min, max) = (cfg.port_min, cfg.port_max);
        let span = u32::from(max - min) + 1;
        for _ in 0..span.min(2000) {
            let port = self.next_rtp_port;
            // RTP on even ports (RFC 3550 §11), RTCP would be port + 1.
            self.next_rtp_port = if port >= max.saturating_sub(1) {
                min
            } else {
                port + 2
            };
            if port % 2 == 1 {
                continue;
            }
            let Ok(rtp) = UdpSocket::bind(SocketAddr::new(cfg.address, port)).await else {
                continue;
            };
            if let Ok(rtcp) = UdpSocket::bind(SocketAddr::new(cfg.address, port + 1)).await {
                return Some((rtp, rtcp, port));
            }
        }
        None
    }

    async fn on_report(&mut self, r: CallReport) {
        match r {
            CallReport::Bye { call_id } => self.send_bye(&call_id).await,
            CallReport::Ended { call_id } => {
                self.dialogs.remove(&call_id);
            }
            CallReport::RequestT38 { call_id } => self.send_t38_reinvite(&call_id).await,
        }
    }

    /// Ends a dialog from our side (RFC 3261 §15.1.1).
    async fn send_bye(&mut self, call_id: &str) {
        let Some(d) = self.dialogs.remove(call_id) else {
            return;
        };
        debug!(call_id, tag = %d.local_tag, "sending BYE");
        let route = d.route(call_id);
        let bye = self.in_dialog_request(Method::Bye, &route, d.next_cseq);
        self.send_client_request(bye, &route).await;
    }

    /// A request inside a dialog we are the UAS of (RFC 3261 §12.2.1.1).
    fn in_dialog_request(&self, method: Method, d: &DialogRoute, cseq: u32) -> Request {
        let branch = format!("z9hG4bK{}", random_token(16));
        let mut req = Request::new(method.clone(), d.remote_target.clone());
        req.headers.push(
            "Via",
            format!(
                "SIP/2.0/{} {};branch={branch};rport",
                d.transport.name(),
                self.local_sent_by()
            ),
        );
        req.headers.push("Max-Forwards", "70");
        req.headers.push("From", d.local_party.clone());
        req.headers.push("To", d.remote_party.clone());
        req.headers.push("Call-ID", d.call_id.clone());
        req.headers.push("CSeq", format!("{cseq} {method}"));
        for r in &d.route_set {
            req.headers.push("Route", r.clone());
        }
        req.headers
            .push("User-Agent", self.shared.cfg.sip.server_name.clone());
        req
    }

    /// Sends a request through a client non-INVITE transaction, which retransmits it
    /// (Timers E/F, RFC 3261 §17.1.2).
    async fn send_client_request(&mut self, req: Request, d: &DialogRoute) {
        match TransactionKey::client(&req) {
            Ok(key) => {
                let reliable = matches!(d.transport, Transport::Tcp(_));
                self.txs.insert(
                    key.clone(),
                    Transaction::client(Instant::now(), req, reliable, self.timers),
                );
                self.tx_dest.insert(key, (d.peer, d.transport.clone()));
                self.flush_transactions().await;
            }
            Err(_) => self.send(&req.to_bytes(), d.peer, &d.transport).await,
        }
    }

    /// SUBSCRIBE for `message-summary` (RFC 3842, RFC 6665 §4.2).
    async fn on_subscribe(&mut self, req: Request, from: SocketAddr, transport: Transport) {
        let now = Instant::now();
        if !self.shared.cfg.sip.is_trusted(from.ip()) {
            debug!("SUBSCRIBE from an untrusted address refused");
            return self.reject(&req, 403, from, &transport).await;
        }
        let event = req.headers.get("Event").map(|e| {
            e.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
        if event.as_deref() != Some("message-summary") {
            let mut r = self.base_response(&req, 489).with_to_tag(&random_token(8));
            r.headers.push("Allow-Events", "message-summary");
            return self.respond(&req, r, from, &transport).await;
        }
        let requested = req.headers.expires().ok().flatten();
        let expires = match mwi::grant_expires(requested, mwi::ExpiresPolicy::default()) {
            Ok(e) => e,
            Err(mwi::MwiError::TooBrief { min }) => {
                let mut r = self.base_response(&req, 423).with_to_tag(&random_token(8));
                r.headers.push("Min-Expires", min.to_string());
                return self.respond(&req, r, from, &transport).await;
            }
            Err(mwi::MwiError::TooMany) => return self.reject(&req, 503, from, &transport).await,
        };
        let call_id = req
            .headers
            .call_id()
            .map(|c| c.as_str().to_owned())
            .unwrap_or_default();
        if let Some(tag) = req
            .headers
            .to()
            .ok()
            .and_then(|t| t.tag().map(str::to_owned))
        {
            // A refresh or an unsubscribe inside an existing subscription dialog.
            let key = format!("{call_id};{tag}");
            if self.mwi.refresh(now, &key, expires).is_none() {
                return self.reject(&req, 481, from, &transport).await;
            }
            let mut r = self.base_response(&req, 200);
            r.headers.push("Expires", expires.to_string());
            r.headers.push("Contact", self.contact(&transport));
            self.respond(&req, r, from, &transport).await;
            if expires == 0 {
                if let Some(sub) = self.mwi.remove(&key) {
                    // RFC 6665 §4.2.1.4: unsubscribed; the final NOTIFY carries the state.
                    self.notify_final(&sub.mailbox, sub.dialog, "terminated")
                        .await;
                }
            } else {
                self.notify_key(&key).await;
            }
            return;
        }
        let candidates = routing::mailbox_candidates(&req, &self.shared.cfg.numbering);
        let store = self.shared.store.clone();
        let found = tokio::task::spawn_blocking(move || {
            candidates
                .into_iter()
                .find_map(|(id, _)| store.mailbox(&id).ok().flatten())
        })
        .await
        .ok()
        .flatten();
        let Some(mailbox) = found else {
            return self.reject(&req, 404, from, &transport).await;
        };
        let local_tag = random_token(10);
        let mut ok = self.base_response(&req, 200).with_to_tag(&local_tag);
        ok.headers.push("Expires", expires.to_string());
        ok.headers.push("Contact", self.contact(&transport));
        let route = DialogRoute {
            call_id: call_id.clone(),
            local_party: ok.headers.get("To").unwrap_or_default().to_owned(),
            remote_party: req.headers.get("From").unwrap_or_default().to_owned(),
            remote_target: req
                .headers
                .contacts()
                .ok()
                .and_then(|c| c.into_iter().next())
                .map(|c| c.uri)
                .unwrap_or_else(|| req.uri.clone()),
            route_set: req
                .headers
                .get_list("Record-Route")
                .into_iter()
                .map(str::to_owned)
                .collect(),
            peer: from,
            transport: transport.clone(),
        };
        let sub = SubDialog {
            route,
            next_cseq: 1,
        };
        let key = format!("{call_id};{local_tag}");
        if expires == 0 {
            // A fetch (RFC 6665 §4.4.3): one NOTIFY with the state, then nothing.
            self.respond(&req, ok, from, &transport).await;
            self.notify_final(&mailbox.id, sub, "terminated;reason=timeout")
                .await;
            return;
        }
        if self
            .mwi
            .subscribe(now, key.clone(), mailbox.id.clone(), expires, sub)
            .is_err()
        {
            return self.reject(&req, 503, from, &transport).await;
        }
        self.respond(&req, ok, from, &transport).await;
        debug!(mailbox = %mailbox.id, expires, "message-summary subscription");
        self.notify_key(&key).await;
    }

    /// NOTIFY one live subscription with the current counts.
    async fn notify_key(&mut self, key: &str) {
        let now = Instant::now();
        let remaining = self.mwi.remaining(key, now);
        let Some(sub) = self.mwi.get_mut(key) else {
            return;
        };
        let mailbox = sub.mailbox.clone();
        let cseq = sub.dialog.next_cseq;
        sub.dialog.next_cseq += 1;
        let route = sub.dialog.route.clone();
        let state = format!("active;expires={remaining}");
        self.send_notify(&mailbox, &route, cseq, &state).await;
    }

    /// The final NOTIFY of a subscription that is ending (RFC 6665 §4.2.2), consuming it.
    async fn notify_final(&mut self, mailbox: &MailboxId, sub: SubDialog, state: &str) {
        self.send_notify(mailbox, &sub.route, sub.next_cseq, state)
            .await;
    }

    async fn send_notify(
        &mut self,
        mailbox: &MailboxId,
        route: &DialogRoute,
        cseq: u32,
        state: &str,
    ) {
        let store = self.shared.store.clone();
        let id = mailbox.clone();
        let counts = tokio::task::spawn_blocking(move || store.message_counts(&id))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or((0, 0));
        let account = format!("sip:{}@{}", mailbox, self.local_sent_by());
        let mut n = self.in_dialog_request(Method::Notify, route, cseq);
        n.headers.push("Contact", self.contact(&route.transport));
        n.headers.push("Event", "message-summary");
        n.headers.push("Subscription-State", state.to_owned());
        n.headers
            .push("Content-Type", "application/simple-message-summary");
        n.body = mwi::summary_body(&account, counts.0, counts.1).into_bytes();
        self.send_client_request(n, route).await;
    }

    /// A mailbox changed: tell every subscribed device.
    async fn on_mailbox_changed(&mut self, mailbox: MailboxId) {
        for key in self.mwi.keys_for(&mailbox) {
            self.notify_key(&key).await;
        }
    }

    fn local_sent_by(&self) -> SocketAddr {
        let l = self.shared.cfg.sip.listen;
        match self.shared.cfg.sip.public_address {
            Some(ip) => SocketAddr::new(ip, l.port()),
            None if l.ip().is_unspecified() => {
                SocketAddr::new(IpAddr::from([127, 0, 0, 1]), l.port())
            }
            None => l,
        }
    }
}

const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE, SUBSCRIBE";

/// %-unescapes a URI user part; invalid escapes keep the text as written.
/// True when the first usable m-line of an offer is `m=image ... udptl t38`.
fn t38_first(offer: &SessionDescription) -> bool {
    offer
        .media()
        .iter()
        .find(|m| m.port() != 0)
        .is_some_and(|m| {
            m.media().eq_ignore_ascii_case("image")
                && m.proto().eq_ignore_ascii_case("udptl")
                && m.formats().iter().any(|f| f.eq_ignore_ascii_case("t38"))
        })
}

/// True when an offer has a usable `m=image ... udptl t38` line.
fn has_t38(offer: &SessionDescription) -> bool {
    offer.media().iter().any(|m| {
        m.port() != 0
            && m.media().eq_ignore_ascii_case("image")
            && m.proto().eq_ignore_ascii_case("udptl")
    })
}

fn decode_user(s: &str) -> String {
    match sip::pct_decode(s) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(_) => s.to_owned(),
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn random_token(n: usize) -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect()
}

fn bump_sdp_version(sdp: &[u8], session: u64, version: u64) -> Vec<u8> {
    let text = String::from_utf8_lossy(sdp);
    let mut out = String::with_capacity(text.len() + 4);
    for line in text.split_inclusive("\r\n") {
        if line.starts_with("o=") {
            let parts: Vec<&str> = line.trim_end().split(' ').collect();
            if parts.len() >= 6 {
                out.push_str(&format!(
                    "{} {session} {version} {}\r\n",
                    parts[0],
                    parts[3..].join(" ")
                ));
                continue;
            }
        }
        out.push_str(line);
    }
    out.into_bytes()
}

/// Builds a 400 for a request that did not parse, if Via/From/To/Call-ID/CSeq can be found
/// line by line. Anything less (garbage, responses) is dropped silently.
fn bad_request_from_fragments(bytes: &[u8], why: &str) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(bytes.get(..bytes.len().min(16384))?).ok()?;
    let mut lines = text.split("\r\n");
    let first = lines.next()?;
    let mut parts = first.split(' ');
    let method = parts.next()?;
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) || method == "ACK" {
        return None;
    }
    if !first.ends_with("SIP/2.0") {
        return None;
    }
    let mut keep = Vec::new();
    for l in lines {
        if l.is_empty() {
            break;
        }
        let name = l
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if matches!(
            name.as_str(),
            "via" | "v" | "from" | "f" | "to" | "t" | "call-id" | "i" | "cseq"
        ) {
            keep.push(l);
        }
    }
    if keep.len() < 5 {
        return None;
    }
    let reason: String = why.chars().filter(|c| !c.is_control()).take(80).collect();
    let mut out = format!("SIP/2.0 400 Bad Request ({reason})\r\n");
    for l in keep {
        out.push_str(l);
        out.push_str("\r\n");
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    Some(out.into_bytes())
}
