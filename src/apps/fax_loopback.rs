//! A fax line in virtual time: a spandsp sender (coda's wrapper, calling party) against the
//! [`FaxReceive`] machine, through real G.711 or through coda's UDPTL, with deterministic
//! loss. A whole fax session costs milliseconds of CPU, so tests, loss sweeps and benchmarks
//! use it instead of waiting for real time.

use std::path::Path;

use codecs::g711::Law;

use super::fax_rx::{Event, FaxReceive, FaxRxConfig, FaxRxResult};
use crate::fax::engine::{
    AudioFax, Document, EngineError, FaxEvent, FaxOutcome, FaxStats, T30Options, T38Fax,
    T38Options, BLOCK,
};
use crate::fax::udptl::{UdptlReceiver, UdptlSender};
use crate::sdp::t38::{EcMode, NegotiatedT38};
use crate::sdp::T38RateManagement;

/// Which packets the line loses (in each direction, counted per direction from 1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Loss {
    /// A clean line.
    None,
    /// Every n-th packet (n = 5 is 20 % spread loss).
    Every(usize),
    /// `len` consecutive packets out of every `period`.
    Burst { len: usize, period: usize },
    /// Each packet with probability `percent` / 100, from a fixed seed (xorshift).
    Random { percent: f64, seed: u64 },
}

impl Loss {
    fn lost(&self, n: usize, rng: &mut u64) -> bool {
        match *self {
            Loss::None => false,
            Loss::Every(k) => k > 0 && n.is_multiple_of(k),
            Loss::Burst { len, period } => period > 0 && n % period < len,
            Loss::Random { percent, .. } => {
                *rng ^= *rng << 13;
                *rng ^= *rng >> 7;
                *rng ^= *rng << 17;
                (*rng % 1_000_000) as f64 / 10_000.0 < percent
            }
        }
    }

    fn seed(&self) -> u64 {
        match *self {
            Loss::Random { seed, .. } => seed.max(1),
            _ => 0x9E37_79B9_7F4A_7C15,
        }
    }
}

/// The line between sender and coda.
#[derive(Clone, Debug)]
pub enum Line {
    /// G.711 passthrough; a lost packet is fill-in for the receiving engine.
    Audio { law: Law, loss: Loss },
    /// T.38 over coda's UDPTL with `redundancy` secondary IFPs both ways.
    T38 {
        version: u8,
        redundancy: u8,
        loss: Loss,
        /// Inject malformed and oversized datagrams towards coda every n steps.
        garbage_every: Option<usize>,
    },
}

/// What happened on both ends.
#[derive(Clone, Debug)]
pub struct LoopbackReport {
    /// The sender's phase E, if it got that far.
    pub sender: Option<FaxOutcome>,
    /// coda's result.
    pub receiver: FaxRxResult,
    /// 20 ms steps taken.
    pub steps: usize,
}

/// The T.38 parameters both ends use on a loopback line.
pub fn loopback_t38(version: u8) -> NegotiatedT38 {
    NegotiatedT38 {
        remote: std::net::SocketAddr::from(([127, 0, 0, 1], 40_000)),
        version,
        max_bit_rate: 14_400,
        rate_management: T38RateManagement::TransferredTcf,
        far_max_datagram: 400,
        far_max_buffer: 2000,
        ec_send: EcMode::Redundancy,
        fill_bit_removal: false,
    }
}

/// Longest session simulated (15 minutes of virtual time).
pub const MAX_STEPS: usize = 15 * 60 * 50;

/// Sends the TIFF at `tx_tiff` to a [`FaxReceive`] writing `rx_tiff`. `stop_sender(stats,
/// step)` returning true silences the sender from then on (a line drop).
pub fn run(
    tx_tiff: &Path,
    rx_tiff: &Path,
    sender_opts: &T30Options,
    rx_cfg: FaxRxConfig,
    line: &Line,
    mut stop_sender: impl FnMut(&FaxStats, usize) -> bool,
) -> Result<LoopbackReport, EngineError> {
    let opts = T30Options {
        calling_party: true,
        ..sender_opts.clone()
    };
    let mut events = Vec::new();
    let mut sender_out = None;
    let mut steps = 0;
    match line {
        Line::Audio { law, loss } => {
            let mut sender = AudioFax::new(&opts, Document::Send(tx_tiff))?;
            let mut rx = FaxReceive::new(rx_cfg, rx_tiff)?;
            let mut a = [0i16; BLOCK];
            let mut wire = [0u8; BLOCK];
            let (mut rng_f, mut rng_b) = (loss.seed(), loss.seed() ^ 0xABCD);
            let mut alive = true;
            for step in 1..=MAX_STEPS {
                steps = step;
                if alive {
                    sender.tx(&mut a);
                } else {
                    a = [0; BLOCK];
                }
                if alive && loss.lost(step, &mut rng_f) {
                    rx.handle_audio_gap(BLOCK);
                } else {
                    law.encode_slice(&a, &mut wire);
                    law.decode_slice(&wire, &mut a);
                    rx.handle_audio(&a);
                }
                let mut back = rx.step().unwrap_or([0; BLOCK]);
                if alive {
                    if loss.lost(step, &mut rng_b) {
                        sender.rx_fillin(BLOCK);
                    } else {
                        law.encode_slice(&back, &mut wire);
                        law.decode_slice(&wire, &mut back);
                        sender.rx(&back);
                    }
                    drain_sender(&mut || sender.poll_event(), &mut sender_out);
                    if stop_sender(&sender.stats(), step) {
                        alive = false;
                    }
                }
                events.extend(std::iter::from_fn(|| rx.poll_event()));
                if rx.is_done() {
                    break;
                }
            }
            // The sender finishes its own phase E a moment after coda (sending DCN).
            for _ in 0..250 {
                if sender_out.is_some() || !alive {
                    break;
                }
                sender.tx(&mut a);
                sender.rx(&[0; BLOCK]);
                drain_sender(&mut || sender.poll_event(), &mut sender_out);
            }
        }
        Line::T38 {
            version,
            redundancy,
            loss,
            garbage_every,
        } => {
            let neg = loopback_t38(*version);
            let t38 = T38Options {
                version: *version,
                ..Default::default()
            };
            let mut sender = T38Fax::new(&opts, &t38, Document::Send(tx_tiff))?;
            let mut rx = FaxReceive::new_t38(rx_cfg, rx_tiff, &neg)?;
            let mut tx = UdptlSender::new(*redundancy, 400);
            let mut srx = UdptlReceiver::new();
            let (mut n_fwd, mut n_back) = (0usize, 0usize);
            let (mut rng_f, mut rng_b) = (loss.seed(), loss.seed() ^ 0xABCD);
            let mut alive = true;
            for step in 1..=MAX_STEPS {
                steps = step;
                if alive {
                    sender.advance(BLOCK);
                    while let Some((ifp, count)) = sender.poll_ifp() {
                        let d = tx.packet(&ifp);
                        for _ in 0..count.max(1) {
                            n_fwd += 1;
                            if !loss.lost(n_fwd, &mut rng_f) {
                                rx.handle_datagram(&d);
                            }
                        }
                    }
                }
                if let Some(every) = garbage_every.filter(|e| *e > 0) {
                    if step % every == 0 {
                        rx.handle_datagram(&[0xff, 0xff, 0x7f, 1, 2, 3]);
                        rx.handle_datagram(&[]);
                        rx.handle_datagram(&[0x55; 3000]);
                        rx.handle_datagram(&[0x00, 0x01, 0xC0, 0xFF]);
                    }
                }
                rx.step();
                while let Some(d) = rx.poll_datagram() {
                    n_back += 1;
                    if !alive || loss.lost(n_back, &mut rng_b) {
                        continue;
                    }
                    if let Ok(ifps) = srx.receive(&d) {
                        for (seq, ifp) in ifps {
                            sender.rx_ifp(&ifp, seq);
                        }
                    }
                }
                if alive {
                    drain_sender(&mut || sender.poll_event(), &mut sender_out);
                    if stop_sender(&sender.stats(), step) {
                        alive = false;
                    }
                }
                events.extend(std::iter::from_fn(|| rx.poll_event()));
                if rx.is_done() {
                    break;
                }
            }
            for _ in 0..250 {
                if sender_out.is_some() || !alive {
                    break;
                }
                sender.advance(BLOCK);
                while sender.poll_ifp().is_some() {}
                drain_sender(&mut || sender.poll_event(), &mut sender_out);
            }
        }
    }
    let receiver = events
        .into_iter()
        .find_map(|e| match e {
            Event::Finished(r) => Some(*r),
            _ => None,
        })
        .ok_or(EngineError::Refused("a session that never ended"))?;
    Ok(LoopbackReport {
        sender: sender_out,
        receiver,
        steps,
    })
}

fn drain_sender(poll: &mut dyn FnMut() -> Option<FaxEvent>, out: &mut Option<FaxOutcome>) {
    while let Some(e) = poll() {
        if let FaxEvent::Finished(o) = e {
            *out = Some(o);
        }
    }
}
