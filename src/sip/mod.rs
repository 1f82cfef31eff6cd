//! coda's SIP layer: message parsing and serialising, typed header views, URIs, and the
//! RFC 3261 §17 transaction state machines (sans-IO, injected time).
//!
//! Std only. Nothing here does I/O or reads the clock; nothing panics on network input, and
//! every size is bounded by [`Limits`].
//!
//! * [`parse`] / [`parse_with`] — one UDP datagram → [`Message`].
//! * [`frame`] / [`frame_with`] — how many bytes of a TCP/TLS stream form the next message.
//! * [`Headers`] — ordered header list with compact-form-aware lookup and typed views
//!   ([`Via`], [`NameAddr`], [`CSeq`], [`CallId`], …).
//! * [`Uri`] — `sip:`/`sips:`/`tel:` and opaque URIs.
//! * [`validate_request`] — mandatory-header checks before a UAS acts (answer 400/505).
//! * [`transaction`] — client/server INVITE and non-INVITE transactions.

pub mod error;
pub mod header;
pub mod message;
pub mod transaction;
pub mod uri;

pub use error::{HeaderError, Limit, ParseError, UriError};
pub use header::{
    expand_compact, same_header, split_list, CSeq, CallId, ContentType, Diversion, Headers,
    HistoryInfo, NameAddr, RetryAfter, SipDate, Via,
};
pub use message::{
    default_reason, frame, frame_with, keepalive_len, parse, parse_with, validate_request,
    validate_response, Limits, Message, Method, Request, Response, MAX_BODY_SIZE, MAX_HEADER_COUNT,
    MAX_LINE_LENGTH, MAX_MESSAGE_SIZE, SIP_VERSION,
};
pub use uri::{pct_decode, pct_encode_user, Host, OpaqueUri, Params, SipUri, TelUri, Uri};
