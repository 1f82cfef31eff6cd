//! Minimal RTCP (RFC 3550 §6): build SR/RR + SDES CNAME (+ BYE) compound packets, parse
//! incoming compound packets far enough to recognise SR, RR, SDES CNAME and BYE, and never
//! panic on garbage.
//!
//! Interval: a fixed [`RTCP_INTERVAL`] of 5 s ([`RtcpTimer`]). RFC 3550 §6.2 computes the
//! interval from session bandwidth and membership, but with two participants and G.711
//! (5 % of ~80 kbit/s) the computed value is far below the §6.2 minimum of 5 s, so the minimum
//! is what the algorithm yields anyway. The first report goes out after half the interval
//! (§6.2 "initial" rule). Randomisation ([0.5, 1.5] × interval) only matters to avoid
//! synchronisation among many senders in one session and is left out for point-to-point calls.
//!
//! Wall-clock time (the NTP timestamp of a Sender Report) is an input like everything else:
//! the caller converts its `SystemTime` with [`NtpTime::from_unix`].

use std::fmt;
use std::time::{Duration, Instant};

use super::jitter::ReceptionReport;
use super::packet::Ssrc;

/// RTCP packet type: Sender Report.
pub const PT_SR: u8 = 200;
/// RTCP packet type: Receiver Report.
pub const PT_RR: u8 = 201;
/// RTCP packet type: Source Description.
pub const PT_SDES: u8 = 202;
/// RTCP packet type: Goodbye.
pub const PT_BYE: u8 = 203;
/// RTCP packet type: application-defined.
pub const PT_APP: u8 = 204;

/// SDES item type CNAME.
const SDES_CNAME: u8 = 1;

/// Fixed reporting interval (RFC 3550 §6.2 minimum).
pub const RTCP_INTERVAL: Duration = Duration::from_secs(5);

/// A 64-bit NTP timestamp (seconds since 1900 in the high 32 bits, fraction in the low 32).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord)]
pub struct NtpTime(pub u64);

/// Seconds from 1900-01-01 to 1970-01-01.
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

impl NtpTime {
    /// Converts a duration since the Unix epoch (e.g. `SystemTime::now().duration_since(UNIX_EPOCH)`).
    pub fn from_unix(since_epoch: Duration) -> Self {
        let secs = since_epoch.as_secs().wrapping_add(NTP_UNIX_OFFSET) & 0xffff_ffff;
        let frac = (u64::from(since_epoch.subsec_nanos()) << 32) / 1_000_000_000;
        NtpTime((secs << 32) | frac)
    }

    /// The middle 32 bits, as used in LSR (RFC 3550 §6.4.1).
    pub fn middle32(self) -> u32 {
        (self.0 >> 16) as u32 // the middle 32 of 64 bits
    }
}

/// Sender information of an SR (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenderInfo {
    /// Wall-clock time when the report was made.
    pub ntp: NtpTime,
    /// The same instant in RTP timestamp units.
    pub rtp_timestamp: u32,
    /// Packets sent since start (wraps).
    pub packet_count: u32,
    /// Payload octets sent since start (wraps).
    pub octet_count: u32,
}

/// One reception report block (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    /// Source reported on.
    pub ssrc: Ssrc,
    /// Fraction lost since the last report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost, 24-bit signed.
    pub cumulative_lost: i32,
    /// Extended highest sequence number received.
    pub highest_seq: u32,
    /// Interarrival jitter (timestamp units).
    pub jitter: u32,
    /// Middle 32 bits of the NTP time of the last SR received from that source (0: none).
    pub lsr: u32,
    /// Delay since that SR in 1/65536 s (0: none).
    pub dlsr: u32,
}

const REPORT_BLOCK_LEN: usize = 24;
const SENDER_INFO_LEN: usize = 20;

impl ReportBlock {
    fn write(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(&self.ssrc.0.to_be_bytes());
        let lost = (self.cumulative_lost.clamp(-0x80_0000, 0x7f_ffff) as u32) & 0x00ff_ffff;
        buf.extend_from_slice(&((u32::from(self.fraction_lost) << 24) | lost).to_be_bytes());
        buf.extend_from_slice(&self.highest_seq.to_be_bytes());
        buf.extend_from_slice(&self.jitter.to_be_bytes());
        buf.extend_from_slice(&self.lsr.to_be_bytes());
        buf.extend_from_slice(&self.dlsr.to_be_bytes());
    }

    fn read(b: &[u8]) -> Option<Self> {
        let w = |i: usize| -> Option<u32> {
            let s = b.get(i * 4..i * 4 + 4)?;
            Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]])) // s has four octets
        };
        let lost_word = w(1)?;
        // Sign-extend the 24-bit cumulative loss.
        let cumulative_lost = ((lost_word << 8) as i32) >> 8;
        Some(ReportBlock {
            ssrc: Ssrc(w(0)?),
            fraction_lost: (lost_word >> 24) as u8,
            cumulative_lost,
            highest_seq: w(2)?,
            jitter: w(3)?,
            lsr: w(4)?,
            dlsr: w(5)?,
        })
    }
}

/// Writes a 4-octet common header; returns the offset of the length field.
fn header(buf: &mut Vec<u8>, count: u8, pt: u8) -> usize {
    buf.push(0x80 | (count & 0x1f));
    buf.push(pt);
    let at = buf.len();
    buf.extend_from_slice(&[0, 0]);
    at
}

/// Fills in the length field (32-bit words minus one) of the packet starting 2 octets before `at`.
fn finish(buf: &mut [u8], at: usize) {
    let start = at - 2;
    let words = ((buf.len() - start) / 4).saturating_sub(1);
    let len = u16::try_from(words).unwrap_or(u16::MAX).to_be_bytes();
    if let Some(slot) = buf.get_mut(at..at + 2) {
        slot.copy_from_slice(&len);
    }
}

/// Appends a compound packet: an SR (when `sender` is given) or an RR, with `block` as its
/// only report block (if any), followed by an SDES chunk with our CNAME (RFC 3550 §6.1).
/// A CNAME longer than 255 octets is cut at a character boundary.
pub fn write_report(
    buf: &mut Vec<u8>,
    ssrc: Ssrc,
    sender: Option<&SenderInfo>,
    block: Option<&ReportBlock>,
    cname: &str,
) {
    let rc = u8::from(block.is_some());
    let pt = if sender.is_some() { PT_SR } else { PT_RR };
    let at = header(buf, rc, pt);
    buf.extend_from_slice(&ssrc.0.to_be_bytes());
    if let Some(si) = sender {
        buf.extend_from_slice(&si.ntp.0.to_be_bytes());
        buf.extend_from_slice(&si.rtp_timestamp.to_be_bytes());
        buf.extend_from_slice(&si.packet_count.to_be_bytes());
        buf.extend_from_slice(&si.octet_count.to_be_bytes());
    }
    if let Some(b) = block {
        b.write(buf);
    }
    finish(buf, at);
    write_sdes_cname(buf, ssrc, cname);
}

fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end] // end is a char boundary <= len
}

/// Appends an SDES packet with one chunk holding a CNAME item.
pub fn write_sdes_cname(buf: &mut Vec<u8>, ssrc: Ssrc, cname: &str) {
    let cname = truncate_utf8(cname, 255);
    let at = header(buf, 1, PT_SDES);
    buf.extend_from_slice(&ssrc.0.to_be_bytes());
    buf.push(SDES_CNAME);
    buf.push(cname.len() as u8); // at most 255 after truncation
    buf.extend_from_slice(cname.as_bytes());
    // End item (a zero octet), then pad the chunk to a 32-bit boundary (§6.5).
    buf.push(0);
    while buf.len() % 4 != (at - 2) % 4 {
        buf.push(0);
    }
    finish(buf, at);
}

/// Appends a BYE for `ssrc` with an optional reason (cut to 255 octets).
pub fn write_bye(buf: &mut Vec<u8>, ssrc: Ssrc, reason: Option<&str>) {
    let at = header(buf, 1, PT_BYE);
    buf.extend_from_slice(&ssrc.0.to_be_bytes());
    if let Some(r) = reason {
        let r = truncate_utf8(r, 255);
        buf.push(r.len() as u8); // at most 255 after truncation
        buf.extend_from_slice(r.as_bytes());
        while buf.len() % 4 != (at - 2) % 4 {
            buf.push(0);
        }
    }
    finish(buf, at);
}

/// Why (part of) an RTCP datagram was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RtcpError {
    /// Fewer than 4 octets left for a header.
    TooShort,
    /// Version is not 2.
    BadVersion(u8),
    /// The length field runs past the datagram.
    BadLength,
    /// The body is too short for what the header announces.
    Truncated(u8),
    /// Padding count larger than the packet.
    BadPadding,
}

impl fmt::Display for RtcpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RtcpError::TooShort => f.write_str("RTCP packet too short"),
            RtcpError::BadVersion(v) => write!(f, "RTCP version {v}, expected 2"),
            RtcpError::BadLength => f.write_str("RTCP length beyond datagram"),
            RtcpError::Truncated(pt) => write!(f, "RTCP packet type {pt} truncated"),
            RtcpError::BadPadding => f.write_str("RTCP padding invalid"),
        }
    }
}

impl std::error::Error for RtcpError {}

/// Report blocks of an SR or RR, parsed lazily.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportBlocks<'a>(&'a [u8]);

impl<'a> ReportBlocks<'a> {
    /// Iterates over the blocks.
    pub fn iter(&self) -> impl Iterator<Item = ReportBlock> + 'a {
        self.0
            .chunks_exact(REPORT_BLOCK_LEN)
            .filter_map(ReportBlock::read)
    }

    /// Number of blocks.
    pub fn len(&self) -> usize {
        self.0.len() / REPORT_BLOCK_LEN
    }

    /// `true` without blocks.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One packet of a compound RTCP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtcpPacket<'a> {
    /// SR.
    SenderReport {
        /// Sender's SSRC.
        ssrc: Ssrc,
        /// Sender information.
        info: SenderInfo,
        /// Reception report blocks.
        reports: ReportBlocks<'a>,
    },
    /// RR.
    ReceiverReport {
        /// Reporter's SSRC.
        ssrc: Ssrc,
        /// Reception report blocks.
        reports: ReportBlocks<'a>,
    },
    /// SDES, chunks unparsed; see [`RtcpPacket::cnames`].
    SourceDescription {
        /// Number of chunks announced.
        count: u8,
        /// Chunk data.
        chunks: &'a [u8],
    },
    /// BYE.
    Bye {
        /// The SSRCs leaving, 4 octets each; see [`RtcpPacket::bye_sources`].
        sources: &'a [u8],
        /// Reason text, if any (not validated as UTF-8).
        reason: Option<&'a [u8]>,
    },
    /// Anything else (APP, feedback, XR …).
    Other {
        /// Packet type.
        packet_type: u8,
        /// Count/format field.
        count: u8,
        /// Body after the 4-octet header, padding removed.
        body: &'a [u8],
    },
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at + 4)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]])) // s has four octets
}

impl<'a> RtcpPacket<'a> {
    /// SSRCs in a BYE (empty for other packets).
    pub fn bye_sources(&self) -> impl Iterator<Item = Ssrc> + 'a {
        let raw: &'a [u8] = match self {
            RtcpPacket::Bye { sources, .. } => sources,
            _ => &[],
        };
        raw.chunks_exact(4)
            .map(|c| Ssrc(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
    }

    /// (SSRC, CNAME) pairs of an SDES packet (empty for other packets). Stops at the first
    /// malformed chunk.
    pub fn cnames(&self) -> impl Iterator<Item = (Ssrc, &'a [u8])> + 'a {
        let (mut rest, mut left): (&'a [u8], u8) = match self {
            RtcpPacket::SourceDescription { count, chunks } => (chunks, *count),
            _ => (&[], 0),
        };
        std::iter::from_fn(move || {
            while left > 0 {
                left -= 1;
                let ssrc = Ssrc(be32(rest, 0)?);
                let mut i = 4;
                let mut cname = None;
                loop {
                    let ty = *rest.get(i)?;
                    if ty == 0 {
                        i += 1;
                        break;
                    }
                    let len = usize::from(*rest.get(i + 1)?);
                    let text = rest.get(i + 2..i + 2 + len)?;
                    if ty == SDES_CNAME && cname.is_none() {
                        cname = Some(text);
                    }
                    i += 2 + len;
                }
                // Chunks end on a 32-bit boundary.
                let next = i.div_ceil(4) * 4;
                rest = rest.get(next..).unwrap_or(&[]);
                if let Some(c) = cname {
                    return Some((ssrc, c));
                }
            }
            None
        })
    }

    fn parse_one(pt: u8, count: u8, body: &'a [u8]) -> Result<Self, RtcpError> {
        let trunc = RtcpError::Truncated(pt);
        Ok(match pt {
            PT_SR => {
                let ssrc = Ssrc(be32(body, 0).ok_or(trunc)?);
                let ntp_hi = be32(body, 4).ok_or(trunc)?;
                let ntp_lo = be32(body, 8).ok_or(trunc)?;
                let info = SenderInfo {
                    ntp: NtpTime((u64::from(ntp_hi) << 32) | u64::from(ntp_lo)),
                    rtp_timestamp: be32(body, 12).ok_or(trunc)?,
                    packet_count: be32(body, 16).ok_or(trunc)?,
                    octet_count: be32(body, 20).ok_or(trunc)?,
                };
                let start = 4 + SENDER_INFO_LEN;
                let blocks = body
                    .get(start..start + REPORT_BLOCK_LEN * usize::from(count))
                    .ok_or(trunc)?;
                RtcpPacket::SenderReport {
                    ssrc,
                    info,
                    reports: ReportBlocks(blocks),
                }
            }
            PT_RR => {
                let ssrc = Ssrc(be32(body, 0).ok_or(trunc)?);
                let blocks = body
                    .get(4..4 + REPORT_BLOCK_LEN * usize::from(count))
                    .ok_or(trunc)?;
                RtcpPacket::ReceiverReport {
                    ssrc,
                    reports: ReportBlocks(blocks),
                }
            }
            PT_SDES => RtcpPacket::SourceDescription {
                count,
                chunks: body,
            },
            PT_BYE => {
                let n = 4 * usize::from(count);
                let sources = body.get(..n).ok_or(trunc)?;
                let reason = match body.get(n) {
                    Some(&len) => Some(body.get(n + 1..n + 1 + usize::from(len)).ok_or(trunc)?),
                    None => None,
                };
                RtcpPacket::Bye { sources, reason }
            }
            _ => RtcpPacket::Other {
                packet_type: pt,
                count,
                body,
            },
        })
    }
}

/// Iterator over the packets of a compound RTCP datagram; see [`parse_compound`].
#[derive(Debug, Clone)]
pub struct CompoundIter<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> Iterator for CompoundIter<'a> {
    type Item = Result<RtcpPacket<'a>, RtcpError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        let r = self.next_packet();
        if r.is_err() {
            self.failed = true;
        }
        Some(r)
    }
}

impl<'a> CompoundIter<'a> {
    fn next_packet(&mut self) -> Result<RtcpPacket<'a>, RtcpError> {
        let buf = self.rest;
        let (Some(&b0), Some(&pt), Some(&l0), Some(&l1)) =
            (buf.first(), buf.get(1), buf.get(2), buf.get(3))
        else {
            return Err(RtcpError::TooShort);
        };
        let version = b0 >> 6;
        if version != 2 {
            return Err(RtcpError::BadVersion(version));
        }
        let len = (usize::from(u16::from_be_bytes([l0, l1])) + 1) * 4;
        let packet = buf.get(..len).ok_or(RtcpError::BadLength)?;
        self.rest = buf.get(len..).unwrap_or(&[]);
        let mut body = packet.get(4..).unwrap_or(&[]);
        if b0 & 0x20 != 0 {
            let pad = usize::from(body.last().copied().unwrap_or(0));
            if pad == 0 || pad > body.len() {
                return Err(RtcpError::BadPadding);
            }
            body = body.get(..body.len() - pad).unwrap_or(&[]);
        }
        RtcpPacket::parse_one(pt, b0 & 0x1f, body)
    }
}

/// Parses a compound RTCP datagram. Yields packets until the end or the first error (which
/// is yielded, then iteration stops). Never panics.
pub fn parse_compound(datagram: &[u8]) -> CompoundIter<'_> {
    CompoundIter {
        rest: datagram,
        failed: false,
    }
}

/// RFC 3550 §A.2 validity check of a compound packet: version 2 everywhere, first packet SR or
/// RR without padding, padding only on the last packet, lengths adding up to the datagram.
pub fn validate_compound(datagram: &[u8]) -> Result<(), RtcpError> {
    let mut off = 0;
    let mut first = true;
    while off < datagram.len() {
        let b0 = *datagram.get(off).ok_or(RtcpError::TooShort)?;
        let pt = *datagram.get(off + 1).ok_or(RtcpError::TooShort)?;
        let len = datagram.get(off + 2..off + 4).ok_or(RtcpError::TooShort)?;
        if b0 >> 6 != 2 {
            return Err(RtcpError::BadVersion(b0 >> 6));
        }
        if first && (b0 & 0x20 != 0 || !(pt == PT_SR || pt == PT_RR)) {
            return Err(RtcpError::Truncated(pt));
        }
        let words = usize::from(u16::from_be_bytes([len[0], len[1]])); // len has two octets
        off += (words + 1) * 4;
        if b0 & 0x20 != 0 && off != datagram.len() {
            return Err(RtcpError::BadPadding);
        }
        first = false;
    }
    if off != datagram.len() || first {
        return Err(RtcpError::BadLength);
    }
    Ok(())
}

/// Fixed-interval RTCP schedule (see module docs). Sans-IO: `poll_timeout` / `handle_timeout`.
#[derive(Debug, Clone)]
pub struct RtcpTimer {
    next: Instant,
    interval: Duration,
}

impl RtcpTimer {
    /// First report at `now + interval / 2`, then every `interval`.
    pub fn new(now: Instant, interval: Duration) -> Self {
        let interval = interval.max(Duration::from_millis(100));
        RtcpTimer {
            next: now + interval / 2,
            interval,
        }
    }

    /// The 5 s schedule.
    pub fn with_default_interval(now: Instant) -> Self {
        Self::new(now, RTCP_INTERVAL)
    }

    /// When the next report is due.
    pub fn poll_timeout(&self) -> Instant {
        self.next
    }

    /// `true` when a report should be sent now; schedules the next one (on the original grid,
    /// or `now + interval` after a long stall).
    pub fn handle_timeout(&mut self, now: Instant) -> bool {
        if now < self.next {
            return false;
        }
        self.next += self.interval;
        if self.next <= now {
            self.next = now + self.interval;
        }
        true
    }
}

/// Remembers the last SR received from the peer to fill LSR/DLSR in our reports.
#[derive(Debug, Clone, Copy, Default)]
pub struct LastSr {
    last: Option<(u32, Instant)>,
}

impl LastSr {
    /// Nothing received yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records an SR that arrived at `now`.
    pub fn on_sender_report(&mut self, now: Instant, info: &SenderInfo) {
        self.last = Some((info.ntp.middle32(), now));
    }

    /// A report block from the jitter buffer's statistics, with LSR/DLSR filled in.
    pub fn report_block(&self, now: Instant, r: &ReceptionReport) -> ReportBlock {
        let (lsr, dlsr) = self.lsr_dlsr(now);
        ReportBlock {
            ssrc: r.ssrc,
            fraction_lost: r.fraction_lost,
            cumulative_lost: r.cumulative_lost,
            highest_seq: r.highest_seq,
            jitter: r.jitter,
            lsr,
            dlsr,
        }
    }

    /// (LSR, DLSR) for a report block made at `now`; (0, 0) when no SR was received.
    pub fn lsr_dlsr(&self, now: Instant) -> (u32, u32) {
        match self.last {
            None => (0, 0),
            Some((lsr, at)) => {
                let d = now.saturating_duration_since(at);
                let units = d.as_nanos() * 65_536 / 1_000_000_000;
                (lsr, u32::try_from(units).unwrap_or(u32::MAX))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block() -> ReportBlock {
        ReportBlock {
            ssrc: Ssrc(0xfeed),
            fraction_lost: 51,
            cumulative_lost: -3,
            highest_seq: 0x0001_0005,
            jitter: 17,
            lsr: 0x1234_5678,
            dlsr: 65_536,
        }
    }

    #[test]
    fn rfc3550_6_4_1_sender_report_round_trip() {
        let info = SenderInfo {
            ntp: NtpTime(0x0102_0304_0506_0708),
            rtp_timestamp: 160,
            packet_count: 10,
            octet_count: 1600,
        };
        let mut buf = Vec::new();
        write_report(
            &mut buf,
            Ssrc(7),
            Some(&info),
            Some(&block()),
            "coda@example",
        );
        assert_eq!(buf.len() % 4, 0);
        // SR header: V=2, RC=1, PT=200, length = (28 + 24) / 4 - 1 = 12.
        assert_eq!(&buf[..4], &[0x81, 200, 0, 12]);
        validate_compound(&buf).unwrap();
        let pkts: Vec<_> = parse_compound(&buf).collect::<Result<_, _>>().unwrap();
        assert_eq!(pkts.len(), 2);
        match pkts[0] {
            RtcpPacket::SenderReport {
                ssrc,
                info: i,
                reports,
            } => {
                assert_eq!(ssrc, Ssrc(7));
                assert_eq!(i, info);
                assert_eq!(reports.iter().collect::<Vec<_>>(), vec![block()]);
            }
            ref p => panic!("{p:?}"),
        }
        assert_eq!(
            pkts[1].cnames().collect::<Vec<_>>(),
            vec![(Ssrc(7), &b"coda@example"[..])]
        );
    }

    #[test]
    fn rfc3550_6_4_2_receiver_report_without_blocks() {
        let mut buf = Vec::new();
        write_report(&mut buf, Ssrc(9), None, None, "x");
        assert_eq!(&buf[..8], &[0x80, 201, 0, 1, 0, 0, 0, 9]);
        validate_compound(&buf).unwrap();
        let pkts: Vec<_> = parse_compound(&buf).collect::<Result<_, _>>().unwrap();
        assert!(matches!(
            pkts[0],
            RtcpPacket::ReceiverReport { ssrc: Ssrc(9), reports } if reports.is_empty()
        ));
    }

    #[test]
    fn rfc3550_6_5_sdes_chunk_padding() {
        // CNAME lengths that land on every alignment.
        for n in 0..8 {
            let name = "a".repeat(n);
            let mut buf = Vec::new();
            write_sdes_cname(&mut buf, Ssrc(1), &name);
            assert_eq!(buf.len() % 4, 0, "n={n}");
            // At least one zero octet terminates the item list.
            assert_eq!(buf[8 + 2 + n], 0);
            let p = parse_compound(&buf).next().unwrap().unwrap();
            assert_eq!(p.cnames().next(), Some((Ssrc(1), name.as_bytes())));
        }
        let long = "é".repeat(200);
        let mut buf = Vec::new();
        write_sdes_cname(&mut buf, Ssrc(1), &long);
        let p = parse_compound(&buf).next().unwrap().unwrap();
        let (_, c) = p.cnames().next().unwrap();
        assert_eq!(c.len(), 254);
        assert!(std::str::from_utf8(c).is_ok());
    }

    #[test]
    fn rfc3550_6_6_bye_with_reason() {
        let mut buf = Vec::new();
        write_report(&mut buf, Ssrc(3), None, None, "c");
        write_bye(&mut buf, Ssrc(3), Some("hangup"));
        validate_compound(&buf).unwrap();
        let pkts: Vec<_> = parse_compound(&buf).collect::<Result<_, _>>().unwrap();
        let bye = pkts[2];
        assert_eq!(bye.bye_sources().collect::<Vec<_>>(), vec![Ssrc(3)]);
        assert!(matches!(
            bye,
            RtcpPacket::Bye {
                reason: Some(b"hangup"),
                ..
            }
        ));
        let mut buf = Vec::new();
        write_bye(&mut buf, Ssrc(3), None);
        assert_eq!(buf, [0x81, 203, 0, 1, 0, 0, 0, 3]);
    }

    #[test]
    fn rfc3550_6_4_1_cumulative_lost_is_24_bit_signed() {
        for lost in [0, 1, -1, 0x7f_ffff, -0x80_0000, 0x100_0000, -0x100_0000] {
            let b = ReportBlock {
                cumulative_lost: lost,
                ..block()
            };
            let mut v = Vec::new();
            b.write(&mut v);
            let r = ReportBlock::read(&v).unwrap();
            assert_eq!(r.cumulative_lost, lost.clamp(-0x80_0000, 0x7f_ffff));
        }
    }

    #[test]
    fn rfc3550_a_2_validity_checks() {
        let mut good = Vec::new();
        write_report(&mut good, Ssrc(1), None, None, "c");
        // First packet must be SR or RR.
        let mut sdes_first = Vec::new();
        write_sdes_cname(&mut sdes_first, Ssrc(1), "c");
        assert!(validate_compound(&sdes_first).is_err());
        // Length mismatch.
        assert!(validate_compound(&good[..good.len() - 4]).is_err());
        let mut longer = good.clone();
        longer.extend_from_slice(&[0x80]);
        assert!(validate_compound(&longer).is_err());
        // Version.
        let mut bad = good.clone();
        bad[0] &= 0x3f;
        assert_eq!(validate_compound(&bad), Err(RtcpError::BadVersion(0)));
        assert!(validate_compound(&[]).is_err());
    }

    #[test]
    fn parse_stops_after_first_error() {
        let mut buf = Vec::new();
        write_report(&mut buf, Ssrc(1), None, None, "c");
        buf.extend_from_slice(&[0x80, 201, 0, 9]); // claims 40 octets
        let items: Vec<_> = parse_compound(&buf).collect();
        assert_eq!(items.len(), 3);
        assert_eq!(items[2], Err(RtcpError::BadLength));
        // RR claiming two blocks with none present.
        let short = [0x82, 201, 0, 1, 0, 0, 0, 1];
        assert_eq!(
            parse_compound(&short).next(),
            Some(Err(RtcpError::Truncated(201)))
        );
    }

    #[test]
    fn rfc3550_6_4_1_ntp_conversion_and_lsr() {
        let t = NtpTime::from_unix(Duration::new(1_000_000_000, 500_000_000));
        assert_eq!(t.0 >> 32, 1_000_000_000 + NTP_UNIX_OFFSET);
        assert_eq!(t.0 & 0xffff_ffff, 0x8000_0000);
        assert_eq!(t.middle32(), ((t.0 >> 16) & 0xffff_ffff) as u32);
        let t0 = Instant::now();
        let mut l = LastSr::new();
        assert_eq!(l.lsr_dlsr(t0), (0, 0));
        l.on_sender_report(
            t0,
            &SenderInfo {
                ntp: t,
                ..SenderInfo::default()
            },
        );
        assert_eq!(
            l.lsr_dlsr(t0 + Duration::from_millis(1500)),
            (t.middle32(), 98_304)
        );
    }

    #[test]
    fn rfc3550_6_2_fixed_interval_schedule() {
        let t0 = Instant::now();
        let mut t = RtcpTimer::with_default_interval(t0);
        assert_eq!(t.poll_timeout(), t0 + Duration::from_millis(2500));
        assert!(!t.handle_timeout(t0 + Duration::from_secs(2)));
        assert!(t.handle_timeout(t0 + Duration::from_millis(2600)));
        assert_eq!(t.poll_timeout(), t0 + Duration::from_millis(7500));
        // Stall: reschedule from now, do not fire repeatedly.
        assert!(t.handle_timeout(t0 + Duration::from_secs(60)));
        assert_eq!(t.poll_timeout(), t0 + Duration::from_secs(65));
        assert!(!t.handle_timeout(t0 + Duration::from_secs(61)));
    }
}
