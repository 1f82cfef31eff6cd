//! RFC 3264 offer/answer for coda's audio: PCMU, PCMA and telephone-event at 8 kHz.
//!
//! Policy (documented here because RFC 3264 leaves it to the implementation):
//!
//! * **Codec choice.** As answerer coda picks the *first format in the offerer's order* that is
//!   also in [`LocalMedia::prefer`] (RFC 3264 §6.1 lets either side's preference win; honouring
//!   the offerer's order is the convention of most stacks and avoids surprising the caller).
//!   `prefer` therefore acts as the set of enabled codecs when answering and as the order of
//!   formats when offering. The answer lists exactly one audio codec (plus telephone-event), so
//!   the codec cannot change mid-call without a new offer.
//! * **Payload types.** The answer reuses the offerer's payload type numbers, for dynamic
//!   (telephone-event, or PCMU/PCMA under a dynamic number) and static ones alike. Static 0 and
//!   8 are recognised without `a=rtpmap`.
//! * **Streams.** Only the first usable `audio` stream on plain `RTP/AVP` is accepted; every
//!   other `m=` line (video, `m=image` T.38, `RTP/SAVP`/`SAVPF`, further audio, multicast,
//!   streams already at port 0) is rejected with port 0, copying media, proto and formats, and
//!   media order is kept (RFC 3264 §6). SRTP and T.38 answers will come with their issues.
//! * **Direction.** The answer mirrors the offer (`sendonly` → `recvonly` ...). A `c=` of
//!   `0.0.0.0` (or `::`) is RFC 2543 hold: treated as if the offerer had dropped its receive
//!   half, so `sendrecv` at `0.0.0.0` is answered `recvonly`.
//! * **ptime.** coda always states `a=ptime:20`. [`Negotiated::ptime`] is what the peer asked
//!   to receive (its `a=ptime` if a multiple of 10 in 10..=60 ms, else 20).
//! * **telephone-event.** Included only if offered at 8000 Hz; the answer's `fmtp` lists the
//!   offered events that coda supports (0–16, i.e. DTMF and flash; `0-15` when the offer had
//!   no `fmtp`, the RFC 4733 default).

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use super::attrs::{Direction, EventSet};
use super::error::OfferAnswerError;
use super::model::{Line, MediaSection, SessionDescription};

/// Packetisation interval coda sends and advertises, in milliseconds.
pub const DEFAULT_PTIME: u32 = 20;

/// Payload type coda uses for telephone-event in its own offers.
pub const OFFER_TELEPHONE_EVENT_PT: u8 = 101;

/// Audio codecs coda can carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Codec {
    /// G.711 µ-law, static payload type 0.
    Pcmu,
    /// G.711 A-law, static payload type 8.
    Pcma,
}

impl Codec {
    /// All supported codecs in coda's default order.
    pub const ALL: [Codec; 2] = [Codec::Pcmu, Codec::Pcma];

    /// The static RTP payload type (RFC 3551).
    pub fn static_pt(&self) -> u8 {
        match self {
            Self::Pcmu => 0,
            Self::Pcma => 8,
        }
    }

    /// The encoding name used in `a=rtpmap`.
    pub fn encoding_name(&self) -> &'static str {
        match self {
            Self::Pcmu => "PCMU",
            Self::Pcma => "PCMA",
        }
    }

    /// RTP clock rate in Hz.
    pub fn clock_rate(&self) -> u32 {
        8000
    }

    fn from_encoding(name: &str, clock: u32, channels: Option<u16>) -> Option<Self> {
        if clock != 8000 || !matches!(channels, None | Some(1)) {
            return None;
        }
        if name.eq_ignore_ascii_case("PCMU") {
            Some(Self::Pcmu)
        } else if name.eq_ignore_ascii_case("PCMA") {
            Some(Self::Pcma)
        } else {
            None
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.encoding_name())
    }
}

/// coda's side of the media: where it receives RTP and which codecs it enables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalMedia {
    /// Address put in `o=` and `c=`.
    pub addr: IpAddr,
    /// Optional address of the other IP family; used instead of `addr` when the peer's
    /// connection address is of that family (e.g. an IPv6 offer to a dual-stack coda).
    pub alt_addr: Option<IpAddr>,
    /// RTP port (RTCP on port + 1).
    pub port: u16,
    /// Enabled codecs, in coda's order of preference for its own offers. Empty means
    /// [`Codec::ALL`].
    pub prefer: Vec<Codec>,
}

impl LocalMedia {
    /// Single-address local media with both codecs, PCMU first.
    pub fn new(addr: IpAddr, port: u16) -> Self {
        Self {
            addr,
            alt_addr: None,
            port,
            prefer: Codec::ALL.to_vec(),
        }
    }

    fn codecs(&self) -> Vec<Codec> {
        let mut out: Vec<Codec> = Vec::with_capacity(2);
        let src: &[Codec] = if self.prefer.is_empty() {
            &Codec::ALL
        } else {
            &self.prefer
        };
        for c in src {
            if !out.contains(c) {
                out.push(*c);
            }
        }
        out
    }

    /// The local address matching the family of `remote`.
    fn addr_for(&self, remote: IpAddr) -> IpAddr {
        match self.alt_addr {
            Some(alt)
                if alt.is_ipv6() == remote.is_ipv6() && self.addr.is_ipv6() != alt.is_ipv6() =>
            {
                alt
            }
            _ => self.addr,
        }
    }
}

/// The outcome of a successful offer/answer exchange, from coda's point of view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Negotiated {
    /// Where to send RTP: the peer's `c=` (media level overrides session level) and `m=` port.
    /// An unspecified address means the peer is on hold (do not send).
    pub remote_addr: SocketAddr,
    /// The audio codec.
    pub codec: Codec,
    /// Payload type to use for `codec` (the peer's number).
    pub pt: u8,
    /// Payload type for RFC 4733 events, if negotiated.
    pub telephone_event_pt: Option<u8>,
    /// coda's direction: whether coda may send and/or should expect to receive.
    pub direction: Direction,
    /// Packetisation interval the peer wants to receive, in ms.
    pub ptime: u32,
}

impl fmt::Display for Negotiated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "remote={} codec={} pt={} telephone-event=",
            self.remote_addr, self.codec, self.pt
        )?;
        match self.telephone_event_pt {
            Some(pt) => write!(f, "{pt}")?,
            None => f.write_str("none")?,
        }
        write!(f, " direction={} ptime={}", self.direction, self.ptime)
    }
}

/// What a format in a media section stands for.
enum Format {
    Codec(Codec),
    TelephoneEvent,
    Other,
}

fn classify(m: &MediaSection, pt: u8) -> Format {
    if let Some(map) = m.rtpmap(pt) {
        if map.encoding.eq_ignore_ascii_case("telephone-event")
            && map.clock_rate == 8000
            && matches!(map.channels, None | Some(1))
        {
            return Format::TelephoneEvent;
        }
        return match Codec::from_encoding(map.encoding, map.clock_rate, map.channels) {
            Some(c) => Format::Codec(c),
            None => Format::Other,
        };
    }
    match pt {
        0 => Format::Codec(Codec::Pcmu),
        8 => Format::Codec(Codec::Pcma),
        _ => Format::Other,
    }
}

fn telephone_events(m: &MediaSection, pt: u8) -> EventSet {
    match m.fmtp(pt) {
        Some(f) if !f.params.is_empty() => EventSet::parse(f.params).unwrap_or_default(),
        _ => EventSet::DTMF,
    }
}

fn is_plain_rtp_audio(m: &MediaSection) -> bool {
    m.media() == "audio" && m.proto().eq_ignore_ascii_case("RTP/AVP")
}

fn sane_ptime(p: Option<u32>) -> u32 {
    match p {
        Some(p) if (10..=60).contains(&p) && p % 10 == 0 => p,
        _ => DEFAULT_PTIME,
    }
}

struct Accepted {
    index: usize,
    remote: SocketAddr,
    codec: Codec,
    pt: u8,
    te: Option<(u8, EventSet)>,
    offered_dir: Direction,
    ptime: u32,
}

fn ip_words(addr: IpAddr) -> &'static str {
    if addr.is_ipv6() {
        "IN IP6"
    } else {
        "IN IP4"
    }
}

fn session_header(
    sdp: &mut SessionDescription,
    addr: IpAddr,
    session_id: u64,
    session_version: u64,
) -> Result<(), OfferAnswerError> {
    let net = ip_words(addr);
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

fn audio_section(
    port: u16,
    codecs: &[(Codec, u8)],
    te: Option<(u8, EventSet)>,
    direction: Direction,
) -> Result<MediaSection, OfferAnswerError> {
    let mut fmts: Vec<String> = codecs.iter().map(|(_, pt)| pt.to_string()).collect();
    if let Some((pt, _)) = te {
        fmts.push(pt.to_string());
    }
    let fmt_refs: Vec<&str> = fmts.iter().map(String::as_str).collect();
    let mut m = MediaSection::new("audio", port, "RTP/AVP", &fmt_refs)?;
    for (codec, pt) in codecs {
        m.push_line(Line::attribute(
            "rtpmap",
            Some(&format!(
                "{pt} {}/{}",
                codec.encoding_name(),
                codec.clock_rate()
            )),
        )?);
    }
    if let Some((pt, events)) = te {
        m.push_line(Line::attribute(
            "rtpmap",
            Some(&format!("{pt} telephone-event/8000")),
        )?);
        m.push_line(Line::attribute("fmtp", Some(&format!("{pt} {events}")))?);
    }
    m.push_line(Line::attribute("ptime", Some(&DEFAULT_PTIME.to_string()))?);
    m.push_line(Line::attribute(direction.as_str(), None)?);
    Ok(m)
}

/// Answers `offer` as coda (RFC 3264 §6). See the module docs for the policy.
///
/// Errors: [`OfferAnswerError::NoCommonCodec`] / [`OfferAnswerError::NoUsableStream`] (488)
/// when nothing can be accepted; `Malformed` / `MissingConnection` (400) when the stream coda
/// would accept has a broken or absent `c=` line.
pub fn answer(
    offer: &SessionDescription,
    local: &LocalMedia,
    session_id: u64,
    session_version: u64,
) -> Result<(SessionDescription, Negotiated), OfferAnswerError> {
    let enabled = local.codecs();
    let mut accepted: Option<Accepted> = None;
    let mut saw_audio = false;
    for (index, m) in offer.media().iter().enumerate() {
        if accepted.is_some() || !is_plain_rtp_audio(m) || m.is_rejected() {
            continue;
        }
        let conn = offer
            .media_connection(index)?
            .ok_or(OfferAnswerError::MissingConnection)?;
        if conn.address.is_multicast() {
            continue;
        }
        saw_audio = true;
        let mut codec = None;
        let mut te = None;
        for pt in m.payload_types() {
            match classify(m, pt) {
                Format::Codec(c) if codec.is_none() && enabled.contains(&c) => {
                    codec = Some((c, pt));
                }
                Format::TelephoneEvent if te.is_none() => {
                    let events = telephone_events(m, pt).intersect(&EventSet::DTMF_AND_FLASH);
                    if !events.is_empty() {
                        te = Some((pt, events));
                    }
                }
                _ => {}
            }
        }
        let Some((codec, pt)) = codec else { continue };
        let mut offered_dir = offer.media_direction(index).unwrap_or(Direction::SendRecv);
        if conn.is_hold() {
            offered_dir = offered_dir.without_receive();
        }
        accepted = Some(Accepted {
            index,
            remote: SocketAddr::new(conn.address, m.port()),
            codec,
            pt,
            te,
            offered_dir,
            ptime: sane_ptime(m.ptime()),
        });
    }
    let Some(acc) = accepted else {
        return Err(if saw_audio {
            OfferAnswerError::NoCommonCodec
        } else {
            OfferAnswerError::NoUsableStream
        });
    };

    let our_addr = local.addr_for(acc.remote.ip());
    let direction = acc.offered_dir.reversed();
    let mut sdp = SessionDescription::new();
    session_header(&mut sdp, our_addr, session_id, session_version)?;
    for (index, m) in offer.media().iter().enumerate() {
        let section = if index == acc.index {
            audio_section(local.port, &[(acc.codec, acc.pt)], acc.te, direction)?
        } else {
            let fmts: Vec<&str> = m.formats().iter().map(String::as_str).collect();
            MediaSection::new(m.media(), 0, m.proto(), &fmts)?
        };
        sdp.push_media(section)?;
    }
    let negotiated = Negotiated {
        remote_addr: acc.remote,
        codec: acc.codec,
        pt: acc.pt,
        telephone_event_pt: acc.te.map(|(pt, _)| pt),
        direction,
        ptime: acc.ptime,
    };
    Ok((sdp, negotiated))
}

/// coda's initial offer (RFC 3264 §5): one `sendrecv` audio stream with the enabled codecs in
/// `local.prefer` order on their static payload types, telephone-event on
/// [`OFFER_TELEPHONE_EVENT_PT`] with events `0-16`, and `a=ptime:20`.
pub fn offer(local: &LocalMedia, session_id: u64, session_version: u64) -> SessionDescription {
    let codecs: Vec<(Codec, u8)> = local
        .codecs()
        .into_iter()
        .map(|c| (c, c.static_pt()))
        .collect();
    let mut sdp = SessionDescription::new();
    // Every value below is produced from numbers, IP addresses and fixed ASCII, so the line
    // checks cannot fail; an error would leave a partial (still printable) description.
    let _ = session_header(&mut sdp, local.addr, session_id, session_version);
    if let Ok(m) = audio_section(
        local.port,
        &codecs,
        Some((OFFER_TELEPHONE_EVENT_PT, EventSet::DTMF_AND_FLASH)),
        Direction::SendRecv,
    ) {
        let _ = sdp.push_media(m);
    }
    sdp
}

/// Checks an answer to coda's `offer` (RFC 3264 §5.1/§6) and returns what was agreed.
///
/// The answer must have as many `m=` lines as the offer, with the same media types. The first
/// accepted plain-RTP audio stream is used; its first PCMU/PCMA format must be a codec coda
/// offered in that stream, else [`OfferAnswerError::UnofferedCodec`]. Payload type numbers
/// are taken from the answer (they say what the answerer expects to receive).
pub fn accept_answer(
    offer: &SessionDescription,
    answer: &SessionDescription,
) -> Result<Negotiated, OfferAnswerError> {
    if offer.media().len() != answer.media().len() {
        return Err(OfferAnswerError::MediaCountMismatch);
    }
    let mut saw_audio = false;
    for (index, (o, a)) in offer.media().iter().zip(answer.media()).enumerate() {
        if o.media() != a.media() {
            return Err(OfferAnswerError::MediaTypeMismatch);
        }
        if a.is_rejected() || o.is_rejected() || !is_plain_rtp_audio(o) || !is_plain_rtp_audio(a) {
            continue;
        }
        saw_audio = true;
        let offered: Vec<Codec> = o
            .payload_types()
            .filter_map(|pt| match classify(o, pt) {
                Format::Codec(c) => Some(c),
                _ => None,
            })
            .collect();
        let offered_te = o
            .payload_types()
            .any(|pt| matches!(classify(o, pt), Format::TelephoneEvent));
        let mut codec = None;
        let mut te = None;
        for pt in a.payload_types() {
            match classify(a, pt) {
                Format::Codec(c) if codec.is_none() => {
                    if !offered.contains(&c) {
                        return Err(OfferAnswerError::UnofferedCodec);
                    }
                    codec = Some((c, pt));
                }
                Format::TelephoneEvent if te.is_none() && offered_te => te = Some(pt),
                _ => {}
            }
        }
        let Some((codec, pt)) = codec else { continue };
        let conn = answer
            .media_connection(index)?
            .ok_or(OfferAnswerError::MissingConnection)?;
        let mut their_dir = answer.media_direction(index).unwrap_or(Direction::SendRecv);
        if conn.is_hold() {
            their_dir = their_dir.without_receive();
        }
        let ours = offer.media_direction(index).unwrap_or(Direction::SendRecv);
        return Ok(Negotiated {
            remote_addr: SocketAddr::new(conn.address, a.port()),
            codec,
            pt,
            telephone_event_pt: te,
            direction: their_dir.reversed().intersect(ours),
            ptime: sane_ptime(a.ptime()),
        });
    }
    Err(if saw_audio {
        OfferAnswerError::NoCommonCodec
    } else {
        OfferAnswerError::NoUsableStream
    })
}
