//! Typed views over lines and attributes. They borrow from the description and never
//! allocate except for lists; malformed attributes are skipped (`None`), never fatal.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::error::SdpError;
use super::model::parse_digits;

/// An `a=` line split at the first `:`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attribute<'a> {
    /// Attribute name (`rtpmap`, `sendonly`, ...).
    pub name: &'a str,
    /// Value after `:`, or `None` for a property attribute.
    pub value: Option<&'a str>,
}

/// The `o=` line (RFC 8866 §5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Origin<'a> {
    /// `<username>`, `-` if none.
    pub username: &'a str,
    /// `<sess-id>` as written (numeric string).
    pub session_id: &'a str,
    /// `<sess-version>` as written (numeric string).
    pub session_version: &'a str,
    /// `<nettype>`, normally `IN`.
    pub net_type: &'a str,
    /// `<addrtype>`, `IP4` or `IP6`.
    pub addr_type: &'a str,
    /// `<unicast-address>` as written (may be a host name).
    pub address: &'a str,
}

impl<'a> Origin<'a> {
    pub(crate) fn parse(value: &'a str) -> Option<Self> {
        let mut t = value.split(' ').filter(|s| !s.is_empty());
        let o = Self {
            username: t.next()?,
            session_id: t.next()?,
            session_version: t.next()?,
            net_type: t.next()?,
            addr_type: t.next()?,
            address: t.next()?,
        };
        if t.next().is_some() {
            return None;
        }
        Some(o)
    }

    /// `<sess-version>` as a number, if it fits in `u64`.
    pub fn version_u64(&self) -> Option<u64> {
        parse_digits(self.session_version)
    }
}

/// A `c=` line with a literal IP address (RFC 8866 §5.7). Host names are not supported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Connection {
    /// The connection address.
    pub address: IpAddr,
}

impl Connection {
    /// Parses `IN IP4 <addr>[/ttl[/n]]` or `IN IP6 <addr>[/n]`.
    pub fn parse(value: &str) -> Result<Self, SdpError> {
        let mut t = value.split(' ').filter(|s| !s.is_empty());
        let (Some(net), Some(kind), Some(addr), None) = (t.next(), t.next(), t.next(), t.next())
        else {
            return Err(SdpError::InvalidConnection);
        };
        if net != "IN" {
            return Err(SdpError::InvalidConnection);
        }
        let host = addr.split('/').next().unwrap_or(addr);
        let address = match kind {
            "IP4" => IpAddr::V4(
                host.parse::<Ipv4Addr>()
                    .map_err(|_| SdpError::InvalidConnection)?,
            ),
            "IP6" => IpAddr::V6(
                host.parse::<Ipv6Addr>()
                    .map_err(|_| SdpError::InvalidConnection)?,
            ),
            _ => return Err(SdpError::InvalidConnection),
        };
        Ok(Self { address })
    }

    /// RFC 2543-style hold (`0.0.0.0`, and `::` by analogy): the peer does not want media.
    /// RFC 3264 §8.4 asks answerers to still understand it.
    pub fn is_hold(&self) -> bool {
        self.address.is_unspecified()
    }
}

/// Media direction attribute (RFC 3264 §5.1 / §6.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// `a=sendrecv` (the default).
    SendRecv,
    /// `a=sendonly`.
    SendOnly,
    /// `a=recvonly`.
    RecvOnly,
    /// `a=inactive`.
    Inactive,
}

impl Direction {
    /// Parses an attribute name.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "sendrecv" => Some(Self::SendRecv),
            "sendonly" => Some(Self::SendOnly),
            "recvonly" => Some(Self::RecvOnly),
            "inactive" => Some(Self::Inactive),
            _ => None,
        }
    }

    /// The attribute name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::SendRecv => "sendrecv",
            Self::SendOnly => "sendonly",
            Self::RecvOnly => "recvonly",
            Self::Inactive => "inactive",
        }
    }

    fn from_flags(send: bool, recv: bool) -> Self {
        match (send, recv) {
            (true, true) => Self::SendRecv,
            (true, false) => Self::SendOnly,
            (false, true) => Self::RecvOnly,
            (false, false) => Self::Inactive,
        }
    }

    /// Whether the side holding this direction sends media.
    pub fn sends(&self) -> bool {
        matches!(self, Self::SendRecv | Self::SendOnly)
    }

    /// Whether the side holding this direction receives media.
    pub fn receives(&self) -> bool {
        matches!(self, Self::SendRecv | Self::RecvOnly)
    }

    /// The direction seen from the other side (`sendonly` ↔ `recvonly`), as an answerer
    /// mirrors an offer (RFC 3264 §6.1).
    pub fn reversed(&self) -> Self {
        Self::from_flags(self.receives(), self.sends())
    }

    /// Both constraints at once (logical AND of send and receive).
    pub fn intersect(&self, other: Self) -> Self {
        Self::from_flags(
            self.sends() && other.sends(),
            self.receives() && other.receives(),
        )
    }

    /// Drops the receive half (used when the peer's address is `0.0.0.0`).
    pub fn without_receive(&self) -> Self {
        Self::from_flags(self.sends(), false)
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `a=rtpmap:<pt> <encoding>/<clock rate>[/<channels>]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtpMap<'a> {
    /// Payload type (0..=127).
    pub pt: u8,
    /// Encoding name as written (compare case-insensitively).
    pub encoding: &'a str,
    /// Clock rate in Hz.
    pub clock_rate: u32,
    /// Channel count, if given.
    pub channels: Option<u16>,
}

impl<'a> RtpMap<'a> {
    pub(crate) fn from_attribute(a: Attribute<'a>) -> Option<Self> {
        if a.name != "rtpmap" {
            return None;
        }
        let (pt, rest) = a.value?.trim().split_once(' ')?;
        let pt = parse_digits::<u8>(pt).filter(|p| *p <= 127)?;
        let mut parts = rest.trim().split('/');
        let encoding = parts.next().filter(|e| !e.is_empty())?;
        let clock_rate = parse_digits::<u32>(parts.next()?).filter(|c| *c > 0)?;
        let channels = match parts.next() {
            Some(c) => Some(parse_digits::<u16>(c)?),
            None => None,
        };
        if parts.next().is_some() {
            return None;
        }
        Some(Self {
            pt,
            encoding,
            clock_rate,
            channels,
        })
    }
}

/// `a=fmtp:<pt> <parameters>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fmtp<'a> {
    /// Payload type.
    pub pt: u8,
    /// Format parameters as written (e.g. `0-16` or `mode=30`).
    pub params: &'a str,
}

impl<'a> Fmtp<'a> {
    pub(crate) fn from_attribute(a: Attribute<'a>) -> Option<Self> {
        if a.name != "fmtp" {
            return None;
        }
        let v = a.value?;
        let (pt, params) = v.split_once(' ').unwrap_or((v, ""));
        let pt = parse_digits::<u8>(pt).filter(|p| *p <= 127)?;
        Some(Self {
            pt,
            params: params.trim(),
        })
    }

    /// `key=value` pairs separated by `;` (values may be empty; bare keys give `""`).
    pub fn pairs(&self) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.params
            .split(';')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (k.trim(), v.trim()),
                None => (p, ""),
            })
    }
}

/// A set of RFC 4733 event codes (0..=255), e.g. from `a=fmtp:101 0-15,16`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct EventSet([u64; 4]);

impl EventSet {
    /// Events 0..=15: DTMF digits, `*`, `#`, A–D. RFC 4733 §2.4.1: the default when no
    /// `fmtp` is given.
    pub const DTMF: Self = Self([0xFFFF, 0, 0, 0]);
    /// Events 0..=16: DTMF plus flash, what coda offers and accepts.
    pub const DTMF_AND_FLASH: Self = Self([0x1FFFF, 0, 0, 0]);

    /// Parses a comma-separated list of events and ranges; `None` if malformed.
    pub fn parse(s: &str) -> Option<Self> {
        let mut set = Self::default();
        for item in s.split(',') {
            let item = item.trim();
            let (lo, hi) = match item.split_once('-') {
                Some((a, b)) => (parse_digits::<u8>(a.trim())?, parse_digits::<u8>(b.trim())?),
                None => {
                    let e = parse_digits::<u8>(item)?;
                    (e, e)
                }
            };
            if lo > hi {
                return None;
            }
            for e in lo..=hi {
                set.insert(e);
            }
        }
        Some(set)
    }

    /// Adds an event.
    pub fn insert(&mut self, event: u8) {
        let (word, bit) = (usize::from(event / 64), event % 64);
        if let Some(w) = self.0.get_mut(word) {
            *w |= 1u64 << bit;
        }
    }

    /// Whether `event` is in the set.
    pub fn contains(&self, event: u8) -> bool {
        let (word, bit) = (usize::from(event / 64), event % 64);
        self.0.get(word).is_some_and(|w| w & (1u64 << bit) != 0)
    }

    /// Events in both sets.
    pub fn intersect(&self, other: &Self) -> Self {
        let mut out = Self::default();
        for (o, (a, b)) in out.0.iter_mut().zip(self.0.iter().zip(other.0.iter())) {
            *o = a & b;
        }
        out
    }

    /// True when no event is present.
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }
}

impl fmt::Display for EventSet {
    /// Writes ranges, e.g. `0-15` or `0-11,16`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut e: u16 = 0;
        while e <= 255 {
            // e <= 255 in this loop, so the casts are lossless.
            if !self.contains(e as u8) {
                e += 1;
                continue;
            }
            let start = e;
            while e < 255 && self.contains((e + 1) as u8) {
                e += 1;
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if start == e {
                write!(f, "{start}")?;
            } else {
                write!(f, "{start}-{e}")?;
            }
            e += 1;
        }
        Ok(())
    }
}

/// SRTP crypto suite names of RFC 4568 §6.2 and later registrations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CryptoSuite<'a> {
    /// `AES_CM_128_HMAC_SHA1_80`
    AesCm128HmacSha1_80,
    /// `AES_CM_128_HMAC_SHA1_32`
    AesCm128HmacSha1_32,
    /// `AES_256_CM_HMAC_SHA1_80` (RFC 6188)
    Aes256CmHmacSha1_80,
    /// `AES_256_CM_HMAC_SHA1_32` (RFC 6188)
    Aes256CmHmacSha1_32,
    /// `AEAD_AES_128_GCM` (RFC 7714)
    AeadAes128Gcm,
    /// `AEAD_AES_256_GCM` (RFC 7714)
    AeadAes256Gcm,
    /// Anything else, as written.
    Other(&'a str),
}

impl<'a> CryptoSuite<'a> {
    fn parse(s: &'a str) -> Self {
        match s {
            "AES_CM_128_HMAC_SHA1_80" => Self::AesCm128HmacSha1_80,
            "AES_CM_128_HMAC_SHA1_32" => Self::AesCm128HmacSha1_32,
            "AES_256_CM_HMAC_SHA1_80" => Self::Aes256CmHmacSha1_80,
            "AES_256_CM_HMAC_SHA1_32" => Self::Aes256CmHmacSha1_32,
            "AEAD_AES_128_GCM" => Self::AeadAes128Gcm,
            "AEAD_AES_256_GCM" => Self::AeadAes256Gcm,
            other => Self::Other(other),
        }
    }
}

/// One `key-param` of an `a=crypto` line: `<method>:<key||salt>[|<lifetime>][|<mki>:<len>]`.
///
/// `Debug` redacts the key material: SDES keys must never reach logs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct KeyParam<'a> {
    /// Key method, `inline` in practice.
    pub method: &'a str,
    /// Base64 master key concatenated with salt. Secret.
    pub key_salt: &'a str,
    /// Master key lifetime in packets (`2^20` or decimal), if given.
    pub lifetime: Option<u64>,
    /// MKI value and MKI length in bytes, if given.
    pub mki: Option<(u64, u8)>,
}

impl fmt::Debug for KeyParam<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyParam")
            .field("method", &self.method)
            .field("key_salt", &"<redacted>")
            .field("lifetime", &self.lifetime)
            .field("mki", &self.mki)
            .finish()
    }
}

impl<'a> KeyParam<'a> {
    fn parse(s: &'a str) -> Option<Self> {
        let (method, info) = s.split_once(':')?;
        let mut parts = info.split('|');
        let key_salt = parts.next().filter(|k| !k.is_empty())?;
        let mut lifetime = None;
        let mut mki = None;
        for p in parts {
            if let Some((v, len)) = p.split_once(':') {
                if mki.is_some() {
                    return None;
                }
                let len = parse_digits::<u8>(len).filter(|l| (1..=128).contains(l))?;
                mki = Some((parse_digits::<u64>(v)?, len));
            } else if lifetime.is_none() && mki.is_none() {
                lifetime = Some(parse_lifetime(p)?);
            } else {
                return None;
            }
        }
        Some(Self {
            method,
            key_salt,
            lifetime,
            mki,
        })
    }
}

fn parse_lifetime(s: &str) -> Option<u64> {
    match s.strip_prefix("2^") {
        Some(exp) => {
            let exp = parse_digits::<u32>(exp).filter(|e| *e < 64)?;
            Some(1u64 << exp)
        }
        None => parse_digits(s),
    }
}

/// `a=crypto:<tag> <crypto-suite> <key-params> [<session-params>...]` (RFC 4568 §9.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Crypto<'a> {
    /// Tag (1..=9 digits), echoed by the answerer.
    pub tag: u32,
    /// Crypto suite.
    pub suite: CryptoSuite<'a>,
    /// Key parameters (`;`-separated in the attribute), at least one.
    pub key_params: Vec<KeyParam<'a>>,
    /// Session parameters such as `UNENCRYPTED_SRTCP` or `KDR=1`, as written.
    pub session_params: Vec<&'a str>,
}

impl<'a> Crypto<'a> {
    pub(crate) fn from_attribute(a: Attribute<'a>) -> Option<Self> {
        if a.name != "crypto" {
            return None;
        }
        let mut t = a.value?.split(' ').filter(|s| !s.is_empty());
        let tag_s = t.next()?;
        if tag_s.len() > 9 {
            return None;
        }
        let tag = parse_digits::<u32>(tag_s)?;
        let suite = CryptoSuite::parse(t.next()?);
        let key_params = t
            .next()?
            .split(';')
            .map(KeyParam::parse)
            .collect::<Option<Vec<_>>>()?;
        Some(Self {
            tag,
            suite,
            key_params,
            session_params: t.collect(),
        })
    }
}

/// `T38FaxRateManagement` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum T38RateManagement {
    /// `transferredTCF` (the one for UDPTL).
    TransferredTcf,
    /// `localTCF`.
    LocalTcf,
}

/// `T38FaxUdpEC` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum T38UdpEc {
    /// `t38UDPRedundancy`.
    Redundancy,
    /// `t38UDPFEC`.
    Fec,
    /// `t38UDPNoEC` (seen in the wild; same as absent).
    None,
}

/// T.38 session attributes of an `m=image <port> udptl t38` section (ITU-T T.38 Annex D,
/// RFC 4612). Names are matched case-insensitively and the common aliases `T38FaxMaxRate`
/// and `T38MaxDatagram` are accepted, as gateways disagree on spelling.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct T38Params {
    /// `T38FaxVersion` (absent means 0).
    pub version: Option<u32>,
    /// `T38MaxBitRate` in bit/s.
    pub max_bit_rate: Option<u32>,
    /// `T38FaxRateManagement`.
    pub rate_management: Option<T38RateManagement>,
    /// `T38FaxMaxBuffer` in bytes.
    pub max_buffer: Option<u32>,
    /// `T38FaxMaxDatagram` in bytes.
    pub max_datagram: Option<u32>,
    /// `T38FaxUdpEC`.
    pub udp_ec: Option<T38UdpEc>,
    /// `T38FaxFillBitRemoval` (presence, or a value other than `0`/`false`).
    pub fill_bit_removal: bool,
    /// `T38FaxTranscodingMMR`.
    pub transcoding_mmr: bool,
    /// `T38FaxTranscodingJBIG`.
    pub transcoding_jbig: bool,
}

impl T38Params {
    pub(crate) fn from_attributes<'a>(attrs: impl Iterator<Item = Attribute<'a>>) -> Self {
        let mut p = Self::default();
        for a in attrs {
            let name = a.name.to_ascii_lowercase();
            let num = || a.value.and_then(|v| parse_digits::<u32>(v.trim()));
            let flag = || {
                a.value
                    .map(|v| !matches!(v.trim(), "0" | "false" | "FALSE" | "False"))
                    .unwrap_or(true)
            };
            match name.as_str() {
                "t38faxversion" => p.version = num(),
                "t38maxbitrate" | "t38faxmaxrate" => p.max_bit_rate = num(),
                "t38faxmaxbuffer" => p.max_buffer = num(),
                "t38faxmaxdatagram" | "t38maxdatagram" => p.max_datagram = num(),
                "t38faxratemanagement" => {
                    p.rate_management = match a.value.map(|v| v.trim().to_ascii_lowercase()) {
                        Some(v) if v == "transferredtcf" => Some(T38RateManagement::TransferredTcf),
                        Some(v) if v == "localtcf" => Some(T38RateManagement::LocalTcf),
                        _ => None,
                    }
                }
                "t38faxudpec" => {
                    p.udp_ec = match a.value.map(|v| v.trim().to_ascii_lowercase()) {
                        Some(v) if v == "t38udpredundancy" => Some(T38UdpEc::Redundancy),
                        Some(v) if v == "t38udpfec" => Some(T38UdpEc::Fec),
                        Some(v) if v == "t38udpnoec" => Some(T38UdpEc::None),
                        _ => None,
                    }
                }
                "t38faxfillbitremoval" => p.fill_bit_removal = flag(),
                "t38faxtranscodingmmr" => p.transcoding_mmr = flag(),
                "t38faxtranscodingjbig" => p.transcoding_jbig = flag(),
                _ => {}
            }
        }
        p
    }
}
