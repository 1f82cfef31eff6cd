//! A fax session as a sans-IO machine — reception (fax to email), and the same machine in the
//! sending role (email to fax; `FaxReceive::new_send`): spandsp's engine (audio or T.38), the switch between
//! them, UDPTL framing, and the policy around it (when to ask for T.38, how long a fax may
//! take, what counts as a degraded page). Time is the number of 20 ms steps the shell has
//! taken; nothing here reads a clock or touches a socket. The one file spandsp writes is the
//! TIFF named at creation.
//!
//! Shell contract, every 20 ms: `step()` (returns the audio frame to send while in audio
//! mode); received audio goes to `handle_audio` in order (the jitter buffer's fixed delay
//! keeps fax timing intact: no time-stretching, no comfort noise), received UDPTL datagrams
//! to `handle_datagram`; then drain `poll_datagram` and `poll_event`.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use crate::fax::engine::{
    explain, explain_sent, AudioFax, CngDetector, Document, EngineError, FaxEvent, FaxOutcome,
    T30Options, T38Fax, T38Options, BLOCK,
};
use crate::fax::udptl::{UdptlReceiver, UdptlSender};
use crate::sdp::t38::NegotiatedT38;

/// Steps per second (20 ms each).
const STEPS_PER_SEC: u64 = 50;

/// Receive policy.
#[derive(Clone, Debug)]
pub struct FaxRxConfig {
    /// Our station identifier (CSI).
    pub ident: String,
    /// Offer error-correcting mode.
    pub ecm: bool,
    /// Offer V.17.
    pub v17: bool,
    /// Ask the far end to switch to T.38 ourselves: as soon as the caller's fax tone (CNG)
    /// is heard, or after `t38_request_after_ms` of audio, whichever comes first.
    pub t38_request: bool,
    /// How long to listen to audio before asking for T.38.
    pub t38_request_after_ms: u32,
    /// UDPTL redundancy depth we send (secondary IFPs per datagram).
    pub udptl_redundancy: u8,
    /// The longest a reception may take before we give up and keep what arrived.
    pub max_duration_secs: u32,
    /// The most pages we accept; the call ends after that many.
    pub max_pages: u32,
    /// Header line printed at the top of pages we send (at most 50 characters).
    pub page_header: Option<String>,
}

impl Default for FaxRxConfig {
    fn default() -> Self {
        Self {
            ident: String::new(),
            ecm: true,
            v17: true,
            t38_request: false,
            t38_request_after_ms: 1500,
            udptl_redundancy: 3,
            max_duration_secs: 30 * 60,
            max_pages: 100,
            page_header: None,
        }
    }
}

/// The transport the fax used at the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaxTransport {
    /// G.711 passthrough.
    Audio,
    /// T.38 over UDPTL.
    T38,
}

impl FaxTransport {
    /// For mails and records.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Audio => "audio (G.711)",
            Self::T38 => "T.38",
        }
    }
}

/// Why a reception ended early, when coda ended it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LocalStop {
    /// The call was hung up.
    Hangup,
    /// `max_duration_secs` passed.
    TooLong,
    /// `max_pages` reached.
    TooManyPages,
    /// The received document grew past the size limit (the shell measures the file).
    TooLarge,
}

/// The result of a reception, for the record and the owner's mail.
#[derive(Clone, Debug)]
pub struct FaxRxResult {
    /// spandsp's phase E report.
    pub outcome: FaxOutcome,
    /// Transport in use at the end.
    pub transport: FaxTransport,
    /// Pages that arrived (also for failed faxes).
    pub pages: u32,
    /// Length of the session in milliseconds (virtual time).
    pub duration_ms: u64,
    /// True when T.30 said OK but the pages are known to be damaged (non-ECM bad rows).
    pub degraded: bool,
    /// Whether coda ended it, and why.
    pub local_stop: Option<LocalStop>,
    /// Plain-English explanation for the owner.
    pub explanation: String,
    /// UDPTL counters (T.38 only): datagrams lost and not recovered.
    pub udptl_lost: u64,
    /// UDPTL counters (T.38 only): IFPs recovered from redundancy or FEC.
    pub udptl_recovered: u64,
}

impl FaxRxResult {
    /// T.30 succeeded and nothing is known to be damaged.
    pub fn clean(&self) -> bool {
        self.outcome.ok() && !self.degraded && self.local_stop.is_none()
    }
}

/// What the machine asks of the shell.
#[derive(Clone, Debug)]
pub enum Event {
    /// Re-INVITE the far end to `m=image udptl t38` (coda-initiated switch).
    RequestT38,
    /// The reception is over: store the TIFF's pages and tell the owner.
    Finished(Box<FaxRxResult>),
    /// End the call (send BYE).
    Hangup,
}

enum Engine {
    Audio(Box<AudioFax>),
    T38 {
        fax: Box<T38Fax>,
        tx: UdptlSender,
        rx: UdptlReceiver,
    },
    Gone,
}

/// One fax reception.
pub struct FaxReceive {
    cfg: FaxRxConfig,
    rx_path: PathBuf,
    engine: Engine,
    steps: u64,
    events: VecDeque<Event>,
    datagrams: VecDeque<Vec<u8>>,
    /// Extra copies of key datagrams, sent on later steps (`(due_step, bytes)`).
    repeats: VecDeque<(u64, Vec<u8>)>,
    t38_requested: bool,
    /// Listens for the caller's CNG while a T.38 request is still to come.
    cng: Option<CngDetector>,
    pages: u32,
    local_stop: Option<LocalStop>,
    finished: bool,
    /// Sending role: we placed the call and send the TIFF at `rx_path`.
    sending: bool,
}

impl FaxReceive {
    /// Start receiving in audio mode into the TIFF at `rx_path`.
    pub fn new(cfg: FaxRxConfig, rx_path: &Path) -> Result<Self, EngineError> {
        Self::with_role(cfg, rx_path, false)
    }

    /// Start sending the TIFF at `tx_path` (we are the calling party), in audio mode.
    /// The result's `pages` are the pages sent.
    pub fn new_send(cfg: FaxRxConfig, tx_path: &Path) -> Result<Self, EngineError> {
        Self::with_role(cfg, tx_path, true)
    }

    fn with_role(cfg: FaxRxConfig, path: &Path, sending: bool) -> Result<Self, EngineError> {
        let doc = if sending {
            Document::Send(path)
        } else {
            Document::Receive(path)
        };
        let fax = AudioFax::new(&t30_options(&cfg, sending), doc)?;
        // The receiving side listens for the caller's CNG to ask for T.38 early.
        let cng = if cfg.t38_request && !sending {
            Some(CngDetector::new()?)
        } else {
            None
        };
        Ok(Self {
            cfg,
            rx_path: path.to_path_buf(),
            engine: Engine::Audio(Box::new(fax)),
            steps: 0,
            events: VecDeque::new(),
            datagrams: VecDeque::new(),
            repeats: VecDeque::new(),
            t38_requested: false,
            cng,
            pages: 0,
            local_stop: None,
            finished: false,
            sending,
        })
    }

    /// Start directly in T.38 (the INVITE itself offered only `m=image`).
    pub fn new_t38(
        cfg: FaxRxConfig,
        rx_path: &Path,
        t38: &NegotiatedT38,
    ) -> Result<Self, EngineError> {
        let mut me = Self::new(cfg, rx_path)?;
        me.switch_to_t38(t38)?;
        Ok(me)
    }

    /// The TIFF spandsp writes.
    pub fn rx_path(&self) -> &Path {
        &self.rx_path
    }

    /// True while in audio mode (the shell keeps RTP flowing).
    pub fn is_audio(&self) -> bool {
        matches!(self.engine, Engine::Audio(_))
    }

    /// True once the result has been reported.
    pub fn is_done(&self) -> bool {
        self.finished
    }

    /// Audio from the far end, in order, 8 kHz linear.
    pub fn handle_audio(&mut self, pcm: &[i16]) {
        if let Engine::Audio(f) = &mut self.engine {
            f.rx(pcm);
            if let Some(det) = self.cng.as_mut().filter(|_| !self.t38_requested) {
                if det.process(pcm) {
                    self.t38_requested = true;
                    self.events.push_back(Event::RequestT38);
                }
            }
        }
        self.collect();
    }

    /// The shell found the received document larger than allowed: stop, keep what arrived.
    pub fn handle_too_large(&mut self) {
        if !self.finished {
            self.stop(LocalStop::TooLarge);
        }
    }

    /// Audio the jitter buffer knows was lost.
    pub fn handle_audio_gap(&mut self, samples: usize) {
        if let Engine::Audio(f) = &mut self.engine {
            f.rx_fillin(samples);
        }
        self.collect();
    }

    /// One UDPTL datagram from the far end. Garbage is counted and dropped.
    pub fn handle_datagram(&mut self, datagram: &[u8]) {
        if let Engine::T38 { fax, rx, .. } = &mut self.engine {
            if let Ok(ifps) = rx.receive(datagram) {
                for (seq, ifp) in ifps {
                    fax.rx_ifp(&ifp, seq);
                }
            }
        }
        self.collect();
    }

    /// Advance 20 ms. In audio mode returns the frame to send.
    pub fn step(&mut self) -> Option<[i16; BLOCK]> {
        if self.finished {
            return None;
        }
        self.steps += 1;
        let mut frame = None;
        match &mut self.engine {
            Engine::Audio(f) => {
                let mut out = [0i16; BLOCK];
                f.tx(&mut out);
                frame = Some(out);
                if self.cfg.t38_request
                    && !self.t38_requested
                    && self.steps * 20 >= u64::from(self.cfg.t38_request_after_ms)
                {
                    self.t38_requested = true;
                    self.events.push_back(Event::RequestT38);
                }
            }
            Engine::T38 { fax, .. } => fax.advance(BLOCK),
            Engine::Gone => {}
        }
        while self
            .repeats
            .front()
            .is_some_and(|(due, _)| *due <= self.steps)
        {
            if let Some((_, d)) = self.repeats.pop_front() {
                self.datagrams.push_back(d);
            }
        }
        if self.steps >= u64::from(self.cfg.max_duration_secs) * STEPS_PER_SEC {
            self.stop(LocalStop::TooLong);
        }
        self.collect();
        frame
    }

    /// The far end (or our re-INVITE) agreed on T.38: from now on IFPs over UDPTL.
    ///
    /// T.30 starts again on the new transport; spandsp truncates the TIFF, which is right
    /// while nothing has been received yet (the switch happens during the tones). A switch
    /// after pages arrived in audio would lose them, so it is refused then.
    pub fn switch_to_t38(&mut self, t38: &NegotiatedT38) -> Result<(), EngineError> {
        if self.finished || self.pages > 0 {
            return Err(EngineError::Refused("T.38 after pages were received"));
        }
        if matches!(self.engine, Engine::T38 { .. }) {
            // A repeated offer (session refresh) keeps the running terminal.
            return Ok(());
        }
        let opts = T38Options {
            version: t38.version,
            max_bit_rate: t38.max_bit_rate,
            max_buffer: t38.far_max_buffer,
            max_ifp: u32::try_from(t38.far_max_ifp()).unwrap_or(400),
            fill_bit_removal: t38.fill_bit_removal,
        };
        // Drop the audio engine first: both would write the same file.
        self.engine = Engine::Gone;
        let doc = if self.sending {
            Document::Send(&self.rx_path)
        } else {
            Document::Receive(&self.rx_path)
        };
        let fax = T38Fax::new(&t30_options(&self.cfg, self.sending), &opts, doc)?;
        let depth = if t38.sends_redundancy() {
            self.cfg.udptl_redundancy
        } else {
            0
        };
        self.engine = Engine::T38 {
            fax: Box::new(fax),
            tx: UdptlSender::new(depth, t38.far_max_datagram),
            rx: UdptlReceiver::new(),
        };
        Ok(())
    }

    /// Our re-INVITE to T.38 was refused: carry on in audio.
    pub fn t38_refused(&mut self) {}

    /// The call ended (BYE from the far end, or the shell gave up on media).
    pub fn handle_hangup(&mut self) {
        if !self.finished {
            self.stop(LocalStop::Hangup);
        }
    }

    /// The next UDPTL datagram to send.
    pub fn poll_datagram(&mut self) -> Option<Vec<u8>> {
        self.datagrams.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn stop(&mut self, why: LocalStop) {
        if self.local_stop.is_none() {
            self.local_stop = Some(why);
        }
        match &mut self.engine {
            Engine::Audio(f) => f.terminate(),
            Engine::T38 { fax, .. } => fax.terminate(),
            Engine::Gone => {}
        }
        self.collect();
        if !self.finished {
            // No engine left to report: report what we know.
            self.finish(FaxOutcome {
                code: 49,
                text: crate::fax::engine::completion_text(49),
                remote_ident: String::new(),
                stats: Default::default(),
            });
        }
    }

    /// Moves engine output into our queues.
    fn collect(&mut self) {
        let mut finished = None;
        match &mut self.engine {
            Engine::Audio(f) => {
                while let Some(e) = f.poll_event() {
                    match e {
                        FaxEvent::PageDone(s) => {
                            self.pages = self.pages.max(page_count(&s, self.sending))
                        }
                        FaxEvent::Finished(o) => finished = Some(o),
                        FaxEvent::Negotiating => {}
                    }
                }
            }
            Engine::T38 { fax, tx, .. } => {
                while let Some((ifp, count)) = fax.poll_ifp() {
                    let d = tx.packet(&ifp);
                    // Copies of key packets go out on later steps, not in one burst that a
                    // single loss event could take whole (fax.md §4.4).
                    for k in 1..u64::from(count.min(4)) {
                        self.repeats.push_back((self.steps + k, d.clone()));
                    }
                    self.datagrams.push_back(d);
                }
                while let Some(e) = fax.poll_event() {
                    match e {
                        FaxEvent::PageDone(s) => {
                            self.pages = self.pages.max(page_count(&s, self.sending))
                        }
                        FaxEvent::Finished(o) => finished = Some(o),
                        FaxEvent::Negotiating => {}
                    }
                }
            }
            Engine::Gone => {}
        }
        if self.pages >= self.cfg.max_pages && finished.is_none() && self.local_stop.is_none() {
            self.stop(LocalStop::TooManyPages);
            return;
        }
        if let Some(o) = finished {
            self.finish(o);
        }
    }

    fn finish(&mut self, outcome: FaxOutcome) {
        if self.finished {
            return;
        }
        self.finished = true;
        let pages = self.pages.max(page_count(&outcome.stats, self.sending));
        let degraded = outcome.ok() && !outcome.stats.ecm && outcome.stats.bad_rows > 0;
        let (transport, lost, recovered) = match &self.engine {
            Engine::T38 { rx, .. } => {
                let s = rx.stats();
                (FaxTransport::T38, s.lost, s.recovered)
            }
            _ => (FaxTransport::Audio, 0, 0),
        };
        let explanation = match (self.local_stop, degraded) {
            (Some(LocalStop::TooLong), _) => format!(
                "The fax took longer than the {} minutes allowed and was cut off.",
                self.cfg.max_duration_secs / 60
            ),
            (Some(LocalStop::TooLarge), _) => {
                "The fax was larger than the size allowed and was cut off; the pages \
                 received before that are attached."
                    .to_string()
            }
            (Some(LocalStop::TooManyPages), _) => format!(
                "The fax was longer than the {} pages allowed; the rest was not received.",
                self.cfg.max_pages
            ),
            (_, true) => format!(
                "The fax arrived, but {} rows were damaged on the line (no error correction \
                 was in use); parts of the pages may be unreadable.",
                outcome.stats.bad_rows
            ),
            _ if self.sending => explain_sent(outcome.code).to_string(),
            _ => explain(outcome.code).to_string(),
        };
        self.events.push_back(Event::Finished(Box::new(FaxRxResult {
            transport,
            pages,
            duration_ms: self.steps * 20,
            degraded,
            local_stop: self.local_stop,
            explanation,
            udptl_lost: lost,
            udptl_recovered: recovered,
            outcome,
        })));
        self.events.push_back(Event::Hangup);
    }
}

fn t30_options(cfg: &FaxRxConfig, sending: bool) -> T30Options {
    T30Options {
        ident: cfg.ident.clone(),
        header_info: cfg.page_header.clone().filter(|_| sending),
        ecm: cfg.ecm,
        v17: cfg.v17,
        calling_party: sending,
    }
}

fn page_count(s: &crate::fax::engine::FaxStats, sending: bool) -> u32 {
    if sending {
        s.pages_tx
    } else {
        s.pages_rx
    }
}

#[cfg(test)]
mod tests;
