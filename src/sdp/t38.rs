//! T.38 offer/answer (ITU-T T.38 Annex D, RFC 4612 attribute names) for coda's fax calls.
//!
//! The attributes themselves are read by [`MediaSection::t38`] ([`T38Params`]); this module
//! decides what to answer and what was agreed.
//!
//! Policy:
//!
//! * **Stream.** The first `m=image <port> udptl t38` with a non-zero port and a usable
//!   (unicast, specified) connection address is accepted; every other `m=` line (audio,
//!   further image lines, streams already at port 0) is rejected with port 0, copying media,
//!   proto and formats, and the order is kept (RFC 3264 §6).
//! * **Version** = min(offered, ours); a missing `T38FaxVersion` means 0 (RFC 4612).
//! * **Bit rate** = min(offered, ours); a missing or zero `T38MaxBitRate` means ours.
//! * **Rate management**: `localTCF` only if the offer says so, else `transferredTCF`.
//! * **Error correction** (spandsp T.38 manual: everyone takes redundancy, many cannot take
//!   FEC): an offer of redundancy *or FEC* is answered with redundancy, unless coda is
//!   configured for FEC ([`EcMode::Fec`]) and FEC was offered; an offer without EC (absent
//!   or `t38UDPNoEC`) is answered without EC, as is every offer when coda is configured with
//!   [`EcMode::None`]. The answer omits `T38FaxUdpEC` for "no EC".
//! * **Declarative values.** `T38FaxMaxBuffer` and `T38FaxMaxDatagram` in coda's SDP state
//!   what coda accepts ([`T38Local`]); the far end's become [`NegotiatedT38::far_max_buffer`]
//!   and [`NegotiatedT38::far_max_datagram`]. The far end's `T38FaxMaxDatagram` is read as
//!   the largest *UDPTL packet* (the conservative reading of an ambiguous attribute) and
//!   replaced by 400 when absent, 0 or above 1400 (as Asterisk does).
//! * **Booleans** (`T38FaxFillBitRemoval`) are sent as bare presence (RFC 4612); the parser
//!   also accepts `:1`/`:0`. Fill-bit removal is agreed only if both sides want it; MMR/JBIG
//!   transcoding is never offered or accepted.
//! * **coda's own offer** (re-INVITE from audio to fax) carries a single `m=image` line, as
//!   FreeSWITCH and Asterisk send; peers treat it as replacing the audio stream.
//!
//! Like the rest of [`crate::sdp`], this module is sans-IO and depends only on `std`
//! (and `thiserror`).

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use super::attrs::{T38Params, T38RateManagement, T38UdpEc};
use super::error::SdpError;
use super::model::{Line, MediaSection, SessionDescription};

/// Highest `T38FaxVersion` coda supports.
pub const MAX_T38_VERSION: u8 = 3;

/// Far-end `T38FaxMaxDatagram` assumed when it is absent, 0 or implausible.
pub const DEFAULT_FAR_MAX_DATAGRAM: usize = 400;

/// Largest plausible `T38FaxMaxDatagram` (an unfragmented UDP payload on Ethernet).
pub const MAX_PLAUSIBLE_DATAGRAM: usize = 1400;

/// Far-end `T38FaxMaxBuffer` assumed when absent (FreeSWITCH's parse default).
pub const DEFAULT_FAR_MAX_BUFFER: u32 = 500;

/// UDPTL overhead around a lone primary IFP of 128..16383 octets with redundancy framing:
/// sequence number 2, length 2, CHOICE 1, secondary count 1.
const UDPTL_OVERHEAD: usize = 6;

/// Same with FEC framing: sequence number 2, length 2, CHOICE 1, span 2, entry count 1.
const UDPTL_FEC_OVERHEAD: usize = 8;

/// Smallest IFP size reported by [`NegotiatedT38::far_max_ifp`], whatever the far end says.
const MIN_IFP: usize = 32;

/// UDPTL error correction (`T38FaxUdpEC`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EcMode {
    /// No error correction (attribute absent or `t38UDPNoEC`).
    None,
    /// `t38UDPRedundancy`.
    Redundancy,
    /// `t38UDPFEC` (Annex C parity).
    Fec,
}

impl EcMode {
    /// The `T38FaxUdpEC` value, `None` for no EC (the attribute is then omitted).
    pub fn attribute_value(&self) -> Option<&'static str> {
        match self {
            Self::None => None,
            Self::Redundancy => Some("t38UDPRedundancy"),
            Self::Fec => Some("t38UDPFEC"),
        }
    }

    fn from_params(ec: Option<T38UdpEc>) -> Self {
        match ec {
            Some(T38UdpEc::Redundancy) => Self::Redundancy,
            Some(T38UdpEc::Fec) => Self::Fec,
            Some(T38UdpEc::None) | None => Self::None,
        }
    }

    /// What coda uses given its own setting and the other side's (see the module docs).
    fn agree(ours: Self, theirs: Self) -> Self {
        match (ours, theirs) {
            (Self::None, _) | (_, Self::None) => Self::None,
            (Self::Fec, Self::Fec) => Self::Fec,
            _ => Self::Redundancy,
        }
    }
}

impl fmt::Display for EcMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.attribute_value().unwrap_or("none"))
    }
}

/// coda's T.38 capabilities.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct T38Local {
    /// Highest `T38FaxVersion` (clamped to 0..=[`MAX_T38_VERSION`]).
    pub version: u8,
    /// `T38MaxBitRate` in bit/s.
    pub max_bit_rate: u32,
    /// `T38FaxMaxBuffer` coda advertises, in octets.
    pub max_buffer: u32,
    /// `T38FaxMaxDatagram` coda advertises (largest UDPTL packet it accepts), in octets.
    pub max_datagram: u32,
    /// Preferred error correction.
    pub ec: EcMode,
    /// Whether coda accepts `T38FaxFillBitRemoval`.
    pub fill_bit_removal: bool,
}

impl Default for T38Local {
    /// Version 3, 14400 bit/s, buffer 2000, datagram 400, redundancy, no fill-bit removal.
    fn default() -> Self {
        Self {
            version: MAX_T38_VERSION,
            max_bit_rate: 14_400,
            max_buffer: 2000,
            max_datagram: 400,
            ec: EcMode::Redundancy,
            fill_bit_removal: false,
        }
    }
}

impl T38Local {
    fn version(&self) -> u8 {
        self.version.min(MAX_T38_VERSION)
    }
}

/// What was agreed for a T.38 session, from coda's point of view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NegotiatedT38 {
    /// Where to send UDPTL: the far end's `c=` (media level first) and `m=image` port.
    pub remote: SocketAddr,
    /// `T38FaxVersion` to run (pass to spandsp; v0 uses the 1998 ASN.1).
    pub version: u8,
    /// `T38MaxBitRate` agreed, bit/s.
    pub max_bit_rate: u32,
    /// `T38FaxRateManagement` agreed.
    pub rate_management: T38RateManagement,
    /// Largest UDPTL packet the far end accepts (sanitised `T38FaxMaxDatagram`).
    pub far_max_datagram: usize,
    /// The far end's `T38FaxMaxBuffer` (or [`DEFAULT_FAR_MAX_BUFFER`]).
    pub far_max_buffer: u32,
    /// Error correction coda puts in the UDPTL packets it sends. (Incoming packets may use
    /// either scheme; the receiver handles both.)
    pub ec_send: EcMode,
    /// `T38FaxFillBitRemoval` agreed.
    pub fill_bit_removal: bool,
}

impl NegotiatedT38 {
    /// Largest IFP that fits in one far-end datagram on its own (`far_max_datagram` minus
    /// the UDPTL framing; at least 32). The UDPTL sender trims redundancy to fit, so IFPs of
    /// this size still go out, just without copies.
    pub fn far_max_ifp(&self) -> usize {
        let overhead = match self.ec_send {
            EcMode::Fec => UDPTL_FEC_OVERHEAD,
            EcMode::None | EcMode::Redundancy => UDPTL_OVERHEAD,
        };
        self.far_max_datagram.saturating_sub(overhead).max(MIN_IFP)
    }

    /// Largest IFP such that a packet with `depth` redundant copies of IFPs of that size
    /// still fits (Asterisk-style conservative sizing; at least 32).
    pub fn far_max_ifp_for_depth(&self, depth: u8) -> usize {
        // Per copy: up to 2 length octets; fixed: seq 2, CHOICE 1, count 1.
        let per = usize::from(depth) + 1;
        (self.far_max_datagram.saturating_sub(4) / per)
            .saturating_sub(2)
            .max(MIN_IFP)
    }

    /// True when coda sends redundancy (`ec_send` is [`EcMode::Redundancy`]).
    pub fn sends_redundancy(&self) -> bool {
        self.ec_send == EcMode::Redundancy
    }
}

impl fmt::Display for NegotiatedT38 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "remote={} version={} rate={} ec={} max_datagram={} max_buffer={} fill_bit_removal={}",
            self.remote,
            self.version,
            self.max_bit_rate,
            self.ec_send,
            self.far_max_datagram,
            self.far_max_buffer,
            self.fill_bit_removal
        )
    }
}

/// Why a T.38 offer or answer could not be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum T38Error {
    /// A line coda needs is malformed (e.g. the `c=` of the T.38 stream). → 400
    #[error("malformed session description: {0}")]
    Malformed(#[from] SdpError),
    /// The T.38 stream has no `c=` line at media or session level. → 400
    #[error("no connection address for the T.38 stream")]
    MissingConnection,
    /// No `m=image <port> udptl t38` with a non-zero port and a usable address. → 488
    #[error("no usable m=image udptl t38 stream")]
    NoT38Stream,
    /// The answer has a different number of `m=` lines than the offer (RFC 3264 §6). → 400
    #[error("answer and offer differ in m= line count")]
    MediaCountMismatch,
    /// An answer `m=` line has another media type than the offer's at the same index. → 400
    #[error("answer m= line media type differs from offer")]
    MediaTypeMismatch,
    /// The answer rejected coda's T.38 stream (port 0 or not T.38). → 488
    #[error("far end rejected the T.38 stream")]
    Rejected,
}

impl T38Error {
    /// SIP status for refusing an offer: 400 for malformed input, 488 when well formed but
    /// not acceptable.
    pub fn status_code(&self) -> u16 {
        match self {
            Self::Malformed(_)
            | Self::MissingConnection
            | Self::MediaCountMismatch
            | Self::MediaTypeMismatch => 400,
            Self::NoT38Stream | Self::Rejected => 488,
        }
    }
}

/// `m=image ... udptl t38` (case-insensitive; other transports such as `UDP/TLS/UDPTL`
/// are not supported).
pub fn is_t38_media(m: &MediaSection) -> bool {
    m.media().eq_ignore_ascii_case("image")
        && m.proto().eq_ignore_ascii_case("udptl")
        && m.formats().iter().any(|f| f.eq_ignore_ascii_case("t38"))
}

fn sane_max_datagram(v: Option<u32>) -> usize {
    match v.and_then(|v| usize::try_from(v).ok()) {
        Some(n) if (1..=MAX_PLAUSIBLE_DATAGRAM).contains(&n) => n,
        _ => DEFAULT_FAR_MAX_DATAGRAM,
    }
}

fn version_u8(v: u32) -> u8 {
    u8::try_from(v.min(u32::from(MAX_T38_VERSION))).unwrap_or(MAX_T38_VERSION)
}

fn min_rate(theirs: Option<u32>, ours: u32) -> u32 {
    match theirs.filter(|r| *r > 0) {
        Some(r) => r.min(ours),
        None => ours,
    }
}

fn rate_management_value(rm: T38RateManagement) -> &'static str {
    match rm {
        T38RateManagement::TransferredTcf => "transferredTCF",
        T38RateManagement::LocalTcf => "localTCF",
    }
}

/// What coda states in its own `m=image` section.
struct Stated {
    version: u8,
    max_bit_rate: u32,
    fill_bit_removal: bool,
    rate_management: T38RateManagement,
    max_buffer: u32,
    max_datagram: u32,
    ec: EcMode,
}

fn image_section(port: u16, s: &Stated) -> Result<MediaSection, SdpError> {
    let mut m = MediaSection::new("image", port, "udptl", &["t38"])?;
    m.push_line(Line::attribute(
        "T38FaxVersion",
        Some(&s.version.to_string()),
    )?);
    m.push_line(Line::attribute(
        "T38MaxBitRate",
        Some(&s.max_bit_rate.to_string()),
    )?);
    if s.fill_bit_removal {
        m.push_line(Line::attribute("T38FaxFillBitRemoval", None)?);
    }
    m.push_line(Line::attribute(
        "T38FaxRateManagement",
        Some(rate_management_value(s.rate_management)),
    )?);
    m.push_line(Line::attribute(
        "T38FaxMaxBuffer",
        Some(&s.max_buffer.to_string()),
    )?);
    m.push_line(Line::attribute(
        "T38FaxMaxDatagram",
        Some(&s.max_datagram.to_string()),
    )?);
    if let Some(ec) = s.ec.attribute_value() {
        m.push_line(Line::attribute("T38FaxUdpEC", Some(ec))?);
    }
    Ok(m)
}

fn session_header(
    sdp: &mut SessionDescription,
    addr: IpAddr,
    session_id: u64,
    session_version: u64,
) -> Result<(), SdpError> {
    let net = if addr.is_ipv6() { "IN IP6" } else { "IN IP4" };
    sdp.push_session_line(Line::new('v', "0")?);
    sdp.push_session_line(Line::new(
        'o',
        format!("coda {session_id} {session_version} {net} {addr}"),
    )?);
    sdp.push_session_line(Line::new('s', "coda")?);
    sdp.push_session_line(Line::new('c', format!("{net} {addr}"))?);
    sdp.push_session_line(Line::new('t', "0 0")?);
    Ok(())
}

/// Answers a T.38 offer (RFC 3264 §6, T.38 Annex D) with `o=coda 0 0 ...`: the caller owns
/// the dialog's session id and version and rewrites the `o=` line (or use
/// [`answer_t38_versioned`]). `our_addr` is where coda receives UDPTL.
///
/// Errors: [`T38Error::NoT38Stream`] (488) when no stream can be accepted;
/// [`T38Error::Malformed`] / [`T38Error::MissingConnection`] (400) when the chosen stream's
/// connection is broken or absent.
pub fn answer_t38(
    offer: &SessionDescription,
    local: &T38Local,
    our_addr: SocketAddr,
) -> Result<(SessionDescription, NegotiatedT38), T38Error> {
    answer_t38_versioned(offer, local, our_addr, 0, 0)
}

/// [`answer_t38`] with an explicit `o=` session id and version.
pub fn answer_t38_versioned(
    offer: &SessionDescription,
    local: &T38Local,
    our_addr: SocketAddr,
    session_id: u64,
    session_version: u64,
) -> Result<(SessionDescription, NegotiatedT38), T38Error> {
    let mut chosen: Option<(usize, SocketAddr, T38Params)> = None;
    for (index, m) in offer.media().iter().enumerate() {
        if !is_t38_media(m) || m.is_rejected() {
            continue;
        }
        let conn = offer
            .media_connection(index)?
            .ok_or(T38Error::MissingConnection)?;
        if conn.address.is_unspecified() || conn.address.is_multicast() {
            continue;
        }
        chosen = Some((index, SocketAddr::new(conn.address, m.port()), m.t38()));
        break;
    }
    let (chosen_index, remote, offered) = chosen.ok_or(T38Error::NoT38Stream)?;

    let version = version_u8(offered.version.unwrap_or(0)).min(local.version());
    let max_bit_rate = min_rate(offered.max_bit_rate, local.max_bit_rate);
    let rate_management = match offered.rate_management {
        Some(T38RateManagement::LocalTcf) => T38RateManagement::LocalTcf,
        _ => T38RateManagement::TransferredTcf,
    };
    let ec = EcMode::agree(local.ec, EcMode::from_params(offered.udp_ec));
    let fill_bit_removal = local.fill_bit_removal && offered.fill_bit_removal;
    let stated = Stated {
        version,
        max_bit_rate,
        fill_bit_removal,
        rate_management,
        max_buffer: local.max_buffer,
        max_datagram: local.max_datagram,
        ec,
    };

    let mut sdp = SessionDescription::new();
    session_header(&mut sdp, our_addr.ip(), session_id, session_version)?;
    for (index, m) in offer.media().iter().enumerate() {
        let section = if index == chosen_index {
            image_section(our_addr.port(), &stated)?
        } else {
            let fmts: Vec<&str> = m.formats().iter().map(String::as_str).collect();
            MediaSection::new(m.media(), 0, m.proto(), &fmts)?
        };
        sdp.push_media(section)?;
    }
    let negotiated = NegotiatedT38 {
        remote,
        version,
        max_bit_rate,
        rate_management,
        far_max_datagram: sane_max_datagram(offered.max_datagram),
        far_max_buffer: offered.max_buffer.unwrap_or(DEFAULT_FAR_MAX_BUFFER),
        ec_send: ec,
        fill_bit_removal,
    };
    Ok((sdp, negotiated))
}

/// coda's T.38 offer for a re-INVITE: one `m=image <port> udptl t38` at `our_addr` with
/// [`T38Local`]'s values (`transferredTCF`).
pub fn offer_t38(
    local: &T38Local,
    our_addr: SocketAddr,
    session_id: u64,
    session_version: u64,
) -> SessionDescription {
    let stated = Stated {
        version: local.version(),
        max_bit_rate: local.max_bit_rate,
        fill_bit_removal: local.fill_bit_removal,
        rate_management: T38RateManagement::TransferredTcf,
        max_buffer: local.max_buffer,
        max_datagram: local.max_datagram,
        ec: local.ec,
    };
    let mut sdp = SessionDescription::new();
    // Every value is built from numbers, an IP address and fixed ASCII, so the line checks
    // cannot fail; an error would leave a partial (still printable) description.
    let _ = session_header(&mut sdp, our_addr.ip(), session_id, session_version);
    if let Ok(m) = image_section(our_addr.port(), &stated) {
        let _ = sdp.push_media(m);
    }
    sdp
}

/// Checks the answer to coda's T.38 `offer` and returns what was agreed.
///
/// The answer must have as many `m=` lines as the offer with the same media types; coda's
/// first live T.38 stream must come back as a live `m=image ... udptl t38`
/// ([`T38Error::Rejected`] otherwise). Values are capped at what coda offered (an answerer
/// may not raise them); error correction follows [`EcMode`]'s agreement rule.
pub fn accept_t38_answer(
    offer: &SessionDescription,
    answer: &SessionDescription,
) -> Result<NegotiatedT38, T38Error> {
    if offer.media().len() != answer.media().len() {
        return Err(T38Error::MediaCountMismatch);
    }
    let mut offered_t38 = false;
    for (index, (o, a)) in offer.media().iter().zip(answer.media()).enumerate() {
        if !o.media().eq_ignore_ascii_case(a.media()) {
            return Err(T38Error::MediaTypeMismatch);
        }
        if !is_t38_media(o) || o.is_rejected() {
            continue;
        }
        offered_t38 = true;
        if a.is_rejected() || !is_t38_media(a) {
            continue;
        }
        let conn = answer
            .media_connection(index)?
            .ok_or(T38Error::MissingConnection)?;
        if conn.address.is_unspecified() || conn.address.is_multicast() {
            return Err(T38Error::Rejected);
        }
        let ours = o.t38();
        let theirs = a.t38();
        let our_version = version_u8(ours.version.unwrap_or(0));
        let our_rate = ours.max_bit_rate.filter(|r| *r > 0).unwrap_or(14_400);
        let rate_management = theirs
            .rate_management
            .or(ours.rate_management)
            .unwrap_or(T38RateManagement::TransferredTcf);
        return Ok(NegotiatedT38 {
            remote: SocketAddr::new(conn.address, a.port()),
            version: version_u8(theirs.version.unwrap_or(0)).min(our_version),
            max_bit_rate: min_rate(theirs.max_bit_rate, our_rate),
            rate_management,
            far_max_datagram: sane_max_datagram(theirs.max_datagram),
            far_max_buffer: theirs.max_buffer.unwrap_or(DEFAULT_FAR_MAX_BUFFER),
            ec_send: EcMode::agree(
                EcMode::from_params(ours.udp_ec),
                EcMode::from_params(theirs.udp_ec),
            ),
            fill_bit_removal: ours.fill_bit_removal && theirs.fill_bit_removal,
        });
    }
    Err(if offered_t38 {
        T38Error::Rejected
    } else {
        T38Error::NoT38Stream
    })
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    fn parse(s: &str) -> SessionDescription {
        match SessionDescription::parse(s.as_bytes()) {
            Ok(sdp) => sdp,
            Err(e) => panic!("test SDP failed to parse: {e}\n{s}"),
        }
    }

    fn crlf(lines: &[&str]) -> String {
        lines.iter().map(|l| format!("{l}\r\n")).collect()
    }

    fn ours() -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 5)), 41000)
    }

    fn text(sdp: &SessionDescription) -> String {
        String::from_utf8(sdp.to_bytes()).unwrap()
    }

    /// Shape of a FreeSWITCH T.38 re-INVITE (fax.md §3).
    fn freeswitch_offer() -> SessionDescription {
        parse(&crlf(&[
            "v=0",
            "o=FreeSWITCH 1700000000 1700000001 IN IP4 192.0.2.10",
            "s=FreeSWITCH",
            "c=IN IP4 192.0.2.10",
            "t=0 0",
            "m=image 40000 udptl t38",
            "a=T38FaxVersion:0",
            "a=T38MaxBitRate:14400",
            "a=T38FaxRateManagement:transferredTCF",
            "a=T38FaxMaxBuffer:2000",
            "a=T38FaxMaxDatagram:400",
            "a=T38FaxUdpEC:t38UDPRedundancy",
        ]))
    }

    /// Shape of an Asterisk T.38 re-INVITE: FEC, boolean-with-value, no MaxBuffer.
    fn asterisk_offer() -> SessionDescription {
        parse(&crlf(&[
            "v=0",
            "o=root 1821 1822 IN IP4 198.51.100.7",
            "s=Asterisk PBX 18.20.0",
            "c=IN IP4 198.51.100.7",
            "t=0 0",
            "m=image 4390 udptl t38",
            "a=T38FaxVersion:0",
            "a=T38MaxBitRate:14400",
            "a=T38FaxFillBitRemoval:0",
            "a=T38FaxRateManagement:transferredTCF",
            "a=T38FaxMaxDatagram:400",
            "a=T38FaxUdpEC:t38UDPFEC",
        ]))
    }

    const ANSWER_V0_REDUNDANCY: [&str; 12] = [
        "v=0",
        "o=coda 0 0 IN IP4 203.0.113.5",
        "s=coda",
        "c=IN IP4 203.0.113.5",
        "t=0 0",
        "m=image 41000 udptl t38",
        "a=T38FaxVersion:0",
        "a=T38MaxBitRate:14400",
        "a=T38FaxRateManagement:transferredTCF",
        "a=T38FaxMaxBuffer:2000",
        "a=T38FaxMaxDatagram:400",
        "a=T38FaxUdpEC:t38UDPRedundancy",
    ];

    #[test]
    fn t38_annex_d_answer_to_freeswitch_offer_golden() {
        let (ans, neg) = answer_t38(&freeswitch_offer(), &T38Local::default(), ours()).unwrap();
        assert_eq!(text(&ans), crlf(&ANSWER_V0_REDUNDANCY));
        assert_eq!(
            neg,
            NegotiatedT38 {
                remote: "192.0.2.10:40000".parse().unwrap(),
                version: 0,
                max_bit_rate: 14400,
                rate_management: T38RateManagement::TransferredTcf,
                far_max_datagram: 400,
                far_max_buffer: 2000,
                ec_send: EcMode::Redundancy,
                fill_bit_removal: false,
            }
        );
        assert!(neg.sends_redundancy());
        assert_eq!(neg.far_max_ifp(), 394);
        assert_eq!(neg.far_max_ifp_for_depth(3), 97);
    }

    #[test]
    fn t38_annex_d_answer_to_asterisk_fec_offer_golden() {
        let (ans, neg) = answer_t38(&asterisk_offer(), &T38Local::default(), ours()).unwrap();
        // FEC offered, redundancy answered; FillBitRemoval:0 read as false.
        assert_eq!(text(&ans), crlf(&ANSWER_V0_REDUNDANCY));
        assert_eq!(neg.remote, "198.51.100.7:4390".parse().unwrap());
        assert_eq!(neg.ec_send, EcMode::Redundancy);
        assert_eq!(neg.far_max_buffer, DEFAULT_FAR_MAX_BUFFER);
        assert!(!neg.fill_bit_removal);
    }

    #[test]
    fn t38_annex_d_fec_answered_with_fec_when_configured() {
        let local = T38Local {
            ec: EcMode::Fec,
            ..T38Local::default()
        };
        let (ans, neg) = answer_t38(&asterisk_offer(), &local, ours()).unwrap();
        assert!(text(&ans).contains("a=T38FaxUdpEC:t38UDPFEC\r\n"));
        assert_eq!(neg.ec_send, EcMode::Fec);
        assert!(!neg.sends_redundancy());
        assert_eq!(neg.far_max_ifp(), 392);
        // Redundancy offers still get redundancy.
        let (_, neg) = answer_t38(&freeswitch_offer(), &local, ours()).unwrap();
        assert_eq!(neg.ec_send, EcMode::Redundancy);
    }

    #[test]
    fn t38_annex_d_no_ec_offer_is_answered_without_ec() {
        for ec_line in ["a=T38FaxUdpEC:t38UDPNoEC", "a=X-nothing"] {
            let offer = parse(&crlf(&[
                "v=0",
                "o=- 1 1 IN IP4 192.0.2.1",
                "s=-",
                "t=0 0",
                "m=image 5000 udptl t38",
                "c=IN IP4 192.0.2.1",
                ec_line,
            ]));
            let (ans, neg) = answer_t38(&offer, &T38Local::default(), ours()).unwrap();
            assert!(!text(&ans).contains("T38FaxUdpEC"), "{ec_line}");
            assert_eq!(neg.ec_send, EcMode::None);
            // Missing version = 0, missing bit rate = ours, missing datagram = 400.
            assert_eq!((neg.version, neg.max_bit_rate), (0, 14400));
            assert_eq!(neg.far_max_datagram, 400);
        }
        let local = T38Local {
            ec: EcMode::None,
            ..T38Local::default()
        };
        let (ans, neg) = answer_t38(&freeswitch_offer(), &local, ours()).unwrap();
        assert!(!text(&ans).contains("T38FaxUdpEC"));
        assert_eq!(neg.ec_send, EcMode::None);
    }

    #[test]
    fn t38_annex_d_version_rate_and_tcf_negotiation() {
        let offer = parse(&crlf(&[
            "v=0",
            "o=- 1 1 IN IP4 192.0.2.1",
            "s=-",
            "c=IN IP4 192.0.2.1",
            "t=0 0",
            "m=image 5000 udptl t38",
            "a=T38FaxVersion:5",
            "a=T38MaxBitRate:9600",
            "a=T38FaxRateManagement:localTCF",
            "a=T38FaxMaxDatagram:1500",
            "a=T38FaxMaxBuffer:1024",
            "a=T38FaxFillBitRemoval:1",
            "a=T38FaxTranscodingMMR",
        ]));
        let local = T38Local {
            fill_bit_removal: true,
            ..T38Local::default()
        };
        let (ans, neg) = answer_t38(&offer, &local, ours()).unwrap();
        let t = text(&ans);
        assert!(t.contains("a=T38FaxVersion:3\r\n"), "{t}");
        assert!(t.contains("a=T38MaxBitRate:9600\r\n"));
        assert!(t.contains("a=T38FaxRateManagement:localTCF\r\n"));
        assert!(t.contains("a=T38FaxFillBitRemoval\r\n"), "bare presence");
        assert!(!t.contains("Transcoding"));
        assert_eq!(neg.version, 3);
        assert_eq!(neg.max_bit_rate, 9600);
        assert_eq!(neg.rate_management, T38RateManagement::LocalTcf);
        assert_eq!(neg.far_max_datagram, 400, "1500 is implausible");
        assert_eq!(neg.far_max_buffer, 1024);
        assert!(neg.fill_bit_removal);
        // Our configured version caps too.
        let local = T38Local {
            version: 1,
            ..T38Local::default()
        };
        assert_eq!(answer_t38(&offer, &local, ours()).unwrap().1.version, 1);
    }

    #[test]
    fn rfc3264_6_t38_answer_rejects_other_streams_and_keeps_order() {
        let offer = parse(&crlf(&[
            "v=0",
            "o=- 1 1 IN IP4 192.0.2.1",
            "s=-",
            "c=IN IP4 192.0.2.1",
            "t=0 0",
            "m=audio 6000 RTP/AVP 0 101",
            "a=rtpmap:101 telephone-event/8000",
            "m=image 0 udptl t38",
            "m=image 7000 udptl t38",
            "c=IN IP4 192.0.2.99",
            "a=T38FaxVersion:1",
            "m=image 8000 udptl t38",
        ]));
        let (ans, neg) = answer_t38(&offer, &T38Local::default(), ours()).unwrap();
        assert_eq!(
            text(&ans),
            crlf(&[
                "v=0",
                "o=coda 0 0 IN IP4 203.0.113.5",
                "s=coda",
                "c=IN IP4 203.0.113.5",
                "t=0 0",
                "m=audio 0 RTP/AVP 0 101",
                "m=image 0 udptl t38",
                "m=image 41000 udptl t38",
                "a=T38FaxVersion:1",
                "a=T38MaxBitRate:14400",
                "a=T38FaxRateManagement:transferredTCF",
                "a=T38FaxMaxBuffer:2000",
                "a=T38FaxMaxDatagram:400",
                "m=image 0 udptl t38",
            ])
        );
        assert_eq!(neg.remote, "192.0.2.99:7000".parse().unwrap());
        assert_eq!(neg.version, 1);
        assert_eq!(neg.ec_send, EcMode::None);
    }

    #[test]
    fn t38_annex_d_answer_errors() {
        let no_t38 = parse(&crlf(&[
            "v=0",
            "o=- 1 1 IN IP4 192.0.2.1",
            "s=-",
            "c=IN IP4 192.0.2.1",
            "t=0 0",
            "m=audio 6000 RTP/AVP 0",
            "m=image 0 udptl t38",
            "m=image 5000 UDP/TLS/UDPTL t38",
        ]));
        let e = answer_t38(&no_t38, &T38Local::default(), ours()).unwrap_err();
        assert_eq!((e.clone(), e.status_code()), (T38Error::NoT38Stream, 488));
        let no_c = parse(&crlf(&[
            "v=0",
            "o=- 1 1 IN IP4 192.0.2.1",
            "s=-",
            "t=0 0",
            "m=image 5000 udptl t38",
        ]));
        let e = answer_t38(&no_c, &T38Local::default(), ours()).unwrap_err();
        assert_eq!(
            (e.clone(), e.status_code()),
            (T38Error::MissingConnection, 400)
        );
        let bad_c = parse(&crlf(&[
            "v=0",
            "o=- 1 1 IN IP4 192.0.2.1",
            "s=-",
            "c=IN IP4 example.com",
            "t=0 0",
            "m=image 5000 udptl t38",
        ]));
        let e = answer_t38(&bad_c, &T38Local::default(), ours()).unwrap_err();
        assert_eq!(e.status_code(), 400);
        let hold = parse(&crlf(&[
            "v=0",
            "o=- 1 1 IN IP4 0.0.0.0",
            "s=-",
            "c=IN IP4 0.0.0.0",
            "t=0 0",
            "m=image 5000 udptl t38",
        ]));
        assert_eq!(
            answer_t38(&hold, &T38Local::default(), ours()).unwrap_err(),
            T38Error::NoT38Stream
        );
    }

    #[test]
    fn t38_annex_d_offer_golden() {
        let offer = offer_t38(&T38Local::default(), ours(), 42, 7);
        assert_eq!(
            text(&offer),
            crlf(&[
                "v=0",
                "o=coda 42 7 IN IP4 203.0.113.5",
                "s=coda",
                "c=IN IP4 203.0.113.5",
                "t=0 0",
                "m=image 41000 udptl t38",
                "a=T38FaxVersion:3",
                "a=T38MaxBitRate:14400",
                "a=T38FaxRateManagement:transferredTCF",
                "a=T38FaxMaxBuffer:2000",
                "a=T38FaxMaxDatagram:400",
                "a=T38FaxUdpEC:t38UDPRedundancy",
            ])
        );
        let v6 = SocketAddr::new(
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 5)),
            9,
        );
        let t = text(&offer_t38(
            &T38Local {
                version: 9,
                ..T38Local::default()
            },
            v6,
            1,
            2,
        ));
        assert!(t.contains("c=IN IP6 2001:db8::5\r\n"));
        assert!(t.contains("a=T38FaxVersion:3\r\n"), "clamped");
    }

    #[test]
    fn t38_annex_d_accept_freeswitch_answer() {
        let offer = offer_t38(&T38Local::default(), ours(), 42, 7);
        let answer = parse(&crlf(&[
            "v=0",
            "o=FreeSWITCH 1 2 IN IP4 192.0.2.10",
            "s=FreeSWITCH",
            "c=IN IP4 192.0.2.10",
            "t=0 0",
            "m=image 40002 udptl t38",
            "a=T38FaxVersion:0",
            "a=T38MaxBitRate:14400",
            "a=T38FaxRateManagement:transferredTCF",
            "a=T38FaxMaxBuffer:2000",
            "a=T38FaxMaxDatagram:400",
            "a=T38FaxUdpEC:t38UDPRedundancy",
        ]));
        let neg = accept_t38_answer(&offer, &answer).unwrap();
        assert_eq!(
            neg,
            NegotiatedT38 {
                remote: "192.0.2.10:40002".parse().unwrap(),
                version: 0,
                max_bit_rate: 14400,
                rate_management: T38RateManagement::TransferredTcf,
                far_max_datagram: 400,
                far_max_buffer: 2000,
                ec_send: EcMode::Redundancy,
                fill_bit_removal: false,
            }
        );
    }

    #[test]
    fn t38_annex_d_accept_answer_caps_and_ec() {
        let offer = offer_t38(
            &T38Local {
                version: 2,
                max_bit_rate: 9600,
                ..T38Local::default()
            },
            ours(),
            1,
            1,
        );
        // Answer raises version and rate (not allowed) and says FEC: capped, redundancy sent.
        let answer = parse(&crlf(&[
            "v=0",
            "o=- 1 1 IN IP4 192.0.2.10",
            "s=-",
            "c=IN IP4 192.0.2.10",
            "t=0 0",
            "m=image 40002 udptl t38",
            "a=T38FaxVersion:3",
            "a=T38MaxBitRate:14400",
            "a=T38FaxUdpEC:t38UDPFEC",
            "a=T38FaxMaxDatagram:0",
        ]));
        let neg = accept_t38_answer(&offer, &answer).unwrap();
        assert_eq!((neg.version, neg.max_bit_rate), (2, 9600));
        assert_eq!(neg.ec_send, EcMode::Redundancy);
        assert_eq!(neg.far_max_datagram, 400);
        assert_eq!(neg.far_max_buffer, DEFAULT_FAR_MAX_BUFFER);
    }

    #[test]
    fn rfc3264_6_accept_t38_answer_errors() {
        let offer = offer_t38(&T38Local::default(), ours(), 1, 1);
        let rejected = parse(&crlf(&[
            "v=0",
            "o=- 1 1 IN IP4 192.0.2.10",
            "s=-",
            "c=IN IP4 192.0.2.10",
            "t=0 0",
            "m=image 0 udptl t38",
        ]));
        let e = accept_t38_answer(&offer, &rejected).unwrap_err();
        assert_eq!((e.clone(), e.status_code()), (T38Error::Rejected, 488));
        let two = parse(&crlf(&[
            "v=0",
            "o=- 1 1 IN IP4 192.0.2.10",
            "s=-",
            "c=IN IP4 192.0.2.10",
            "t=0 0",
            "m=image 4000 udptl t38",
            "m=audio 0 RTP/AVP 0",
        ]));
        assert_eq!(
            accept_t38_answer(&offer, &two),
            Err(T38Error::MediaCountMismatch)
        );
        let audio = parse(&crlf(&[
            "v=0",
            "o=- 1 1 IN IP4 192.0.2.10",
            "s=-",
            "c=IN IP4 192.0.2.10",
            "t=0 0",
            "m=audio 4000 RTP/AVP 0",
        ]));
        assert_eq!(
            accept_t38_answer(&offer, &audio),
            Err(T38Error::MediaTypeMismatch)
        );
        let no_c = parse(&crlf(&[
            "v=0",
            "o=- 1 1 IN IP4 192.0.2.10",
            "s=-",
            "t=0 0",
            "m=image 4000 udptl t38",
        ]));
        assert_eq!(
            accept_t38_answer(&offer, &no_c),
            Err(T38Error::MissingConnection)
        );
    }

    #[test]
    fn t38_annex_d_own_offer_answered_by_own_answerer_agrees() {
        let a = T38Local {
            version: 1,
            fill_bit_removal: true,
            ..T38Local::default()
        };
        let b = T38Local {
            fill_bit_removal: true,
            max_bit_rate: 12000,
            ..T38Local::default()
        };
        let addr_b: SocketAddr = "192.0.2.44:6000".parse().unwrap();
        let offer = parse(&text(&offer_t38(&a, ours(), 5, 5)));
        let (answer, neg_b) = answer_t38(&offer, &b, addr_b).unwrap();
        let answer = parse(&text(&answer));
        let neg_a = accept_t38_answer(&offer, &answer).unwrap();
        assert_eq!(neg_a.remote, addr_b);
        assert_eq!(neg_b.remote, ours());
        for n in [neg_a, neg_b] {
            assert_eq!((n.version, n.max_bit_rate), (1, 12000));
            assert_eq!(n.ec_send, EcMode::Redundancy);
            assert!(n.fill_bit_removal);
            assert_eq!((n.far_max_datagram, n.far_max_buffer), (400, 2000));
        }
    }
}
