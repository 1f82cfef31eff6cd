//! SDP (RFC 8866) parsing and RFC 3264 offer/answer for coda.
//!
//! * [`SessionDescription::parse`] keeps every line verbatim in order — session-level lines,
//!   then one [`MediaSection`] per `m=` line with its own lines — so unknown attributes survive
//!   and [`SessionDescription::to_bytes`] reproduces untouched lines byte for byte (always
//!   with CRLF). Hard limits: [`MAX_SDP_LEN`], [`MAX_LINE_LEN`], [`MAX_MEDIA_SECTIONS`].
//!   Parsing never panics; errors are [`SdpError`].
//! * Typed views borrow from the lines: [`RtpMap`], [`Fmtp`], `ptime`, [`Direction`],
//!   [`Connection`] (0.0.0.0 = hold), `rtcp-mux`, [`Crypto`] (RFC 4568) and [`T38Params`].
//! * [`answer`], [`offer`] and [`accept_answer`] implement coda's audio offer/answer
//!   (PCMU, PCMA, telephone-event); see the [`negotiate`] module docs for the policy, and
//!   [`OfferAnswerError::status_code`] for the SIP status (400 / 488).
//!
//! The module is sans-IO and depends only on `std`.

#![forbid(unsafe_code)]

mod attrs;
mod error;
mod model;
pub mod negotiate;
pub mod t38;

#[cfg(test)]
mod tests;

pub use attrs::{
    Attribute, Connection, Crypto, CryptoSuite, Direction, EventSet, Fmtp, KeyParam, Origin,
    RtpMap, T38Params, T38RateManagement, T38UdpEc,
};
pub use error::{OfferAnswerError, SdpError};
pub use model::{Line, MediaSection, SessionDescription};
pub use negotiate::{
    accept_answer, answer, offer, Codec, LocalMedia, Negotiated, DEFAULT_PTIME,
    OFFER_TELEPHONE_EVENT_PT,
};
pub use t38::{
    accept_t38_answer, answer_t38, offer_t38, EcMode, NegotiatedT38, T38Error, T38Local,
};

/// Largest SDP body accepted, in bytes.
pub const MAX_SDP_LEN: usize = 16 * 1024;
/// Largest number of `m=` sections accepted.
pub const MAX_MEDIA_SECTIONS: usize = 64;
/// Longest line accepted, in bytes, excluding the line ending.
pub const MAX_LINE_LEN: usize = 1024;
