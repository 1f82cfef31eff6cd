//! RFC 3261 §17 transactions as sans-IO state machines with injected time.
//!
//! Four machines — [`ClientInvite`], [`ClientNonInvite`], [`ServerInvite`],
//! [`ServerNonInvite`] — plus the [`Transaction`] enum over them, a [`TransactionKey`] /
//! [`TransactionTable`] for matching (§17.1.3, §17.2.3), and [`Uas2xxRetransmitter`] for the
//! TU's 2xx retransmissions (§13.3.1.4).
//!
//! Every machine follows the same pattern: inputs are `handle_*(now, …)`, outputs are pulled
//! with [`poll_transmit`](ClientInvite::poll_transmit) (messages to send, first copy included),
//! [`poll_event`](ClientInvite::poll_event) (for the TU) and
//! [`poll_timeout`](ClientInvite::poll_timeout) (next deadline; call `handle_timeout(now)` when it
//! passes). No machine reads the clock or does I/O.
//!
//! Decisions:
//! * Timers live in an enum-indexed table ([`Timer`]); B, F, H, J, L, M are `64*T1`, D is
//!   [`TimerConfig::timer_d`] (32 s), I and K are T4. On a reliable transport A, E, G are never
//!   started and D, I, J, K are zero, so the machine terminates at once (§17.1.1.2, §17.1.2.2,
//!   §17.2.1, §17.2.2).
//! * INVITE transactions use the RFC 6026 "Accepted" state: a client passes retransmitted 2xx to
//!   the TU until Timer M; a server absorbs retransmitted INVITEs after sending 2xx until Timer L
//!   and forwards 2xx retransmissions handed to it by the TU ([`Uas2xxRetransmitter`]).
//! * The server INVITE machine sends `100 Trying` itself if the TU has not sent any response
//!   within [`TimerConfig::trying_delay`] (200 ms by default, §17.2.1; `Some(0)` = at once,
//!   `None` = never).
//! * Timers fire at most once per `handle_timeout` call and are re-armed relative to `now`, so a
//!   late call does not cause a burst of retransmissions.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::error::HeaderError;
use super::header::Headers;
use super::message::{Message, Method, Request, Response};

/// Timer values (RFC 3261 §17.1.1.1 and Table 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// RTT estimate, default 500 ms.
    pub t1: Duration,
    /// Maximum retransmit interval for non-INVITE requests and INVITE responses, default 4 s.
    pub t2: Duration,
    /// Maximum time a message stays in the network, default 5 s.
    pub t4: Duration,
    /// Timer D on unreliable transports (at least 32 s).
    pub timer_d: Duration,
    /// Delay before a server INVITE transaction sends `100 Trying` itself; `None` = never.
    pub trying_delay: Option<Duration>,
}

impl TimerConfig {
    /// RFC 3261 defaults.
    pub const DEFAULT: TimerConfig = TimerConfig {
        t1: Duration::from_millis(500),
        t2: Duration::from_secs(4),
        t4: Duration::from_secs(5),
        timer_d: Duration::from_secs(32),
        trying_delay: Some(Duration::from_millis(200)),
    };

    /// `64*T1`: Timers B, F, H, J, L, M.
    pub fn timeout_64t1(&self) -> Duration {
        self.t1.saturating_mul(64)
    }
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig::DEFAULT
    }
}

/// The named transaction timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    /// INVITE request retransmit (client, unreliable).
    A,
    /// INVITE transaction timeout (client).
    B,
    /// Wait for response retransmits after non-2xx final (client INVITE).
    D,
    /// Non-INVITE request retransmit (client, unreliable).
    E,
    /// Non-INVITE transaction timeout (client).
    F,
    /// INVITE final response retransmit (server, unreliable).
    G,
    /// Wait for ACK (server INVITE).
    H,
    /// Wait for ACK retransmits (server INVITE).
    I,
    /// Wait for request retransmits (server non-INVITE).
    J,
    /// Wait for response retransmits (client non-INVITE).
    K,
    /// RFC 6026: server INVITE "Accepted" lifetime.
    L,
    /// RFC 6026: client INVITE "Accepted" lifetime.
    M,
    /// Delay before the automatic `100 Trying` (server INVITE).
    Trying,
}

const TIMER_COUNT: usize = 13;

impl Timer {
    const ALL: [Timer; TIMER_COUNT] = [
        Timer::A,
        Timer::B,
        Timer::D,
        Timer::E,
        Timer::F,
        Timer::G,
        Timer::H,
        Timer::I,
        Timer::J,
        Timer::K,
        Timer::L,
        Timer::M,
        Timer::Trying,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// Deadlines indexed by [`Timer`].
#[derive(Debug, Clone, Default)]
struct TimerTable([Option<Instant>; TIMER_COUNT]);

impl TimerTable {
    fn set(&mut self, t: Timer, at: Instant) {
        if let Some(slot) = self.0.get_mut(t.index()) {
            *slot = Some(at);
        }
    }
    fn clear(&mut self, t: Timer) {
        if let Some(slot) = self.0.get_mut(t.index()) {
            *slot = None;
        }
    }
    fn clear_all(&mut self) {
        self.0 = [None; TIMER_COUNT];
    }
    fn next(&self) -> Option<Instant> {
        self.0.iter().flatten().min().copied()
    }
    /// Removes and returns the timers due at `now`, earliest first.
    fn take_due(&mut self, now: Instant) -> Vec<Timer> {
        let mut due: Vec<(Instant, Timer)> = Timer::ALL
            .iter()
            .filter_map(|&t| match self.0.get(t.index()).copied().flatten() {
                Some(at) if at <= now => Some((at, t)),
                _ => None,
            })
            .collect();
        due.sort_by_key(|(at, _)| *at);
        for (_, t) in &due {
            self.clear(*t);
        }
        due.into_iter().map(|(_, t)| t).collect()
    }
}

/// What a transaction reports to its TU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxEvent {
    /// Client: a response for the TU (provisional, final, or a retransmitted 2xx in the RFC 6026
    /// Accepted state).
    Response(Response),
    /// Server INVITE in the Accepted state: an ACK that matched this transaction.
    Ack(Request),
    /// Timer B or F fired (no final response) or Timer H fired (no ACK for a non-2xx final).
    Timeout,
    /// The transport reported a failure sending for this transaction.
    TransportError,
    /// The transaction reached Terminated and can be removed.
    Terminated,
}

/// Shared plumbing: output queues, timers, terminated flag.
#[derive(Debug, Clone)]
struct Core {
    cfg: TimerConfig,
    reliable: bool,
    timers: TimerTable,
    transmits: VecDeque<Message>,
    events: VecDeque<TxEvent>,
    terminated: bool,
}

impl Core {
    fn new(cfg: TimerConfig, reliable: bool) -> Self {
        Core {
            cfg,
            reliable,
            timers: TimerTable::default(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            terminated: false,
        }
    }
    fn terminate(&mut self) {
        if !self.terminated {
            self.terminated = true;
            self.timers.clear_all();
            self.events.push_back(TxEvent::Terminated);
        }
    }
    /// Starts a wait timer, or terminates at once if it is zero on this transport.
    fn wait_or_terminate(&mut self, now: Instant, t: Timer, unreliable: Duration) -> bool {
        if self.reliable || unreliable.is_zero() {
            self.terminate();
            false
        } else {
            self.timers.set(t, now + unreliable);
            true
        }
    }
}

macro_rules! common_outputs {
    () => {
        /// Next message to send (the first copy and every retransmission).
        pub fn poll_transmit(&mut self) -> Option<Message> {
            self.core.transmits.pop_front()
        }

        /// Next event for the TU.
        pub fn poll_event(&mut self) -> Option<TxEvent> {
            self.core.events.pop_front()
        }

        /// Earliest pending deadline; call `handle_timeout` once it has passed.
        pub fn poll_timeout(&self) -> Option<Instant> {
            if self.core.terminated {
                None
            } else {
                self.core.timers.next()
            }
        }

        /// Whether the machine reached Terminated.
        pub fn is_terminated(&self) -> bool {
            self.core.terminated
        }

        /// The transport reported a send failure: tell the TU and terminate (§17.1.4, §17.2.4).
        pub fn handle_transport_error(&mut self, _now: Instant) {
            if !self.core.terminated {
                self.core.events.push_back(TxEvent::TransportError);
                self.core.terminate();
            }
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Request builders used by the client side

/// Builds the ACK for a non-2xx final response (§17.1.1.3): Request-URI, Call-ID, From and
/// the top Via of the INVITE, To from the response, CSeq number with method ACK, the INVITE's
/// Route headers.
pub fn ack_for_non2xx(invite: &Request, response: &Response) -> Request {
    let mut ack = Request::new(Method::Ack, invite.uri.clone());
    if let Some(via) = invite.headers.get_list("Via").first() {
        ack.headers.push("Via", *via);
    }
    for route in invite.headers.get_all("Route") {
        ack.headers.push("Route", route);
    }
    ack.headers.push("Max-Forwards", "70");
    copy_first(&invite.headers, &mut ack.headers, "From");
    match response.headers.get("To") {
        Some(to) => ack.headers.push("To", to),
        None => copy_first(&invite.headers, &mut ack.headers, "To"),
    }
    copy_first(&invite.headers, &mut ack.headers, "Call-ID");
    let seq = invite.headers.cseq().map(|c| c.seq).unwrap_or(0);
    ack.headers.push("CSeq", format!("{seq} ACK"));
    ack
}

/// Builds a CANCEL for `invite` (§9.1): same Request-URI, top Via (same branch), Route, From,
/// To, Call-ID, CSeq number with method CANCEL. Send it in its own [`ClientNonInvite`].
pub fn build_cancel(invite: &Request) -> Request {
    let mut cancel = Request::new(Method::Cancel, invite.uri.clone());
    if let Some(via) = invite.headers.get_list("Via").first() {
        cancel.headers.push("Via", *via);
    }
    for route in invite.headers.get_all("Route") {
        cancel.headers.push("Route", route);
    }
    cancel.headers.push("Max-Forwards", "70");
    for name in ["From", "To", "Call-ID"] {
        copy_first(&invite.headers, &mut cancel.headers, name);
    }
    let seq = invite.headers.cseq().map(|c| c.seq).unwrap_or(0);
    cancel.headers.push("CSeq", format!("{seq} CANCEL"));
    cancel
}

fn copy_first(from: &Headers, to: &mut Headers, name: &str) {
    if let Some(v) = from.get(name) {
        to.push(name, v);
    }
}

// ---------------------------------------------------------------------------------------------
// Client INVITE (§17.1.1, RFC 6026)

/// States of [`ClientInvite`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientInviteState {
    /// INVITE sent, nothing heard.
    Calling,
    /// A provisional response arrived.
    Proceeding,
    /// A 2xx arrived (RFC 6026); further 2xx go to the TU until Timer M.
    Accepted,
    /// A 300-699 arrived and was ACKed; absorbing retransmissions until Timer D.
    Completed,
    /// Done.
    Terminated,
}

/// Client INVITE transaction.
#[derive(Debug, Clone)]
pub struct ClientInvite {
    core: Core,
    state: ClientInviteState,
    invite: Request,
    ack: Option<Request>,
    interval_a: Duration,
}

impl ClientInvite {
    /// Starts the transaction: queues the INVITE, arms Timer A (unreliable) and Timer B.
    pub fn new(now: Instant, invite: Request, reliable: bool, cfg: TimerConfig) -> Self {
        let mut core = Core::new(cfg, reliable);
        core.transmits.push_back(Message::Request(invite.clone()));
        if !reliable {
            core.timers.set(Timer::A, now + cfg.t1);
        }
        core.timers.set(Timer::B, now + cfg.timeout_64t1());
        ClientInvite {
            core,
            state: ClientInviteState::Calling,
            invite,
            ack: None,
            interval_a: cfg.t1,
        }
    }

    common_outputs!();

    /// Current state.
    pub fn state(&self) -> ClientInviteState {
        self.state
    }

    /// The INVITE this transaction sends.
    pub fn request(&self) -> &Request {
        &self.invite
    }

    /// A CANCEL for this INVITE (§9.1), or `None` unless a provisional response has arrived
    /// (§9.1: a CANCEL must not be sent before one).
    pub fn cancel_request(&self) -> Option<Request> {
        (self.state == ClientInviteState::Proceeding).then(|| build_cancel(&self.invite))
    }

    /// A response matched to this transaction arrived.
    pub fn handle_response(&mut self, now: Instant, resp: Response) {
        use ClientInviteState::*;
        let status = resp.status;
        match (self.state, status) {
            (Calling | Proceeding, 100..=199) => {
                self.state = Proceeding;
                // No retransmissions in Proceeding; Timer B only guards Calling.
                self.core.timers.clear(Timer::A);
                self.core.timers.clear(Timer::B);
                self.core.events.push_back(TxEvent::Response(resp));
            }
            (Calling | Proceeding, 200..=299) => {
                self.state = Accepted;
                self.core.timers.clear_all();
                self.core.events.push_back(TxEvent::Response(resp));
                self.core
                    .timers
                    .set(Timer::M, now + self.core.cfg.timeout_64t1());
            }
            (Calling | Proceeding, _) => {
                let ack = ack_for_non2xx(&self.invite, &resp);
                self.core.transmits.push_back(Message::Request(ack.clone()));
                self.ack = Some(ack);
                self.core.timers.clear_all();
                self.core.events.push_back(TxEvent::Response(resp));
                self.state = Completed;
                let d = self.core.cfg.timer_d;
                if !self.core.wait_or_terminate(now, Timer::D, d) {
                    self.state = Terminated;
                }
            }
            (Accepted, 200..=299) => self.core.events.push_back(TxEvent::Response(resp)),
            (Completed, 300..) => {
                // Retransmitted final response: ACK again, do not bother the TU.
                if let Some(ack) = &self.ack {
                    self.core.transmits.push_back(Message::Request(ack.clone()));
                }
            }
            _ => {}
        }
    }

    /// Call when [`poll_timeout`](Self::poll_timeout) has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        for t in self.core.timers.take_due(now) {
            match (t, self.state) {
                (Timer::A, ClientInviteState::Calling) => {
                    self.core
                        .transmits
                        .push_back(Message::Request(self.invite.clone()));
                    // INVITE retransmissions double without the T2 cap (§17.1.1.2).
                    self.interval_a = self.interval_a.saturating_mul(2);
                    self.core.timers.set(Timer::A, now + self.interval_a);
                }
                (Timer::B, ClientInviteState::Calling) => {
                    self.core.events.push_back(TxEvent::Timeout);
                    self.state = ClientInviteState::Terminated;
                    self.core.terminate();
                }
                (Timer::D, ClientInviteState::Completed)
                | (Timer::M, ClientInviteState::Accepted) => {
                    self.state = ClientInviteState::Terminated;
                    self.core.terminate();
                }
                _ => {}
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Client non-INVITE (§17.1.2)

/// States of [`ClientNonInvite`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientNonInviteState {
    /// Request sent, nothing heard.
    Trying,
    /// A provisional response arrived.
    Proceeding,
    /// A final response arrived; absorbing retransmissions until Timer K.
    Completed,
    /// Done.
    Terminated,
}

/// Client non-INVITE transaction (BYE, CANCEL, OPTIONS, NOTIFY, …).
#[derive(Debug, Clone)]
pub struct ClientNonInvite {
    core: Core,
    state: ClientNonInviteState,
    request: Request,
    interval_e: Duration,
}

impl ClientNonInvite {
    /// Starts the transaction: queues the request, arms Timer E (unreliable) and Timer F.
    pub fn new(now: Instant, request: Request, reliable: bool, cfg: TimerConfig) -> Self {
        let mut core = Core::new(cfg, reliable);
        core.transmits.push_back(Message::Request(request.clone()));
        if !reliable {
            core.timers.set(Timer::E, now + cfg.t1);
        }
        core.timers.set(Timer::F, now + cfg.timeout_64t1());
        ClientNonInvite {
            core,
            state: ClientNonInviteState::Trying,
            request,
            interval_e: cfg.t1,
        }
    }

    common_outputs!();

    /// Current state.
    pub fn state(&self) -> ClientNonInviteState {
        self.state
    }

    /// The request this transaction sends.
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// A response matched to this transaction arrived.
    pub fn handle_response(&mut self, now: Instant, resp: Response) {
        use ClientNonInviteState::*;
        match (self.state, resp.status) {
            (Trying | Proceeding, 100..=199) => {
                self.state = Proceeding;
                self.core.events.push_back(TxEvent::Response(resp));
            }
            (Trying | Proceeding, _) => {
                self.core.timers.clear_all();
                self.core.events.push_back(TxEvent::Response(resp));
                self.state = Completed;
                let k = self.core.cfg.t4;
                if !self.core.wait_or_terminate(now, Timer::K, k) {
                    self.state = Terminated;
                }
            }
            _ => {}
        }
    }

    /// Call when [`poll_timeout`](Self::poll_timeout) has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        use ClientNonInviteState::*;
        for t in self.core.timers.take_due(now) {
            match (t, self.state) {
                (Timer::E, Trying | Proceeding) => {
                    self.core
                        .transmits
                        .push_back(Message::Request(self.request.clone()));
                    self.interval_e = if self.state == Trying {
                        self.interval_e.saturating_mul(2).min(self.core.cfg.t2)
                    } else {
                        self.core.cfg.t2
                    };
                    self.core.timers.set(Timer::E, now + self.interval_e);
                }
                (Timer::F, Trying | Proceeding) => {
                    self.core.events.push_back(TxEvent::Timeout);
                    self.state = Terminated;
                    self.core.terminate();
                }
                (Timer::K, Completed) => {
                    self.state = Terminated;
                    self.core.terminate();
                }
                _ => {}
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Server INVITE (§17.2.1, RFC 6026)

/// States of [`ServerInvite`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerInviteState {
    /// INVITE received; provisional responses may be sent.
    Proceeding,
    /// A 2xx was sent (RFC 6026); INVITE retransmissions absorbed until Timer L.
    Accepted,
    /// A 300-699 was sent; retransmitting it until ACK (Timer G) or Timer H.
    Completed,
    /// ACK received; absorbing ACK retransmissions until Timer I.
    Confirmed,
    /// Done.
    Terminated,
}

/// Server INVITE transaction.
#[derive(Debug, Clone)]
pub struct ServerInvite {
    core: Core,
    state: ServerInviteState,
    invite: Request,
    last_response: Option<Response>,
    interval_g: Duration,
}

impl ServerInvite {
    /// Creates the transaction for a new INVITE (which the TU already holds). Arms the automatic
    /// `100 Trying` per [`TimerConfig::trying_delay`].
    pub fn new(now: Instant, invite: Request, reliable: bool, cfg: TimerConfig) -> Self {
        let mut tx = ServerInvite {
            core: Core::new(cfg, reliable),
            state: ServerInviteState::Proceeding,
            invite,
            last_response: None,
            interval_g: cfg.t1,
        };
        match cfg.trying_delay {
            Some(d) if d.is_zero() => tx.send_trying(),
            Some(d) => tx.core.timers.set(Timer::Trying, now + d),
            None => {}
        }
        tx
    }

    common_outputs!();

    /// Current state.
    pub fn state(&self) -> ServerInviteState {
        self.state
    }

    /// The INVITE.
    pub fn request(&self) -> &Request {
        &self.invite
    }

    /// The last response sent (what a retransmitted INVITE is answered with).
    pub fn last_response(&self) -> Option<&Response> {
        self.last_response.as_ref()
    }

    fn send_trying(&mut self) {
        let trying = Response::for_request(&self.invite, 100, "Trying");
        self.core
            .transmits
            .push_back(Message::Response(trying.clone()));
        self.last_response = Some(trying);
    }

    /// The TU sends a response. 1xx keeps Proceeding; 2xx moves to Accepted (Timer L);
    /// 300-699 moves to Completed (Timers G and H). In Accepted only further 2xx (the TU's
    /// retransmissions) are sent; anything else is ignored.
    pub fn send_response(&mut self, now: Instant, resp: Response) {
        use ServerInviteState::*;
        self.core.timers.clear(Timer::Trying);
        match (self.state, resp.status) {
            (Proceeding, 100..=199) => {
                self.core
                    .transmits
                    .push_back(Message::Response(resp.clone()));
                self.last_response = Some(resp);
            }
            (Proceeding, 200..=299) => {
                self.core
                    .transmits
                    .push_back(Message::Response(resp.clone()));
                self.last_response = Some(resp);
                self.state = Accepted;
                self.core
                    .timers
                    .set(Timer::L, now + self.core.cfg.timeout_64t1());
            }
            (Proceeding, _) => {
                self.core
                    .transmits
                    .push_back(Message::Response(resp.clone()));
                self.last_response = Some(resp);
                self.state = Completed;
                if !self.core.reliable {
                    self.core.timers.set(Timer::G, now + self.core.cfg.t1);
                }
                self.core
                    .timers
                    .set(Timer::H, now + self.core.cfg.timeout_64t1());
            }
            (Accepted, 200..=299) => {
                self.core.transmits.push_back(Message::Response(resp));
            }
            _ => {}
        }
    }

    /// A request matched to this transaction arrived: a retransmitted INVITE (answered with the
    /// last response in Proceeding/Completed, absorbed otherwise) or an ACK.
    pub fn handle_request(&mut self, now: Instant, req: Request) {
        use ServerInviteState::*;
        match (&req.method, self.state) {
            (Method::Invite, Proceeding | Completed) => {
                if let Some(r) = &self.last_response {
                    self.core.transmits.push_back(Message::Response(r.clone()));
                }
            }
            (Method::Ack, Completed) => {
                self.core.timers.clear(Timer::G);
                self.core.timers.clear(Timer::H);
                self.state = Confirmed;
                let i = self.core.cfg.t4;
                if !self.core.wait_or_terminate(now, Timer::I, i) {
                    self.state = Terminated;
                }
            }
            (Method::Ack, Accepted) => self.core.events.push_back(TxEvent::Ack(req)),
            _ => {}
        }
    }

    /// Call when [`poll_timeout`](Self::poll_timeout) has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        use ServerInviteState::*;
        for t in self.core.timers.take_due(now) {
            match (t, self.state) {
                (Timer::Trying, Proceeding) if self.last_response.is_none() => self.send_trying(),
                (Timer::G, Completed) => {
                    if let Some(r) = &self.last_response {
                        self.core.transmits.push_back(Message::Response(r.clone()));
                    }
                    self.interval_g = self.interval_g.saturating_mul(2).min(self.core.cfg.t2);
                    self.core.timers.set(Timer::G, now + self.interval_g);
                }
                (Timer::H, Completed) => {
                    self.core.events.push_back(TxEvent::Timeout);
                    self.state = Terminated;
                    self.core.terminate();
                }
                (Timer::I, Confirmed) | (Timer::L, Accepted) => {
                    self.state = Terminated;
                    self.core.terminate();
                }
                _ => {}
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Server non-INVITE (§17.2.2)

/// States of [`ServerNonInvite`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerNonInviteState {
    /// Request received, nothing sent.
    Trying,
    /// A provisional response was sent.
    Proceeding,
    /// A final response was sent; answering retransmissions until Timer J.
    Completed,
    /// Done.
    Terminated,
}

/// Server non-INVITE transaction.
#[derive(Debug, Clone)]
pub struct ServerNonInvite {
    core: Core,
    state: ServerNonInviteState,
    request: Request,
    last_response: Option<Response>,
}

impl ServerNonInvite {
    /// Creates the transaction for a new request (which the TU already holds).
    pub fn new(_now: Instant, request: Request, reliable: bool, cfg: TimerConfig) -> Self {
        ServerNonInvite {
            core: Core::new(cfg, reliable),
            state: ServerNonInviteState::Trying,
            request,
            last_response: None,
        }
    }

    common_outputs!();

    /// Current state.
    pub fn state(&self) -> ServerNonInviteState {
        self.state
    }

    /// The request.
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// The TU sends a response (1xx → Proceeding, final → Completed and Timer J).
    pub fn send_response(&mut self, now: Instant, resp: Response) {
        use ServerNonInviteState::*;
        if !matches!(self.state, Trying | Proceeding) {
            return;
        }
        let provisional = resp.status < 200;
        self.core
            .transmits
            .push_back(Message::Response(resp.clone()));
        self.last_response = Some(resp);
        if provisional {
            self.state = Proceeding;
        } else {
            self.state = Completed;
            let j = self.core.cfg.timeout_64t1();
            if !self.core.wait_or_terminate(now, Timer::J, j) {
                self.state = Terminated;
            }
        }
    }

    /// A retransmission of the request arrived: answered with the last response, or absorbed
    /// in Trying.
    pub fn handle_request(&mut self, _now: Instant, _req: Request) {
        if matches!(
            self.state,
            ServerNonInviteState::Proceeding | ServerNonInviteState::Completed
        ) {
            if let Some(r) = &self.last_response {
                self.core.transmits.push_back(Message::Response(r.clone()));
            }
        }
    }

    /// Call when [`poll_timeout`](Self::poll_timeout) has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        for t in self.core.timers.take_due(now) {
            if t == Timer::J && self.state == ServerNonInviteState::Completed {
                self.state = ServerNonInviteState::Terminated;
                self.core.terminate();
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// UAS 2xx retransmission (§13.3.1.4)

/// Retransmits a 2xx to INVITE until the ACK arrives (§13.3.1.4): first retransmission after
/// T1, interval doubling up to T2; gives up after `64*T1` with [`TxEvent::Timeout`] (the TU
/// should then send BYE). Runs on every transport. The first copy is sent by the
/// [`ServerInvite`]; this machine only produces retransmissions (feed them back through
/// [`ServerInvite::send_response`] while it exists, or send them directly).
#[derive(Debug, Clone)]
pub struct Uas2xxRetransmitter {
    core: Core,
    response: Response,
    interval: Duration,
}

impl Uas2xxRetransmitter {
    /// Starts retransmitting `response` (sent once already at `now`).
    pub fn new(now: Instant, response: Response, cfg: TimerConfig) -> Self {
        let mut core = Core::new(cfg, false);
        core.timers.set(Timer::G, now + cfg.t1);
        core.timers.set(Timer::H, now + cfg.timeout_64t1());
        Uas2xxRetransmitter {
            core,
            response,
            interval: cfg.t1,
        }
    }

    common_outputs!();

    /// The ACK for the 2xx arrived: stop.
    pub fn handle_ack(&mut self, _now: Instant) {
        self.core.terminate();
    }

    /// Call when [`poll_timeout`](Self::poll_timeout) has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        for t in self.core.timers.take_due(now) {
            match t {
                Timer::G if !self.core.terminated => {
                    self.core
                        .transmits
                        .push_back(Message::Response(self.response.clone()));
                    self.interval = self.interval.saturating_mul(2).min(self.core.cfg.t2);
                    self.core.timers.set(Timer::G, now + self.interval);
                }
                Timer::H if !self.core.terminated => {
                    self.core.events.push_back(TxEvent::Timeout);
                    self.core.terminate();
                }
                _ => {}
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Matching (§17.1.3, §17.2.3)

/// Which side of a transaction a key identifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// A transaction we started.
    Client,
    /// A transaction started by a peer's request.
    Server,
}

/// Transaction identity.
///
/// * Server keys (§17.2.3): top-Via branch + sent-by + method, where ACK maps to INVITE (so an
///   ACK for a non-2xx matches its INVITE transaction) and CANCEL stays CANCEL (use
///   [`cancel_target`](Self::cancel_target) to find the INVITE it cancels). For a branch
///   without the `z9hG4bK` cookie (RFC 2543 peers) the branch is replaced by
///   Call-ID, From tag, CSeq number and sent-by, which is enough for this UAS.
/// * Client keys (§17.1.3): top-Via branch + CSeq method; `sent_by` is empty.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TransactionKey {
    /// Client or server.
    pub role: Role,
    /// Branch (or the RFC 2543 substitute).
    pub branch: String,
    /// Lower-cased sent-by of the top Via (server keys only).
    pub sent_by: String,
    /// Method the transaction was created for (never ACK).
    pub method: Method,
}

impl TransactionKey {
    /// Key of the server transaction an incoming request belongs to.
    pub fn server(req: &Request) -> Result<TransactionKey, HeaderError> {
        let via = req.headers.top_via()?;
        let sent_by = via.sent_by().to_ascii_lowercase();
        let method = match req.method {
            Method::Ack => Method::Invite,
            ref m => m.clone(),
        };
        let branch = match via.branch() {
            Some(b) if via.has_rfc3261_branch() => b.to_owned(),
            _ => {
                let call_id = req.headers.call_id()?;
                let from = req.headers.from()?;
                let seq = req.headers.cseq()?.seq;
                format!(
                    "rfc2543;{};{};{seq}",
                    call_id.as_str(),
                    from.tag().unwrap_or("")
                )
            }
        };
        Ok(TransactionKey {
            role: Role::Server,
            branch,
            sent_by,
            method,
        })
    }

    /// Key of a client transaction sending `req` (its top Via must carry the branch).
    pub fn client(req: &Request) -> Result<TransactionKey, HeaderError> {
        let via = req.headers.top_via()?;
        let branch = via
            .branch()
            .ok_or(HeaderError::invalid("Via", "missing branch"))?;
        Ok(TransactionKey {
            role: Role::Client,
            branch: branch.to_owned(),
            sent_by: String::new(),
            method: req.method.clone(),
        })
    }

    /// Key of the client transaction a response belongs to (top-Via branch + CSeq method).
    pub fn for_response(resp: &Response) -> Result<TransactionKey, HeaderError> {
        let via = resp.headers.top_via()?;
        let branch = via
            .branch()
            .ok_or(HeaderError::invalid("Via", "missing branch"))?;
        Ok(TransactionKey {
            role: Role::Client,
            branch: branch.to_owned(),
            sent_by: String::new(),
            method: resp.headers.cseq()?.method,
        })
    }

    /// For a CANCEL's server key: the key of the INVITE server transaction it cancels.
    pub fn cancel_target(&self) -> TransactionKey {
        TransactionKey {
            method: Method::Invite,
            ..self.clone()
        }
    }
}

/// Any of the four transaction machines.
#[derive(Debug, Clone)]
pub enum Transaction {
    /// Client INVITE.
    ClientInvite(ClientInvite),
    /// Client non-INVITE.
    ClientNonInvite(ClientNonInvite),
    /// Server INVITE.
    ServerInvite(ServerInvite),
    /// Server non-INVITE.
    ServerNonInvite(ServerNonInvite),
}

macro_rules! delegate {
    ($self:ident, $tx:ident => $e:expr) => {
        match $self {
            Transaction::ClientInvite($tx) => $e,
            Transaction::ClientNonInvite($tx) => $e,
            Transaction::ServerInvite($tx) => $e,
            Transaction::ServerNonInvite($tx) => $e,
        }
    };
}

impl Transaction {
    /// Creates the right client machine for `req` (INVITE or not).
    pub fn client(now: Instant, req: Request, reliable: bool, cfg: TimerConfig) -> Self {
        if req.method == Method::Invite {
            Transaction::ClientInvite(ClientInvite::new(now, req, reliable, cfg))
        } else {
            Transaction::ClientNonInvite(ClientNonInvite::new(now, req, reliable, cfg))
        }
    }

    /// Creates the right server machine for `req` (INVITE or not; not for ACK).
    pub fn server(now: Instant, req: Request, reliable: bool, cfg: TimerConfig) -> Self {
        if req.method == Method::Invite {
            Transaction::ServerInvite(ServerInvite::new(now, req, reliable, cfg))
        } else {
            Transaction::ServerNonInvite(ServerNonInvite::new(now, req, reliable, cfg))
        }
    }

    /// Next message to send.
    pub fn poll_transmit(&mut self) -> Option<Message> {
        delegate!(self, t => t.poll_transmit())
    }

    /// Next event for the TU.
    pub fn poll_event(&mut self) -> Option<TxEvent> {
        delegate!(self, t => t.poll_event())
    }

    /// Next deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        delegate!(self, t => t.poll_timeout())
    }

    /// Handles expired timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        delegate!(self, t => t.handle_timeout(now))
    }

    /// Transport failure.
    pub fn handle_transport_error(&mut self, now: Instant) {
        delegate!(self, t => t.handle_transport_error(now))
    }

    /// Whether the machine is terminated.
    pub fn is_terminated(&self) -> bool {
        delegate!(self, t => t.is_terminated())
    }

    /// Feeds a response (client machines only; ignored by servers).
    pub fn handle_response(&mut self, now: Instant, resp: Response) {
        match self {
            Transaction::ClientInvite(t) => t.handle_response(now, resp),
            Transaction::ClientNonInvite(t) => t.handle_response(now, resp),
            _ => {}
        }
    }

    /// Feeds a matched request (server machines only; ignored by clients).
    pub fn handle_request(&mut self, now: Instant, req: Request) {
        match self {
            Transaction::ServerInvite(t) => t.handle_request(now, req),
            Transaction::ServerNonInvite(t) => t.handle_request(now, req),
            _ => {}
        }
    }

    /// Sends a TU response (server machines only; ignored by clients).
    pub fn send_response(&mut self, now: Instant, resp: Response) {
        match self {
            Transaction::ServerInvite(t) => t.send_response(now, resp),
            Transaction::ServerNonInvite(t) => t.send_response(now, resp),
            _ => {}
        }
    }
}

/// What [`TransactionTable::route_request`] did with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestRoute {
    /// It matched an existing server transaction and was fed to it (retransmission or ACK).
    Matched(TransactionKey),
    /// No transaction matched: the TU must handle it (new request, or ACK for a 2xx). The key is
    /// the one to create the server transaction under.
    New(TransactionKey),
}

/// A map of transactions by key with aggregate polling.
#[derive(Debug, Default)]
pub struct TransactionTable {
    map: HashMap<TransactionKey, Transaction>,
}

impl TransactionTable {
    /// An empty table.
    pub fn new() -> Self {
        TransactionTable {
            map: HashMap::new(),
        }
    }

    /// Inserts (or replaces) a transaction.
    pub fn insert(&mut self, key: TransactionKey, tx: Transaction) {
        self.map.insert(key, tx);
    }

    /// The transaction under `key`.
    pub fn get(&self, key: &TransactionKey) -> Option<&Transaction> {
        self.map.get(key)
    }

    /// The transaction under `key`, mutably.
    pub fn get_mut(&mut self, key: &TransactionKey) -> Option<&mut Transaction> {
        self.map.get_mut(key)
    }

    /// Removes a transaction.
    pub fn remove(&mut self, key: &TransactionKey) -> Option<Transaction> {
        self.map.remove(key)
    }

    /// Number of transactions.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Feeds a response to its client transaction; `None` if none matched (a stray response,
    /// e.g. a 2xx retransmission after Timer M, goes to the TU or is dropped).
    pub fn route_response(
        &mut self,
        now: Instant,
        resp: Response,
    ) -> Result<Option<TransactionKey>, HeaderError> {
        let key = TransactionKey::for_response(&resp)?;
        match self.map.get_mut(&key) {
            Some(tx) => {
                tx.handle_response(now, resp);
                Ok(Some(key))
            }
            None => Ok(None),
        }
    }

    /// Feeds a request to its server transaction if one matches (§17.2.3).
    pub fn route_request(
        &mut self,
        now: Instant,
        req: Request,
    ) -> Result<RequestRoute, HeaderError> {
        let key = TransactionKey::server(&req)?;
        match self.map.get_mut(&key) {
            Some(tx) => {
                tx.handle_request(now, req);
                Ok(RequestRoute::Matched(key))
            }
            None => Ok(RequestRoute::New(key)),
        }
    }

    /// Earliest deadline over all transactions.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.map
            .values()
            .filter_map(Transaction::poll_timeout)
            .min()
    }

    /// Runs `handle_timeout` on every transaction whose deadline has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        for tx in self.map.values_mut() {
            if tx.poll_timeout().is_some_and(|t| t <= now) {
                tx.handle_timeout(now);
            }
        }
    }

    /// Drains every queued transmission.
    pub fn drain_transmits(&mut self) -> Vec<(TransactionKey, Message)> {
        let mut out = Vec::new();
        for (k, tx) in &mut self.map {
            while let Some(m) = tx.poll_transmit() {
                out.push((k.clone(), m));
            }
        }
        out
    }

    /// Drains every queued event.
    pub fn drain_events(&mut self) -> Vec<(TransactionKey, TxEvent)> {
        let mut out = Vec::new();
        for (k, tx) in &mut self.map {
            while let Some(e) = tx.poll_event() {
                out.push((k.clone(), e));
            }
        }
        out
    }

    /// Removes terminated transactions (drain their transmits and events first) and returns
    /// their keys.
    pub fn remove_terminated(&mut self) -> Vec<TransactionKey> {
        let dead: Vec<TransactionKey> = self
            .map
            .iter()
            .filter(|(_, t)| t.is_terminated())
            .map(|(k, _)| k.clone())
            .collect();
        for k in &dead {
            self.map.remove(k);
        }
        dead
    }
}

#[cfg(test)]
mod tests {
    use super::super::message::parse;
    use super::*;

    const INVITE: &[u8] = b"INVITE sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.example.com:5060;branch=z9hG4bK776asdhds\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@example.com>\r\n\
From: Alice <sip:alice@example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Route: <sip:proxy.example.com;lr>\r\n\
Contact: <sip:alice@pc33.example.com>\r\n\
Content-Length: 0\r\n\r\n";

    fn invite() -> Request {
        match parse(INVITE) {
            Ok(Message::Request(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    fn request(method: Method) -> Request {
        let mut r = invite();
        r.method = method.clone();
        r.headers.set("CSeq", format!("314160 {method}"));
        r
    }

    fn resp(req: &Request, status: u16) -> Response {
        Response::for_request(req, status, "").with_to_tag("bobtag")
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Drives a machine on a virtual clock: jumps to each deadline until `until`, recording
    /// the offsets (ms) at which messages were transmitted.
    fn run<T>(
        tx: &mut T,
        base: Instant,
        until: Duration,
        poll_timeout: impl Fn(&T) -> Option<Instant>,
        handle: impl Fn(&mut T, Instant),
        drain: impl Fn(&mut T) -> Vec<Message>,
    ) -> Vec<u128> {
        let mut sent: Vec<u128> = drain(tx).iter().map(|_| 0).collect();
        while let Some(t) = poll_timeout(tx) {
            if t > base + until {
                break;
            }
            handle(tx, t);
            for _ in drain(tx) {
                sent.push((t - base).as_millis());
            }
        }
        sent
    }

    fn drain_ci(t: &mut ClientInvite) -> Vec<Message> {
        std::iter::from_fn(|| t.poll_transmit()).collect()
    }
    fn drain_cn(t: &mut ClientNonInvite) -> Vec<Message> {
        std::iter::from_fn(|| t.poll_transmit()).collect()
    }
    fn drain_si(t: &mut ServerInvite) -> Vec<Message> {
        std::iter::from_fn(|| t.poll_transmit()).collect()
    }
    fn events<T>(t: &mut T, f: impl Fn(&mut T) -> Option<TxEvent>) -> Vec<TxEvent> {
        std::iter::from_fn(|| f(t)).collect()
    }

    #[test]
    fn rfc3261_17_1_1_2_timer_a_doubles_and_timer_b_fires_after_64_t1() {
        let base = Instant::now();
        let mut tx = ClientInvite::new(base, invite(), false, TimerConfig::DEFAULT);
        let sent = run(
            &mut tx,
            base,
            Duration::from_secs(40),
            ClientInvite::poll_timeout,
            ClientInvite::handle_timeout,
            drain_ci,
        );
        // 100 % loss: initial + retransmits at 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s (no T2 cap).
        assert_eq!(sent, vec![0, 500, 1500, 3500, 7500, 15500, 31500]);
        let ev = events(&mut tx, ClientInvite::poll_event);
        assert_eq!(ev, vec![TxEvent::Timeout, TxEvent::Terminated]);
        assert_eq!(tx.state(), ClientInviteState::Terminated);
        assert!(tx.poll_timeout().is_none());
    }

    #[test]
    fn rfc3261_17_1_1_2_timer_b_exact_deadline() {
        let base = Instant::now();
        let mut tx = ClientInvite::new(base, invite(), false, TimerConfig::DEFAULT);
        tx.handle_timeout(base + ms(31_999));
        assert!(!tx.is_terminated());
        tx.handle_timeout(base + ms(32_000));
        assert!(events(&mut tx, ClientInvite::poll_event).contains(&TxEvent::Timeout));
    }

    #[test]
    fn rfc3261_17_1_1_2_provisional_stops_retransmissions() {
        let base = Instant::now();
        let inv = invite();
        let mut tx = ClientInvite::new(base, inv.clone(), false, TimerConfig::DEFAULT);
        drain_ci(&mut tx);
        tx.handle_response(base + ms(100), resp(&inv, 180));
        assert_eq!(tx.state(), ClientInviteState::Proceeding);
        assert!(tx.poll_timeout().is_none(), "no timers in Proceeding");
        assert!(tx.cancel_request().is_some());
        let cancel = tx.cancel_request().unwrap();
        assert_eq!(cancel.method, Method::Cancel);
        assert_eq!(cancel.headers.cseq().unwrap().to_string(), "314159 CANCEL");
        assert_eq!(
            cancel.headers.top_via().unwrap().branch(),
            Some("z9hG4bK776asdhds")
        );
        assert_eq!(
            cancel.headers.get("Route"),
            Some("<sip:proxy.example.com;lr>")
        );
    }

    #[test]
    fn rfc3261_17_1_1_3_ack_for_non_2xx_and_timer_d() {
        let base = Instant::now();
        let inv = invite();
        let mut tx = ClientInvite::new(base, inv.clone(), false, TimerConfig::DEFAULT);
        drain_ci(&mut tx);
        let busy = resp(&inv, 486);
        tx.handle_response(base + ms(200), busy.clone());
        let sent = drain_ci(&mut tx);
        assert_eq!(sent.len(), 1);
        let Message::Request(ack) = &sent[0] else {
            panic!("expected ACK")
        };
        assert_eq!(ack.method, Method::Ack);
        assert_eq!(ack.uri, inv.uri);
        assert_eq!(ack.headers.cseq().unwrap().to_string(), "314159 ACK");
        assert_eq!(ack.headers.to().unwrap().tag(), Some("bobtag"));
        assert_eq!(ack.headers.vias().unwrap().len(), 1);
        assert_eq!(
            ack.headers.top_via().unwrap().branch(),
            Some("z9hG4bK776asdhds")
        );
        assert_eq!(ack.headers.get("Route"), Some("<sip:proxy.example.com;lr>"));
        assert_eq!(
            events(&mut tx, ClientInvite::poll_event),
            vec![TxEvent::Response(busy.clone())]
        );
        assert_eq!(tx.state(), ClientInviteState::Completed);
        // Retransmitted 486: ACK again, nothing for the TU.
        tx.handle_response(base + ms(700), busy);
        assert_eq!(drain_ci(&mut tx).len(), 1);
        assert!(tx.poll_event().is_none());
        // Timer D = 32 s.
        assert_eq!(
            tx.poll_timeout(),
            Some(base + ms(200) + Duration::from_secs(32))
        );
        tx.handle_timeout(base + ms(32_200));
        assert_eq!(tx.state(), ClientInviteState::Terminated);
    }

    #[test]
    fn rfc6026_client_accepted_passes_2xx_retransmissions_until_timer_m() {
        let base = Instant::now();
        let inv = invite();
        let mut tx = ClientInvite::new(base, inv.clone(), false, TimerConfig::DEFAULT);
        drain_ci(&mut tx);
        let ok = resp(&inv, 200);
        tx.handle_response(base + ms(100), ok.clone());
        assert_eq!(tx.state(), ClientInviteState::Accepted);
        assert!(drain_ci(&mut tx).is_empty(), "ACK for 2xx is the TU's job");
        tx.handle_response(base + ms(600), ok.clone());
        assert_eq!(
            events(&mut tx, ClientInvite::poll_event),
            vec![TxEvent::Response(ok.clone()), TxEvent::Response(ok)]
        );
        tx.handle_timeout(base + ms(100) + Duration::from_secs(32));
        assert!(tx.is_terminated());
    }

    #[test]
    fn rfc3261_17_1_2_2_timer_e_caps_at_t2_and_timer_f() {
        let base = Instant::now();
        let mut tx = ClientNonInvite::new(base, request(Method::Bye), false, TimerConfig::DEFAULT);
        let sent = run(
            &mut tx,
            base,
            Duration::from_secs(40),
            ClientNonInvite::poll_timeout,
            ClientNonInvite::handle_timeout,
            drain_cn,
        );
        let mut expected = vec![0, 500, 1500, 3500];
        let mut t = 3500;
        while t + 4000 < 32_000 {
            t += 4000;
            expected.push(t);
        }
        assert_eq!(sent, expected);
        assert_eq!(
            events(&mut tx, ClientNonInvite::poll_event),
            vec![TxEvent::Timeout, TxEvent::Terminated]
        );
    }

    #[test]
    fn rfc3261_17_1_2_2_proceeding_retransmits_at_t2() {
        let base = Instant::now();
        let bye = request(Method::Bye);
        let mut tx = ClientNonInvite::new(base, bye.clone(), false, TimerConfig::DEFAULT);
        drain_cn(&mut tx);
        tx.handle_timeout(base + ms(500));
        assert_eq!(drain_cn(&mut tx).len(), 1);
        tx.handle_response(base + ms(600), resp(&bye, 100));
        assert_eq!(tx.state(), ClientNonInviteState::Proceeding);
        // Next E still at 1500 (armed before), then T2 each.
        tx.handle_timeout(base + ms(1500));
        assert_eq!(drain_cn(&mut tx).len(), 1);
        assert_eq!(tx.poll_timeout(), Some(base + ms(5500)));
    }

    #[test]
    fn rfc3261_17_1_2_2_timer_k_absorbs_response_retransmissions() {
        let base = Instant::now();
        let bye = request(Method::Bye);
        let mut tx = ClientNonInvite::new(base, bye.clone(), false, TimerConfig::DEFAULT);
        drain_cn(&mut tx);
        let ok = resp(&bye, 200);
        tx.handle_response(base + ms(50), ok.clone());
        tx.handle_response(base + ms(60), ok.clone());
        assert_eq!(
            events(&mut tx, ClientNonInvite::poll_event),
            vec![TxEvent::Response(ok)]
        );
        assert_eq!(tx.poll_timeout(), Some(base + ms(5050)));
        tx.handle_timeout(base + ms(5049));
        assert!(!tx.is_terminated());
        tx.handle_timeout(base + ms(5050));
        assert!(tx.is_terminated());
        assert_eq!(tx.poll_event(), Some(TxEvent::Terminated));
    }

    #[test]
    fn rfc3261_17_2_1_timers_g_h_no_ack() {
        let base = Instant::now();
        let inv = invite();
        let cfg = TimerConfig {
            trying_delay: None,
            ..TimerConfig::DEFAULT
        };
        let mut tx = ServerInvite::new(base, inv.clone(), false, cfg);
        tx.send_response(base, resp(&inv, 486));
        let sent = run(
            &mut tx,
            base,
            Duration::from_secs(40),
            ServerInvite::poll_timeout,
            ServerInvite::handle_timeout,
            drain_si,
        );
        let mut expected = vec![0, 500, 1500, 3500];
        let mut t = 3500;
        while t + 4000 < 32_000 {
            t += 4000;
            expected.push(t);
        }
        assert_eq!(sent, expected, "G doubles, capped at T2, until H");
        assert_eq!(
            events(&mut tx, ServerInvite::poll_event),
            vec![TxEvent::Timeout, TxEvent::Terminated]
        );
    }

    #[test]
    fn rfc3261_17_2_1_ack_stops_g_and_timer_i_absorbs_acks() {
        let base = Instant::now();
        let inv = invite();
        let mut tx = ServerInvite::new(base, inv.clone(), false, TimerConfig::DEFAULT);
        tx.send_response(base + ms(10), resp(&inv, 486));
        drain_si(&mut tx);
        tx.handle_timeout(base + ms(510));
        assert_eq!(drain_si(&mut tx).len(), 1);
        let ack = ack_for_non2xx(&inv, &resp(&inv, 486));
        tx.handle_request(base + ms(700), ack.clone());
        assert_eq!(tx.state(), ServerInviteState::Confirmed);
        assert_eq!(tx.poll_timeout(), Some(base + ms(5700)), "Timer I = T4");
        tx.handle_request(base + ms(800), ack);
        assert!(drain_si(&mut tx).is_empty(), "ACK retransmission absorbed");
        assert!(tx.poll_event().is_none());
        tx.handle_timeout(base + ms(5700));
        assert_eq!(tx.state(), ServerInviteState::Terminated);
        assert_eq!(tx.poll_event(), Some(TxEvent::Terminated));
    }

    #[test]
    fn rfc3261_17_2_1_retransmitted_invite_gets_last_response() {
        let base = Instant::now();
        let inv = invite();
        let cfg = TimerConfig {
            trying_delay: None,
            ..TimerConfig::DEFAULT
        };
        let mut tx = ServerInvite::new(base, inv.clone(), false, cfg);
        // Before any response: absorbed.
        tx.handle_request(base, inv.clone());
        assert!(drain_si(&mut tx).is_empty());
        let ringing = resp(&inv, 180);
        tx.send_response(base + ms(5), ringing.clone());
        drain_si(&mut tx);
        tx.handle_request(base + ms(500), inv.clone());
        assert_eq!(drain_si(&mut tx), vec![Message::Response(ringing)]);
        let busy = resp(&inv, 486);
        tx.send_response(base + ms(600), busy.clone());
        drain_si(&mut tx);
        tx.handle_request(base + ms(700), inv.clone());
        assert_eq!(drain_si(&mut tx), vec![Message::Response(busy)]);
    }

    #[test]
    fn rfc3261_17_2_1_automatic_100_trying_after_200ms() {
        let base = Instant::now();
        let inv = invite();
        let mut tx = ServerInvite::new(base, inv.clone(), false, TimerConfig::DEFAULT);
        assert!(drain_si(&mut tx).is_empty());
        assert_eq!(tx.poll_timeout(), Some(base + ms(200)));
        tx.handle_timeout(base + ms(200));
        let sent = drain_si(&mut tx);
        let [Message::Response(t)] = sent.as_slice() else {
            panic!("expected 100 Trying, got {sent:?}")
        };
        assert_eq!(t.status, 100);
        assert_eq!(t.headers.to().unwrap().tag(), None);
        // Not sent if the TU answered in time.
        let mut fast = ServerInvite::new(base, inv.clone(), false, TimerConfig::DEFAULT);
        fast.send_response(base + ms(50), resp(&inv, 180));
        fast.handle_timeout(base + ms(200));
        assert_eq!(drain_si(&mut fast).len(), 1);
        // Immediate mode.
        let cfg = TimerConfig {
            trying_delay: Some(Duration::ZERO),
            ..TimerConfig::DEFAULT
        };
        let mut now100 = ServerInvite::new(base, inv, false, cfg);
        assert_eq!(drain_si(&mut now100).len(), 1);
    }

    #[test]
    fn rfc6026_server_accepted_absorbs_invites_and_passes_2xx_and_ack() {
        let base = Instant::now();
        let inv = invite();
        let mut tx = ServerInvite::new(base, inv.clone(), false, TimerConfig::DEFAULT);
        let ok = resp(&inv, 200);
        tx.send_response(base + ms(10), ok.clone());
        assert_eq!(tx.state(), ServerInviteState::Accepted);
        drain_si(&mut tx);
        tx.handle_request(base + ms(500), inv.clone());
        assert!(
            drain_si(&mut tx).is_empty(),
            "INVITE retransmission absorbed"
        );
        tx.send_response(base + ms(510), ok.clone());
        assert_eq!(drain_si(&mut tx), vec![Message::Response(ok)]);
        let ack = request(Method::Ack);
        tx.handle_request(base + ms(600), ack.clone());
        assert_eq!(tx.poll_event(), Some(TxEvent::Ack(ack)));
        tx.handle_timeout(base + ms(10) + Duration::from_secs(32));
        assert!(tx.is_terminated());
    }

    #[test]
    fn rfc3261_17_2_2_timer_j_absorbs_retransmitted_requests() {
        let base = Instant::now();
        let bye = request(Method::Bye);
        let mut tx = ServerNonInvite::new(base, bye.clone(), false, TimerConfig::DEFAULT);
        tx.handle_request(base + ms(100), bye.clone());
        assert!(tx.poll_transmit().is_none(), "Trying absorbs");
        let ok = resp(&bye, 200);
        tx.send_response(base + ms(200), ok.clone());
        assert_eq!(tx.poll_transmit(), Some(Message::Response(ok.clone())));
        tx.handle_request(base + ms(700), bye.clone());
        assert_eq!(tx.poll_transmit(), Some(Message::Response(ok)));
        assert!(
            tx.poll_event().is_none(),
            "retransmissions never reach the TU"
        );
        assert_eq!(
            tx.poll_timeout(),
            Some(base + ms(200) + Duration::from_secs(32))
        );
        tx.handle_timeout(base + ms(32_200));
        assert_eq!(tx.state(), ServerNonInviteState::Terminated);
    }

    #[test]
    fn rfc3261_17_tcp_no_retransmits_and_zero_wait_timers() {
        let base = Instant::now();
        let inv = invite();
        // Client INVITE: only Timer B.
        let mut ci = ClientInvite::new(base, inv.clone(), true, TimerConfig::DEFAULT);
        let sent = run(
            &mut ci,
            base,
            Duration::from_secs(40),
            ClientInvite::poll_timeout,
            ClientInvite::handle_timeout,
            drain_ci,
        );
        assert_eq!(sent, vec![0]);
        assert!(events(&mut ci, ClientInvite::poll_event).contains(&TxEvent::Timeout));
        // Client INVITE non-2xx: D = 0 → terminated straight after the ACK.
        let mut ci = ClientInvite::new(base, inv.clone(), true, TimerConfig::DEFAULT);
        drain_ci(&mut ci);
        ci.handle_response(base + ms(10), resp(&inv, 404));
        assert_eq!(drain_ci(&mut ci).len(), 1, "ACK still sent");
        assert!(ci.is_terminated());
        // Client non-INVITE: only F; K = 0.
        let bye = request(Method::Bye);
        let mut cn = ClientNonInvite::new(base, bye.clone(), true, TimerConfig::DEFAULT);
        let sent = run(
            &mut cn,
            base,
            Duration::from_secs(40),
            ClientNonInvite::poll_timeout,
            ClientNonInvite::handle_timeout,
            drain_cn,
        );
        assert_eq!(sent, vec![0]);
        let mut cn = ClientNonInvite::new(base, bye.clone(), true, TimerConfig::DEFAULT);
        cn.handle_response(base, resp(&bye, 200));
        assert!(cn.is_terminated());
        // Server INVITE: no G; I = 0.
        let mut si = ServerInvite::new(base, inv.clone(), true, TimerConfig::DEFAULT);
        si.send_response(base, resp(&inv, 486));
        drain_si(&mut si);
        assert_eq!(
            si.poll_timeout(),
            Some(base + Duration::from_secs(32)),
            "only H"
        );
        si.handle_request(base + ms(10), ack_for_non2xx(&inv, &resp(&inv, 486)));
        assert!(si.is_terminated());
        // Server non-INVITE: J = 0.
        let mut sn = ServerNonInvite::new(base, bye.clone(), true, TimerConfig::DEFAULT);
        sn.send_response(base, resp(&bye, 200));
        assert!(sn.is_terminated());
    }

    #[test]
    fn rfc3261_13_3_1_4_uas_2xx_retransmission() {
        let base = Instant::now();
        let inv = invite();
        let ok = resp(&inv, 200);
        let mut r = Uas2xxRetransmitter::new(base, ok.clone(), TimerConfig::DEFAULT);
        let sent = run(
            &mut r,
            base,
            Duration::from_secs(40),
            Uas2xxRetransmitter::poll_timeout,
            Uas2xxRetransmitter::handle_timeout,
            |t| std::iter::from_fn(|| t.poll_transmit()).collect(),
        );
        let mut expected = vec![500, 1500, 3500];
        let mut t = 3500;
        while t + 4000 < 32_000 {
            t += 4000;
            expected.push(t);
        }
        assert_eq!(sent, expected);
        assert_eq!(
            events(&mut r, Uas2xxRetransmitter::poll_event),
            vec![TxEvent::Timeout, TxEvent::Terminated]
        );
        // ACK stops it.
        let mut r = Uas2xxRetransmitter::new(base, ok, TimerConfig::DEFAULT);
        r.handle_timeout(base + ms(500));
        assert!(r.poll_transmit().is_some());
        r.handle_ack(base + ms(800));
        assert!(r.poll_timeout().is_none());
        assert_eq!(r.poll_event(), Some(TxEvent::Terminated));
    }

    #[test]
    fn late_timeout_call_does_not_burst() {
        let base = Instant::now();
        let mut tx = ClientInvite::new(base, invite(), false, TimerConfig::DEFAULT);
        drain_ci(&mut tx);
        tx.handle_timeout(base + ms(10_000));
        assert_eq!(drain_ci(&mut tx).len(), 1);
        assert_eq!(tx.poll_timeout(), Some(base + ms(11_000)));
    }

    #[test]
    fn transport_error_terminates() {
        let base = Instant::now();
        let mut tx =
            ClientNonInvite::new(base, request(Method::Options), false, TimerConfig::DEFAULT);
        tx.handle_transport_error(base);
        assert_eq!(
            events(&mut tx, ClientNonInvite::poll_event),
            vec![TxEvent::TransportError, TxEvent::Terminated]
        );
        assert!(tx.poll_timeout().is_none());
    }

    #[test]
    fn rfc3261_17_2_3_server_matching() {
        let inv = invite();
        let k_inv = TransactionKey::server(&inv).unwrap();
        let ack = ack_for_non2xx(&inv, &resp(&inv, 486));
        assert_eq!(
            TransactionKey::server(&ack).unwrap(),
            k_inv,
            "ACK matches INVITE"
        );
        let cancel = build_cancel(&inv);
        let k_cancel = TransactionKey::server(&cancel).unwrap();
        assert_ne!(k_cancel, k_inv, "CANCEL is its own transaction");
        assert_eq!(k_cancel.cancel_target(), k_inv, "…but finds the INVITE");
        let mut other = inv.clone();
        other.headers.set(
            "Via",
            "SIP/2.0/UDP elsewhere.example.com;branch=z9hG4bK776asdhds",
        );
        assert_ne!(
            TransactionKey::server(&other).unwrap(),
            k_inv,
            "sent-by is part of the key"
        );
        // RFC 2543 branch fallback is stable across retransmissions.
        let mut old = inv.clone();
        old.headers.set("Via", "SIP/2.0/UDP old.example.com");
        assert_eq!(
            TransactionKey::server(&old).unwrap(),
            TransactionKey::server(&old.clone()).unwrap()
        );
        // Client side: branch + CSeq method.
        let k_client = TransactionKey::client(&inv).unwrap();
        assert_eq!(
            TransactionKey::for_response(&resp(&inv, 180)).unwrap(),
            k_client
        );
        let cancel_resp = resp(&cancel, 200);
        assert_ne!(
            TransactionKey::for_response(&cancel_resp).unwrap(),
            k_client
        );
    }

    #[test]
    fn table_routes_and_reaps() {
        let base = Instant::now();
        let mut table = TransactionTable::new();
        let inv = invite();
        let RequestRoute::New(key) = table.route_request(base, inv.clone()).unwrap() else {
            panic!("first INVITE must be new")
        };
        let cfg = TimerConfig {
            trying_delay: None,
            ..TimerConfig::DEFAULT
        };
        table.insert(
            key.clone(),
            Transaction::server(base, inv.clone(), false, cfg),
        );
        if let Some(tx) = table.get_mut(&key) {
            tx.send_response(base, resp(&inv, 404));
        }
        assert_eq!(table.drain_transmits().len(), 1);
        assert_eq!(
            table.route_request(base + ms(100), inv.clone()).unwrap(),
            RequestRoute::Matched(key.clone())
        );
        assert_eq!(table.drain_transmits().len(), 1, "retransmitted 404");
        table
            .route_request(base + ms(200), ack_for_non2xx(&inv, &resp(&inv, 404)))
            .unwrap();
        assert_eq!(table.poll_timeout(), Some(base + ms(5200)));
        table.handle_timeout(base + ms(5200));
        assert_eq!(
            table.drain_events(),
            vec![(key.clone(), TxEvent::Terminated)]
        );
        assert_eq!(table.remove_terminated(), vec![key]);
        assert!(table.is_empty());
        // Client side.
        let mut out = TransactionTable::new();
        let ck = TransactionKey::client(&inv).unwrap();
        out.insert(
            ck.clone(),
            Transaction::client(base, inv.clone(), false, cfg),
        );
        assert_eq!(out.route_response(base, resp(&inv, 180)).unwrap(), Some(ck));
        let mut stray = resp(&inv, 200);
        stray.headers.set("Via", "SIP/2.0/UDP x;branch=z9hG4bKnope");
        assert_eq!(out.route_response(base, stray).unwrap(), None);
    }
}
