//! The ordered line model: parsing and serialisation.

use std::fmt;

use super::attrs::{Attribute, Connection, Crypto, Direction, Fmtp, Origin, RtpMap, T38Params};
use super::error::SdpError;
use super::{MAX_LINE_LEN, MAX_MEDIA_SECTIONS, MAX_SDP_LEN};

/// One SDP line `<kind>=<value>`, kept verbatim (without its line ending).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    kind: char,
    value: String,
}

impl Line {
    /// Builds a line, checking that `kind` is `a`..=`z`, that `value` carries no CR, LF or NUL
    /// and that the line fits in [`MAX_LINE_LEN`].
    pub fn new(kind: char, value: impl Into<String>) -> Result<Self, SdpError> {
        let value = value.into();
        if !kind.is_ascii_lowercase()
            || value.contains(['\r', '\n', '\0'])
            || value.len() + 2 > MAX_LINE_LEN
        {
            return Err(SdpError::InvalidValue);
        }
        Ok(Self { kind, value })
    }

    /// Builds an attribute line `a=<name>` or `a=<name>:<value>`.
    pub fn attribute(name: &str, value: Option<&str>) -> Result<Self, SdpError> {
        match value {
            Some(v) => Self::new('a', format!("{name}:{v}")),
            None => Self::new('a', name),
        }
    }

    /// The type letter.
    pub fn kind(&self) -> char {
        self.kind
    }

    /// Everything after `=`, verbatim.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// For an `a=` line, the attribute split into name and optional value.
    pub fn as_attribute(&self) -> Option<Attribute<'_>> {
        if self.kind != 'a' {
            return None;
        }
        Some(match self.value.split_once(':') {
            Some((name, value)) => Attribute {
                name,
                value: Some(value),
            },
            None => Attribute {
                name: &self.value,
                value: None,
            },
        })
    }

    fn write_to(&self, out: &mut Vec<u8>) {
        let mut buf = [0u8; 4];
        out.extend_from_slice(self.kind.encode_utf8(&mut buf).as_bytes());
        out.push(b'=');
        out.extend_from_slice(self.value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

/// A media section: its `m=` line and the lines that follow it up to the next `m=`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaSection {
    m: Line,
    media: String,
    port: u16,
    port_count: Option<u16>,
    proto: String,
    formats: Vec<String>,
    lines: Vec<Line>,
}

impl MediaSection {
    /// Builds a media section with no lines beyond `m=<media> <port> <proto> <formats...>`.
    pub fn new(media: &str, port: u16, proto: &str, formats: &[&str]) -> Result<Self, SdpError> {
        let mut value = format!("{media} {port} {proto}");
        for f in formats {
            value.push(' ');
            value.push_str(f);
        }
        let line = Line::new('m', value)?;
        Self::from_m_line(line, 0)
    }

    fn from_m_line(m: Line, line_no: usize) -> Result<Self, SdpError> {
        let err = SdpError::InvalidMediaLine { line: line_no };
        let mut tokens = m.value.split(' ').filter(|t| !t.is_empty());
        let media = tokens.next().ok_or(err.clone())?;
        let port_spec = tokens.next().ok_or(err.clone())?;
        let proto = tokens.next().ok_or(err.clone())?;
        let (port, port_count) = match port_spec.split_once('/') {
            Some((p, n)) => (
                parse_digits::<u16>(p).ok_or(err.clone())?,
                Some(parse_digits::<u16>(n).ok_or(err.clone())?),
            ),
            None => (parse_digits::<u16>(port_spec).ok_or(err.clone())?, None),
        };
        let formats: Vec<String> = tokens.map(str::to_owned).collect();
        // RFC 8866 requires at least one format; tolerate none only on a disabled stream.
        if !is_token(media) || !is_token_with_slash(proto) || (formats.is_empty() && port != 0) {
            return Err(err);
        }
        Ok(Self {
            media: media.to_owned(),
            proto: proto.to_owned(),
            port,
            port_count,
            formats,
            lines: Vec::new(),
            m,
        })
    }

    /// Media type (`audio`, `video`, `image`, ...).
    pub fn media(&self) -> &str {
        &self.media
    }

    /// Transport port; 0 means the stream is disabled / rejected.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The optional `/<number of ports>` suffix.
    pub fn port_count(&self) -> Option<u16> {
        self.port_count
    }

    /// Transport protocol (`RTP/AVP`, `RTP/SAVP`, `udptl`, ...).
    pub fn proto(&self) -> &str {
        &self.proto
    }

    /// Format list as written.
    pub fn formats(&self) -> &[String] {
        &self.formats
    }

    /// Formats that are RTP payload type numbers (0..=127), in order; others are skipped.
    pub fn payload_types(&self) -> impl Iterator<Item = u8> + '_ {
        self.formats
            .iter()
            .filter_map(|f| parse_digits::<u8>(f))
            .filter(|pt| *pt <= 127)
    }

    /// True when the port is 0 (RFC 3264 §6: stream rejected or disabled).
    pub fn is_rejected(&self) -> bool {
        self.port == 0
    }

    /// Changes the port, rewriting the `m=` line (other lines stay untouched).
    pub fn set_port(&mut self, port: u16) {
        self.port = port;
        let mut value = match self.port_count {
            Some(n) => format!("{} {port}/{n} {}", self.media, self.proto),
            None => format!("{} {port} {}", self.media, self.proto),
        };
        for f in &self.formats {
            value.push(' ');
            value.push_str(f);
        }
        // The m= line was already within limits and the port grows by at most 4 digits; the
        // line is rebuilt from validated tokens so it holds no control characters.
        self.m = Line { kind: 'm', value };
    }

    /// The `m=` line itself.
    pub fn m_line(&self) -> &Line {
        &self.m
    }

    /// Lines after `m=` (`i=`, `c=`, `b=`, `k=`, `a=`, ...), in order.
    pub fn lines(&self) -> &[Line] {
        &self.lines
    }

    /// Appends a line to this section.
    pub fn push_line(&mut self, line: Line) {
        self.lines.push(line);
    }

    /// Removes every line for which `keep` returns false.
    pub fn retain_lines(&mut self, keep: impl FnMut(&Line) -> bool) {
        self.lines.retain(keep);
    }

    /// Media-level attributes, in order.
    pub fn attributes(&self) -> impl Iterator<Item = Attribute<'_>> {
        self.lines.iter().filter_map(Line::as_attribute)
    }

    /// The first media-level attribute called `name` (case-sensitive, as RFC 8866 says).
    pub fn attribute(&self, name: &str) -> Option<Attribute<'_>> {
        self.attributes().find(|a| a.name == name)
    }

    /// Media-level `c=` line, if any.
    pub fn connection(&self) -> Result<Option<Connection>, SdpError> {
        connection_of(&self.lines)
    }

    /// All well-formed `a=rtpmap` attributes.
    pub fn rtpmaps(&self) -> impl Iterator<Item = RtpMap<'_>> {
        self.attributes().filter_map(RtpMap::from_attribute)
    }

    /// The `a=rtpmap` for payload type `pt`.
    pub fn rtpmap(&self, pt: u8) -> Option<RtpMap<'_>> {
        self.rtpmaps().find(|r| r.pt == pt)
    }

    /// All well-formed `a=fmtp` attributes with a numeric format.
    pub fn fmtps(&self) -> impl Iterator<Item = Fmtp<'_>> {
        self.attributes().filter_map(Fmtp::from_attribute)
    }

    /// The `a=fmtp` for payload type `pt`.
    pub fn fmtp(&self, pt: u8) -> Option<Fmtp<'_>> {
        self.fmtps().find(|f| f.pt == pt)
    }

    /// `a=ptime` in milliseconds, if present and numeric.
    pub fn ptime(&self) -> Option<u32> {
        self.attribute("ptime")
            .and_then(|a| a.value)
            .and_then(|v| parse_digits::<u32>(v.trim()))
    }

    /// Media-level direction attribute, if any (see also
    /// [`SessionDescription::media_direction`]).
    pub fn direction(&self) -> Option<Direction> {
        direction_of(&self.lines)
    }

    /// Whether `a=rtcp-mux` (RFC 5761) is present.
    pub fn rtcp_mux(&self) -> bool {
        self.attribute("rtcp-mux").is_some()
    }

    /// Well-formed `a=crypto` attributes (RFC 4568), in order.
    pub fn crypto(&self) -> impl Iterator<Item = Crypto<'_>> {
        self.attributes().filter_map(Crypto::from_attribute)
    }

    /// T.38 attributes of an `m=image ... udptl t38` section (absent ones are `None`/false).
    pub fn t38(&self) -> T38Params {
        T38Params::from_attributes(self.attributes())
    }

    fn write_to(&self, out: &mut Vec<u8>) {
        self.m.write_to(out);
        for l in &self.lines {
            l.write_to(out);
        }
    }
}

/// A parsed session description: session-level lines and media sections, in input order.
///
/// Every line is kept verbatim, so serialising a parsed description reproduces the input
/// (with CRLF line endings and without blank lines) and unknown attributes survive.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionDescription {
    session: Vec<Line>,
    media: Vec<MediaSection>,
}

impl SessionDescription {
    /// An empty description, for building one line by line.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses an SDP body (RFC 8866). Accepts CRLF or LF line endings and ignores blank
    /// lines. Enforces [`MAX_SDP_LEN`], [`MAX_LINE_LEN`] and [`MAX_MEDIA_SECTIONS`].
    pub fn parse(input: &[u8]) -> Result<Self, SdpError> {
        if input.len() > MAX_SDP_LEN {
            return Err(SdpError::TooLarge { len: input.len() });
        }
        let text = std::str::from_utf8(input).map_err(|_| SdpError::InvalidUtf8)?;
        let mut sdp = Self::default();
        let mut seen_version = false;
        for (idx, raw) in text.split('\n').enumerate() {
            let line_no = idx + 1;
            let l = raw.strip_suffix('\r').unwrap_or(raw);
            if l.is_empty() {
                continue;
            }
            if l.len() > MAX_LINE_LEN {
                return Err(SdpError::LineTooLong { line: line_no });
            }
            let bytes = l.as_bytes();
            let (Some(&k), Some(&b'=')) = (bytes.first(), bytes.get(1)) else {
                return Err(SdpError::MalformedLine { line: line_no });
            };
            if !k.is_ascii_lowercase() || l.contains(['\r', '\0']) {
                return Err(SdpError::MalformedLine { line: line_no });
            }
            let kind = char::from(k);
            // The first two bytes are ASCII, so index 2 is a char boundary.
            let value = l.get(2..).unwrap_or_default();
            if !seen_version {
                if kind != 'v' {
                    return Err(SdpError::MissingVersion);
                }
                if value != "0" {
                    return Err(SdpError::UnsupportedVersion);
                }
                seen_version = true;
            } else if kind == 'v' {
                return Err(SdpError::UnsupportedVersion);
            }
            let line = Line {
                kind,
                value: value.to_owned(),
            };
            if kind == 'm' {
                if sdp.media.len() >= MAX_MEDIA_SECTIONS {
                    return Err(SdpError::TooManyMediaSections);
                }
                sdp.media.push(MediaSection::from_m_line(line, line_no)?);
            } else if let Some(m) = sdp.media.last_mut() {
                m.lines.push(line);
            } else {
                sdp.session.push(line);
            }
        }
        if !seen_version {
            return Err(SdpError::MissingVersion);
        }
        for kind in ['o', 's', 't'] {
            if !sdp.session.iter().any(|l| l.kind == kind) {
                return Err(SdpError::MissingLine { kind });
            }
        }
        Ok(sdp)
    }

    /// Session-level lines (everything before the first `m=`), in order.
    pub fn session_lines(&self) -> &[Line] {
        &self.session
    }

    /// Appends a session-level line.
    pub fn push_session_line(&mut self, line: Line) {
        self.session.push(line);
    }

    /// Media sections, in order.
    pub fn media(&self) -> &[MediaSection] {
        &self.media
    }

    /// Mutable media sections (to change ports or lines in place).
    pub fn media_mut(&mut self) -> &mut [MediaSection] {
        &mut self.media
    }

    /// Appends a media section; fails beyond [`MAX_MEDIA_SECTIONS`].
    pub fn push_media(&mut self, section: MediaSection) -> Result<(), SdpError> {
        if self.media.len() >= MAX_MEDIA_SECTIONS {
            return Err(SdpError::TooManyMediaSections);
        }
        self.media.push(section);
        Ok(())
    }

    /// The `o=` line, if present and well formed.
    pub fn origin(&self) -> Option<Origin<'_>> {
        self.session
            .iter()
            .find(|l| l.kind == 'o')
            .and_then(|l| Origin::parse(&l.value))
    }

    /// The `s=` value.
    pub fn session_name(&self) -> Option<&str> {
        self.session
            .iter()
            .find(|l| l.kind == 's')
            .map(|l| l.value.as_str())
    }

    /// Session-level `c=` line, if any.
    pub fn connection(&self) -> Result<Option<Connection>, SdpError> {
        connection_of(&self.session)
    }

    /// Session-level attributes, in order.
    pub fn attributes(&self) -> impl Iterator<Item = Attribute<'_>> {
        self.session.iter().filter_map(Line::as_attribute)
    }

    /// Session-level direction attribute, if any.
    pub fn direction(&self) -> Option<Direction> {
        direction_of(&self.session)
    }

    /// Effective direction of media section `index`: media level, else session level, else
    /// `sendrecv` (RFC 3264 §5.1). `None` if `index` is out of range.
    pub fn media_direction(&self, index: usize) -> Option<Direction> {
        let m = self.media.get(index)?;
        Some(
            m.direction()
                .or_else(|| self.direction())
                .unwrap_or(Direction::SendRecv),
        )
    }

    /// Effective connection of media section `index`: a media-level `c=` overrides the
    /// session-level one. `Ok(None)` if neither exists or `index` is out of range.
    pub fn media_connection(&self, index: usize) -> Result<Option<Connection>, SdpError> {
        let Some(m) = self.media.get(index) else {
            return Ok(None);
        };
        match m.connection()? {
            Some(c) => Ok(Some(c)),
            None => self.connection(),
        }
    }

    /// Serialises with CRLF line endings into `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        for l in &self.session {
            l.write_to(out);
        }
        for m in &self.media {
            m.write_to(out);
        }
    }

    /// Serialises with CRLF line endings.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512);
        self.write_to(&mut out);
        out
    }
}

impl fmt::Display for SessionDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Lines are validated UTF-8 strings, so the bytes are UTF-8 too.
        f.write_str(&String::from_utf8_lossy(&self.to_bytes()))
    }
}

fn connection_of(lines: &[Line]) -> Result<Option<Connection>, SdpError> {
    lines
        .iter()
        .find(|l| l.kind == 'c')
        .map(|l| Connection::parse(&l.value))
        .transpose()
}

fn direction_of(lines: &[Line]) -> Option<Direction> {
    // If several are present (broken peer), the last one wins, like most stacks.
    lines
        .iter()
        .filter_map(Line::as_attribute)
        .filter_map(|a| Direction::from_name(a.name))
        .next_back()
}

/// Parses a non-empty all-ASCII-digit string (no sign, unlike `str::parse`).
pub(crate) fn parse_digits<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// RFC 8866 `token` characters.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'{'
                        | b'|'
                        | b'}'
                        | b'~'
                )
        })
}

fn is_token_with_slash(s: &str) -> bool {
    !s.is_empty() && s.split('/').all(is_token)
}
