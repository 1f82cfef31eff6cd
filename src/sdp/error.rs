//! Error types of the SDP subsystem.

use std::fmt;

/// Why a session description could not be parsed or a value could not be read.
///
/// Line numbers are 1-based and count every line of the input, blank ones included.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SdpError {
    /// The body is larger than [`MAX_SDP_LEN`](super::MAX_SDP_LEN).
    TooLarge {
        /// Size of the rejected body in bytes.
        len: usize,
    },
    /// A line is longer than [`MAX_LINE_LEN`](super::MAX_LINE_LEN).
    LineTooLong {
        /// Line number.
        line: usize,
    },
    /// More than [`MAX_MEDIA_SECTIONS`](super::MAX_MEDIA_SECTIONS) `m=` lines.
    TooManyMediaSections,
    /// The body is not UTF-8.
    InvalidUtf8,
    /// A line is not of the form `<letter>=<value>` or carries control characters.
    MalformedLine {
        /// Line number.
        line: usize,
    },
    /// The first line is not `v=`.
    MissingVersion,
    /// `v=` is not `0`, or appears more than once.
    UnsupportedVersion,
    /// A mandatory session-level line (`o=`, `s=` or `t=`) is absent.
    MissingLine {
        /// The line type letter.
        kind: char,
    },
    /// An `m=` line does not follow `<media> <port>[/<n>] <proto> <fmt> ...`.
    InvalidMediaLine {
        /// Line number (0 when built through the API).
        line: usize,
    },
    /// A `c=` line is not `IN IP4|IP6 <literal address>` (host names are not supported).
    InvalidConnection,
    /// A value given to a builder contains CR, LF or NUL, or the line type is not `a`..=`z`.
    InvalidValue,
}

impl fmt::Display for SdpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { len } => write!(f, "SDP body of {len} bytes exceeds the limit"),
            Self::LineTooLong { line } => write!(f, "SDP line {line} is too long"),
            Self::TooManyMediaSections => f.write_str("too many SDP media sections"),
            Self::InvalidUtf8 => f.write_str("SDP body is not UTF-8"),
            Self::MalformedLine { line } => write!(f, "malformed SDP line {line}"),
            Self::MissingVersion => f.write_str("SDP does not start with v="),
            Self::UnsupportedVersion => f.write_str("unsupported or repeated SDP version line"),
            Self::MissingLine { kind } => write!(f, "SDP lacks a {kind}= line"),
            Self::InvalidMediaLine { line } => write!(f, "invalid m= line {line}"),
            Self::InvalidConnection => f.write_str("invalid or unsupported c= line"),
            Self::InvalidValue => f.write_str("invalid SDP line value"),
        }
    }
}

impl std::error::Error for SdpError {}

/// Why an offer/answer exchange (RFC 3264) failed.
///
/// [`status_code`](Self::status_code) gives the SIP response an answerer sends.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OfferAnswerError {
    /// The description is syntactically broken (a typed value failed to parse). → 400
    Malformed(SdpError),
    /// The stream coda would use has no `c=` line at media or session level. → 400
    MissingConnection,
    /// The answer has a different number of `m=` lines than the offer (RFC 3264 §6). → 400
    MediaCountMismatch,
    /// An answer `m=` line has another media type than the offer's at the same index. → 400
    MediaTypeMismatch,
    /// An RTP/AVP audio stream was offered but none of its codecs is supported. → 488
    NoCommonCodec,
    /// No stream coda can use at all (no plain RTP/AVP audio with a non-zero port). → 488
    NoUsableStream,
    /// The answer picked a codec that was not in our offer. → 488
    UnofferedCodec,
}

impl OfferAnswerError {
    /// SIP status code for a rejected offer: 400 for malformed input, 488 (Not Acceptable Here)
    /// for an offer that is well formed but cannot be satisfied.
    pub fn status_code(&self) -> u16 {
        match self {
            Self::Malformed(_)
            | Self::MissingConnection
            | Self::MediaCountMismatch
            | Self::MediaTypeMismatch => 400,
            Self::NoCommonCodec | Self::NoUsableStream | Self::UnofferedCodec => 488,
        }
    }
}

impl From<SdpError> for OfferAnswerError {
    fn from(e: SdpError) -> Self {
        Self::Malformed(e)
    }
}

impl fmt::Display for OfferAnswerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(e) => write!(f, "malformed session description: {e}"),
            Self::MissingConnection => f.write_str("no connection address for the media stream"),
            Self::MediaCountMismatch => f.write_str("answer and offer differ in m= line count"),
            Self::MediaTypeMismatch => f.write_str("answer m= line media type differs from offer"),
            Self::NoCommonCodec => f.write_str("no common codec"),
            Self::NoUsableStream => f.write_str("no usable media stream"),
            Self::UnofferedCodec => f.write_str("answer chose a codec that was not offered"),
        }
    }
}

impl std::error::Error for OfferAnswerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Malformed(e) => Some(e),
            _ => None,
        }
    }
}
