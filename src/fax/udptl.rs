//! UDPTL (ITU-T T.38 §9.1): the UDP framing of T.38 IFP packets, sans-IO.
//!
//! # Wire format (T.38 Annex A, ASN.1 `UDPTLPacket`, PER aligned)
//!
//! ```text
//! seq-number          2 octets, big endian
//! primary-ifp-packet  open type: length determinant + IFP octets
//! error-recovery      1 octet CHOICE: 0x00 secondary-ifp-packets, 0x80 fec-info
//!   secondary-ifp-packets: count (length determinant), count × open type, newest first
//!   fec-info: fec-npackets (unconstrained INTEGER: 1 length octet + value),
//!             fec-data count (length determinant), count × (length determinant + octets)
//! ```
//!
//! Length determinants (X.691 §10.9): one octet `0xxxxxxx` below 128, two octets
//! `10xxxxxx xxxxxxxx` below 16384. The fragmented form (`11xxxxxx`, 16384 and up) is never
//! needed for fax and is rejected ([`UdptlError::FragmentedLength`]).
//!
//! # Parser policy
//!
//! * Never panics; every read is bounds-checked.
//! * Limits: at most [`MAX_SECONDARIES`] secondary IFPs or FEC entries, IFPs and FEC
//!   entries at most [`MAX_IFP_LEN`] octets, FEC span at most 255.
//! * **Trailing octets after the error-recovery field are tolerated and ignored** (as
//!   Asterisk does); some stacks pad datagrams, and rejecting them would only lose fax data.
//! * The padding bits of the CHOICE octet are ignored; only bit 0x80 selects the alternative.
//! * An open type of length 0 is accepted (X.691 forbids it, some senders use it to fill
//!   unavailable secondaries); the receiver treats an empty secondary as absent.
//!
//! # FEC (Annex C)
//!
//! The Annex C text was not at hand; the scheme below is the one every deployed stack
//! (spandsp, Asterisk, FreeSWITCH) uses on the wire, so it is what interoperates. A packet
//! with sequence number `s`, span `S` and `E` entries carries, for `m` in `0..E`, the XOR
//! of the IFPs `s + m - S·E + k·E` for `k` in `0..S` (an interleave of stride `E`, all older
//! than `s`), each IFP zero-padded to the longest in the group; the entry is as long as that
//! longest IFP. A group with exactly one IFP missing yields it back — but only with the
//! group's maximum length, so a recovered IFP that was shorter carries trailing zero octets
//! (a limitation of the scheme, shared by all implementations). Since packet `s`'s groups
//! end at `s-1 … s-E`, a single packet repairs any burst of up to `E` consecutive losses
//! right before it, provided the older group members arrived.

use std::collections::VecDeque;

/// Largest IFP (and FEC entry) accepted by the parser, in octets. T.38 IFPs are a few
/// hundred octets at most (an ECM HDLC frame plus header).
pub const MAX_IFP_LEN: usize = 4096;

/// Largest number of secondary IFPs (or FEC entries) accepted in one packet.
pub const MAX_SECONDARIES: usize = 16;

/// Largest redundancy depth [`UdptlSender`] uses.
pub const MAX_REDUNDANCY_DEPTH: u8 = 7;

/// `T38FaxMaxDatagram` assumed when the far end's is unknown, 0 or implausible (> 1400).
pub const DEFAULT_MAX_DATAGRAM: usize = 400;

/// Largest plausible `T38FaxMaxDatagram`; above it [`DEFAULT_MAX_DATAGRAM`] is used, as
/// Asterisk does (a UDPTL datagram must fit an Ethernet MTU unfragmented).
pub const MAX_PLAUSIBLE_DATAGRAM: usize = 1400;

/// Sequence-number distance (either way) beyond which the receiver assumes the far end
/// restarted its numbering rather than lost or reordered that many packets.
pub const MAX_SEQ_JUMP: u16 = 1000;

/// Received IFPs the receiver remembers, for duplicate detection and FEC repair.
const HISTORY: usize = 128;

/// Largest value encodable in a non-fragmented length determinant.
const MAX_LEN_DETERMINANT: usize = 0x3FFF;

/// Why a UDPTL datagram could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UdptlError {
    /// The datagram ends inside a field.
    #[error("UDPTL packet truncated")]
    Truncated,
    /// A length determinant uses the fragmented form (16384 octets or more).
    #[error("UDPTL fragmented length determinant not supported")]
    FragmentedLength,
    /// More than [`MAX_SECONDARIES`] secondary IFPs or FEC entries.
    #[error("UDPTL packet carries {0} secondary IFPs or FEC entries (limit 16)")]
    TooManySecondaries(usize),
    /// An IFP or FEC entry is longer than [`MAX_IFP_LEN`].
    #[error("UDPTL IFP of {0} octets exceeds the limit")]
    IfpTooLong(usize),
    /// The FEC span (`fec-npackets`) is not a small non-negative integer.
    #[error("UDPTL FEC span out of range")]
    BadFecSpan,
}

/// The error-recovery part of a UDPTL packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recovery {
    /// Copies of earlier IFPs, newest first: index 0 is `seq-1`, index 1 is `seq-2`, ...
    Redundancy(Vec<Vec<u8>>),
    /// Parity entries (see the module docs for which IFPs each entry covers).
    Fec {
        /// `fec-npackets`: how many IFPs each entry covers.
        span: u8,
        /// Parity data, one per interleave position.
        entries: Vec<Vec<u8>>,
    },
}

/// One decoded UDPTL datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UdptlPacket {
    /// Sequence number.
    pub seq: u16,
    /// The IFP this packet carries.
    pub primary: Vec<u8>,
    /// Redundancy or FEC data.
    pub recovery: Recovery,
}

/// Reads octets off a datagram without ever indexing out of bounds.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn u8(&mut self) -> Result<u8, UdptlError> {
        let b = *self.buf.get(self.pos).ok_or(UdptlError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], UdptlError> {
        let end = self.pos.checked_add(n).ok_or(UdptlError::Truncated)?;
        let s = self.buf.get(self.pos..end).ok_or(UdptlError::Truncated)?;
        self.pos = end;
        Ok(s)
    }

    /// A non-fragmented length determinant (X.691 §10.9.3.6/7).
    fn length(&mut self) -> Result<usize, UdptlError> {
        let b = self.u8()?;
        match b & 0xC0 {
            0x00 | 0x40 => Ok(usize::from(b)),
            0x80 => Ok((usize::from(b & 0x3F) << 8) | usize::from(self.u8()?)),
            _ => Err(UdptlError::FragmentedLength),
        }
    }

    /// An open type or octet string of at most [`MAX_IFP_LEN`] octets.
    fn field(&mut self) -> Result<Vec<u8>, UdptlError> {
        let n = self.length()?;
        if n > MAX_IFP_LEN {
            return Err(UdptlError::IfpTooLong(n));
        }
        Ok(self.take(n)?.to_vec())
    }

    fn count(&mut self) -> Result<usize, UdptlError> {
        let n = self.length()?;
        if n > MAX_SECONDARIES {
            return Err(UdptlError::TooManySecondaries(n));
        }
        Ok(n)
    }
}

fn write_length(out: &mut Vec<u8>, n: usize) {
    let n = n.min(MAX_LEN_DETERMINANT);
    if n < 0x80 {
        out.push(n as u8);
    } else {
        out.push(0x80 | (n >> 8) as u8);
        out.push((n & 0xFF) as u8);
    }
}

/// Octets `write_length` uses for `n`.
fn length_size(n: usize) -> usize {
    if n < 0x80 {
        1
    } else {
        2
    }
}

/// Writes a length determinant and the octets. Fields longer than 16383 octets (never
/// produced by T.38, rejected by [`UdptlPacket::parse`]) are cut to 16383 so that encoding
/// stays infallible and well formed.
fn write_field(out: &mut Vec<u8>, data: &[u8]) {
    let data = data.get(..MAX_LEN_DETERMINANT).unwrap_or(data);
    write_length(out, data.len());
    out.extend_from_slice(data);
}

fn field_size(len: usize) -> usize {
    let len = len.min(MAX_LEN_DETERMINANT);
    length_size(len) + len
}

/// Size of a count plus the fields, as `encode` writes them.
fn fields_size(fields: &[Vec<u8>]) -> usize {
    let n = fields.len().min(MAX_LEN_DETERMINANT);
    length_size(n)
        + fields
            .iter()
            .take(n)
            .map(|x| field_size(x.len()))
            .sum::<usize>()
}

impl UdptlPacket {
    /// Decodes a datagram. See the module docs for the limits and the trailing-octet policy.
    pub fn parse(datagram: &[u8]) -> Result<Self, UdptlError> {
        let mut r = Reader {
            buf: datagram,
            pos: 0,
        };
        let hi = r.u8()?;
        let lo = r.u8()?;
        let seq = u16::from_be_bytes([hi, lo]);
        let primary = r.field()?;
        let choice = r.u8()?;
        let recovery = if choice & 0x80 == 0 {
            let n = r.count()?;
            let mut secondaries = Vec::with_capacity(n);
            for _ in 0..n {
                secondaries.push(r.field()?);
            }
            Recovery::Redundancy(secondaries)
        } else {
            // fec-npackets: unconstrained INTEGER = length octet + two's complement value.
            let span = match r.length()? {
                1 => r.u8()?,
                2 => {
                    let v = r.take(2)?;
                    match v {
                        [0, s] => *s,
                        _ => return Err(UdptlError::BadFecSpan),
                    }
                }
                _ => return Err(UdptlError::BadFecSpan),
            };
            let n = r.count()?;
            let mut entries = Vec::with_capacity(n);
            for _ in 0..n {
                entries.push(r.field()?);
            }
            Recovery::Fec { span, entries }
        };
        Ok(Self {
            seq,
            primary,
            recovery,
        })
    }

    /// Appends the encoded datagram to `out`.
    ///
    /// Counts are written as given (more than [`MAX_SECONDARIES`] would not parse back);
    /// an empty IFP is written with length 0.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.reserve(self.encoded_len());
        out.extend_from_slice(&self.seq.to_be_bytes());
        write_field(out, &self.primary);
        match &self.recovery {
            Recovery::Redundancy(secondaries) => {
                out.push(0x00);
                write_length(out, secondaries.len());
                for s in secondaries.iter().take(MAX_LEN_DETERMINANT) {
                    write_field(out, s);
                }
            }
            Recovery::Fec { span, entries } => {
                out.push(0x80);
                if *span < 0x80 {
                    out.extend_from_slice(&[1, *span]);
                } else {
                    out.extend_from_slice(&[2, 0, *span]);
                }
                write_length(out, entries.len());
                for e in entries.iter().take(MAX_LEN_DETERMINANT) {
                    write_field(out, e);
                }
            }
        }
    }

    /// Size of [`encode`](Self::encode)'s output in octets.
    pub fn encoded_len(&self) -> usize {
        let body = match &self.recovery {
            Recovery::Redundancy(s) => 1 + fields_size(s),
            Recovery::Fec { span, entries } => {
                1 + if *span < 0x80 { 2 } else { 3 } + fields_size(entries)
            }
        };
        2 + field_size(self.primary.len()) + body
    }

    /// Encodes into a new vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode(&mut out);
        out
    }
}

/// The far end's `T38FaxMaxDatagram`, made usable: 0, unknown or above
/// [`MAX_PLAUSIBLE_DATAGRAM`] become [`DEFAULT_MAX_DATAGRAM`].
pub fn sane_max_datagram(max_datagram: Option<usize>) -> usize {
    match max_datagram {
        Some(n) if (1..=MAX_PLAUSIBLE_DATAGRAM).contains(&n) => n,
        _ => DEFAULT_MAX_DATAGRAM,
    }
}

/// Error-recovery scheme a [`UdptlSender`] puts in its packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SenderRecovery {
    /// Up to `depth` (0..=7) previous IFPs as secondaries; 0 = no error recovery.
    Redundancy {
        /// Number of previous IFPs repeated in each packet.
        depth: u8,
    },
    /// Annex C parity: `entries` (1..=8) parity entries over `span` (1..=8) IFPs each.
    Fec {
        /// IFPs per parity entry.
        span: u8,
        /// Parity entries per packet (the interleave stride).
        entries: u8,
    },
}

/// [`UdptlSender`] settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdptlSenderConfig {
    /// Redundancy or FEC.
    pub recovery: SenderRecovery,
    /// Largest UDPTL datagram the far end accepts: its `T38FaxMaxDatagram`, read as the
    /// size of the whole UDPTL packet (the conservative reading of an ambiguous attribute).
    /// Normalised with [`sane_max_datagram`].
    pub max_datagram: usize,
}

impl Default for UdptlSenderConfig {
    fn default() -> Self {
        Self {
            recovery: SenderRecovery::Redundancy { depth: 3 },
            max_datagram: DEFAULT_MAX_DATAGRAM,
        }
    }
}

/// Frames outgoing IFPs into UDPTL datagrams.
///
/// Sequence numbers start at 0 and wrap from 0xFFFF to 0. The primary IFP always goes in,
/// even if it alone exceeds `max_datagram` (dropping fax data would be worse than an
/// oversized datagram; spandsp is told the far end's maximum IFP size so this does not
/// happen in practice). Redundancy is then trimmed to fit: **the oldest secondaries are
/// dropped first**, because the newest copies repair the most likely loss (the packet just
/// before). With FEC, the number of entries is reduced until the packet fits (each packet
/// states its own span and entries, so the receiver follows).
#[derive(Clone, Debug)]
pub struct UdptlSender {
    cfg: UdptlSenderConfig,
    next_seq: u16,
    /// IFPs sent so far, saturating (FEC wind-up: no parity over packets never sent).
    sent: u64,
    /// Previous IFPs, newest first.
    history: VecDeque<Vec<u8>>,
}

impl UdptlSender {
    /// A sender with `depth` (clamped to 0..=7) redundant IFPs per packet and the far end's
    /// `T38FaxMaxDatagram` (`0` when unknown).
    pub fn new(depth: u8, max_datagram: usize) -> Self {
        Self::with_config(UdptlSenderConfig {
            recovery: SenderRecovery::Redundancy { depth },
            max_datagram,
        })
    }

    /// A sender with explicit settings (values clamped to the documented ranges).
    pub fn with_config(cfg: UdptlSenderConfig) -> Self {
        let recovery = match cfg.recovery {
            SenderRecovery::Redundancy { depth } => SenderRecovery::Redundancy {
                depth: depth.min(MAX_REDUNDANCY_DEPTH),
            },
            SenderRecovery::Fec { span, entries } => SenderRecovery::Fec {
                span: span.clamp(1, 8),
                entries: entries.clamp(1, 8),
            },
        };
        Self {
            cfg: UdptlSenderConfig {
                recovery,
                max_datagram: sane_max_datagram(Some(cfg.max_datagram)),
            },
            next_seq: 0,
            sent: 0,
            history: VecDeque::new(),
        }
    }

    /// The settings in use (after clamping).
    pub fn config(&self) -> UdptlSenderConfig {
        self.cfg
    }

    /// Sequence number the next packet will carry.
    pub fn next_seq(&self) -> u16 {
        self.next_seq
    }

    /// Frames `ifp` as the next packet and returns the datagram. IFPs longer than
    /// [`MAX_IFP_LEN`] are cut to that length (spandsp never produces them).
    pub fn packet(&mut self, ifp: &[u8]) -> Vec<u8> {
        let ifp = ifp.get(..MAX_IFP_LEN).unwrap_or(ifp);
        let seq = self.next_seq;
        let recovery = match self.cfg.recovery {
            SenderRecovery::Redundancy { depth } => self.redundancy(ifp.len(), depth),
            SenderRecovery::Fec { span, entries } => self.fec(seq, ifp.len(), span, entries),
        };
        let pkt = UdptlPacket {
            seq,
            primary: ifp.to_vec(),
            recovery,
        };
        let keep = match self.cfg.recovery {
            SenderRecovery::Redundancy { depth } => usize::from(depth),
            SenderRecovery::Fec { span, entries } => usize::from(span) * usize::from(entries),
        };
        self.history.push_front(pkt.primary.clone());
        self.history.truncate(keep);
        self.next_seq = seq.wrapping_add(1);
        self.sent = self.sent.saturating_add(1);
        pkt.to_bytes()
    }

    fn redundancy(&self, primary_len: usize, depth: u8) -> Recovery {
        let fixed = 2 + field_size(primary_len) + 1;
        let mut n = self.history.len().min(usize::from(depth));
        loop {
            let size = fixed
                + length_size(n)
                + self
                    .history
                    .iter()
                    .take(n)
                    .map(|s| field_size(s.len()))
                    .sum::<usize>();
            if n == 0 || size <= self.cfg.max_datagram {
                break;
            }
            n -= 1;
        }
        Recovery::Redundancy(self.history.iter().take(n).cloned().collect())
    }

    fn fec(&self, seq: u16, primary_len: usize, span: u8, entries: u8) -> Recovery {
        let s = u64::from(span);
        // Wind-up: only cover IFPs actually sent (span·entries ≤ sent).
        let mut e = u64::from(entries).min(self.sent / s);
        loop {
            let rec = Recovery::Fec {
                span: if e == 0 { 0 } else { span },
                entries: (0..e).map(|m| self.parity(s, e, m)).collect(),
            };
            let probe = UdptlPacket {
                seq,
                primary: Vec::new(),
                recovery: rec,
            };
            let size = probe.encoded_len() - 1 + field_size(primary_len);
            if e == 0 || size <= self.cfg.max_datagram {
                return probe.recovery;
            }
            e -= 1;
        }
    }

    /// Parity entry `m` for the packet about to be sent: XOR of the IFPs `back` packets ago
    /// for `back = S·E - m - k·E`, `k` in `0..S`.
    fn parity(&self, span: u64, entries: u64, m: u64) -> Vec<u8> {
        let mut out: Vec<u8> = Vec::new();
        for k in 0..span {
            let back = span * entries - m - k * entries;
            let Some(ifp) = usize::try_from(back)
                .ok()
                .and_then(|b| b.checked_sub(1))
                .and_then(|i| self.history.get(i))
            else {
                continue;
            };
            xor_into(&mut out, ifp);
        }
        out
    }
}

/// `acc ^= data`, growing `acc` with zeros to `data`'s length first.
fn xor_into(acc: &mut Vec<u8>, data: &[u8]) {
    if acc.len() < data.len() {
        acc.resize(data.len(), 0);
    }
    for (a, d) in acc.iter_mut().zip(data) {
        *a ^= d;
    }
}

/// Receiver counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UdptlStats {
    /// Datagrams that decoded.
    pub received: u64,
    /// Datagrams that did not decode.
    pub malformed: u64,
    /// IFPs handed out (primaries and recovered).
    pub delivered: u64,
    /// Datagrams whose primary had already been delivered (repeats, network duplicates).
    pub duplicates: u64,
    /// Datagrams whose primary is older than what was delivered and was never delivered
    /// (it had been counted as lost).
    pub late: u64,
    /// IFPs recovered from redundancy or FEC.
    pub recovered: u64,
    /// Sequence numbers skipped without recovery.
    pub lost: u64,
    /// Sequence-number jumps beyond [`MAX_SEQ_JUMP`] treated as a restart.
    pub restarts: u64,
}

/// Turns incoming UDPTL datagrams into IFPs in sequence order, each at most once,
/// recovering lost packets from redundancy or FEC.
///
/// * The first datagram sets the base (any start value; its secondaries are ignored).
/// * Sequence numbers compare modulo 2¹⁶ (window ±32768), so 0xFFFF → 0 is just the next.
/// * A datagram at or ahead of the next expected number delivers, oldest first, every
///   skipped IFP it can repair (secondaries, or FEC groups with one IFP missing), then its
///   primary. Skipped numbers that cannot be repaired count as lost; they are not waited
///   for (T.38 needs its IFPs promptly, and spandsp handles the gap).
/// * A datagram behind it delivers nothing: a duplicate if that IFP was delivered, else late.
/// * A jump of more than [`MAX_SEQ_JUMP`] either way is a restart of the far end's
///   numbering: history is dropped and the primary delivered as a new base.
#[derive(Clone, Debug)]
pub struct UdptlReceiver {
    /// Next sequence number to deliver; `None` before the first datagram.
    next: Option<u16>,
    /// Delivered IFPs by `seq % HISTORY`, tagged with their sequence number.
    history: Vec<Option<(u16, Vec<u8>)>>,
    stats: UdptlStats,
}

impl Default for UdptlReceiver {
    fn default() -> Self {
        Self::new()
    }
}

impl UdptlReceiver {
    /// A receiver waiting for its first datagram.
    pub fn new() -> Self {
        Self {
            next: None,
            history: vec![None; HISTORY],
            stats: UdptlStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> UdptlStats {
        self.stats
    }

    /// Sequence number expected next, once a datagram has arrived.
    pub fn next_expected(&self) -> Option<u16> {
        self.next
    }

    /// Handles one datagram; returns the IFPs now deliverable as `(seq, ifp)`, in order.
    pub fn receive(&mut self, datagram: &[u8]) -> Result<Vec<(u16, Vec<u8>)>, UdptlError> {
        let pkt = match UdptlPacket::parse(datagram) {
            Ok(p) => p,
            Err(e) => {
                self.stats.malformed += 1;
                return Err(e);
            }
        };
        self.stats.received += 1;
        let s = pkt.seq;
        let Some(next) = self.next else {
            return Ok(self.restart(pkt));
        };
        let ahead = s.wrapping_sub(next);
        let behind = next.wrapping_sub(s);
        if ahead < 0x8000 {
            if ahead > MAX_SEQ_JUMP {
                self.stats.restarts += 1;
                return Ok(self.restart(pkt));
            }
        } else if behind > MAX_SEQ_JUMP {
            self.stats.restarts += 1;
            return Ok(self.restart(pkt));
        } else {
            if self.get(s).is_some() {
                self.stats.duplicates += 1;
            } else {
                self.stats.late += 1;
            }
            return Ok(Vec::new());
        }

        let mut out = Vec::new();
        // Skipped sequence numbers, oldest first: next .. s-1.
        let mut repaired: Vec<Option<Vec<u8>>> = match &pkt.recovery {
            Recovery::Redundancy(sec) => (0..ahead)
                .map(|i| {
                    // Skipped number next+i is seq-(ahead-i), i.e. secondary ahead-i-1.
                    let idx = usize::from(ahead - i - 1);
                    sec.get(idx).filter(|x| !x.is_empty()).cloned()
                })
                .collect(),
            Recovery::Fec { .. } => vec![None; usize::from(ahead)],
        };
        if let Recovery::Fec { span, entries } = &pkt.recovery {
            self.fec_repair(s, ahead, *span, entries, &mut repaired);
        }
        for (i, r) in repaired.into_iter().enumerate() {
            // i < ahead ≤ MAX_SEQ_JUMP, so it fits in u16.
            let q = next.wrapping_add(i as u16);
            match r {
                Some(ifp) => {
                    self.stats.recovered += 1;
                    self.deliver(q, ifp, &mut out);
                }
                None => {
                    self.stats.lost += 1;
                    self.forget(q);
                }
            }
        }
        self.deliver(s, pkt.primary, &mut out);
        self.next = Some(s.wrapping_add(1));
        Ok(out)
    }

    /// Fills `repaired` (skipped numbers `seq-ahead .. seq-1`) from the FEC entries of the
    /// packet `seq`: a group with exactly one member missing, that member being skipped,
    /// gives it back as the XOR of the entry and the other members.
    fn fec_repair(
        &self,
        seq: u16,
        ahead: u16,
        span: u8,
        entries: &[Vec<u8>],
        repaired: &mut [Option<Vec<u8>>],
    ) {
        let e = entries.len();
        let span = usize::from(span);
        if e == 0 || span == 0 || span * e > HISTORY {
            return;
        }
        for (m, parity) in entries.iter().enumerate() {
            // Members seq + m - S·E + k·E, i.e. `back` = S·E - m - k·E packets ago (≥ 1).
            let mut missing: Option<usize> = None;
            let mut broken = false;
            let mut acc = parity.clone();
            for k in 0..span {
                let back = span * e - m - k * e;
                // back ≤ S·E ≤ HISTORY, fits in u16.
                let q = seq.wrapping_sub(back as u16);
                if back <= usize::from(ahead) {
                    // Skipped by this packet: index in `repaired`.
                    let idx = usize::from(ahead) - back;
                    if let Some(ifp) = repaired.get(idx).and_then(|r| r.as_ref()) {
                        xor_into(&mut acc, ifp);
                        continue;
                    }
                    if missing.is_some() {
                        broken = true;
                        break;
                    }
                    missing = Some(idx);
                } else if let Some(ifp) = self.get(q) {
                    xor_into(&mut acc, ifp);
                } else {
                    // Lost earlier: this group cannot repair anything now.
                    broken = true;
                    break;
                }
            }
            if broken {
                continue;
            }
            if let Some(slot) = missing.and_then(|idx| repaired.get_mut(idx)) {
                acc.truncate(parity.len());
                *slot = Some(acc);
            }
        }
    }

    fn restart(&mut self, pkt: UdptlPacket) -> Vec<(u16, Vec<u8>)> {
        self.history.iter_mut().for_each(|h| *h = None);
        let mut out = Vec::with_capacity(1);
        self.next = Some(pkt.seq.wrapping_add(1));
        self.deliver(pkt.seq, pkt.primary, &mut out);
        out
    }

    fn slot(seq: u16) -> usize {
        usize::from(seq) % HISTORY
    }

    fn get(&self, seq: u16) -> Option<&Vec<u8>> {
        match self.history.get(Self::slot(seq)) {
            Some(Some((tag, ifp))) if *tag == seq => Some(ifp),
            _ => None,
        }
    }

    fn forget(&mut self, seq: u16) {
        if let Some(h) = self.history.get_mut(Self::slot(seq)) {
            *h = None;
        }
    }

    fn deliver(&mut self, seq: u16, ifp: Vec<u8>, out: &mut Vec<(u16, Vec<u8>)>) {
        if let Some(h) = self.history.get_mut(Self::slot(seq)) {
            *h = Some((seq, ifp.clone()));
        }
        self.stats.delivered += 1;
        out.push((seq, ifp));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic xorshift64 for the loss patterns.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn ifp(i: u32, rng: &mut XorShift) -> Vec<u8> {
        let len = 1 + rng.below(60) as usize;
        let mut v: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        // Make every IFP distinct and non-zero-terminated so padding errors show.
        v.extend_from_slice(&i.to_be_bytes());
        v.push(0xA5);
        v
    }

    fn seqs(out: &[(u16, Vec<u8>)]) -> Vec<u16> {
        out.iter().map(|(s, _)| *s).collect()
    }

    // ------------------------------------------------------------- codec (Annex A)

    #[test]
    fn t38_annex_a_golden_redundancy_packet() {
        // seq 0x0102, primary IFP {06 00 01 02} (4 octets), two secondaries {05} and {04 AA}.
        let bytes = [
            0x01, 0x02, // seq-number
            0x04, 0x06, 0x00, 0x01, 0x02, // primary: length 4 + IFP
            0x00, // error-recovery: secondary-ifp-packets
            0x02, // count 2
            0x01, 0x05, // seq-1
            0x02, 0x04, 0xAA, // seq-2
        ];
        let pkt = UdptlPacket::parse(&bytes).unwrap();
        assert_eq!(
            pkt,
            UdptlPacket {
                seq: 0x0102,
                primary: vec![0x06, 0x00, 0x01, 0x02],
                recovery: Recovery::Redundancy(vec![vec![0x05], vec![0x04, 0xAA]]),
            }
        );
        assert_eq!(pkt.to_bytes(), bytes);
        assert_eq!(pkt.encoded_len(), bytes.len());
    }

    #[test]
    fn t38_annex_a_golden_fec_packet() {
        let bytes = [
            0xFF, 0xFF, // seq 65535
            0x01, 0x00, // primary: 1 octet, no-signal indicator
            0x80, // error-recovery: fec-info
            0x01, 0x03, // fec-npackets: INTEGER, 1 octet, 3
            0x02, // 2 entries
            0x02, 0x11, 0x22, 0x01, 0x33,
        ];
        let pkt = UdptlPacket::parse(&bytes).unwrap();
        assert_eq!(pkt.seq, 0xFFFF);
        assert_eq!(pkt.primary, vec![0x00]);
        assert_eq!(
            pkt.recovery,
            Recovery::Fec {
                span: 3,
                entries: vec![vec![0x11, 0x22], vec![0x33]]
            }
        );
        assert_eq!(pkt.to_bytes(), bytes);
    }

    #[test]
    fn t38_annex_a_two_octet_length_determinant() {
        let ifp: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
        let pkt = UdptlPacket {
            seq: 7,
            primary: ifp.clone(),
            recovery: Recovery::Redundancy(vec![]),
        };
        let bytes = pkt.to_bytes();
        // 300 = 0x012C → 0x81 0x2C.
        assert_eq!(&bytes[..4], &[0x00, 0x07, 0x81, 0x2C]);
        assert_eq!(&bytes[bytes.len() - 2..], &[0x00, 0x00]);
        assert_eq!(UdptlPacket::parse(&bytes).unwrap(), pkt);
    }

    #[test]
    fn t38_annex_a_rejects_fragmented_length() {
        assert_eq!(
            UdptlPacket::parse(&[0, 1, 0xC1, 0, 0]),
            Err(UdptlError::FragmentedLength)
        );
    }

    #[test]
    fn t38_9_1_rejects_truncated() {
        let good = [0x00, 0x05, 0x02, 0x06, 0x07, 0x00, 0x01, 0x01, 0x09];
        assert!(UdptlPacket::parse(&good).is_ok());
        for cut in 0..good.len() {
            assert_eq!(
                UdptlPacket::parse(&good[..cut]),
                Err(UdptlError::Truncated),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn t38_9_1_tolerates_trailing_octets() {
        let bytes = [0x00, 0x05, 0x01, 0x06, 0x00, 0x00, 0xDE, 0xAD];
        let pkt = UdptlPacket::parse(&bytes).unwrap();
        assert_eq!(pkt.primary, vec![0x06]);
        assert_eq!(pkt.recovery, Recovery::Redundancy(vec![]));
    }

    #[test]
    fn t38_9_1_rejects_too_many_secondaries_and_long_ifp() {
        let mut b = vec![0, 1, 1, 6, 0x00, 17];
        for _ in 0..17 {
            b.extend_from_slice(&[1, 6]);
        }
        assert_eq!(
            UdptlPacket::parse(&b),
            Err(UdptlError::TooManySecondaries(17))
        );
        let mut b = vec![0, 1, 0x90, 0x01]; // length 4097
        b.extend(std::iter::repeat_n(0u8, 4097));
        b.extend_from_slice(&[0, 0]);
        assert_eq!(UdptlPacket::parse(&b), Err(UdptlError::IfpTooLong(4097)));
        let b = [0, 1, 1, 6, 0x80, 1, 3, 17];
        assert_eq!(
            UdptlPacket::parse(&b),
            Err(UdptlError::TooManySecondaries(17))
        );
        let b = [0, 1, 1, 6, 0x80, 2, 1, 0, 0];
        assert_eq!(UdptlPacket::parse(&b), Err(UdptlError::BadFecSpan));
    }

    #[test]
    fn t38_9_1_parse_never_panics_on_noise() {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let mut rx = UdptlReceiver::new();
        for _ in 0..20_000 {
            let len = rng.below(40) as usize;
            let d: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            if let Ok(p) = UdptlPacket::parse(&d) {
                let again = UdptlPacket::parse(&p.to_bytes()).unwrap();
                assert_eq!(again, p);
            }
            let _ = rx.receive(&d);
        }
    }

    // ------------------------------------------------------------- sender

    #[test]
    fn t38_9_1_sender_sequence_and_redundancy_newest_first() {
        let mut tx = UdptlSender::new(2, 400);
        let a = UdptlPacket::parse(&tx.packet(&[1])).unwrap();
        let b = UdptlPacket::parse(&tx.packet(&[2])).unwrap();
        let c = UdptlPacket::parse(&tx.packet(&[3])).unwrap();
        let d = UdptlPacket::parse(&tx.packet(&[4])).unwrap();
        assert_eq!((a.seq, b.seq, c.seq, d.seq), (0, 1, 2, 3));
        assert_eq!(a.recovery, Recovery::Redundancy(vec![]));
        assert_eq!(b.recovery, Recovery::Redundancy(vec![vec![1]]));
        assert_eq!(d.recovery, Recovery::Redundancy(vec![vec![3], vec![2]]));
        // Golden bytes of packet 3: 00 03 | 01 04 | 00 | 02 | 01 03 | 01 02.
        assert_eq!(
            tx_bytes_for(2, &[&[1], &[2], &[3], &[4]]),
            vec![0x00, 0x03, 0x01, 0x04, 0x00, 0x02, 0x01, 0x03, 0x01, 0x02]
        );
    }

    fn tx_bytes_for(depth: u8, ifps: &[&[u8]]) -> Vec<u8> {
        let mut tx = UdptlSender::new(depth, 400);
        let mut last = Vec::new();
        for i in ifps {
            last = tx.packet(i);
        }
        last
    }

    #[test]
    fn t38_9_1_sender_seq_wraps() {
        let mut tx = UdptlSender::new(1, 400);
        tx.next_seq = 0xFFFF;
        let a = UdptlPacket::parse(&tx.packet(&[1])).unwrap();
        let b = UdptlPacket::parse(&tx.packet(&[2])).unwrap();
        assert_eq!((a.seq, b.seq), (0xFFFF, 0));
        assert_eq!(b.recovery, Recovery::Redundancy(vec![vec![1]]));
    }

    #[test]
    fn t38_9_1_sender_trims_oldest_secondaries_to_max_datagram() {
        let mut tx = UdptlSender::new(3, 100);
        tx.packet(&[0xA; 40]);
        tx.packet(&[0xB; 30]);
        tx.packet(&[0xC; 20]);
        // seq 2 + primary 21 + choice 1 + count 1 = 25; secondaries 21 + 31 fit (77),
        // the oldest (41) would make 118 > 100.
        let d = tx.packet(&[0xD; 20]);
        assert!(d.len() <= 100, "{}", d.len());
        let p = UdptlPacket::parse(&d).unwrap();
        assert_eq!(
            p.recovery,
            Recovery::Redundancy(vec![vec![0xC; 20], vec![0xB; 30]])
        );
        // The primary always goes in, even alone over the limit.
        let big = tx.packet(&[0xE; 150]);
        let p = UdptlPacket::parse(&big).unwrap();
        assert_eq!(p.primary.len(), 150);
        assert_eq!(p.recovery, Recovery::Redundancy(vec![]));
    }

    #[test]
    fn t38_9_1_sender_clamps_config() {
        assert_eq!(
            UdptlSender::new(9, 0).config(),
            UdptlSenderConfig {
                recovery: SenderRecovery::Redundancy { depth: 7 },
                max_datagram: 400
            }
        );
        assert_eq!(UdptlSender::new(1, 1500).config().max_datagram, 400);
        assert_eq!(UdptlSender::new(1, 1400).config().max_datagram, 1400);
        assert_eq!(sane_max_datagram(None), 400);
        assert_eq!(sane_max_datagram(Some(72)), 72);
    }

    // ------------------------------------------------------------- receiver

    #[test]
    fn t38_9_1_redundancy_recovers_lost_packet() {
        let mut tx = UdptlSender::new(3, 400);
        let mut rx = UdptlReceiver::new();
        let d: Vec<Vec<u8>> = (0u8..5).map(|i| tx.packet(&[i, i])).collect();
        assert_eq!(rx.receive(&d[0]).unwrap(), vec![(0, vec![0, 0])]);
        // 1 and 2 lost; 3 carries them.
        let out = rx.receive(&d[3]).unwrap();
        assert_eq!(out, vec![(1, vec![1, 1]), (2, vec![2, 2]), (3, vec![3, 3])]);
        assert_eq!(seqs(&rx.receive(&d[4]).unwrap()), vec![4]);
        let s = rx.stats();
        assert_eq!((s.recovered, s.lost, s.delivered), (2, 0, 5));
    }

    #[test]
    fn t38_9_1_redundancy_burst_longer_than_depth_counts_lost() {
        let mut tx = UdptlSender::new(2, 400);
        let mut rx = UdptlReceiver::new();
        let d: Vec<Vec<u8>> = (0u8..6).map(|i| tx.packet(&[i])).collect();
        rx.receive(&d[0]).unwrap();
        // 1, 2, 3, 4 lost; 5 carries 4 and 3 only.
        assert_eq!(seqs(&rx.receive(&d[5]).unwrap()), vec![3, 4, 5]);
        let s = rx.stats();
        assert_eq!((s.recovered, s.lost), (2, 2));
        // A late 2 is dropped.
        assert!(rx.receive(&d[2]).unwrap().is_empty());
        assert_eq!(rx.stats().late, 1);
    }

    #[test]
    fn t38_9_1_duplicate() {
        let mut tx = UdptlSender::new(3, 400);
        let mut rx = UdptlReceiver::new();
        let a = tx.packet(&[1]);
        let b = tx.packet(&[2]);
        assert_eq!(rx.receive(&a).unwrap().len(), 1);
        assert_eq!(rx.receive(&b).unwrap().len(), 1);
        assert!(rx.receive(&b).unwrap().is_empty());
        assert!(rx.receive(&a).unwrap().is_empty());
        let s = rx.stats();
        assert_eq!((s.received, s.duplicates, s.delivered), (4, 2, 2));
    }

    #[test]
    fn t38_9_1_secondary_already_delivered_is_not_repeated() {
        let mut tx = UdptlSender::new(3, 400);
        let mut rx = UdptlReceiver::new();
        let d: Vec<Vec<u8>> = (0u8..4).map(|i| tx.packet(&[i])).collect();
        for (i, x) in d.iter().enumerate() {
            assert_eq!(seqs(&rx.receive(x).unwrap()), vec![i as u16]);
        }
        assert_eq!(rx.stats().recovered, 0);
    }

    #[test]
    fn t38_9_1_seq_wrap() {
        let mut tx = UdptlSender::new(3, 400);
        tx.next_seq = 0xFFFD;
        let mut rx = UdptlReceiver::new();
        let d: Vec<Vec<u8>> = (0u8..6).map(|i| tx.packet(&[i])).collect();
        // seqs FFFD FFFE FFFF 0 1 2; lose FFFF and 0.
        assert_eq!(seqs(&rx.receive(&d[0]).unwrap()), vec![0xFFFD]);
        assert_eq!(seqs(&rx.receive(&d[1]).unwrap()), vec![0xFFFE]);
        assert_eq!(seqs(&rx.receive(&d[4]).unwrap()), vec![0xFFFF, 0, 1]);
        assert!(rx.receive(&d[2]).unwrap().is_empty());
        assert_eq!(seqs(&rx.receive(&d[5]).unwrap()), vec![2]);
        let s = rx.stats();
        assert_eq!(
            (s.recovered, s.lost, s.duplicates, s.restarts),
            (2, 0, 1, 0)
        );
    }

    #[test]
    fn t38_9_1_any_start_value_and_restart_on_huge_jump() {
        let mut rx = UdptlReceiver::new();
        let pkt = |seq: u16, b: u8| {
            UdptlPacket {
                seq,
                primary: vec![b],
                recovery: Recovery::Redundancy(vec![vec![0xEE]]),
            }
            .to_bytes()
        };
        // Cisco-style start at 32768: secondaries of the first packet are ignored.
        assert_eq!(rx.receive(&pkt(32768, 1)).unwrap(), vec![(32768, vec![1])]);
        assert_eq!(seqs(&rx.receive(&pkt(32769, 2)).unwrap()), vec![32769]);
        // Forward jump of 5000: restart, primary only.
        assert_eq!(seqs(&rx.receive(&pkt(37769, 3)).unwrap()), vec![37769]);
        // Backward jump far beyond the late window (far end restarted lower): restart.
        assert_eq!(seqs(&rx.receive(&pkt(30000, 4)).unwrap()), vec![30000]);
        assert_eq!(seqs(&rx.receive(&pkt(30001, 5)).unwrap()), vec![30001]);
        // A small step back is late, not a restart.
        assert!(rx.receive(&pkt(29990, 6)).unwrap().is_empty());
        let s = rx.stats();
        assert_eq!((s.restarts, s.lost, s.recovered, s.late), (2, 0, 0, 1));
    }

    #[test]
    fn t38_9_1_malformed_is_counted_not_fatal() {
        let mut rx = UdptlReceiver::new();
        assert_eq!(rx.receive(&[0x00]), Err(UdptlError::Truncated));
        assert_eq!(rx.stats().malformed, 1);
        assert_eq!(seqs(&rx.receive(&[0, 9, 1, 6, 0, 0]).unwrap()), vec![9]);
    }

    #[test]
    fn t38_9_1_empty_secondary_is_treated_as_absent() {
        let mut rx = UdptlReceiver::new();
        rx.receive(&[0, 1, 1, 6, 0, 0]).unwrap();
        // seq 3 with secondaries [seq 2 = {}, seq 1 = ...]: 2 cannot be recovered.
        let out = rx.receive(&[0, 3, 1, 8, 0, 2, 0, 1, 6]).unwrap();
        assert_eq!(seqs(&out), vec![3]);
        assert_eq!(rx.stats().lost, 1);
    }

    // ------------------------------------------------------------- FEC (Annex C)

    fn fec_sender(span: u8, entries: u8) -> UdptlSender {
        UdptlSender::with_config(UdptlSenderConfig {
            recovery: SenderRecovery::Fec { span, entries },
            max_datagram: 1400,
        })
    }

    #[test]
    fn t38_annex_c_fec_parity_layout() {
        // span 2, entries 2: packet s entry m covers s+m-4 and s+m-2.
        let mut tx = fec_sender(2, 2);
        let ifps: [&[u8]; 5] = [&[0x01], &[0x02, 0x20], &[0x04], &[0x08, 0x80, 0x81], &[0]];
        let mut last = Vec::new();
        for i in ifps {
            last = tx.packet(i);
        }
        let p = UdptlPacket::parse(&last).unwrap();
        assert_eq!(p.seq, 4);
        // m=0: IFP0 ^ IFP2 = 05; m=1: IFP1 ^ IFP3 = 0A A0 81 (padded to the longest).
        assert_eq!(
            p.recovery,
            Recovery::Fec {
                span: 2,
                entries: vec![vec![0x05], vec![0x0A, 0xA0, 0x81]]
            }
        );
        assert_eq!(
            last,
            vec![
                0x00, 0x04, 0x01, 0x00, 0x80, 0x01, 0x02, 0x02, 0x01, 0x05, 0x03, 0x0A, 0xA0, 0x81
            ]
        );
    }

    #[test]
    fn t38_annex_c_fec_wind_up_covers_only_sent_packets() {
        let mut tx = fec_sender(3, 3);
        let p0 = UdptlPacket::parse(&tx.packet(&[1])).unwrap();
        assert_eq!(
            p0.recovery,
            Recovery::Fec {
                span: 0,
                entries: vec![]
            }
        );
        for i in 1..9u8 {
            let p = UdptlPacket::parse(&tx.packet(&[i])).unwrap();
            let Recovery::Fec { entries, .. } = p.recovery else {
                panic!("not FEC")
            };
            assert_eq!(entries.len(), usize::from(i) / 3);
        }
    }

    #[test]
    fn t38_annex_c_fec_recovers_single_loss() {
        let mut rng = XorShift(77);
        let mut tx = fec_sender(3, 3);
        let mut rx = UdptlReceiver::new();
        let ifps: Vec<Vec<u8>> = (0..40).map(|i| ifp(i, &mut rng)).collect();
        let mut got = Vec::new();
        for (i, f) in ifps.iter().enumerate() {
            let d = tx.packet(f);
            if i == 20 {
                continue;
            }
            got.extend(rx.receive(&d).unwrap());
        }
        assert_eq!(seqs(&got), (0..40).collect::<Vec<u16>>());
        let (_, recovered) = &got[20];
        // The group's longest IFP sets the recovered length; the real IFP is a prefix.
        assert_eq!(&recovered[..ifps[20].len()], &ifps[20][..]);
        assert!(recovered[ifps[20].len()..].iter().all(|b| *b == 0));
        let s = rx.stats();
        assert_eq!((s.recovered, s.lost), (1, 0));
    }

    #[test]
    fn t38_annex_c_fec_recovers_burst_up_to_entries() {
        let mut tx = fec_sender(3, 3);
        let mut rx = UdptlReceiver::new();
        let mut got = Vec::new();
        for i in 0..30u8 {
            let d = tx.packet(&[i, !i]);
            if (15..18).contains(&i) {
                continue;
            }
            got.extend(rx.receive(&d).unwrap());
        }
        assert_eq!(
            got,
            (0..30u8)
                .map(|i| (u16::from(i), vec![i, !i]))
                .collect::<Vec<_>>()
        );
        assert_eq!(rx.stats().recovered, 3);
        // A burst of 4 (> entries) loses one.
        let mut rx = UdptlReceiver::new();
        let mut tx = fec_sender(3, 3);
        for i in 0..30u8 {
            let d = tx.packet(&[i, !i]);
            if !(15..19).contains(&i) {
                rx.receive(&d).unwrap();
            }
        }
        // 16 and 17 come back (groups 10/13/16 and 11/14/17); group 12/15/18 misses two.
        let s = rx.stats();
        assert_eq!((s.recovered, s.lost), (2, 2));
    }

    // ------------------------------------------------------------- loss simulation

    #[test]
    fn t38_annex_c_fec_random_loss_reorder_and_duplicates_stay_consistent() {
        let mut rng = XorShift(0xFEC);
        let mut tx = fec_sender(3, 3);
        tx.next_seq = 0xFF00; // crosses the wrap
        let mut rx = UdptlReceiver::new();
        let n = 5000u32;
        let ifps: Vec<Vec<u8>> = (0..n).map(|i| ifp(i, &mut rng)).collect();
        let mut wire: Vec<Vec<u8>> = Vec::new();
        let mut dropped = 0u64;
        for (i, f) in ifps.iter().enumerate() {
            let d = tx.packet(f);
            if i > 0 && i + 1 < ifps.len() && rng.below(10) == 0 {
                dropped += 1;
                continue;
            }
            if rng.below(20) == 0 {
                wire.push(d.clone()); // network duplicate
            }
            wire.push(d);
            // Occasional swap of the last two (reordering).
            let len = wire.len();
            if len > 2 && rng.below(25) == 0 {
                wire.swap(len - 1, len - 2);
            }
        }
        let mut got: Vec<(u16, Vec<u8>)> = Vec::new();
        for d in &wire {
            got.extend(rx.receive(d).unwrap());
        }
        let base = 0xFF00u16;
        let mut prev: Option<u16> = None;
        for (seq, data) in &got {
            if let Some(p) = prev {
                assert!(seq.wrapping_sub(p) >= 1 && seq.wrapping_sub(p) < 0x8000);
            }
            prev = Some(*seq);
            let want = &ifps[usize::from(seq.wrapping_sub(base))];
            // Exact, or (FEC-recovered) the original plus zero padding.
            assert_eq!(&data[..want.len()], &want[..]);
            assert!(data[want.len()..].iter().all(|b| *b == 0));
        }
        let s = rx.stats();
        assert_eq!(s.delivered, got.len() as u64);
        assert!(s.recovered > dropped / 2, "{s:?} dropped {dropped}");
        // Every IFP is delivered exactly once or counted lost exactly once.
        assert_eq!(s.delivered + s.lost, u64::from(n));
        // Reordered packets were mostly repaired by FEC before they arrived: duplicates.
        assert!(s.duplicates > 0, "{s:?}");
    }

    #[test]
    fn t38_9_1_spread_loss_20_percent_depth3_recovers_everything() {
        let mut rng = XorShift(0xC0DA_FA58);
        let mut tx = UdptlSender::new(3, 400);
        let mut rx = UdptlReceiver::new();
        tx.next_seq = 0xF000; // crosses the wrap
        let n = 10_000u32;
        let ifps: Vec<Vec<u8>> = (0..n).map(|i| ifp(i, &mut rng)).collect();
        let mut got: Vec<(u16, Vec<u8>)> = Vec::new();
        let mut run = 0;
        let mut dropped = 0u64;
        for (i, f) in ifps.iter().enumerate() {
            let d = tx.packet(f);
            let last = i + 1 == ifps.len();
            // 20 % loss, spread: never more than `depth` in a row; first and last arrive.
            if i > 0 && !last && run < 3 && rng.below(5) == 0 {
                run += 1;
                dropped += 1;
                continue;
            }
            run = 0;
            got.extend(rx.receive(&d).unwrap());
        }
        assert!(dropped > u64::from(n) / 6, "loss rate too low: {dropped}");
        assert_eq!(got.len(), ifps.len());
        for (i, ((seq, data), want)) in got.iter().zip(&ifps).enumerate() {
            assert_eq!(*seq, 0xF000u16.wrapping_add(i as u16));
            assert_eq!(data, want, "IFP {i}");
        }
        let s = rx.stats();
        assert_eq!((s.recovered, s.lost, s.duplicates), (dropped, 0, 0));
    }

    #[test]
    fn t38_9_1_bursts_of_4_lose_one_each_and_stats_report_it() {
        let mut rng = XorShift(5);
        let mut tx = UdptlSender::new(3, 400);
        let mut rx = UdptlReceiver::new();
        let mut got: Vec<u16> = Vec::new();
        let mut bursts = 0u64;
        for i in 0..400u32 {
            let d = tx.packet(&ifp(i, &mut rng));
            // Lose 4 in every 40 (like fax.md §0.4).
            if i % 40 >= 10 && i % 40 < 14 {
                if i % 40 == 10 {
                    bursts += 1;
                }
                continue;
            }
            got.extend(seqs(&rx.receive(&d).unwrap()));
        }
        assert!(got.windows(2).all(|w| w[0] < w[1]), "in order, no repeats");
        let s = rx.stats();
        assert_eq!(s.lost, bursts);
        assert_eq!(s.recovered, 3 * bursts);
        assert_eq!(got.len() as u64, 400 - bursts);
        // The oldest of each burst is the one missing.
        assert!(!got.contains(&10) && got.contains(&11) && got.contains(&13));
    }
}
