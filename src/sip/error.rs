//! Error types of the SIP layer.
//!
//! Three layers, mirroring where a fault is found (RFC 4475 makes the same distinction):
//! [`UriError`] for a malformed URI, [`HeaderError`] for a header whose value does not match its
//! grammar (found only when the typed view is read), and [`ParseError`] for a message that cannot
//! be framed or whose start line is broken, plus the semantic checks of
//! [`validate_request`](super::validate_request).

use std::fmt;

/// Which hard limit of [`Limits`](super::Limits) was exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Whole message (start line, headers and body).
    MessageSize,
    /// Number of header lines.
    HeaderCount,
    /// Length of one physical or unfolded header line.
    LineLength,
    /// Body length.
    BodySize,
}

/// A malformed URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UriError {
    /// Empty input.
    Empty,
    /// Missing or invalid scheme.
    Scheme,
    /// Whitespace, control characters or `<>"` inside a URI.
    IllegalCharacter,
    /// Bad or empty host, or an IPv6 reference that is not a valid address.
    Host,
    /// Port not a decimal number in 0..=65535.
    Port,
    /// Empty parameter name or malformed `?header=value` part.
    Parameter,
    /// A `%` not followed by two hex digits.
    Escape,
    /// Other syntax fault, with a short static explanation.
    Syntax(&'static str),
}

impl fmt::Display for UriError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UriError::Empty => f.write_str("empty URI"),
            UriError::Scheme => f.write_str("invalid URI scheme"),
            UriError::IllegalCharacter => f.write_str("illegal character in URI"),
            UriError::Host => f.write_str("invalid host in URI"),
            UriError::Port => f.write_str("invalid port in URI"),
            UriError::Parameter => f.write_str("invalid URI parameter or header"),
            UriError::Escape => f.write_str("invalid %-escape in URI"),
            UriError::Syntax(s) => write!(f, "URI syntax: {s}"),
        }
    }
}

impl std::error::Error for UriError {}

/// A header that is missing, repeated, or whose value does not match its grammar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    /// A required header is absent.
    Missing(&'static str),
    /// A single-valued header appears more than once.
    Duplicate(&'static str),
    /// The value does not match the header's grammar.
    Invalid {
        /// Canonical header name (or the grammar element, e.g. `name-addr`).
        header: &'static str,
        /// Short explanation.
        reason: &'static str,
    },
    /// A number does not fit its type (e.g. `CSeq` above 2^32-1).
    Overflow(&'static str),
    /// A URI inside the header is malformed.
    Uri {
        /// Canonical header name.
        header: &'static str,
        /// The URI fault.
        error: UriError,
    },
}

impl HeaderError {
    pub(crate) fn invalid(header: &'static str, reason: &'static str) -> Self {
        HeaderError::Invalid { header, reason }
    }

    /// Re-labels the error with the header it was found in.
    #[must_use]
    pub fn in_header(self, name: &'static str) -> Self {
        match self {
            HeaderError::Missing(_) => HeaderError::Missing(name),
            HeaderError::Duplicate(_) => HeaderError::Duplicate(name),
            HeaderError::Invalid { reason, .. } => HeaderError::Invalid {
                header: name,
                reason,
            },
            HeaderError::Overflow(_) => HeaderError::Overflow(name),
            HeaderError::Uri { error, .. } => HeaderError::Uri {
                header: name,
                error,
            },
        }
    }

    /// The header the error is about.
    pub fn header(&self) -> &'static str {
        match self {
            HeaderError::Missing(h)
            | HeaderError::Duplicate(h)
            | HeaderError::Overflow(h)
            | HeaderError::Invalid { header: h, .. }
            | HeaderError::Uri { header: h, .. } => h,
        }
    }
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderError::Missing(h) => write!(f, "missing {h} header"),
            HeaderError::Duplicate(h) => write!(f, "{h} header repeated"),
            HeaderError::Invalid { header, reason } => write!(f, "invalid {header}: {reason}"),
            HeaderError::Overflow(h) => write!(f, "number in {h} out of range"),
            HeaderError::Uri { header, error } => write!(f, "invalid URI in {header}: {error}"),
        }
    }
}

impl std::error::Error for HeaderError {}

/// A message that cannot be parsed or framed, or a request that fails
/// [`validate_request`](super::validate_request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Nothing but CRLF keep-alives (or nothing at all).
    Empty,
    /// A hard limit was exceeded.
    TooLarge(Limit),
    /// Malformed request or status line.
    StartLine(&'static str),
    /// Request-URI does not parse.
    RequestUri(UriError),
    /// Malformed header line (bad field name, missing colon, bare CR or LF, fold after start line).
    HeaderSyntax(&'static str),
    /// The message cannot be delimited: header section unterminated, `Content-Length`
    /// missing on a stream, repeated, negative, non-numeric, or larger than the data.
    Framing(&'static str),
    /// Validation: a header is missing, repeated or malformed.
    Header(HeaderError),
    /// Validation: SIP version other than 2.0 (answer 505).
    UnsupportedVersion,
    /// Validation: `CSeq` method differs from the request method.
    CSeqMethodMismatch,
    /// Validation: the Request-URI carries `?headers` (RFC 3261 §19.1.1).
    RequestUriHeaders,
}

impl ParseError {
    /// The status code a UAS should answer a request failing with this error with
    /// (400, or 505 for an unsupported version, 513 for an oversized message).
    pub fn status_code(&self) -> u16 {
        match self {
            ParseError::UnsupportedVersion => 505,
            ParseError::TooLarge(_) => 513,
            _ => 400,
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Empty => f.write_str("empty message"),
            ParseError::TooLarge(l) => write!(f, "limit exceeded: {l:?}"),
            ParseError::StartLine(s) => write!(f, "bad start line: {s}"),
            ParseError::RequestUri(e) => write!(f, "bad Request-URI: {e}"),
            ParseError::HeaderSyntax(s) => write!(f, "bad header line: {s}"),
            ParseError::Framing(s) => write!(f, "framing: {s}"),
            ParseError::Header(e) => write!(f, "{e}"),
            ParseError::UnsupportedVersion => f.write_str("unsupported SIP version"),
            ParseError::CSeqMethodMismatch => f.write_str("CSeq method does not match request"),
            ParseError::RequestUriHeaders => f.write_str("Request-URI carries headers"),
        }
    }
}

impl std::error::Error for ParseError {}

impl From<HeaderError> for ParseError {
    fn from(e: HeaderError) -> Self {
        ParseError::Header(e)
    }
}
