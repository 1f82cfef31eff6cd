//! RTP fixed header (RFC 3550 §5.1): a borrowing parser, an allocation-free writer, and the
//! [`Ssrc`] / [`SeqNo`] newtypes with wrap-aware sequence arithmetic (RFC 3550 §A.1).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! |V=2|P|X|  CC   |M|     PT      |       sequence number         |
//! |                           timestamp                           |
//! |           synchronization source (SSRC) identifier            |
//! |            contributing source (CSRC) identifiers             |  CC × 32 bit
//! |      defined by profile       |           length              |  if X
//! |                        header extension                       |  length × 32 bit
//! ```

use std::fmt;

/// Length of the fixed RTP header without CSRCs or extension.
pub const RTP_HEADER_LEN: usize = 12;

/// A synchronization source identifier (RFC 3550 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Ssrc(pub u32);

impl fmt::Display for Ssrc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

impl From<u32> for Ssrc {
    fn from(v: u32) -> Self {
        Ssrc(v)
    }
}

/// A 16-bit RTP sequence number.
///
/// Deliberately not `Ord`: comparison on a circle is not transitive. Use [`SeqNo::delta`] /
/// [`SeqNo::is_newer_than`] for nearby numbers, or a [`SeqTracker`] to get a monotonically
/// ordered extended (64-bit) number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SeqNo(pub u16);

impl SeqNo {
    /// The following sequence number (wrapping 65535 → 0).
    pub fn next(self) -> SeqNo {
        SeqNo(self.0.wrapping_add(1))
    }

    /// Signed distance `self - other` on the 16-bit circle, in `-32768..=32767`.
    /// Positive when `self` is newer than `other`.
    pub fn delta(self, other: SeqNo) -> i16 {
        self.0.wrapping_sub(other.0) as i16
    }

    /// `true` when `self` follows `other` by 1..=32767 (half the number space).
    pub fn is_newer_than(self, other: SeqNo) -> bool {
        self.delta(other) > 0
    }
}

impl fmt::Display for SeqNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<u16> for SeqNo {
    fn from(v: u16) -> Self {
        SeqNo(v)
    }
}

/// Why an RTP packet was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RtpError {
    /// Fewer than the 12 octets of the fixed header.
    TooShort(usize),
    /// Version field is not 2.
    BadVersion(u8),
    /// The CSRC list runs past the end of the datagram.
    TruncatedCsrc,
    /// The header extension runs past the end of the datagram.
    TruncatedExtension,
    /// P bit set but the padding count is zero or longer than the payload.
    BadPadding(u8),
}

impl fmt::Display for RtpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RtpError::TooShort(n) => write!(f, "RTP packet too short ({n} octets)"),
            RtpError::BadVersion(v) => write!(f, "RTP version {v}, expected 2"),
            RtpError::TruncatedCsrc => f.write_str("RTP CSRC list truncated"),
            RtpError::TruncatedExtension => f.write_str("RTP header extension truncated"),
            RtpError::BadPadding(p) => write!(f, "RTP padding count {p} invalid"),
        }
    }
}

impl std::error::Error for RtpError {}

/// A header extension (RFC 3550 §5.3.1), unparsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpExtension<'a> {
    /// The 16-bit "defined by profile" field (0xBEDE for RFC 8285 one-byte headers).
    pub profile: u16,
    /// Extension body, a multiple of four octets.
    pub data: &'a [u8],
}

/// A parsed RTP packet borrowing from the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    /// M bit.
    pub marker: bool,
    /// 7-bit payload type.
    pub payload_type: u8,
    /// Sequence number.
    pub seq: SeqNo,
    /// Media timestamp (clock of the payload format).
    pub timestamp: u32,
    /// Synchronization source.
    pub ssrc: Ssrc,
    /// Raw CSRC list (4 octets each); see [`RtpPacket::csrcs`].
    pub csrc_raw: &'a [u8],
    /// Header extension, if the X bit was set.
    pub extension: Option<RtpExtension<'a>>,
    /// Number of padding octets removed from the end (0 when the P bit was clear).
    pub padding: u8,
    /// The payload, without padding.
    pub payload: &'a [u8],
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([s[0], s[1]])) // s has exactly two octets
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]])) // s has exactly four octets
}

impl<'a> RtpPacket<'a> {
    /// Parses one RTP datagram. Never panics; refuses truncated or malformed headers.
    pub fn parse(buf: &'a [u8]) -> Result<Self, RtpError> {
        let (Some(&b0), Some(&b1)) = (buf.first(), buf.get(1)) else {
            return Err(RtpError::TooShort(buf.len()));
        };
        if buf.len() < RTP_HEADER_LEN {
            return Err(RtpError::TooShort(buf.len()));
        }
        let version = b0 >> 6;
        if version != 2 {
            return Err(RtpError::BadVersion(version));
        }
        let has_padding = b0 & 0x20 != 0;
        let has_extension = b0 & 0x10 != 0;
        let cc = usize::from(b0 & 0x0f);
        let short = RtpError::TooShort(buf.len());
        let seq = SeqNo(be16(buf, 2).ok_or(short)?);
        let timestamp = be32(buf, 4).ok_or(short)?;
        let ssrc = Ssrc(be32(buf, 8).ok_or(short)?);

        let mut off = RTP_HEADER_LEN;
        let csrc_raw = buf.get(off..off + 4 * cc).ok_or(RtpError::TruncatedCsrc)?;
        off += 4 * cc;

        let extension = if has_extension {
            let profile = be16(buf, off).ok_or(RtpError::TruncatedExtension)?;
            let words = usize::from(be16(buf, off + 2).ok_or(RtpError::TruncatedExtension)?);
            let start = off + 4;
            let data = buf
                .get(start..start + 4 * words)
                .ok_or(RtpError::TruncatedExtension)?;
            off = start + 4 * words;
            Some(RtpExtension { profile, data })
        } else {
            None
        };

        let mut end = buf.len();
        let mut padding = 0u8;
        if has_padding {
            // RFC 3550 §5.1: the last octet counts the padding, itself included.
            let count = buf.last().copied().unwrap_or(0);
            if count == 0 || usize::from(count) > end - off {
                return Err(RtpError::BadPadding(count));
            }
            padding = count;
            end -= usize::from(count);
        }
        let payload = buf.get(off..end).ok_or(short)?;
        Ok(RtpPacket {
            marker: b1 & 0x80 != 0,
            payload_type: b1 & 0x7f,
            seq,
            timestamp,
            ssrc,
            csrc_raw,
            extension,
            padding,
            payload,
        })
    }

    /// The contributing sources listed in the header.
    pub fn csrcs(&self) -> impl Iterator<Item = Ssrc> + 'a {
        self.csrc_raw
            .chunks_exact(4)
            .map(|c| Ssrc(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
    }
}

/// Appends an RTP packet (V=2, no padding, no extension, no CSRC) to `buf`.
///
/// Only `buf` may allocate (reserve `RTP_HEADER_LEN + payload.len()` up front to avoid it).
/// `payload_type` is masked to 7 bits.
pub fn write_rtp(
    buf: &mut Vec<u8>,
    payload_type: u8,
    marker: bool,
    seq: SeqNo,
    timestamp: u32,
    ssrc: Ssrc,
    payload: &[u8],
) {
    buf.reserve(RTP_HEADER_LEN + payload.len());
    buf.push(0x80);
    buf.push((u8::from(marker) << 7) | (payload_type & 0x7f));
    buf.extend_from_slice(&seq.0.to_be_bytes());
    buf.extend_from_slice(&timestamp.to_be_bytes());
    buf.extend_from_slice(&ssrc.0.to_be_bytes());
    buf.extend_from_slice(payload);
}

/// RFC 3550 §A.1: a forward jump of this many or more is "very large".
pub const MAX_DROPOUT: u16 = 3000;
/// RFC 3550 §A.1: packets up to this far behind the highest are "reordered", further is a jump.
pub const MAX_MISORDER: u16 = 100;

/// Offset added to the first extended sequence number so that packets arriving slightly
/// *before* the first one still get a non-negative extended number.
const EXT_BASE: u64 = 1 << 16;

/// What [`SeqTracker::update`] made of a sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqUpdate {
    /// First packet of the stream, or in order with a permissible gap (0 < Δ < MAX_DROPOUT).
    /// Carries the extended number.
    Ahead(u64),
    /// At or behind the highest seen by at most [`MAX_MISORDER`]: reordered or duplicate.
    Behind(u64),
    /// Two sequential packets after a very large jump: the source restarted. Tracking was
    /// reset; the value is the new extended number (larger than anything seen before).
    Restarted(u64),
    /// A very large jump seen once; the packet should be dropped (RFC 3550 §A.1 `bad_seq`).
    Jump,
}

/// Extended sequence numbers per RFC 3550 §A.1 (without the probation phase: the first
/// packet is accepted immediately, which a recorder needs).
///
/// Extended numbers are strictly increasing with stream order and never wrap; they start at
/// 65536 + first sequence number. [`SeqTracker::rtcp_highest`] gives the 32-bit value for
/// RTCP report blocks.
#[derive(Debug, Clone, Default)]
pub struct SeqTracker {
    /// Highest extended number seen, None before the first packet.
    max_ext: Option<u64>,
    /// Extended number at the (re)start, for counting "expected" packets.
    base_ext: u64,
    /// After a large jump: the sequence number that would confirm a restart.
    bad_seq: Option<SeqNo>,
    /// Offset subtracted for RTCP (the RFC's cycles start at zero).
    rtcp_offset: u64,
}

impl SeqTracker {
    /// A tracker that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Classifies `seq` and returns its extended number where it has one.
    pub fn update(&mut self, seq: SeqNo) -> SeqUpdate {
        let Some(max_ext) = self.max_ext else {
            self.restart(seq, EXT_BASE);
            return SeqUpdate::Ahead(EXT_BASE + u64::from(seq.0));
        };
        let max_seq = max_ext as u16; // low 16 bits of the extended number are the sequence number
        let udelta = seq.0.wrapping_sub(max_seq);
        if udelta < MAX_DROPOUT {
            let ext = max_ext + u64::from(udelta);
            self.max_ext = Some(ext);
            self.bad_seq = None;
            SeqUpdate::Ahead(ext)
        } else if udelta <= u16::MAX - MAX_MISORDER + 1 {
            // Very large jump (forward ≥ MAX_DROPOUT or backward > MAX_MISORDER).
            if self.bad_seq == Some(seq) {
                // Two sequential packets: assume the other side restarted without telling us.
                // Continue above everything seen so far so ordering keys stay monotonic.
                let new_base = (max_ext & !0xffff) + 2 * EXT_BASE;
                self.restart(seq, new_base);
                SeqUpdate::Restarted(new_base + u64::from(seq.0))
            } else {
                self.bad_seq = Some(seq.next());
                SeqUpdate::Jump
            }
        } else {
            let back = u64::from(max_seq.wrapping_sub(seq.0));
            SeqUpdate::Behind(max_ext.saturating_sub(back))
        }
    }

    fn restart(&mut self, seq: SeqNo, base: u64) {
        let ext = base + u64::from(seq.0);
        self.max_ext = Some(ext);
        self.base_ext = ext;
        self.bad_seq = None;
        self.rtcp_offset = base;
    }

    /// Highest extended number seen so far.
    pub fn highest(&self) -> Option<u64> {
        self.max_ext
    }

    /// Packets expected since the (re)start: highest − base + 1 (RFC 3550 §A.3).
    pub fn expected(&self) -> u64 {
        self.max_ext.map_or(0, |m| m - self.base_ext + 1)
    }

    /// "Extended highest sequence number received" for an RTCP report block (cycles << 16 | max).
    pub fn rtcp_highest(&self) -> u32 {
        self.max_ext.map_or(0, |m| (m - self.rtcp_offset) as u32) // truncation is the RFC's 32-bit field
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut v = Vec::new();
        write_rtp(
            &mut v,
            8,
            true,
            SeqNo(0x1234),
            0xdead_beef,
            Ssrc(0x0102_0304),
            b"abc",
        );
        v
    }

    #[test]
    fn rfc3550_5_1_round_trip() {
        let v = sample();
        assert_eq!(
            &v[..12],
            &[0x80, 0x88, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4]
        );
        let p = RtpPacket::parse(&v).unwrap();
        assert!(p.marker);
        assert_eq!(p.payload_type, 8);
        assert_eq!(p.seq, SeqNo(0x1234));
        assert_eq!(p.timestamp, 0xdead_beef);
        assert_eq!(p.ssrc, Ssrc(0x0102_0304));
        assert_eq!(p.payload, b"abc");
        assert_eq!(p.padding, 0);
        assert!(p.extension.is_none());
        assert_eq!(p.csrcs().count(), 0);
    }

    #[test]
    fn rfc3550_5_1_payload_type_masked_to_7_bits() {
        let mut v = Vec::new();
        write_rtp(&mut v, 0xff, false, SeqNo(0), 0, Ssrc(0), &[]);
        let p = RtpPacket::parse(&v).unwrap();
        assert_eq!(p.payload_type, 0x7f);
        assert!(!p.marker);
        assert!(p.payload.is_empty());
    }

    #[test]
    fn rfc3550_5_1_version_must_be_2() {
        let mut v = sample();
        v[0] = 0x40;
        assert_eq!(RtpPacket::parse(&v), Err(RtpError::BadVersion(1)));
        v[0] = 0x00;
        assert_eq!(RtpPacket::parse(&v), Err(RtpError::BadVersion(0)));
    }

    #[test]
    fn rfc3550_5_1_too_short() {
        let v = sample();
        for n in 0..12 {
            assert_eq!(RtpPacket::parse(&v[..n]), Err(RtpError::TooShort(n)));
        }
    }

    #[test]
    fn rfc3550_5_1_csrc_list() {
        let mut v = vec![0x82, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        v.extend_from_slice(&[0, 0, 0, 9, 0, 0, 0, 10, 0xaa]);
        let p = RtpPacket::parse(&v).unwrap();
        assert_eq!(p.csrcs().collect::<Vec<_>>(), vec![Ssrc(9), Ssrc(10)]);
        assert_eq!(p.payload, &[0xaa]);
        assert_eq!(RtpPacket::parse(&v[..19]), Err(RtpError::TruncatedCsrc));
    }

    #[test]
    fn rfc3550_5_3_1_header_extension_skipped() {
        let mut v = vec![0x90, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        v.extend_from_slice(&[0xbe, 0xde, 0, 1, 0x10, 0xff, 0, 0, 7, 8]);
        let p = RtpPacket::parse(&v).unwrap();
        let ext = p.extension.unwrap();
        assert_eq!(ext.profile, 0xbede);
        assert_eq!(ext.data, &[0x10, 0xff, 0, 0]);
        assert_eq!(p.payload, &[7, 8]);
        assert_eq!(
            RtpPacket::parse(&v[..17]),
            Err(RtpError::TruncatedExtension)
        );
        assert_eq!(
            RtpPacket::parse(&v[..14]),
            Err(RtpError::TruncatedExtension)
        );
    }

    #[test]
    fn rfc3550_5_1_padding_removed_and_checked() {
        let mut v = vec![0xa0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 0, 0, 3];
        let p = RtpPacket::parse(&v).unwrap();
        assert_eq!(p.padding, 3);
        assert_eq!(p.payload, &[1, 2, 3]);
        // Padding that swallows the whole payload exactly is fine.
        *v.last_mut().unwrap() = 6;
        assert_eq!(RtpPacket::parse(&v).unwrap().payload, &[] as &[u8]);
        *v.last_mut().unwrap() = 7;
        assert_eq!(RtpPacket::parse(&v), Err(RtpError::BadPadding(7)));
        *v.last_mut().unwrap() = 0;
        assert_eq!(RtpPacket::parse(&v), Err(RtpError::BadPadding(0)));
        // P bit with no room for the count octet beyond the header.
        let v = vec![0xa0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        assert!(matches!(RtpPacket::parse(&v), Err(RtpError::BadPadding(_))));
    }

    #[test]
    fn rfc3550_a_1_seqno_wrap_aware_comparison() {
        assert!(SeqNo(0).is_newer_than(SeqNo(65535)));
        assert!(!SeqNo(65535).is_newer_than(SeqNo(0)));
        assert_eq!(SeqNo(2).delta(SeqNo(65534)), 4);
        assert_eq!(SeqNo(65534).delta(SeqNo(2)), -4);
        assert_eq!(SeqNo(65535).next(), SeqNo(0));
        assert!(!SeqNo(7).is_newer_than(SeqNo(7)));
    }

    #[test]
    fn rfc3550_a_1_extended_numbers_across_wrap() {
        let mut t = SeqTracker::new();
        let first = match t.update(SeqNo(65534)) {
            SeqUpdate::Ahead(e) => e,
            other => panic!("{other:?}"),
        };
        assert_eq!(t.update(SeqNo(65535)), SeqUpdate::Ahead(first + 1));
        assert_eq!(t.update(SeqNo(0)), SeqUpdate::Ahead(first + 2));
        assert_eq!(t.update(SeqNo(2)), SeqUpdate::Ahead(first + 4));
        // Reordered packet behind the wrap gets the older extended number.
        assert_eq!(t.update(SeqNo(65535)), SeqUpdate::Behind(first + 1));
        assert_eq!(t.update(SeqNo(1)), SeqUpdate::Behind(first + 3));
        assert_eq!(t.expected(), 5);
        // One full cycle: RFC value is 1 << 16 | 2.
        assert_eq!(t.rtcp_highest(), (1 << 16) | 2);
    }

    #[test]
    fn rfc3550_a_1_large_jump_needs_two_sequential_packets() {
        let mut t = SeqTracker::new();
        t.update(SeqNo(100));
        assert_eq!(t.update(SeqNo(40_000)), SeqUpdate::Jump);
        // Not sequential with the bad one: still a jump.
        assert_eq!(t.update(SeqNo(50_000)), SeqUpdate::Jump);
        // Stream continues normally; the stray packets were ignored.
        assert_eq!(t.update(SeqNo(101)), SeqUpdate::Ahead(EXT_BASE + 101));
        assert_eq!(t.update(SeqNo(9_000)), SeqUpdate::Jump);
        match t.update(SeqNo(9_001)) {
            SeqUpdate::Restarted(e) => {
                assert!(e > EXT_BASE + 101);
                assert_eq!(e & 0xffff, 9_001);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(t.expected(), 1);
        assert_eq!(t.rtcp_highest(), 9_001);
    }

    #[test]
    fn rfc3550_a_1_backward_beyond_misorder_is_a_jump() {
        let mut t = SeqTracker::new();
        t.update(SeqNo(1000));
        assert_eq!(t.update(SeqNo(901)), SeqUpdate::Behind(EXT_BASE + 901));
        assert_eq!(t.update(SeqNo(900)), SeqUpdate::Jump);
    }

    #[test]
    fn rfc3550_a_1_packet_before_first_does_not_underflow() {
        let mut t = SeqTracker::new();
        t.update(SeqNo(0));
        assert_eq!(t.update(SeqNo(65535)), SeqUpdate::Behind(EXT_BASE - 1));
    }
}
